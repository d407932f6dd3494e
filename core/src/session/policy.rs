//! The rules of a session, as pure functions of their inputs and `now`: what input is
//! acceptable, when a session expires, how activity and extension move expiry, and who holds
//! a role or permission.

use crate::config::Timeouts;
use serde_json::{Map, Value};

/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;

/// A validate writes `last_activity` only when the stored value is at least this old, so hot
/// read paths do not write on every request. Expiry may therefore lag true activity by up to
/// this much; it is small next to the minimum idle timeout.
pub const ACTIVITY_WRITE_INTERVAL_MS: u64 = 15_000;

/// Input that breaks a rule; the text names the argument and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// The role `admin` satisfies every role and every permission requirement.
pub const ADMIN_ROLE: &str = "admin";

/// Checks a user id: 1 to 256 bytes, no control characters, no invisible characters, no
/// whitespace at either end.
///
/// User ids are the application's identifiers, compared byte for byte: `alice` and `аlice`
/// (Cyrillic а) are two users, as they are in the identity provider that issued them. What
/// is refused is what makes two ids *look* the same while differing invisibly: Unicode format
/// characters (zero-width spaces and joiners, bidi overrides and isolates, the BOM, tag
/// characters), variation selectors and other default-ignorable code points, line and
/// paragraph separators, and surrounding whitespace (`"alice "`). Other Unicode is kept as
/// given; telling visible confusables apart is the identity provider's job.
pub fn check_user_id(user_id: &str) -> Result<(), InvalidInput> {
    if user_id.trim().is_empty() {
        return Err(InvalidInput("user_id must not be empty".into()));
    }
    if user_id.len() > MAX_USER_ID_BYTES {
        return Err(InvalidInput(format!(
            "user_id must be at most {MAX_USER_ID_BYTES} bytes, got {}",
            user_id.len()
        )));
    }
    if user_id.chars().any(char::is_control) {
        return Err(InvalidInput(
            "user_id must not contain control characters".into(),
        ));
    }
    if let Some(c) = user_id.chars().find(|&c| is_invisible(c)) {
        return Err(InvalidInput(format!(
            "user_id must not contain invisible or formatting characters (found U+{:04X})",
            u32::from(c)
        )));
    }
    if user_id.trim() != user_id {
        return Err(InvalidInput(
            "user_id must not begin or end with whitespace".into(),
        ));
    }
    Ok(())
}

/// Checks the user id of a new session: [`check_user_id`], and that it can be told and named.
/// An id with no visible character (only blank glyphs such as U+2800) would show as nothing
/// in every list and log, and `.` or `..` cannot be put in a URL's path (browsers and
/// proxies resolve them), so no client could name the user. Ids already stored stay
/// reachable through the lookups, which apply [`check_user_id`] only.
pub fn check_new_user_id(user_id: &str) -> Result<(), InvalidInput> {
    check_user_id(user_id)?;
    if !user_id
        .chars()
        .any(|c| !c.is_whitespace() && !is_blank_glyph(c))
    {
        return Err(InvalidInput(
            "user_id must contain a visible character (it has only blank ones, such as U+2800)"
                .into(),
        ));
    }
    if matches!(user_id, "." | "..") {
        return Err(InvalidInput(
            "user_id must not be `.` or `..`: browsers and proxies resolve such a path segment, \
             so the user could not be named in a URL (`/sessions/user/{user_id}`)"
                .into(),
        ));
    }
    Ok(())
}

/// Characters that are printed as an empty cell though they are neither whitespace nor
/// default-ignorable: the blank Braille pattern and the Hangul fillers (the fillers are also
/// refused as invisible; listed here so the rule stands on its own).
fn is_blank_glyph(c: char) -> bool {
    matches!(u32::from(c), 0x2800 | 0x115F | 0x1160 | 0x3164 | 0xFFA0)
}

/// Checks a user-id prefix for [`prefix_upper_bound`]'s range: empty (every user) or up to
/// a user id's length, without control characters.
pub fn check_user_id_prefix(prefix: &str) -> Result<(), InvalidInput> {
    if prefix.len() > MAX_USER_ID_BYTES {
        return Err(InvalidInput(format!(
            "prefix must be at most {MAX_USER_ID_BYTES} bytes, got {}",
            prefix.len()
        )));
    }
    if prefix.chars().any(char::is_control) {
        return Err(InvalidInput(
            "prefix must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// The least string above every string that starts with `prefix`, in byte order (which, for
/// UTF-8, is code point order): the prefix with its last character incremented, dropping
/// trailing U+10FFFF. So `user_id >= prefix AND user_id < prefix_upper_bound(prefix)` holds
/// exactly for the ids starting with `prefix`, and is a range an index can serve. When
/// there is no such string (the empty prefix, or one of only U+10FFFF), a string above
/// every valid user id: 65 × U+10FFFF is longer than a user id may be and sorts after any
/// string of at most 64 of them.
pub fn prefix_upper_bound(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            code => char::from_u32(code),
        };
        if let Some(next) = next {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    std::iter::repeat_n(char::MAX, MAX_USER_ID_BYTES / char::MAX.len_utf8() + 1).collect()
}

/// Unicode format characters (general category Cf), default-ignorable code points and the
/// line/paragraph separators: characters that render as nothing or reorder what is around
/// them.
fn is_invisible(c: char) -> bool {
    matches!(u32::from(c),
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x0600..=0x0605 | 0x06DD | 0x070F | 0x0890 | 0x0891 | 0x08E2
        | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0x3164
        | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF)
}

/// Resolves the requested idle timeout, refusing values outside `[min_timeout, max_timeout]`.
pub fn idle_timeout(requested: Option<u32>, bounds: Timeouts) -> Result<u32, InvalidInput> {
    let timeout = requested.unwrap_or(bounds.default);
    if (bounds.min..=bounds.max).contains(&timeout) {
        Ok(timeout)
    } else {
        Err(InvalidInput(format!(
            "timeout must be between {} and {} seconds, got {timeout}",
            bounds.min, bounds.max
        )))
    }
}

/// Parses metadata text: a JSON object of at most `max_metadata_bytes`. Returns it in
/// canonical (compact) form. `None` means `{}`.
pub fn metadata(text: Option<&str>, max_metadata_bytes: u32) -> Result<String, InvalidInput> {
    let Some(text) = text else {
        return Ok("{}".to_owned());
    };
    let limit = max_metadata_bytes as usize;
    if text.len() > limit {
        return Err(InvalidInput(format!(
            "metadata must be at most {limit} bytes, got {}",
            text.len()
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => {
            let compact = Value::Object(map).to_string();
            // Re-serialising can only shrink or keep the size (whitespace is dropped; escapes
            // may grow), so check once more to keep the stored form within the cap.
            if compact.len() > limit {
                return Err(InvalidInput(format!(
                    "metadata must be at most {limit} bytes once compacted"
                )));
            }
            Ok(compact)
        }
        Ok(_) => Err(InvalidInput("metadata must be a JSON object".into())),
        Err(e) => Err(InvalidInput(format!("metadata is not valid JSON: {e}"))),
    }
}

/// The instants that bound a session, all in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    pub expires_at: u64,
    pub absolute_expires_at: u64,
}

/// Expiry of a session created at `now`.
pub fn initial_expiry(now: u64, idle_timeout: u32, absolute_lifetime: u32) -> Expiry {
    let absolute_expires_at = now + secs(absolute_lifetime);
    Expiry {
        expires_at: (now + secs(idle_timeout)).min(absolute_expires_at),
        absolute_expires_at,
    }
}

/// Expiry after activity at `now`: at least now + idle timeout, never earlier than before (an
/// earlier `extend` is kept) and never past the absolute lifetime.
pub fn after_activity(now: u64, idle_timeout: u32, current: Expiry) -> u64 {
    (now + secs(idle_timeout))
        .max(current.expires_at)
        .min(current.absolute_expires_at)
}

/// Expiry after `extend(additional)`: current expiry plus the extra time, capped at now +
/// max_timeout and at the absolute lifetime, and never moved backwards.
pub fn after_extend(now: u64, additional: u32, current: Expiry, max_timeout: u32) -> u64 {
    let wanted = current.expires_at.max(now) + secs(additional);
    let cap = (now + secs(max_timeout)).min(current.absolute_expires_at);
    wanted.min(cap).max(current.expires_at)
}

/// Checks the `extend` argument.
pub fn check_extension(additional: u32, max_timeout: u32) -> Result<(), InvalidInput> {
    if additional == 0 || additional > max_timeout {
        return Err(InvalidInput(format!(
            "additional_seconds must be between 1 and {max_timeout} seconds, got {additional}"
        )));
    }
    Ok(())
}

/// Whether a validate at `now` should write activity (see [`ACTIVITY_WRITE_INTERVAL_MS`]).
pub fn activity_write_due(now: u64, last_activity: u64) -> bool {
    now.saturating_sub(last_activity) >= ACTIVITY_WRITE_INTERVAL_MS
}

/// What `authorize` asks of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Role(String),
    Permission(String),
}

/// Checks `requirement` against a session's metadata (a JSON object as text).
///
/// The rule: a role is met when `metadata.role` equals it; a permission when
/// `metadata.permissions` is a list containing it. `metadata.role == "admin"` meets every
/// requirement. Anything else, including malformed metadata, does not.
pub fn authorizes(metadata: &str, requirement: &Requirement) -> bool {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(metadata) else {
        return false;
    };
    let role = role_of(&map);
    if role == Some(ADMIN_ROLE) {
        return true;
    }
    match requirement {
        Requirement::Role(wanted) => role == Some(wanted.as_str()),
        Requirement::Permission(wanted) => map
            .get("permissions")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|p| p.as_str() == Some(wanted))),
    }
}

/// What a session's metadata grants under the rule of [`authorizes`]: its role and its
/// permissions (the strings of `metadata.permissions`, in order, without repeats). Malformed
/// metadata grants nothing. The middleware hands these to the app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub role: Option<String>,
    pub permissions: Vec<String>,
}

/// The [`Grants`] of a session's metadata (a JSON object as text).
pub fn grants(metadata: &str) -> Grants {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(metadata) else {
        return Grants::default();
    };
    let mut permissions: Vec<String> = Vec::new();
    for permission in map
        .get("permissions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !permissions.iter().any(|seen| seen == permission) {
            permissions.push(permission.to_owned());
        }
    }
    Grants {
        role: role_of(&map).map(str::to_owned),
        permissions,
    }
}

fn role_of(map: &Map<String, Value>) -> Option<&str> {
    map.get("role").and_then(Value::as_str)
}

fn secs(seconds: u32) -> u64 {
    u64::from(seconds) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    #[test]
    fn grants_are_the_role_and_the_string_permissions() {
        let g = grants(r#"{"role":"editor","permissions":["a",1,"b","a"]}"#);
        assert_eq!(g.role.as_deref(), Some("editor"));
        assert_eq!(g.permissions, ["a", "b"]);
        assert_eq!(grants("[1]"), Grants::default());
        assert_eq!(grants(r#"{"role":7}"#), Grants::default());
    }

    #[test]
    fn the_prefix_range_holds_exactly_the_ids_with_the_prefix() {
        assert_eq!(prefix_upper_bound("al"), "am");
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), "b");
        assert_eq!(prefix_upper_bound("\u{D7FF}"), "\u{E000}");
        assert_eq!(prefix_upper_bound("<"), "=");
        let in_range =
            |prefix: &str, id: &str| id >= prefix && id < prefix_upper_bound(prefix).as_str();
        for (prefix, id, expected) in [
            ("al", "al", true),
            ("al", "alice", true),
            ("al", "al\u{10FFFF}x", true),
            ("al", "am", false),
            ("al", "Alice", false),
            ("al", "a", false),
            ("al", "ak\u{10FFFF}", false),
            ("é", "éa", true),
            ("é", "f", false),
            ("", "anyone", true),
        ] {
            assert_eq!(in_range(prefix, id), expected, "{prefix:?} {id:?}");
            assert_eq!(
                id.starts_with(prefix),
                expected,
                "the table itself: {prefix:?} {id:?}"
            );
        }
        // No successor: the bound is above every valid user id, even one of only U+10FFFF.
        let longest = "\u{10FFFF}".repeat(MAX_USER_ID_BYTES / 4);
        assert!(check_user_id(&longest).is_ok());
        for prefix in ["", "\u{10FFFF}"] {
            assert!(prefix_upper_bound(prefix).as_str() > longest.as_str());
        }
    }

    #[test]
    fn a_prefix_is_refused_when_it_cannot_start_a_user_id() {
        assert!(check_user_id_prefix("").is_ok());
        assert!(check_user_id_prefix("ali").is_ok());
        assert!(check_user_id_prefix("a\nb").is_err());
        assert!(check_user_id_prefix(&"x".repeat(MAX_USER_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn user_ids_are_checked() {
        assert!(check_user_id("alice").is_ok());
        assert!(check_user_id(&"a".repeat(256)).is_ok());
        for bad in ["", "   ", "a\nb", "\u{0}"] {
            assert!(check_user_id(bad).is_err(), "{bad:?}");
        }
        let err = check_user_id(&"a".repeat(10_000)).unwrap_err();
        assert!(err.0.contains("256"), "{err}");
    }

    /// Ids that look like `alice` but differ invisibly are refused; visible Unicode is kept.
    /// The probe's findings (issue 27): ids that only look blank were accepted, and `.`/`..`
    /// could be created but never opened from the console.
    #[test]
    fn a_new_user_id_must_be_visible_and_nameable_in_a_url() {
        for bad in [
            "\u{2800}",
            "\u{2800}\u{2800}",
            "\u{2800} \u{2800}",
            "\u{3164}",
            "\u{200B}",
            ".",
            "..",
        ] {
            assert!(check_new_user_id(bad).is_err(), "{bad:?}");
        }
        let err = check_new_user_id("\u{2800}").unwrap_err();
        assert!(err.0.contains("visible"), "{err:?}");
        let err = check_new_user_id("..").unwrap_err();
        assert!(err.0.contains("`..`"), "{err:?}");
        // Positive control: visible ids, dots among other characters, blanks beside a
        // visible character.
        for good in ["alice", "...", ".alice", "a.b", "a\u{2800}b", "Zoë"] {
            assert_eq!(check_new_user_id(good), Ok(()), "{good:?}");
        }
        // Lookups keep finding ids stored before the rule.
        assert_eq!(check_user_id("\u{2800}"), Ok(()));
        assert_eq!(check_user_id("."), Ok(()));
    }

    #[test]
    fn look_alike_user_ids_follow_the_documented_rule() {
        for bad in [
            "alice ",
            " alice",
            "alice\u{00A0}",
            "al\u{200B}ice",
            "al\u{200D}ice",
            "\u{202E}ecila",
            "alice\u{2066}",
            "\u{FEFF}alice",
            "alice\u{FE0F}",
            "alice\u{E0041}",
            "al\u{00AD}ice",
            "alice\u{2028}",
        ] {
            let err = check_user_id(bad).expect_err(bad);
            assert!(
                err.0.contains("invisible") || err.0.contains("whitespace"),
                "{bad:?}: {err}"
            );
        }
        // Positive controls: visible Unicode and inner spaces stay distinct, valid ids.
        for good in [
            "\u{0430}lice",
            "jane doe",
            "José",
            "用户",
            "alice@example.com",
        ] {
            assert_eq!(check_user_id(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn timeout_outside_the_range_names_the_range() {
        let bounds = Timeouts {
            min: 300,
            default: 3600,
            max: 86400,
        };
        assert_eq!(idle_timeout(None, bounds), Ok(3600));
        assert_eq!(idle_timeout(Some(300), bounds), Ok(300));
        assert_eq!(idle_timeout(Some(86400), bounds), Ok(86400));
        let err = idle_timeout(Some(299), bounds).unwrap_err();
        assert!(err.0.contains("between 300 and 86400"), "{err}");
        assert!(idle_timeout(Some(86401), bounds).is_err());
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert_eq!(metadata(None, 64).unwrap(), "{}");
        assert_eq!(
            metadata(Some(r#"{ "role" : "admin" }"#), 64).unwrap(),
            r#"{"role":"admin"}"#
        );
        for bad in ["[]", "3", "\"x\"", "null", "{", "", "{\"a\":1}x"] {
            assert!(metadata(Some(bad), 64).is_err(), "{bad:?}");
        }
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(64));
        assert!(metadata(Some(&big), 64).unwrap_err().0.contains("64"));
    }

    #[test]
    fn absolute_lifetime_caps_initial_expiry() {
        let expiry = initial_expiry(0, 3600, 1800);
        assert_eq!(expiry.absolute_expires_at, HOUR / 2);
        assert_eq!(expiry.expires_at, HOUR / 2);
    }

    #[test]
    fn activity_slides_expiry_but_keeps_extensions_and_the_cap() {
        let current = Expiry {
            expires_at: 2 * HOUR,
            absolute_expires_at: 10 * HOUR,
        };
        assert_eq!(after_activity(HOUR + 1, 3600, current), 2 * HOUR + 1);
        // An extension beyond now + idle is not undone by activity.
        let extended = Expiry {
            expires_at: 5 * HOUR,
            ..current
        };
        assert_eq!(after_activity(HOUR, 3600, extended), 5 * HOUR);
        assert_eq!(after_activity(9 * HOUR + 1, 3600, current), 10 * HOUR);
    }

    #[test]
    fn extend_is_capped_by_max_timeout_and_lifetime() {
        let max_timeout = 86400; // 24 h
        let current = Expiry {
            expires_at: HOUR,
            absolute_expires_at: 100 * HOUR,
        };
        assert_eq!(after_extend(0, 1800, current, max_timeout), HOUR + HOUR / 2);
        assert_eq!(after_extend(0, 86400, current, max_timeout), 24 * HOUR);
        let near_end = Expiry {
            expires_at: HOUR,
            absolute_expires_at: 2 * HOUR,
        };
        assert_eq!(after_extend(0, 86400, near_end, max_timeout), 2 * HOUR);
        assert!(check_extension(0, max_timeout).is_err());
        assert!(check_extension(86401, max_timeout).is_err());
        assert!(check_extension(1, max_timeout).is_ok());
    }

    #[test]
    fn activity_writes_are_throttled() {
        assert!(!activity_write_due(10_000, 0));
        assert!(activity_write_due(ACTIVITY_WRITE_INTERVAL_MS, 0));
        assert!(!activity_write_due(0, 5)); // a clock step backwards never writes
    }

    #[test]
    fn admin_satisfies_every_requirement() {
        let admin = r#"{"role":"admin"}"#;
        assert!(authorizes(admin, &Requirement::Role("developer".into())));
        assert!(authorizes(admin, &Requirement::Permission("delete".into())));
    }

    #[test]
    fn roles_and_permissions_come_from_metadata() {
        let dev = r#"{"role":"developer","permissions":["read","write"]}"#;
        assert!(authorizes(dev, &Requirement::Role("developer".into())));
        assert!(!authorizes(dev, &Requirement::Role("admin".into())));
        assert!(authorizes(dev, &Requirement::Permission("write".into())));
        assert!(!authorizes(dev, &Requirement::Permission("delete".into())));
        assert!(!authorizes("{}", &Requirement::Role("user".into())));
        assert!(!authorizes(
            r#"{"permissions":"write"}"#,
            &Requirement::Permission("write".into())
        ));
        assert!(!authorizes("not json", &Requirement::Role("x".into())));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,16}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn metadata_is_accepted_only_as_an_object_within_the_cap(
            value in json_value(),
            cap in 2u32..400,
        ) {
            let text = value.to_string();
            match metadata(Some(&text), cap) {
                Ok(stored) => {
                    prop_assert!(value.is_object());
                    prop_assert!(stored.len() <= cap as usize);
                    prop_assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), value);
                }
                Err(_) => prop_assert!(!value.is_object() || text.len() > cap as usize),
            }
        }

        #[test]
        fn arbitrary_metadata_text_never_panics(text in ".{0,64}") {
            let _ = metadata(Some(&text), 16384);
            let _ = authorizes(&text, &Requirement::Role("admin".into()));
        }

        #[test]
        fn no_expiry_computation_passes_the_absolute_lifetime(
            now in 0u64..1 << 50,
            idle in 1u32..1 << 20,
            extra in 1u32..1 << 20,
            expires_in in 0u64..1 << 30,
            lifetime_left in 0u64..1 << 30,
        ) {
            let current = Expiry {
                expires_at: now + expires_in.min(lifetime_left),
                absolute_expires_at: now + lifetime_left,
            };
            let max_timeout = 86400;
            let activity = after_activity(now, idle, current);
            let extended = after_extend(now, extra, current, max_timeout);
            prop_assert!(activity <= current.absolute_expires_at);
            prop_assert!(extended <= current.absolute_expires_at);
            prop_assert!(activity >= current.expires_at);
            prop_assert!(extended >= current.expires_at);
            prop_assert!(extended <= (now + u64::from(max_timeout) * 1000).max(current.expires_at));
        }
    }
}
