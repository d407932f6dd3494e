//! The one database the component may open: the configured URL, checked byte for byte, and
//! the deadpool pool behind it.

use super::compat::SpinCompat;
use super::errors::PgError;
use super::handle::Connection;
use super::options::PoolOptions;
use super::transactions::Transaction;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use std::path::Path;
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;
use zoe_postgres_tls::SslMode;

/// The one PostgreSQL database this host lets the component open, with its pool.
///
/// Creating it connects to nothing, so a host starts while PostgreSQL is down; the first
/// `open` connects.
pub struct Postgres {
    allowed: Option<Allowed>,
    compat: SpinCompat,
    /// The PEM text of the configured root certificates, whitespace removed, for
    /// `connection-builder.set-ca-root` (see [`Postgres::trusts_root`]).
    roots: Option<String>,
}

struct Allowed {
    url: String,
    /// `postgres://HOST:PORT`, for messages: the URL without user, password or database.
    shown: String,
    pool: Result<Pool, String>,
    options: PoolOptions,
}

impl Default for Postgres {
    /// No URL: every `open` is refused, as Spin refuses a host not in `allowed_outbound_hosts`.
    fn default() -> Self {
        Self {
            allowed: None,
            compat: SpinCompat::Current,
            roots: None,
        }
    }
}

// The URL carries the password, so only the host and port are shown.
impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.allowed {
            None => f.write_str("Postgres(none)"),
            Some(allowed) => write!(f, "Postgres({})", allowed.shown),
        }
    }
}

impl Postgres {
    /// Allows `open` of exactly `url` (when it is `Some` and not empty) through a pool with
    /// `options`. A URL that is not a valid PostgreSQL connection string is accepted here and
    /// reported by every `open` (see [`Postgres::config_error`]), so start-up never fails.
    pub fn new(url: Option<&str>, options: PoolOptions) -> Self {
        Self::with_root_cert(url, options, None)
    }

    /// Like [`Postgres::new`], trusting the root certificates in the PEM file `root_cert`
    /// besides the system's when the URL's `sslmode` verifies the server's certificate
    /// (`verify-ca`, `verify-full`; see [`zoe_postgres_tls`] for every mode). A root
    /// certificate that cannot be read is reported like a bad URL, by every `open`.
    pub fn with_root_cert(
        url: Option<&str>,
        options: PoolOptions,
        root_cert: Option<&Path>,
    ) -> Self {
        let Some(url) = url.filter(|url| !url.is_empty()) else {
            return Self::default();
        };
        let pool = zoe_postgres_tls::parse(url)
            .map_err(|err| format!("database_url: {err}"))
            .and_then(|(config, mode)| build_pool(config, mode, root_cert, options));
        Self {
            allowed: Some(Allowed {
                url: url.to_owned(),
                shown: describe(url).unwrap_or_else(|_| "database_url".to_owned()),
                pool,
                options,
            }),
            compat: SpinCompat::Current,
            // Unreadable, it trusts nothing more; every `open` reports why (see above).
            roots: root_cert
                .and_then(|path| std::fs::read_to_string(path).ok())
                .map(|pem| without_whitespace(&pem)),
        }
    }

    /// Whether `certificate` (PEM) is among the configured root certificates, which every
    /// verifying connection trusts already. A guest cannot add a root: which servers to trust
    /// is the operator's choice.
    pub(super) fn trusts_root(&self, certificate: &str) -> bool {
        let wanted = without_whitespace(certificate);
        !wanted.is_empty()
            && self
                .roots
                .as_ref()
                .is_some_and(|roots| roots.contains(&wanted))
    }

    /// Answers as `compat` says (see [`SpinCompat`]); a builder-style helper.
    #[must_use]
    pub fn with_compat(mut self, compat: SpinCompat) -> Self {
        self.compat = compat;
        self
    }

    /// Why the configured URL cannot be used, if it cannot (never the URL itself).
    pub fn config_error(&self) -> Option<&str> {
        self.allowed
            .as_ref()
            .and_then(|allowed| allowed.pool.as_ref().err())
            .map(String::as_str)
    }

    /// Connections currently open to the server, idle or lent (for tests and stats).
    pub fn open_connections(&self) -> usize {
        match &self.allowed {
            Some(Allowed { pool: Ok(pool), .. }) => pool.status().size,
            _ => 0,
        }
    }

    /// A guest `open`: checks `address` against the configured URL, then lends a pooled
    /// connection.
    pub(super) async fn open(&self, address: &str) -> Result<Connection, PgError> {
        let allowed = self
            .allowed
            .as_ref()
            .filter(|allowed| allowed.url == address)
            .ok_or_else(|| match describe(address) {
                Ok(shown) => PgError::NotPermitted(shown),
                Err(err) => err,
            })?;
        let pool = allowed
            .pool
            .as_ref()
            .map_err(|reason| PgError::Config(reason.clone()))?;
        let client = checkout(pool, &allowed.shown, allowed.options).await?;
        Ok(Connection {
            client: Some(client),
            pool: pool.clone(),
            shown: allowed.shown.clone(),
            options: allowed.options,
            transaction: Transaction::None,
            compat: self.compat,
        })
    }
}

fn without_whitespace(text: &str) -> String {
    text.split_whitespace().collect()
}

fn build_pool(
    mut config: tokio_postgres::Config,
    mode: SslMode,
    root_cert: Option<&Path>,
    options: PoolOptions,
) -> Result<Pool, String> {
    config.connect_timeout(options.connect_timeout);
    // A server that vanishes without closing the socket (a network partition) is noticed in
    // about a minute instead of the kernel's two hours.
    config.keepalives_idle(Duration::from_secs(30));
    let manager_config = ManagerConfig {
        // Checking out a connection costs no round trip; a connection the server closed
        // (restart, crash) is seen as closed and replaced.
        recycling_method: RecyclingMethod::Fast,
    };
    // As Spin: TLS for every sslmode but `disable`.
    let manager = if mode == SslMode::Disable {
        Manager::from_config(config, NoTls, manager_config)
    } else {
        let tls = zoe_postgres_tls::connector(mode, root_cert).map_err(|err| err.to_string())?;
        Manager::from_config(config, tls, manager_config)
    };
    Pool::builder(manager)
        .max_size(options.max_connections)
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|err| format!("cannot build the PostgreSQL pool: {err}"))
}

pub(super) async fn checkout(
    pool: &Pool,
    shown: &str,
    options: PoolOptions,
) -> Result<Object, PgError> {
    pool.get().await.map_err(|err| match err {
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            PgError::PoolFull(options.wait_timeout)
        }
        PoolError::Timeout(_) => PgError::ConnectTimeout {
            shown: shown.to_owned(),
            after: options.connect_timeout,
        },
        PoolError::Backend(source) => PgError::Connect {
            shown: shown.to_owned(),
            source,
        },
        other => PgError::Pool(other.to_string()),
    })
}

/// `postgres://HOST:PORT` of an address, as Spin names it when refusing one: the first host
/// and its port, without user, password or database.
pub(super) fn describe(address: &str) -> Result<String, PgError> {
    let (config, _) = zoe_postgres_tls::parse(address).map_err(|_| PgError::InvalidAddress)?;
    let ports = config.get_ports();
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => {
            let port = ports.first().map(|p| format!(":{p}")).unwrap_or_default();
            Ok(format!("postgres://{host}{port}"))
        }
        #[cfg(unix)]
        Some(Host::Unix(_)) => Err(PgError::UnixSocket),
        None => Err(PgError::InvalidAddress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_addresses_are_named_by_host_and_port_only() {
        let shown = describe("postgres://app:hunter2@db.internal:6543/sessions").unwrap();
        assert_eq!(shown, "postgres://db.internal:6543");
        assert_eq!(
            describe("host=db.internal user=app password=hunter2").unwrap(),
            "postgres://db.internal"
        );
        assert!(matches!(
            describe("host=/run/postgresql"),
            Err(PgError::UnixSocket)
        ));
        assert!(matches!(
            describe("postgres://app:hunter2@[::1"),
            Err(PgError::InvalidAddress)
        ));
    }

    #[test]
    fn a_host_without_a_url_and_its_debug_reveal_no_password() {
        let postgres = Postgres::new(
            Some("postgres://app:hunter2@db.internal:6543/sessions"),
            PoolOptions::default(),
        );
        let shown = format!("{postgres:?}");
        assert_eq!(shown, "Postgres(postgres://db.internal:6543)");
        assert_eq!(postgres.config_error(), None);
        let bad = Postgres::new(
            Some("postgres://app:hunter2@host:notaport/db"),
            PoolOptions::default(),
        );
        let reason = bad.config_error().unwrap();
        assert!(!reason.contains("hunter2"), "{reason}");
        assert_eq!(format!("{:?}", Postgres::default()), "Postgres(none)");
    }
}
