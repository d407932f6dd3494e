//! What each guest instance's store holds: WASI and wasi-http contexts, the resource table,
//! and shared handles to the databases and variables.

use crate::postgres::Postgres;
use crate::sqlite::Database;
use crate::variables::Variables;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Per-instance host state.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_hooks: NoOutgoingHttp,
    pub(crate) table: ResourceTable,
    pub(crate) database: Arc<Database>,
    pub(crate) postgres: Arc<Postgres>,
    pub(crate) variables: Arc<Variables>,
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
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            http_hooks: NoOutgoingHttp,
            table: ResourceTable::new(),
            database,
            postgres,
            variables,
        }
    }
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("database", &self.database.location())
            .field("postgres", &self.postgres)
            .field("variables", &self.variables)
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

/// Refuses every outgoing HTTP request: a session service has no business calling out, and a
/// guest that tries gets an error instead of network access.
#[derive(Debug, Default)]
pub struct NoOutgoingHttp;

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> ResponseFuture {
        Box::new(async {
            Err(wasmtime_wasi_http::Error::InternalError(Some(
                "outgoing HTTP requests are not allowed".to_owned(),
            )))
        })
    }
}
