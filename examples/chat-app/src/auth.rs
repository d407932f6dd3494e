//! The seed's FastAPI dependencies as functions: `require_session`, `optional_session`,
//! `admin_user`, `developer_user` and `user_with_permission`, each one call into
//! `zoe:session/sessions`.

use crate::bindings::sessions::{self, Requirement, Session};
use crate::error::AppError;
use spin_sdk::http::Request;

/// The header that carries the token, as in the seed (`SESSION_HEADER=X-Session-ID`).
pub const SESSION_HEADER: &str = "X-Session-ID";

/// The token from the session header, if any. Blank values count as absent.
pub fn token(req: &Request) -> Option<String> {
    req.header(&SESSION_HEADER.to_ascii_lowercase())
        .and_then(|value| value.as_str())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// A valid session, or 401. Validation counts as activity when `auto_update` is on.
pub fn require_session(req: &Request) -> Result<(Session, String), AppError> {
    let token = token(req).ok_or_else(|| AppError::missing_session(SESSION_HEADER))?;
    let session = sessions::validate(&token)?;
    Ok((session, token))
}

/// The session if the request carries a valid one; anything else (none, unknown, expired)
/// means an anonymous caller, exactly like the seed's `optional_session`. Store faults are
/// still errors: hiding them would silently log everyone out.
pub fn optional_session(req: &Request) -> Result<Option<Session>, AppError> {
    let Some(token) = token(req) else {
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
    let token = token(req).ok_or_else(|| AppError::missing_session(SESSION_HEADER))?;
    Ok(sessions::authorize(&token, requirement)?)
}
