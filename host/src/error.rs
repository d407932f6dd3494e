//! The errors of the embedding API: [`HostError`] for every host call, [`ServeError`] for a
//! server that cannot start. Both sit below the API and the server, so that each of those can
//! name them without naming the other.

use crate::bindings::exports::zoe::session::sessions::Error as SessionError;
use crate::config::ConfigError;
use crate::sqlite::OpenError;
use std::net::SocketAddr;

/// Why a host call failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component answered with an error value (bad token, expired, bad input, …).
    #[error("{}", describe(.0))]
    Session(SessionError),
    /// The database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A host setting has a value the host cannot use.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `serve` could not start: the address is taken or not ours, or the component does not
    /// serve HTTP.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The generated admin key file could not be read or written.
    #[error("admin key file {}: {source}", path.display())]
    AdminKeyFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Wasmtime failed or the guest trapped: a bug, not bad input.
    #[error("component runtime failure: {0:#}")]
    Runtime(anyhow::Error),
}

impl HostError {
    /// The component's error value, if that is what this is.
    pub fn session(&self) -> Option<&SessionError> {
        match self {
            Self::Session(err) => Some(err),
            _ => None,
        }
    }
}

/// A sentence describing a session error, for people (the generated `Display` is terse).
pub fn describe(err: &SessionError) -> String {
    match err {
        SessionError::NotFound => "session not found".to_owned(),
        SessionError::Expired => "session expired".to_owned(),
        SessionError::InvalidToken => "invalid session token".to_owned(),
        SessionError::InvalidInput(detail) => format!("invalid input: {detail}"),
        SessionError::Forbidden(detail) => format!("forbidden: {detail}"),
        SessionError::LimitReached => "session limit reached for this user".to_owned(),
        SessionError::Storage(detail) => format!("storage failure: {detail}"),
        SessionError::Config(detail) => format!("configuration error: {detail}"),
    }
}

impl From<wasmtime::Error> for HostError {
    fn from(err: wasmtime::Error) -> Self {
        Self::Runtime(err.into())
    }
}

impl From<anyhow::Error> for HostError {
    fn from(err: anyhow::Error) -> Self {
        Self::Runtime(err)
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "the component exports neither wasi:http/incoming-handler@0.2.x nor \
         wasi:http/handler@0.3.0: {0:#}"
    )]
    NotAnHttpComponent(anyhow::Error),
    #[error(
        "--count-host-calls counts the calls of one request per instance, which a WASIp3 \
         component (many requests at once in one instance) does not have"
    )]
    CountingUnsupported,
}
