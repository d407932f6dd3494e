//! Which requests the gate checks: pure functions over the path and the settings.
//!
//! The rule, as documented in docs/composition.md:
//!
//! - paths are compared after normalisation: percent-decoding, `.` and empty segments
//!   dropped, `..` resolved. So `/public/../api/chat` and `/api//chat` are judged as
//!   `/api/chat`, whatever the app behind the gate does with them;
//! - a configured path matches itself and everything below it, segment by segment:
//!   `/api` matches `/api` and `/api/chat`, never `/apiary`;
//! - excluded paths win over protected ones; a path that matches neither passes unchecked.

/// What the gate does with a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Matches an excluded path: passes without a session, even if also protected.
    Excluded,
    /// Matches a protected path and no excluded one: needs a valid session.
    Protected,
    /// Matches neither: passes unchecked.
    Open,
}

/// Classifies `path` (which may carry a query string).
pub fn classify(path: &str, protected: &[String], excluded: &[String]) -> Verdict {
    let segments = normalise(path);
    let matches = |list: &[String]| list.iter().any(|prefix| is_under(&segments, prefix));
    if matches(excluded) {
        Verdict::Excluded
    } else if matches(protected) {
        Verdict::Protected
    } else {
        Verdict::Open
    }
}

/// Whether the normalised `segments` lie at or below `prefix`.
fn is_under(segments: &[String], prefix: &str) -> bool {
    let prefix = normalise(prefix);
    segments.len() >= prefix.len() && segments.iter().zip(&prefix).all(|(a, b)| a == b)
}

/// The path's segments, percent-decoded, with `.`, empty segments and `..` resolved.
pub fn normalise(path: &str) -> Vec<String> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segments: Vec<String> = Vec::new();
    for raw in path.split('/') {
        let segment = percent_decode(raw);
        // A decoded `/` inside a segment is split too, so `/api%2Fchat` is `/api/chat`.
        for part in segment.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                part => segments.push(part.to_owned()),
            }
        }
    }
    segments
}

/// Decodes `%XX` escapes; malformed escapes stay as written. Invalid UTF-8 is replaced, which
/// can only make a path match less, never more.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            // Two hex digits are at most 255, so the narrowing is exact.
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn verdict(path: &str) -> Verdict {
        classify(
            path,
            &list(&["/api/chat", "/developer", "/tasks", "/api"]),
            &list(&["/docs", "/health", "/api/public"]),
        )
    }

    #[test]
    fn a_protected_prefix_covers_its_subpaths_but_not_lookalikes() {
        assert_eq!(verdict("/developer"), Verdict::Protected);
        assert_eq!(verdict("/developer/tools?x=1"), Verdict::Protected);
        assert_eq!(verdict("/developers"), Verdict::Open);
        assert_eq!(verdict("/apiary"), Verdict::Open);
    }

    #[test]
    fn excluded_wins_over_protected() {
        assert_eq!(verdict("/api/public/info"), Verdict::Excluded);
        assert_eq!(verdict("/api/chat"), Verdict::Protected);
        assert_eq!(verdict("/health"), Verdict::Excluded);
    }

    #[test]
    fn dot_segments_and_escapes_cannot_sneak_past_the_gate() {
        assert_eq!(verdict("/health/../api/chat"), Verdict::Protected);
        assert_eq!(verdict("/public/./../developer"), Verdict::Protected);
        assert_eq!(verdict("//developer"), Verdict::Protected);
        assert_eq!(verdict("/%64eveloper"), Verdict::Protected);
        assert_eq!(verdict("/api%2Fchat"), Verdict::Protected);
        assert_eq!(verdict("/%2e%2e/developer"), Verdict::Protected);
    }

    #[test]
    fn unlisted_paths_are_open() {
        assert_eq!(verdict("/"), Verdict::Open);
        assert_eq!(verdict("/public/info"), Verdict::Open);
    }

    #[test]
    fn malformed_escapes_are_kept_verbatim() {
        assert_eq!(normalise("/a%zz/b%2"), ["a%zz", "b%2"]);
    }
}
