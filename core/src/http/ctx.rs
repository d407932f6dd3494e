//! What a handler sees: the request, the configuration, the request's time, and the database
//! opened on first use.

use super::{ApiError, Request, peer, strict_json};
use crate::config::{Config, LogLevel};
use crate::session::audit::Events;
use crate::session::engine::{Engine, EngineError};
use crate::store::{Db, Device, StoreError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::OnceCell;
use std::rc::Rc;

/// What a handler sees: the request, the configuration, the time of the request, and the
/// database opened on first use (so `/health` and `/openapi.json` never touch it).
#[derive(Debug)]
pub struct Ctx<'a> {
    pub req: &'a Request,
    pub config: &'a Config,
    pub now: u64,
    /// The request's audit events: the engines it creates record here, and so does the
    /// admin check; the pipeline writes them once the reply is known.
    pub events: Events,
    open: OpenDb,
    db: OnceCell<Rc<Db>>,
    client_addr: OnceCell<Option<String>>,
}

impl<'a> Ctx<'a> {
    /// A context for `req` without storage ([`no_store`]).
    pub fn new(req: &'a Request, config: &'a Config, now: u64) -> Self {
        Self::opening(req, config, now, no_store)
    }

    /// A context for `req`; the database is opened with `open` only when a handler asks for
    /// the engine.
    pub fn opening(req: &'a Request, config: &'a Config, now: u64, open: OpenDb) -> Self {
        Self {
            req,
            config,
            now,
            open,
            events: Events::default(),
            db: OnceCell::new(),
            client_addr: OnceCell::new(),
        }
    }
}

impl Ctx<'_> {
    /// The engine at this request's time.
    pub fn engine(&self) -> Result<Engine<'_>, ApiError> {
        let db = match self.db.get() {
            Some(db) => db,
            None => {
                let db = (self.open)(self.config)?;
                self.db.get_or_init(|| db)
            }
        };
        Ok(Engine {
            config: self.config,
            db,
            now: self.now,
            events: self.events.clone(),
            device: Some(Device::new(
                self.client_addr(),
                self.req.header("user-agent"),
            )),
        })
    }

    /// The client's address ([`peer::client_addr`]), worked out once per request for the
    /// device and the audit lines.
    pub fn client_addr(&self) -> Option<&str> {
        self.client_addr
            .get_or_init(|| peer::client_addr(self.req, self.config))
            .as_deref()
    }

    /// Parses a required JSON body.
    ///
    /// # Errors
    ///
    /// 415 for a non-JSON content type, 422 for an empty, malformed or ill-typed body or an
    /// unknown field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        self.optional_json()?
            .ok_or_else(|| ApiError::InvalidInput("a JSON request body is required".to_owned()))
    }

    /// Parses a JSON body that may be absent (empty).
    ///
    /// # Errors
    ///
    /// As [`Ctx::json`], except that an empty body is `None`.
    pub fn optional_json<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        if self.req.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let content_type = self.req.header("content-type").unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        let is_json = media.eq_ignore_ascii_case("application/json")
            || media.to_ascii_lowercase().ends_with("+json");
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let invalid =
            |err: serde_json::Error| ApiError::InvalidInput(format!("invalid JSON body: {err}"));
        strict_json::check_unique_keys(&self.req.body).map_err(invalid)?;
        let value: Value = serde_json::from_slice(&self.req.body).map_err(invalid)?;
        // Every body is an object; serde's derived structs would also accept an array of the
        // fields in order (`[600]` as an extend body), which no client means to send.
        if !value.is_object() {
            return Err(ApiError::InvalidInput(
                "the JSON request body must be an object".to_owned(),
            ));
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|err| ApiError::InvalidInput(format!("invalid JSON body: {err}")))
    }

    /// The one value of query parameter `name`, if given.
    ///
    /// # Errors
    ///
    /// 422 for a parameter given more than once (which copy a proxy in front reads is
    /// anyone's guess) or one that does not percent-decode.
    pub fn single_query(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.req.query_params(name);
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(ApiError::InvalidInput(format!(
                "query parameter `{name}` is given more than once"
            )));
        }
        first.map(Some).ok_or_else(|| {
            ApiError::InvalidInput(format!(
                "query parameter `{name}` is not valid percent-encoded UTF-8"
            ))
        })
    }

    /// A boolean query flag: absent is false, otherwise exactly one `true` or `false`.
    ///
    /// # Errors
    ///
    /// 422 for any other value (`1`, `yes`, an empty value) or a flag given more than once:
    /// a flag that confirms something (a mass logout, a cookie) must be said plainly.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.single_query(name)?.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::InvalidInput(format!(
                "query parameter `{name}` must be true or false, got {other:?}"
            ))),
        }
    }

    /// This service's own origin (`scheme://authority`), from `spin-full-url` or `Host`.
    ///
    /// # Errors
    ///
    /// A bad `trusted_proxies`, when the request carries a forwarding header.
    pub fn origin(&self) -> Result<Option<String>, ApiError> {
        // The scheme is judged as `require_https` judges it (a trusted proxy's word, else the
        // connection's); the authority is the one the client addressed.
        let authority = match self.req.header("spin-full-url") {
            Some(url) => match url.split_once("://") {
                Some((_, rest)) => rest.split(['/', '?']).next().unwrap_or(""),
                None => return Ok(None),
            },
            None => match self.req.header("host") {
                Some(host) => host,
                None => return Ok(None),
            },
        };
        let scheme = if peer::is_https(self.req, self.config)? {
            "https"
        } else {
            "http"
        };
        Ok(Some(format!("{scheme}://{authority}")))
    }

    /// The log threshold; a bad `log_level` (already refused by `handle`) logs everything.
    pub fn log_level(&self) -> LogLevel {
        self.config.log_level().copied().unwrap_or(LogLevel::Debug)
    }
}

/// How a shell opens the instance's database handle: the component opens Spin's SQLite or
/// PostgreSQL; the core names no backend of its own.
pub type OpenDb = fn(&Config) -> Result<Rc<Db>, EngineError>;

/// The opener of a build without storage (the core's own tests): every database access is a
/// fault, and `/health` and the other routes without storage still answer.
pub fn no_store(_: &Config) -> Result<Rc<Db>, EngineError> {
    Err(EngineError::Storage(StoreError::Shape(
        "no store: this build serves no database",
    )))
}
