//! Shared set-up for the HTTP tests: one compiled component (pooling allocator) per test
//! binary, a server on an ephemeral loopback port over a temp-dir database with a manual
//! clock, guest stderr captured, and a small HTTP/1 client. Shared by the API tests and the
//! composition tests (which serve other components through [`start_on`]).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::OnceLock;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use zoe_session_host::{
    Allocation, Clock, HostConfig, Location, Runtime, ServeOptions, Server, SessionHost,
};

/// 2027-01-15T08:00:00Z: a fixed start so tests never depend on the real date.
pub const START_MS: u64 = 1_800_000_000_000;

/// The admin key every test server is given.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(Allocation::Pooling { max_instances: 32 }).expect("component compiles")
    })
}

/// A running server and what a test needs to drive it.
pub struct Api {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub clock: Clock,
    pub log: MemoryOutputPipe,
    _dir: tempfile::TempDir,
}

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and, for errors, the JSON error shape; returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if status >= 400 {
            assert!(
                self.json["error"].is_string(),
                "no `error` field: {}",
                self.text
            );
            assert!(
                self.json["detail"].is_string(),
                "no `detail` field: {}",
                self.text
            );
        }
        &self.json
    }

    /// Asserts an error status and kind.
    #[track_caller]
    pub fn expect_error(&self, status: u16, kind: &str) {
        self.expect(status);
        assert_eq!(self.json["error"], kind, "body: {}", self.text);
    }
}

/// Starts a server with the admin key and `variables`.
pub async fn start(variables: &[(&str, &str)]) -> Api {
    start_with(Some(ADMIN_KEY), variables).await
}

/// Starts a server with an optional admin key and `variables`.
pub async fn start_with(admin_key: Option<&str>, variables: &[(&str, &str)]) -> Api {
    start_on(runtime(), admin_key, variables).await
}

/// Serves the component compiled in `runtime` (ours or a composed app) exactly as
/// `zoe-session-host serve --component PATH` serves it.
pub async fn start_on(
    runtime: &Runtime,
    admin_key: Option<&str>,
    variables: &[(&str, &str)],
) -> Api {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = HostConfig {
        database: Location::File(dir.path().join("sessions.db")),
        ..HostConfig::in_memory()
    };
    if let Some(key) = admin_key {
        config.variables.set("admin_key", key);
    }
    for (name, value) in variables {
        config.variables.set(*name, *value);
    }
    let clock = Clock::manual(START_MS);
    let log = MemoryOutputPipe::new(1 << 20);
    let host = SessionHost::open_with_clock(runtime, config, clock.clone())
        .await
        .expect("host opens")
        .with_guest_stderr(log.clone());
    let options = ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        cleanup_interval: None,
        max_concurrent: 16,
        ..ServeOptions::default()
    };
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
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
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
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
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
    #[allow(dead_code)] // Only some test binaries reach into the database.
    pub fn database_path(&self) -> std::path::PathBuf {
        self._dir.path().join("sessions.db")
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

/// The admin `Authorization` header.
pub fn admin() -> &'static [(&'static str, &'static str)] {
    &[("authorization", "Bearer test-admin-key-0123456789abcdef")]
}
