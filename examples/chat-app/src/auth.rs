//! The seed's FastAPI dependencies as functions: `require_session`, `optional_session`,
//! `admin_user`, `developer_user` and `user_with_permission`, each one call into
//! `zoe:session/sessions`.

use crate::bindings::sessions::{self, Requirement, Session};
use crate::error::AppError;
use spin_sdk::http::Request;

/// The header that carries the token when `session_header` is not set, as in the seed.
pub const DEFAULT_SESSION_HEADER: &str = "X-Session-ID";

/// The header that carries the token: zoe-session's own `session_header` setting (the same
/// Spin variable, or `SESSION_HEADER` under the native host), so the app, the gate in front
/// of it and the session service all read the token from one place.
///
/// # Errors
///
/// A configuration error (500) for a value that is not a header name.
pub fn session_header() -> Result<String, AppError> {
    let configured = spin_sdk::variables::get("session_header")
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty());
    let Some(name) = configured else {
        return Ok(DEFAULT_SESSION_HEADER.to_owned());
    };
    let valid = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(name)
    } else {
        Err(AppError::Internal(
            "config: invalid setting `session_header`: must be 1-64 letters, digits, `-` or `_`"
                .to_owned(),
        ))
    }
}

/// The token from the session header, if any. Blank values count as absent.
pub fn token(req: &Request, header: &str) -> Option<String> {
    req.header(&header.to_ascii_lowercase())
        .and_then(|value| value.as_str())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// The token from the configured session header, or 401 naming that header.
fn required_token(req: &Request) -> Result<String, AppError> {
    let header = session_header()?;
    token(req, &header).ok_or_else(|| AppError::missing_session(&header))
}

/// A valid session, or 401. Validation counts as activity when `auto_update` is on.
pub fn require_session(req: &Request) -> Result<(Session, String), AppError> {
    let token = required_token(req)?;
    let session = sessions::validate(&token)?;
    Ok((session, token))
}

/// The session if the request carries a valid one; anything else (none, unknown, expired)
/// means an anonymous caller, exactly like the seed's `optional_session`. Store faults are
/// still errors: hiding them would silently log everyone out.
pub fn optional_session(req: &Request) -> Result<Option<Session>, AppError> {
    let Some(token) = token(req, &session_header()?) else {
        return Ok(None);
    };
    match sessions::validate(&token) {
        Ok(session) => Ok(Some(session)),
        Err(err) => match AppError::from(err) {
            AppError::Unauthorized { .. } | AppError::InvalidInput(_) => Ok(None),
            other => Err(other),
        },
    }
}

/// A valid session whose role is `role` (or `admin`, which satisfies every role); 401 without
/// a valid session, 403 with one that lacks the role.
pub fn user_with_role(req: &Request, role: &str) -> Result<Session, AppError> {
    authorize(req, &Requirement::Role(role.to_owned()))
}

/// The seed's `admin_user`.
pub fn admin_user(req: &Request) -> Result<Session, AppError> {
    user_with_role(req, "admin")
}

/// The seed's `developer_user`.
pub fn developer_user(req: &Request) -> Result<Session, AppError> {
    user_with_role(req, "developer")
}

/// The seed's `user_with_permission(permission)`: `metadata.permissions` must contain it
/// (or the role is `admin`).
pub fn user_with_permission(req: &Request, permission: &str) -> Result<Session, AppError> {
    authorize(req, &Requirement::Permission(permission.to_owned()))
}

fn authorize(req: &Request, requirement: &Requirement) -> Result<Session, AppError> {
    let token = required_token(req)?;
    Ok(sessions::authorize(&token, requirement)?)
}
