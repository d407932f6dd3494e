//! Schema migrations: applied in order when a connection is opened, all pending ones in one
//! write transaction, with the version recorded in `zoe_schema`. The dialect supplies the
//! statements. Safe to run from many instances and replicas at once: the version is re-read
//! inside the transaction, after SQLite's write lock or PostgreSQL's migration lock is held,
//! so each migration runs exactly once.

use super::{Db, Param, StoreError};

impl Db {
    /// Applies pending migrations (see the module documentation).
    pub(super) fn migrate(&self) -> Result<(), StoreError> {
        migrate(self)
    }
}

pub(super) fn migrate(db: &Db) -> Result<(), StoreError> {
    let dialect = db.sql()?;
    let current = dialect.current_version();
    // The common case: already current, one read and no lock. A failure here (a fresh
    // database has no version table yet) sends us down the locked path, which reports any
    // real fault.
    if matches!(version(db), Ok(found) if found == current) {
        return Ok(());
    }
    db.transaction(|db| {
        if let Some(lock) = dialect.lock_migrations {
            db.change(lock, &[])?;
        }
        db.change(dialect.create_version_table, &[])?;
        let found = version(db)?;
        if found > current {
            return Err(StoreError::FutureSchema {
                found,
                known: current,
            });
        }
        let done = usize::try_from(found).unwrap_or(0);
        for (index, migration) in dialect.migrations.iter().enumerate().skip(done) {
            for statement in *migration {
                db.change(statement, &[])?;
            }
            let to = i64::try_from(index + 1).unwrap_or(i64::MAX);
            db.change(dialect.clear_version, &[])?;
            db.change(dialect.insert_version, &[Param::Int(to)])?;
        }
        Ok(())
    })
}

/// The recorded schema version (0 for none).
pub(super) fn version(db: &Db) -> Result<i64, StoreError> {
    let rows = db.query(db.sql()?.schema_version, &[])?;
    rows.first()
        .ok_or(StoreError::Shape("no version row"))?
        .int(0)
}
