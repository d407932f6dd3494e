//! The JSON shapes of the API: sessions, issued tokens, statistics, and RFC 3339 timestamps.
//!
//! Only [`issued`] ever contains a token; every other shape is built from [`Session`], which
//! has none.

use crate::session::engine::{Issued, Session, Stats, UserPage};
use serde_json::{Value, json};

/// A session: public id, user, RFC 3339 timestamps, idle timeout, metadata, activity.
pub fn session(s: &Session) -> Value {
    zoe_session_wire::session(&fields(s))
}

/// A newly issued token with its session; `session_id` is the token (seed compatibility).
pub fn issued(issued: &Issued) -> Value {
    zoe_session_wire::issued(&fields(&issued.session), &issued.token.expose())
}

/// The engine's session as the shared JSON shape takes it.
pub fn fields(s: &Session) -> zoe_session_wire::SessionFields<'_> {
    zoe_session_wire::SessionFields {
        id: &s.id,
        user_id: &s.user_id,
        created_at: s.created_at,
        last_activity: s.last_activity,
        expires_at: s.expires_at,
        absolute_expires_at: s.absolute_expires_at,
        idle_timeout: s.idle_timeout,
        metadata: &s.metadata,
        is_active: s.is_active,
        client_addr: s.client_addr.as_deref(),
        user_agent: s.user_agent.as_deref(),
    }
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

pub use zoe_session_wire::rfc3339;
