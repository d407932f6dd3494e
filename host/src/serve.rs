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

use crate::api::SessionHost;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// How often the epoch advances; request deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(50);

/// Expired rows one timer run deletes at most (the component deletes in small batches).
const CLEANUP_ROWS: u32 = 100_000;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of [`Server::start`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Longest a request may run in the guest before it is stopped.
    pub request_timeout: Duration,
    /// How often expired sessions are deleted; `None` turns the timer off.
    pub cleanup_interval: Option<Duration>,
    /// Requests served at once; more wait. Keep it below the runtime's pooling slots.
    pub max_concurrent: usize,
    /// Longest a client may take to send a request head, counted from when the server starts
    /// waiting for it; also how long an idle keep-alive connection is kept. Slowloris clients
    /// and idle sockets are cut off after this.
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request body, counted from the end of its head;
    /// a body that has not fully arrived by then gets 408.
    pub body_read_timeout: Duration,
    /// Largest request head (request line and headers) accepted; larger ones get 431.
    pub max_header_bytes: usize,
    /// Connections open at once; a connection beyond this gets 503 and is closed, so idle
    /// sockets cannot exhaust file descriptors or memory.
    pub max_connections: usize,
    /// Requests one instance serves before it is replaced; 1 gives every request a fresh
    /// instance, as Spin does. See the module documentation for why reuse is safe.
    pub requests_per_instance: u32,
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
    ticking: Arc<AtomicBool>,
    instances: Arc<InstancePool>,
}

struct Shared {
    host: SessionHost,
    pre: ProxyPre<crate::HostState>,
    deadline_ticks: u64,
    request_timeout: Duration,
    permits: Semaphore,
    listen: SocketAddr,
    connections: Arc<Semaphore>,
    header_read_timeout: Duration,
    max_header_bytes: usize,
    instances: Arc<InstancePool>,
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
        let ticking = Arc::new(AtomicBool::new(true));
        start_epoch_ticker(host.runtime().engine().clone(), ticking.clone());
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
            permits: Semaphore::new(options.max_concurrent.max(1)),
            listen: addr,
            connections: Arc::new(Semaphore::new(options.max_connections.max(1))),
            header_read_timeout: options.header_read_timeout,
            max_header_bytes: options.max_header_bytes,
            instances: instances.clone(),
        });
        let (shutdown, signal) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared, signal));
        Ok(Self {
            addr,
            shutdown,
            accept,
            cleanup,
            ticking,
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

    /// Stops accepting, lets in-flight requests finish (up to 10 s), stops the timers.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
        if let Some(cleanup) = self.cleanup {
            cleanup.abort();
        }
        self.ticking.store(false, Ordering::Relaxed);
    }
}

/// Advances the engine's epoch so per-request deadlines fire; a plain thread, so a guest
/// hogging a runtime worker cannot stop the clock that interrupts it.
fn start_epoch_ticker(engine: wasmtime::Engine, ticking: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while ticking.load(Ordering::Relaxed) {
            std::thread::sleep(EPOCH_TICK);
            engine.increment_epoch();
        }
    });
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

impl Shared {
    async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let Ok(_permit) = self.permits.acquire().await else {
            return plain_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            );
        };
        let req = match self.present_like_spin(req, peer) {
            Ok(req) => req,
            Err(detail) => return plain_error(StatusCode::BAD_REQUEST, "bad_request", detail),
        };
        match tokio::time::timeout(
            self.request_timeout + Duration::from_secs(1),
            self.run_guest(req),
        )
        .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                log_line("ERROR", "guest failed to answer", &format!("{err:#}"));
                plain_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
            Err(_) => {
                log_line(
                    "ERROR",
                    "request timed out",
                    "the guest did not answer in time",
                );
                plain_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "the request took too long",
                )
            }
        }
    }

    /// Rewrites the request as Spin hands it to a component on route `/...`: an absolute
    /// URI, and the `spin-*` headers (any the client sent are removed first, so they cannot
    /// be forged).
    fn present_like_spin(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Request<Incoming>, &'static str> {
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

    async fn run_guest(
        &self,
        req: Request<Incoming>,
    ) -> anyhow::Result<Response<HyperOutgoingBody>> {
        let (mut store, reused) = match self.instances.take() {
            Some(instance) => (instance.store, Some((instance.proxy, instance.served))),
            None => (self.host.store(), None),
        };
        store.set_epoch_deadline(self.deadline_ticks);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(anyhow::Error::from)?;
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(anyhow::Error::from)?;
        let (pre, instances) = (self.pre.clone(), self.instances.clone());
        let running = Running::start(&instances);
        // The guest runs in its own task so it may keep streaming the body after the
        // response head is sent; only once its handler has returned normally may the instance
        // serve again (an error or trap drops it here).
        let task = tokio::spawn(async move {
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
            drop(running);
            Ok::<(), wasmtime::Error>(())
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => anyhow::bail!("the guest answered with error code {code:?}"),
            Err(_) => match task.await {
                Ok(Ok(())) => anyhow::bail!("the guest never set a response"),
                Ok(Err(err)) => Err(anyhow::Error::from(err).context("the guest trapped")),
                Err(err) => Err(anyhow::Error::from(err)),
            },
        }
    }
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

/// The host's own log lines, in the component's JSON-lines shape.
fn log_line(level: &str, message: &str, detail: &str) {
    eprintln!(
        "{}",
        serde_json::json!({"level": level, "message": message, "detail": detail, "source": "host"})
    );
}
