//! The `default` database as a pool: one writer connection and up to [`MAX_READERS`] reader
//! connections (one connection for both roles in `:memory:`), each lent as a [`Lease`] that
//! goes back, rolled back if need be, however it is dropped.

use super::connection::{Role, connect};
use super::options::{BUSY_TIMEOUT, DatabaseOptions, Location};
use crate::private_fs;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Most reader connections a file database keeps open at once (beside its one writer).
const MAX_READERS: usize = 16;

/// Opening the database failed at start-up.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the session database at {location}: {source}")]
pub struct OpenError {
    location: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// No connection could be had: none came back in time, or a new one would not open. The
/// guest sees it as `io` (`From<PoolError> for Error`, in `errors`).
#[derive(Debug, thiserror::Error)]
pub(super) enum PoolError {
    #[error("database busy: no connection became free in time")]
    Busy,
    #[error(transparent)]
    Connect(rusqlite::Error),
}

/// The `default` database: one writer connection and a pool of readers.
#[derive(Debug)]
pub struct Database {
    pub(super) location: Location,
    pub(super) options: DatabaseOptions,
    writer: Slots,
    /// `None` for `:memory:`, whose one connection is also the writer.
    pub(super) readers: Option<Slots>,
    /// Which role each statement seen so far needs (see `routing`).
    pub(super) routes: Mutex<HashMap<Box<str>, Role>>,
    /// Statements run in place rather than on the blocking pool (see the module docs).
    pub(super) reads_in_place: AtomicU64,
    /// Times a statement had to wait for a pooled connection to come back.
    pool_waits: AtomicU64,
}

/// Connections of one role: idle ones, how many exist, and a signal when one comes back.
#[derive(Debug)]
pub(super) struct Slots {
    pub(super) pool: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Debug)]
pub(super) struct Pool {
    pub(super) idle: Vec<rusqlite::Connection>,
    open: usize,
    limit: usize,
}

/// A pooled connection on loan. Dropping it gives the connection back, rolled back first if it
/// was left inside a transaction, so no path (a dropped future included) can leak one.
#[derive(Debug)]
pub struct Lease {
    conn: Option<rusqlite::Connection>,
    pub(super) role: Role,
    database: Arc<Database>,
}

impl Lease {
    pub(super) fn new(conn: rusqlite::Connection, role: Role, database: Arc<Database>) -> Self {
        Self {
            conn: Some(conn),
            role,
            database,
        }
    }

    pub(super) fn conn(&self) -> &rusqlite::Connection {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.database.release(self.role, conn);
        }
    }
}

pub(super) fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    // A panic while holding the lock leaves only a Vec of connections behind: still valid.
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

impl Database {
    /// Opens (and for a file, creates) the database with the default [`DatabaseOptions`].
    ///
    /// # Errors
    ///
    /// As [`Database::open_with`].
    pub fn open(location: Location) -> Result<Arc<Self>, OpenError> {
        Self::open_with(location, DatabaseOptions::default())
    }

    /// Opens (and for a file, creates) the database and checks that it is usable. The file,
    /// its WAL and the directory made for it are the owner's alone.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the directory cannot be created or SQLite refuses the file.
    pub fn open_with(location: Location, options: DatabaseOptions) -> Result<Arc<Self>, OpenError> {
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
        let writer = connect(&location, options, Role::Writer).map_err(|e| fail(e.into()))?;
        let readers = match location {
            Location::Memory => None,
            Location::File(_) => Some(Slots::new(Vec::new(), MAX_READERS)),
        };
        Ok(Arc::new(Self {
            location,
            options,
            writer: Slots::new(vec![writer], 1),
            readers,
            routes: Mutex::new(HashMap::new()),
            reads_in_place: AtomicU64::new(0),
            pool_waits: AtomicU64::new(0),
        }))
    }

    /// How many statements ran in place instead of on the blocking pool.
    pub fn reads_in_place(&self) -> u64 {
        self.reads_in_place.load(Ordering::Relaxed)
    }

    /// How many times a statement waited for a pooled connection (all were in use).
    pub fn pool_waits(&self) -> u64 {
        self.pool_waits.load(Ordering::Relaxed)
    }

    /// Where this database lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The options it was opened with.
    pub fn options(&self) -> DatabaseOptions {
        self.options
    }

    /// The file path, if this is a file database.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(path) => Some(path),
            Location::Memory => None,
        }
    }

    /// The write-ahead log beside a file database (SQLite names it `<file>-wal`).
    pub fn wal_path(&self) -> Option<PathBuf> {
        self.path().map(|path| {
            let mut name = path.as_os_str().to_owned();
            name.push("-wal");
            PathBuf::from(name)
        })
    }

    fn slots(&self, role: Role) -> &Slots {
        match (role, &self.readers) {
            (Role::Reader, Some(readers)) => readers,
            _ => &self.writer,
        }
    }

    /// Takes a connection of `role`, opening one if the pool allows, else waiting up to
    /// [`BUSY_TIMEOUT`]. Blocks: call it on a blocking thread.
    pub(super) fn acquire(self: &Arc<Self>, role: Role) -> Result<Lease, PoolError> {
        let role = if self.readers.is_some() {
            role
        } else {
            Role::Writer
        };
        let slots = self.slots(role);
        let mut pool = lock(&slots.pool);
        let conn = loop {
            if let Some(conn) = pool.idle.pop() {
                break conn;
            }
            if pool.open < pool.limit {
                pool.open += 1;
                drop(pool);
                break connect(&self.location, self.options, role).map_err(|e| {
                    lock(&slots.pool).open -= 1;
                    PoolError::Connect(e)
                })?;
            }
            self.pool_waits.fetch_add(1, Ordering::Relaxed);
            let (guard, timeout) = slots
                .returned
                .wait_timeout(pool, BUSY_TIMEOUT)
                .unwrap_or_else(|e| e.into_inner());
            pool = guard;
            if timeout.timed_out() && pool.idle.is_empty() {
                return Err(PoolError::Busy);
            }
        };
        Ok(Lease::new(conn, role, self.clone()))
    }

    fn release(&self, role: Role, conn: rusqlite::Connection) {
        let slots = self.slots(role);
        // A guest that trapped, or whose call was dropped, mid-transaction must not hand its
        // transaction to the next one; a connection that cannot roll back is closed instead.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            lock(&slots.pool).open -= 1;
        } else {
            lock(&slots.pool).idle.push(conn);
        }
        slots.returned.notify_one();
    }

    /// Runs `work` on the writer connection, for the host's own maintenance (checkpoints).
    /// Blocks: call it on a blocking thread.
    ///
    /// # Errors
    ///
    /// The pool's or SQLite's error, as text.
    pub fn with_connection<T>(
        self: &Arc<Self>,
        work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, String> {
        let lease = self.acquire(Role::Writer).map_err(|e| e.to_string())?;
        work(lease.conn()).map_err(|e| e.to_string())
    }
}

impl Slots {
    fn new(idle: Vec<rusqlite::Connection>, limit: usize) -> Self {
        Self {
            pool: Mutex::new(Pool {
                open: idle.len(),
                idle,
                limit,
            }),
            returned: Condvar::new(),
        }
    }
}
