//! Configuration: every setting of DESIGN.md's table, parsed and validated in one place.
//!
//! The component's only configuration source is Spin variables; [`Config::from_lookup`] takes
//! the lookup as a function so that parsing stays pure and testable. A missing variable takes
//! its default; a present but bad one is an error that names the variable and the rule.

use std::fmt;
use std::net::IpAddr;

/// What happens when a user who already holds `max_per_user` sessions creates another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitPolicy {
    /// Delete the user's least recently active session to make room.
    EvictOldest,
    /// Refuse the new session.
    Reject,
}

/// Log verbosity, from `log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// The peers trusted to report the original scheme of a request: a comma-separated list of
/// IP addresses and CIDR blocks (`10.0.0.0/8`, `::1`), or `*` for every peer (only right
/// when the service cannot be reached except through the proxy, as uvicorn's
/// `--forwarded-allow-ips='*'`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    any: bool,
    blocks: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses the setting's value.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for `trusted_proxies` naming the entry that is not an address, a
    /// CIDR block or `*`.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let mut proxies = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                proxies.any = true;
                continue;
            }
            let bad = || {
                rule(
                    "trusted_proxies",
                    format!("must list IP addresses, CIDR blocks or `*`, got {entry:?}"),
                )
            };
            let (addr, bits) = match entry.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (entry, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(bad)?,
            };
            proxies.blocks.push((addr, bits));
        }
        Ok(proxies)
    }

    /// Whether the peer at `addr` is trusted. An IPv4-mapped IPv6 peer counts as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        if self.any {
            return true;
        }
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        self.blocks
            .iter()
            .any(|&(block, bits)| match (block, addr) {
                (IpAddr::V4(block), IpAddr::V4(addr)) => {
                    prefix_matches(&block.octets(), &addr.octets(), bits)
                }
                (IpAddr::V6(block), IpAddr::V6(addr)) => {
                    prefix_matches(&block.octets(), &addr.octets(), bits)
                }
                _ => false,
            })
    }

    /// Whether no peer is trusted.
    pub fn is_empty(&self) -> bool {
        !self.any && self.blocks.is_empty()
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn prefix_matches(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// Where sessions are stored, from `database_url`.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// Empty `database_url`: the host's SQLite (`spin:sqlite`, database `default`).
    Sqlite,
    /// A `postgres://` or `postgresql://` URL, through `spin:postgres`.
    Postgres(String),
}

// The URL may carry a password: show only the backend.
impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite => f.write_str("Sqlite"),
            Self::Postgres(_) => f.write_str("Postgres(<redacted>)"),
        }
    }
}

/// The validated configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub default_timeout: u32,
    pub max_timeout: u32,
    pub min_timeout: u32,
    pub absolute_lifetime: u32,
    pub cleanup_interval: u32,
    pub max_per_user: u32,
    pub limit_policy: LimitPolicy,
    pub require_https: bool,
    pub secure_cookies: bool,
    pub session_header: String,
    pub auto_update: bool,
    pub protected_paths: Vec<String>,
    pub excluded_paths: Vec<String>,
    pub log_level: LogLevel,
    pub log_requests: bool,
    /// `None` when no admin key is configured: privileged HTTP endpoints are then unavailable.
    pub admin_key: Option<String>,
    pub max_metadata_bytes: u32,
    /// Peers whose forwarding headers (`X-Forwarded-Proto`, `Forwarded`) are believed: the
    /// TLS-terminating proxies in front of the service. Empty: no one's.
    pub trusted_proxies: TrustedProxies,
    pub database: Database,
}

// The admin key must never reach a log, so Debug is written by hand.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("default_timeout", &self.default_timeout)
            .field("max_timeout", &self.max_timeout)
            .field("min_timeout", &self.min_timeout)
            .field("absolute_lifetime", &self.absolute_lifetime)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("max_per_user", &self.max_per_user)
            .field("limit_policy", &self.limit_policy)
            .field("require_https", &self.require_https)
            .field("secure_cookies", &self.secure_cookies)
            .field("session_header", &self.session_header)
            .field("auto_update", &self.auto_update)
            .field("protected_paths", &self.protected_paths)
            .field("excluded_paths", &self.excluded_paths)
            .field("log_level", &self.log_level)
            .field("log_requests", &self.log_requests)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<redacted>"))
            .field("max_metadata_bytes", &self.max_metadata_bytes)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("database", &self.database)
            .finish()
    }
}

/// A setting that is present but unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{name}`: {rule}")]
pub struct ConfigError {
    /// The Spin variable name.
    pub name: &'static str,
    /// What the value must be.
    pub rule: String,
}

/// Every variable the component reads, in the order of DESIGN.md's table.
pub const VARIABLE_NAMES: &[&str] = &[
    "default_timeout",
    "max_timeout",
    "min_timeout",
    "absolute_lifetime",
    "cleanup_interval",
    "max_per_user",
    "limit_policy",
    "require_https",
    "secure_cookies",
    "session_header",
    "auto_update",
    "protected_paths",
    "excluded_paths",
    "log_level",
    "log_requests",
    "admin_key",
    "max_metadata_bytes",
    "trusted_proxies",
    "database_url",
];

/// Largest idle timeout or lifetime accepted: ten years keeps every expiry computation far
/// from overflow.
const MAX_SECONDS: u32 = 10 * 366 * 24 * 3600;

impl Default for Config {
    fn default() -> Self {
        Self {
            default_timeout: 3600,
            max_timeout: 86400,
            min_timeout: 300,
            absolute_lifetime: 604_800,
            cleanup_interval: 300,
            max_per_user: 10,
            limit_policy: LimitPolicy::EvictOldest,
            require_https: false,
            secure_cookies: false,
            session_header: "X-Session-ID".to_owned(),
            auto_update: true,
            protected_paths: split_paths("/api/chat,/developer,/tasks"),
            excluded_paths: split_paths("/docs,/health,/sessions/create"),
            log_level: LogLevel::Info,
            log_requests: true,
            admin_key: None,
            max_metadata_bytes: 16384,
            trusted_proxies: TrustedProxies::default(),
            database: Database::Sqlite,
        }
    }
}

impl Config {
    /// Builds the configuration from `lookup`, which returns a variable's value or `None` when
    /// it is not set. Empty values count as not set, so `SPIN_VARIABLE_X=` means "default".
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad variable: not a number, out of range, an unknown
    /// policy or level, or `min_timeout <= default_timeout <= max_timeout` violated.
    pub fn from_lookup(
        mut lookup: impl FnMut(&'static str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let mut get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());

        let config = Self {
            default_timeout: seconds(
                "default_timeout",
                get("default_timeout"),
                defaults.default_timeout,
            )?,
            max_timeout: seconds("max_timeout", get("max_timeout"), defaults.max_timeout)?,
            min_timeout: seconds("min_timeout", get("min_timeout"), defaults.min_timeout)?,
            absolute_lifetime: seconds(
                "absolute_lifetime",
                get("absolute_lifetime"),
                defaults.absolute_lifetime,
            )?,
            cleanup_interval: seconds(
                "cleanup_interval",
                get("cleanup_interval"),
                defaults.cleanup_interval,
            )?,
            max_per_user: number(
                "max_per_user",
                get("max_per_user"),
                defaults.max_per_user,
                1..=100_000,
            )?,
            limit_policy: match get("limit_policy") {
                None => defaults.limit_policy,
                Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                    "evict_oldest" => LimitPolicy::EvictOldest,
                    "reject" => LimitPolicy::Reject,
                    _ => return Err(rule("limit_policy", "must be `evict_oldest` or `reject`")),
                },
            },
            require_https: boolean(
                "require_https",
                get("require_https"),
                defaults.require_https,
            )?,
            secure_cookies: boolean(
                "secure_cookies",
                get("secure_cookies"),
                defaults.secure_cookies,
            )?,
            session_header: match get("session_header") {
                None => defaults.session_header,
                Some(v) => header_name(v.trim())?,
            },
            auto_update: boolean("auto_update", get("auto_update"), defaults.auto_update)?,
            protected_paths: get("protected_paths").map_or(Ok(defaults.protected_paths), |v| {
                paths("protected_paths", &v)
            })?,
            excluded_paths: get("excluded_paths")
                .map_or(Ok(defaults.excluded_paths), |v| paths("excluded_paths", &v))?,
            log_level: match get("log_level") {
                None => defaults.log_level,
                Some(v) => match v.trim().to_ascii_uppercase().as_str() {
                    "DEBUG" => LogLevel::Debug,
                    "INFO" => LogLevel::Info,
                    "WARN" | "WARNING" => LogLevel::Warn,
                    "ERROR" | "CRITICAL" => LogLevel::Error,
                    _ => return Err(rule("log_level", "must be DEBUG, INFO, WARNING or ERROR")),
                },
            },
            log_requests: boolean("log_requests", get("log_requests"), defaults.log_requests)?,
            admin_key: match get("admin_key") {
                None => None,
                Some(key) if key.len() < 16 => {
                    return Err(rule("admin_key", "must be at least 16 characters"));
                }
                Some(key) => Some(key),
            },
            max_metadata_bytes: number(
                "max_metadata_bytes",
                get("max_metadata_bytes"),
                defaults.max_metadata_bytes,
                2..=1_048_576,
            )?,
            trusted_proxies: match get("trusted_proxies") {
                None => defaults.trusted_proxies,
                Some(v) => TrustedProxies::parse(&v)?,
            },
            database: get("database_url").map_or(Ok(Database::Sqlite), |v| database(&v))?,
        };
        config.check_relations()?;
        Ok(config)
    }

    fn check_relations(&self) -> Result<(), ConfigError> {
        if self.min_timeout > self.max_timeout {
            return Err(rule(
                "min_timeout",
                format!(
                    "must not exceed max_timeout ({} > {})",
                    self.min_timeout, self.max_timeout
                ),
            ));
        }
        if !(self.min_timeout..=self.max_timeout).contains(&self.default_timeout) {
            return Err(rule(
                "default_timeout",
                format!(
                    "must lie within [min_timeout, max_timeout] = [{}, {}]",
                    self.min_timeout, self.max_timeout
                ),
            ));
        }
        Ok(())
    }
}

fn rule(name: &'static str, rule: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        rule: rule.into(),
    }
}

fn number(
    name: &'static str,
    value: Option<String>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let message = || {
        format!(
            "must be a whole number in [{}, {}], got {value:?}",
            range.start(),
            range.end()
        )
    };
    let parsed: u32 = value.trim().parse().map_err(|_| rule(name, message()))?;
    if range.contains(&parsed) {
        Ok(parsed)
    } else {
        Err(rule(name, message()))
    }
}

fn seconds(name: &'static str, value: Option<String>, default: u32) -> Result<u32, ConfigError> {
    number(name, value, default, 1..=MAX_SECONDS)
}

fn boolean(name: &'static str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(rule(name, format!("must be true or false, got {value:?}"))),
    }
}

fn header_name(value: &str) -> Result<String, ConfigError> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(rule(
            "session_header",
            "must be 1-64 letters, digits, `-` or `_`",
        ))
    }
}

/// A `postgres://` or `postgresql://` URL with something after the scheme. The error never
/// repeats the value: it may hold a password.
fn database(url: &str) -> Result<Database, ConfigError> {
    let url = url.trim();
    let rest = url.split_once("://").and_then(|(scheme, rest)| {
        let postgres =
            scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql");
        postgres.then_some(rest)
    });
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['/', '?']) => {
            Ok(Database::Postgres(url.to_owned()))
        }
        _ => Err(rule(
            "database_url",
            "must be empty (SQLite) or a PostgreSQL URL such as \
             postgres://user:password@host:5432/database",
        )),
    }
}

fn split_paths(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn paths(name: &'static str, list: &str) -> Result<Vec<String>, ConfigError> {
    let paths = split_paths(list);
    match paths.iter().find(|p| !p.starts_with('/')) {
        Some(bad) => Err(rule(
            name,
            format!("must be a comma-separated list of paths starting with `/`, got {bad:?}"),
        )),
        None => Ok(paths),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<_, _> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn no_variables_gives_the_documented_defaults() {
        let config = parse(&[]).expect("defaults are valid");
        assert_eq!(config, Config::default());
        assert_eq!(config.default_timeout, 3600);
        assert_eq!(config.limit_policy, LimitPolicy::EvictOldest);
        assert_eq!(
            config.protected_paths,
            ["/api/chat", "/developer", "/tasks"]
        );
        assert_eq!(config.admin_key, None);
    }

    #[test]
    fn every_known_variable_is_read() {
        let config = parse(&[
            ("default_timeout", "600"),
            ("max_timeout", "7200"),
            ("min_timeout", "60"),
            ("absolute_lifetime", "90000"),
            ("cleanup_interval", "10"),
            ("max_per_user", "3"),
            ("limit_policy", "reject"),
            ("require_https", "true"),
            ("secure_cookies", "1"),
            ("session_header", "X-Token"),
            ("auto_update", "false"),
            ("protected_paths", "/api, /admin"),
            ("excluded_paths", "/health"),
            ("log_level", "debug"),
            ("log_requests", "no"),
            ("admin_key", "0123456789abcdef0123"),
            ("max_metadata_bytes", "1024"),
            ("trusted_proxies", "10.0.0.0/8, ::1"),
            ("database_url", "postgres://zoe:pw@db.internal:5432/zoe"),
        ])
        .expect("valid");
        assert_eq!(config.default_timeout, 600);
        assert_eq!(config.max_timeout, 7200);
        assert_eq!(config.min_timeout, 60);
        assert_eq!(config.absolute_lifetime, 90000);
        assert_eq!(config.cleanup_interval, 10);
        assert_eq!(config.max_per_user, 3);
        assert_eq!(config.limit_policy, LimitPolicy::Reject);
        assert!(config.require_https && config.secure_cookies && !config.auto_update);
        assert_eq!(config.session_header, "X-Token");
        assert_eq!(config.protected_paths, ["/api", "/admin"]);
        assert_eq!(config.excluded_paths, ["/health"]);
        assert_eq!(config.log_level, LogLevel::Debug);
        assert!(!config.log_requests);
        assert_eq!(config.admin_key.as_deref(), Some("0123456789abcdef0123"));
        assert_eq!(config.max_metadata_bytes, 1024);
        assert!(config.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert_eq!(
            config.database,
            Database::Postgres("postgres://zoe:pw@db.internal:5432/zoe".to_owned())
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: &[(&'static str, &str)] = &[
            ("default_timeout", "soon"),
            ("max_timeout", "-5"),
            ("min_timeout", "0"),
            ("max_per_user", "0"),
            ("limit_policy", "lru"),
            ("require_https", "maybe"),
            ("session_header", "X Session"),
            ("protected_paths", "api"),
            ("log_level", "loud"),
            ("admin_key", "short"),
            ("max_metadata_bytes", "99999999999"),
            ("trusted_proxies", "10.0.0.0/33"),
            ("trusted_proxies", "proxy.internal"),
            ("database_url", "mysql://db/zoe"),
        ];
        for (name, value) in cases {
            let err = parse(&[(name, value)]).expect_err(name);
            assert_eq!(err.name, *name, "{value:?}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn trusted_proxies_match_addresses_and_blocks() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7, fd00::/8").unwrap();
        for trusted in [
            "10.0.0.1",
            "10.255.255.255",
            "192.168.1.7",
            "fd12::1",
            "::ffff:10.9.9.9",
        ] {
            assert!(proxies.contains(trusted.parse().unwrap()), "{trusted}");
        }
        for untrusted in ["11.0.0.1", "192.168.1.8", "127.0.0.1", "fe80::1", "::1"] {
            assert!(!proxies.contains(untrusted.parse().unwrap()), "{untrusted}");
        }
        let odd = TrustedProxies::parse("172.16.0.0/12").unwrap();
        assert!(odd.contains("172.31.255.1".parse().unwrap()));
        assert!(!odd.contains("172.32.0.1".parse().unwrap()));
        assert!(
            TrustedProxies::parse("*")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(TrustedProxies::default().is_empty());
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn min_above_max_is_refused() {
        let err = parse(&[("min_timeout", "9000"), ("max_timeout", "600")]).unwrap_err();
        assert_eq!(err.name, "min_timeout");
    }

    #[test]
    fn default_outside_the_range_is_refused() {
        let err = parse(&[("default_timeout", "100")]).unwrap_err();
        assert_eq!(err.name, "default_timeout");
        assert!(err.rule.contains("[300, 86400]"), "{}", err.rule);
    }

    #[test]
    fn empty_value_means_default() {
        assert_eq!(parse(&[("max_per_user", " ")]).unwrap().max_per_user, 10);
    }

    #[test]
    fn database_url_chooses_the_backend() {
        assert_eq!(parse(&[]).unwrap().database, Database::Sqlite);
        assert_eq!(
            parse(&[("database_url", " ")]).unwrap().database,
            Database::Sqlite
        );
        for url in [
            "postgres://h/db",
            "postgresql://u:p@h:5433/db",
            "POSTGRES://h",
        ] {
            assert_eq!(
                parse(&[("database_url", url)]).unwrap().database,
                Database::Postgres(url.to_owned()),
                "{url}"
            );
        }
    }

    #[test]
    fn a_bad_database_url_names_the_setting_but_not_the_value() {
        for url in [
            "sqlite:///data/x.db",
            "postgres://",
            "postgres:///db",
            "host=db password=hunter2",
            "https://hunter2@db",
        ] {
            let err = parse(&[("database_url", url)]).expect_err(url);
            assert_eq!(err.name, "database_url");
            assert!(err.to_string().contains("database_url"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn spin_toml_passes_every_variable_to_the_component() {
        let manifest = include_str!("../spin.toml");
        for name in VARIABLE_NAMES {
            let line = format!("{name} = \"{{{{ {name} }}}}\"");
            assert!(manifest.contains(&line), "spin.toml lacks `{line}`");
        }
    }

    #[test]
    fn debug_output_redacts_the_database_url() {
        let config = parse(&[("database_url", "postgres://zoe:hunter2@db/zoe")]).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        // It would have seen the URL: the backend is shown.
        assert!(shown.contains("Postgres(<redacted>)"), "{shown}");
    }

    #[test]
    fn debug_output_redacts_the_admin_key() {
        let config = parse(&[("admin_key", "super-secret-admin-key")]).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_values_give_a_valid_config_or_an_error_naming_a_known_setting(
            values in proptest::collection::vec(".{0,12}", VARIABLE_NAMES.len()),
        ) {
            let result = Config::from_lookup(|name| {
                let index = VARIABLE_NAMES.iter().position(|n| *n == name)?;
                Some(values[index].clone())
            });
            match result {
                Ok(config) => {
                    prop_assert!(config.min_timeout <= config.default_timeout);
                    prop_assert!(config.default_timeout <= config.max_timeout);
                    prop_assert!(config.max_per_user >= 1);
                }
                Err(err) => prop_assert!(VARIABLE_NAMES.contains(&err.name)),
            }
        }

        #[test]
        fn numbers_in_range_are_accepted(min in 1u32..1000, span in 0u32..100_000) {
            let max = min + span;
            let result = Config::from_lookup(|name| match name {
                "min_timeout" | "default_timeout" => Some(min.to_string()),
                "max_timeout" => Some(max.to_string()),
                _ => None,
            });
            let config = result.expect("in range");
            prop_assert_eq!((config.min_timeout, config.max_timeout), (min, max));
        }
    }
}
