//! Shared set-up for the HTTP tests: a server on an ephemeral loopback port over a temp-dir
//! database with a manual clock, on the component compiled once per test binary with pooling
//! slots ([`zoe_test_support::serve_runtime`]), guest stderr captured, and a small HTTP/1
//! client whose replies report the exchange and the server's log when an expectation fails.
//! Shared by the API tests and the composition tests (which serve other components through
//! [`start_on`]).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::OnceLock;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use zoe_session_host::platform::{AKAMAI_KEY_VALUE_STORE, Platform};
use zoe_session_host::{
    Allocation, Clock, HostConfig, Metering, Runtime, RuntimeOptions, ServeOptions, Server,
    SessionHost,
};
pub use zoe_test_support::{ADMIN_KEY, START_MS, admin};
use zoe_test_support::{
    DATABASE_FILE, SERVE_INSTANCES, exchange_report, file_config, serve_runtime,
};

/// A running server and what a test needs to drive it.
pub struct Api {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub clock: Clock,
    pub log: MemoryOutputPipe,
    _dir: tempfile::TempDir,
}

/// A response, with the body parsed as JSON when it is JSON, and what it answers: the request
/// and the server's log, for the report of a failed expectation.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
    pub json: Value,
    /// The request this answers, e.g. `POST /sessions/create`.
    pub request: String,
    log: MemoryOutputPipe,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The report of `problem` with this exchange: request, response, the server's log tail.
    pub fn report(&self, problem: &str) -> String {
        let log = String::from_utf8_lossy(&self.log.contents()).into_owned();
        exchange_report(problem, &self.request, self.status, &self.text, Some(&log))
    }

    /// Asserts the status and, for errors, the JSON error shape; returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert!(
            self.status == status,
            "{}",
            self.report(&format!("expected status {status}"))
        );
        if status >= 400 {
            assert!(
                self.json["error"].is_string(),
                "{}",
                self.report("no `error` field")
            );
            assert!(
                self.json["detail"].is_string(),
                "{}",
                self.report("no `detail` field")
            );
        }
        &self.json
    }

    /// Asserts an error status and kind.
    #[track_caller]
    pub fn expect_error(&self, status: u16, kind: &str) {
        self.expect(status);
        assert!(
            self.json["error"] == kind,
            "{}",
            self.report(&format!("expected error `{kind}`"))
        );
    }
}

/// Starts a server with the admin key and `variables`.
pub async fn start(variables: &[(&str, &str)]) -> Api {
    start_with(Some(ADMIN_KEY), variables).await
}

/// Starts a server with an optional admin key and `variables`.
pub async fn start_with(admin_key: Option<&str>, variables: &[(&str, &str)]) -> Api {
    start_on(serve_runtime(), admin_key, variables).await
}

/// Serves the component compiled in `runtime` (ours or a composed app) exactly as
/// `zoe-session-host serve --component PATH` serves it.
pub async fn start_on(
    runtime: &Runtime,
    admin_key: Option<&str>,
    variables: &[(&str, &str)],
) -> Api {
    start_configured(runtime, admin_key, variables, |_| {}).await
}

/// Like [`start_on`], a WASIp2 instance serving up to `requests` requests (`serve
/// --requests-per-instance`) rather than `serve`'s fresh one per request, as Spin does.
pub async fn start_reusing(
    runtime: &Runtime,
    admin_key: Option<&str>,
    variables: &[(&str, &str)],
    requests: u32,
) -> Api {
    serve_configured(
        runtime,
        admin_key,
        variables,
        |_| {},
        |options| ServeOptions {
            requests_per_instance: requests,
            ..options
        },
    )
    .await
}

/// Like [`start_on`], with host settings beyond the variables set by `configure`.
pub async fn start_configured(
    runtime: &Runtime,
    admin_key: Option<&str>,
    variables: &[(&str, &str)],
    configure: impl FnOnce(&mut HostConfig),
) -> Api {
    serve_configured(runtime, admin_key, variables, configure, |options| options).await
}

/// How a copy of a suite is served, by the copy's module path: a suite file that the test
/// binary includes again as a module named `…_on_akamai` is served as Akamai Functions serves
/// the component ([`start_on_akamai`]).
pub fn platform_of(module_path: &str) -> Platform {
    if module_path.ends_with("_on_akamai") {
        Platform::Akamai
    } else {
        Platform::Spin
    }
}

/// The WASIp2 build compiled once for the test binary as `serve --platform akamai` allocates
/// it: pooling slots of Akamai's 128 MiB.
fn akamai_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeOptions {
            allocation: Allocation::Pooling {
                max_instances: SERVE_INSTANCES,
            },
            metering: Metering::Off,
            max_memory_bytes: Platform::Akamai.max_memory_bytes(),
        })
        .expect("component compiles")
    })
}

/// A server as `serve --platform akamai` runs the component (docs/deploy-akamai.md): no SQLite,
/// the sessions in the `default` key-value store as deploy/akamai/spin.toml configures them
/// (`variables` may still say otherwise), Akamai's memory cap and request deadline, and a
/// fresh instance per request.
pub async fn start_on_akamai(admin_key: Option<&str>, variables: &[(&str, &str)]) -> Api {
    let platform = Platform::Akamai;
    let mut all = vec![("key_value_store", AKAMAI_KEY_VALUE_STORE)];
    all.extend_from_slice(variables);
    serve_configured(
        akamai_runtime(),
        admin_key,
        &all,
        |config| config.platform = platform,
        |options| ServeOptions {
            request_timeout: platform
                .request_timeout()
                .unwrap_or(options.request_timeout),
            requests_per_instance: platform
                .requests_per_instance()
                .unwrap_or(options.requests_per_instance),
            ..options
        },
    )
    .await
}

/// A server of `runtime` with `variables`, host settings from `configure` and serving options
/// from `serving`.
async fn serve_configured(
    runtime: &Runtime,
    admin_key: Option<&str>,
    variables: &[(&str, &str)],
    configure: impl FnOnce(&mut HostConfig),
    serving: impl FnOnce(ServeOptions) -> ServeOptions,
) -> Api {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = file_config(&dir);
    if let Some(key) = admin_key {
        config.variables.set("admin_key", key);
    }
    for (name, value) in variables {
        config.variables.set(*name, *value);
    }
    configure(&mut config);
    let clock = Clock::manual(START_MS);
    let log = MemoryOutputPipe::new(1 << 20);
    let host = SessionHost::open_with_clock(runtime, config, clock.clone())
        .await
        .expect("host opens")
        .with_guest_stderr(log.clone());
    let options = serving(ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        cleanup_interval: None,
        max_concurrent: 16,
        ..ServeOptions::default()
    });
    let server = Server::start(host, options).await.expect("server starts");
    Api {
        addr: server.local_addr(),
        server: Some(server),
        clock,
        log,
        _dir: dir,
    }
}

impl Api {
    /// Sends one request on a fresh connection.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        self.send_bytes(method, path, headers, body.map(|b| b.as_bytes().to_vec()))
            .await
    }

    pub async fn send_bytes(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let (status, headers, text) = exchange(self.addr, method, path, headers, body).await;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
            request: format!("{method} {path}"),
            log: self.log.clone(),
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, None).await
    }

    /// Creates a session for `user` through the API; returns the create response body.
    pub async fn create(&self, body: &str) -> Value {
        self.send("POST", "/sessions/create", admin(), Some(body))
            .await
            .expect(200)
            .clone()
    }

    /// Creates a session for `user` and returns (token, public id).
    pub async fn login(&self, user: &str) -> (String, String) {
        let body = self.create(&format!(r#"{{"user_id":"{user}"}}"#)).await;
        (
            body["session_id"].as_str().expect("token").to_owned(),
            body["id"].as_str().expect("id").to_owned(),
        )
    }

    /// The SQLite file the server keeps its sessions in.
    pub fn database_path(&self) -> std::path::PathBuf {
        self._dir.path().join(DATABASE_FILE)
    }

    /// Everything the component has logged so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.log.contents()).into_owned()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Sends one request to `addr` on a fresh HTTP/1 connection; answers the status, the headers
/// and the body as text.
pub async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, http::HeaderMap, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    let has_body = body.is_some();
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if has_body
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|err| panic!("{method} {path}: {err}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, headers, text)
}
