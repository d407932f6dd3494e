//! Audit events: what happened to which session, as the engine saw it. The engine records
//! them in its [`Events`]; whoever called it (the HTTP layer, the WIT export) takes them
//! afterwards, adds what only it knows (the client's address, the request id) and writes one
//! JSON line each. Events carry public ids only, never a token or a secret.

use std::cell::RefCell;
use std::rc::Rc;

/// Why a presented token did not validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Not of the form `<uuid>.<secret>`.
    Malformed,
    /// No session has its id.
    Unknown,
    /// The session's idle timeout or lifetime has passed.
    Expired,
    /// The id is a session's, the secret is not: a guess, a forgery or an old token.
    BadSecret,
}

impl FailureKind {
    /// The `kind` field of `session.validate_failed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::BadSecret => "bad_secret",
        }
    }
}

/// Which sessions an invalidation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    One,
    User,
    All,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Self::One => "one",
            Self::User => "user",
            Self::All => "all",
        }
    }
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Created {
        session_id: String,
        user_id: String,
    },
    /// Deleted to make room under `evict_oldest`.
    Evicted {
        session_id: String,
        user_id: String,
    },
    Rotated {
        session_id: String,
        user_id: String,
    },
    Extended {
        session_id: String,
        user_id: String,
        expires_at: u64,
    },
    Invalidated {
        scope: Scope,
        count: u32,
        session_id: Option<String>,
        user_id: Option<String>,
    },
    Cleanup {
        deleted: u32,
    },
    ValidateFailed {
        kind: FailureKind,
        session_id: Option<String>,
        user_id: Option<String>,
    },
    /// A rotated-away token came back after the grace period: the session was revoked.
    TokenReuse {
        session_id: String,
        user_id: String,
        rotated_at: u64,
    },
    /// A privileged request without the admin key (`missing`) or with a wrong one
    /// (`wrong_key`). Never the presented value.
    AdminAuthFailed {
        reason: &'static str,
    },
}

impl Event {
    /// The stable `event` name (SECURITY.md, "Audit events").
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "session.created",
            Self::Evicted { .. } => "session.evicted",
            Self::Rotated { .. } => "session.rotated",
            Self::Extended { .. } => "session.extended",
            Self::Invalidated { .. } => "session.invalidated",
            Self::Cleanup { .. } => "session.cleanup",
            Self::ValidateFailed { .. } => "session.validate_failed",
            Self::TokenReuse { .. } => "session.token_reuse",
            Self::AdminAuthFailed { .. } => "admin.auth_failed",
        }
    }

    /// The event's own fields as JSON members (the caller adds time, client and request).
    pub fn fields(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Created {
                session_id,
                user_id,
            }
            | Self::Evicted {
                session_id,
                user_id,
            }
            | Self::Rotated {
                session_id,
                user_id,
            } => json!({"session_id": session_id, "user_id": user_id}),
            Self::Extended {
                session_id,
                user_id,
                expires_at,
            } => json!({
                "session_id": session_id,
                "user_id": user_id,
                "expires_at": zoe_session_wire::rfc3339(*expires_at),
            }),
            Self::Invalidated {
                scope,
                count,
                session_id,
                user_id,
            } => json!({
                "scope": scope.name(),
                "count": count,
                "session_id": session_id,
                "user_id": user_id,
            }),
            Self::Cleanup { deleted } => json!({"deleted": deleted}),
            Self::ValidateFailed {
                kind,
                session_id,
                user_id,
            } => json!({"kind": kind.name(), "session_id": session_id, "user_id": user_id}),
            Self::TokenReuse {
                session_id,
                user_id,
                rotated_at,
            } => json!({
                "session_id": session_id,
                "user_id": user_id,
                "rotated_at": zoe_session_wire::rfc3339(*rotated_at),
            }),
            Self::AdminAuthFailed { reason } => json!({"reason": reason}),
        }
    }

    /// Whether a flood of bad credentials repeats this event once per request: failed
    /// validations and failed admin checks. Their lines are rate-limited (`http::log::admit`);
    /// every other event, token reuse above all, is always written.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::ValidateFailed { .. } | Self::AdminAuthFailed { .. }
        )
    }

    /// Whether the event is a warning: someone presented what they should not have.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Self::TokenReuse { .. }
                | Self::AdminAuthFailed { .. }
                | Self::ValidateFailed {
                    kind: FailureKind::BadSecret,
                    ..
                }
        )
    }
}

/// The events of one request or call, in the order they happened. Clones share one list, so
/// that the engines a request creates record into the request's events.
#[derive(Debug, Default, Clone)]
pub struct Events(Rc<RefCell<Vec<Event>>>);

impl Events {
    pub fn record(&self, event: Event) {
        self.0.borrow_mut().push(event);
    }

    /// The events so far, leaving none.
    pub fn take(&self) -> Vec<Event> {
        self.0.take()
    }
}
