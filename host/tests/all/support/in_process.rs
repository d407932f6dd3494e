//! `serve`'s [`Server`] run in-process on a fresh database file, for tests that need its
//! options (limits, deadlines, instance reuse) or its counters rather than the binary, on the
//! shared [`serve_runtime`] unless a test brings its own runtime.

use super::{ADMIN, ADMIN_KEY, Response, get, request};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use zoe_session_host::{HostConfig, Runtime, ServeOptions, Server, SessionHost, Sessions};
use zoe_test_support::{DATABASE_FILE, file_config, serve_runtime};

/// A server on a fresh database file, with its own tokio runtime.
pub struct Harness {
    server: Option<Server>,
    pub addr: SocketAddr,
    host: SessionHost,
    database: PathBuf,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn start(options: ServeOptions) -> Self {
        Self::start_on(serve_runtime(), options)
    }

    pub fn start_on(runtime: &Runtime, options: ServeOptions) -> Self {
        Self::start_configured(runtime, options, |_| {})
    }

    /// Like [`Harness::start_on`], with `configure` changing the host configuration last.
    pub fn start_configured(
        runtime: &Runtime,
        options: ServeOptions,
        configure: impl FnOnce(&mut HostConfig),
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join(DATABASE_FILE);
        let mut config = file_config(&dir);
        config.variables.set("admin_key", ADMIN_KEY);
        config.variables.set("log_requests", "false");
        config.variables.set("max_per_user", "100000");
        configure(&mut config);
        let (host, server) = rt.block_on(async {
            let host = SessionHost::open(runtime, config)
                .await
                .expect("host opens");
            let options = ServeOptions {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                cleanup_interval: None,
                ..options
            };
            let server = Server::start(host.clone(), options)
                .await
                .expect("server starts");
            (host, server)
        });
        let addr = server.local_addr();
        Self {
            server: Some(server),
            addr,
            host,
            database,
            rt,
            _dir: dir,
        }
    }

    pub fn create_token(&self, user: &str) -> String {
        let body = json!({"user_id": user});
        let response = request(self.addr, "POST", "/sessions/create", &[ADMIN], Some(&body))
            .expect("create answers");
        response.expect(200).json()["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Harness {
    /// A server on its own engine (its epoch is spun by [`Harness::health_until_overrun`],
    /// which would disturb other servers) whose deadline is one epoch tick.
    pub fn with_one_tick_deadline(runtime: &Runtime) -> Self {
        Self::start_on(
            runtime,
            ServeOptions {
                request_timeout: Duration::ZERO,
                ..ServeOptions::default()
            },
        )
    }

    /// Spins `runtime`'s epoch, far faster than any guest can finish, and sends `/health` until
    /// an answer is not 200 (the guest overran its one-tick deadline), calling `after_each` after
    /// every answer. A request can still finish inside one tick when the spinning thread is
    /// descheduled (two busy cores), hence up to 100 tries; each answer must arrive, not hang.
    pub fn health_until_overrun(
        &self,
        runtime: &Runtime,
        after_each: impl Fn(),
    ) -> Option<Response> {
        let spinning = Arc::new(AtomicBool::new(true));
        let spinner = {
            let (engine, spinning) = (runtime.engine().clone(), spinning.clone());
            std::thread::spawn(move || {
                while spinning.load(Ordering::Relaxed) {
                    engine.increment_epoch();
                }
            })
        };
        let mut overrun = None;
        for _ in 0..100 {
            let reply = get(self.addr, "/health", &[]).expect("an answer, not a hang");
            after_each();
            if reply.status != 200 {
                overrun = Some(reply);
                break;
            }
        }
        spinning.store(false, Ordering::Relaxed);
        spinner.join().unwrap();
        overrun
    }

    /// Sends an admin create while this test holds the database's write lock for `hold`: the
    /// guest waits in the host's SQLite call for that long, wall time during which its epoch
    /// deadline keeps counting, and carries on (or is cut) once the lock is released. Unlike a
    /// spinning epoch, the wait overruns a shorter deadline however busy the machine is.
    pub fn create_with_write_lock_held(&self, hold: Duration) -> Response {
        let lock = rusqlite::Connection::open(&self.database).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();
        let addr = self.addr;
        let create = std::thread::spawn(move || {
            let body = json!({"user_id": "kept-waiting"});
            request(addr, "POST", "/sessions/create", &[ADMIN], Some(&body)).expect("an answer")
        });
        std::thread::sleep(hold);
        lock.execute_batch("ROLLBACK").unwrap();
        create.join().unwrap()
    }

    /// The server's database file, e.g. for a test that holds its write lock.
    pub fn database_path(&self) -> &std::path::Path {
        &self.database
    }

    /// An instance of the server's component, taken from the same runtime (and so the same
    /// pooling slots) the server instantiates from; the slot is held until it is dropped.
    pub fn hold_instance(&self) -> Sessions {
        self.rt
            .block_on(self.host.sessions())
            .expect("an instance while a slot is free")
    }

    /// Waits up to 30 s until the number of guests running satisfies `reached`, which `what`
    /// names in the failure.
    pub fn wait_for_guests(&self, reached: impl Fn(usize) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !reached(self.server().guests_running()) {
            assert!(Instant::now() < deadline, "after 30 s, {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The running server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("running until dropped")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}
