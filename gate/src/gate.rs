//! The `wasi:http/incoming-handler` export: decide, then either answer the client or hand the
//! untouched request to the app's handler (the gate's own import of the same interface).
//!
//! WASIp2 has no constructor for `incoming-request`, so a p2 component can forward a request
//! but never change its headers. The gate therefore cannot strip or add headers; it keeps
//! identity trustworthy by refusing any request that already carries a gate identity header
//! (`x-session-user`, `x-session-role`, or `x-session-id` when that is not the configured token
//! header). The app learns who is calling through its own `zoe:session/sessions` import.

use crate::bindings::sessions;
use crate::bindings::wasi::http::incoming_handler as app;
use crate::config::GateConfig;
use crate::rules::{Verdict, classify};
use serde_json::json;
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};

/// Identity header names the gate reserves; clients may not send them.
pub const IDENTITY_HEADERS: [&str; 3] = ["x-session-user", "x-session-role", "x-session-id"];

/// Cookie names the zoe-session API sets (plain, and with `secure_cookies` on).
const COOKIES: [&str; 2] = ["zoe_session", "__Host-zoe_session"];

/// A refusal: status, error kind, sentence.
#[derive(Debug)]
struct Refusal(u16, &'static str, String);

#[spin_sdk::http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    match admit(&request) {
        Ok(()) => app::handle(request, response_out.into_inner()),
        Err(Refusal(status, kind, detail)) => {
            let body = zoe_session_wire::error_body(kind, &detail);
            let headers =
                Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
                    .unwrap_or_else(|_| Fields::new());
            let response = OutgoingResponse::new(headers);
            // 401, 400 and 500 are valid codes, so this cannot fail.
            let _ = response.set_status_code(status);
            if response_out
                .set_with_body(response, body.into_bytes())
                .await
                .is_err()
            {
                log(
                    "WARN",
                    "client went away before the gate's answer",
                    json!({}),
                );
            }
        }
    }
}

/// Whether the request may reach the app.
fn admit(request: &IncomingRequest) -> Result<(), Refusal> {
    let config =
        GateConfig::from_lookup(|name| spin_sdk::variables::get(name).ok()).map_err(|cause| {
            let cause = cause.to_string();
            log("ERROR", "gate configuration", json!({"cause": cause}));
            Refusal(500, "config", cause)
        })?;
    let headers = request.headers();
    let token_header = config.session_header.to_ascii_lowercase();
    for name in IDENTITY_HEADERS {
        if name != token_header && !headers.get(name).is_empty() {
            return Err(Refusal(
                400,
                "identity_header",
                format!("the {name} header is set by the session gate; clients may not send it"),
            ));
        }
    }
    let path = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    if classify(&path, &config.protected_paths, &config.excluded_paths) != Verdict::Protected {
        return Ok(());
    }
    let token = header_value(&headers, &token_header).or_else(|| cookie(&headers));
    let Some(token) = token else {
        return Err(Refusal(
            401,
            "unauthorized",
            format!(
                "a session is required: send its token in the {} header",
                config.session_header
            ),
        ));
    };
    // `validate` slides the session's activity exactly when `auto_update` is on, which is
    // the middleware's "update activity" step; no separate `touch` is needed.
    match sessions::validate(&token) {
        Ok(_) => Ok(()),
        Err(sessions::Error::Expired) => Err(Refusal(
            401,
            "session_expired",
            "the session has expired".to_owned(),
        )),
        Err(sessions::Error::Storage(cause) | sessions::Error::Config(cause)) => {
            log("ERROR", "session store failure", json!({"cause": cause}));
            Err(Refusal(
                500,
                "internal",
                "the session store failed; see the server log".to_owned(),
            ))
        }
        Err(_) => Err(Refusal(
            401,
            "invalid_token",
            "the session token is not valid (unknown, malformed or rotated)".to_owned(),
        )),
    }
}

/// The first value of a header, trimmed, if it is non-empty UTF-8.
fn header_value(headers: &Fields, name: &str) -> Option<String> {
    headers
        .get(name)
        .into_iter()
        .find_map(|value| String::from_utf8(value).ok())
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The session token from the `Cookie` header, under either of zoe-session's cookie names.
fn cookie(headers: &Fields) -> Option<String> {
    headers
        .get("cookie")
        .into_iter()
        .filter_map(|value| String::from_utf8(value).ok())
        .flat_map(|line| {
            line.split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .filter(|(name, value)| COOKIES.contains(name) && !value.is_empty())
                .map(|(_, value)| value.to_owned())
                .collect::<Vec<_>>()
        })
        .next()
}

/// One log line in zoe-session's shape (`zoe_session_wire`), stamped with the wall clock.
fn log(level: &str, message: &str, fields: serde_json::Value) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    zoe_session_wire::write_line(zoe_session_wire::log_line(now, level, message, fields));
}
