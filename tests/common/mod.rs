//! Shared set-up for the tests that drive the component through the typed API: hosts over
//! fresh databases with a manual clock, on the component compiled once per test binary
//! ([`zoe_test_support::runtime`]).

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of this module"
)]

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

/// A host over a fresh in-memory database with default settings.
pub async fn host() -> SessionHost {
    host_with(&[]).await
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
