//! Shared set-up for the integration tests: one compiled component per test binary, and hosts
//! over fresh databases with a manual clock.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::sync::OnceLock;
use std::time::Duration;
use zoe_session_host::{
    Allocation, Clock, HostConfig, HostError, Location, Runtime, SessionError, SessionHost,
};

/// 2027-01-15T08:00:00Z: a fixed start so tests never depend on the real date.
pub const START_MS: u64 = 1_800_000_000_000;

pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);

/// The embedded component, compiled once for the whole test binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(Allocation::OnDemand).expect("component compiles"))
}

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

/// A host config over a database file in `dir`.
pub fn file_config(dir: &tempfile::TempDir) -> HostConfig {
    HostConfig {
        database: Location::File(dir.path().join("sessions.db")),
        ..HostConfig::in_memory()
    }
}

/// The component's error value from a failed call; panics with context on anything else.
#[track_caller]
pub fn session_error<T: std::fmt::Debug>(result: Result<T, HostError>) -> SessionError {
    match result {
        Err(HostError::Session(err)) => err,
        other => panic!("expected a session error value, got {other:?}"),
    }
}
