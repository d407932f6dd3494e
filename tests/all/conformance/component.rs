//! The real `.wasm` as a [`Backend`]: the host's typed API ([`Sessions`]) on a host with a
//! manual clock, over `spin:sqlite` (a database file, so that other instances and hosts can
//! share it), over `spin:postgres` on a fresh database of the run's PostgreSQL server,
//! answering as Spin 4.0.x does, or over `fermyon:spin/key-value` (`key_value_store =
//! default`) on Spin's local store (a file beside the database) or on a database of its own on
//! the run's Redis server. Audit events are read from the guest's stderr; `list-users`,
//! which only the HTTP API offers, is asked of `serve` on the same host.

use super::{Answer, Backend, Call, Outcome, UserPage, event_of};
use super::{CreateOptions, Issued, Requirement, Session, SessionError, SessionStats};
use crate::support::{START_MS, file_config, fresh_database, http, spin_4_0};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use zoe_session_host::key_value::{DEFAULT_LABEL, StoreConfig};
use zoe_session_host::{Clock, HostConfig, HostError, ServeOptions, Server, SessionHost, Sessions};
use zoe_test_support::{ADMIN, ADMIN_KEY, Build};

/// [`Component`] on `spin:sqlite`.
pub const SQLITE: u8 = 0;
/// [`Component`] on `spin:postgres`.
pub const POSTGRES: u8 = 1;
/// [`Component`] on the key-value store `default`: Spin's local file.
pub const KV_LOCAL: u8 = 2;
/// [`Component`] on the key-value store `default`, mapped onto Redis by a runtime config.
pub const KV_REDIS: u8 = 3;

/// The component of the WASIp2 build (`WASIP3 = false`, the default) or of the WASIp3 build
/// (`p3/`, `true`) on the store `STORE` names ([`SQLITE`], [`POSTGRES`], [`KV_LOCAL`],
/// [`KV_REDIS`]); both builds reach a key-value store through `fermyon:spin/key-value@2.0.0`.
pub struct Component<const STORE: u8, const WASIP3: bool = false> {
    /// What [`Backend::another`] opens a second host with.
    config: HostConfig,
    host: SessionHost,
    sessions: Sessions,
    log: MemoryOutputPipe,
    /// How much of the log's text earlier [`Backend::take_events`] calls have taken.
    taken: usize,
    server: Option<Server>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

/// The component's value; a host failure (a trap, a broken store) fails the test.
fn outcome<T>(result: Result<T, HostError>) -> Outcome<T> {
    match result {
        Ok(value) => Ok(value),
        Err(HostError::Session(err)) => Err(err),
        Err(other) => panic!("the host failed: {other}"),
    }
}

/// `text` as a query value: every byte but the unreserved ones percent-encoded.
fn escaped(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl<const STORE: u8, const WASIP3: bool> Component<STORE, WASIP3> {
    const BUILD: Build = if WASIP3 { Build::Wasip3 } else { Build::Wasip2 };

    /// The address of `serve` on this host, started when first needed.
    async fn server(&mut self) -> SocketAddr {
        if self.server.is_none() {
            let options = ServeOptions {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                cleanup_interval: None,
                max_concurrent: 4,
                ..ServeOptions::default()
            };
            let server = Server::start(self.host.clone(), options)
                .await
                .expect("serve starts");
            self.server = Some(server);
        }
        self.server.as_ref().expect("started").local_addr()
    }
}

impl<const STORE: u8, const WASIP3: bool> Backend for Component<STORE, WASIP3> {
    const KEY_VALUE: bool = STORE == KV_LOCAL || STORE == KV_REDIS;

    async fn open(settings: &[(&str, &str)]) -> Self {
        let (mut config, dir) = match STORE {
            POSTGRES => {
                let mut config = HostConfig::in_memory();
                if WASIP3 {
                    // Spin 4.1 and later, the only Spins this build runs on, answer a query
                    // that matches no rows.
                    config.variables.set("database_url", fresh_database());
                } else {
                    spin_4_0(&mut config, &fresh_database());
                }
                (config, None)
            }
            KV_REDIS => {
                let mut config = HostConfig::in_memory();
                config.key_value.stores.insert(
                    DEFAULT_LABEL.to_owned(),
                    StoreConfig::Redis(zoe_test_redis::shared().fresh_url()),
                );
                config.variables.set("key_value_store", DEFAULT_LABEL);
                (config, None)
            }
            _ => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let mut config = file_config(&dir);
                if STORE == KV_LOCAL {
                    // Spin's `default` store: a file beside the (unused) SQLite database.
                    config.variables.set("key_value_store", DEFAULT_LABEL);
                }
                (config, Some(Arc::new(dir)))
            }
        };
        config.variables.set("admin_key", ADMIN_KEY);
        for (name, value) in settings {
            config.variables.set(*name, *value);
        }
        let log = MemoryOutputPipe::new(1 << 24);
        let host = SessionHost::open_with_clock(
            Self::BUILD.runtime(),
            config.clone(),
            Clock::manual(START_MS),
        )
        .await
        .expect("host opens")
        .with_guest_stderr(log.clone());
        let sessions = host.sessions().await.expect("an instance");
        Self {
            config,
            host,
            sessions,
            log,
            taken: 0,
            server: None,
            _dir: dir,
        }
    }

    /// A second host on the same database and clock, as a replica of the service is.
    async fn another(&self) -> Self {
        let clock = self.host.clock().clone();
        let host = SessionHost::open_with_clock(Self::BUILD.runtime(), self.config.clone(), clock)
            .await
            .expect("a second host opens")
            .with_guest_stderr(self.log.clone());
        Self {
            config: self.config.clone(),
            sessions: host.sessions().await.expect("an instance"),
            host,
            log: self.log.clone(),
            taken: self.log.contents().len(),
            server: None,
            _dir: self._dir.clone(),
        }
    }

    fn advance(&self, by: Duration) {
        self.host.clock().advance(by);
    }

    fn now(&self) -> u64 {
        self.host.clock().now_ms()
    }

    async fn create(&mut self, user_id: &str, options: CreateOptions) -> Outcome<Issued> {
        outcome(self.sessions.create(user_id, options).await)
    }

    async fn validate(&mut self, token: &str) -> Outcome<Session> {
        outcome(self.sessions.validate(token).await)
    }

    async fn authorize(&mut self, token: &str, requirement: &Requirement) -> Outcome<Session> {
        outcome(self.sessions.authorize(token, requirement).await)
    }

    async fn get(&mut self, id_or_token: &str) -> Outcome<Session> {
        outcome(self.sessions.get(id_or_token).await)
    }

    async fn touch(&mut self, token: &str) -> Outcome<Session> {
        outcome(self.sessions.touch(token).await)
    }

    async fn extend(&mut self, token: &str, additional_seconds: u32) -> Outcome<Session> {
        outcome(self.sessions.extend(token, additional_seconds).await)
    }

    async fn rotate(&mut self, token: &str) -> Outcome<Issued> {
        outcome(self.sessions.rotate(token).await)
    }

    async fn invalidate(&mut self, id_or_token: &str) -> Outcome<()> {
        outcome(self.sessions.invalidate(id_or_token).await)
    }

    async fn invalidate_user(&mut self, user_id: &str, except_id: Option<&str>) -> Outcome<u32> {
        outcome(self.sessions.invalidate_user(user_id, except_id).await)
    }

    async fn invalidate_all(&mut self) -> Outcome<u32> {
        outcome(self.sessions.invalidate_all().await)
    }

    async fn list_user(&mut self, user_id: &str) -> Outcome<Vec<Session>> {
        outcome(self.sessions.list_user(user_id).await)
    }

    async fn list_users(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Outcome<UserPage> {
        let addr = self.server().await;
        let mut path = format!("/sessions/users?prefix={}&limit={limit}", escaped(prefix));
        if let Some(after) = after {
            path.push_str(&format!("&after={}", escaped(after)));
        }
        let (status, _, text) = http::exchange(addr, "GET", &path, &[ADMIN], None).await;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match (status, json["error"].as_str()) {
            (200, _) => Ok(UserPage {
                users: json["users"]
                    .as_array()
                    .expect("users")
                    .iter()
                    .map(|u| {
                        (
                            u["user_id"].as_str().expect("user_id").to_owned(),
                            u["sessions"].as_u64().expect("sessions"),
                            u["last_activity"].as_str().expect("time").to_owned(),
                        )
                    })
                    .collect(),
                next_after: json["next_after"].as_str().map(str::to_owned),
            }),
            (400 | 422, Some("invalid_input")) => Err(SessionError::InvalidInput(
                json["detail"].as_str().unwrap_or_default().to_owned(),
            )),
            _ => panic!("GET {path}: {status} {text}"),
        }
    }

    async fn stats(&mut self) -> Outcome<SessionStats> {
        outcome(self.sessions.stats().await)
    }

    async fn cleanup(&mut self, max_rows: u32) -> Outcome<u32> {
        outcome(self.sessions.cleanup(max_rows).await)
    }

    fn take_events(&mut self) -> Vec<Value> {
        let contents = self.log.contents();
        let text = String::from_utf8_lossy(&contents[self.taken..]).into_owned();
        self.taken = contents.len();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["audit"] == true)
            .map(|line| event_of(&line))
            .collect()
    }

    async fn race(&self, calls: Vec<Call>) -> Vec<Outcome<Answer>> {
        // Every instance first, so that the calls start as close together as they can.
        let mut instances = Vec::new();
        for _ in &calls {
            instances.push(self.host.sessions().await.expect("an instance"));
        }
        let tasks: Vec<_> = calls
            .into_iter()
            .zip(instances)
            .map(|(call, mut s)| {
                tokio::spawn(async move {
                    let session = |r: Result<Session, HostError>| r.map(|_| Answer::Session);
                    outcome(match call {
                        Call::Create(user) => s
                            .create(&user, CreateOptions::default())
                            .await
                            .map(Answer::Issued),
                        Call::CreateThenValidate(user) => {
                            match s.create(&user, CreateOptions::default()).await {
                                Ok(created) => match s.validate(&created.token).await {
                                    Ok(_) => Ok(Answer::Issued(created)),
                                    Err(HostError::Session(SessionError::NotFound)) => {
                                        Ok(Answer::Issued(created))
                                    }
                                    Err(err) => Err(err),
                                },
                                Err(err) => Err(err),
                            }
                        }
                        Call::Validate(token) => session(s.validate(&token).await),
                        Call::Get(id_or_token) => session(s.get(&id_or_token).await),
                        Call::Touch(token) => session(s.touch(&token).await),
                        Call::Extend(token, by) => session(s.extend(&token, by).await),
                        Call::Rotate(token) => s.rotate(&token).await.map(Answer::Issued),
                        Call::Invalidate(id_or_token) => {
                            s.invalidate(&id_or_token).await.map(|()| Answer::Done)
                        }
                        Call::Cleanup(max_rows) => s.cleanup(max_rows).await.map(Answer::Count),
                    })
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("the call's task"));
        }
        answers
    }
}
