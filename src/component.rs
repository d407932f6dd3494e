//! The `zoe:session/sessions` export: reads the clock and configuration once per call, runs
//! the engine, and converts its results into WIT types. Nothing here decides policy. The
//! HTTP layer shares its clock, configuration and database handles.

use crate::bindings::exports::zoe::session::sessions as wit;
use crate::config::{Backend, Config, Database, LogLevel};
use crate::http::log;
use crate::session::engine::{Engine, EngineError, Issued, Session};
use crate::session::policy::Requirement;
use crate::spin_postgres::SpinPostgres;
use crate::spin_sqlite::SpinSqlite;
use crate::store::{Db, Device, Executor};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

struct Component;

crate::bindings::export!(Component with_types_in crate::bindings);

/// Milliseconds since the epoch from `wasi:clocks/wall-clock`: the one place the clock is read.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

thread_local! {
    // An instance may serve many calls (the native host reuses one); each setting is read on
    // first use and kept for the instance's life.
    static CONFIG: Rc<Config> = Rc::new(Config::from_lookup(variable));
}

/// The configuration from Spin variables, each read when first needed.
pub(crate) fn config() -> Rc<Config> {
    CONFIG.with(Rc::clone)
}

/// One Spin variable. Undeclared or undefined variables take their defaults; a provider
/// failure also falls back rather than taking the service down, and is logged.
fn variable(name: &'static str) -> Option<String> {
    match spin_sdk::variables::get(name) {
        Ok(value) => Some(value),
        Err(err) => {
            if !matches!(
                err,
                spin_sdk::variables::Error::Undefined(_)
                    | spin_sdk::variables::Error::InvalidName(_)
            ) {
                // Settings are read lazily, far from the request's entry point, so this line
                // takes its own time; it is a log timestamp, never a decision.
                log::write_line(zoe_session_wire::log_line(
                    now_ms(),
                    "WARN",
                    "variable provider failed",
                    serde_json::json!({"variable": name}),
                ));
            }
            None
        }
    }
}

thread_local! {
    // The instance's database handle, opened on first use (the schema is checked when first
    // needed, see `Db::open_deferred`). Keeping it
    // costs nothing between calls: `spin:sqlite` hosts pool connections per statement or give
    // each instance its own (Spin gives every request a fresh instance).
    static DB: RefCell<Option<Rc<Db>>> = const { RefCell::new(None) };
}

/// The instance's database handle on the backend `config` names (a SQL database, or the
/// key-value store `key_value_store` labels). A failed open is not
/// remembered, so the next call tries again; a handle whose transaction may not have ended,
/// or whose database was unreachable, is replaced by a fresh one.
pub(crate) fn db(config: &Config) -> Result<Rc<Db>, EngineError> {
    DB.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(db) = slot.as_ref().filter(|db| !db.is_unsettled()) {
            return Ok(db.clone());
        }
        // Drop a stale handle (and its connection) before opening the next.
        *slot = None;
        let open_sql = |exec: Box<dyn Executor>| {
            // Migrations wait for the first write or failed read, so that a fresh instance's
            // validate is one statement.
            Db::open_deferred(exec)
        };
        let db = Rc::new(match config.backend()? {
            Backend::Sql(Database::Sqlite) => open_sql(Box::new(SpinSqlite::open()?)),
            Backend::Sql(Database::Postgres(url)) => open_sql(Box::new(SpinPostgres::open(url)?)),
            Backend::KeyValue(label) => Db::open_key_value(
                crate::spin_key_value::open(label)?,
                *config.max_per_user()?,
            )?,
        });
        *slot = Some(db.clone());
        Ok(db)
    })
}

/// Runs `op` against a fresh engine view at the current time.
fn with_engine<T>(op: impl FnOnce(&Engine<'_>) -> Result<T, EngineError>) -> Result<T, wit::Error> {
    with_device_engine(None, op)
}

/// Like [`with_engine`], for a caller that says which device it acts for.
fn with_device_engine<T>(
    device: Option<Device>,
    op: impl FnOnce(&Engine<'_>) -> Result<T, EngineError>,
) -> Result<T, wit::Error> {
    let now = now_ms();
    let run = || {
        let config = config();
        let db = db(&config)?;
        let mut engine = Engine::new(&config, &db, now);
        engine.device = device;
        let result = op(&engine);
        log::audit(
            &config,
            now,
            engine.events.take(),
            log::Origin::default(),
            0,
        );
        result
    };
    run().map_err(wit::Error::from)
}

impl From<EngineError> for wit::Error {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::NotFound => Self::NotFound,
            EngineError::Expired => Self::Expired,
            EngineError::InvalidToken => Self::InvalidToken,
            EngineError::InvalidInput(text) => Self::InvalidInput(text),
            EngineError::Forbidden(text) => Self::Forbidden(text),
            EngineError::LimitReached => Self::LimitReached,
            EngineError::Storage(err) => Self::Storage(err.to_string()),
            EngineError::Random(err) => Self::Storage(err.to_string()),
            EngineError::Config(err) => Self::Config(err.to_string()),
        }
    }
}

impl From<Session> for wit::Session {
    fn from(s: Session) -> Self {
        Self {
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
}

impl From<Issued> for wit::Issued {
    fn from(issued: Issued) -> Self {
        Self {
            token: issued.token.expose(),
            session: issued.session.into(),
        }
    }
}

impl From<wit::Requirement> for Requirement {
    fn from(requirement: wit::Requirement) -> Self {
        match requirement {
            wit::Requirement::Role(role) => Self::Role(role),
            wit::Requirement::Permission(permission) => Self::Permission(permission),
        }
    }
}

impl wit::Guest for Component {
    fn create(user_id: String, options: wit::CreateOptions) -> Result<wit::Issued, wit::Error> {
        let device = (options.client_addr.is_some() || options.user_agent.is_some()).then(|| {
            Device::new(
                options.client_addr.as_deref(),
                options.user_agent.as_deref(),
            )
        });
        with_device_engine(device, |e| {
            let issued = e.create(
                &user_id,
                options.timeout_seconds,
                options.metadata.as_deref(),
            )?;
            log::cleanup_failure(
                e.config.log_level().copied().unwrap_or(LogLevel::Debug),
                e.now,
                &issued,
            );
            Ok(issued)
        })
        .map(Into::into)
    }

    fn validate(token: String) -> Result<wit::Session, wit::Error> {
        with_engine(|e| e.validate(&token)).map(Into::into)
    }

    fn authorize(token: String, requirement: wit::Requirement) -> Result<wit::Session, wit::Error> {
        with_engine(|e| e.authorize(&token, &requirement.into())).map(Into::into)
    }

    fn get(id_or_token: String) -> Result<wit::Session, wit::Error> {
        with_engine(|e| e.get(&id_or_token)).map(Into::into)
    }

    fn touch(token: String) -> Result<wit::Session, wit::Error> {
        with_engine(|e| e.touch(&token)).map(Into::into)
    }

    fn extend(token: String, additional_seconds: u32) -> Result<wit::Session, wit::Error> {
        with_engine(|e| e.extend(&token, additional_seconds)).map(Into::into)
    }

    fn rotate(token: String) -> Result<wit::Issued, wit::Error> {
        with_engine(|e| e.rotate(&token)).map(Into::into)
    }

    fn invalidate(id_or_token: String) -> Result<(), wit::Error> {
        with_engine(|e| e.invalidate(&id_or_token))
    }

    fn invalidate_user(user_id: String, except_id: Option<String>) -> Result<u32, wit::Error> {
        with_engine(|e| e.invalidate_user(&user_id, except_id.as_deref()))
    }

    fn invalidate_all() -> Result<u32, wit::Error> {
        with_engine(|e| e.invalidate_all())
    }

    fn list_user(user_id: String) -> Result<Vec<wit::Session>, wit::Error> {
        with_engine(|e| e.list_user(&user_id))
            .map(|list| list.into_iter().map(Into::into).collect())
    }

    fn stats() -> Result<wit::SessionStats, wit::Error> {
        with_engine(|e| e.stats()).map(|s| wit::SessionStats {
            active_sessions: s.active_sessions,
            active_users: s.active_users,
            expired_awaiting_cleanup: s.expired,
            last_cleanup_at: s.last_cleanup_at,
        })
    }

    fn cleanup(max_rows: u32) -> Result<u32, wit::Error> {
        with_engine(|e| e.cleanup(max_rows))
    }
}
