//! `spin:postgres/postgres@4.0.0` on tokio-postgres, presented the way Spin presents it.
//!
//! As in Spin's outbound-pg factor, each guest `open` takes one connection from a pool
//! (deadpool-postgres) and keeps it until the guest drops the handle, so a transaction the
//! guest runs as statements (`BEGIN` … `COMMIT`) stays on one server connection, and a fresh
//! instance per request pays no TCP and authentication handshake per `open`.
//!
//! Only the configured `database_url` may be opened, byte for byte: this host's stand-in for
//! Spin's `allowed_outbound_hosts`. Any other address is refused before any network access with
//! Spin's own answer, `connection-failed("address postgres://HOST:PORT is not permitted")`.
//!
//! Failures are the WIT error values Spin gives, never traps: an unreachable server, a connect
//! that takes longer than [`PoolOptions::connect_timeout`] and a pool that stays full for
//! [`PoolOptions::wait_timeout`] are `connection-failed`; SQL errors are `query-failed` with the
//! server's `db-error` (SQLSTATE code, message, detail). A pooled connection that the server
//! closed (a restart) is replaced at the next `open`, so the service recovers by itself. The
//! URL's password appears in no error and no log: errors name only `postgres://HOST:PORT`.
//!
//! A connection goes back to the pool only outside a transaction. The host follows the guest's
//! transaction statements (see [`classify`]); a handle dropped while one may be open, by the
//! guest or by a trap, is rolled back before its connection is reused, or the connection is
//! closed (which makes the server roll back). What differs from Spin: a statement whose
//! connection the server has closed, outside a transaction, runs on a fresh pooled connection
//! (so an instance that keeps a handle across requests recovers after a restart too), and
//! statements are prepared once per connection and cached.
//!
//! As in Spin, connections speak TLS for every `sslmode` but `disable`, with libpq's meanings
//! (rustls, through [`zoe_postgres_tls`]): `prefer`, the default, falls back to plain TCP when
//! the server offers no TLS; `require` checks no certificate; `verify-ca` checks the chain
//! against the system's roots and the configured root certificate (`SESSION_POSTGRES_ROOT_CERT`,
//! [`crate::HostConfig::postgres_root_cert`]); `verify-full` checks the host name too. A refused
//! certificate is `connection-failed` saying why.
//!
//! [`SpinCompat::V4_0`] answers as Spin 4.0.x does where that differs from later Spin: a
//! `query` that matches no rows, which Spin 4.0.x never answers, traps instead of returning.
//!
//! Types, as Spin converts them: parameters `boolean`, `int8`…`int64`, `floating32/64`,
//! `str`, `binary`, `jsonb`, `array-int32/int64/str` and `db-null`; result columns of type
//! `bool`, `int2/4/8`, `float4/8`, `text`/`varchar`/`bpchar`, `bytea`, `jsonb`, `int4[]`,
//! `int8[]` and `text[]`. Other parameter kinds are `bad-parameter`; other column types come
//! back as `unsupported` (the server's binary encoding) with data type `other(NAME)`.
//!
//! The parts: `options` and `compat` (how the pool behaves, which Spin to answer as), `pool`
//! (the one allowed URL and its pool), `handle` (the guest's [`Connection`] resource),
//! `transactions` (following the guest's transaction), `statements` (running a statement),
//! `values` and `errors` (what crosses the interface), and here the interface itself, reached
//! through [`PostgresView`].

mod compat;
mod errors;
pub(crate) mod handle;
mod options;
mod pool;
mod statements;
mod transactions;
pub mod v4_2;
mod values;

pub use crate::bindings::spin::postgres::postgres as wit;
pub use compat::{SpinCompat, SpinCompatError};
pub use handle::Connection;
pub use options::PoolOptions;
pub use pool::Postgres;
pub use transactions::{Effect, classify};

use crate::host_calls::HostCalls;
use std::sync::Arc;
use wasmtime::component::{Resource, ResourceTable};
use wit::{ParameterValue, RowSet};

/// One instance's `spin:postgres` state: the pool its `open` lends connections of, and the
/// counter its calls are counted in.
#[derive(Debug)]
pub struct PostgresCtx {
    postgres: Arc<Postgres>,
    calls: Arc<HostCalls>,
}

impl PostgresCtx {
    pub fn new(postgres: Arc<Postgres>, calls: Arc<HostCalls>) -> Self {
        Self { postgres, calls }
    }

    /// The one database this instance may open.
    pub fn postgres(&self) -> &Arc<Postgres> {
        &self.postgres
    }
}

/// What `spin:postgres` needs of a store: its [`PostgresCtx`] and the resource table that
/// holds the guest's connections.
#[derive(Debug)]
pub struct PostgresCtxView<'a> {
    pub ctx: &'a mut PostgresCtx,
    pub table: &'a mut ResourceTable,
}

/// A store whose guest may import `spin:postgres`.
pub trait PostgresView: Send {
    fn postgres(&mut self) -> PostgresCtxView<'_>;
}

// The linker hands the host `&mut T` (`HasSelf`).
impl<T: PostgresView + ?Sized> PostgresView for &mut T {
    fn postgres(&mut self) -> PostgresCtxView<'_> {
        T::postgres(self)
    }
}

impl<T: PostgresView> wit::Host for T {}

impl<T: PostgresView> wit::HostConnection for T {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, wit::Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_open();
        let connection = match ctx.postgres.open(&address).await {
            Ok(connection) => connection,
            Err(err) => return Ok(Err(err.into())),
        };
        // A full resource table is the guest holding too many handles: Spin's answer.
        Ok(table
            .push(connection)
            .map_err(|_| wit::Error::ConnectionFailed("too many connections".to_owned())))
    }

    async fn query(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, wit::Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_statement();
        let connection = table.get_mut(&connection)?;
        match connection.query(&statement, params).await {
            Ok(rows) => {
                connection.compat.check_query(&statement, rows.rows.len())?;
                Ok(Ok(rows))
            }
            Err(err) => Ok(Err(err.into())),
        }
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, wit::Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_statement();
        let connection = table.get_mut(&connection)?;
        Ok(connection
            .execute(&statement, params)
            .await
            .map_err(wit::Error::from))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.postgres().table.delete(connection)?;
        Ok(())
    }
}
