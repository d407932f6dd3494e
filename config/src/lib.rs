//! zoe-session's configuration: every setting of DESIGN.md's table, defined once in
//! [`SETTINGS`] (name, environment variable, default, parser, meaning) and read lazily. The
//! component, the gate and the native host all depend on this crate, so a setting's name,
//! default and rules cannot drift between them.
//!
//! The component's only configuration source is Spin variables; [`Config::from_lookup`] takes
//! the lookup as a function so that parsing stays pure and testable. Each setting is looked up
//! and parsed the first time something asks for it, then kept for the instance's life: Spin
//! gives every request a fresh instance and every variable read is a host call, so a request
//! pays only for the settings it uses. Those that every request needs travel together in
//! one variable, [`REQUEST_SETTINGS`], so that `GET /health` costs one variable read and a
//! validate two (that and `database_url`). A missing or empty variable takes its default; a present but bad one is an
//! error that names the variable and the rule, raised by whatever needs it, and
//! [`Config::check_all`] reads every setting, for the routes that must refuse to run on a
//! broken configuration (the admin's).

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

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

/// Where sessions are stored, from `database_url` and `key_value_store` together
/// ([`Config::backend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend<'a> {
    /// A SQL database: Spin's SQLite, or the PostgreSQL server of `database_url`.
    Sql(&'a Database),
    /// The Spin key-value store with this label (`spin:key-value`), which Spin maps onto its
    /// local file, Redis or the platform's store by runtime configuration.
    KeyValue(&'a str),
}

/// A secret setting's value (the admin key): shown as `<redacted>` by `Debug`, so no log or
/// panic message can carry it by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one comparison that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
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

/// One row of DESIGN.md's configuration table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The Spin variable.
    pub name: &'static str,
    /// The environment variable the native host reads it from (the seed's name).
    pub env: &'static str,
    /// Whether the value is a secret (the admin key, a database URL with its password): Spin
    /// declares it `secret = true`, and it never travels in [`REQUEST_SETTINGS`].
    pub secret: bool,
    /// The value an unset or empty variable stands for, in the variable's own syntax.
    pub default: &'static str,
    /// What it means.
    pub doc: &'static str,
}

/// The idle-timeout bounds, checked against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub min: u32,
    pub default: u32,
    pub max: u32,
}

// `Send + Sync` so that native callers may share one configuration between threads.
type Lookup = Box<dyn Fn(&'static str) -> Option<String> + Send + Sync>;

/// The configuration: a lookup and each setting's parsed value, read on first use.
pub struct Config {
    lookup: Lookup,
    /// [`REQUEST_SETTINGS`] as the lookup gave it: `None` when the host does not define it.
    request_settings: OnceLock<Option<Result<BundleValues, ConfigError>>>,
    values: Values,
}

/// Settings that travel together in one variable, one `name=value` line each, so that a
/// request reads them with one host call. Spin fills the variable from the same application
/// variables as always (spin.toml templates it); a host that does not define it gets the
/// settings read one by one, so hosts and importers that know nothing of bundles still work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bundle {
    /// The variable holding the bundle.
    pub variable: &'static str,
    /// The settings in it, in the order of its lines.
    pub settings: &'static [&'static str],
}

/// What every request reads (the request log and the HTTPS rule) and what a validate adds
/// (the token's header, and `key_value_store`, which every route that touches the store reads
/// beside `database_url` to choose the backend: both must be read to refuse both set, and in
/// here that costs no read of its own). Secrets stay out, so that no instance holds the admin
/// key or the database password unless its request needs them.
pub const REQUEST_SETTINGS: Bundle = Bundle {
    variable: "request_settings",
    settings: &[
        "log_requests",
        "log_level",
        "require_https",
        "session_header",
        "key_value_store",
    ],
};

/// A bundle's lines: each setting's raw value, or why its line is unusable.
type BundleValues = Vec<(&'static str, Result<String, ConfigError>)>;

impl Bundle {
    /// The variable's value as spin.toml templates it from the application variables.
    pub fn template(&self) -> String {
        self.render(|name| Some(format!("{{{{ {name} }}}}")))
    }

    /// The variable's value for settings given by `value` (`None`: an empty line, the default).
    /// Every setting gets its line, as Spin renders the template, so that a value holding a
    /// line break cannot pass for another setting's line unnoticed (it becomes a duplicate).
    pub fn render(&self, value: impl Fn(&str) -> Option<String>) -> String {
        let lines: Vec<String> = self
            .settings
            .iter()
            .map(|name| format!("{name}={}", value(name).unwrap_or_default()))
            .collect();
        lines.join("\n")
    }

    /// Splits the variable's value into its settings' raw values. A line that is not
    /// `setting=value` continues the line before it: that setting's value held a line break,
    /// which none may.
    fn parse(&self, text: &str) -> Result<BundleValues, ConfigError> {
        let mut values: BundleValues = Vec::new();
        for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
            if line.trim().is_empty() {
                continue;
            }
            let setting = line.split_once('=').and_then(|(name, value)| {
                let name = self.settings.iter().find(|known| **known == name.trim())?;
                Some((*name, value))
            });
            if let Some((name, value)) = setting {
                match values.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, earlier)) => {
                        *earlier =
                            Err(rule(name, format!("is given twice in `{}`", self.variable)));
                    }
                    None => values.push((name, Ok(value.to_owned()))),
                }
            } else if let Some((name, value)) = values.last_mut() {
                *value = Err(rule(name, "must be a single line"));
            } else {
                return Err(rule(
                    self.variable,
                    format!(
                        "must be `setting=value` lines for {}",
                        self.settings.join(", ")
                    ),
                ));
            }
        }
        Ok(values)
    }
}

const fn marked(markers: &[&str]) -> bool {
    !markers.is_empty()
}

/// Defines [`SETTINGS`], the lazily filled `Values` and one accessor per setting, so that a
/// setting is written once: its name, type, default, parser and doc.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty = $default:literal from $env:ident $([$secret:ident])?, $parse:expr;
    )+) => {
        /// Every setting, in the order of DESIGN.md's table.
        pub const SETTINGS: &[Setting] = &[$(
            Setting {
                name: stringify!($name),
                env: stringify!($env),
                secret: marked(&[$(stringify!($secret))?]),
                default: $default,
                doc: concat!($($doc),+),
            },
        )+];

        /// Each setting's parsed value once something has asked for it.
        #[derive(Debug, Default)]
        struct Values {
            $($name: OnceLock<Result<$ty, ConfigError>>,)+
        }

        impl Config {
            $(
                $(#[doc = $doc])+
                ///
                /// # Errors
                ///
                /// A [`ConfigError`] naming the variable when its value is unusable.
                pub fn $name(&self) -> Result<&$ty, ConfigError> {
                    self.read(&self.values.$name, stringify!($name), $default, $parse)
                }
            )+

            /// Reads every setting; the first bad one in table order is the error.
            fn read_each(&self) -> Result<(), ConfigError> {
                $(self.$name()?;)+
                Ok(())
            }
        }
    };
}

settings! {
    /// Idle timeout of a session created without one, in seconds.
    default_timeout: u32 = "3600" from SESSION_DEFAULT_TIMEOUT, seconds;
    /// Largest idle timeout, and largest single extension, in seconds.
    max_timeout: u32 = "86400" from SESSION_MAX_TIMEOUT, seconds;
    /// Smallest idle timeout, in seconds.
    min_timeout: u32 = "300" from SESSION_MIN_TIMEOUT, seconds;
    /// Hard cap on a session's life from creation, in seconds, whatever activity it sees.
    absolute_lifetime: u32 = "604800" from SESSION_ABSOLUTE_LIFETIME, seconds;
    /// Seconds between opportunistic cleanups run by `create`.
    cleanup_interval: u32 = "300" from SESSION_CLEANUP_INTERVAL, seconds;
    /// Sessions one user may hold at once.
    max_per_user: u32 = "10" from SESSION_MAX_PER_USER, |name, value| number(name, value, 1..=100_000);
    /// What a create beyond `max_per_user` does: `evict_oldest` or `reject`.
    limit_policy: LimitPolicy = "evict_oldest" from SESSION_LIMIT_POLICY, limit_policy;
    /// Refuse plain HTTP (403) and send HSTS.
    require_https: bool = "false" from SESSION_REQUIRE_HTTPS, boolean;
    /// Cookies get `Secure` and the `__Host-` prefix.
    secure_cookies: bool = "false" from SESSION_SECURE_COOKIES, boolean;
    /// The request header that carries a token.
    session_header: String = "X-Session-ID" from SESSION_HEADER, header_name;
    /// Validation records activity (sliding expiry), at most once per 15 s per session.
    auto_update: bool = "true" from SESSION_AUTO_UPDATE, boolean;
    /// Path prefixes the gate and the middleware protect (a valid session or 401).
    protected_paths: Vec<String> = "/api/chat,/developer,/tasks" from SESSION_PROTECTED_PATHS, paths;
    /// Path prefixes the gate and the middleware let through without a session.
    excluded_paths: Vec<String> = "/docs,/health,/sessions/create" from SESSION_EXCLUDED_PATHS, paths;
    /// DEBUG, INFO, WARNING or ERROR.
    log_level: LogLevel = "INFO" from SESSION_LOG_LEVEL, log_level;
    /// One log line per request.
    log_requests: bool = "true" from SESSION_LOG_REQUESTS, boolean;
    /// The admin key (at least 16 characters); empty: privileged endpoints are unavailable.
    admin_key: Option<Secret> = "" from SESSION_ADMIN_KEY [secret], admin_key;
    /// Largest metadata object, in bytes of JSON.
    max_metadata_bytes: u32 = "16384" from SESSION_MAX_METADATA_BYTES, |name, value| number(name, value, 2..=1_048_576);
    /// Peers whose `X-Forwarded-Proto`/`Forwarded` headers are believed: IPs, CIDR blocks or `*`.
    trusted_proxies: TrustedProxies = "" from SESSION_TRUSTED_PROXIES, |_, value| TrustedProxies::parse(value);
    /// Empty for SQLite, or a `postgres://` URL for PostgreSQL.
    database_url: Database = "" from SESSION_DATABASE_URL [secret], database;
    /// Empty for the SQL store, or a Spin key-value store's label (`default`): sessions live there; not with `database_url`.
    key_value_store: Option<String> = "" from SESSION_KEY_VALUE_STORE, store_label;
    /// A rotated-away token presented again 30 s or more after the rotate revokes its session.
    token_reuse_detection: bool = "true" from SESSION_TOKEN_REUSE_DETECTION, boolean;
    /// One JSON line per session lifecycle event on stderr (`session.created`, …).
    audit_events: bool = "true" from SESSION_AUDIT_EVENTS, boolean;
    /// Sessions record the client's address and user agent (at create and activity writes).
    record_devices: bool = "true" from SESSION_RECORD_DEVICES, boolean;
    /// Other origins (`https://app.example`) whose pages may use the session cookie across sites.
    allowed_origins: Vec<String> = "" from SESSION_ALLOWED_ORIGINS, origins;
    /// Path prefixes where the middleware hands the app the session's identity when there is a valid one, and never refuses.
    optional_paths: Vec<String> = "" from SESSION_OPTIONAL_PATHS, paths;
    /// Roles the middleware requires per path prefix: `/admin=admin,/billing=billing` (every matching entry applies; 403 when unmet).
    required_roles: Vec<PathRule> = "" from SESSION_REQUIRED_ROLES, path_rules;
    /// Permissions the middleware requires per path prefix: `/reports=reports:read` (every matching entry applies; 403 when unmet).
    required_permissions: Vec<PathRule> = "" from SESSION_REQUIRED_PERMISSIONS, path_rules;
    /// Where the middleware sends a browser navigation without a valid session (303, `?next=` the path); empty: 401 JSON.
    login_url: Option<String> = "" from SESSION_LOGIN_URL, login_url;
}

/// The settings as a Markdown table (variable, environment variable, default, meaning), one
/// row per setting in [`SETTINGS`] order: the documentation's table is this text, and a test
/// holds it equal, so the docs cannot drift from the code.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| Spin variable | host env var | default | meaning |\n|---|---|---|---|\n");
    for setting in SETTINGS {
        let secret = if setting.secret { " (secret)" } else { "" };
        let default = if setting.default.is_empty() {
            "(empty)".to_owned()
        } else {
            format!("`{}`", setting.default)
        };
        let doc = setting.doc.trim().replace('|', "\\|");
        table.push_str(&format!(
            "| `{}`{secret} | `{}` | {default} | {doc} |\n",
            setting.name, setting.env
        ));
    }
    table
}

/// Every variable the component reads, in the order of DESIGN.md's table.
pub const VARIABLE_NAMES: [&str; SETTINGS.len()] = {
    let mut names = [""; SETTINGS.len()];
    let mut i = 0;
    while i < SETTINGS.len() {
        names[i] = SETTINGS[i].name;
        i += 1;
    }
    names
};

/// Largest idle timeout or lifetime accepted: ten years keeps every expiry computation far
/// from overflow.
const MAX_SECONDS: u32 = 10 * 366 * 24 * 3600;

// Values are shown as far as they have been read; the admin key and the database URL
// redact themselves.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("values", &self.values)
            .finish_non_exhaustive()
    }
}

/// Every setting at its default.
impl Default for Config {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

impl Config {
    /// The configuration `lookup` gives: it returns a variable's value or `None` when it is
    /// not set, and is called at most once per setting, when the setting is first needed.
    /// Empty values count as not set, so `SPIN_VARIABLE_X=` means "default".
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            lookup: Box::new(lookup),
            request_settings: OnceLock::new(),
            values: Values::default(),
        }
    }

    /// The configuration of `pairs` (variable, value), every other setting at its default.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Self::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
        })
    }

    /// Reads and checks every setting, and the relations between them.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad variable: not a number, out of range, an unknown
    /// policy or level, or `min_timeout <= default_timeout <= max_timeout` violated.
    pub fn check_all(&self) -> Result<(), ConfigError> {
        self.read_each()?;
        self.backend()?;
        self.timeouts().map(drop)
    }

    /// The store sessions live in: the key-value store `key_value_store` names, else the SQL
    /// database of `database_url` (SQLite when it is empty).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the bad variable, or naming `key_value_store` when both it and
    /// a PostgreSQL `database_url` are set: sessions live in one store, and guessing which one
    /// was meant would split them between two.
    pub fn backend(&self) -> Result<Backend<'_>, ConfigError> {
        let database = self.database_url()?;
        match (self.key_value_store()?, database) {
            (None, database) => Ok(Backend::Sql(database)),
            (Some(label), Database::Sqlite) => Ok(Backend::KeyValue(label)),
            (Some(_), Database::Postgres(_)) => Err(rule(
                "key_value_store",
                "cannot be set together with `database_url`: sessions live in one store; \
                 clear one of the two",
            )),
        }
    }

    /// The idle-timeout bounds, which must satisfy `min <= default <= max`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the bad variable.
    pub fn timeouts(&self) -> Result<Timeouts, ConfigError> {
        let (default, max, min) = (
            *self.default_timeout()?,
            *self.max_timeout()?,
            *self.min_timeout()?,
        );
        if min > max {
            return Err(rule(
                "min_timeout",
                format!("must not exceed max_timeout ({min} > {max})"),
            ));
        }
        if !(min..=max).contains(&default) {
            return Err(rule(
                "default_timeout",
                format!("must lie within [min_timeout, max_timeout] = [{min}, {max}]"),
            ));
        }
        Ok(Timeouts { min, default, max })
    }

    fn read<'a, T>(
        &'a self,
        cell: &'a OnceLock<Result<T, ConfigError>>,
        name: &'static str,
        default: &'static str,
        parse: fn(&'static str, &str) -> Result<T, ConfigError>,
    ) -> Result<&'a T, ConfigError> {
        cell.get_or_init(|| {
            let value = self.raw(name)?.filter(|v| !v.trim().is_empty());
            parse(name, value.as_deref().unwrap_or(default))
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    /// A setting's value as configured: from [`REQUEST_SETTINGS`] when it is bundled and the
    /// host defines the bundle, else from its own variable. A bundle with no line for it (a
    /// manifest written before the setting joined the bundle) leaves it to its own variable,
    /// so that an older manifest costs a read rather than silently losing the value.
    fn raw(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        if REQUEST_SETTINGS.settings.contains(&name) {
            let bundle = self.request_settings.get_or_init(|| {
                (self.lookup)(REQUEST_SETTINGS.variable).map(|text| REQUEST_SETTINGS.parse(&text))
            });
            match bundle {
                Some(Ok(values)) => {
                    if let Some((_, value)) = values.iter().find(|(n, _)| *n == name) {
                        return value.clone().map(Some);
                    }
                }
                Some(Err(err)) => return Err(err.clone()),
                None => {}
            }
        }
        Ok((self.lookup)(name))
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
    value: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
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

fn seconds(name: &'static str, value: &str) -> Result<u32, ConfigError> {
    number(name, value, 1..=MAX_SECONDS)
}

fn boolean(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(rule(name, format!("must be true or false, got {value:?}"))),
    }
}

fn limit_policy(name: &'static str, value: &str) -> Result<LimitPolicy, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "evict_oldest" => Ok(LimitPolicy::EvictOldest),
        "reject" => Ok(LimitPolicy::Reject),
        _ => Err(rule(name, "must be `evict_oldest` or `reject`")),
    }
}

fn log_level(name: &'static str, value: &str) -> Result<LogLevel, ConfigError> {
    match value.trim().to_ascii_uppercase().as_str() {
        "DEBUG" => Ok(LogLevel::Debug),
        "INFO" => Ok(LogLevel::Info),
        "WARN" | "WARNING" => Ok(LogLevel::Warn),
        "ERROR" | "CRITICAL" => Ok(LogLevel::Error),
        _ => Err(rule(name, "must be DEBUG, INFO, WARNING or ERROR")),
    }
}

/// An admin key: at least 16 characters, none of them whitespace or control characters (a
/// key read with `$(cat file)` or from a secret store often ends with a newline, and would
/// then never match what clients send).
fn admin_key(name: &'static str, value: &str) -> Result<Option<Secret>, ConfigError> {
    if let Some(problem) = stray_characters(value) {
        return Err(rule(
            name,
            problem.explain("an admin key may hold no whitespace or control characters"),
        ));
    }
    match value {
        "" => Ok(None),
        key if key.len() < 16 => Err(rule(name, "must be at least 16 characters")),
        key => Ok(Some(Secret(key.to_owned()))),
    }
}

/// A secret's first whitespace or control character: where it is and what it is.
struct Stray {
    place: Place,
    /// `a newline`, `a space`, …
    what: &'static str,
}

enum Place {
    Start,
    End,
    Inside,
}

impl Stray {
    /// The rule for a setting's error: the problem and what to do, never the value.
    /// `inside` is the remedy for a character inside the value.
    fn explain(&self, inside: &str) -> String {
        let what = self.what;
        match self.place {
            Place::Start => format!("starts with {what}; remove leading whitespace"),
            Place::End => format!(
                "ends with {what}; remove trailing whitespace (e.g. `printf %s` instead of `echo`)"
            ),
            Place::Inside => format!("contains {what}; {inside}"),
        }
    }
}

/// The first whitespace or control character in `value`, or `None` when there is none. A
/// run of them at the end is described by its last character (`\r\n` is "a newline").
fn stray_characters(value: &str) -> Option<Stray> {
    let stray = |c: char| c.is_whitespace() || c.is_control();
    let (index, first) = value.char_indices().find(|(_, c)| stray(*c))?;
    let (place, c) = if index == 0 {
        (Place::Start, first)
    } else if value[index..].chars().all(stray) {
        (Place::End, value.chars().next_back().unwrap_or(first))
    } else {
        (Place::Inside, first)
    };
    let what = match c {
        ' ' => "a space",
        '\t' => "a tab",
        '\n' => "a newline",
        '\r' => "a carriage return",
        c if c.is_control() => "a control character",
        _ => "a whitespace character",
    };
    Some(Stray { place, what })
}

fn header_name(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(rule(name, "must be 1-64 letters, digits, `-` or `_`"))
    }
}

/// Empty for SQLite, else a `postgres://` or `postgresql://` URL with something after the
/// scheme, and no whitespace or control character anywhere: the host allows exactly this
/// URL to be opened, so a stray newline would otherwise surface later as "not permitted".
/// The error never repeats the value: it may hold a password.
fn database(name: &'static str, url: &str) -> Result<Database, ConfigError> {
    if let Some(problem) = stray_characters(url) {
        return Err(rule(
            name,
            problem.explain("percent-encode it (a space is %20) or remove it"),
        ));
    }
    if url.is_empty() {
        return Ok(Database::Sqlite);
    }
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
            name,
            "must be empty (SQLite) or a PostgreSQL URL such as \
             postgres://user:password@host:5432/database",
        )),
    }
}

/// Empty (the SQL store), or a Spin key-value store label: 1-64 letters, digits, `-`, `_` or
/// `.`, as in spin.toml's `key_value_stores` and a runtime config's `[key_value_store.LABEL]`.
fn store_label(name: &'static str, value: &str) -> Result<Option<String>, ConfigError> {
    let label = value.trim();
    if label.is_empty() {
        return Ok(None);
    }
    let valid = label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(Some(label.to_owned()))
    } else {
        Err(rule(
            name,
            format!(
                "must be empty or a key-value store label (1-64 letters, digits, `-`, `_` or \
                 `.`, e.g. `default`), got {value:?}"
            ),
        ))
    }
}

/// A comma-separated list of origins, each `http://` or `https://` and an authority, with
/// no path: what a browser sends in `Origin`. Compared without regard to ASCII case.
fn origins(name: &'static str, list: &str) -> Result<Vec<String>, ConfigError> {
    let mut origins = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let authority = entry
            .strip_prefix("https://")
            .or_else(|| entry.strip_prefix("http://"));
        let valid = authority.is_some_and(|authority| {
            !authority.is_empty()
                && !authority.bytes().any(|b| {
                    matches!(b, b'/' | b'?' | b'#' | b'@')
                        || b.is_ascii_whitespace()
                        || b.is_ascii_control()
                })
        });
        if !valid {
            return Err(rule(
                name,
                format!(
                    "must list origins such as https://app.example:8443 (scheme and host, no path), got {entry:?}"
                ),
            ));
        }
        origins.push(entry.to_ascii_lowercase());
    }
    Ok(origins)
}

/// One `PATH=NAME` entry of `required_roles` or `required_permissions`: requests at or
/// below `prefix` need `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    /// A path starting with `/`.
    pub prefix: String,
    /// The role or permission, as sessions carry it in their metadata.
    pub name: String,
}

/// `PATH=NAME` entries separated by commas. A name holds no whitespace, `=` or `,`: it is
/// compared with the session's roles and permissions exactly.
fn path_rules(name: &'static str, list: &str) -> Result<Vec<PathRule>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let bad = || {
                rule(
                    name,
                    format!(
                        "must be a comma-separated list of `PATH=NAME` entries (`/admin=admin`), \
                         with PATH starting with `/` and NAME without spaces, got {entry:?}"
                    ),
                )
            };
            let (prefix, required) = entry.split_once('=').ok_or_else(bad)?;
            let (prefix, required) = (prefix.trim(), required.trim());
            let name_ok = !required.is_empty()
                && !required
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '=');
            if !prefix.starts_with('/') || !name_ok {
                return Err(bad());
            }
            Ok(PathRule {
                prefix: prefix.to_owned(),
                name: required.to_owned(),
            })
        })
        .collect()
}

/// Empty for none, else a path on this site (`/login`, never `//host`) or an `http(s)://`
/// URL, without whitespace or control characters: it becomes a `Location` header.
fn login_url(name: &'static str, value: &str) -> Result<Option<String>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let lower = value.to_ascii_lowercase();
    let absolute = ["https://", "http://"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    });
    let local = value.starts_with('/') && !value.starts_with("//") && !value.starts_with("/\\");
    if stray_characters(value).is_some() || !(absolute || local) {
        return Err(rule(
            name,
            format!("must be a path starting with `/` or an http(s):// URL, got {value:?}"),
        ));
    }
    Ok(Some(value.to_owned()))
}

fn paths(name: &'static str, list: &str) -> Result<Vec<String>, ConfigError> {
    let paths: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
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
    use std::sync::{Arc, Mutex};

    fn parse(vars: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let config = Config::from_pairs(vars);
        config.check_all()?;
        Ok(config)
    }

    #[test]
    fn required_roles_are_path_name_pairs() {
        let config = parse(&[
            (
                "required_roles",
                " /admin=admin, /billing = billing ,/admin=ops",
            ),
            ("required_permissions", "/reports=reports:read"),
        ])
        .unwrap();
        let rule = |prefix: &str, name: &str| PathRule {
            prefix: prefix.to_owned(),
            name: name.to_owned(),
        };
        assert_eq!(
            config.required_roles().unwrap(),
            &[
                rule("/admin", "admin"),
                rule("/billing", "billing"),
                rule("/admin", "ops")
            ]
        );
        assert_eq!(
            config.required_permissions().unwrap(),
            &[rule("/reports", "reports:read")]
        );
        assert!(parse(&[]).unwrap().required_roles().unwrap().is_empty());
        for bad in ["admin=admin", "/admin", "/admin=", "/admin=a b", "/a=b=c"] {
            let err = parse(&[("required_roles", bad)]).unwrap_err();
            assert_eq!(err.name, "required_roles", "{bad}");
            assert!(err.rule.contains("PATH=NAME"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_login_url_is_a_local_path_or_an_http_url() {
        for good in [
            "/login",
            "/auth/login?x=1",
            "https://id.example/login",
            "HTTP://a",
        ] {
            let config = parse(&[("login_url", good)]).unwrap();
            assert_eq!(config.login_url().unwrap().as_deref(), Some(good));
        }
        assert_eq!(parse(&[]).unwrap().login_url().unwrap(), &None);
        for bad in [
            "login",
            "//evil.example",
            "/\\evil.example",
            "javascript:x",
            "https://",
            "/a b",
        ] {
            let err = parse(&[("login_url", bad)]).unwrap_err();
            assert_eq!(err.name, "login_url", "{bad}");
        }
    }

    #[test]
    fn allowed_origins_are_origins_without_a_path() {
        let config = parse(&[(
            "allowed_origins",
            "https://App.example, http://127.0.0.1:8080 ,",
        )])
        .unwrap();
        assert_eq!(
            config.allowed_origins().unwrap(),
            &["https://app.example", "http://127.0.0.1:8080"]
        );
        assert!(parse(&[]).unwrap().allowed_origins().unwrap().is_empty());
        for bad in [
            "app.example",
            "https://",
            "https://app.example/",
            "https://app.example/login",
            "https://user@app.example",
            "ftp://app.example",
            "https://app example",
        ] {
            let err = parse(&[("allowed_origins", bad)]).unwrap_err();
            assert!(err.to_string().contains("allowed_origins"), "{bad}: {err}");
        }
    }

    #[test]
    fn no_variables_gives_the_documented_defaults() {
        let config = parse(&[]).expect("defaults are valid");
        assert_eq!(*config.default_timeout().unwrap(), 3600);
        assert_eq!(*config.limit_policy().unwrap(), LimitPolicy::EvictOldest);
        assert_eq!(
            config.protected_paths().unwrap(),
            &["/api/chat", "/developer", "/tasks"]
        );
        assert_eq!(config.admin_key().unwrap(), &None);
        assert_eq!(
            config.timeouts().unwrap(),
            Timeouts {
                min: 300,
                default: 3600,
                max: 86400
            }
        );
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
        assert_eq!(
            config.timeouts().unwrap(),
            Timeouts {
                min: 60,
                default: 600,
                max: 7200
            }
        );
        assert_eq!(*config.absolute_lifetime().unwrap(), 90000);
        assert_eq!(*config.cleanup_interval().unwrap(), 10);
        assert_eq!(*config.max_per_user().unwrap(), 3);
        assert_eq!(*config.limit_policy().unwrap(), LimitPolicy::Reject);
        assert!(*config.require_https().unwrap());
        assert!(*config.secure_cookies().unwrap());
        assert!(!*config.auto_update().unwrap());
        assert_eq!(config.session_header().unwrap(), "X-Token");
        assert_eq!(config.protected_paths().unwrap(), &["/api", "/admin"]);
        assert_eq!(config.excluded_paths().unwrap(), &["/health"]);
        assert_eq!(*config.log_level().unwrap(), LogLevel::Debug);
        assert!(!*config.log_requests().unwrap());
        assert_eq!(
            config.admin_key().unwrap().as_ref().map(Secret::expose),
            Some("0123456789abcdef0123")
        );
        assert_eq!(*config.max_metadata_bytes().unwrap(), 1024);
        assert!(
            config
                .trusted_proxies()
                .unwrap()
                .contains("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            config.database_url().unwrap(),
            &Database::Postgres("postgres://zoe:pw@db.internal:5432/zoe".to_owned())
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
    fn settings_are_read_once_each_and_only_when_needed() {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let config = Config::from_lookup(move |name| {
            log.lock().unwrap().push(name);
            (name == "max_per_user").then(|| "3".to_owned())
        });
        assert!(asked.lock().unwrap().is_empty(), "nothing is read up front");
        assert_eq!(*config.max_per_user().unwrap(), 3);
        assert_eq!(*config.max_per_user().unwrap(), 3);
        assert_eq!(config.session_header().unwrap(), "X-Session-ID");
        // The host defines no bundle here, so the header is read on its own after it.
        assert_eq!(
            *asked.lock().unwrap(),
            ["max_per_user", "request_settings", "session_header"]
        );
        // Positive control: the full check reads every other setting, once.
        config.check_all().unwrap();
        assert_eq!(asked.lock().unwrap().len(), SETTINGS.len() + 1);
    }

    #[test]
    fn a_bad_setting_fails_only_what_needs_it() {
        let config = Config::from_pairs(&[("max_per_user", "many")]);
        assert_eq!(config.session_header().unwrap(), "X-Session-ID");
        assert_eq!(config.max_per_user().unwrap_err().name, "max_per_user");
        assert_eq!(config.check_all().unwrap_err().name, "max_per_user");
    }

    #[test]
    fn the_table_is_unique_and_every_default_parses() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len());
        assert!(SETTINGS.iter().all(|s| !s.doc.trim().is_empty()));
        Config::default()
            .check_all()
            .expect("the defaults are valid");
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
        assert_eq!(
            *parse(&[("max_per_user", " ")])
                .unwrap()
                .max_per_user()
                .unwrap(),
            10
        );
    }

    #[test]
    fn database_url_chooses_the_backend() {
        assert_eq!(
            parse(&[]).unwrap().database_url().unwrap(),
            &Database::Sqlite
        );
        assert_eq!(
            parse(&[("database_url", " ")])
                .unwrap()
                .database_url()
                .unwrap(),
            &Database::Sqlite
        );
        for url in [
            "postgres://h/db",
            "postgresql://u:p@h:5433/db",
            "POSTGRES://h",
        ] {
            assert_eq!(
                parse(&[("database_url", url)])
                    .unwrap()
                    .database_url()
                    .unwrap(),
                &Database::Postgres(url.to_owned()),
                "{url}"
            );
        }
    }

    #[test]
    fn key_value_store_chooses_the_key_value_backend_and_refuses_database_url_beside_it() {
        let backend = |vars: &[(&'static str, &str)]| {
            Config::from_pairs(vars).backend().map(|b| format!("{b:?}"))
        };
        assert_eq!(backend(&[]).unwrap(), "Sql(Sqlite)");
        assert_eq!(
            backend(&[("key_value_store", " default ")]).unwrap(),
            "KeyValue(\"default\")"
        );
        assert_eq!(
            backend(&[("key_value_store", ""), ("database_url", "postgres://h/db")]).unwrap(),
            "Sql(Postgres(<redacted>))"
        );
        let both = [
            ("key_value_store", "default"),
            ("database_url", "postgres://u:hunter2@h/db"),
        ];
        let err = backend(&both).unwrap_err();
        assert_eq!(err.name, "key_value_store");
        assert!(err.rule.contains("`database_url`"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        // The start-up check sees the pair too, not only the backend choice.
        assert_eq!(parse(&both).unwrap_err(), err);
        for bad in [
            "two words",
            "x".repeat(65).leak(),
            "sessions/1",
            "caf\u{e9}",
        ] {
            let err = backend(&[("key_value_store", bad)]).unwrap_err();
            assert_eq!(err.name, "key_value_store", "{bad:?}");
            assert!(err.rule.contains("key-value store label"), "{err}");
        }
        for good in ["default", "sessions-eu_1", "a.b", "x".repeat(64).leak()] {
            assert_eq!(
                backend(&[("key_value_store", good)]).unwrap(),
                format!("KeyValue({good:?})")
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
    fn whitespace_or_a_control_character_in_a_secret_is_refused_without_the_value() {
        for (name, good) in [
            ("admin_key", "0123456789abcdef-hunter2"),
            (
                "database_url",
                "postgres://zoe:hunter2@db.internal:5432/zoe",
            ),
        ] {
            let (head, tail) = good.split_at(10);
            let cases = [
                (
                    format!(" {good}"),
                    "starts with a space; remove leading whitespace",
                ),
                (
                    format!("{good}\n"),
                    "ends with a newline; remove trailing whitespace (e.g. `printf %s` instead of `echo`)",
                ),
                (format!("{good}\r\n"), "ends with a newline"),
                (format!("{good}\r"), "ends with a carriage return"),
                (format!("{head}\t{tail}"), "contains a tab"),
                (format!("{head} {tail}"), "contains a space"),
                (
                    format!("{head}\u{7f}{tail}"),
                    "contains a control character",
                ),
                (
                    format!("{head}\u{a0}{tail}"),
                    "contains a whitespace character",
                ),
            ];
            for (value, problem) in cases {
                let err = Config::from_pairs(&[(name, &value)]).check_all();
                let err = err.expect_err(&format!("{name} = {value:?}"));
                assert_eq!(err.name, name);
                assert!(err.rule.starts_with(problem), "{value:?}: {err}");
                assert!(!err.to_string().contains("hunter2"), "{err}");
            }
            // Positive control: the value without the stray character is taken.
            parse(&[(name, good)]).expect(name);
        }
    }

    /// A lookup that defines the bundle as `text` and `others` one by one, recording reads.
    fn with_bundle(
        text: &str,
        others: &[(&'static str, &'static str)],
    ) -> (Config, Arc<Mutex<Vec<&'static str>>>) {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (log, text, others) = (asked.clone(), text.to_owned(), others.to_vec());
        let config = Config::from_lookup(move |name| {
            log.lock().unwrap().push(name);
            if name == REQUEST_SETTINGS.variable {
                return Some(text.clone());
            }
            others
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        });
        (config, asked)
    }

    #[test]
    fn the_request_settings_come_in_one_read() {
        let text = REQUEST_SETTINGS.render(|name| match name {
            "log_level" => Some("debug".to_owned()),
            "session_header" => Some("X-Token".to_owned()),
            _ => None,
        });
        assert_eq!(
            text,
            "log_requests=\nlog_level=debug\nrequire_https=\nsession_header=X-Token\nkey_value_store="
        );
        // Individual variables of bundled settings are not consulted once the bundle exists.
        let (config, asked) = with_bundle(&text, &[("session_header", "X-Ignored")]);
        assert_eq!(*config.log_level().unwrap(), LogLevel::Debug);
        assert!(
            *config.log_requests().unwrap(),
            "an empty line is the default"
        );
        assert!(!*config.require_https().unwrap());
        assert_eq!(config.session_header().unwrap(), "X-Token");
        assert_eq!(*asked.lock().unwrap(), ["request_settings"]);
        // Settings outside the bundle are still read one by one.
        assert_eq!(*config.max_per_user().unwrap(), 10);
        assert_eq!(*asked.lock().unwrap(), ["request_settings", "max_per_user"]);
    }

    #[test]
    fn the_backend_is_chosen_with_one_read_beside_the_bundle_and_an_older_bundle_still_works() {
        // A validate's cost on a fresh instance: the bundle and `database_url`, nothing else.
        let text = REQUEST_SETTINGS
            .render(|name| (name == "key_value_store").then(|| "sessions".to_owned()));
        let (config, asked) = with_bundle(&text, &[("key_value_store", "ignored")]);
        assert_eq!(config.backend().unwrap(), Backend::KeyValue("sessions"));
        assert_eq!(*asked.lock().unwrap(), ["database_url", "request_settings"]);
        // Both set is still refused, so both are read.
        let (config, _) = with_bundle(&text, &[("database_url", "postgres://h/db")]);
        assert_eq!(config.backend().unwrap_err().name, "key_value_store");
        // A bundle from before `key_value_store` joined it (no line for it): the setting comes
        // from its own variable, one read more, rather than silently taking the default.
        let old = "log_requests=\nlog_level=\nrequire_https=\nsession_header=";
        let (config, asked) = with_bundle(old, &[("key_value_store", "sessions")]);
        assert_eq!(config.backend().unwrap(), Backend::KeyValue("sessions"));
        assert_eq!(
            *asked.lock().unwrap(),
            ["database_url", "request_settings", "key_value_store"]
        );
    }

    #[test]
    fn spin_toml_s_template_names_each_bundled_setting_once() {
        assert_eq!(
            REQUEST_SETTINGS.template(),
            "log_requests={{ log_requests }}\nlog_level={{ log_level }}\n\
             require_https={{ require_https }}\nsession_header={{ session_header }}\n\
             key_value_store={{ key_value_store }}"
        );
        for name in REQUEST_SETTINGS.settings {
            let setting = SETTINGS
                .iter()
                .find(|s| s.name == *name)
                .expect("a setting");
            assert!(!setting.secret, "{name} is secret and must not be bundled");
        }
    }

    #[test]
    fn a_bad_bundled_value_names_its_setting_and_spares_the_others() {
        let (config, _) = with_bundle(
            "log_requests=true\nlog_level=loud\nrequire_https=false\nsession_header=X-S",
            &[],
        );
        assert_eq!(config.log_level().unwrap_err().name, "log_level");
        assert_eq!(config.session_header().unwrap(), "X-S");
        assert_eq!(config.check_all().unwrap_err().name, "log_level");
    }

    #[test]
    fn a_line_break_in_a_bundled_value_is_an_error_not_another_setting() {
        // Spin renders `session_header` as `X-A\nlog_level=DEBUG`: the injected line is a
        // second `log_level`, so neither passes.
        let (config, _) = with_bundle(
            "log_requests=true\nlog_level=INFO\nrequire_https=false\nsession_header=X-A\nlog_level=DEBUG",
            &[],
        );
        let err = config.log_level().unwrap_err();
        assert_eq!(err.name, "log_level");
        assert!(err.rule.contains("twice"), "{err}");
        // A continuation line that names no setting belongs to the line before it.
        let (config, _) = with_bundle(
            "log_requests=true\nlog_level=INFO\nrequire_https=false\nsession_header=X-A\nB",
            &[],
        );
        let err = config.session_header().unwrap_err();
        assert_eq!(
            (err.name, err.rule.as_str()),
            ("session_header", "must be a single line")
        );
        assert_eq!(*config.log_level().unwrap(), LogLevel::Info);
        // Positive control: the same lines without the break are fine.
        let (config, _) = with_bundle(
            "log_requests=true\nlog_level=INFO\nrequire_https=false\nsession_header=X-A",
            &[],
        );
        assert_eq!(config.session_header().unwrap(), "X-A");
    }

    #[test]
    fn a_bundle_that_is_not_lines_of_settings_names_the_bundle() {
        let (config, _) = with_bundle("garbage", &[]);
        let err = config.log_requests().unwrap_err();
        assert_eq!(err.name, "request_settings");
        assert!(err.rule.contains("session_header"), "{err}");
        // An empty bundle is every bundled setting at its default.
        let (config, _) = with_bundle("", &[]);
        config.check_all().expect("defaults");
    }

    #[test]
    fn every_setting_has_its_seed_environment_variable() {
        for setting in SETTINGS {
            let expected = match setting.name {
                "session_header" => "SESSION_HEADER".to_owned(),
                other => format!("SESSION_{}", other.to_ascii_uppercase()),
            };
            assert_eq!(setting.env, expected);
        }
        let secrets: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| s.secret)
            .map(|s| s.name)
            .collect();
        assert_eq!(secrets, ["admin_key", "database_url"]);
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
            let config = Config::from_lookup(move |name| {
                let index = VARIABLE_NAMES.iter().position(|n| *n == name)?;
                Some(values[index].clone())
            });
            match config.check_all() {
                Ok(()) => {
                    let t = config.timeouts().unwrap();
                    prop_assert!(t.min <= t.default && t.default <= t.max);
                    prop_assert!(*config.max_per_user().unwrap() >= 1);
                }
                Err(err) => prop_assert!(VARIABLE_NAMES.contains(&err.name)),
            }
        }

        #[test]
        fn numbers_in_range_are_accepted(min in 1u32..1000, span in 0u32..100_000) {
            let max = min + span;
            let config = Config::from_lookup(move |name| match name {
                "min_timeout" | "default_timeout" => Some(min.to_string()),
                "max_timeout" => Some(max.to_string()),
                _ => None,
            });
            let t = config.timeouts().expect("in range");
            prop_assert_eq!((t.min, t.max), (min, max));
        }
    }
}
