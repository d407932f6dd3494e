//! Property tests for the HTTP layer's parsers: whatever a client sends — cookies, credentials,
//! bodies, paths, query strings — becomes a value or one of [`ApiError`]'s refusals, never a
//! panic (a panic in the component is a trap, which the host turns into a 500).
//!
//! Native only: proptest does not run inside the wasm32 component.

use super::auth::{self, Source};
use super::error::ApiError;
use super::{Ctx, Request, cookies, find_route};
use crate::config::Config;
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;

const ADMIN_KEY: &str = "properties-admin-key-0123456789";

fn config() -> Config {
    Config::from_pairs(&[("admin_key", ADMIN_KEY)])
}

fn request(method: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Request {
    Request {
        method: method.to_owned(),
        path: "/sessions/create".to_owned(),
        headers,
        body,
        ..Request::default()
    }
}

/// A body shaped like the extend endpoint's, to decode arbitrary bytes into.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    #[serde(rename = "additional_seconds")]
    _additional_seconds: u64,
}

/// Printable header-value text, including the separators cookie and auth parsing split on.
const HEADER_TEXT: &str = "[ -~]{0,80}";
/// A cookie value as a browser would store ours: token characters, no separators.
const COOKIE_VALUE: &str = "[A-Za-z0-9_.-]{1,60}";

proptest! {
    #[test]
    fn cookie_lookup_never_panics_on_any_header(header in ".{0,200}", name in "[ -~]{0,20}") {
        let _ = cookies::find(&header, &name);
    }

    #[test]
    fn our_cookie_is_found_among_any_others(
        before in proptest::collection::vec(("[a-y]{1,8}", COOKIE_VALUE), 0..4),
        after in proptest::collection::vec(("[a-y]{1,8}", COOKIE_VALUE), 0..4),
        value in COOKIE_VALUE,
    ) {
        let pairs: Vec<String> = before
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain([format!("{}={value}", cookies::BASE_NAME)])
            .chain(after.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        let header = pairs.join("; ");
        prop_assert_eq!(cookies::find(&header, cookies::BASE_NAME), Some(value.as_str()));
    }

    #[test]
    fn a_set_cookie_value_reads_back_as_the_token(token in COOKIE_VALUE, secure: bool) {
        let config = Config::from_pairs(&[("secure_cookies", if secure { "true" } else { "false" })]);
        let set = cookies::set(&config, &token, 3600).unwrap();
        // What a browser sends back is the first `name=value` pair of Set-Cookie.
        let sent = set.split(';').next().unwrap();
        prop_assert_eq!(cookies::find(sent, cookies::name(&config).unwrap()), Some(token.as_str()));
        prop_assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"));
        prop_assert_eq!(set.contains("; Secure"), secure);
    }

    /// The session header wins over the cookie; a blank header falls back to the cookie.
    #[test]
    fn the_caller_token_comes_from_the_header_else_the_cookie(
        header in proptest::option::of(HEADER_TEXT),
        cookie in proptest::option::of(COOKIE_VALUE),
    ) {
        let config = config();
        let mut headers = Vec::new();
        if let Some(value) = &header {
            headers.push((config.session_header().unwrap().to_ascii_lowercase(), value.clone()));
        }
        if let Some(value) = &cookie {
            headers.push(("cookie".to_owned(), format!("other=1; {}={value}", cookies::BASE_NAME)));
        }
        let req = request("GET", headers, Vec::new());
        let found = auth::caller_token(&Ctx::new(&req, &config, 0)).expect("one header, one cookie");
        let expected = match (header.as_deref().map(str::trim), &cookie) {
            (Some(value), _) if !value.is_empty() => Some((value.to_owned(), Source::Header)),
            (_, Some(value)) => Some((value.clone(), Source::Cookie)),
            _ => None,
        };
        prop_assert_eq!(found, expected);
    }

    /// Only `Bearer <the admin key>` passes; anything else is 401, never a panic.
    #[test]
    fn only_the_exact_admin_key_passes(authorization in proptest::option::of(HEADER_TEXT)) {
        let config = config();
        let headers = authorization
            .iter()
            .map(|value| ("authorization".to_owned(), value.clone()))
            .collect();
        let req = request("GET", headers, Vec::new());
        let result = auth::require_admin(&Ctx::new(&req, &config, 0));
        let exact = authorization.as_deref().and_then(|value| {
            let (scheme, key) = value.trim().split_once(' ')?;
            Some(scheme.eq_ignore_ascii_case("bearer") && key.trim() == ADMIN_KEY)
        });
        if exact == Some(true) {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(matches!(result, Err(ApiError::Unauthorized { .. })), "{result:?}");
        }
    }

    #[test]
    fn the_right_admin_key_passes_in_any_case_of_bearer(upper: bool, pad in " {0,3}") {
        let config = config();
        let scheme = if upper { "BEARER" } else { "Bearer" };
        let value = format!("{pad}{scheme} {ADMIN_KEY}{pad}");
        let req = request("GET", vec![("authorization".to_owned(), value)], Vec::new());
        prop_assert!(auth::require_admin(&Ctx::new(&req, &config, 0)).is_ok());
    }

    /// Any bytes as a body: decoded, or 415 (not JSON) / 422 (bad JSON, not an object, wrong
    /// fields); never a panic.
    #[test]
    fn any_body_decodes_or_is_refused_with_415_or_422(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        json_type: bool,
    ) {
        let config = config();
        let content_type = if json_type { "application/json" } else { "text/plain" };
        let req = request("POST", vec![("content-type".to_owned(), content_type.to_owned())], body.clone());
        let blank = body.iter().all(u8::is_ascii_whitespace);
        match Ctx::new(&req, &config, 0).optional_json::<Probe>() {
            Ok(None) => prop_assert!(blank),
            Ok(Some(_)) => {
                prop_assert!(json_type);
                let value: Value = serde_json::from_slice(&body).unwrap();
                prop_assert!(value.is_object());
            }
            Err(ApiError::UnsupportedMediaType) => prop_assert!(!json_type && !blank),
            Err(ApiError::InvalidInput(_)) => prop_assert!(json_type),
            Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
        }
    }

    /// Any JSON value other than an object is refused, even one serde could read as the struct.
    #[test]
    fn json_that_is_not_an_object_is_422(seconds in 1u64..100_000, as_array: bool) {
        let config = config();
        let body = if as_array { format!("[{seconds}]") } else { seconds.to_string() };
        let req = request(
            "POST",
            vec![("content-type".to_owned(), "application/json".to_owned())],
            body.into_bytes(),
        );
        let result = Ctx::new(&req, &config, 0).optional_json::<Probe>();
        prop_assert!(matches!(result, Err(ApiError::InvalidInput(_))), "{result:?}");
    }

    #[test]
    fn routing_any_path_is_a_route_or_404_or_405(method in "[A-Z]{1,7}", path in ".{0,80}") {
        match find_route(&method, &path) {
            Ok(_) | Err(ApiError::NotFound(_) | ApiError::MethodNotAllowed(_)) => {}
            Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
        }
    }

    #[test]
    fn query_parameters_never_panic(query in ".{0,120}", name in "[a-z_]{1,10}") {
        let req = Request { query, ..Request::default() };
        let _ = req.query_params(&name).count();
    }
}
