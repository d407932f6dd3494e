//! Schema migrations: applied in order at first use, each in its own write transaction, with
//! the version recorded in `zoe_schema`. Safe to run from many instances at once: the version
//! is re-read under the write lock, so each migration runs exactly once.

use super::{Db, StoreError};

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, indexed by token id (primary key), user and expiry; a state table.
    "CREATE TABLE sessions (
        id TEXT PRIMARY KEY NOT NULL,
        secret_hash BLOB NOT NULL,
        user_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_activity INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        absolute_expires_at INTEGER NOT NULL,
        idle_timeout INTEGER NOT NULL,
        metadata TEXT NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (user_id, last_activity);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    CREATE TABLE zoe_state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
    INSERT INTO zoe_state (key, value) VALUES ('last_cleanup_at', 0);",
];

/// The schema version this build writes.
pub(super) const CURRENT: i64 = MIGRATIONS.len() as i64;

thread_local! {
    // Once an instance has seen the schema current, later calls skip the check.
    static CURRENT_SEEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Migrates unless this instance already did (or saw the schema current).
pub(super) fn migrate_once(db: &Db) -> Result<(), StoreError> {
    if CURRENT_SEEN.get() {
        return Ok(());
    }
    migrate(db)?;
    CURRENT_SEEN.set(true);
    Ok(())
}

fn migrate(db: &Db) -> Result<(), StoreError> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS zoe_schema (version INTEGER NOT NULL)",
        &[],
    )?;
    // The common case: already current, one read and no write lock.
    if version(db)? == CURRENT {
        return Ok(());
    }
    db.immediate(|db| {
        let found = version(db)?;
        if found > CURRENT {
            return Err(StoreError::FutureSchema {
                found,
                known: CURRENT,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            // spin:sqlite runs one statement per call.
            for statement in migration
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                db.execute(statement, &[])?;
            }
            let to = index as i64 + 1;
            db.execute("DELETE FROM zoe_schema", &[])?;
            db.execute(
                "INSERT INTO zoe_schema (version) VALUES (?1)",
                &[spin_sdk::sqlite3::Value::Integer(to)],
            )?;
        }
        Ok(())
    })
}

fn version(db: &Db) -> Result<i64, StoreError> {
    let rows = db.execute("SELECT coalesce(max(version), 0) FROM zoe_schema", &[])?;
    rows.first()
        .ok_or(StoreError::Shape("no version row"))?
        .int(0)
}
