//! zoe-session's shapes on the wire, each written once: a session as JSON (the HTTP API, the
//! CLI's `--json` and the benchmarks' native server all answer with it), timestamps as RFC 3339,
//! and the JSON log line (the component's request log, the gate and the native host's own
//! lines), written to stderr in one write.

use serde_json::{Map, Value, json};

/// A session's fields as every layer has them; the token is never one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFields<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub created_at: u64,
    pub last_activity: u64,
    pub expires_at: u64,
    pub absolute_expires_at: u64,
    pub idle_timeout: u32,
    /// A JSON object serialised as text (the engine stores only canonical objects).
    pub metadata: &'a str,
    pub is_active: bool,
    /// The device at the create or the last activity write, when recorded.
    pub client_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A session: public id, user, RFC 3339 timestamps, idle timeout, metadata, activity.
pub fn session(s: &SessionFields<'_>) -> Value {
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "created_at": rfc3339(s.created_at),
        "last_activity": rfc3339(s.last_activity),
        "expires_at": rfc3339(s.expires_at),
        "absolute_expires_at": rfc3339(s.absolute_expires_at),
        "timeout": s.idle_timeout,
        // Stored metadata is always a canonical JSON object (the engine checked it); should
        // anything else arrive, the answer still has an object there.
        "metadata": serde_json::from_str::<Value>(s.metadata)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({})),
        "is_active": s.is_active,
        "client_addr": s.client_addr,
        "user_agent": s.user_agent,
    })
}

/// A newly issued token with its session; `session_id` is the token (seed compatibility).
/// The only shape that ever holds a token.
pub fn issued(s: &SessionFields<'_>, token: &str) -> Value {
    let mut value = session(s);
    value["session_id"] = Value::String(token.to_owned());
    value
}

/// An error's body, the one shape every refusal has wherever it is written (the component,
/// the gate, the native host's own answers): `{"error": kind, "detail": sentence}`. `kind` is
/// a stable machine-readable word; `detail` a sentence for people, never internals.
pub fn error_body(kind: &str, detail: &str) -> String {
    json!({"error": kind, "detail": detail}).to_string()
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds, e.g.
/// `2026-11-28T04:38:25.123Z`.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let fields = [
        (0, 4, year),
        (5, 2, month),
        (8, 2, day),
        (11, 2, rem / 3600),
        (14, 2, rem % 3600 / 60),
        (17, 2, rem % 60),
        (20, 3, unix_ms % 1000),
    ];
    if year > 9999 {
        // Past any session's life; `format!` widens the year as RFC 3339 cannot.
        return format!(
            "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            fields[3].2, fields[4].2, fields[5].2, fields[6].2
        );
    }
    // Digit by digit into a fixed template: every log line and every session in an answer
    // carries timestamps, and `format!`'s padding machinery was a measurable share of a
    // fresh request's guest work (docs/benchmarks-history.md, issue 18).
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, mut n) in fields {
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + u8::try_from(n % 10).unwrap_or(0);
            n /= 10;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm,
/// restricted to non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// One log line: `ts` (RFC 3339), `level`, `message`, then `fields`' members (an object;
/// anything else adds nothing). No field may hold a secret: callers pass fingerprints.
pub fn log_line(now_ms: u64, level: &str, message: &str, fields: Value) -> String {
    // The fields' map becomes the line's, not copied into a new one (every request writes a
    // line); the three below are the line's own and replace a field of the same name.
    let mut line = match fields {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    line.insert("ts".into(), Value::String(rfc3339(now_ms)));
    line.insert("level".into(), Value::String(level.into()));
    line.insert("message".into(), Value::String(message.into()));
    Value::Object(line).to_string()
}

/// Writes `line` and a newline to stderr in one write. Stderr is unbuffered, and `eprintln!`
/// of a JSON value writes every formatted fragment separately: dozens of host calls (and
/// write syscalls) per line, which made request logging the largest cost of a fresh
/// instance's `GET /health` (docs/benchmarks-history.md, issue 18).
pub fn write_line(line: String) {
    use std::io::Write as _;
    let mut line = escape_separators(line);
    line.push('\n');
    // A log line that cannot be written is dropped; what it describes still happens.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `line` (JSON) with every character escaped that serde_json leaves raw but that log viewers
/// break a line on or show as a control: DEL, the C1 controls (U+0085 NEL among them), and
/// the line and paragraph separators U+2028 and U+2029. They can only stand inside a JSON
/// string, where `\uXXXX` means the same character, so the line stays the same JSON.
pub fn escape_separators(line: String) -> String {
    // DEL is 0x7f; C1 controls are encoded 0xc2 0x80-0x9f; U+2028/9 are 0xe2 0x80 0xa8/9.
    if !line.bytes().any(|b| matches!(b, 0x7f | 0xc2 | 0xe2)) {
        return line;
    }
    let mut escaped = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}') {
            escaped.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: SessionFields<'static> = SessionFields {
        id: "8963b042-2db1-4171-9d82-cb012ceae438",
        user_id: "alice",
        created_at: 1_795_840_705_007,
        last_activity: 1_795_840_705_007,
        expires_at: 1_795_844_305_007,
        absolute_expires_at: 1_796_445_505_007,
        idle_timeout: 3600,
        metadata: r#"{"role":"admin"}"#,
        is_active: true,
        client_addr: Some("203.0.113.7:51234"),
        user_agent: None,
    };

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_840_705_007), "2026-11-28T04:38:25.007Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(253_402_300_800_000), "10000-01-01T00:00:00.000Z");
        // The digit writer agrees with the `format!` it replaced, across days and years.
        for unix_ms in (0..200).map(|n: u64| n * 31_556_952_123 + n * n * 7_919) {
            let secs = unix_ms / 1000;
            let (year, month, day) = civil_from_days(secs / 86_400);
            let rem = secs % 86_400;
            let expected = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60,
                unix_ms % 1000
            );
            assert_eq!(rfc3339(unix_ms), expected, "{unix_ms}");
        }
    }

    #[test]
    fn a_session_has_the_api_s_fields_and_no_token() {
        let value = session(&ALICE);
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "absolute_expires_at",
                "client_addr",
                "created_at",
                "expires_at",
                "id",
                "is_active",
                "last_activity",
                "metadata",
                "timeout",
                "user_agent",
                "user_id"
            ]
        );
        assert_eq!(value["created_at"], "2026-11-28T04:38:25.007Z");
        assert_eq!(value["metadata"]["role"], "admin");
        let issued = issued(&ALICE, "id.secret");
        assert_eq!(issued["session_id"], "id.secret");
        assert_eq!(issued["id"], ALICE.id);
    }

    #[test]
    fn metadata_that_is_not_an_object_shows_as_an_empty_object() {
        for bad in ["not json", "[1]", "null", ""] {
            let value = session(&SessionFields {
                metadata: bad,
                ..ALICE
            });
            assert_eq!(value["metadata"], json!({}), "{bad:?}");
        }
    }

    #[test]
    fn a_log_line_leads_with_time_level_and_message_which_fields_cannot_overwrite() {
        let line = log_line(
            0,
            "WARN",
            "disk",
            json!({"level": "DEBUG", "path": "/x", "status": 503}),
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["message"], "disk");
        assert_eq!(value["path"], "/x");
        assert_eq!(value["status"], 503);
        assert!(!line.contains('\n'));
    }

    /// The probe's finding (issue 27): U+2028, U+2029 and U+0085 in a user id reached log
    /// lines raw and split them in many viewers.
    #[test]
    fn line_and_paragraph_separators_and_controls_are_escaped() {
        let user_id = "a\u{2028}b\u{2029}c\u{85}d\u{7f}e\u{9f}f\ng\u{1}h";
        let line = escape_separators(log_line(0, "INFO", "m", json!({"user_id": user_id})));
        for raw in [
            '\u{2028}', '\u{2029}', '\u{85}', '\u{7f}', '\u{9f}', '\n', '\u{1}',
        ] {
            assert!(!line.contains(raw), "{raw:?} in {line}");
        }
        assert!(
            line.contains(r"\u2028") && line.contains(r"\u0085"),
            "{line}"
        );
        // Still the same JSON: the user id reads back unchanged.
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["user_id"], user_id);
        // Positive control: serde_json alone leaves them raw.
        let plain = log_line(0, "INFO", "m", json!({"user_id": user_id}));
        assert!(plain.contains('\u{2028}') && plain.contains('\u{85}'));
        // Other text, non-ASCII included, is left as it is.
        let other = log_line(0, "INFO", "m", json!({"user_id": "Zoë — ü ½"}));
        assert_eq!(escape_separators(other.clone()), other);
    }
}
