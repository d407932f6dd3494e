//! The HTTP layer's one error type, and the one place where engine errors become statuses.
//!
//! Every error reaches the client as JSON `{"error": "<kind>", "detail": "<sentence>"}`.
//! Faults (storage, randomness) become a bare 500 whose detail says nothing about internals;
//! the cause goes to the log instead. An unreachable database is a 503 `storage_unavailable`
//! instead: a passing condition worth retrying.

use crate::config::ConfigError;
use crate::session::engine::EngineError;
use crate::store::StoreError;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read one way only (a credential sent twice).
    #[error("{detail}")]
    BadRequest { kind: &'static str, detail: String },
    /// 401: no credentials, or credentials that do not hold.
    #[error("{detail}")]
    Unauthorized { kind: &'static str, detail: String },
    /// 403: authenticated but not allowed (role, other user's session, HTTPS, CSRF).
    #[error("{detail}")]
    Forbidden { kind: &'static str, detail: String },
    /// 404: no such session or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not; carries the methods that do.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<&'static str>),
    /// 409: the user holds the maximum number of sessions and the policy is `reject`.
    #[error("session limit reached for this user")]
    LimitReached,
    /// 413: the body is larger than the cap.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// 415: a body that is not JSON.
    #[error("request bodies must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 422: the input breaks a rule; the text names the field and the rule.
    #[error("{0}")]
    InvalidInput(String),
    /// 503: a privileged endpoint while no admin key is configured.
    #[error("no admin key is configured")]
    AdminKeyMissing,
    /// 503 `storage_unavailable`: the database cannot be reached; the text is for the log only.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// 500 `config`: a setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// 500 `internal`: a fault; the text is for the log only.
    #[error("{0}")]
    Internal(String),
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::NotFound => Self::NotFound("session not found".to_owned()),
            EngineError::Expired => Self::Unauthorized {
                kind: "session_expired",
                detail: "the session has expired".to_owned(),
            },
            EngineError::InvalidToken => Self::Unauthorized {
                kind: "invalid_token",
                detail: "the session token is not valid (malformed, tampered or rotated)"
                    .to_owned(),
            },
            EngineError::InvalidInput(text) => Self::InvalidInput(text),
            EngineError::Forbidden(text) => Self::Forbidden {
                kind: "forbidden",
                detail: text,
            },
            EngineError::LimitReached => Self::LimitReached,
            EngineError::Config(err) => Self::Config(err),
            EngineError::Storage(err @ StoreError::Unavailable(_)) => {
                Self::StorageUnavailable(err.to_string())
            }
            EngineError::Storage(err) => Self::Internal(err.to_string()),
            EngineError::Random(err) => Self::Internal(err.to_string()),
        }
    }
}

impl ApiError {
    /// A 401 for a missing or unusable credential.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::Unauthorized {
            kind: "unauthorized",
            detail: detail.into(),
        }
    }

    /// A 400 for a credential sent more than once: a proxy in front may have read the other
    /// copy, so neither is trusted.
    pub fn ambiguous(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            kind: "ambiguous_credentials",
            detail: detail.into(),
        }
    }

    /// A 403 with a kind.
    pub fn forbidden(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            kind,
            detail: detail.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::LimitReached => 409,
            Self::TooLarge(_) => 413,
            Self::UnsupportedMediaType => 415,
            Self::InvalidInput(_) => 422,
            Self::Config(_) | Self::Internal(_) => 500,
            Self::AdminKeyMissing | Self::StorageUnavailable(_) => 503,
        }
    }

    /// The machine-readable `error` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest { kind, .. }
            | Self::Unauthorized { kind, .. }
            | Self::Forbidden { kind, .. } => kind,
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::LimitReached => "limit_reached",
            Self::TooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidInput(_) => "invalid_input",
            Self::AdminKeyMissing => "admin_key_not_configured",
            Self::StorageUnavailable(_) => "storage_unavailable",
            Self::Config(_) => "config",
            Self::Internal(_) => "internal",
        }
    }

    /// The human sentence for the client; never internal detail for faults.
    pub fn detail(&self) -> String {
        match self {
            Self::MethodNotAllowed(allow) => {
                format!("this path accepts {}", allow.join(", "))
            }
            Self::AdminKeyMissing => "this endpoint needs the admin key, and none is configured: \
                 set the Spin variable `admin_key` (SPIN_VARIABLE_ADMIN_KEY, or `spin up \
                 --variable admin_key=...`) or SESSION_ADMIN_KEY for the native host"
                .to_owned(),
            Self::Config(err) => format!(
                "the service is misconfigured (setting `{}`); see the server log",
                err.name
            ),
            Self::Internal(_) => "internal error; see the server log".to_owned(),
            Self::StorageUnavailable(_) => {
                "the session store is unreachable right now; retry shortly".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The JSON body and any headers the status requires.
    pub fn into_reply(self) -> super::Reply {
        let mut reply = super::Reply::json_text(
            self.status(),
            zoe_session_wire::error_body(self.kind(), &self.detail()),
        );
        match &self {
            Self::MethodNotAllowed(allow) => reply.set_header("allow", allow.join(", ")),
            Self::Unauthorized { .. } => reply.set_header("www-authenticate", "Bearer"),
            Self::StorageUnavailable(_) => reply.set_header("retry-after", "1"),
            _ => {}
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_faults_become_a_500_without_internal_detail() {
        let err = ApiError::from(EngineError::Storage(StoreError::Sqlite(
            "disk I/O error at /secret/path".into(),
        )));
        assert_eq!(err.status(), 500);
        assert!(!err.detail().contains("/secret/path"));
    }

    #[test]
    fn an_unreachable_store_is_a_503_without_internal_detail() {
        let reply = ApiError::from(EngineError::Storage(StoreError::Unavailable(
            "connection refused to db.internal:5432".into(),
        )))
        .into_reply();
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("1"));
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"], "storage_unavailable");
        assert!(!body["detail"].as_str().unwrap().contains("db.internal"));
        // Any other storage fault stays a 500.
        let other = ApiError::from(EngineError::Storage(StoreError::Postgres("x".into())));
        assert_eq!(other.status(), 500);
    }

    #[test]
    fn every_engine_error_has_the_designed_status() {
        let cases = [
            (EngineError::NotFound, 404),
            (EngineError::Expired, 401),
            (EngineError::InvalidToken, 401),
            (EngineError::InvalidInput("x".into()), 422),
            (EngineError::Forbidden("x".into()), 403),
            (EngineError::LimitReached, 409),
        ];
        for (err, status) in cases {
            assert_eq!(ApiError::from(err).status(), status);
        }
    }

    #[test]
    fn method_not_allowed_lists_the_allowed_methods() {
        let reply = ApiError::MethodNotAllowed(vec!["GET", "DELETE"]).into_reply();
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("allow"), Some("GET, DELETE"));
    }
}
