//! How the pool behind `database_url` behaves.

use std::time::Duration;

/// How the pool behind `database_url` behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most server connections open at once (Spin uses 64 per address). Each guest handle
    /// holds one from `open` to drop.
    pub max_connections: usize,
    /// How long connecting (TCP, start-up, authentication) may take before `open` fails with
    /// `connection-failed`.
    pub connect_timeout: Duration,
    /// How long `open` waits for a connection when all are in use.
    pub wait_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 32,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
        }
    }
}
