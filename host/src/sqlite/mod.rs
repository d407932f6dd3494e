//! `spin:sqlite/sqlite@3.0.0` on rusqlite, presented the way Spin presents it.
//!
//! Only the database labelled `default` exists; any other label is refused with
//! `access-denied`, which is what Spin answers for a database the component was not granted,
//! and so is `default` itself on a platform that grants none (`serve --platform akamai`).
//!
//! A guest `connection` borrows a pooled rusqlite connection for each statement and gives it
//! back as soon as the statement leaves the connection in autocommit mode. Inside a
//! transaction (`BEGIN IMMEDIATE … COMMIT`) it keeps the same pooled connection until the
//! transaction ends, so the transaction runs on one connection as it would under Spin. Holding
//! a guest connection open therefore costs nothing between statements, which lets a reused
//! instance keep one for its whole life without pinning one of the pool's connections. What
//! differs from Spin, which opens a real connection per `open`: connection-level state set
//! outside a transaction (a `PRAGMA`, a temporary table) is not carried from one statement to
//! the next. Every pooled connection already has the settings a session store needs (WAL, busy
//! timeout, `synchronous`), and the component sets nothing else.
//!
//! Writes go through one connection (DESIGN.md, "The native host"): a statement that may write,
//! and every transaction-control statement (`BEGIN`, which `sqlite3_stmt_readonly` calls
//! read-only), runs on the single writer connection; a read-only statement outside a transaction
//! runs on a pool of reader connections (`query_only`, so a misrouted write fails instead of
//! becoming a second writer). With one writer, the WAL is bounded by a checkpoint policy that
//! runs on the writer itself after a commit (see [`DatabaseOptions::wal_checkpoint_bytes`]),
//! rather than waiting for the cleanup timer or for a gap that a busy machine may never leave.
//! `:memory:` is a single connection for both roles: every instance sees the same data, and
//! instances take turns.
//!
//! Every statement that may wait, and every wait for a pooled connection, runs on tokio's
//! blocking pool (the imports are async, as Spin's sqlite `Connection` trait is), so a statement
//! queued behind SQLite's write lock never holds a runtime worker (and with it the accept loop
//! and every other request). The one exception is a statement already known to be read-only,
//! outside a transaction, when a reader connection is free at once: it runs in place, since a
//! WAL reader never waits for the writer and the hop to the blocking pool costs more than the
//! read. A connection kept for a
//! transaction is a [`Lease`]: dropping it, wherever that happens (a guest that drops its
//! handle, a store dropped mid-call by a request timeout), rolls the transaction back and returns
//! the connection.
//!
//! The parts: [`options`](DatabaseOptions) (where the database lives and how it is opened),
//! `connection` (opening one connection: journal mode, pragmas), `pool` (the writer, the
//! readers and the [`Lease`]), `routing` (which of them a statement needs), `wal` (the
//! checkpoint policy), `statements` (running a guest statement), `values` and `errors` (what
//! crosses the interface), `handle` (the guest's [`Connection`] resource), and here the
//! interface itself, reached through [`SqliteView`].

mod connection;
mod errors;
pub(crate) mod handle;
mod options;
mod pool;
mod routing;
mod statements;
#[cfg(test)]
mod tests;
pub mod v3_1;
mod values;
mod wal;

pub use handle::Connection;
pub use options::{
    BUSY_TIMEOUT, DatabaseOptions, Location, Synchronous, SynchronousError, WAL_CHECKPOINT_BYTES,
};
pub use pool::{Database, Lease, OpenError};

use crate::bindings::spin::sqlite::sqlite::{self as wit, Error, QueryResult, Value};
use crate::host_calls::HostCalls;
use std::sync::Arc;
use wasmtime::component::{Resource, ResourceTable};

/// One instance's `spin:sqlite` state: the database its `open` lends connections of, and the
/// counter its calls are counted in.
#[derive(Debug)]
pub struct SqliteCtx {
    database: Arc<Database>,
    calls: Arc<HostCalls>,
}

impl SqliteCtx {
    pub fn new(database: Arc<Database>, calls: Arc<HostCalls>) -> Self {
        Self { database, calls }
    }

    /// The `default` database.
    pub fn database(&self) -> &Arc<Database> {
        &self.database
    }

    /// Whether `open(label)` may proceed: only `default` exists, and only if the component is
    /// granted it ([`DatabaseOptions::granted`]). Spin answers `access-denied` otherwise.
    pub fn grants(&self, label: &str) -> bool {
        label == "default" && self.database.options().granted
    }
}

/// What `spin:sqlite` needs of a store: its [`SqliteCtx`] and the resource table that holds the
/// guest's connections.
#[derive(Debug)]
pub struct SqliteCtxView<'a> {
    pub ctx: &'a mut SqliteCtx,
    pub table: &'a mut ResourceTable,
}

/// A store whose guest may import `spin:sqlite`.
pub trait SqliteView: Send {
    fn sqlite(&mut self) -> SqliteCtxView<'_>;
}

// The linker hands the host `&mut T` (`HasSelf`).
impl<T: SqliteView + ?Sized> SqliteView for &mut T {
    fn sqlite(&mut self) -> SqliteCtxView<'_> {
        T::sqlite(self)
    }
}

impl<T: SqliteView> wit::Host for T {}

impl<T: SqliteView> wit::HostConnection for T {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let SqliteCtxView { ctx, table } = self.sqlite();
        ctx.calls.sqlite_open();
        if !ctx.grants(&database) {
            return Ok(Err(Error::AccessDenied));
        }
        let resource = table.push(Connection::new(ctx.database.clone()))?;
        Ok(Ok(resource))
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let SqliteCtxView { ctx, table } = self.sqlite();
        ctx.calls.sqlite_statement();
        Ok(table
            .get_mut(&connection)?
            .execute(statement, parameters)
            .await)
    }

    async fn last_insert_rowid(
        &mut self,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        Ok(self.sqlite().table.get(&connection)?.last_insert_rowid)
    }

    async fn changes(&mut self, connection: Resource<Connection>) -> wasmtime::Result<u64> {
        Ok(self.sqlite().table.get(&connection)?.changes)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.sqlite().table.delete(connection)?;
        Ok(())
    }
}
