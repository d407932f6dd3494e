//! The `wasi:http/incoming-handler` export (spin-sdk's `#[http_component]`): reads the clock
//! once, reads the request (headers, then the body up to the cap; a GET's or HEAD's body is
//! never opened), hands it to [`super::handle`] and writes the reply. Nothing here decides
//! anything.

use super::{MAX_BODY_BYTES, Reply, Request};
use futures::StreamExt as _;
use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;
use std::time::Instant;

#[http_component]
async fn handle_http(incoming: IncomingRequest) -> Response {
    let started = Instant::now();
    let now = crate::component::now_ms();
    let request = read(incoming).await;
    let reply = super::handle(&request, now, &crate::component::config(), started);
    into_response(reply)
}

async fn read(incoming: IncomingRequest) -> Request {
    let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    let (path, query) = path_with_query
        .split_once('?')
        .map_or((path_with_query.as_str(), ""), |(p, q)| (p, q));
    let headers: Vec<(String, String)> = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(mut name, value)| {
            // Both arrive owned and, from Spin and our host, already lowercase and UTF-8:
            // kept in place rather than copied (header handling was a good part of a fresh
            // `/health`'s guest work, BENCHMARKS.md).
            name.make_ascii_lowercase();
            let value = String::from_utf8(value)
                .unwrap_or_else(|bad| String::from_utf8_lossy(bad.as_bytes()).into_owned());
            (name, value)
        })
        .collect();
    let mut request = Request {
        method: incoming.method().to_string(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Vec::new(),
        body_too_large: false,
    };
    let declared = request
        .header("content-length")
        .and_then(|len| len.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        request.body_too_large = true;
        return request;
    }
    // No route reads the body of a GET or HEAD (its declared size is still checked above),
    // so its stream is never opened: on a fresh instance the stream, its pollable and its
    // reads were host calls that `/health` and a validate paid for nothing.
    if matches!(request.method.as_str(), "GET" | "HEAD") {
        return request;
    }
    let mut stream = incoming.into_body_stream();
    while let Some(chunk) = stream.next().await {
        // A body that breaks off mid-way is treated as empty; the handler then reports
        // what it needed.
        let Ok(chunk) = chunk else {
            request.body.clear();
            break;
        };
        if request.body.len() + chunk.len() > MAX_BODY_BYTES {
            request.body.clear();
            request.body_too_large = true;
            break;
        }
        request.body.extend_from_slice(&chunk);
    }
    request
}

fn into_response(reply: Reply) -> Response {
    Response::builder()
        .status(reply.status)
        .headers(reply.headers)
        .body(reply.body)
        .build()
}
