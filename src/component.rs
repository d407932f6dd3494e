//! The `zoe:session/sessions` export, for both builds (the WASIp3 shell in `p3/` includes this
//! file): reads the clock and configuration once per call, runs the engine, and converts its
//! results into WIT types. Nothing here decides policy. The HTTP layer shares its clock,
//! configuration and database handle (`crate::instance`, `crate::settings`).

use crate::bindings::exports::zoe::session::sessions as wit;
use crate::config::LogLevel;
use crate::http::log;
use crate::instance::{db, now_ms};
use crate::session::engine::{Engine, EngineError, Issued, Session};
use crate::session::policy::Requirement;
use crate::settings::config;
use crate::store::Device;

struct Component;

crate::bindings::export!(Component with_types_in crate::bindings);

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
