//! Running one request in a guest: an instance (reused or fresh), its deadline, and every way
//! that can fail, each with its own answer.

use super::costs::{CountedBody, HostCallSink, PendingReport, count_body_writes};
use super::errors::RequestError;
use super::metrics::Metrics;
use super::p3::P3Handler;
use super::pool::{Instance, InstancePool, Running};
use super::spin_request::{GuestRequest, ReadBody, present_like_spin, read_body};
use crate::api::SessionHost;
use crate::state::HostState;
use http::{Request, Response};
use hyper::body::Incoming;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The fuel a counted request starts with: more than any request can burn, so the guest never
/// runs out; what is left after the handler returns says what it used.
const FUEL_BUDGET: u64 = u64::MAX / 2;

/// The component's HTTP export, and how its instances are run.
pub(super) enum GuestKind {
    /// `wasi:http/incoming-handler@0.2.x`: an instance runs one request at a time, reused up to
    /// `requests_per_instance` times ([`Shared::run_guest`]).
    P2(ProxyPre<HostState>),
    /// `wasi:http/handler@0.3.0`: Spin 4.1's reuse, many requests at once ([`P3Handler`]).
    P3(P3Handler),
}

/// What every request a server handles shares: the host, the limits, the instances kept for
/// reuse and the counters.
pub(super) struct Shared {
    pub(super) host: SessionHost,
    pub(super) guest: GuestKind,
    pub(super) deadline_ticks: u64,
    pub(super) request_timeout: Duration,
    pub(super) permits: Arc<Semaphore>,
    pub(super) listen: SocketAddr,
    pub(super) connections: Arc<Semaphore>,
    pub(super) header_read_timeout: Duration,
    pub(super) body_read_timeout: Duration,
    pub(super) max_header_bytes: usize,
    pub(super) instances: Arc<InstancePool>,
    pub(super) count_host_calls: Option<HostCallSink>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) tcp_nodelay: bool,
}

impl Shared {
    pub(super) async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let started = std::time::Instant::now();
        let (path, method) = (req.uri().path().to_owned(), req.method().to_string());
        let response = match self.answer(req, peer).await {
            Ok(response) => response,
            Err(err) => err.response(),
        };
        self.metrics.record(
            &path,
            &method,
            response.status().as_u16(),
            started.elapsed(),
        );
        response
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>, RequestError> {
        let req = present_like_spin(req, peer, self.listen).map_err(RequestError::BadRequest)?;
        // The body first, before a permit or an instance is taken, so that a client can
        // only ever hold its own connection (see the module documentation).
        let req = read_body(req, self.body_read_timeout).await?;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RequestError::ShuttingDown)?;
        match &self.guest {
            GuestKind::P2(pre) => {
                self.run_guest(pre, req.map(ReadBody::in_memory), permit)
                    .await
            }
            // Whole, as Spin hands it: a body past the cap streams from the connection.
            GuestKind::P3(handler) => handler.run(req.map(ReadBody::streamed), permit).await,
        }
    }

    /// Runs `req` on an idle instance or a fresh one and waits for the response head. The
    /// guest future owns the store and `permit`, and drops both when the handler returns or at
    /// the deadline, whichever comes first. Only a handler that returned normally gives its
    /// instance back for another request.
    ///
    /// The guest runs in the connection's own task until its response head is set. Most
    /// handlers finish there, their short body already in the body's channel, so no second
    /// task is spawned and none has to be woken (thread wake-ups were a large part of the
    /// host's profile; docs/benchmarks-history.md has what this saved). A guest still running
    /// once its head is set — streaming a body larger than the channel holds, say — moves to a
    /// task of its own, so the head goes out while it writes. Either way it runs to its end, even when the
    /// client hangs up first ([`RunToEnd`]).
    async fn run_guest(
        &self,
        pre: &ProxyPre<HostState>,
        req: GuestRequest,
        permit: OwnedSemaphorePermit,
    ) -> Result<Response<HyperOutgoingBody>, RequestError> {
        let (mut store, reused) = match self.instances.take() {
            Some(instance) => (instance.store, Some((instance.proxy, instance.served))),
            None => (self.host.store(), None),
        };
        store.set_epoch_deadline(self.deadline_ticks);
        // A reused instance starts each request's count from zero, and a fresh fuel budget
        // when the runtime meters fuel (`set_fuel` fails when it does not).
        let counting = self.count_host_calls.clone().map(|sink| {
            let calls = store.data().calls().clone();
            calls.take();
            Arc::new(PendingReport::new(calls, sink))
        });
        let metered = counting.is_some() && store.set_fuel(FUEL_BUDGET).is_ok();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = match &counting {
            Some(report) => {
                let calls = report.calls().clone();
                store
                    .data_mut()
                    .http()
                    .new_incoming_request(Scheme::Http, req.map(|b| CountedBody::new(b, calls)))
            }
            None => store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req),
        }
        .map_err(RequestError::from_guest)?;
        let out = match &counting {
            // Counted as the guest sets its head, to see what its body holds at that moment.
            Some(report) => {
                let report = report.clone();
                store
                    .data_mut()
                    .http()
                    .new_response_outparam_from_callback(move |head| {
                        let _ = sender.send(head.map(|head| count_body_writes(head, report)));
                    })
            }
            None => store.data_mut().http().new_response_outparam(sender),
        }
        .map_err(RequestError::from_guest)?;
        let (pre, instances) = (pre.clone(), self.instances.clone());
        // The epoch deadline fires only while guest code runs; this one also covers a guest
        // waiting in the host (e.g. on a response body the client does not read).
        let limit = self.request_timeout + Duration::from_secs(1);
        let running = Running::start(&instances);
        let task_report = counting.clone();
        let mut guest = RunToEnd::new(async move {
            // Declared first, dropped last: the store goes before the permit and the count.
            let (_permit, _running, task_report) = (permit, running, task_report);
            let work = async {
                let (proxy, served) = match reused {
                    Some(reused) => reused,
                    None => {
                        let proxy = pre.instantiate_async(&mut store).await?;
                        instances.created.fetch_add(1, Ordering::Relaxed);
                        (proxy, 0)
                    }
                };
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await?;
                if let Some(report) = &task_report {
                    let fuel =
                        metered.then(|| FUEL_BUDGET - store.get_fuel().unwrap_or(FUEL_BUDGET));
                    report.guest_done(fuel);
                }
                instances.give_back(Instance {
                    store,
                    proxy,
                    served: served + 1,
                });
                Ok::<(), wasmtime::Error>(())
            };
            match tokio::time::timeout(limit, work).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(RequestError::from_guest(err)),
                Err(_) => Err(RequestError::Overran),
            }
        });
        let mut receiver = receiver;
        let head = tokio::select! {
            // The guest first: when both are ready it has finished, and runs no further.
            biased;
            // The handler has ended. A head it set goes out as Spin sends it, even when the
            // guest trapped after setting it (the body then ends early); with no head, how
            // the guest ended says why.
            ended = &mut guest => match receiver.try_recv() {
                Ok(head) => Ok(head),
                Err(_) => {
                    ended?;
                    Err(())
                }
            },
            head = &mut receiver => match head {
                Ok(head) => {
                    tokio::spawn(guest);
                    Ok(head)
                }
                // The guest dropped its response unset and runs on: how it ends says why.
                Err(_) => {
                    guest.await?;
                    Err(())
                }
            },
        };
        match head {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(RequestError::Guest(anyhow::anyhow!(
                "the guest answered with error code {code:?}"
            ))),
            Err(()) => Err(RequestError::Guest(anyhow::anyhow!(
                "the guest never set a response"
            ))),
        }
    }
}

/// A guest's run, carried on to its end in a task of its own when whoever awaits it stops
/// first: hyper drops a request's future when its client hangs up, and a handler stopped
/// half-way could have committed a change and not yet logged its audit event. Spin, too, runs
/// every handler to its end.
struct RunToEnd<F: Future + Send + 'static>(Option<Pin<Box<F>>>)
where
    F::Output: Send + 'static;

impl<F: Future + Send + 'static> RunToEnd<F>
where
    F::Output: Send + 'static,
{
    fn new(run: F) -> Self {
        Self(Some(Box::pin(run)))
    }
}

impl<F: Future + Send + 'static> Future for RunToEnd<F>
where
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let run = self.0.as_mut().expect("a finished run is not polled again");
        let output = std::task::ready!(run.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(output)
    }
}

impl<F: Future + Send + 'static> Drop for RunToEnd<F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        // Outside a runtime (its shutdown) there is nothing left to finish the run on.
        if let (Some(run), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(run);
        }
    }
}

/// Answers a connection over the limit with 503 and closes it, without reading its request.
pub(super) async fn refuse_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let body = zoe_session_wire::error_body(
        "too_many_connections",
        "the server has too many open connections; retry later",
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Drain what the client sent: closing with unread input would reset the connection
        // and could destroy the 503 before the client reads it.
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
