//! What the test modules share, defined once: hosts over fresh databases with a manual clock
//! on the component compiled once for the binary ([`zoe_test_support::runtime`]), fresh
//! PostgreSQL databases on the one server of the run, and the HTTP client with the `serve`
//! instances it talks to ([`http`]).

pub mod http;

use std::time::Duration;
use zoe_session_host::postgres::SpinCompat;
use zoe_session_host::{Clock, HostConfig, HostError, SessionError, SessionHost};
pub use zoe_test_support::{START_MS, file_config, runtime};

pub const MINUTE: Duration = Duration::from_secs(60);

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

/// A fresh database on the PostgreSQL server that the whole run shares, as a URL.
pub fn fresh_database() -> String {
    zoe_test_postgres::shared()
        .fresh_database()
        .expect("a fresh PostgreSQL database")
}

/// Host settings for the component on the PostgreSQL database at `url`, answering
/// `spin:postgres` as Spin 4.0.x does ([`SpinCompat::V4_0`]): a query that matches no rows,
/// which Spin 4.0.x never answers (spinframework/spin#3671), traps, so a test fails on any
/// statement the component sends without its envelope.
pub fn spin_4_0(config: &mut HostConfig, url: &str) {
    config.variables.set("database_url", url);
    config.spin_compat = SpinCompat::V4_0;
}
