//! The engine as a [`Backend`]: an [`Engine`] per call over a [`Db`] on rusqlite (a file, so
//! that several connections can share it), on a fresh database of the run's PostgreSQL
//! server, or on the key-value layout over an in-memory [`MemoryKeyValue`] (its clones are
//! the replicas), at the time of a clock the test moves. Results are converted into the WIT's types
//! as the component converts them.

use super::{Answer, Backend, Call, Outcome, UserPage};
use super::{CreateOptions, Issued, Requirement, Session, SessionError, SessionStats};
use crate::support::START_MS;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use zoe_session::config::Config;
use zoe_session::session::audit::Event;
use zoe_session::session::engine::{self, Engine, EngineError};
use zoe_session::session::policy;
use zoe_session::store::kv::memory::MemoryKeyValue;
use zoe_session::store::native_postgres::NativePostgres;
use zoe_session::store::native_sqlite::NativeSqlite;
use zoe_session::store::{Db, Device, Executor, Row, Value as SqlValue};

/// [`Native`] on rusqlite.
pub const SQLITE: u8 = 0;
/// [`Native`] on PostgreSQL.
pub const POSTGRES: u8 = 1;
/// [`Native`] on the key-value layout in memory.
pub const KEY_VALUE: u8 = 2;

/// What each call of a raced key-value handle waits, standing in for a round trip to Redis
/// on loopback: it is what lets the raced calls interleave between their reads and writes.
const RACE_LATENCY: Duration = Duration::from_micros(100);

/// One empty database on one native backend, and a way to open more connections to it.
pub struct Store {
    pub name: &'static str,
    raw: Box<dyn Fn() -> Box<dyn Executor> + Send + Sync>,
    /// Set for the key-value store, whose handles [`Store::db_for`] opens instead.
    kv: Option<MemoryKeyValue>,
    _dir: Option<tempfile::TempDir>,
}

impl Store {
    /// A database file in a directory of its own, on rusqlite.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("sessions.db");
        Self {
            name: "sqlite",
            raw: Box::new(move || Box::new(NativeSqlite::open(&path).expect("open sqlite"))),
            kv: None,
            _dir: Some(dir),
        }
    }

    /// A fresh database on the run's PostgreSQL server.
    pub fn postgres() -> Self {
        let url = crate::support::fresh_database();
        Self {
            name: "postgres",
            raw: Box::new(move || Box::new(NativePostgres::connect(&url).expect("connect"))),
            kv: None,
            _dir: None,
        }
    }

    /// An empty in-memory key-value store.
    pub fn key_value() -> Self {
        Self {
            name: "key-value",
            raw: Box::new(|| panic!("a key-value store runs no SQL")),
            kv: Some(MemoryKeyValue::new()),
            _dir: None,
        }
    }

    /// A handle for an engine with `config`: on the key-value store, for its `max_per_user`
    /// and with `latency` per call.
    pub fn db_for(&self, config: &Config, latency: Duration) -> Db {
        match &self.kv {
            Some(kv) => Db::open_key_value(
                Box::new(kv.with_latency(latency)),
                *config.max_per_user().expect("max_per_user"),
            )
            .expect("open the key-value store"),
            None => self.db(),
        }
    }

    /// A connection with the schema in place.
    pub fn db(&self) -> Db {
        Db::open((self.raw)()).unwrap_or_else(|err| panic!("{}: open: {err}", self.name))
    }

    /// A connection without migrations, for checking the schema tables themselves.
    pub fn raw(&self) -> Box<dyn Executor> {
        (self.raw)()
    }

    /// The single integer `sql` answers.
    pub fn count(&self, sql: &str) -> i64 {
        match self.raw().query(sql, &[]).expect(sql).first() {
            Some(Row(values)) => match values.first() {
                Some(SqlValue::Int(n)) => *n,
                other => panic!("{sql}: {other:?}"),
            },
            None => panic!("{sql}: no row"),
        }
    }
}

/// The engine on rusqlite ([`SQLITE`]), PostgreSQL ([`POSTGRES`]) or the key-value layout
/// ([`KEY_VALUE`]).
pub struct Native<const KIND: u8> {
    store: Arc<Store>,
    settings: Arc<Vec<(String, String)>>,
    config: Config,
    db: Db,
    clock: Arc<AtomicU64>,
    events: Vec<Value>,
}

fn config(settings: &[(String, String)]) -> Config {
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    Config::from_pairs(&pairs)
}

impl<const KIND: u8> Native<KIND> {
    /// Runs `op` on an engine at the clock's time for `device`, keeping its audit events.
    fn call<T>(
        &mut self,
        device: Option<Device>,
        op: impl FnOnce(&Engine<'_>) -> Result<T, EngineError>,
    ) -> Outcome<T> {
        let mut engine = Engine::new(&self.config, &self.db, self.now());
        engine.device = device;
        let result = op(&engine);
        self.events
            .extend(engine.events.take().iter().map(event_value));
        result.map_err(session_error)
    }
}

/// An engine event as an audit line names it: `event` and the event's own fields.
fn event_value(event: &Event) -> Value {
    let mut value = event.fields();
    value["event"] = event.name().into();
    value
}

/// The engine's error as the component's export converts it.
fn session_error(err: EngineError) -> SessionError {
    match err {
        EngineError::NotFound => SessionError::NotFound,
        EngineError::Expired => SessionError::Expired,
        EngineError::InvalidToken => SessionError::InvalidToken,
        EngineError::InvalidInput(text) => SessionError::InvalidInput(text),
        EngineError::Forbidden(text) => SessionError::Forbidden(text),
        EngineError::LimitReached => SessionError::LimitReached,
        EngineError::Storage(err) => SessionError::Storage(err.to_string()),
        EngineError::Random(err) => SessionError::Storage(err.to_string()),
        EngineError::Config(err) => SessionError::Config(err.to_string()),
    }
}

fn session(s: engine::Session) -> Session {
    Session {
        id: s.id,
        user_id: s.user_id,
        created_at: s.created_at,
        last_activity: s.last_activity,
        expires_at: s.expires_at,
        absolute_expires_at: s.absolute_expires_at,
        idle_timeout: s.idle_timeout,
        metadata: s.metadata,
        is_active: s.is_active,
        client_addr: s.client_addr,
        user_agent: s.user_agent,
    }
}

fn issued(issued: engine::Issued) -> Issued {
    Issued {
        token: issued.token.expose(),
        session: session(issued.session),
    }
}

fn requirement(requirement: &Requirement) -> policy::Requirement {
    match requirement {
        Requirement::Role(role) => policy::Requirement::Role(role.clone()),
        Requirement::Permission(p) => policy::Requirement::Permission(p.clone()),
    }
}

/// One raced call on an engine of its own.
fn run(engine: &Engine<'_>, call: &Call) -> Result<Answer, EngineError> {
    Ok(match call {
        Call::Create(user) => Answer::Issued(issued(engine.create(user, None, None)?)),
        Call::CreateThenValidate(user) => {
            let created = engine.create(user, None, None)?;
            match engine.validate(&created.token.expose()) {
                Ok(_) | Err(EngineError::NotFound) => Answer::Issued(issued(created)),
                Err(err) => return Err(err),
            }
        }
        Call::Validate(token) => engine.validate(token).map(|_| Answer::Session)?,
        Call::Get(id_or_token) => engine.get(id_or_token).map(|_| Answer::Session)?,
        Call::Touch(token) => engine.touch(token.as_str()).map(|_| Answer::Session)?,
        Call::Extend(token, by) => engine
            .extend(token.as_str(), *by)
            .map(|_| Answer::Session)?,
        Call::Rotate(token) => Answer::Issued(issued(engine.rotate(token.as_str())?)),
        Call::Invalidate(id_or_token) => engine.invalidate(id_or_token).map(|()| Answer::Done)?,
        Call::Cleanup(max_rows) => Answer::Count(engine.cleanup(*max_rows)?),
    })
}

impl<const KIND: u8> Backend for Native<KIND> {
    const KEY_VALUE: bool = KIND == KEY_VALUE;

    async fn open(settings: &[(&str, &str)]) -> Self {
        let store = Arc::new(match KIND {
            SQLITE => Store::sqlite(),
            POSTGRES => Store::postgres(),
            _ => Store::key_value(),
        });
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let config = config(&settings);
        Self {
            db: store.db_for(&config, Duration::ZERO),
            store,
            config,
            settings: Arc::new(settings),
            clock: Arc::new(AtomicU64::new(START_MS)),
            events: Vec::new(),
        }
    }

    async fn another(&self) -> Self {
        Self {
            db: self.store.db_for(&self.config, Duration::ZERO),
            store: self.store.clone(),
            config: config(&self.settings),
            settings: self.settings.clone(),
            clock: self.clock.clone(),
            events: Vec::new(),
        }
    }

    fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).expect("a test's step");
        self.clock.fetch_add(by, Ordering::SeqCst);
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    async fn create(&mut self, user_id: &str, options: CreateOptions) -> Outcome<Issued> {
        // As the component: a device only when the caller names one.
        let device = (options.client_addr.is_some() || options.user_agent.is_some()).then(|| {
            Device::new(
                options.client_addr.as_deref(),
                options.user_agent.as_deref(),
            )
        });
        self.call(device, |e| {
            e.create(
                user_id,
                options.timeout_seconds,
                options.metadata.as_deref(),
            )
        })
        .map(issued)
    }

    async fn validate(&mut self, token: &str) -> Outcome<Session> {
        self.call(None, |e| e.validate(token)).map(session)
    }

    async fn authorize(&mut self, token: &str, required: &Requirement) -> Outcome<Session> {
        let required = requirement(required);
        self.call(None, |e| e.authorize(token, &required))
            .map(session)
    }

    async fn get(&mut self, id_or_token: &str) -> Outcome<Session> {
        self.call(None, |e| e.get(id_or_token)).map(session)
    }

    async fn touch(&mut self, token: &str) -> Outcome<Session> {
        self.call(None, |e| e.touch(token)).map(session)
    }

    async fn extend(&mut self, token: &str, additional_seconds: u32) -> Outcome<Session> {
        self.call(None, |e| e.extend(token, additional_seconds))
            .map(session)
    }

    async fn rotate(&mut self, token: &str) -> Outcome<Issued> {
        self.call(None, |e| e.rotate(token)).map(issued)
    }

    async fn invalidate(&mut self, id_or_token: &str) -> Outcome<()> {
        self.call(None, |e| e.invalidate(id_or_token))
    }

    async fn invalidate_user(&mut self, user_id: &str, except_id: Option<&str>) -> Outcome<u32> {
        self.call(None, |e| e.invalidate_user(user_id, except_id))
    }

    async fn invalidate_all(&mut self) -> Outcome<u32> {
        self.call(None, |e| e.invalidate_all())
    }

    async fn list_user(&mut self, user_id: &str) -> Outcome<Vec<Session>> {
        self.call(None, |e| e.list_user(user_id))
            .map(|list| list.into_iter().map(session).collect())
    }

    async fn list_users(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Outcome<UserPage> {
        let page = self.call(None, |e| e.list_users(prefix, after, limit))?;
        Ok(UserPage {
            users: page
                .users
                .into_iter()
                .map(|u| {
                    let at = zoe_session_wire::rfc3339(u.last_activity);
                    (u.user_id, u.sessions, at)
                })
                .collect(),
            next_after: page.next_after,
        })
    }

    async fn stats(&mut self) -> Outcome<SessionStats> {
        let stats = self.call(None, |e| e.stats())?;
        Ok(SessionStats {
            active_sessions: stats.active_sessions,
            active_users: stats.active_users,
            expired_awaiting_cleanup: stats.expired,
            last_cleanup_at: stats.last_cleanup_at,
        })
    }

    async fn cleanup(&mut self, max_rows: u32) -> Outcome<u32> {
        self.call(None, |e| e.cleanup(max_rows))
    }

    fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }

    async fn race(&self, calls: Vec<Call>) -> Vec<Outcome<Answer>> {
        let now = self.now();
        let (store, settings) = (&*self.store, &*self.settings);
        from_one_start_line(
            calls.len(),
            || {
                let config = config(settings);
                (store.db_for(&config, RACE_LATENCY), config)
            },
            |n, (db, config)| {
                run(&Engine::new(&config, &db, now), &calls[n]).map_err(session_error)
            },
        )
    }
}

/// Runs `prepare` on each of `threads` threads, then `race` on all of them from one start
/// line, and returns what each `race` returned, in thread order. A thread whose `prepare`
/// fails still reaches the start line before its panic is raised again, so the others are
/// never left waiting for it: a bare `Barrier` after a panicking open once hung CI until it
/// ran out of time.
pub fn from_one_start_line<P, T: Send>(
    threads: usize,
    prepare: impl Fn() -> P + Sync,
    race: impl Fn(usize, P) -> T + Sync,
) -> Vec<T> {
    let start_line = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|n| {
                let (start_line, prepare, race) = (&start_line, &prepare, &race);
                scope.spawn(move || {
                    let prepared = std::panic::catch_unwind(AssertUnwindSafe(prepare));
                    start_line.wait();
                    match prepared {
                        Ok(prepared) => race(n, prepared),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
