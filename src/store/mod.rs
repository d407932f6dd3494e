//! Storage of sessions in Spin's SQLite (`spin:sqlite/sqlite@3.0.0`, database `default`).
//!
//! Every statement is parameterised. Write paths that must be atomic run inside
//! [`Db::immediate`], which takes SQLite's write lock up front (`BEGIN IMMEDIATE`), so two
//! concurrent instances serialise instead of deadlocking on a lock upgrade.

mod schema;
mod value;

use spin_sdk::sqlite3::{Connection, Error as SqliteError, Value};
use value::Row;

/// A failure of the database; the text is for operators, never for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(String),
    #[error("unexpected row shape: {0}")]
    Shape(&'static str),
    #[error("database schema version {found} is newer than this build understands ({known})")]
    FutureSchema { found: i64, known: i64 },
}

impl From<SqliteError> for StoreError {
    fn from(err: SqliteError) -> Self {
        Self::Sqlite(match err {
            SqliteError::NoSuchDatabase => "no such database".to_owned(),
            SqliteError::AccessDenied => "access denied".to_owned(),
            SqliteError::InvalidConnection => "invalid connection".to_owned(),
            SqliteError::DatabaseFull => "database full".to_owned(),
            SqliteError::Io(text) => text,
        })
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub secret_hash: Vec<u8>,
    pub user_id: String,
    pub created_at: u64,
    pub last_activity: u64,
    pub expires_at: u64,
    pub absolute_expires_at: u64,
    pub idle_timeout: u32,
    pub metadata: String,
}

/// Counters for `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub active_sessions: u64,
    pub active_users: u64,
    pub expired: u64,
    pub last_cleanup_at: u64,
}

const COLUMNS: &str = "id, secret_hash, user_id, created_at, last_activity, expires_at, \
                       absolute_expires_at, idle_timeout, metadata";

/// An open connection with the schema in place.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    // Set when a transaction may not have ended (its ROLLBACK failed): whoever keeps this
    // handle between calls must open a fresh one rather than run the next call inside it.
    unsettled: std::cell::Cell<bool>,
}

impl Db {
    /// Opens the `default` database and applies pending migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the host refuses the database or a migration fails.
    pub fn open() -> Result<Self> {
        let db = Self {
            conn: Connection::open_default()?,
            unsettled: std::cell::Cell::new(false),
        };
        // Concurrent instances queue for the write lock instead of failing with "database is
        // locked". Our host already sets this; Spin's hosts may not.
        db.execute("PRAGMA busy_timeout = 5000", &[])?;
        schema::migrate_once(&db)?;
        Ok(db)
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let result = self.conn.execute(sql, params)?;
        Ok(result.rows.into_iter().map(Row::from).collect())
    }

    /// Runs a statement that returns no rows and reports how many rows it changed.
    fn change(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.conn.execute(sql, params)?;
        Ok(self.conn.changes())
    }

    /// Runs `work` in a write transaction, committing on `Ok` and rolling back on `Err`.
    ///
    /// # Errors
    ///
    /// Whatever `work` returns, or a [`StoreError`] from `BEGIN`/`COMMIT`.
    pub fn immediate<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.execute("BEGIN IMMEDIATE", &[])?;
        match work(self) {
            Ok(value) => match self.execute("COMMIT", &[]) {
                Ok(_) => Ok(value),
                Err(err) => {
                    self.rollback();
                    Err(err.into())
                }
            },
            Err(err) => {
                self.rollback();
                Err(err)
            }
        }
    }

    fn rollback(&self) {
        // A failed rollback usually means SQLite already rolled back (COMMIT or a statement
        // failed fatally); if it did not, the handle must not be used for another call.
        if self.execute("ROLLBACK", &[]).is_err() {
            self.unsettled.set(true);
        }
    }

    /// Whether a transaction on this handle may still be open after a failed rollback.
    pub fn is_unsettled(&self) -> bool {
        self.unsettled.get()
    }

    pub fn find(&self, id: &str) -> Result<Option<SessionRow>> {
        let rows = self.execute(
            &format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"),
            &[text(id)],
        )?;
        rows.into_iter().next().map(session_row).transpose()
    }

    pub fn insert(&self, row: &SessionRow) -> Result<()> {
        self.execute(
            &format!(
                "INSERT INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            &[
                text(&row.id),
                Value::Blob(row.secret_hash.clone()),
                text(&row.user_id),
                int(row.created_at),
                int(row.last_activity),
                int(row.expires_at),
                int(row.absolute_expires_at),
                Value::Integer(i64::from(row.idle_timeout)),
                text(&row.metadata),
            ],
        )?;
        Ok(())
    }

    /// Records activity, but only if the session still has the secret the caller verified:
    /// a concurrent rotate or delete wins, and nothing deleted comes back.
    pub fn record_activity(
        &self,
        id: &str,
        secret_hash: &[u8],
        now: u64,
        expires_at: u64,
    ) -> Result<bool> {
        let changed = self.change(
            "UPDATE sessions SET last_activity = ?3, expires_at = ?4 \
             WHERE id = ?1 AND secret_hash = ?2",
            &[
                text(id),
                Value::Blob(secret_hash.to_vec()),
                int(now),
                int(expires_at),
            ],
        )?;
        Ok(changed == 1)
    }

    /// Sets a new expiry under the same guard as [`Db::record_activity`].
    pub fn set_expiry(&self, id: &str, secret_hash: &[u8], expires_at: u64) -> Result<bool> {
        let changed = self.change(
            "UPDATE sessions SET expires_at = ?3 WHERE id = ?1 AND secret_hash = ?2",
            &[text(id), Value::Blob(secret_hash.to_vec()), int(expires_at)],
        )?;
        Ok(changed == 1)
    }

    /// Swaps the secret if it is still `old`, so of two concurrent rotations only one wins.
    pub fn replace_secret(
        &self,
        id: &str,
        old: &[u8],
        new: &[u8],
        now: u64,
        expires_at: u64,
    ) -> Result<bool> {
        let changed = self.change(
            "UPDATE sessions SET secret_hash = ?3, last_activity = ?4, expires_at = ?5 \
             WHERE id = ?1 AND secret_hash = ?2",
            &[
                text(id),
                Value::Blob(old.to_vec()),
                Value::Blob(new.to_vec()),
                int(now),
                int(expires_at),
            ],
        )?;
        Ok(changed == 1)
    }

    pub fn delete(&self, id: &str) -> Result<bool> {
        Ok(self.change("DELETE FROM sessions WHERE id = ?1", &[text(id)])? == 1)
    }

    /// Deletes all of a user's rows (expired ones too) except `keep`.
    pub fn delete_user(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        self.change(
            "DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2",
            &[text(user_id), keep.map_or(Value::Null, text)],
        )
    }

    /// Deletes every row, expired or not.
    pub fn delete_all(&self) -> Result<u64> {
        self.change("DELETE FROM sessions", &[])
    }

    /// The user's unexpired sessions, most recently active first.
    pub fn list_user(&self, user_id: &str, now: u64) -> Result<Vec<SessionRow>> {
        self.execute(
            &format!(
                "SELECT {COLUMNS} FROM sessions WHERE user_id = ?1 AND expires_at > ?2 \
                 ORDER BY last_activity DESC, created_at DESC"
            ),
            &[text(user_id), int(now)],
        )?
        .into_iter()
        .map(session_row)
        .collect()
    }

    /// Ids of the user's unexpired sessions, least recently active first.
    pub fn user_ids_by_age(&self, user_id: &str, now: u64) -> Result<Vec<String>> {
        self.execute(
            "SELECT id FROM sessions WHERE user_id = ?1 AND expires_at > ?2 \
             ORDER BY last_activity ASC, created_at ASC",
            &[text(user_id), int(now)],
        )?
        .into_iter()
        .map(|row| row.text(0).map(str::to_owned))
        .collect()
    }

    /// Deletes the user's expired rows (they no longer count against the limit).
    pub fn delete_user_expired(&self, user_id: &str, now: u64) -> Result<u64> {
        self.change(
            "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2",
            &[text(user_id), int(now)],
        )
    }

    /// Deletes at most `limit` expired rows in one statement.
    pub fn delete_expired(&self, now: u64, limit: u32) -> Result<u64> {
        self.change(
            "DELETE FROM sessions WHERE rowid IN \
             (SELECT rowid FROM sessions WHERE expires_at <= ?1 LIMIT ?2)",
            &[int(now), Value::Integer(i64::from(limit))],
        )
    }

    pub fn stats(&self, now: u64) -> Result<StoreStats> {
        let rows = self.execute(
            "SELECT \
               (SELECT count(*) FROM sessions WHERE expires_at > ?1), \
               (SELECT count(DISTINCT user_id) FROM sessions WHERE expires_at > ?1), \
               (SELECT count(*) FROM sessions WHERE expires_at <= ?1), \
               (SELECT value FROM zoe_state WHERE key = 'last_cleanup_at')",
            &[int(now)],
        )?;
        let row = rows
            .first()
            .ok_or(StoreError::Shape("stats returned no row"))?;
        Ok(StoreStats {
            active_sessions: row.uint(0)?,
            active_users: row.uint(1)?,
            expired: row.uint(2)?,
            last_cleanup_at: row.opt_uint(3)?.unwrap_or(0),
        })
    }

    /// Claims the cleanup slot if `interval_ms` has passed since the last cleanup: only one
    /// of several concurrent callers gets `true`.
    pub fn claim_cleanup(&self, now: u64, interval_ms: u64) -> Result<bool> {
        let changed = self.change(
            "UPDATE zoe_state SET value = ?1 WHERE key = 'last_cleanup_at' AND value <= ?2",
            &[int(now), int(now.saturating_sub(interval_ms))],
        )?;
        Ok(changed == 1)
    }

    /// Records that a cleanup ran at `now`.
    pub fn mark_cleanup(&self, now: u64) -> Result<()> {
        self.execute(
            "UPDATE zoe_state SET value = ?1 WHERE key = 'last_cleanup_at'",
            &[int(now)],
        )?;
        Ok(())
    }
}

fn session_row(row: Row) -> Result<SessionRow> {
    Ok(SessionRow {
        id: row.text(0)?.to_owned(),
        secret_hash: row.blob(1)?.to_vec(),
        user_id: row.text(2)?.to_owned(),
        created_at: row.uint(3)?,
        last_activity: row.uint(4)?,
        expires_at: row.uint(5)?,
        absolute_expires_at: row.uint(6)?,
        idle_timeout: u32::try_from(row.uint(7)?)
            .map_err(|_| StoreError::Shape("idle_timeout out of range"))?,
        metadata: row.text(8)?.to_owned(),
    })
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

/// Times are far below `i64::MAX` milliseconds; saturate rather than wrap if one is not.
fn int(value: u64) -> Value {
    Value::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}
