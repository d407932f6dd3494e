//! The REST API of DESIGN.md, independent of any WASI version: a shell reads the request
//! from its `wasi:http` (the WASIp2 and WASIp3 components' `http_entry`, with
//! [`Request::from_head`]), calls [`handle`] with the way it opens the store, and writes the
//! [`Reply`] ([`Reply::wire_headers`], or [`unsendable`] when its host refuses it).
//!
//! Files by concern: `request` (the request and reply types, percent-decoding), `ctx` (what a
//! handler sees), `router` ([`ROUTES`], the one route table: the dispatcher reads it, and a
//! test checks it against the OpenAPI document), `handlers` (one function per route), and this
//! file, the pipeline. A request flows through [`handle`]: the logging settings, the HTTPS
//! requirement, the body cap, the route match (404/405), the handler, then the request log
//! line. Handlers are thin: they check authorization ([`auth`]), parse input and call the
//! [`Engine`](crate::session::engine::Engine) directly; every failure is an [`ApiError`]
//! turned into JSON in one place.

pub mod auth;
mod console;
pub mod cookies;
mod ctx;
mod error;
mod handlers;
pub mod json;
pub mod log;
pub mod peer;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties;
mod redact;
mod request;
mod router;
mod strict_json;

pub use ctx::{Ctx, OpenDb, no_store};
pub use error::ApiError;
pub use handlers::OPENAPI;
pub use request::{MAX_BODY_BYTES, Reply, Request, percent_decode, percent_decoded};
pub use router::{Handler, ROUTES, Route, find_route};

use crate::config::{Config, LogLevel};
use serde_json::json;
use std::time::Instant;

/// The answer a shell sends instead of `reply` when its host refuses to take `reply` (a header
/// value `wasi:http` rejects, a status out of range): the cause is logged, and the client gets
/// a 500 JSON answer (without its body on a HEAD, `head`).
pub fn unsendable(reply: &Reply, cause: &str, head: bool, now: u64) -> Reply {
    log::emit(
        LogLevel::Debug,
        LogLevel::Error,
        now,
        "response could not be built",
        json!({"cause": cause, "status": reply.status}),
    );
    let mut fallback = ApiError::Internal(cause.to_owned()).into_reply();
    if head {
        fallback.body.clear();
    }
    fallback
}

/// `req` with the path the host routed, when it differs from the request target's. Routing
/// follows the path as the host matched it (`spin-path-info` on Spin: the path below the
/// component's route), never a URL rebuilt from `Host`, which a client can fill with a path
/// of its own (issue 27).
fn routed(req: &Request) -> Option<Request> {
    match req.header("spin-path-info") {
        Some(path) if path != req.path => Some(Request {
            path: path.to_owned(),
            ..req.clone()
        }),
        _ => None,
    }
}

/// The key-value keys [`handle`] is sure to read first for `req`, so that a shell whose store
/// calls can overlap reads them together beforehand ([`ReadAhead`](crate::store::kv::read_ahead)):
/// the lookup keys of the caller's session for `GET /sessions/validate` when sessions live in
/// a key-value store; nothing otherwise (each read counts against a platform's read budget,
/// so none is made that the request might not need).
pub fn key_value_reads_ahead(req: &Request, config: &Config) -> Vec<String> {
    // The path as [`handle`] routes it; the token is in the headers, which routing keeps.
    let path = req.header("spin-path-info").unwrap_or(&req.path);
    if req.method != "GET"
        || path != "/sessions/validate"
        || !matches!(config.backend(), Ok(crate::config::Backend::KeyValue(_)))
    {
        return Vec::new();
    }
    let ctx = Ctx::opening(req, config, 0, no_store);
    match auth::caller_token(&ctx) {
        Ok(Some((token, _))) => crate::session::token::Token::parse(&token)
            .map(|token| crate::store::kv::read_ahead::lookup_keys(&token.id))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Serves one request. `now` is the request's time (the clock is read once, by the caller);
/// `started` only measures the duration for the log line. Settings are read as the request
/// needs them; one that is bad answers 500 naming it.
pub fn handle(req: &Request, now: u64, config: &Config, open: OpenDb, started: Instant) -> Reply {
    let routed = routed(req);
    let req = routed.as_ref().unwrap_or(req);
    let ctx = Ctx::opening(req, config, now, open);
    let request_id = request_id(req);
    // Every request ends with its log line, so both logging settings are needed first.
    let request_line = config
        .log_requests()
        .and_then(|on| Ok(on.then_some(*config.log_level()?)));
    // The kind of a refusal for a bad credential (401), whose lines are rate-limited.
    let mut refusal = None;
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
            if err.status() == 401 {
                refusal = Some(err.kind());
            }
            if err.status() >= 500 && !matches!(err, ApiError::AdminKeyMissing) {
                log::emit(
                    ctx.log_level(),
                    LogLevel::Error,
                    now,
                    "request failed",
                    json!({"kind": err.kind(), "cause": err.to_string(),
                           "path": redact::redact_path(&req.path, config)}),
                );
            }
            err.into_reply()
        }),
    };
    if req.method == "HEAD" {
        reply.body.clear();
    }
    reply.set_header("x-request-id", request_id.as_str());
    let mut events = ctx.events.take();
    // A refusal for a bad credential writes its lines at most once a second per kind.
    let admitted = match refusal {
        Some(kind) => log::admit(kind, now),
        None => Some(0),
    };
    if admitted.is_none() {
        events.retain(|event| !event.is_refusal());
    }
    // Most requests record no event; the client's address is worked out only for one that does.
    if !events.is_empty() {
        log::audit(
            config,
            now,
            events,
            log::Origin {
                client_addr: ctx.client_addr(),
                request_id: Some(&request_id),
            },
            admitted.unwrap_or(0),
        );
    }
    // Responses may carry tokens; no cache may keep them. No browser may guess a type other
    // than the one declared (a JSON error echoing input must never run as a page).
    reply.set_header("cache-control", "no-store");
    reply.set_header("x-content-type-options", "nosniff");
    if config.require_https() == Ok(&true) {
        reply.set_header(
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        );
    }
    if let (Ok(Some(level)), Some(dropped)) = (request_line, admitted) {
        log::request(
            level,
            now,
            &log::RequestLine {
                method: &req.method,
                path: &redact::redact_path(&req.path, config),
                status: reply.status,
                request_id: &request_id,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                dropped,
            },
        );
    }
    reply
}

/// The request's id: the caller's `X-Request-Id` when it is 1-64 letters, digits, `-`, `_`,
/// `.` or `:` (a proxy's or the app's id, so their logs and ours line up), else 16 random hex
/// digits. It is echoed in the reply and appears on the request's log and audit lines.
fn request_id(req: &Request) -> String {
    if let Some(id) = req.header("x-request-id").map(str::trim)
        && !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return id.to_owned();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 8];
    // Without randomness the id is all zeros: still a valid id, and nothing depends on it.
    let _ = getrandom::fill(&mut bytes);
    bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

fn dispatch(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    // Health stays reachable over plain HTTP so that probes inside the cluster keep working.
    if ctx.req.path != "/health"
        && *ctx.config.require_https()?
        && !peer::is_https(ctx.req, ctx.config)?
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
    route.check_query(&ctx.req.query)?;
    (route.handler)(ctx, &params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
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
    fn reads_ahead_only_a_key_value_validate_of_a_wellformed_token() {
        let id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
        let token = format!("{id}.{}", "A".repeat(43));
        let request = |method: &str, target: &str, headers: &[(&str, &str)]| {
            Request::from_head(
                method.to_owned(),
                target,
                headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())),
            )
        };
        let kv = Config::from_pairs(&[("key_value_store", "default")]);
        let header = [("x-session-id", token.as_str())];
        let expected = crate::store::kv::read_ahead::lookup_keys(id);
        // Positive controls: the header, the cookie, and the path Spin routed.
        assert_eq!(
            key_value_reads_ahead(&request("GET", "/sessions/validate", &header), &kv),
            expected
        );
        let cookie = format!("{}={token}", cookies::name(&kv).unwrap());
        assert_eq!(
            key_value_reads_ahead(
                &request("GET", "/sessions/validate?role=a", &[("cookie", &cookie)]),
                &kv
            ),
            expected
        );
        assert_eq!(
            key_value_reads_ahead(
                &request(
                    "GET",
                    "/api/sessions/validate",
                    &[header[0], ("spin-path-info", "/sessions/validate")]
                ),
                &kv
            ),
            expected
        );
        // Nothing the request might not read: another route or method, no or a malformed
        // token, a SQL store.
        for (method, target, headers) in [
            ("POST", "/sessions/validate", &header[..]),
            ("GET", "/sessions/current", &header[..]),
            ("GET", "/sessions/validate", &[][..]),
            ("GET", "/sessions/validate", &[("x-session-id", "nope")][..]),
        ] {
            assert!(
                key_value_reads_ahead(&request(method, target, headers), &kv).is_empty(),
                "{method} {target} {headers:?}"
            );
        }
        let sqlite = Config::from_pairs(&[]);
        assert!(
            key_value_reads_ahead(&request("GET", "/sessions/validate", &header), &sqlite)
                .is_empty()
        );
    }

    #[test]
    fn a_bad_setting_a_request_needs_is_a_500_config_error_naming_the_setting() {
        let req = Request {
            method: "GET".into(),
            path: "/sessions/validate".into(),
            ..Request::default()
        };
        let config = Config::from_pairs(&[("session_header", "X Session")]);
        let reply = handle(&req, 0, &config, no_store, Instant::now());
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
        assert_eq!(
            handle(&health, 0, &config, no_store, Instant::now()).status,
            500
        );
        // Positive control: a bad setting /health does not read leaves it answering.
        let config = Config::from_pairs(&[("max_timeout", "soon")]);
        assert_eq!(
            handle(&health, 0, &config, no_store, Instant::now()).status,
            200
        );
    }

    #[test]
    fn health_and_errors_need_no_database() {
        let req = Request {
            method: "GET".into(),
            path: "/health".into(),
            ..Request::default()
        };
        let reply = handle(&req, 0, &Config::default(), no_store, Instant::now());
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }

    /// Every response, not only the console's, tells browsers not to sniff its type (the
    /// console's security headers are set by `console::secured`, this one here, once).
    #[test]
    fn every_response_says_nosniff_once() {
        for (method, path) in [
            ("GET", "/health"),
            ("GET", "/nope"),
            ("PUT", "/health"),
            ("GET", "/admin/"),
            ("GET", "/sessions/validate"),
        ] {
            let req = Request {
                method: method.into(),
                path: path.into(),
                ..Request::default()
            };
            let reply = handle(&req, 0, &Config::default(), no_store, Instant::now());
            let values: Vec<&str> = reply
                .headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("x-content-type-options"))
                .map(|(_, value)| value.as_str())
                .collect();
            assert_eq!(values, ["nosniff"], "{method} {path}");
        }
    }

    /// The probe's finding (issue 27): `Host: x/admin/?` made the host rebuild the URL as
    /// `/admin/`, and the component served the console for a request to `/sessions/validate`.
    #[test]
    fn routing_follows_spin_path_info_not_the_url() {
        let request = |path_info: Option<&str>| Request {
            method: "GET".into(),
            path: "/admin/".into(),
            headers: path_info
                .map(|p| vec![("spin-path-info".to_owned(), p.to_owned())])
                .unwrap_or_default(),
            ..Request::default()
        };
        let reply = handle(
            &request(Some("/sessions/validate")),
            0,
            &Config::default(),
            no_store,
            Instant::now(),
        );
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        // Positive control: without Spin's header the path itself is routed.
        let reply = handle(
            &request(None),
            0,
            &Config::default(),
            no_store,
            Instant::now(),
        );
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }

    /// Each route reads exactly the query parameters its OpenAPI operation documents.
    #[test]
    fn each_route_reads_the_query_parameters_it_documents() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        for route in ROUTES {
            let operation = &doc["paths"][route.pattern][route.method.to_ascii_lowercase()];
            let documented: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            let read: BTreeSet<&str> = route.query.iter().copied().collect();
            assert_eq!(read, documented, "{} {}", route.method, route.pattern);
        }
    }

    /// The probe's finding (issue 27): `?permissions=` for `?permission=` used to be dropped,
    /// so the check it meant to add never ran.
    #[test]
    fn an_unknown_query_parameter_is_400_naming_it() {
        let request = |query: &str| Request {
            method: "GET".into(),
            path: "/sessions/validate".into(),
            query: query.into(),
            ..Request::default()
        };
        for query in ["permissions=admin", "Role=admin", "role=a&x", "%zz=1"] {
            let reply = handle(
                &request(query),
                0,
                &Config::default(),
                no_store,
                Instant::now(),
            );
            assert_eq!(reply.status, 400, "{query}");
            let body: Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(body["error"], "unknown_parameter", "{query}");
        }
        let body: Value = serde_json::from_slice(
            &handle(
                &request("permissions=admin"),
                0,
                &Config::default(),
                no_store,
                Instant::now(),
            )
            .body,
        )
        .unwrap();
        assert!(body["detail"].as_str().unwrap().contains("\"permissions\""));
        // Positive control: the known parameters (and an empty query) reach the handler,
        // which asks for a token.
        for query in ["", "role=admin", "permission=read&", "role=a&permission=b"] {
            let reply = handle(
                &request(query),
                0,
                &Config::default(),
                no_store,
                Instant::now(),
            );
            assert_eq!(reply.status, 401, "{query}");
        }
        let health = Request {
            path: "/health".into(),
            query: "probe=1".into(),
            ..request("")
        };
        assert_eq!(
            handle(&health, 0, &Config::default(), no_store, Instant::now()).status,
            400
        );
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
