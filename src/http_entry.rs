//! The `wasi:http/incoming-handler` export (spin-sdk's `#[http_component]`): reads the clock
//! once, reads the request (headers, then the body up to the cap; a GET's or HEAD's body is
//! never opened), hands it to [`crate::http::handle`] and writes the reply ([`respond`]). Nothing
//! here decides anything.

use crate::http::{Reply, Request};
use futures::StreamExt as _;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;
use std::time::Instant;

#[http_component]
async fn handle_http(incoming: IncomingRequest, out: ResponseOutparam) {
    let started = Instant::now();
    let now = crate::instance::now_ms();
    let request = read(incoming).await;
    let reply = crate::http::handle(
        &request,
        now,
        &crate::settings::config(),
        crate::instance::db,
        started,
    );
    respond(out, reply, request.method == "HEAD", now);
}

async fn read(incoming: IncomingRequest) -> Request {
    let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    let mut request = Request::from_head(
        incoming.method().to_string(),
        &path_with_query,
        incoming.headers().entries(),
    );
    if !request.wants_body() {
        return request;
    }
    let mut stream = incoming.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            request.body_broken();
            break;
        };
        if !request.push_body(&chunk) {
            break;
        }
    }
    request
}

/// Writes `reply` whole, with its `Content-Length`, and finishes its body **before** handing
/// the response to the host, so that the host has all of it the moment it has the head.
///
/// spin-sdk's own path (a handler returning a `Response`: `set_with_body`) sets the outparam
/// first, then writes the body, then finishes it. Spin gives the head to hyper as soon as it
/// is set, in the connection's task, while the guest goes on in a task of its own; whenever
/// hyper polls the body in between, the head, the chunk and the final `0\r\n\r\n` reach the
/// socket in separate writes, and without `TCP_NODELAY` (Spin sets none) each write after the
/// first waits ~40 ms for the client's delayed ACK (issue 28; docs/benchmarks-history.md,
/// 2026-12-06).
/// Written this way round there is no such window, and a known length needs no chunk framing.
///
/// Before the head is handed over, only what the stream takes without waiting is written, as
/// nothing drains it until then: every body we make, under Wasmtime (up to 1 MiB per write,
/// two writes queued). A larger body is streamed after the head, as spin-sdk does.
///
/// A HEAD answer (`head`) carries no `Content-Length`: its body is empty, and 0 would misstate
/// the GET's.
fn respond(out: ResponseOutparam, reply: Reply, head: bool, now: u64) {
    let (reply, (response, body)) = match outgoing(&reply, head) {
        Ok(made) => (reply, made),
        Err(cause) => {
            let fallback = crate::http::unsendable(&reply, &cause, head, now);
            match outgoing(&fallback, head) {
                Ok(made) => (fallback, made),
                // With no response set, the host answers 500 itself.
                Err(_) => return,
            }
        }
    };
    let Ok(stream) = body.write() else {
        return;
    };
    let mut unsent = Some((out, response));
    let mut rest = reply.body.as_slice();
    while !rest.is_empty() {
        match stream.check_write() {
            Ok(0) => match unsent.take() {
                // Nothing drains the stream until the host has the head.
                Some((out, response)) => out.set(response),
                None => stream.subscribe().block(),
            },
            Ok(permitted) => {
                let n = rest
                    .len()
                    .min(usize::try_from(permitted).unwrap_or(usize::MAX));
                if stream.write(&rest[..n]).is_err() {
                    return;
                }
                rest = &rest[n..];
            }
            // The client is gone; an unfinished body tells the host so.
            Err(_) => return,
        }
    }
    drop(stream);
    let finished = OutgoingBody::finish(body, None);
    if let Some((out, response)) = unsent
        && finished.is_ok()
    {
        out.set(response);
    }
}

/// The response head of `reply` (its headers, one value per name as before: the last one set
/// wins) and its body, not yet written.
///
/// # Errors
///
/// A header name or value that `wasi:http` refuses, or a status out of range, described.
fn outgoing(reply: &Reply, head: bool) -> Result<(OutgoingResponse, OutgoingBody), String> {
    let entries = reply.wire_headers(head);
    let headers =
        Fields::from_list(&entries).map_err(|err| format!("a response header: {err:?}"))?;
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(reply.status)
        .map_err(|()| format!("status {} out of range", reply.status))?;
    let body = response
        .body()
        .map_err(|()| "the response body was already taken".to_owned())?;
    Ok((response, body))
}
