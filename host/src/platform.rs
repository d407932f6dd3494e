//! The platform the host imitates: what a Spin app is granted there and how long and how large
//! a request may run (`serve --platform`).
//!
//! A platform is the manifest the component is deployed with plus the limits of the place it
//! runs: `spin up` with the repository's `spin.toml` grants the `default` SQLite database; Akamai
//! Functions grants no SQLite database at all (the platform has none) and runs every request in
//! a fresh instance of at most 128 MiB for at most 30 s. Running the component here under the
//! same grants and limits is how this repository tests a deployment it cannot reach
//! (docs/deploy-akamai.md).

use std::time::Duration;

/// Where the component runs, as far as grants and limits go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// `spin up` with `spin.toml` (and `serve`'s own limits): the `default` SQLite database
    /// and every defined key-value store granted.
    #[default]
    Spin,
    /// Akamai Functions with `deploy/akamai/spin.toml`: no SQLite database, the `default`
    /// key-value store, 128 MiB per instance, 30 s per request, a fresh instance per request.
    Akamai,
}

/// Akamai Functions' memory limit per function execution.
pub const AKAMAI_MEMORY_BYTES: usize = 128 << 20;

/// Akamai Functions' limit on a request handler's duration.
pub const AKAMAI_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The one key-value store the Akamai manifest grants.
pub const AKAMAI_KEY_VALUE_STORE: &str = "default";

impl Platform {
    /// Whether the component is granted Spin's `default` SQLite database. Where it is not,
    /// every `open` is refused with `access-denied`, as Spin refuses a database the manifest
    /// does not list.
    pub fn grants_sqlite(self) -> bool {
        match self {
            Self::Spin => true,
            Self::Akamai => false,
        }
    }

    /// The key-value stores the component is granted: `None` for every store the host
    /// defines (this host's behaviour under `spin up`).
    pub fn key_value_grants(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Spin => None,
            Self::Akamai => Some(&[AKAMAI_KEY_VALUE_STORE]),
        }
    }

    /// The most linear memory one instance may have; `None`: the host's own pooling limit.
    pub fn max_memory_bytes(self) -> Option<usize> {
        match self {
            Self::Spin => None,
            Self::Akamai => Some(AKAMAI_MEMORY_BYTES),
        }
    }

    /// The platform's request deadline; `None`: the operator's `--request-timeout`.
    pub fn request_timeout(self) -> Option<Duration> {
        match self {
            Self::Spin => None,
            Self::Akamai => Some(AKAMAI_REQUEST_TIMEOUT),
        }
    }

    /// Requests one instance serves; `None`: the operator's choice. Akamai Functions gives
    /// every request a fresh instance (it announces reuse only for later WASIp3 releases).
    pub fn requests_per_instance(self) -> Option<u32> {
        match self {
            Self::Spin => None,
            Self::Akamai => Some(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn akamai_grants_no_sqlite_and_only_the_default_store_within_its_limits() {
        let akamai = Platform::Akamai;
        assert!(!akamai.grants_sqlite());
        assert_eq!(akamai.key_value_grants(), Some(&["default"][..]));
        assert_eq!(akamai.max_memory_bytes(), Some(128 * 1024 * 1024));
        assert_eq!(akamai.request_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(akamai.requests_per_instance(), Some(1));
        // Positive control: under Spin the host's own choices stand.
        let spin = Platform::default();
        assert!(spin.grants_sqlite());
        assert_eq!(spin.key_value_grants(), None);
        assert_eq!(spin.max_memory_bytes(), None);
        assert_eq!(spin.request_timeout(), None);
        assert_eq!(spin.requests_per_instance(), None);
    }
}
