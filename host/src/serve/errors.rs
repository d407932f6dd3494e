//! Why a request got no answer from its guest, and the answer the host gives instead.

use super::log::log_line;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use std::time::Duration;
use wasmtime::{PoolConcurrencyLimitError, Trap};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Why a request got no answer from the guest. Each maps once, in [`RequestError::response`],
/// to a status and a JSON body, so none of them can come out as a 500 by accident.
#[derive(Debug, thiserror::Error)]
pub(super) enum RequestError {
    #[error("the request line or headers cannot be presented to the guest: {0}")]
    BadRequest(&'static str),
    #[error("the request body did not arrive within {0:?}")]
    BodyTimedOut(Duration),
    #[error("the request body could not be read: {0}")]
    BodyUnreadable(hyper::Error),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("no instance is free: {0:#}")]
    NoInstance(wasmtime::Error),
    #[error("the guest did not answer within its deadline")]
    Overran,
    #[error("the guest failed: {0:#}")]
    Guest(anyhow::Error),
}

impl RequestError {
    /// Sorts out what a guest task ended with: an epoch interrupt is an overrun and a full
    /// pool is a busy server, both 503; anything else is a fault (500).
    pub(super) fn from_guest(err: wasmtime::Error) -> Self {
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            Self::Overran
        } else if err.is::<PoolConcurrencyLimitError>() {
            Self::NoInstance(err)
        } else {
            Self::Guest(anyhow::Error::from(err).context("the guest trapped"))
        }
    }

    pub(super) fn response(&self) -> Response<HyperOutgoingBody> {
        match self {
            // The client's doing, like hyper's own 408 for a slow head: not logged, so that a
            // flood of slow clients cannot flood the log either.
            Self::BadRequest(detail) => plain_error(StatusCode::BAD_REQUEST, "bad_request", detail),
            Self::BodyUnreadable(_) => plain_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request body could not be read",
            ),
            Self::BodyTimedOut(_) => {
                let mut response = plain_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the request body did not arrive in time",
                );
                // The rest of the body may still come; it must not be read as a request.
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                response
            }
            Self::ShuttingDown => plain_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ),
            Self::NoInstance(_) => {
                log_line("WARN", "no instance is free", &self.to_string());
                let mut response = plain_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the server has no free instance; retry later",
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            Self::Overran => {
                log_line("ERROR", "request timed out", &self.to_string());
                plain_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "the request took too long",
                )
            }
            Self::Guest(err) => {
                log_line("ERROR", "guest failed to answer", &format!("{err:#}"));
                plain_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

/// A JSON error made by the host itself, for when the guest could not answer.
pub(super) fn plain_error(
    status: StatusCode,
    kind: &str,
    detail: &str,
) -> Response<HyperOutgoingBody> {
    let body = zoe_session_wire::error_body(kind, detail);
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
