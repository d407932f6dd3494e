//! The app's error responses: JSON `{"error": "<kind>", "detail": "<sentence>"}`, the same
//! shape and kinds as the zoe-session HTTP API, so clients handle both alike.

use crate::bindings::sessions::Error as SessionError;
use spin_sdk::http::Response;

/// Why a request was refused.
#[derive(Debug)]
pub enum AppError {
    /// 401: no session, or one that is unknown, malformed or expired.
    Unauthorized { kind: &'static str, detail: String },
    /// 403: a valid session without the role or permission the route requires.
    Forbidden(String),
    /// 404: no such route.
    NotFound,
    /// 405: the route exists for other methods.
    MethodNotAllowed(&'static str),
    /// 409: the user holds the maximum number of sessions and the policy is `reject`.
    LimitReached,
    /// 422: the body or an argument is unusable.
    InvalidInput(String),
    /// 500: a fault; the text goes to the log, never to the client.
    Internal(String),
}

impl AppError {
    /// A 401 for a request that carries no session at all.
    pub fn missing_session(header: &str) -> Self {
        Self::Unauthorized {
            kind: "unauthorized",
            detail: format!("a session is required: send its token in the {header} header"),
        }
    }

    fn status(&self) -> u16 {
        match self {
            Self::Unauthorized { .. } => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::LimitReached => 409,
            Self::InvalidInput(_) => 422,
            Self::Internal(_) => 500,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized { kind, .. } => kind,
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::LimitReached => "limit_reached",
            Self::InvalidInput(_) => "invalid_input",
            Self::Internal(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Unauthorized { detail, .. } | Self::Forbidden(detail) => detail.clone(),
            Self::NotFound => "no such route".to_owned(),
            Self::MethodNotAllowed(allow) => format!("this route accepts {allow}"),
            Self::LimitReached => {
                "this user already holds the maximum number of sessions".to_owned()
            }
            Self::InvalidInput(detail) => detail.clone(),
            Self::Internal(_) => "the session store failed; see the server log".to_owned(),
        }
    }

    /// The response the client sees. Internal faults are logged here, once.
    pub fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            eprintln!(
                "{}",
                serde_json::json!({"level": "ERROR", "message": "session store failure", "cause": cause})
            );
        }
        let mut builder = Response::builder();
        builder
            .status(self.status())
            .header("content-type", "application/json");
        if let Self::MethodNotAllowed(allow) = &self {
            builder.header("allow", *allow);
        }
        builder
            .body(serde_json::json!({"error": self.kind(), "detail": self.detail()}).to_string())
            .build()
    }
}

impl From<SessionError> for AppError {
    fn from(err: SessionError) -> Self {
        match err {
            // For an app, a session that does not exist is a missing credential, not a 404.
            SessionError::NotFound | SessionError::InvalidToken => Self::Unauthorized {
                kind: "invalid_token",
                detail: "the session token is not valid (unknown, malformed or rotated)".to_owned(),
            },
            SessionError::Expired => Self::Unauthorized {
                kind: "session_expired",
                detail: "the session has expired".to_owned(),
            },
            SessionError::Forbidden(detail) => Self::Forbidden(detail),
            SessionError::InvalidInput(detail) => Self::InvalidInput(detail),
            SessionError::LimitReached => Self::LimitReached,
            SessionError::Storage(cause) => Self::Internal(format!("storage: {cause}")),
            SessionError::Config(cause) => Self::Internal(format!("config: {cause}")),
        }
    }
}
