//! The `wasi:http/handler@0.3.0` export: reads the clock once, loads the instance's settings
//! (awaited, the first time), reads the request (headers, then the body up to the cap; a GET's
//! or HEAD's body is never opened), reads ahead the key-value keys the core names for it
//! (`crate::read_ahead`), runs [`crate::http::handle`], which is synchronous and so
//! keeps the instance's connection for its whole run, and hands back the reply ([`respond`]).
//! Nothing here decides anything, and nothing of a request outlives its call: up to 16
//! requests interleave on one instance at the awaits here, and each has its own `Request`,
//! clock reading and `Reply` on its own future's stack.
//!
//! spin-sdk's `#[http_service]` is not used: its response path writes the body from a task
//! spawned after the response is returned (see [`respond`] for why that matters). The export
//! is spin-sdk's own (`wasip3::http::service::export!`), with its types.

use crate::http::{Reply, Request};
use spin_sdk::wasip3::http::types::{ErrorCode, Fields, Method, Request as WasiRequest, Response};
use spin_sdk::wasip3::{wit_future, wit_stream};
use spin_sdk::wit_bindgen::{self, StreamResult};
use std::time::Instant;

struct Handler;

spin_sdk::wasip3::http::service::export!(Handler);

impl spin_sdk::wasip3::exports::http::handler::Guest for Handler {
    async fn handle(incoming: WasiRequest) -> Result<Response, ErrorCode> {
        let started = Instant::now();
        let now = crate::instance::now_ms();
        let config = crate::settings::load().await;
        let request = read(incoming).await;
        let ahead = crate::read_ahead::fetch(
            &config,
            crate::http::key_value_reads_ahead(&request, &config),
        )
        .await;
        let reply = crate::spin_key_value::with_reads_ahead(ahead, || {
            crate::http::handle(&request, now, &config, crate::instance::db, started)
        });
        respond(reply, request.method == "HEAD", now).await
    }
}

/// Bytes asked of the request's body stream per read.
const READ_CHUNK: usize = 16 * 1024;

async fn read(incoming: WasiRequest) -> Request {
    let path_with_query = incoming
        .get_path_with_query()
        .unwrap_or_else(|| "/".to_owned());
    let mut request = Request::from_head(
        method(incoming.get_method()),
        &path_with_query,
        incoming.get_headers().copy_all(),
    );
    if !request.wants_body() {
        return request;
    }
    // The future tells the host how the body was taken; dropping it unwritten says "fine".
    let (_taken, taken_rx) = wit_future::new(|| Ok(()));
    let (mut stream, trailers) = WasiRequest::consume_body(incoming, taken_rx);
    loop {
        let (result, chunk) = stream.read(Vec::with_capacity(READ_CHUNK)).await;
        match result {
            StreamResult::Complete(_) => {
                if !request.push_body(&chunk) {
                    return request;
                }
            }
            StreamResult::Dropped | StreamResult::Cancelled => break,
        }
    }
    // A body that broke off mid-way ends its stream and fails its trailers: it counts as
    // empty, and the handler reports what it needed.
    if trailers.await.is_err() {
        request.body_broken();
    }
    request
}

fn method(method: Method) -> String {
    match method {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other,
    }
}

/// The response for `reply`, with its `Content-Length`, whose whole body is offered to the
/// host before the head is returned.
///
/// A `wasi:http@0.3.0` body is a stream the guest writes while the host reads, and a stream
/// write completes only when the host takes it. spin-sdk writes the body from a task spawned as
/// the response is returned, so nothing is on offer when the host first looks. Here the write
/// of the whole body is issued before the response is returned; the spawned task only waits
/// for the host to take it, then ends the body.
///
/// Whether head and body then leave in one socket write is the host's doing, not the guest's:
/// wasmtime-wasi-http 48 (`serve`, and Spin 4.1 on the same crate) hands the head to hyper and
/// copies the guest's stream in the store's own task, so hyper may flush the head alone first.
/// Without `TCP_NODELAY` (Spin sets none) the body then waits for the client's delayed ACK:
/// under `serve --no-tcp-nodelay`, 1–16 of 40 keep-alive validates or `/health`s took 40–56 ms
/// in one run (none with `TCP_NODELAY`; none for the WASIp2 build, which finishes its body
/// before the head is set). No stream write the guest can make avoids it (docs/operations.md,
/// "Run it on Spin").
///
/// A HEAD answer (`head`) carries no `Content-Length` and no body.
async fn respond(reply: Reply, head: bool, now: u64) -> Result<Response, ErrorCode> {
    let (reply, headers) = match wire_headers(&reply, head) {
        Ok(headers) => (reply, headers),
        Err(cause) => {
            let fallback = crate::http::unsendable(&reply, &cause, head, now);
            let headers = wire_headers(&fallback, head)
                .map_err(|cause| ErrorCode::InternalError(Some(cause)))?;
            (fallback, headers)
        }
    };
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let body = if reply.body.is_empty() || head {
        None
    } else {
        let (mut tx, rx) = wit_stream::new::<u8>();
        let mut write = Box::pin(async move {
            // What the host does not take (the client left) is of no use to anyone.
            drop(tx.write_all(reply.body).await);
            drop(tx);
            drop(trailers_tx.write(Ok(None)).await);
        });
        // The first poll issues the stream write with the whole body and returns at once (the
        // host is not reading yet); the spawned task keeps the write alive until it is taken.
        if futures::poll!(write.as_mut()).is_pending() {
            wit_bindgen::spawn(write);
        }
        return response(headers, Some(rx), trailers_rx, reply.status);
    };
    drop(trailers_tx);
    response(headers, body, trailers_rx, reply.status)
}

fn wire_headers(reply: &Reply, head: bool) -> Result<Fields, String> {
    Fields::from_list(&reply.wire_headers(head))
        .map_err(|err| format!("a response header: {err:?}"))
}

fn response(
    headers: Fields,
    body: Option<wit_bindgen::StreamReader<u8>>,
    trailers: wit_bindgen::FutureReader<
        Result<Option<spin_sdk::wasip3::http::types::Trailers>, ErrorCode>,
    >,
    status: u16,
) -> Result<Response, ErrorCode> {
    let (response, _sent) = Response::new(headers, body, trailers);
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some(format!("status {status} out of range"))))?;
    Ok(response)
}
