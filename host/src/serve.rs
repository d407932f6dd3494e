//! `serve`: the component's HTTP API over real HTTP, the way Spin runs it.
//!
//! Instances of the pre-linked component (pooling allocator), each reused for a bounded number
//! of requests, an epoch deadline per request against runaway guests, request headers
//! presented as Spin presents them, a background cleanup timer, and graceful shutdown.
//!
//! # Instance reuse
//!
//! Spin, and DESIGN.md, give every request a fresh instance. Instantiating costs far more than a
//! validate (BENCHMARKS.md), so `serve` keeps an instance whose handler returned normally and
//! gives it the next request, up to [`ServeOptions::requests_per_instance`] requests. This is
//! safe because the component keeps no request state between calls. All the guest remembers is
//! request-independent: the configuration parsed from the variables (`src/component.rs`;
//! variables are fixed for the server's life), that the schema is current
//! (`src/store/schema.rs`), and its database handle — which holds no connection between
//! statements (`host/src/sqlite.rs` lends a pooled one per statement or transaction), and which
//! the guest replaces if a transaction on it might not have ended. The typed API has always
//! reused one instance for many calls on the same grounds. An instance that trapped, overran its
//! deadline or failed in the host is dropped, never reused, so a guest left half-way through a
//! request never sees another.
//! `--no-instance-reuse` (one request per instance) restores Spin's behaviour exactly.
//!
//! # Slow clients
//!
//! Every wait on the client is bounded before the guest is involved: hyper bounds the head
//! ([`ServeOptions::header_read_timeout`]), and the host reads the body itself, up to the
//! guest's cap, within [`ServeOptions::body_read_timeout`] (408 otherwise), before it takes a
//! concurrency permit or an instance. The guest then only ever sees a body that is already in
//! memory, so its epoch deadline covers all of its time; a guest that reads a client's body
//! from the socket waits in the host, where no epoch deadline fires, and clients that never
//! sent their bodies held every permit and instance. The guest's task bounds itself as well
//! (its store, instance and permit are dropped at the deadline whatever it is waiting on),
//! and when no instance can be had the answer is 503, not a trap.

use crate::api::SessionHost;
use crate::runtime::EPOCH_TICK;
use crate::state::{HostCallCounts, HostCalls};
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The most of a request body the host reads; one byte more than the guest accepts is enough
/// for the guest to refuse it with its own 413. The guest's cap is `MAX_BODY_BYTES` in
/// src/http/mod.rs, a crate the host does not depend on; `oversized_bodies_are_refused_with_413`
/// (host/tests/abuse.rs) fails if the two disagree.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Expired rows one timer run deletes at most (the component deletes in small batches).
const CLEANUP_ROWS: u32 = 100_000;

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
    /// Requests one instance serves before it is replaced; 1 gives every request a fresh
    /// instance, as Spin does. See the module documentation for why reuse is safe.
    pub requests_per_instance: u32,
    /// Where to report, for every request, the host calls its guest made and the writes of
    /// its response body; `None` counts nothing. For benchmarks (issue 18): each call is a
    /// cost Spin pays per request. [`HostCallSink::log`] writes one JSON line per request.
    pub count_host_calls: Option<HostCallSink>,
}

/// One request's host calls and response body writes (see [`ServeOptions::count_host_calls`]).
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
            eprintln!(
                "{}",
                serde_json::json!({
                    "level": "INFO", "message": "host calls", "source": "host",
                    "status": costs.status,
                    "variable_reads": calls.variable_reads,
                    "sqlite_opens": calls.sqlite_opens,
                    "sqlite_statements": calls.sqlite_statements,
                    "postgres_opens": calls.postgres_opens,
                    "postgres_statements": calls.postgres_statements,
                    "stderr_writes": calls.stderr_writes,
                    "body_writes": costs.body_writes,
                    "body_bytes": costs.body_bytes,
                })
            );
        })
    }
}

impl std::fmt::Debug for HostCallSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostCallSink")
    }
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
            requests_per_instance: 100,
            count_host_calls: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the component does not export wasi:http/incoming-handler@0.2.x: {0:#}")]
    NotAnHttpComponent(anyhow::Error),
}

/// A running server; dropping it without [`Server::shutdown`] leaves it running.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    cleanup: Option<JoinHandle<()>>,
    instances: Arc<InstancePool>,
}

struct Shared {
    host: SessionHost,
    pre: ProxyPre<crate::HostState>,
    deadline_ticks: u64,
    request_timeout: Duration,
    permits: Arc<Semaphore>,
    listen: SocketAddr,
    connections: Arc<Semaphore>,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    max_header_bytes: usize,
    instances: Arc<InstancePool>,
    count_host_calls: Option<HostCallSink>,
}

/// Instances whose last request ended normally, waiting for the next one.
struct InstancePool {
    idle: Mutex<Vec<Instance>>,
    /// Idle instances kept at most (the concurrency limit: more are never needed at once).
    max_idle: usize,
    requests_per_instance: u32,
    created: AtomicU64,
    /// Guest tasks still running: a guest may finish after its response was sent.
    running: AtomicUsize,
}

/// Counts a guest task as running until it is dropped, however the task ends.
struct Running(Arc<InstancePool>);

impl Running {
    fn start(pool: &Arc<InstancePool>) -> Self {
        pool.running.fetch_add(1, Ordering::SeqCst);
        Self(pool.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Instance {
    store: Store<crate::HostState>,
    proxy: Proxy,
    served: u32,
}

impl std::fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePool")
            .field("requests_per_instance", &self.requests_per_instance)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl InstancePool {
    fn take(&self) -> Option<Instance> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Keeps `instance` for another request unless it has served its share.
    fn give_back(&self, instance: Instance) {
        if instance.served >= self.requests_per_instance {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(instance);
        }
    }
}

impl Server {
    /// Binds `options.listen` and starts serving `host`'s component.
    ///
    /// # Errors
    ///
    /// [`ServeError::Bind`] if the address is taken or not ours; [`ServeError::NotAnHttpComponent`]
    /// if the component has no HTTP export.
    pub async fn start(host: SessionHost, options: ServeOptions) -> Result<Self, ServeError> {
        let pre = ProxyPre::new(host.runtime().instance_pre().clone())
            .map_err(|err| ServeError::NotAnHttpComponent(anyhow::Error::from(err)))?;
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
            running: AtomicUsize::new(0),
        });
        let shared = Arc::new(Shared {
            host,
            pre,
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
        });
        let (shutdown, signal) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared, signal));
        Ok(Self {
            addr,
            shutdown,
            accept,
            cleanup,
            instances,
        })
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

/// Why a request got no answer from the guest. Each maps once, in [`RequestError::response`],
/// to a status and a JSON body, so none of them can come out as a 500 by accident.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("the request line or headers cannot be presented to the guest: {0}")]
    BadRequest(&'static str),
    #[error("the request body did not arrive within {0:?}")]
    BodyTimedOut(Duration),
    #[error("the request body could not be read: {0}")]
    BodyUnreadable(hyper::Error),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("no instance is free: {0:#}")]
    NoInstance(wasmtime::Error),
    #[error("the guest did not answer within its deadline")]
    Overran,
    #[error("the guest failed: {0:#}")]
    Guest(anyhow::Error),
}

impl RequestError {
    /// Sorts out what a guest task ended with: an epoch interrupt is an overrun and a full
    /// pool is a busy server, both 503; anything else is a fault (500).
    fn from_guest(err: wasmtime::Error) -> Self {
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            Self::Overran
        } else if err.is::<PoolConcurrencyLimitError>() {
            Self::NoInstance(err)
        } else {
            Self::Guest(anyhow::Error::from(err).context("the guest trapped"))
        }
    }

    fn response(&self) -> Response<HyperOutgoingBody> {
        match self {
            // The client's doing, like hyper's own 408 for a slow head: not logged, so that a
            // flood of slow clients cannot flood the log either.
            Self::BadRequest(detail) => plain_error(StatusCode::BAD_REQUEST, "bad_request", detail),
            Self::BodyUnreadable(_) => plain_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request body could not be read",
            ),
            Self::BodyTimedOut(_) => {
                let mut response = plain_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the request body did not arrive in time",
                );
                // The rest of the body may still come; it must not be read as a request.
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                response
            }
            Self::ShuttingDown => plain_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ),
            Self::NoInstance(_) => {
                log_line("WARN", "no instance is free", &self.to_string());
                let mut response = plain_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the server has no free instance; retry later",
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            Self::Overran => {
                log_line("ERROR", "request timed out", &self.to_string());
                plain_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "the request took too long",
                )
            }
            Self::Guest(err) => {
                log_line("ERROR", "guest failed to answer", &format!("{err:#}"));
                plain_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

/// The request as the guest gets it: the body already read.
type GuestRequest = Request<Full<Bytes>>;

impl Shared {
    async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        match self.answer(req, peer).await {
            Ok(response) => response,
            Err(err) => err.response(),
        }
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>, RequestError> {
        let req = self
            .present_like_spin(req, peer)
            .map_err(RequestError::BadRequest)?;
        // The body first, before a permit or an instance is taken, so that a client can
        // only ever hold its own connection (see the module documentation).
        let req = read_body(req, self.body_read_timeout).await?;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RequestError::ShuttingDown)?;
        self.run_guest(req, permit).await
    }

    /// Rewrites the request as Spin hands it to a component on route `/...`: an absolute
    /// URI, and the `spin-*` headers (any the client sent are removed first, so they cannot
    /// be forged).
    fn present_like_spin<B>(
        &self,
        req: Request<B>,
        peer: SocketAddr,
    ) -> Result<Request<B>, &'static str> {
        let (mut parts, body) = req.into_parts();
        let spin_headers: Vec<_> = parts
            .headers
            .keys()
            .filter(|name| name.as_str().starts_with("spin-"))
            .cloned()
            .collect();
        for name in spin_headers {
            parts.headers.remove(name);
        }
        let authority = match parts.headers.get(HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => host.to_owned(),
            None => self.listen.to_string(),
        };
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let full_url = format!("http://{authority}{path_and_query}");
        parts.uri = full_url
            .parse()
            .map_err(|_| "invalid Host header or request target")?;
        let path = parts.uri.path().to_owned();
        let headers = [
            ("spin-full-url", full_url.as_str()),
            ("spin-path-info", path.as_str()),
            ("spin-matched-route", "/..."),
            ("spin-raw-component-route", "/..."),
            ("spin-component-route", ""),
            ("spin-base-path", "/"),
            ("spin-client-addr", &peer.to_string()),
        ];
        for (name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|_| "invalid request target")?;
            parts.headers.insert(name, value);
        }
        Ok(Request::from_parts(parts, body))
    }

    /// Runs `req` on an idle instance or a fresh one and waits for the response head. The
    /// guest runs in its own task so it may keep streaming the body after the head is sent;
    /// that task owns the store and `permit`, and drops both when the handler returns or at
    /// the deadline, whichever comes first. Only a handler that returned normally gives its
    /// instance back for another request.
    async fn run_guest(
        &self,
        req: GuestRequest,
        permit: OwnedSemaphorePermit,
    ) -> Result<Response<HyperOutgoingBody>, RequestError> {
        let (mut store, reused) = match self.instances.take() {
            Some(instance) => (instance.store, Some((instance.proxy, instance.served))),
            None => (self.host.store(), None),
        };
        store.set_epoch_deadline(self.deadline_ticks);
        // A reused instance starts each request's count from zero.
        let counting = self.count_host_calls.clone().map(|sink| {
            let calls = store.data().calls.clone();
            calls.take();
            (calls, sink)
        });
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(RequestError::from_guest)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(RequestError::from_guest)?;
        let (pre, instances) = (self.pre.clone(), self.instances.clone());
        // The epoch deadline fires only while guest code runs; this one also covers a guest
        // waiting in the host (e.g. on a response body the client does not read).
        let limit = self.request_timeout + Duration::from_secs(1);
        let running = Running::start(&instances);
        let task = tokio::spawn(async move {
            // Declared first, dropped last: the store goes before the permit and the count.
            let (_permit, _running) = (permit, running);
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
        match receiver.await {
            Ok(Ok(response)) => Ok(match counting {
                Some((calls, sink)) => count_body_writes(response, calls, sink),
                None => response,
            }),
            Ok(Err(code)) => Err(RequestError::Guest(anyhow::anyhow!(
                "the guest answered with error code {code:?}"
            ))),
            // The store, and the sender in it, is gone: the task has ended or is ending.
            Err(_) => match task.await {
                Ok(Ok(())) => Err(RequestError::Guest(anyhow::anyhow!(
                    "the guest never set a response"
                ))),
                Ok(Err(err)) => Err(err),
                Err(err) => Err(RequestError::Guest(anyhow::Error::from(err))),
            },
        }
    }
}

/// Reads `req`'s body into memory within `deadline`, however it trickles, stopping one byte
/// past [`MAX_BODY_BYTES`]: enough for the guest to refuse it, which it does from what it is
/// given. A declared length over the cap is not read at all; the guest refuses it from the
/// header. Reading here rather than letting the guest stream from the socket costs at most
/// the cap per connection, which the connection limit bounds (hyper's own read buffer is
/// larger), and keeps every wait on the client outside the guest. Trailers are dropped: the
/// guest never reads them.
async fn read_body(
    req: Request<Incoming>,
    deadline: Duration,
) -> Result<GuestRequest, RequestError> {
    let (parts, mut body) = req.into_parts();
    let over_cap = body
        .size_hint()
        .exact()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64);
    let mut read = Vec::new();
    if !over_cap && !body.is_end_stream() {
        let collect = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(RequestError::BodyUnreadable)?;
                if let Ok(data) = frame.into_data() {
                    let room = MAX_BODY_BYTES + 1 - read.len();
                    read.extend_from_slice(&data[..data.len().min(room)]);
                    if read.len() > MAX_BODY_BYTES {
                        break;
                    }
                }
            }
            Ok(())
        };
        tokio::time::timeout(deadline, collect)
            .await
            .map_err(|_| RequestError::BodyTimedOut(deadline))??;
    }
    Ok(Request::from_parts(parts, Full::new(Bytes::from(read))))
}

/// Answers a connection over the limit with 503 and closes it, without reading its request.
async fn refuse_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let body = r#"{"error":"too_many_connections","detail":"the server has too many open connections; retry later"}"#;
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

/// A JSON error made by the host itself, for when the guest could not answer.
fn plain_error(status: StatusCode, kind: &str, detail: &str) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({"error": kind, "detail": detail}).to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Deletes expired sessions every `every`, and for file databases truncates the WAL so it
/// cannot grow without bound between checkpoints.
async fn cleanup_timer(host: SessionHost, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match cleanup_once(&host).await {
            Ok(0) => {}
            Ok(deleted) => log_line(
                "INFO",
                "cleanup",
                &format!("deleted {deleted} expired session(s)"),
            ),
            Err(err) => log_line("ERROR", "cleanup failed", &err),
        }
    }
}

async fn cleanup_once(host: &SessionHost) -> Result<u32, String> {
    let deleted = async { host.sessions().await?.cleanup(CLEANUP_ROWS).await }
        .await
        .map_err(|err| err.to_string())?;
    if host.database().path().is_some() {
        let database = host.database().clone();
        tokio::task::spawn_blocking(move || {
            database.with_connection(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            })
        })
        .await
        .map_err(|err| err.to_string())??;
    }
    Ok(deleted)
}

/// Counts the writes (frames) and bytes of `response`'s body; when the body is done with,
/// reports them with the guest's host calls to `sink`.
fn count_body_writes(
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

/// The host's own log lines, in the component's JSON-lines shape.
fn log_line(level: &str, message: &str, detail: &str) {
    eprintln!(
        "{}",
        serde_json::json!({"level": level, "message": message, "detail": detail, "source": "host"})
    );
}
