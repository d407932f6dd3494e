//! [`Executor`] on rusqlite (feature `native-sqlite`): the same SQL as `spin:sqlite`, run
//! natively, so the engine and store have native tests and the benchmarks a native baseline.

use super::sql::{Dialect, SQLITE};
use super::{Executor, Param, Row, StoreError, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};
use std::path::Path;
use std::time::{Duration, Instant};

/// As the native host's (`host/src/sqlite.rs`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One rusqlite connection.
#[derive(Debug)]
pub struct NativeSqlite {
    conn: Connection,
}

impl NativeSqlite {
    /// Opens (creating if needed) the database file at `path` with the native host's
    /// settings: WAL, `synchronous=NORMAL`, and a busy timeout so that connections of
    /// several threads wait for each other's writes instead of failing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] when SQLite cannot open it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(store_error)?;
        enter_wal(&conn).map_err(store_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(store_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
        Ok(Self { conn })
    }

    /// A private in-memory database.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] when SQLite cannot create it.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self {
            conn: Connection::open_in_memory().map_err(store_error)?,
        })
    }
}

impl Executor for NativeSqlite {
    fn dialect(&self) -> &'static Dialect {
        &SQLITE
    }

    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(store_error)?;
        let width = statement.column_count();
        let mut rows = statement
            .query(rusqlite::params_from_iter(params.iter().map(Bind)))
            .map_err(store_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            let values = (0..width)
                .map(|i| row.get_ref(i).map_err(store_error).and_then(column))
                .collect::<Result<_, _>>()?;
            out.push(Row(values));
        }
        Ok(out)
    }

    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(store_error)?;
        let changed = statement
            .execute(rusqlite::params_from_iter(params.iter().map(Bind)))
            .map_err(store_error)?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }
}

/// Turns the file to WAL, waiting up to [`BUSY_TIMEOUT`] for other connections: SQLite answers
/// `SQLITE_BUSY` at once, without calling the busy handler, while another connection holds the
/// write lock of a file still in rollback-journal mode, as when several connections open one
/// new file together (the native host's `set_journal_mode` says the same).
fn enter_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(err)
                if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
}

/// A [`Param`] as rusqlite binds it.
struct Bind<'p, 'a>(&'p Param<'a>);

impl ToSql for Bind<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self.0 {
            Param::Null => ValueRef::Null,
            Param::Int(n) => ValueRef::Integer(n),
            Param::Text(text) => ValueRef::Text(text.as_bytes()),
            Param::Bytes(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

fn column(value: ValueRef<'_>) -> Result<Value, StoreError> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Text(text) => Value::Text(
            std::str::from_utf8(text)
                .map_err(|_| StoreError::Shape("text is not UTF-8"))?
                .to_owned(),
        ),
        ValueRef::Blob(bytes) => Value::Bytes(bytes.to_vec()),
        ValueRef::Real(_) => return Err(StoreError::Shape("unexpected real")),
    })
}

fn store_error(err: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    #[test]
    fn an_in_memory_database_gets_the_schema() {
        let db = Db::open(Box::new(NativeSqlite::in_memory().unwrap())).unwrap();
        assert_eq!(db.dialect().map(|d| d.name), Some("sqlite"));
        assert_eq!(db.stats(0).unwrap().active_sessions, 0);
    }

    #[test]
    fn a_new_file_another_connection_holds_write_locked_is_turned_to_wal_once_the_lock_goes() {
        // As the native host's test of `set_journal_mode`; the positive control, by hand:
        // without the retry in `enter_wal` this failed at once with "database is locked".
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let holder = zoe_test_support::WriteLockHolder::hold(&path, Duration::from_millis(300));
        let exec = NativeSqlite::open(&path).expect("opens once the lock goes");
        assert!(holder.released());
        assert_eq!(
            exec.query("PRAGMA journal_mode", &[]).unwrap(),
            [Row(vec![Value::Text("wal".into())])]
        );
    }

    #[test]
    fn a_column_of_an_unexpected_type_is_a_shape_error() {
        let exec = NativeSqlite::in_memory().unwrap();
        assert_eq!(
            exec.query("SELECT 1.5", &[]),
            Err(StoreError::Shape("unexpected real"))
        );
        // The same path reads the types we use.
        let rows = exec
            .query(
                "SELECT ?1, ?2, ?3, ?4",
                &[
                    Param::Int(7),
                    Param::Text("t"),
                    Param::Bytes(&[1, 2]),
                    Param::Null,
                ],
            )
            .unwrap();
        assert_eq!(
            rows,
            [Row(vec![
                Value::Int(7),
                Value::Text("t".into()),
                Value::Bytes(vec![1, 2]),
                Value::Null
            ])]
        );
    }

    #[test]
    fn a_failed_statement_is_a_sqlite_error() {
        let exec = NativeSqlite::in_memory().unwrap();
        assert!(matches!(
            exec.execute("DELETE FROM nowhere", &[]),
            Err(StoreError::Sqlite(_))
        ));
    }
}
