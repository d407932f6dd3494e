//! `spin:sqlite/sqlite@3.0.0` on rusqlite, presented the way Spin presents it.
//!
//! Only the database labelled `default` exists; any other label is refused with
//! `access-denied`, which is what Spin answers for a database the component was not granted.
//!
//! A guest `connection` borrows a pooled rusqlite connection for each statement and gives it
//! back as soon as the statement leaves the connection in autocommit mode. Inside a
//! transaction (`BEGIN IMMEDIATE … COMMIT`) it keeps the same pooled connection until the
//! transaction ends, so the transaction runs on one connection as it would under Spin. Holding
//! a guest connection open therefore costs nothing between statements, which lets a reused
//! instance keep one for its whole life without pinning one of the pool's connections (an
//! in-memory database has exactly one). What differs from Spin, which opens a real connection
//! per `open`: connection-level state set outside a transaction (a `PRAGMA`, a temporary
//! table) is not carried from one statement to the next. Every pooled connection already has
//! the settings a session store needs (WAL, busy timeout), and the component sets nothing else.
//!
//! A file database runs in WAL mode with a busy timeout, so concurrent instances queue for the
//! write lock instead of failing. `:memory:` is a single connection: every instance sees the
//! same data, and instances take turns.

use crate::bindings::spin::sqlite::sqlite::{self as wit, Error, QueryResult, RowResult, Value};
use crate::private_fs;
use crate::state::HostState;
use rusqlite::types::{Value as SqlValue, ValueRef};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use wasmtime::component::Resource;

/// How long a statement waits for SQLite's write lock, and an `open` for a free connection.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most connections a file database keeps open at once.
const MAX_FILE_CONNECTIONS: usize = 32;

/// Prepared statements kept per connection; the guest uses a fixed, small set.
const STATEMENT_CACHE: usize = 64;

/// Where the `default` database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// One in-memory database, shared by every instance of this host, gone at exit.
    Memory,
    /// A database file, created if missing (with its parent directories).
    File(PathBuf),
}

impl Location {
    /// `:memory:` means [`Location::Memory`]; anything else is a file path.
    pub fn parse(text: &str) -> Self {
        if text == ":memory:" {
            Self::Memory
        } else {
            Self::File(PathBuf::from(text))
        }
    }
}

/// Opening the database failed at start-up.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the session database at {location}: {source}")]
pub struct OpenError {
    location: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// The `default` database: a pool of rusqlite connections.
#[derive(Debug)]
pub struct Database {
    location: Location,
    pool: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Debug)]
struct Pool {
    idle: Vec<rusqlite::Connection>,
    open: usize,
    limit: usize,
}

impl Database {
    /// Opens (and for a file, creates) the database and checks that it is usable.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the directory cannot be created or SQLite refuses the file.
    pub fn open(location: Location) -> Result<Arc<Self>, OpenError> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| OpenError {
            location: match &location {
                Location::Memory => ":memory:".to_owned(),
                Location::File(path) => path.display().to_string(),
            },
            source,
        };
        if let Location::File(path) = &location {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                private_fs::create_dir_all(dir).map_err(|e| fail(e.into()))?;
            }
            private_fs::restrict_database(path).map_err(|e| fail(e.into()))?;
        }
        let first = connect(&location).map_err(|e| fail(e.into()))?;
        let limit = match location {
            Location::Memory => 1,
            Location::File(_) => MAX_FILE_CONNECTIONS,
        };
        Ok(Arc::new(Self {
            location,
            pool: Mutex::new(Pool {
                idle: vec![first],
                open: 1,
                limit,
            }),
            returned: Condvar::new(),
        }))
    }

    /// Where this database lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The file path, if this is a file database.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(path) => Some(path),
            Location::Memory => None,
        }
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        // A panic while holding the lock leaves only a Vec of connections behind: still valid.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a connection, opening one if the pool allows, else waiting up to [`BUSY_TIMEOUT`].
    fn acquire(&self) -> Result<rusqlite::Connection, Error> {
        let mut pool = self.pool();
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < pool.limit {
                pool.open += 1;
                drop(pool);
                return connect(&self.location).map_err(|e| {
                    self.pool().open -= 1;
                    io_error(&e)
                });
            }
            let (guard, timeout) = self
                .returned
                .wait_timeout(pool, BUSY_TIMEOUT)
                .unwrap_or_else(|e| e.into_inner());
            pool = guard;
            if timeout.timed_out() && pool.idle.is_empty() {
                return Err(Error::Io(
                    "database busy: no connection became free in time".to_owned(),
                ));
            }
        }
    }

    fn release(&self, conn: rusqlite::Connection) {
        // A guest that trapped mid-transaction must not hand its transaction to the next one.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            self.pool().open -= 1;
            self.returned.notify_one();
            return;
        }
        self.pool().idle.push(conn);
        self.returned.notify_one();
    }

    /// Runs `work` on a pooled connection, for the host's own maintenance (checkpoints).
    ///
    /// # Errors
    ///
    /// The pool's or SQLite's error, as text.
    pub fn with_connection<T>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, String> {
        let conn = self.acquire().map_err(|e| format!("{e:?}"))?;
        let result = work(&conn).map_err(|e| e.to_string());
        self.release(conn);
        result
    }
}

fn connect(location: &Location) -> rusqlite::Result<rusqlite::Connection> {
    let conn = match location {
        Location::Memory => rusqlite::Connection::open_in_memory()?,
        Location::File(path) => {
            let conn = rusqlite::Connection::open(path)?;
            // WAL lets readers run beside the writer; NORMAL sync keeps every committed
            // transaction across a process crash (only power loss can drop the newest).
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn
        }
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The guest's `connection` resource: a pooled connection lent per statement, or kept for the
/// length of a transaction; returned when the transaction ends or the guest drops the handle.
#[derive(Debug)]
pub struct Connection {
    in_transaction: Option<rusqlite::Connection>,
    changes: u64,
    last_insert_rowid: i64,
    database: Arc<Database>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(conn) = self.in_transaction.take() {
            self.database.release(conn);
        }
    }
}

impl Connection {
    fn new(database: Arc<Database>) -> Self {
        Self {
            in_transaction: None,
            changes: 0,
            last_insert_rowid: 0,
            database,
        }
    }

    fn execute(&mut self, statement: &str, parameters: Vec<Value>) -> Result<QueryResult, Error> {
        let conn = match self.in_transaction.take() {
            Some(conn) => conn,
            None => self.database.acquire()?,
        };
        let result = run_statement(&conn, statement, parameters);
        // `changes` and `last_insert_rowid` describe this handle's statements, as they would
        // on a connection of its own, whichever pooled connection ran them.
        self.changes = conn.changes();
        self.last_insert_rowid = conn.last_insert_rowid();
        if conn.is_autocommit() {
            self.database.release(conn);
        } else {
            self.in_transaction = Some(conn);
        }
        result
    }
}

fn run_statement(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> Result<QueryResult, Error> {
    let mut stmt = conn
        .prepare_cached(statement)
        .map_err(|e| sqlite_error(&e))?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let params = rusqlite::params_from_iter(parameters.into_iter().map(to_sql));
    let mut rows = stmt.query(params).map_err(|e| sqlite_error(&e))?;
    let mut result = Vec::new();
    while let Some(row) = rows.next().map_err(|e| sqlite_error(&e))? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(from_sql))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| sqlite_error(&e))?;
        result.push(RowResult { values });
    }
    Ok(QueryResult {
        columns,
        rows: result,
    })
}

fn to_sql(value: Value) -> SqlValue {
    match value {
        Value::Integer(n) => SqlValue::Integer(n),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
        Value::Null => SqlValue::Null,
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(s) => Value::Text(String::from_utf8_lossy(s).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn sqlite_error(err: &rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(code, _) = err
        && code.code == rusqlite::ErrorCode::DiskFull
    {
        return Error::DatabaseFull;
    }
    io_error(err)
}

fn io_error(err: &rusqlite::Error) -> Error {
    Error::Io(err.to_string())
}

impl wit::Host for HostState {}

impl wit::HostConnection for HostState {
    fn open(&mut self, database: String) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        if database != "default" {
            return Ok(Err(Error::AccessDenied));
        }
        let resource = self.table.push(Connection::new(self.database.clone()))?;
        Ok(Ok(resource))
    }

    fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        Ok(self
            .table
            .get_mut(&connection)?
            .execute(&statement, parameters))
    }

    fn last_insert_rowid(&mut self, connection: Resource<Connection>) -> wasmtime::Result<i64> {
        Ok(self.table.get(&connection)?.last_insert_rowid)
    }

    fn changes(&mut self, connection: Resource<Connection>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&connection)?.changes)
    }

    fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::spin::sqlite::sqlite::HostConnection;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The database, its WAL and shared-memory files and the directory made for them are the
    /// owner's alone (issue 17, item 5).
    #[cfg(unix)]
    #[test]
    fn database_files_are_readable_by_their_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("s.db");
        let db = Database::open(Location::File(path.clone())).unwrap();
        db.with_connection(|conn| {
            conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        })
        .unwrap();
        let wal = path.with_file_name("s.db-wal");
        let shm = path.with_file_name("s.db-shm");
        assert!(wal.exists() && shm.exists(), "WAL mode makes both");
        for file in [&path, &wal, &shm] {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        drop(db);

        // Positive control: a database left world-readable by an older build is seen as such,
        // then tightened when opened.
        let old = dir.path().join("old.db");
        std::fs::write(&old, b"").unwrap();
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        assert_eq!(mode(&old), 0o644);
        drop(Database::open(Location::File(old.clone())).unwrap());
        assert_eq!(mode(&old), 0o600);
    }

    fn state() -> HostState {
        HostState::new(
            wasmtime_wasi::WasiCtx::builder().build(),
            Database::open(Location::Memory).unwrap(),
            Default::default(),
            Default::default(),
        )
    }

    #[test]
    fn only_the_default_database_may_be_opened() {
        let mut state = state();
        for name in ["other", "", "Default"] {
            let result = HostConnection::open(&mut state, name.to_owned()).unwrap();
            assert!(matches!(result, Err(Error::AccessDenied)), "{name:?}");
        }
        assert!(
            HostConnection::open(&mut state, "default".to_owned())
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn statements_round_trip_every_value_type() {
        let mut state = state();
        let conn = HostConnection::open(&mut state, "default".into())
            .unwrap()
            .unwrap();
        let exec = |state: &mut HostState, sql: &str, params: Vec<Value>| {
            let conn = Resource::new_borrow(conn.rep());
            HostConnection::execute(state, conn, sql.into(), params).unwrap()
        };
        exec(&mut state, "CREATE TABLE t (i, r, s, b, n)", vec![]).unwrap();
        let values = vec![
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Text("héllo".into()),
            Value::Blob(vec![0, 255]),
            Value::Null,
        ];
        exec(
            &mut state,
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            values.clone(),
        )
        .unwrap();
        let result = exec(&mut state, "SELECT * FROM t", vec![]).unwrap();
        assert_eq!(result.columns, ["i", "r", "s", "b", "n"]);
        assert_eq!(result.rows.len(), 1);
        assert_eq!(
            format!("{:?}", result.rows[0].values),
            format!("{values:?}")
        );
        let err = exec(&mut state, "SELECT * FROM missing", vec![]).unwrap_err();
        assert!(
            matches!(err, Error::Io(ref text) if text.contains("missing")),
            "{err:?}"
        );
    }

    fn open_default(state: &mut HostState) -> Resource<Connection> {
        HostConnection::open(state, "default".into())
            .unwrap()
            .unwrap()
    }

    fn borrow(conn: &Resource<Connection>) -> Resource<Connection> {
        Resource::new_borrow(conn.rep())
    }

    fn exec(state: &mut HostState, conn: &Resource<Connection>, sql: &str) -> QueryResult {
        HostConnection::execute(state, borrow(conn), sql.into(), vec![])
            .unwrap()
            .unwrap()
    }

    #[test]
    fn many_guest_connections_share_the_single_in_memory_connection() {
        // Each statement borrows the one pooled connection and gives it back, so holding guest
        // handles open (as a reused instance does) never starves another handle.
        let mut state = state();
        let (first, second) = (open_default(&mut state), open_default(&mut state));
        exec(&mut state, &first, "CREATE TABLE t (x)");
        exec(&mut state, &second, "INSERT INTO t VALUES (1), (2)");
        exec(&mut state, &first, "INSERT INTO t VALUES (3)");
        // `changes` and `last_insert_rowid` belong to the handle that ran the statement.
        assert_eq!(
            HostConnection::changes(&mut state, borrow(&second)).unwrap(),
            2
        );
        assert_eq!(
            HostConnection::changes(&mut state, borrow(&first)).unwrap(),
            1
        );
        assert_eq!(
            HostConnection::last_insert_rowid(&mut state, borrow(&first)).unwrap(),
            3
        );
        let count = exec(&mut state, &second, "SELECT count(*) FROM t");
        assert!(matches!(count.rows[0].values[0], Value::Integer(3)));
    }

    #[test]
    fn a_transaction_keeps_its_connection_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = state();
        state.database = Database::open(Location::File(dir.path().join("t.db"))).unwrap();
        let (writer, reader) = (open_default(&mut state), open_default(&mut state));
        exec(&mut state, &writer, "CREATE TABLE t (x)");
        exec(&mut state, &writer, "BEGIN IMMEDIATE");
        exec(&mut state, &writer, "INSERT INTO t VALUES (1)");
        // The writer sees its own uncommitted row, so it is still on the same connection;
        // another handle, on another pooled connection, does not see it yet.
        fn count(state: &mut HostState, conn: &Resource<Connection>) -> i64 {
            match exec(state, conn, "SELECT count(*) FROM t").rows[0].values[0] {
                Value::Integer(n) => n,
                ref other => panic!("{other:?}"),
            }
        }
        assert_eq!(count(&mut state, &writer), 1);
        assert_eq!(count(&mut state, &reader), 0);
        exec(&mut state, &writer, "COMMIT");
        assert_eq!(count(&mut state, &reader), 1);
        // A handle dropped mid-transaction returns its connection rolled back.
        exec(&mut state, &writer, "BEGIN IMMEDIATE");
        exec(&mut state, &writer, "INSERT INTO t VALUES (2)");
        HostConnection::drop(&mut state, writer).unwrap();
        assert_eq!(count(&mut state, &reader), 1);
        exec(&mut state, &reader, "INSERT INTO t VALUES (3)");
        assert_eq!(count(&mut state, &reader), 2);
    }

    #[test]
    fn a_connection_left_in_a_transaction_is_rolled_back_when_returned() {
        let database = Database::open(Location::Memory).unwrap();
        let conn = database.acquire().unwrap();
        conn.execute_batch("CREATE TABLE t (x); BEGIN; INSERT INTO t VALUES (1);")
            .unwrap();
        database.release(conn);
        let conn = database.acquire().unwrap();
        assert!(conn.is_autocommit());
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0);
    }
}
