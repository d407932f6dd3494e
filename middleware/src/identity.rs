//! The identity headers the app receives, and the rule that no client can forge them.
//!
//! The middleware owns every request header whose name starts with [`RESERVED_PREFIX`]
//! (`x-session-`), whatever its letter case, however often it is repeated: each one the
//! client sent is removed before the request goes on, except the configured token header
//! (`session_header`, `X-Session-ID` by default), which the middleware reads and passes on
//! unchanged so that an API behind it still sees its credential. Then, for a valid session,
//! it adds:
//!
//! | header | value |
//! |---|---|
//! | `x-session-user-id` | the session's user id |
//! | `x-session-public-id` | the session's public id (never the token) |
//! | `x-session-roles` | the session's role (`metadata.role`), or empty |
//! | `x-session-permissions` | `metadata.permissions`, comma-separated, or empty |
//! | `x-session-expires-at` | when the session expires if idle, RFC 3339 UTC with milliseconds |
//!
//! Values are UTF-8 percent-encoded where a header could not carry them or a list would be
//! misread: every byte outside visible ASCII, `%`, and `,` (so `josé` arrives as `jos%C3%A9`;
//! plain ASCII ids arrive unchanged). An app that finds no `x-session-user-id` has no session.

use zoe_session_core::session::engine::Session;
use zoe_session_core::session::policy;

/// The prefix of every header the middleware owns.
pub const RESERVED_PREFIX: &str = "x-session-";

/// The user id.
pub const USER_ID: &str = "x-session-user-id";
/// The session's public id.
pub const PUBLIC_ID: &str = "x-session-public-id";
/// The session's role.
pub const ROLES: &str = "x-session-roles";
/// The session's permissions.
pub const PERMISSIONS: &str = "x-session-permissions";
/// The session's idle expiry.
pub const EXPIRES_AT: &str = "x-session-expires-at";

/// Every header the middleware adds.
pub const IDENTITY_HEADERS: [&str; 5] = [USER_ID, PUBLIC_ID, ROLES, PERMISSIONS, EXPIRES_AT];

/// Whether a client's header `name` is removed before the request goes on: any name in the
/// reserved family but the token header.
pub fn is_stripped(name: &str, token_header: &str) -> bool {
    let reserved = name
        .get(..RESERVED_PREFIX.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(RESERVED_PREFIX));
    reserved && !name.eq_ignore_ascii_case(token_header)
}

/// The identity headers for `session`, names lowercase.
pub fn headers(session: &Session) -> Vec<(&'static str, String)> {
    let grants = policy::grants(&session.metadata);
    let permissions: Vec<String> = grants.permissions.iter().map(|p| encode(p)).collect();
    vec![
        (USER_ID, encode(&session.user_id)),
        (PUBLIC_ID, encode(&session.id)),
        (
            ROLES,
            grants.role.as_deref().map(encode).unwrap_or_default(),
        ),
        (PERMISSIONS, permissions.join(",")),
        (EXPIRES_AT, zoe_session_wire::rfc3339(session.expires_at)),
    ]
}

/// `value` with every byte outside visible ASCII, `%` and `,` percent-encoded.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if byte.is_ascii_graphic() && byte != b'%' && byte != b',' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_casing_of_the_reserved_family_is_stripped_but_the_token_header() {
        for name in [
            "x-session-user-id",
            "X-Session-User-Id",
            "X-SESSION-ROLES",
            "x-session-anything",
        ] {
            assert!(is_stripped(name, "X-Session-ID"), "{name}");
        }
        assert!(!is_stripped("x-session-id", "X-Session-ID"));
        assert!(!is_stripped("X-SESSION-ID", "X-Session-ID"));
        // With another token header, `x-session-id` is the client's and goes.
        assert!(is_stripped("x-session-id", "Authorization-Token"));
        assert!(!is_stripped("x-sessions", "X-Session-ID"));
        assert!(!is_stripped("cookie", "X-Session-ID"));
    }

    #[test]
    fn values_are_encoded_only_where_a_header_or_a_list_needs_it() {
        assert_eq!(encode("alice@example.com"), "alice@example.com");
        assert_eq!(encode("josé"), "jos%C3%A9");
        assert_eq!(encode("a b,c%"), "a%20b%2Cc%25");
    }

    #[test]
    fn the_identity_names_the_user_role_permissions_and_expiry() {
        let session = Session {
            id: "0b7a3c1e-0000-4000-8000-000000000000".to_owned(),
            user_id: "alice".to_owned(),
            created_at: 0,
            last_activity: 0,
            expires_at: 1_700_000_000_000,
            absolute_expires_at: 1_700_000_000_000,
            idle_timeout: 3600,
            metadata: r#"{"role":"editor","permissions":["read","write,all"]}"#.to_owned(),
            is_active: true,
            client_addr: None,
            user_agent: None,
        };
        let headers = headers(&session);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get(USER_ID), Some("alice"));
        assert_eq!(get(PUBLIC_ID), Some(session.id.as_str()));
        assert_eq!(get(ROLES), Some("editor"));
        assert_eq!(get(PERMISSIONS), Some("read,write%2Call"));
        assert_eq!(get(EXPIRES_AT), Some("2023-11-14T22:13:20.000Z"));
        assert!(
            headers
                .iter()
                .all(|(name, _)| name.starts_with(RESERVED_PREFIX))
        );
    }
}
