//! The REST API of DESIGN.md, served through `wasi:http/incoming-handler`.
//!
//! [`ROUTES`] is the one route table: the dispatcher reads it, and a test checks it against
//! the OpenAPI document. A request flows through [`handle`]: configuration check, HTTPS
//! requirement, body cap, route match (404/405), the handler, then the request log line.
//! Handlers ([`routes`]) are thin: they check authorization ([`auth`]), parse input and call
//! the [`Engine`] directly; every failure is an [`ApiError`] turned into JSON in one place.

pub mod auth;
mod console;
pub mod cookies;
// The `wasi:http` export exists only in the wasm build, like the WIT exports.
#[cfg(target_arch = "wasm32")]
mod entry;
mod error;
mod json;
pub mod log;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties;
mod routes;
mod strict_json;

pub use error::ApiError;

use crate::config::{Config, LogLevel};
use crate::session::engine::Engine;
use crate::store::Db;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Instant;

/// Largest request body accepted; bigger bodies get 413 without being read to the end.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI 3 document of this API, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// A request, read in full (up to [`MAX_BODY_BYTES`]) by the entry point.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path, still percent-encoded.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Set when the body exceeded [`MAX_BODY_BYTES`] (and was not read further).
    pub body_too_large: bool,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of header `name` (case-insensitive).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every occurrence of query parameter `name`, decoded (`None` for one that does not
    /// decode).
    pub fn query_params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Option<String>> + 'a {
        self.query.split('&').filter_map(move |pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(&key.replace('+', " "))? == name)
                .then(|| percent_decode(&value.replace('+', " ")))
        })
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON response.
    pub fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        }
    }

    /// 200 with a JSON body.
    pub fn ok(value: &Value) -> Self {
        Self::json(200, value)
    }

    /// Adds a header.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_owned(), value.into()));
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What a handler sees: the request, the configuration, the time of the request, and the
/// database opened on first use (so `/health` and `/openapi.json` never touch it).
#[derive(Debug)]
pub struct Ctx<'a> {
    pub req: &'a Request,
    pub config: &'a Config,
    pub now: u64,
    db: OnceCell<Rc<Db>>,
}

impl<'a> Ctx<'a> {
    /// A context for `req`; the database is opened only when a handler asks for the engine.
    pub fn new(req: &'a Request, config: &'a Config, now: u64) -> Self {
        Self {
            req,
            config,
            now,
            db: OnceCell::new(),
        }
    }
}

impl Ctx<'_> {
    /// The engine at this request's time.
    pub fn engine(&self) -> Result<Engine<'_>, ApiError> {
        let db = match self.db.get() {
            Some(db) => db,
            None => {
                let db = open_db(self.config)?;
                self.db.get_or_init(|| db)
            }
        };
        Ok(Engine {
            config: self.config,
            db,
            now: self.now,
        })
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
        let scheme = if auth::is_https(self.req, self.config)? {
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

/// The request's database connection (the Spin backends exist only inside the component).
#[cfg(target_arch = "wasm32")]
fn open_db(config: &Config) -> Result<Rc<Db>, ApiError> {
    Ok(crate::component::db(config)?)
}

#[cfg(not(target_arch = "wasm32"))]
fn open_db(_config: &Config) -> Result<Rc<Db>, ApiError> {
    Err(ApiError::Internal(
        "storage is only available inside the component".to_owned(),
    ))
}

/// A route handler: path parameters in pattern order.
pub type Handler = fn(&Ctx<'_>, &[String]) -> Result<Reply, ApiError>;

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Literal segments and `{name}` parameters, as in the OpenAPI document.
    pub pattern: &'static str,
    pub handler: Handler,
}

/// Every endpoint of the API.
pub const ROUTES: &[Route] = &[
    route("POST", "/sessions/create", routes::create),
    route("GET", "/sessions/validate", routes::validate),
    route("GET", "/sessions/stats", routes::stats),
    route("GET", "/sessions/users", routes::list_users),
    route("POST", "/sessions/cleanup", routes::cleanup),
    route("DELETE", "/sessions", routes::delete_all),
    route("GET", "/sessions/{session_id}", routes::get),
    route("DELETE", "/sessions/{session_id}", routes::delete),
    route("POST", "/sessions/{session_id}/activity", routes::activity),
    route("POST", "/sessions/{session_id}/extend", routes::extend),
    route("POST", "/sessions/{session_id}/rotate", routes::rotate),
    route("DELETE", "/sessions/user/{user_id}", routes::delete_user),
    route(
        "GET",
        "/sessions/user/{user_id}/sessions",
        routes::list_user,
    ),
    route("GET", "/health", routes::health),
    route("GET", "/openapi.json", routes::openapi),
    route("GET", "/admin", console::redirect),
    route("GET", "/admin/", console::page),
    route("GET", "/admin/console.js", console::script),
    route("GET", "/admin/console.css", console::style),
];

const fn route(method: &'static str, pattern: &'static str, handler: Handler) -> Route {
    Route {
        method,
        pattern,
        handler,
    }
}

/// The parameters of `pattern` matched against `segments`, or `None`. Parameters never match
/// an empty segment.
fn match_pattern(pattern: &str, segments: &[String]) -> Option<Vec<String>> {
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            params.push(segment.clone());
        } else if part != segment {
            return None;
        }
    }
    Some(params)
}

fn literal_segments(pattern: &str) -> usize {
    pattern.split('/').filter(|p| !p.starts_with('{')).count()
}

/// Finds the route for `method` and `path`. Among patterns matching the path, the most
/// literal ones win, so `/sessions/stats` is never read as a session id.
///
/// # Errors
///
/// 404 when no pattern matches the path; 405 (with the allowed methods) when only the
/// method is wrong.
pub fn find_route(method: &str, path: &str) -> Result<(&'static Route, Vec<String>), ApiError> {
    // The path is not echoed: it may hold a credential the client put in the wrong place.
    let not_found = || ApiError::NotFound("no endpoint matches this path".to_owned());
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or_else(not_found)?;
    let matching: Vec<(&'static Route, Vec<String>)> = ROUTES
        .iter()
        .filter_map(|r| match_pattern(r.pattern, &segments).map(|p| (r, p)))
        .collect();
    let best = matching
        .iter()
        .map(|(r, _)| literal_segments(r.pattern))
        .max()
        .ok_or_else(not_found)?;
    let mut candidates = matching
        .into_iter()
        .filter(|(r, _)| literal_segments(r.pattern) == best);
    let mut allowed = Vec::new();
    for (route, params) in candidates.by_ref() {
        if route.method == method {
            return Ok((route, params));
        }
        allowed.push(route.method);
    }
    Err(ApiError::MethodNotAllowed(allowed))
}

/// Decodes `%XX` escapes; `None` for a bad escape or invalid UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Serves one request. `now` is the request's time (the clock is read once, by the caller);
/// `started` only measures the duration for the log line. Settings are read as the request
/// needs them; one that is bad answers 500 naming it.
pub fn handle(req: &Request, now: u64, config: &Config, started: Instant) -> Reply {
    let ctx = Ctx::new(req, config, now);
    // Every request ends with its log line, so both logging settings are needed first.
    let request_line = config
        .log_requests()
        .and_then(|on| Ok(on.then_some(*config.log_level()?)));
    let mut reply = match &request_line {
        Err(err) => {
            // No usable log level: configuration errors are always logged.
            log::emit(
                LogLevel::Debug,
                LogLevel::Error,
                now,
                "invalid configuration",
                json!({"cause": err.to_string()}),
            );
            ApiError::Config(err.clone()).into_reply()
        }
        Ok(_) => dispatch(&ctx).unwrap_or_else(|err| {
            if err.status() >= 500 && !matches!(err, ApiError::AdminKeyMissing) {
                log::emit(
                    ctx.log_level(),
                    LogLevel::Error,
                    now,
                    "request failed",
                    json!({"kind": err.kind(), "cause": err.to_string(),
                           "path": log::redact_path(&req.path)}),
                );
            }
            err.into_reply()
        }),
    };
    if req.method == "HEAD" {
        reply.body.clear();
    }
    // Responses may carry tokens; no cache may keep them.
    reply.set_header("cache-control", "no-store");
    if config.require_https() == Ok(&true) {
        reply.set_header(
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        );
    }
    if let Ok(Some(level)) = request_line {
        log::emit(
            level,
            LogLevel::Info,
            now,
            "request",
            json!({
                "method": req.method,
                "path": log::redact_path(&req.path),
                "status": reply.status,
                "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
            }),
        );
    }
    reply
}

fn dispatch(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    // Health stays reachable over plain HTTP so that probes inside the cluster keep working.
    if ctx.req.path != "/health"
        && *ctx.config.require_https()?
        && !auth::is_https(ctx.req, ctx.config)?
    {
        return Err(ApiError::forbidden(
            "https_required",
            "this service requires HTTPS",
        ));
    }
    if ctx.req.body_too_large {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    // HEAD is GET without the body (load balancers probe `/health` with it); `handle` drops
    // the body.
    let method = match ctx.req.method.as_str() {
        "HEAD" => "GET",
        other => other,
    };
    let (route, params) = find_route(method, &ctx.req.path)?;
    (route.handler)(ctx, &params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn literal_routes_win_over_parameters() {
        let (route, params) = find_route("GET", "/sessions/stats").unwrap();
        assert_eq!(route.pattern, "/sessions/stats");
        assert!(params.is_empty());
        let (route, params) = find_route("GET", "/sessions/abc").unwrap();
        assert_eq!(route.pattern, "/sessions/{session_id}");
        assert_eq!(params, ["abc"]);
    }

    #[test]
    fn a_wrong_method_is_405_with_the_allowed_methods() {
        match find_route("PUT", "/sessions/abc") {
            Err(ApiError::MethodNotAllowed(allowed)) => assert_eq!(allowed, ["GET", "DELETE"]),
            other => panic!("{other:?}"),
        }
        match find_route("GET", "/sessions/create") {
            Err(ApiError::MethodNotAllowed(allowed)) => assert_eq!(allowed, ["POST"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/",
            "/nope",
            "/session",
            "/sessions/",
            "/sessions/a/b/c/d",
            "/%zz",
        ] {
            assert!(
                matches!(find_route("GET", path), Err(ApiError::NotFound(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn path_parameters_are_percent_decoded() {
        let (_, params) = find_route("GET", "/sessions/user/jane%20doe/sessions").unwrap();
        assert_eq!(params, ["jane doe"]);
    }

    #[test]
    fn query_parameters_are_decoded() {
        let req = Request {
            query: "role=team%20lead&x=1&flag".into(),
            ..Request::default()
        };
        assert_eq!(
            req.query_params("role").next().flatten().as_deref(),
            Some("team lead")
        );
        assert_eq!(
            req.query_params("flag").next().flatten().as_deref(),
            Some("")
        );
        assert_eq!(req.query_params("missing").next().flatten(), None);
    }

    #[test]
    fn a_bad_setting_a_request_needs_is_a_500_config_error_naming_the_setting() {
        let req = Request {
            method: "GET".into(),
            path: "/sessions/validate".into(),
            ..Request::default()
        };
        let config = Config::from_pairs(&[("session_header", "X Session")]);
        let reply = handle(&req, 0, &config, Instant::now());
        assert_eq!(reply.status, 500);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"], "config");
        assert!(body["detail"].as_str().unwrap().contains("session_header"));
        // A bad log level refuses every request: each one ends with a log line.
        let health = Request {
            path: "/health".into(),
            ..req
        };
        let config = Config::from_pairs(&[("log_level", "loud")]);
        assert_eq!(handle(&health, 0, &config, Instant::now()).status, 500);
        // Positive control: a bad setting /health does not read leaves it answering.
        let config = Config::from_pairs(&[("max_timeout", "soon")]);
        assert_eq!(handle(&health, 0, &config, Instant::now()).status, 200);
    }

    #[test]
    fn health_and_errors_need_no_database() {
        let req = Request {
            method: "GET".into(),
            path: "/health".into(),
            ..Request::default()
        };
        let reply = handle(&req, 0, &Config::default(), Instant::now());
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }

    /// Every route of the table is in the OpenAPI document, and the document has no other.
    #[test]
    fn openapi_document_lists_exactly_the_routes_of_the_table() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON");
        assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "post", "put", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    documented.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
            .collect();
        assert_eq!(routed, documented);
    }
}
