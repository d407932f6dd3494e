//! The floor of a fresh instance under a host: a spin-sdk component that reads nothing and
//! answers `{"status":"ok"}` and a newline (16 bytes), as `GET /health` does with more work
//! behind it. `zoe-session-bench --fresh` runs it beside zoe-session in the same host mode.

use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle(_request: IncomingRequest) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body("{\"status\":\"ok\"}\n")
        .build()
}
