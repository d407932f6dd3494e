//! What each guest instance's store holds: one context per imported interface, composed.
//!
//! Each interface reaches its own part through its own view, as wasmtime-wasi's `WasiView`
//! does: WASI through [`WasiView`], wasi-http through [`WasiHttpView`], `spin:sqlite` through
//! [`SqliteView`], `spin:postgres` through [`PostgresView`], `fermyon:spin/key-value` through
//! [`KeyValueView`] and `fermyon:spin/variables` through [`VariablesView`]. The resource table is the one thing they share, as WASI and
//! wasi-http share it.

use crate::host_calls::HostCalls;
use crate::key_value::{KeyValueCtx, KeyValueCtxView, KeyValueStores, KeyValueView};
use crate::outgoing_http::NoOutgoingHttp;
use crate::postgres::{Postgres, PostgresCtx, PostgresCtxView, PostgresView};
use crate::sqlite::{Database, SqliteCtx, SqliteCtxView, SqliteView};
use crate::variables::{Variables, VariablesCtx, VariablesView};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Per-instance host state.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: NoOutgoingHttp,
    table: ResourceTable,
    sqlite: SqliteCtx,
    postgres: PostgresCtx,
    variables: VariablesCtx,
    key_value: KeyValueCtx,
    calls: Arc<HostCalls>,
}

impl HostState {
    /// State for one instance: `wasi` as the guest should see it, the SQLite `database`, the
    /// Postgres pool (which may refuse every `open` when no URL is configured) and the
    /// variables. Nothing here connects to a database.
    pub fn new(
        wasi: WasiCtx,
        database: Arc<Database>,
        postgres: Arc<Postgres>,
        variables: Arc<Variables>,
    ) -> Self {
        Self::counted(wasi, database, postgres, variables, Arc::default())
    }

    /// Like [`HostState::new`], counting the guest's host calls in `calls` (whose stderr
    /// stream, if it is a [`CountingStderr`](crate::host_calls::CountingStderr) on the same
    /// counter, counts its writes).
    pub fn counted(
        wasi: WasiCtx,
        database: Arc<Database>,
        postgres: Arc<Postgres>,
        variables: Arc<Variables>,
        calls: Arc<HostCalls>,
    ) -> Self {
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            http_hooks: NoOutgoingHttp,
            table: ResourceTable::new(),
            sqlite: SqliteCtx::new(database, calls.clone()),
            postgres: PostgresCtx::new(postgres, calls.clone()),
            variables: VariablesCtx::new(variables, calls.clone()),
            key_value: KeyValueCtx::new(Arc::new(KeyValueStores::none()), calls.clone()),
            calls,
        }
    }

    /// The key-value `stores` this instance's `fermyon:spin/key-value` opens (without them,
    /// every `open` is `no-such-store`).
    #[must_use]
    pub fn with_key_value(mut self, stores: Arc<KeyValueStores>) -> Self {
        self.key_value = KeyValueCtx::new(stores, self.calls.clone());
        self
    }

    /// The counter of this instance's host calls.
    pub(crate) fn calls(&self) -> &Arc<HostCalls> {
        &self.calls
    }
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("database", &self.sqlite.database().location())
            .field("postgres", self.postgres.postgres())
            .field("variables", self.variables.variables())
            .finish_non_exhaustive()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.http_hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl SqliteView for HostState {
    fn sqlite(&mut self) -> SqliteCtxView<'_> {
        SqliteCtxView {
            ctx: &mut self.sqlite,
            table: &mut self.table,
        }
    }
}

impl PostgresView for HostState {
    fn postgres(&mut self) -> PostgresCtxView<'_> {
        PostgresCtxView {
            ctx: &mut self.postgres,
            table: &mut self.table,
        }
    }
}

impl KeyValueView for HostState {
    fn key_value(&mut self) -> KeyValueCtxView<'_> {
        KeyValueCtxView {
            ctx: &mut self.key_value,
            table: &mut self.table,
        }
    }
}

impl VariablesView for HostState {
    fn variables(&mut self) -> &mut VariablesCtx {
        &mut self.variables
    }
}
