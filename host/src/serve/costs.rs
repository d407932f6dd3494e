//! Counting what a request costs its host (`serve --count-host-calls`, issue 18).

use crate::state::{HostCallCounts, HostCalls};
use http::Response;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// One request's host calls and response body writes (see [`super::ServeOptions::count_host_calls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCosts {
    pub status: u16,
    pub calls: HostCallCounts,
    /// Data frames of the response body: one per guest write that reached the host.
    pub body_writes: u32,
    pub body_bytes: usize,
}

/// Receives a [`RequestCosts`] per request, when the response body is done with (sent, or
/// abandoned by the client).
#[derive(Clone)]
pub struct HostCallSink(Arc<dyn Fn(RequestCosts) + Send + Sync>);

impl HostCallSink {
    /// A sink calling `report` for every request.
    pub fn new(report: impl Fn(RequestCosts) + Send + Sync + 'static) -> Self {
        Self(Arc::new(report))
    }

    /// A sink writing one JSON line per request on stderr (`"message":"host calls"`; no path,
    /// which may hold a token).
    pub fn log() -> Self {
        Self::new(|costs| {
            let calls = costs.calls;
            super::host_line(
                "INFO",
                "host calls",
                serde_json::json!({
                    "source": "host",
                    "status": costs.status,
                    "variable_reads": calls.variable_reads,
                    "sqlite_opens": calls.sqlite_opens,
                    "sqlite_statements": calls.sqlite_statements,
                    "postgres_opens": calls.postgres_opens,
                    "postgres_statements": calls.postgres_statements,
                    "stderr_writes": calls.stderr_writes,
                    "request_body_reads": calls.request_body_reads,
                    "body_writes": costs.body_writes,
                    "body_bytes": costs.body_bytes,
                }),
            );
        })
    }
}

impl std::fmt::Debug for HostCallSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostCallSink")
    }
}

/// Counts the writes (frames) and bytes of `response`'s body; when the body is done with,
/// reports them with the guest's host calls to `sink`.
pub(super) fn count_body_writes(
    response: Response<HyperOutgoingBody>,
    calls: Arc<HostCalls>,
    sink: HostCallSink,
) -> Response<HyperOutgoingBody> {
    let mut report = HostCallReport {
        calls,
        sink,
        status: response.status().as_u16(),
        body_writes: 0,
        body_bytes: 0,
    };
    response.map(|body| {
        body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                report.wrote(data.len());
            }
            frame
        })
        .boxed_unsync()
    })
}

/// One request's host calls, reported when the response body is dropped (sent or abandoned).
struct HostCallReport {
    calls: Arc<HostCalls>,
    sink: HostCallSink,
    status: u16,
    body_writes: u32,
    body_bytes: usize,
}

impl HostCallReport {
    // A method, so that the closure owns the whole report (and its `Drop`), not copies of
    // its counters.
    fn wrote(&mut self, bytes: usize) {
        self.body_writes += 1;
        self.body_bytes += bytes;
    }
}

impl Drop for HostCallReport {
    fn drop(&mut self) {
        (self.sink.0)(RequestCosts {
            status: self.status,
            calls: self.calls.take(),
            body_writes: self.body_writes,
            body_bytes: self.body_bytes,
        });
    }
}

/// A request body that counts the guest's reads of it in [`HostCalls`]: every poll that
/// answers (a frame, or the end), which happens only once the guest has opened the body
/// stream and reads from it.
pub(super) struct CountedBody<B> {
    inner: B,
    calls: Arc<HostCalls>,
}

impl<B> CountedBody<B> {
    pub(super) fn new(inner: B, calls: Arc<HostCalls>) -> Self {
        Self { inner, calls }
    }
}

impl<B: Body + Unpin> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_ready() {
            self.calls.request_body_read();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
