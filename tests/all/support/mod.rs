//! What the test modules share, defined once: hosts over fresh databases with a manual clock
//! on the component compiled once for the binary ([`zoe_test_support::runtime`]), fresh
//! PostgreSQL databases on the one server of the run, and the HTTP client with the `serve`
//! instances it talks to ([`http`]).

pub mod http;

use std::time::Duration;
use zoe_session_host::{Clock, HostConfig, HostError, SessionError, SessionHost};
pub use zoe_test_support::{START_MS, file_config, runtime};

pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);

/// A host over a fresh in-memory database, the given variables, and a manual clock.
pub async fn host_with(variables: &[(&str, &str)]) -> SessionHost {
    let mut config = HostConfig::in_memory();
    for (name, value) in variables {
        config.variables.set(*name, *value);
    }
    open(config).await
}

/// A host over `config` with a manual clock at [`START_MS`].
pub async fn open(config: HostConfig) -> SessionHost {
    SessionHost::open_with_clock(runtime(), config, Clock::manual(START_MS))
        .await
        .expect("host opens")
}

/// The component's error value from a failed call; panics with context on anything else.
#[track_caller]
pub fn session_error<T: std::fmt::Debug>(result: Result<T, HostError>) -> SessionError {
    match result {
        Err(HostError::Session(err)) => err,
        other => panic!("expected a session error value, got {other:?}"),
    }
}
