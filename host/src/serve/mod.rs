//! `serve`: the component's HTTP API over real HTTP, the way Spin runs it.
//!
//! Instances of the pre-linked component (pooling allocator), each reused for a bounded number
//! of requests, an epoch deadline per request against runaway guests, request headers
//! presented as Spin presents them, a background cleanup timer, and graceful shutdown.
//!
//! This file holds the options, the server and its accept loop; the parts have files of their
//! own: `spin_request` (the request as Spin presents it, body read within its deadline),
//! `guest` (running a request in an instance), `errors` (every way a request can get no answer
//! from its guest, and the answer it gets instead), `pool` (instances kept for reuse), `costs`
//! (host calls counted per request), `maintenance` (the cleanup timer), `metrics` and `log`
//! (the host's own log lines). `serve` uses the embedding API ([`SessionHost`],
//! [`crate::runtime`]); nothing there uses `serve`.
//!
//! # WASIp3 components
//!
//! A component exporting `wasi:http/handler@0.3.0` runs many requests at once in one store, as
//! Spin 4.1 runs it; `p3` serves it through wasmtime-wasi-http's `ProxyHandler`, with Spin's
//! instance policy ([`ReusePolicy`]). Everything before the instance (the body read first, the
//! permits, the connection cap, Spin's headers, the metrics) is shared with the WASIp2 path
//! below. A middleware chain ([`crate::middleware`]) is one WASIp3 component by then.
//!
//! # Why not wasmtime-wasi-http's `ProxyHandler` for WASIp2
//!
//! wasmtime-wasi-http 48 has a serving loop of its own, `handler::ProxyHandler` (behind its
//! `component-model-async` feature): a `HandlerState` makes stores and instances, a
//! `WorkerState` decides per instance how many requests it takes in all and at once
//! (`should_accept_request`, which would carry Spin's 128-and-16 or our reuse count) and when a
//! request expires (`on_request_start`, where an epoch deadline could be set), and each
//! instance runs in a worker task of its own, so a handler runs to its end whoever hangs up.
//! The body read before an instance is taken, the connection cap and Spin's headers all happen
//! before `ProxyHandler::handle`, so they would stay ours unchanged. What it cannot carry is
//! the per-request costs: it makes the response-outparam itself, so the body cannot be looked
//! at when the head is set (`RequestCosts::body_at_head`), and a `WorkerState` hears of a
//! request only at its start and of the store only when the worker exits, so a reused
//! instance's host calls and fuel cannot be taken when each handler returns. It also runs every
//! call through `Store::run_concurrent`; and it hands every request to a worker task
//! through a queue and a channel, the thread wake-ups this loop avoids by running the guest in
//! the connection's own task until its head is set (BENCHMARKS.md). So the loop stays ours; it
//! is worth another look once `ProxyHandler` reports each request's end to its state.
//!
//! # Instance reuse (WASIp2)
//!
//! Spin gives every request to a WASIp2 component a fresh instance, and so does `serve` by
//! default, so that its figures predict Spin's (issue 30). Instantiating costs far more than a
//! validate (BENCHMARKS.md), so `serve` can keep an instance whose handler returned normally and
//! give it the next request, up to [`ServeOptions::requests_per_instance`] requests
//! (`--requests-per-instance N`). This is safe because the component keeps no request state between calls. All the guest remembers is
//! request-independent: the configuration parsed from the variables (`src/component.rs`;
//! variables are fixed for the server's life), that the schema is current
//! (`core/src/store/schema.rs`), and its database handle — which holds no connection between
//! statements (`host/src/sqlite/` lends a pooled one per statement or transaction), and which
//! the guest replaces if a transaction on it might not have ended. The typed API has always
//! reused one instance for many calls on the same grounds. An instance that trapped, overran its
//! deadline or failed in the host is dropped, never reused, so a guest left half-way through a
//! request never sees another.
//! The default (one request per instance, `--no-instance-reuse`) is Spin's behaviour exactly.
//!
//! # Slow clients
//!
//! Every wait on the client is bounded before the guest is involved: hyper bounds the head
//! ([`ServeOptions::header_read_timeout`]), and the host reads the body itself, up to the
//! guest's cap, within [`ServeOptions::body_read_timeout`] (408 otherwise), before it takes a
//! concurrency permit or an instance. A WASIp2 guest then only ever sees a body that is already
//! in memory (one past the cap cut one byte past it, which ours refuses with 413), so its epoch
//! deadline covers all of its time: a guest that reads a client's body from the socket waits in
//! the host, where no epoch deadline fires, and clients that never sent their bodies would hold
//! every permit and instance. A WASIp3 guest gets a body past the cap whole, the rest streamed
//! from the connection as Spin does (any app may take large bodies, and a cut one would be lost
//! data); that rest must still arrive within the body timeout, after which the guest's read
//! fails, and the request's deadline bounds the permit it holds meanwhile, so only a client
//! that has sent more than the cap holds one. The guest's task bounds itself as well
//! (its store, instance and permit are dropped at the deadline whatever it is waiting on),
//! and when no instance can be had the answer is 503, not a trap.

mod costs;
mod errors;
mod guest;
mod log;
mod maintenance;
pub mod metrics;
mod p3;
mod pool;
mod spin_request;

pub use costs::{BodyAtHead, HostCallSink, RequestCosts};
pub use p3::{
    DEFAULT_IDLE_INSTANCE_TIMEOUT, DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT,
    DEFAULT_MAX_INSTANCE_REUSE_COUNT, ReusePolicy,
};

pub use crate::error::ServeError;

use self::guest::{GuestKind, Shared, refuse_connection};
use self::log::log_line;
use self::maintenance::cleanup_timer;
use self::metrics::Metrics;
use self::p3::P3Handler;
use self::pool::InstancePool;
use crate::api::SessionHost;
use crate::runtime::Allocation;
use crate::runtime::EPOCH_TICK;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of [`Server::start`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Longest a request may run in the guest before it is stopped (503), counted once its
    /// body has arrived.
    pub request_timeout: Duration,
    /// How often expired sessions are deleted; `None` turns the timer off.
    pub cleanup_interval: Option<Duration>,
    /// Requests served at once; more wait. Keep it below the runtime's pooling slots.
    pub max_concurrent: usize,
    /// Longest a client may take to send a request head, counted from when the server starts
    /// waiting for it; also how long an idle keep-alive connection is kept. Slowloris clients
    /// and idle sockets are cut off after this.
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request body, counted from the end of its head,
    /// however it trickles; a body that has not fully arrived by then gets 408.
    pub body_read_timeout: Duration,
    /// Largest request head (request line and headers) accepted; larger ones get 431.
    pub max_header_bytes: usize,
    /// Connections open at once; a connection beyond this gets 503 and is closed, so idle
    /// sockets cannot exhaust file descriptors or memory.
    pub max_connections: usize,
    /// Requests one WASIp2 instance serves before it is replaced; 1 (the default) gives every
    /// request a fresh instance, as Spin does. See the module documentation for why reuse is
    /// safe.
    pub requests_per_instance: u32,
    /// How a WASIp3 component's instances are reused: Spin 4.1's policy and defaults (128
    /// requests, 16 at once, 1 s idle). A WASIp2 component follows
    /// [`ServeOptions::requests_per_instance`] instead.
    pub p3_reuse: ReusePolicy,
    /// Where to report, for every request, the host calls its guest made and the writes of
    /// its response body; `None` counts nothing. For benchmarks (issue 18): each call is a
    /// cost Spin pays per request. [`HostCallSink::log`] writes one JSON line per request.
    pub count_host_calls: Option<HostCallSink>,
    /// Where to serve Prometheus metrics (`GET /metrics`), on a listener of its own; `None`
    /// serves none. See [`metrics`].
    pub metrics_listen: Option<SocketAddr>,
    /// Sets `TCP_NODELAY` on accepted connections (the default), so that a response goes out
    /// as soon as hyper writes it. `false` leaves Nagle's algorithm on, as Spin's HTTP server
    /// does: a response that reaches the socket in more than one write then waits for the
    /// client's delayed ACK (about 40 ms on Linux) before its second write leaves. For testing
    /// and measuring what Spin's users see (`serve --no-tcp-nodelay`, issue 28).
    pub tcp_nodelay: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            request_timeout: Duration::from_secs(10),
            cleanup_interval: Some(Duration::from_secs(300)),
            max_concurrent: 64,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_connections: 1024,
            // Spin's: a WASIp2 component gets a fresh instance per request (issue 30).
            requests_per_instance: 1,
            p3_reuse: ReusePolicy::default(),
            count_host_calls: None,
            metrics_listen: None,
            tcp_nodelay: true,
        }
    }
}

impl ServeOptions {
    /// The pooling slots a server with these options needs: one per request served at once,
    /// as many kept idle for reuse, and a few for the cleanup timer's instance and guests
    /// still streaming a body after their permit is freed.
    pub fn allocation(&self) -> Allocation {
        Allocation::Pooling {
            max_instances: u32::try_from(self.max_concurrent)
                .unwrap_or(u32::MAX)
                .saturating_mul(2)
                .saturating_add(4),
        }
    }
}

/// A running server; dropping it without [`Server::shutdown`] leaves it running.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    cleanup: Option<JoinHandle<()>>,
    instances: Arc<InstancePool>,
    metrics: Option<(SocketAddr, JoinHandle<()>)>,
}

impl Server {
    /// Binds `options.listen` and starts serving `host`'s component.
    ///
    /// # Errors
    ///
    /// [`ServeError::Bind`] if the address is taken or not ours; [`ServeError::NotAnHttpComponent`]
    /// if the component has no HTTP export.
    pub async fn start(host: SessionHost, options: ServeOptions) -> Result<Self, ServeError> {
        // A WASIp2 component, else a WASIp3 one: the two exports Spin 4.1 serves.
        let pre = host.runtime().instance_pre();
        let p3 = match ProxyPre::new(pre.clone()) {
            Ok(p2) => Err(p2),
            Err(p2_missing) => match ServicePre::new(pre.clone()) {
                Ok(p3) => Ok(p3),
                Err(_) => {
                    return Err(ServeError::NotAnHttpComponent(anyhow::Error::from(
                        p2_missing,
                    )));
                }
            },
        };
        if p3.is_ok() && options.count_host_calls.is_some() {
            return Err(ServeError::CountingUnsupported);
        }
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
        host.runtime().start_epoch_ticker();
        let deadline_ticks =
            (options.request_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let cleanup = options
            .cleanup_interval
            .map(|every| tokio::spawn(cleanup_timer(host.clone(), every)));
        let instances = Arc::new(InstancePool {
            idle: Mutex::new(Vec::new()),
            max_idle: options.max_concurrent.max(1),
            requests_per_instance: options.requests_per_instance.max(1),
            created: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            running: AtomicUsize::new(0),
        });
        let guest = match p3 {
            Err(p2) => GuestKind::P2(p2),
            Ok(p3) => GuestKind::P3(P3Handler::new(
                host.clone(),
                p3,
                options.p3_reuse,
                options.request_timeout,
                deadline_ticks,
                instances.clone(),
            )),
        };
        let metrics = Arc::new(Metrics::new());
        let metrics_server = match options.metrics_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| ServeError::Bind { addr, source })?;
                let exporter = metrics::Exporter {
                    metrics: metrics.clone(),
                    instances: instances.clone(),
                    host: host.clone(),
                    header_read_timeout: options.header_read_timeout,
                    max_header_bytes: options.max_header_bytes,
                };
                Some((bound, tokio::spawn(exporter.serve(listener))))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            host,
            guest,
            deadline_ticks,
            request_timeout: options.request_timeout,
            permits: Arc::new(Semaphore::new(options.max_concurrent.max(1))),
            listen: addr,
            connections: Arc::new(Semaphore::new(options.max_connections.max(1))),
            header_read_timeout: options.header_read_timeout,
            body_read_timeout: options.body_read_timeout,
            max_header_bytes: options.max_header_bytes,
            instances: instances.clone(),
            count_host_calls: options.count_host_calls,
            metrics,
            tcp_nodelay: options.tcp_nodelay,
        });
        let (shutdown, signal) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared, signal));
        Ok(Self {
            addr,
            shutdown,
            accept,
            cleanup,
            instances,
            metrics: metrics_server,
        })
    }

    /// Where the metrics are served (`http://<address>/metrics`), if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
    }

    /// How many instances request handling has created so far (the cleanup timer's are not
    /// counted): with reuse, far fewer than requests.
    pub fn instances_created(&self) -> u64 {
        self.instances.created.load(Ordering::Relaxed)
    }

    /// Guests still running a request. A guest may finish (and its instance become free for
    /// the next request) just after its response reached the client.
    pub fn guests_running(&self) -> usize {
        self.instances.running.load(Ordering::SeqCst)
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), stops the cleanup timer.
    /// The epoch ticker belongs to the runtime and stops with it.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
        if let Some(cleanup) = self.cleanup {
            cleanup.abort();
        }
        if let Some((_, exporter)) = self.metrics {
            exporter.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut signal: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        log_line("WARN", "accept failed", &err.to_string());
                        // E.g. out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // A response goes out as soon as it is written, as the native baseline's
                // does; should the option be refused, the connection is still served.
                if shared.tcp_nodelay {
                    let _ = stream.set_nodelay(true);
                }
                let Ok(slot) = shared.connections.clone().try_acquire_owned() else {
                    tokio::spawn(refuse_connection(stream));
                    continue;
                };
                let (header_read_timeout, max_header_bytes) =
                    (shared.header_read_timeout, shared.max_header_bytes);
                let shared = shared.clone();
                let service = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, std::convert::Infallible>(shared.handle(req, peer).await) }
                });
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .max_header_size(max_header_bytes)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // Clients that hang up mid-request are not the server's problem.
                    let _ = conn.await;
                    drop(slot);
                });
            }
            _ = signal.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}
