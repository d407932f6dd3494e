//! WASIp3 components (`wasi:http/handler@0.3.0`), served as Spin 4.1 serves them: wasmtime-wasi-
//! http's `ProxyHandler`, which Spin's HTTP trigger uses too, with Spin's instance policy.
//!
//! An instance takes requests until it has taken [`ReusePolicy::max_requests`] (Spin's
//! `--max-instance-reuse-count`, default 128), at most [`ReusePolicy::max_concurrent`] at once
//! (`--max-instance-concurrent-reuse-count`, default 16), and is dropped once it has been idle
//! for [`ReusePolicy::idle_timeout`] (`--idle-instance-timeout`, default 1 s). When every
//! instance is busy or spent, a new one is made. As in Spin, an instance whose guest trapped
//! (or whose request overran its deadline) is dropped with every request still in it: nothing
//! goes to it again. A 500 or 503 the guest answers itself is an answer like any other.
//!
//! Each instance runs in a worker task of its own (the `ProxyHandler`'s), so a request's
//! handler runs to its end even when its client hangs up, as in Spin. The body is read before
//! a permit is taken up to the cap (see [`super`]); past it the guest gets the rest streamed
//! from the connection, as Spin streams it, so no body reaches it cut short. The deadline is the server's `--request-timeout`,
//! enforced twice as `ProxyHandler` asks: by the request's own expiry, and from outside the
//! instance's event loop, where a guest spinning in a loop cannot hold it up (the epoch deadline,
//! reset at each request's start, stops such a guest).
//!
//! Not counted here: `--count-host-calls` (a reused WASIp3 instance runs many requests at once
//! in one store, so a call cannot be charged to one request); the server refuses to start with
//! both.

use super::errors::RequestError;
use super::pool::{InstancePool, Running};
use crate::api::SessionHost;
use crate::runtime::EPOCH_TICK;
use crate::state::HostState;
use http::Response;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime::component::GuestTaskId;
use wasmtime::{PoolConcurrencyLimitError, Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, Proxy, ProxyHandler, ShouldAccept,
    TrapOrPanicError, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiBody, WasiHttpView as _};

/// Spin 4.1's default for `--max-instance-reuse-count` with a WASIp3 component.
pub const DEFAULT_MAX_INSTANCE_REUSE_COUNT: u32 = 128;
/// Spin 4.1's default for `--max-instance-concurrent-reuse-count` with a WASIp3 component.
pub const DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT: u32 = 16;
/// Spin 4.1's default for `--idle-instance-timeout`.
pub const DEFAULT_IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(1);

/// How WASIp3 instances are reused, with Spin's flag names and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    /// Requests an instance takes in all before it is dropped (`--max-instance-reuse-count`).
    pub max_requests: u32,
    /// Requests an instance runs at once (`--max-instance-concurrent-reuse-count`).
    pub max_concurrent: u32,
    /// How long an idle instance is kept for the next request (`--idle-instance-timeout`).
    pub idle_timeout: Duration,
}

impl Default for ReusePolicy {
    fn default() -> Self {
        Self {
            max_requests: DEFAULT_MAX_INSTANCE_REUSE_COUNT,
            max_concurrent: DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT,
            idle_timeout: DEFAULT_IDLE_INSTANCE_TIMEOUT,
        }
    }
}

/// Serves requests on instances of one WASIp3 component.
pub(super) struct P3Handler(ProxyHandler<Instances>);

/// What `ProxyHandler` asks of the server: how to make an instance, and its policy.
struct Instances {
    host: SessionHost,
    pre: ServicePre<HostState>,
    policy: ReusePolicy,
    request_timeout: Duration,
    deadline_ticks: u64,
    counters: Arc<InstancePool>,
}

impl P3Handler {
    pub(super) fn new(
        host: SessionHost,
        pre: ServicePre<HostState>,
        policy: ReusePolicy,
        request_timeout: Duration,
        deadline_ticks: u64,
        counters: Arc<InstancePool>,
    ) -> Self {
        Self(ProxyHandler::new(Instances {
            host,
            pre,
            policy: ReusePolicy {
                max_requests: policy.max_requests.max(1),
                max_concurrent: policy.max_concurrent.max(1),
                idle_timeout: policy.idle_timeout,
            },
            request_timeout,
            deadline_ticks,
            counters,
        }))
    }

    /// Runs `req` on an instance with room for it (or a new one) and waits for the response
    /// head; the body streams from the guest's worker as the guest writes it.
    pub(super) async fn run(
        &self,
        req: http::Request<WasiBody>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<Response<HyperOutgoingBody>, RequestError> {
        let running = Running::start(&self.0.state().counters);
        let started = Instant::now();
        let handled = self.0.handle((), req).await;
        drop((running, permit));
        // An instance dropped under a request that had run its time was stopped by the epoch
        // deadline (a guest that never yields): a timeout, 503, as for a WASIp2 guest. The
        // deadline is counted in whole ticks from when it was set, so it may fire up to one
        // tick early.
        let overran = started.elapsed() + EPOCH_TICK >= self.0.state().request_timeout;
        handled.map_err(|err| sort_out(err, overran))
    }
}

/// What a request that got no response ended with, as [`RequestError`] answers it.
fn sort_out(err: wasmtime::Error, overran: bool) -> RequestError {
    if err.is::<ExpirationError>() || (overran && err.is::<TrapOrPanicError>()) {
        return RequestError::Overran;
    }
    if let Some(failed) = err.downcast_ref::<InstantiationError<()>>() {
        if failed.error.is::<PoolConcurrencyLimitError>() {
            return RequestError::NoInstance(wasmtime::format_err!("{}", failed.error));
        }
        return RequestError::Guest(anyhow::anyhow!(
            "cannot instantiate the component: {:#}",
            failed.error
        ));
    }
    if err.is::<TrapOrPanicError>() {
        return RequestError::Guest(anyhow::anyhow!(
            "the instance running the request trapped and was dropped"
        ));
    }
    RequestError::from_guest(err)
}

impl HandlerState for Instances {
    type StoreData = HostState;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiry, Worker>> {
        let mut store = self.host.store();
        store.set_epoch_deadline(self.deadline_ticks);
        let service = self.pre.instantiate_async(&mut store).await?;
        self.counters.created.fetch_add(1, Ordering::Relaxed);
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: |state: &mut HostState| state.http(),
            expiration: Expiry {
                idle_timeout: self.policy.idle_timeout,
                // The second line of defence (see `WorkerState::on_request_start`): a little
                // after the request's own expiry, so that one answers first.
                busy_timeout: self.request_timeout + Duration::from_secs(1),
                timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            },
            state: Worker {
                policy: self.policy,
                request_timeout: self.request_timeout,
                deadline_ticks: self.deadline_ticks,
                counters: self.counters.clone(),
                taken: AtomicU32::new(0),
            },
        })
    }
}

/// One instance's policy, as its worker asks it.
struct Worker {
    policy: ReusePolicy,
    request_timeout: Duration,
    deadline_ticks: u64,
    counters: Arc<InstancePool>,
    /// Requests this instance has taken.
    taken: AtomicU32,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.policy.max_requests as usize {
            ShouldAccept::Never
        } else if concurrent >= self.policy.max_concurrent as usize {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        (): (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        // The epoch deadline is the store's, not the request's: each request's start moves it,
        // so a guest that spins stops at most one deadline after the latest request began.
        store.set_epoch_deadline(self.deadline_ticks);
        if self.taken.fetch_add(1, Ordering::Relaxed) > 0 {
            self.counters.reused.fetch_add(1, Ordering::Relaxed);
        }
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        // A worker whose task was dropped unfinished (the runtime shutting down) reports
        // "worker panicked" too; only a real panic unwinds through here.
        let cancelled = |err: &wasmtime::Error| {
            !std::thread::panicking() && err.to_string() == "worker panicked"
        };
        if let Err(err) = result.as_ref()
            && !cancelled(err)
        {
            super::log::log_line(
                "ERROR",
                "instance dropped",
                &format!("a WASIp3 instance failed and no request goes to it again: {err:#}"),
            );
        }
        drop(store);
    }
}

/// When an instance is dropped: idle for longer than the idle timeout, or busy on one request
/// for longer than the request timeout.
struct Expiry {
    idle_timeout: Duration,
    busy_timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let after = match status {
            WorkerStatus::Idle => self.idle_timeout,
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.busy_timeout,
        };
        let deadline = tokio::time::Instant::from_std(start + after);
        if tokio::time::Instant::now() >= deadline {
            return Poll::Ready(());
        }
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx)
    }
}
