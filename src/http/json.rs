//! The JSON shapes of the API: sessions, issued tokens, statistics, and RFC 3339 timestamps.
//!
//! Only [`issued`] ever contains a token; every other shape is built from [`Session`], which
//! has none.

use crate::session::engine::{Issued, Session, Stats, UserPage};
use serde_json::{Value, json};

/// A session: public id, user, RFC 3339 timestamps, idle timeout, metadata, activity.
pub fn session(s: &Session) -> Value {
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "created_at": rfc3339(s.created_at),
        "last_activity": rfc3339(s.last_activity),
        "expires_at": rfc3339(s.expires_at),
        "absolute_expires_at": rfc3339(s.absolute_expires_at),
        "timeout": s.idle_timeout,
        // Stored metadata is always a canonical JSON object (the engine checked it).
        "metadata": serde_json::from_str::<Value>(&s.metadata).unwrap_or_else(|_| json!({})),
        "is_active": s.is_active,
    })
}

/// A newly issued token with its session; `session_id` is the token (seed compatibility).
pub fn issued(issued: &Issued) -> Value {
    let mut value = session(&issued.session);
    value["session_id"] = Value::String(issued.token.expose());
    value
}

/// Counters over the whole store.
pub fn stats(stats: &Stats) -> Value {
    json!({
        "active_sessions": stats.active_sessions,
        "active_users": stats.active_users,
        "expired_awaiting_cleanup": stats.expired,
        "last_cleanup_at": (stats.last_cleanup_at != 0).then(|| rfc3339(stats.last_cleanup_at)),
    })
}

/// A page of users with active sessions, and the cursor of the next page.
pub fn user_page(page: &UserPage) -> Value {
    let users: Vec<Value> = page
        .users
        .iter()
        .map(|user| {
            json!({
                "user_id": user.user_id,
                "sessions": user.sessions,
                "last_activity": rfc3339(user.last_activity),
            })
        })
        .collect();
    json!({"users": users, "next_after": page.next_after})
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds, e.g.
/// `2026-11-28T04:38:25.123Z`.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_840_705_007), "2026-11-28T04:38:25.007Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }
}
