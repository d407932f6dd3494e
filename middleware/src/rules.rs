//! Which rule a request path falls under: pure functions of the path and the settings.
//!
//! The rule, as docs/middleware.md states it:
//!
//! - a path that two readers could take for two different paths is refused (400) before any
//!   rule is looked at: a `.` or `..` segment, written plainly or percent-encoded, and an
//!   encoded `/` or `\` (`%2F`, `%5C`) or a raw `\`. Spin routes on the raw path and many
//!   apps do not resolve dot segments, so `/public/../admin` could reach the app's `/admin`
//!   while a normalising check judged `/admin` — or the other way round. Browsers never send
//!   these forms; clients that do get a clear refusal instead of a guess;
//! - otherwise the path is compared segment by segment after percent-decoding, with empty
//!   segments dropped (`//admin/` is `/admin`): a prefix matches itself and everything below
//!   it, never a lookalike (`/admin` does not match `/administrator`);
//! - protected prefixes and role or permission prefixes match in any letter case (`/ADMIN` is
//!   under `/admin`, as it is for an app that routes case-insensitively); excluded and
//!   optional prefixes match only as written. Every doubt thus falls on the strict side;
//! - the longest matching prefix among protected, optional and excluded decides; on a tie the
//!   stricter wins (protected, then optional, then excluded). A path under no prefix is open:
//!   it passes without a check and without identity;
//! - role and permission rules apply wherever they match, whatever else matches: their path
//!   always needs a valid session holding every role and permission its rules name.

use zoe_session_core::config::PathRule;
use zoe_session_core::session::policy::Requirement;

/// What the middleware does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Under no prefix: passes unchecked, without identity.
    Open,
    /// Excluded: passes without a session, without identity.
    Excluded,
    /// Optional: the identity when a valid session comes with it; never refused for lack of one.
    Optional,
    /// Protected: a valid session, or 401.
    Protected,
}

/// The verdict on a path: its access and the roles and permissions it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub access: Access,
    pub requirements: Vec<Requirement>,
}

/// The settings the verdict reads.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub protected: &'a [String],
    pub excluded: &'a [String],
    pub optional: &'a [String],
    pub roles: &'a [PathRule],
    pub permissions: &'a [PathRule],
}

/// A path that cannot be judged one way only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AmbiguousPath(pub &'static str);

impl Rules<'_> {
    /// Judges `path` (without the query).
    ///
    /// # Errors
    ///
    /// [`AmbiguousPath`] for a dot segment, an encoded slash or backslash, or a raw backslash.
    pub fn judge(&self, path: &str) -> Result<Verdict, AmbiguousPath> {
        let segments = segments(path)?;
        let matched = |list: &[String], fold: bool| {
            list.iter()
                .filter_map(|prefix| prefix_len(&segments, prefix, fold))
                .max()
        };
        // Ties go to the stricter: the candidates are listed strictest first and `max_by_key`
        // keeps the last maximum, so they are compared in reverse.
        let candidates = [
            (Access::Excluded, matched(self.excluded, false)),
            (Access::Optional, matched(self.optional, false)),
            (Access::Protected, matched(self.protected, true)),
        ];
        let mut access = candidates
            .iter()
            .filter_map(|(access, len)| len.map(|len| (*access, len)))
            .max_by_key(|(_, len)| *len)
            .map_or(Access::Open, |(access, _)| access);
        let mut requirements = Vec::new();
        for (rules, make) in [
            (self.roles, Requirement::Role as fn(String) -> Requirement),
            (self.permissions, Requirement::Permission),
        ] {
            for rule in rules {
                if prefix_len(&segments, &rule.prefix, true).is_some() {
                    requirements.push(make(rule.name.clone()));
                }
            }
        }
        if !requirements.is_empty() {
            access = Access::Protected;
        }
        Ok(Verdict {
            access,
            requirements,
        })
    }
}

/// How many segments `prefix` covers when `segments` lie at or below it (`fold`: ignoring
/// ASCII case). A prefix that is itself ambiguous never matches.
fn prefix_len(segments: &[String], prefix: &str, fold: bool) -> Option<usize> {
    let prefix = self::segments(prefix).ok()?;
    let same = |a: &String, b: &String| {
        if fold {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    (segments.len() >= prefix.len() && segments.iter().zip(&prefix).all(|(a, b)| same(a, b)))
        .then_some(prefix.len())
}

/// The path's segments, percent-decoded, empty ones dropped.
///
/// # Errors
///
/// [`AmbiguousPath`], as [`Rules::judge`].
pub fn segments(path: &str) -> Result<Vec<String>, AmbiguousPath> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.contains('\\') {
        return Err(AmbiguousPath("a path may not contain `\\`"));
    }
    let mut out = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_decode(raw);
        if decoded.contains(['/', '\\']) {
            return Err(AmbiguousPath(
                "a path may not contain an encoded `/` or `\\` (%2F, %5C)",
            ));
        }
        if decoded == "." || decoded == ".." {
            return Err(AmbiguousPath(
                "a path may not contain `.` or `..` segments, plain or percent-encoded",
            ));
        }
        out.push(decoded);
    }
    Ok(out)
}

/// Decodes `%XX` escapes; malformed escapes stay as written. Invalid UTF-8 is replaced, which
/// can only make a path match less.
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

    fn rule(prefix: &str, name: &str) -> PathRule {
        PathRule {
            prefix: prefix.to_owned(),
            name: name.to_owned(),
        }
    }

    struct Fixture {
        protected: Vec<String>,
        excluded: Vec<String>,
        optional: Vec<String>,
        roles: Vec<PathRule>,
        permissions: Vec<PathRule>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                protected: list(&["/api", "/admin"]),
                excluded: list(&["/health", "/api/public"]),
                optional: list(&["/feed", "/api/public/personal"]),
                roles: vec![rule("/admin", "admin"), rule("/billing", "billing")],
                permissions: vec![rule("/reports", "reports:read")],
            }
        }

        fn judge(&self, path: &str) -> Result<Verdict, AmbiguousPath> {
            Rules {
                protected: &self.protected,
                excluded: &self.excluded,
                optional: &self.optional,
                roles: &self.roles,
                permissions: &self.permissions,
            }
            .judge(path)
        }

        fn access(&self, path: &str) -> Access {
            self.judge(path).unwrap().access
        }
    }

    #[test]
    fn a_prefix_covers_its_subpaths_but_not_lookalikes() {
        let f = Fixture::new();
        assert_eq!(f.access("/api"), Access::Protected);
        assert_eq!(f.access("/api/chat?x=1"), Access::Protected);
        assert_eq!(f.access("/apiary"), Access::Open);
        assert_eq!(f.access("/"), Access::Open);
        assert_eq!(f.access("/health"), Access::Excluded);
        assert_eq!(f.access("/feed/today"), Access::Optional);
    }

    #[test]
    fn the_longest_prefix_decides_and_ties_go_to_the_stricter() {
        let f = Fixture::new();
        assert_eq!(f.access("/api/public/x"), Access::Excluded);
        assert_eq!(f.access("/api/public/personal/x"), Access::Optional);
        let tie = Fixture {
            excluded: list(&["/api"]),
            ..Fixture::new()
        };
        assert_eq!(tie.access("/api/x"), Access::Protected);
    }

    #[test]
    fn every_spelling_of_admin_is_judged_as_admin() {
        let f = Fixture::new();
        let admin = Verdict {
            access: Access::Protected,
            requirements: vec![Requirement::Role("admin".to_owned())],
        };
        for path in [
            "/admin",
            "/admin/",
            "/ADMIN",
            "/Admin/users",
            "//admin",
            "/%61dmin",
            "/%41DMIN",
        ] {
            assert_eq!(f.judge(path), Ok(admin.clone()), "{path}");
        }
        // Positive control: a lookalike is not admin.
        assert_eq!(f.access("/administrator"), Access::Open);
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_refused() {
        let f = Fixture::new();
        for path in [
            "/admin/../x",
            "/x/../admin",
            "/./admin",
            "/%2e%2e/admin",
            "/%2E/admin",
            "/api%2Fchat",
            "/public%2fadmin",
            "/admin%5Cx",
            "/admin\\x",
        ] {
            assert!(f.judge(path).is_err(), "{path}");
        }
        // Dots inside a segment are ordinary.
        assert_eq!(f.access("/api/file.txt"), Access::Protected);
        assert_eq!(f.access("/...x"), Access::Open);
    }

    #[test]
    fn excluded_and_optional_prefixes_match_only_as_written() {
        let f = Fixture::new();
        assert_eq!(f.access("/HEALTH"), Access::Open);
        assert_eq!(f.access("/API/public"), Access::Protected);
        assert_eq!(f.access("/Feed"), Access::Open);
    }

    #[test]
    fn role_and_permission_rules_apply_wherever_they_match() {
        let f = Fixture::new();
        let billing = f.judge("/billing/invoices").unwrap();
        assert_eq!(billing.access, Access::Protected);
        assert_eq!(
            billing.requirements,
            [Requirement::Role("billing".to_owned())]
        );
        let reports = f.judge("/REPORTS/2026").unwrap();
        assert_eq!(
            reports.requirements,
            [Requirement::Permission("reports:read".to_owned())]
        );
        let excluded_but_required = Fixture {
            excluded: list(&["/billing"]),
            ..Fixture::new()
        };
        assert_eq!(
            excluded_but_required.access("/billing/x"),
            Access::Protected
        );
        assert!(f.judge("/api").unwrap().requirements.is_empty());
    }

    #[test]
    fn malformed_escapes_are_kept_verbatim() {
        assert_eq!(segments("/a%zz/b%2").unwrap(), ["a%zz", "b%2"]);
        assert_eq!(segments("/a%41").unwrap(), ["aA"]);
    }
}
