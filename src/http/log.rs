//! JSON-lines logging on stderr, filtered by `log_level`.
//!
//! Nothing secret may reach a line: paths are logged with every token-shaped segment replaced
//! by a short hash prefix, query strings and headers are never logged, and faults are logged
//! by their store/engine text, which never includes bound parameter values.

use super::json::rfc3339;
use crate::config::LogLevel;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Writes one line at `level` if `threshold` lets it through.
pub fn emit(threshold: LogLevel, level: LogLevel, now: u64, message: &str, fields: Value) {
    if level < threshold {
        return;
    }
    let mut line = Map::new();
    line.insert("ts".into(), Value::String(rfc3339(now)));
    line.insert("level".into(), Value::String(label(level).into()));
    line.insert("message".into(), Value::String(message.into()));
    if let Value::Object(fields) = fields {
        line.extend(fields);
    }
    eprintln!("{}", Value::Object(line));
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

/// The path with every segment that could be a token (it contains a `.` once decoded)
/// replaced by `<token:fingerprint>`.
pub fn redact_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let decoded = super::percent_decode(segment).unwrap_or_else(|| segment.to_owned());
            if decoded.contains('.') && decoded != "openapi.json" {
                format!("<token:{}>", fingerprint(&decoded))
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_paths_are_replaced_by_a_fingerprint() {
        let token =
            "0b5d3f0e-9c1a-4b7e-8f00-1234567890ab.c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
        let path = format!("/sessions/{token}/extend");
        let shown = redact_path(&path);
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.starts_with("/sessions/<token:") && shown.ends_with(">/extend"));
        assert_eq!(redact_path("/sessions/stats"), "/sessions/stats");
        assert_eq!(redact_path("/openapi.json"), "/openapi.json");
    }

    #[test]
    fn percent_encoded_dots_are_redacted_too() {
        let shown = redact_path("/sessions/abc%2Esecret");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
