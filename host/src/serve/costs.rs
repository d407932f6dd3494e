//! Counting what a request costs its host (`serve --count-host-calls`, issue 18).

use crate::state::{HostCallCounts, HostCalls};
use http::Response;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// Wasmtime fuel the guest used (instantiation included, for a fresh instance), when the
    /// runtime meters fuel ([`crate::Metering::Fuel`]); about one unit per Wasm operator.
    pub guest_fuel: Option<u64>,
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
                    "guest_fuel": costs.guest_fuel,
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

/// Counts the writes (frames) and bytes of `response`'s body for `report`, which goes to its
/// sink once the body is done with and the guest task has let go of it too.
pub(super) fn count_body_writes(
    response: Response<HyperOutgoingBody>,
    report: Arc<PendingReport>,
) -> Response<HyperOutgoingBody> {
    report
        .status
        .store(response.status().as_u16(), Ordering::Relaxed);
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

/// One request's costs, reported when the last of its holders lets go: the response body
/// (dropped once sent, or abandoned) and the guest task (which records the fuel the handler
/// used, and may return after the body is gone). A request that never answered is not reported.
pub(super) struct PendingReport {
    calls: Arc<HostCalls>,
    sink: HostCallSink,
    status: AtomicU16,
    body_writes: AtomicU32,
    body_bytes: AtomicUsize,
    /// `NO_FUEL` until the guest task records it.
    guest_fuel: AtomicU64,
    /// The host calls, taken when the handler returned: a reused instance may be serving the
    /// next request by the time the last holder lets go.
    calls_when_done: Mutex<Option<HostCallCounts>>,
}

const NO_FUEL: u64 = u64::MAX;

impl PendingReport {
    pub(super) fn new(calls: Arc<HostCalls>, sink: HostCallSink) -> Self {
        Self {
            calls,
            sink,
            status: AtomicU16::new(0),
            body_writes: AtomicU32::new(0),
            body_bytes: AtomicUsize::new(0),
            guest_fuel: AtomicU64::new(NO_FUEL),
            calls_when_done: Mutex::new(None),
        }
    }

    pub(super) fn calls(&self) -> &Arc<HostCalls> {
        &self.calls
    }

    fn wrote(&self, bytes: usize) {
        self.body_writes.fetch_add(1, Ordering::Relaxed);
        self.body_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records, as the handler returns and before its instance may serve another request,
    /// the host calls it made and the fuel it used (when metered).
    pub(super) fn guest_done(&self, fuel: Option<u64>) {
        if let Some(fuel) = fuel {
            self.guest_fuel.store(fuel, Ordering::Relaxed);
        }
        let calls = self.calls.take();
        *self
            .calls_when_done
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(calls);
    }
}

impl Drop for PendingReport {
    fn drop(&mut self) {
        let status = *self.status.get_mut();
        if status == 0 {
            return;
        }
        let fuel = *self.guest_fuel.get_mut();
        let done = self
            .calls_when_done
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        (self.sink.0)(RequestCosts {
            status,
            calls: done.unwrap_or_else(|| self.calls.take()),
            body_writes: *self.body_writes.get_mut(),
            body_bytes: *self.body_bytes.get_mut(),
            guest_fuel: (fuel != NO_FUEL).then_some(fuel),
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
