//! JSON-lines logging on stderr, filtered by `log_level`.
//!
//! Nothing secret may reach a line: paths are logged with every token-shaped segment replaced
//! by a short hash prefix, query strings and headers are never logged, and faults are logged
//! by their store/engine text, which never includes bound parameter values.

use crate::config::{Config, LogLevel};
use crate::session::audit::Event;
use crate::session::engine::Issued;
use crate::session::token;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use subtle::ConstantTimeEq;

/// Writes one line at `level` if `threshold` lets it through.
pub fn emit(threshold: LogLevel, level: LogLevel, now: u64, message: &str, fields: Value) {
    if level < threshold {
        return;
    }
    write_line(zoe_session_wire::log_line(
        now,
        label(level),
        message,
        fields,
    ));
}

pub use zoe_session_wire::write_line;

/// The line a shell writes when its host's variable provider fails for `variable` (the setting
/// then takes its default rather than taking the service down). Settings are read away from a
/// request's entry point, so `now` is a log timestamp the shell reads for it, never a decision.
pub fn variable_provider_failed(now: u64, variable: &str) {
    write_line(zoe_session_wire::log_line(
        now,
        "WARN",
        "variable provider failed",
        json!({ "variable": variable }),
    ));
}

/// Whether a request refused for a bad credential (a 401, by its error kind) may write its
/// lines: the first of each kind in a second does, with the number of lines of that kind
/// dropped since the previous one written (`Some(dropped)`); the rest of that second do not
/// (`None`). A flood of invalid tokens so writes at most one line a second per kind and
/// instance, however fast it comes, instead of ~460 bytes a request. The windows live as long
/// as the instance (Spin reuses a WASIp3 instance, `serve` any instance); a host that gives
/// every request a fresh instance gets every line, and must bound its log at the platform.
pub fn admit(kind: &'static str, now_ms: u64) -> Option<u64> {
    thread_local! {
        /// Per error kind (a handful of them): the second last written, lines dropped since.
        static WINDOWS: RefCell<Vec<(&'static str, u64, u64)>> = const { RefCell::new(Vec::new()) };
    }
    let second = now_ms / 1000;
    WINDOWS.with_borrow_mut(|windows| match windows.iter_mut().find(|w| w.0 == kind) {
        Some((_, written, dropped)) if *written == second => {
            *dropped += 1;
            None
        }
        Some((_, written, dropped)) => {
            *written = second;
            Some(std::mem::take(dropped))
        }
        None => {
            windows.push((kind, second, 0));
            Some(0)
        }
    })
}

/// What the line written at the end of every request says.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// Already redacted ([`redact_path`]).
    pub path: &'a str,
    pub status: u16,
    pub request_id: &'a str,
    pub duration_ms: f64,
    /// Lines of the same refusal dropped before this one ([`admit`]); 0 is not written.
    pub dropped: u64,
}

/// Writes the request's line (INFO, `"message":"request"`) if `threshold` lets it through.
pub fn request(threshold: LogLevel, now: u64, line: &RequestLine<'_>) {
    if LogLevel::Info < threshold {
        return;
    }
    write_line(request_line(now, line));
}

/// The request line as [`emit`] would write it from a `json!` object of the same fields (a
/// test holds the two equal), built straight into its text: this line is written for every
/// request, and the map of owned strings in between was a good part of a fresh `/health`'s
/// own work (docs/benchmarks-history.md, issue 18). The keys are in byte order, as
/// serde_json's map writes them.
fn request_line(now: u64, line: &RequestLine<'_>) -> String {
    /// `key` is one of the names below: plain ASCII, nothing to escape.
    fn push(text: &mut Vec<u8>, key: &str, value: &impl serde::Serialize) {
        text.extend_from_slice(if text.is_empty() { b"{\"" } else { b",\"" });
        text.extend_from_slice(key.as_bytes());
        text.extend_from_slice(b"\":");
        // Writing into a `Vec` fails only for a value that cannot be JSON, and these can.
        let _ = serde_json::to_writer(&mut *text, value);
    }
    let mut text = Vec::with_capacity(256);
    push(&mut text, "duration_ms", &line.duration_ms);
    push(&mut text, "level", &label(LogLevel::Info));
    push(&mut text, "message", &"request");
    push(&mut text, "method", &line.method);
    push(&mut text, "path", &line.path);
    push(&mut text, "request_id", &line.request_id);
    push(&mut text, "status", &line.status);
    if line.dropped > 0 {
        push(&mut text, "suppressed", &line.dropped);
    }
    push(&mut text, "ts", &zoe_session_wire::rfc3339(now));
    text.push(b'}');
    String::from_utf8(text).unwrap_or_default()
}

/// Where a call came from, as far as the caller knows: HTTP requests have both, callers of
/// the WIT interface neither.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    pub client_addr: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// Writes one audit line per event, unless `audit_events` is off: `event` (the stable name,
/// also the message), the event's fields, `client_addr` and `request_id`. Audit lines do not
/// depend on `log_level` or `log_requests`. A bad `audit_events` counts as on (the admin's
/// routes report it); events carry public ids only.
pub fn audit(config: &Config, now: u64, events: Vec<Event>, origin: Origin<'_>, dropped: u64) {
    if events.is_empty() || !config.audit_events().copied().unwrap_or(true) {
        return;
    }
    for event in events {
        let level = if event.is_warning() { "WARN" } else { "INFO" };
        let mut fields = json!({
            "event": event.name(),
            "audit": true,
            "client_addr": origin.client_addr,
            "request_id": origin.request_id,
        });
        if dropped > 0 && event.is_refusal() {
            fields["suppressed"] = dropped.into();
        }
        if let (Value::Object(line), Value::Object(mut own)) = (&mut fields, event.fields()) {
            if let Some(Value::String(user_id)) = own.get_mut("user_id") {
                *user_id = shown_user_id(user_id, config);
            }
            line.extend(own);
        }
        write_line(zoe_session_wire::log_line(now, level, event.name(), fields));
    }
}

/// Logs the housekeeping that failed after `issued` was committed; the session stands and
/// its token is still handed out.
pub fn cleanup_failure(threshold: LogLevel, now: u64, issued: &Issued) {
    if let Some(err) = &issued.cleanup_failure {
        emit(
            threshold,
            LogLevel::Warn,
            now,
            "opportunistic cleanup failed; the session was created",
            json!({"cause": err.to_string()}),
        );
    }
}

fn label(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

/// A short, stable, non-reversible name for a secret: the first 8 hex digits of its SHA-256.
pub fn fingerprint(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` must not reach a log line as it is: it has the shape of a token or a
/// secret ([`token::looks_like_credential`]), or it is the admin key. The admin key is read
/// only for text long enough to be one, so the common case costs no variable read.
pub fn is_secret(text: &str, config: &Config) -> bool {
    token::looks_like_credential(text)
        || (text.len() >= 16
            && config
                .admin_key()
                .ok()
                .and_then(Option::as_ref)
                .is_some_and(|key| {
                    // Compared as the admin check compares it: no timing to learn the key by.
                    Sha256::digest(key.expose().as_bytes())
                        .ct_eq(&Sha256::digest(text.as_bytes()))
                        .into()
                }))
}

/// A user id as it may be logged: as it is, unless it [`is_secret`].
pub fn shown_user_id(user_id: &str, config: &Config) -> String {
    if is_secret(user_id, config) {
        format!("<redacted:{}>", fingerprint(user_id))
    } else {
        user_id.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening (issue 27): a flood of invalid tokens wrote ~460 bytes of log per request.
    #[test]
    fn refusals_write_one_line_a_second_per_kind_with_the_count_dropped() {
        let second = 1_900_000_000_000;
        assert_eq!(admit("test_kind", second), Some(0));
        for ms in 1..1000 {
            assert_eq!(admit("test_kind", second + ms), None, "{ms}");
        }
        // Another kind has a window of its own.
        assert_eq!(admit("other_test_kind", second + 5), Some(0));
        // The next second writes again and tells how many were dropped.
        assert_eq!(admit("test_kind", second + 1000), Some(999));
        assert_eq!(admit("test_kind", second + 1001), None);
        assert_eq!(admit("test_kind", second + 2000), Some(1));
    }

    #[test]
    fn a_request_line_tells_how_many_were_dropped() {
        let line = RequestLine {
            method: "GET",
            path: "/sessions/validate",
            status: 401,
            request_id: "r",
            duration_ms: 1.0,
            dropped: 41,
        };
        let value: Value = serde_json::from_str(&request_line(0, &line)).unwrap();
        assert_eq!(value["suppressed"], 41);
        let quiet = RequestLine { dropped: 0, ..line };
        let value: Value = serde_json::from_str(&request_line(0, &quiet)).unwrap();
        assert_eq!(value.get("suppressed"), None);
    }

    #[test]
    fn the_request_line_is_the_line_emit_would_write() {
        for (method, path, duration_ms) in [
            ("GET", "/health", 0.123_456_789),
            ("POST", "/sessions/<token:0a1b2c3d>/rotate", 12.0),
            ("GE\"T", "/a\\b\u{1}", f64::NAN),
        ] {
            let line = RequestLine {
                method,
                path,
                status: 404,
                request_id: "0123456789abcdef",
                duration_ms,
                dropped: 0,
            };
            let general = zoe_session_wire::log_line(
                1_800_000_000_123,
                "INFO",
                "request",
                json!({
                    "method": line.method,
                    "path": line.path,
                    "status": line.status,
                    "request_id": line.request_id,
                    "duration_ms": line.duration_ms,
                }),
            );
            assert_eq!(request_line(1_800_000_000_123, &line), general);
        }
    }
}
