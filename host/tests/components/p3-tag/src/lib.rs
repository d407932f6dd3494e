//! A WASIp3 middleware (spin-sdk 7, `http-middleware`): imports and exports
//! `wasi:http/handler@0.3.0`, as Spin 4.1's `dependencies.middleware` components do.
//!
//! It appends its tag (`a` or `b`, chosen by a cargo feature) to the request's `x-chain` header
//! before passing it on, and to the response's `x-chain-out` header on the way back; so a chain
//! run outermost first shows `x-chain: a,b` at the app and `x-chain-out: b,a` at the client. A
//! request for `/deny-<tag>` gets 401 from this middleware, and goes no further.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[cfg(feature = "a")]
const TAG: &str = "a";
#[cfg(feature = "b")]
const TAG: &str = "b";

fn appended(existing: Option<&http::HeaderValue>) -> http::HeaderValue {
    let text = match existing.and_then(|v| v.to_str().ok()) {
        Some(before) if !before.is_empty() => format!("{before},{TAG}"),
        _ => TAG.to_owned(),
    };
    http::HeaderValue::from_str(&text).expect("tags are header-safe")
}

#[http_service]
async fn handle(mut request: Request) -> impl IntoResponse {
    if request.uri().path() == format!("/deny-{TAG}") {
        let denied = http::Response::builder()
            .status(401)
            .header("x-denied-by", TAG)
            .body(String::new())
            .expect("a valid response");
        return denied.into_response();
    }
    let chain = appended(request.headers().get("x-chain"));
    request.headers_mut().insert("x-chain", chain);
    let mut response = spin_sdk::http::next(request).await?;
    let out = appended(response.headers().get("x-chain-out"));
    response.headers_mut().insert("x-chain-out", out);
    response.into_response()
}
