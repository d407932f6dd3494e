//! The decision on one request: pass it on (with or without the session's identity) or answer
//! it. Pure but for the store, which it reaches through the core's engine, so native tests run
//! it on a real SQLite store.
//!
//! Order: the settings, the path ([`crate::rules`]), the HTTPS requirement where a credential
//! is read (`require_https`, 403 as the API answers), the token (session header, else cookie;
//! twice is ambiguous, 400), the CSRF rule for a cookie-authenticated state change (403), the
//! session (validated on the store, which slides its activity as the API's validate does),
//! then its roles and permissions (403). A store that cannot answer is a 503, on every path
//! that needs it: the middleware never lets a request through because it could not check it.

use crate::identity;
use crate::rules::{Access, Rules};
use serde_json::json;
use zoe_session_core::config::{Backend, Config, ConfigError, LogLevel};
use zoe_session_core::http::{ApiError, Ctx, OpenDb, Reply, Request, auth, log, no_store, peer};
use zoe_session_core::session::engine::{EngineError, Session};
use zoe_session_core::session::policy;
use zoe_session_core::session::token::Token;
use zoe_session_core::store::kv::read_ahead::lookup_keys;

/// What the middleware does with a request.
#[derive(Debug)]
pub enum Decision {
    /// Pass it on, every client copy of an identity header removed and these added (none on
    /// an open or excluded path, or an optional one without a valid session).
    Forward(Vec<(&'static str, String)>),
    /// Answer the client; the app never sees the request.
    Answer(Reply),
}

/// Decides on `req` at `now`; `open` opens the store when a session must be checked.
pub fn decide(req: &Request, config: &Config, now: u64, open: OpenDb) -> Decision {
    let ctx = Ctx::opening(req, config, now, open);
    let decision = match judge(&ctx) {
        Ok(Some(session)) => Decision::Forward(identity::headers(&session)),
        Ok(None) => Decision::Forward(Vec::new()),
        Err(refusal) => Decision::Answer(refusal.into_reply(req, config, &ctx)),
    };
    let events = ctx.events.take();
    if !events.is_empty() {
        log::audit(
            config,
            now,
            events,
            log::Origin {
                client_addr: ctx.client_addr(),
                request_id: req.header("x-request-id"),
            },
            0,
        );
    }
    decision
}

/// Why a request is answered by the middleware.
#[derive(Debug)]
enum Refusal {
    /// No valid session where one is needed: 401 JSON, or the login page for a browser.
    NoSession(ApiError),
    /// Anything else, answered as it is.
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl From<ConfigError> for Refusal {
    fn from(err: ConfigError) -> Self {
        Self::Api(ApiError::Config(err))
    }
}

impl Refusal {
    fn into_reply(self, req: &Request, config: &Config, ctx: &Ctx<'_>) -> Reply {
        let err = match self {
            Self::NoSession(err) => match config.login_url() {
                Ok(Some(login)) if is_navigation(req) => return redirect(login, req),
                _ => err,
            },
            Self::Api(err) => err,
        };
        if err.status() >= 500 {
            // The cause goes to the log only; the client learns the kind.
            log::emit(
                ctx.log_level(),
                LogLevel::Error,
                ctx.now,
                "session middleware refused a request it could not check",
                json!({"kind": err.kind(), "cause": err.to_string()}),
            );
        }
        let mut reply = err.into_reply();
        reply.set_header("cache-control", "no-store");
        reply
    }
}

/// The credential a request brings to a path that wants a session: its token, and whether
/// the path requires it (protected) or only takes it (optional).
struct Credential {
    token: String,
    required: bool,
    verdict: crate::rules::Verdict,
}

/// The token `judge` will validate, having checked everything that comes before the store:
/// the path's rules, the HTTPS requirement, the token's source, and the CSRF rule for a
/// cookie. `None` to pass the request on without a session.
fn credential(ctx: &Ctx<'_>) -> Result<Option<Credential>, Refusal> {
    let config = ctx.config;
    let rules = Rules {
        protected: config.protected_paths()?,
        excluded: config.excluded_paths()?,
        optional: config.optional_paths()?,
        roles: config.required_roles()?,
        permissions: config.required_permissions()?,
    };
    check_token_header(config)?;
    let verdict = rules
        .judge(&ctx.req.path)
        .map_err(|err| ApiError::BadRequest {
            kind: "ambiguous_path",
            detail: err.to_string(),
        })?;
    let required = verdict.access == Access::Protected;
    if matches!(verdict.access, Access::Open | Access::Excluded) {
        return Ok(None);
    }
    // As the API: with `require_https`, no credential is read from a plain-HTTP request.
    if *config.require_https()? && !peer::is_https(ctx.req, config)? {
        return Err(ApiError::forbidden("https_required", "this service requires HTTPS").into());
    }
    let Some((token, source)) = auth::caller_token(ctx)? else {
        return if required {
            Err(Refusal::NoSession(ApiError::unauthorized(format!(
                "this path needs a session: send its token in the {} header or the session cookie",
                config.session_header()?
            ))))
        } else {
            Ok(None)
        };
    };
    if source == auth::Source::Cookie {
        auth::check_csrf(ctx)?;
    }
    Ok(Some(Credential {
        token,
        required,
        verdict,
    }))
}

/// The key-value keys [`decide`] is sure to read for `req`, so that the handler reads them
/// together beforehand (`read_ahead`): the lookup keys of the session it will validate, when
/// sessions live in a key-value store. Nothing when it validates none (an open or excluded
/// path, no token or a malformed one, a refusal before the store): each read counts against
/// a platform's read budget.
pub fn key_value_reads_ahead(req: &Request, config: &Config) -> Vec<String> {
    if !matches!(config.backend(), Ok(Backend::KeyValue(_))) {
        return Vec::new();
    }
    let ctx = Ctx::opening(req, config, 0, no_store);
    match credential(&ctx) {
        Ok(Some(credential)) => Token::parse(&credential.token)
            .map(|token| lookup_keys(&token.id))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The session the request carries, when its path wants one; `None` to pass it on without.
fn judge(ctx: &Ctx<'_>) -> Result<Option<Session>, Refusal> {
    let Some(Credential {
        token,
        required,
        verdict,
    }) = credential(ctx)?
    else {
        return Ok(None);
    };
    let session = match ctx.engine()?.validate(&token) {
        Ok(session) => session,
        Err(err @ (EngineError::NotFound | EngineError::Expired | EngineError::InvalidToken)) => {
            if !required {
                return Ok(None);
            }
            return Err(Refusal::NoSession(match err {
                EngineError::NotFound => ApiError::Unauthorized {
                    kind: "invalid_session",
                    detail: "the session does not exist (it was invalidated or has expired)"
                        .to_owned(),
                },
                other => ApiError::from(other),
            }));
        }
        // Any store failure fails closed, as a passing condition worth retrying.
        Err(EngineError::Storage(err)) => {
            return Err(ApiError::StorageUnavailable(err.to_string()).into());
        }
        Err(other) => return Err(ApiError::from(other).into()),
    };
    for requirement in &verdict.requirements {
        if !policy::authorizes(&session.metadata, requirement) {
            let detail = match requirement {
                policy::Requirement::Role(role) => format!("this path needs the role `{role}`"),
                policy::Requirement::Permission(p) => {
                    format!("this path needs the permission `{p}`")
                }
            };
            return Err(ApiError::forbidden("forbidden", detail).into());
        }
    }
    Ok(Some(session))
}

/// A token header in the reserved family would be stripped or forged as identity: refused.
fn check_token_header(config: &Config) -> Result<(), ConfigError> {
    let header = config.session_header()?;
    if identity::IDENTITY_HEADERS
        .iter()
        .any(|name| name.eq_ignore_ascii_case(header))
    {
        return Err(ConfigError {
            name: "session_header",
            rule: format!(
                "must not be one of the identity headers the middleware sets ({})",
                identity::IDENTITY_HEADERS.join(", ")
            ),
        });
    }
    Ok(())
}

/// A browser loading a page (rather than a script fetching data): `Sec-Fetch-Mode: navigate`,
/// or, from a browser too old to say, a `GET` or `HEAD` that accepts HTML.
pub fn is_navigation(req: &Request) -> bool {
    match req.header("sec-fetch-mode") {
        Some(mode) => mode.trim().eq_ignore_ascii_case("navigate"),
        None => {
            matches!(req.method.as_str(), "GET" | "HEAD")
                && req
                    .headers_named("accept")
                    .any(|accept| accept.to_ascii_lowercase().contains("text/html"))
        }
    }
}

/// 303 to `login` with `next` set to the path and query the browser asked for.
fn redirect(login: &str, req: &Request) -> Reply {
    let mut target = req.path.clone();
    if !req.query.is_empty() {
        target.push('?');
        target.push_str(&req.query);
    }
    let separator = if login.contains('?') { '&' } else { '?' };
    let location = format!("{login}{separator}next={}", query_encode(&target));
    let mut reply = Reply::json_text(
        303,
        zoe_session_wire::error_body("unauthorized", "sign in first: this page needs a session"),
    );
    reply.set_header("location", location);
    reply.set_header("cache-control", "no-store");
    reply
}

/// `text` with everything but RFC 3986's unreserved characters and `/` percent-encoded, for
/// a query value.
fn query_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use zoe_session_core::session::engine::Engine;
    use zoe_session_core::store::Db;
    use zoe_session_core::store::native_sqlite::NativeSqlite;

    const NOW: u64 = 1_800_000_000_000;

    thread_local! {
        static STORE: RefCell<Option<Rc<Db>>> = const { RefCell::new(None) };
    }

    fn store(_: &Config) -> Result<Rc<Db>, EngineError> {
        Ok(STORE.with(|slot| {
            slot.borrow_mut()
                .get_or_insert_with(|| {
                    Rc::new(Db::open(Box::new(NativeSqlite::in_memory().unwrap())).unwrap())
                })
                .clone()
        }))
    }

    fn down(_: &Config) -> Result<Rc<Db>, EngineError> {
        Err(EngineError::Storage(
            zoe_session_core::store::StoreError::Unavailable("connection refused".to_owned()),
        ))
    }

    fn config() -> Config {
        Config::from_pairs(&[
            ("protected_paths", "/api,/admin"),
            ("excluded_paths", "/health"),
            ("optional_paths", "/feed"),
            ("required_roles", "/admin=admin"),
            ("required_permissions", "/api/reports=reports:read"),
            ("login_url", "/login"),
        ])
    }

    /// A fresh store with one session of `user` holding `metadata`; its token.
    fn session(config: &Config, user: &str, metadata: &str) -> String {
        STORE.with(|slot| slot.borrow_mut().take());
        let db = store(config).unwrap();
        Engine::new(config, &db, NOW)
            .create(user, None, Some(metadata))
            .unwrap()
            .token
            .expose()
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..Request::default()
        }
    }

    fn forwarded(decision: Decision) -> Vec<(&'static str, String)> {
        match decision {
            Decision::Forward(identity) => identity,
            Decision::Answer(reply) => panic!(
                "answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ),
        }
    }

    fn answered(decision: Decision) -> Reply {
        match decision {
            Decision::Answer(reply) => reply,
            Decision::Forward(identity) => panic!("forwarded with {identity:?}"),
        }
    }

    fn value<'a>(identity: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        identity
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_valid_header_token_forwards_the_identity() {
        let config = config();
        let token = session(&config, "alice", r#"{"role":"editor","permissions":["x"]}"#);
        let identity = forwarded(decide(
            &request("GET", "/api/chat", &[("x-session-id", &token)]),
            &config,
            NOW + 1000,
            store,
        ));
        assert_eq!(value(&identity, identity::USER_ID), Some("alice"));
        assert_eq!(value(&identity, identity::ROLES), Some("editor"));
        assert_eq!(value(&identity, identity::PERMISSIONS), Some("x"));
        let public_id = token.split_once('.').unwrap().0;
        assert_eq!(value(&identity, identity::PUBLIC_ID), Some(public_id));
    }

    #[test]
    fn no_or_a_bad_token_on_a_protected_path_is_401_json_and_navigations_go_to_login() {
        let config = config();
        let token = session(&config, "alice", "{}");
        let reply = answered(decide(&request("GET", "/api/x", &[]), &config, NOW, store));
        assert_eq!(reply.status, 401);
        assert!(String::from_utf8_lossy(&reply.body).contains(r#""error":"unauthorized""#));
        let forged = format!("{}x", &token[..token.len() - 1]);
        let reply = answered(decide(
            &request("GET", "/api/x", &[("x-session-id", &forged)]),
            &config,
            NOW,
            store,
        ));
        assert_eq!(reply.status, 401);
        let reply = answered(decide(
            &request(
                "GET",
                "/api/x",
                &[("sec-fetch-mode", "navigate"), ("accept", "text/html")],
            ),
            &config,
            NOW,
            store,
        ));
        assert_eq!(reply.status, 303);
        assert_eq!(reply.header("location"), Some("/login?next=/api/x"));
    }

    #[test]
    fn an_expired_session_is_refused() {
        let config = config();
        let token = session(&config, "alice", "{}");
        let later = NOW + 2 * 3600 * 1000;
        let reply = answered(decide(
            &request("GET", "/api/x", &[("x-session-id", &token)]),
            &config,
            later,
            store,
        ));
        assert_eq!(reply.status, 401);
        // Positive control: the same token an instant after creation passes.
        forwarded(decide(
            &request("GET", "/api/x", &[("x-session-id", &token)]),
            &config,
            NOW + 1,
            store,
        ));
    }

    #[test]
    fn excluded_and_open_paths_pass_without_a_session_and_without_identity() {
        let config = config();
        assert!(forwarded(decide(&request("GET", "/health", &[]), &config, NOW, down)).is_empty());
        assert!(
            forwarded(decide(
                &request("GET", "/elsewhere", &[]),
                &config,
                NOW,
                down
            ))
            .is_empty()
        );
    }

    #[test]
    fn an_optional_path_gives_the_identity_when_present_and_never_refuses() {
        let config = config();
        let token = session(&config, "bob", "{}");
        assert!(forwarded(decide(&request("GET", "/feed", &[]), &config, NOW, store)).is_empty());
        assert!(
            forwarded(decide(
                &request("GET", "/feed", &[("x-session-id", "nope.nope")]),
                &config,
                NOW,
                store
            ))
            .is_empty()
        );
        let identity = forwarded(decide(
            &request("GET", "/feed", &[("x-session-id", &token)]),
            &config,
            NOW,
            store,
        ));
        assert_eq!(value(&identity, identity::USER_ID), Some("bob"));
    }

    #[test]
    fn a_missing_role_or_permission_is_403() {
        let config = config();
        let token = session(&config, "carol", r#"{"role":"editor"}"#);
        for path in ["/admin/users", "/api/reports/1"] {
            let reply = answered(decide(
                &request("GET", path, &[("x-session-id", &token)]),
                &config,
                NOW,
                store,
            ));
            assert_eq!(reply.status, 403, "{path}");
        }
        let admin = session(&config, "dan", r#"{"role":"admin"}"#);
        forwarded(decide(
            &request("GET", "/ADMIN/users", &[("x-session-id", &admin)]),
            &config,
            NOW,
            store,
        ));
    }

    #[test]
    fn reads_ahead_the_session_it_will_validate_on_a_key_value_store_only() {
        let id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
        let token = format!("{id}.{}", "A".repeat(43));
        let cookie = format!("zoe_session={token}");
        let header = [("x-session-id", token.as_str())];
        let mut pairs = vec![("key_value_store", "default")];
        pairs.extend([
            ("protected_paths", "/api,/admin"),
            ("excluded_paths", "/health"),
            ("optional_paths", "/feed"),
        ]);
        let kv = Config::from_pairs(&pairs);
        // Positive controls: a protected and an optional path, by header or by cookie.
        for req in [
            request("GET", "/api/chat", &header),
            request("GET", "/feed", &header),
            request(
                "POST",
                "/api/chat",
                &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
            ),
        ] {
            assert_eq!(key_value_reads_ahead(&req, &kv), lookup_keys(id), "{req:?}");
        }
        // Nothing where no session will be validated: an open or excluded path, no token or a
        // malformed one, a refusal before the store (CSRF), or a SQL store.
        for req in [
            request("GET", "/elsewhere", &header),
            request("GET", "/health", &header),
            request("GET", "/api/chat", &[]),
            request("GET", "/api/chat", &[("x-session-id", "nope")]),
            request(
                "POST",
                "/api/chat",
                &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
            ),
        ] {
            assert!(key_value_reads_ahead(&req, &kv).is_empty(), "{req:?}");
        }
        assert!(key_value_reads_ahead(&request("GET", "/api/chat", &header), &config()).is_empty());
    }

    #[test]
    fn a_cross_site_cookie_post_is_403_and_a_same_site_one_passes() {
        let config = config();
        let token = session(&config, "erin", "{}");
        let cookie = format!("zoe_session={token}");
        let reply = answered(decide(
            &request(
                "POST",
                "/api/chat",
                &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
            ),
            &config,
            NOW,
            store,
        ));
        assert_eq!(reply.status, 403);
        assert!(String::from_utf8_lossy(&reply.body).contains("csrf"));
        forwarded(decide(
            &request(
                "POST",
                "/api/chat",
                &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
            ),
            &config,
            NOW,
            store,
        ));
    }

    #[test]
    fn a_store_that_cannot_answer_is_503_never_a_pass() {
        let config = config();
        for path in ["/api/x", "/feed"] {
            let reply = answered(decide(
                &request("GET", path, &[("x-session-id", "a.b")]),
                &config,
                NOW,
                down,
            ));
            assert_eq!(reply.status, 503, "{path}");
        }
    }

    #[test]
    fn ambiguous_paths_and_credentials_are_400() {
        let config = config();
        let reply = answered(decide(
            &request("GET", "/health/../api", &[]),
            &config,
            NOW,
            store,
        ));
        assert_eq!(reply.status, 400);
        let reply = answered(decide(
            &request(
                "GET",
                "/api",
                &[("x-session-id", "a.b"), ("x-session-id", "c.d")],
            ),
            &config,
            NOW,
            store,
        ));
        assert_eq!(reply.status, 400);
    }

    #[test]
    fn with_require_https_a_plain_request_for_a_checked_path_is_403() {
        let config = Config::from_pairs(&[("protected_paths", "/api"), ("require_https", "true")]);
        let token = session(&config, "gus", "{}");
        let reply = answered(decide(
            &request("GET", "/api/x", &[("x-session-id", &token)]),
            &config,
            NOW,
            store,
        ));
        assert_eq!(reply.status, 403);
        assert!(String::from_utf8_lossy(&reply.body).contains("https_required"));
        // Positive control: over HTTPS (as Spin says it) the same request passes, and an
        // unchecked path never needs it.
        forwarded(decide(
            &request(
                "GET",
                "/api/x",
                &[
                    ("x-session-id", &token),
                    ("spin-full-url", "https://h/api/x"),
                ],
            ),
            &config,
            NOW,
            store,
        ));
        forwarded(decide(
            &request("GET", "/elsewhere", &[]),
            &config,
            NOW,
            store,
        ));
    }

    #[test]
    fn a_token_header_named_like_an_identity_header_is_a_config_error() {
        let config = Config::from_pairs(&[("session_header", "X-Session-User-Id")]);
        let reply = answered(decide(
            &request("GET", "/api/chat", &[]),
            &config,
            NOW,
            store,
        ));
        assert_eq!(reply.status, 500);
    }
}
