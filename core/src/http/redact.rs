//! Request paths as they may be logged: only what is known not to be secret stays in clear.
//! Here rather than in `log` because it reads the route table, whose handlers write logs.

use super::log::{fingerprint, is_secret};
use super::router::{ROUTE_WORDS, ROUTES};
use crate::config::Config;
use crate::session::token;

/// The path as it may be logged: only what is known not to be secret stays in clear.
///
/// A segment stays as sent when it is a literal word of the route table (`sessions`,
/// `rotate`…), a well-formed public session id (a UUID), or the user id of a
/// `/sessions/user/{user_id}` route that is not secret ([`is_secret`]: a token or the admin
/// key pasted there). Anything else — a token, a bare secret, an admin key pasted into
/// `{session_id}`, a segment that does not decode — becomes a short fingerprint:
/// `<token:…>` when it looks like a token (a `.` once decoded), `<redacted:…>` otherwise.
pub fn redact_path(path: &str, config: &Config) -> String {
    let trimmed = path.trim_start_matches('/');
    // The common case, a path of route words only (`/health`, `/sessions/validate`), is
    // shown as it is; route words need no decoding. This line is written for every request.
    if trimmed.split('/').all(|s| s.is_empty() || is_route_word(s)) {
        return format!("/{trimmed}");
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let decoded: Vec<Option<String>> = segments.iter().map(|s| super::percent_decode(s)).collect();
    let user_position = user_id_position(&decoded);
    let shown: Vec<String> = segments
        .iter()
        .zip(&decoded)
        .enumerate()
        .map(|(i, (raw, decoded))| match decoded {
            Some(text) if text.is_empty() || is_route_word(text) || token::is_session_id(text) => {
                text.clone()
            }
            Some(text) if user_position == Some(i) && !is_secret(text, config) => (*raw).to_owned(),
            Some(text) if text.contains('.') => format!("<token:{}>", fingerprint(text)),
            Some(text) => format!("<redacted:{}>", fingerprint(text)),
            None => format!("<redacted:{}>", fingerprint(raw)),
        })
        .collect();
    format!("/{}", shown.join("/"))
}

/// Whether `text` is a literal segment of some route.
fn is_route_word(text: &str) -> bool {
    ROUTE_WORDS.contains(&text)
}

/// Where the `{user_id}` of a route matching the path's shape is, if any.
fn user_id_position(decoded: &[Option<String>]) -> Option<usize> {
    ROUTES.iter().find_map(|route| {
        let parts: Vec<&str> = route.pattern.trim_start_matches('/').split('/').collect();
        if parts.len() != decoded.len() {
            return None;
        }
        let mut position = None;
        for (i, (part, segment)) in parts.iter().zip(decoded).enumerate() {
            let segment = segment.as_deref()?;
            match *part {
                "{user_id}" if !segment.is_empty() => position = Some(i),
                part if part.starts_with('{') => {}
                part if part == segment => {}
                _ => return None,
            }
        }
        position
    })
}

#[cfg(test)]
mod tests {
    use super::super::log::shown_user_id;
    use super::*;

    /// The probe's finding (issue 27): a token or the admin key sent in the `{user_id}`
    /// position was logged in clear, because user ids are.
    #[test]
    fn a_credential_in_the_user_id_position_is_fingerprinted() {
        let key = "k3y-0f-the-adm1n-Xy7Qp9";
        let config = Config::from_pairs(&[("admin_key", key)]);
        let token =
            "0b5d3f0e-9c1a-4b7e-8f00-1234567890ab.c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
        for credential in [key, token, secret] {
            for path in [
                format!("/sessions/user/{credential}/sessions"),
                format!("/sessions/user/{credential}"),
            ] {
                let shown = redact_path(&path, &config);
                assert!(!shown.contains(credential), "{shown}");
                assert!(
                    shown.contains("<redacted:") || shown.contains("<token:"),
                    "{shown}"
                );
            }
            assert!(!shown_user_id(credential, &config).contains(credential));
        }
        // Positive control: an ordinary user id, even one as long as a key, stays readable.
        for user_id in ["alice", "user-1234567890-abcdefg"] {
            let path = format!("/sessions/user/{user_id}/sessions");
            assert_eq!(redact_path(&path, &config), path);
            assert_eq!(shown_user_id(user_id, &config), user_id);
        }
    }

    #[test]
    fn tokens_in_paths_are_replaced_by_a_fingerprint() {
        let token =
            "0b5d3f0e-9c1a-4b7e-8f00-1234567890ab.c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
        let path = format!("/sessions/{token}/extend");
        let shown = redact_path(&path, &Config::default());
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.starts_with("/sessions/<token:") && shown.ends_with(">/extend"));
        assert_eq!(
            redact_path("/sessions/stats", &Config::default()),
            "/sessions/stats"
        );
        assert_eq!(
            redact_path("/openapi.json", &Config::default()),
            "/openapi.json"
        );
    }

    #[test]
    fn percent_encoded_dots_are_redacted_too() {
        let shown = redact_path("/sessions/abc%2Esecret", &Config::default());
        assert!(!shown.contains("secret"), "{shown}");
    }

    /// The probe's bypass: an encoded dot plus an invalid UTF-8 escape used to fall back to
    /// the raw text.
    #[test]
    fn a_segment_that_does_not_decode_is_redacted() {
        let path = "/sessions/0b5d3f0e-9c1a-4b7e-8f00-1234567890ab%2EsEcReTsEcReT%C3";
        let shown = redact_path(path, &Config::default());
        assert!(!shown.contains("sEcReT"), "{shown}");
        assert!(shown.starts_with("/sessions/<redacted:"), "{shown}");
    }

    /// Every value in a `{session_id}` position is a fingerprint unless it is a public id.
    #[test]
    fn credential_positions_show_only_public_ids() {
        let id = "0b5d3f0e-9c1a-4b7e-8f00-1234567890ab";
        let cases = [
            ("an admin key", "k3y-0f-the-adm1n-Xy7Qp9", false),
            ("a bare secret", "c2VjcmV0LXNlY3JldC1zZWNyZXQ", false),
            ("garbage", "not%20a%20session", false),
            ("a public id", id, true),
        ];
        for (what, value, kept) in cases {
            for path in [
                format!("/sessions/{value}"),
                format!("/sessions/{value}/rotate"),
            ] {
                let shown = redact_path(&path, &Config::default());
                assert_eq!(shown.contains(value), kept, "{what}: {shown}");
                if !kept {
                    assert!(shown.contains("<redacted:"), "{what}: {shown}");
                }
            }
        }
        // Positive control: the route words and the user id of a user route stay readable.
        assert_eq!(
            redact_path("/sessions/user/jane%20doe/sessions", &Config::default()),
            "/sessions/user/jane%20doe/sessions"
        );
        assert_eq!(redact_path("/health", &Config::default()), "/health");
        assert_eq!(
            redact_path("/sessions/user/alice/sessions", &Config::default()),
            "/sessions/user/alice/sessions"
        );
        assert_eq!(
            redact_path("/nope", &Config::default()),
            format!("/<redacted:{}>", fingerprint("nope"))
        );
    }
}
