//! chat-app: the seed's example app as a Spin component that uses sessions through the
//! `zoe:session/sessions` import instead of a Python `session_manager`.
//!
//! The import is satisfied either by Spin (`[component.chat.dependencies]` in `spin.toml`) or
//! by composing this component with `zoe_session.wasm` (wac). Either way the session engine
//! runs in its own component instance; this code only ever sees tokens it was sent.
//!
//! - [`auth`]: the seed's `require_session` / `optional_session` / `admin_user` /
//!   `developer_user` / `user_with_permission`;
//! - [`routes`]: one handler per route; the table is in [`handle`];
//! - [`error`]: 401/403/… JSON bodies.

mod auth;
mod bindings;
mod error;
mod routes;

use error::AppError;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// A route's handler: the request in, a JSON body or a refusal out.
type Handler = fn(&Request) -> Result<serde_json::Value, AppError>;

/// Every route in one place: path, accepted methods, handler.
fn route(req: &Request) -> Result<serde_json::Value, AppError> {
    let method = req.method();
    let (allowed, handler): (&[Method], Handler) = match req.path() {
        "/login" => (&[Method::Post], routes::login),
        "/logout" => (&[Method::Post], routes::logout),
        "/api/chat" => (&[Method::Post, Method::Get], routes::chat),
        "/public/info" => (&[Method::Get], routes::public_info),
        "/admin" => (&[Method::Get], routes::admin),
        "/developer" => (&[Method::Get], routes::developer),
        "/write" => (&[Method::Get], routes::write),
        "/profile" => (&[Method::Get], routes::profile),
        _ => return Err(AppError::NotFound),
    };
    if !allowed.contains(method) {
        return Err(AppError::MethodNotAllowed(if allowed.len() == 2 {
            "GET, POST"
        } else if allowed[0] == Method::Post {
            "POST"
        } else {
            "GET"
        }));
    }
    handler(req)
}

#[http_component]
fn handle(req: Request) -> Response {
    match route(&req) {
        Ok(body) => Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(body.to_string())
            .build(),
        Err(err) => err.into_response(),
    }
}
