//! Counting what a request costs its host (`serve --count-host-calls`, issue 18), and what its
//! response body held when the guest handed the head over (issue 28).

use crate::host_calls::{HostCallCounts, HostCalls};
use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

type BodyError = <HyperOutgoingBody as Body>::Error;

/// One request's host calls and response body writes (see [`super::ServeOptions::count_host_calls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCosts {
    pub status: u16,
    pub calls: HostCallCounts,
    /// Data frames of the response body: one per guest write that reached the host.
    pub body_writes: u32,
    pub body_bytes: usize,
    /// What the body held when the guest set its response head.
    pub body_at_head: BodyAtHead,
    /// Wasmtime fuel the guest used (instantiation included, for a fresh instance), when the
    /// runtime meters fuel ([`crate::Metering::Fuel`]); about one unit per Wasm operator.
    pub guest_fuel: Option<u64>,
}

/// What a response body held at the moment its guest set the response head
/// (`response-outparam.set`). Spin gives the head to hyper then, while the guest goes on in a
/// task of its own: a body not yet finished at that moment may reach the socket in several
/// writes, and without `TCP_NODELAY` each write after the first waits for the client's delayed
/// ACK (issue 28). A body finished by then goes out with its head in one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyAtHead {
    /// Data frames the guest had already written.
    pub frames: u32,
    /// Whether the guest had finished the body (`outgoing-body.finish`).
    pub finished: bool,
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
            super::log::host_line(
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
                    "key_value_opens": calls.key_value_opens,
                    "key_value_reads": calls.key_value_reads,
                    "key_value_writes": calls.key_value_writes,
                    "stderr_writes": calls.stderr_writes,
                    "request_body_reads": calls.request_body_reads,
                    "body_writes": costs.body_writes,
                    "body_bytes": costs.body_bytes,
                    "body_frames_at_head": costs.body_at_head.frames,
                    "body_finished_at_head": costs.body_at_head.finished,
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

/// Called as the guest sets its response head: records what `response`'s body holds at this
/// moment ([`BodyAtHead`]), and counts the writes (frames) and bytes of the body for `report`,
/// which goes to its sink once the body is done with and the guest task has let go of it too.
///
/// The frames already written are taken out of the body to be looked at and handed to hyper
/// again, in order, before the rest; the body's length and end are told to hyper exactly as
/// before, so counting changes nothing on the wire.
pub(super) fn count_body_writes(
    response: Response<HyperOutgoingBody>,
    report: Arc<PendingReport>,
) -> Response<HyperOutgoingBody> {
    report
        .status
        .store(response.status().as_u16(), Ordering::Relaxed);
    response.map(|body| {
        let body = Replayed::taken_now(body);
        report
            .frames_at_head
            .store(body.data_frames(), Ordering::Relaxed);
        report
            .finished_at_head
            .store(body.rest.is_none(), Ordering::Relaxed);
        body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                report.wrote(data.len());
            }
            frame
        })
        .boxed_unsync()
    })
}

/// A response body whose frames ready so far were taken out, replayed before the rest.
struct Replayed {
    ready: VecDeque<Result<Frame<Bytes>, BodyError>>,
    /// `None` once the body has ended (or failed) among the frames taken.
    rest: Option<HyperOutgoingBody>,
}

impl Replayed {
    /// Takes every frame `body` has ready now, without waiting for any, up to its end.
    fn taken_now(mut body: HyperOutgoingBody) -> Self {
        let mut ready = VecDeque::new();
        // Unconstrained: tokio's cooperative budget must not make a ready frame look pending.
        let mut take = std::pin::pin!(tokio::task::coop::unconstrained(std::future::poll_fn(
            |cx| loop {
                match Pin::new(&mut body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => ready.push_back(Ok(frame)),
                    Poll::Ready(Some(Err(err))) => {
                        ready.push_back(Err(err));
                        return Poll::Ready(true);
                    }
                    Poll::Ready(None) => return Poll::Ready(true),
                    Poll::Pending => return Poll::Ready(false),
                }
            }
        )));
        let ended = matches!(
            take.as_mut().poll(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(true)
        );
        Self {
            ready,
            rest: (!ended).then_some(body),
        }
    }

    fn data_frames(&self) -> u32 {
        let frames = self
            .ready
            .iter()
            .filter(|frame| frame.as_ref().is_ok_and(Frame::is_data))
            .count();
        u32::try_from(frames).unwrap_or(u32::MAX)
    }
}

impl Body for Replayed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(frame) = self.ready.pop_front() {
            return Poll::Ready(Some(frame));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    // `is_end_stream` and `size_hint` stay the defaults of Wasmtime's body (not known to
    // end, no exact size), so hyper frames the response as it would without counting.
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
    frames_at_head: AtomicU32,
    finished_at_head: AtomicBool,
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
            frames_at_head: AtomicU32::new(0),
            finished_at_head: AtomicBool::new(false),
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
            body_at_head: BodyAtHead {
                frames: *self.frames_at_head.get_mut(),
                finished: *self.finished_at_head.get_mut(),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi_http::p2::body::{HostOutgoingBody, StreamContext};

    /// A response body as Wasmtime makes it for a guest, and the guest's end of it.
    fn guest_body() -> (HostOutgoingBody, HyperOutgoingBody) {
        HostOutgoingBody::new(StreamContext::Response, None, 1, 1 << 20)
    }

    fn write(guest: &mut HostOutgoingBody, data: &'static [u8]) {
        let mut stream = guest.take_output_stream().expect("not taken yet");
        stream.write(Bytes::from_static(data)).expect("room for it");
    }

    /// Every frame the body gives, to its end.
    fn drain(body: &mut Replayed) -> Vec<Bytes> {
        let mut frames = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        while let Poll::Ready(Some(frame)) = Pin::new(&mut *body).poll_frame(&mut cx) {
            frames.push(frame.expect("no error").into_data().expect("data"));
        }
        frames
    }

    #[test]
    fn a_body_finished_before_its_head_is_seen_whole_and_replayed_as_written() {
        let (mut guest, body) = guest_body();
        write(&mut guest, b"{\"status\":\"ok\"}\n");
        guest.finish(None).unwrap();
        let mut taken = Replayed::taken_now(body);
        assert_eq!((taken.data_frames(), taken.rest.is_none()), (1, true));
        assert_eq!(
            drain(&mut taken),
            [Bytes::from_static(b"{\"status\":\"ok\"}\n")]
        );
    }

    #[test]
    fn a_body_written_after_its_head_is_seen_unwritten_and_still_arrives() {
        // The positive control of the one above: spin-sdk's order, head first.
        let (mut guest, body) = guest_body();
        let mut taken = Replayed::taken_now(body);
        assert_eq!((taken.data_frames(), taken.rest.is_none()), (0, false));
        write(&mut guest, b"late");
        guest.finish(None).unwrap();
        assert_eq!(drain(&mut taken), [Bytes::from_static(b"late")]);
    }

    #[test]
    fn a_body_written_but_not_finished_is_seen_unfinished() {
        let (mut guest, body) = guest_body();
        write(&mut guest, b"part");
        let mut taken = Replayed::taken_now(body);
        assert_eq!((taken.data_frames(), taken.rest.is_none()), (1, false));
        guest.finish(None).unwrap();
        assert_eq!(drain(&mut taken), [Bytes::from_static(b"part")]);
    }
}
