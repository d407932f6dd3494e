//! The host side of outgoing `wasi:http`: there is none.

use wasmtime_wasi_http::WasiHttpHooks;

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
