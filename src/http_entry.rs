//! The `wasi:http/incoming-handler` export (spin-sdk's `#[http_component]`): reads the clock
//! once, reads the request (headers, then the body up to the cap; a GET's or HEAD's body is
//! never opened), hands it to [`crate::http::handle`] and writes the reply ([`respond`]). Nothing
//! here decides anything.

use crate::config::LogLevel;
use crate::http::{ApiError, MAX_BODY_BYTES, Reply, Request};
use futures::StreamExt as _;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;
use std::time::Instant;

#[http_component]
async fn handle_http(incoming: IncomingRequest, out: ResponseOutparam) {
    let started = Instant::now();
    let now = crate::component::now_ms();
    let request = read(incoming).await;
    let reply = crate::http::handle(
        &request,
        now,
        &crate::component::config(),
        crate::component::db,
        started,
    );
    respond(out, reply, request.method == "HEAD", now);
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
            // `/health`'s guest work, docs/benchmarks-history.md).
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
        Err(err) => {
            crate::http::log::emit(
                LogLevel::Debug,
                LogLevel::Error,
                now,
                "response could not be built",
                serde_json::json!({"cause": err, "status": reply.status}),
            );
            let mut fallback = ApiError::Internal(err).into_reply();
            if head {
                fallback.body.clear();
            }
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
    let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(reply.headers.len() + 1);
    for (name, value) in &reply.headers {
        let name = name.to_ascii_lowercase();
        // The length is the body's, set below; one set by a handler would only disagree.
        if name == "content-length" {
            continue;
        }
        match entries.iter_mut().find(|(seen, _)| *seen == name) {
            Some(entry) => entry.1 = value.clone().into_bytes(),
            None => entries.push((name, value.clone().into_bytes())),
        }
    }
    // RFC 9110 forbids a length on 1xx and 204 answers, and one on a 304 must be the GET's.
    if !head && !matches!(reply.status, 100..=199 | 204 | 304) {
        entries.push((
            "content-length".to_owned(),
            reply.body.len().to_string().into_bytes(),
        ));
    }
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
