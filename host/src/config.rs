//! The host's configuration: where the database lives and the Spin variables it hands the
//! component, read from the seed's `SESSION_*` environment variables.

use crate::key_value::{KeyValueConfig, RuntimeConfigError};
use crate::platform::Platform;
use crate::postgres::{SpinCompat, SpinCompatError};
use crate::sqlite::{Location, Synchronous, SynchronousError};
use crate::variables::Variables;
use std::path::PathBuf;

/// Default database file, relative to the working directory (as in the seed).
pub const DEFAULT_DB_PATH: &str = "data/sessions.db";

/// The Spin variable holding the PostgreSQL URL: when set, the only address the component may
/// `open` through `spin:postgres` (Spin's `allowed_outbound_hosts`, as this host grants it).
/// Unset, the component stays on SQLite and every Postgres `open` is refused.
pub const DATABASE_URL_VARIABLE: &str = "database_url";

/// Each environment variable and the Spin variable it sets: DESIGN.md's table, as the
/// component's configuration crate defines it.
pub fn env_to_variable() -> impl Iterator<Item = (&'static str, &'static str)> {
    zoe_session_config::SETTINGS
        .iter()
        .map(|setting| (setting.env, setting.name))
}

/// The environment variable that sets [`HostConfig::synchronous`].
pub const SYNCHRONOUS_ENV: &str = "SESSION_SYNCHRONOUS";

/// The environment variable that sets [`HostConfig::spin_compat`] (`4.0` or `current`).
pub const SPIN_COMPAT_ENV: &str = "SESSION_SPIN_COMPAT";

/// The environment variable that sets [`HostConfig::postgres_root_cert`].
pub const POSTGRES_ROOT_CERT_ENV: &str = zoe_postgres_tls::ROOT_CERT_ENV;

/// The environment variable that names a runtime config file in Spin's format
/// ([`HostConfig::key_value`]), as `spin up --runtime-config-file` does.
pub const RUNTIME_CONFIG_FILE_ENV: &str = "SESSION_RUNTIME_CONFIG_FILE";

/// A host setting in the environment has a value the host cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `SESSION_SYNCHRONOUS` is neither `normal` nor `full`.
    #[error("{SYNCHRONOUS_ENV}: {0}")]
    Synchronous(#[from] SynchronousError),
    /// `SESSION_SPIN_COMPAT` is neither `4.0` nor `current`.
    #[error("{SPIN_COMPAT_ENV}: {0}")]
    SpinCompat(#[from] SpinCompatError),
    /// A component setting is invalid (the host checks them all before it starts); named by
    /// its environment variable and its Spin variable.
    #[error("{}", describe_setting(.0))]
    Setting(#[from] zoe_session_config::ConfigError),
    /// The runtime config file (`SESSION_RUNTIME_CONFIG_FILE`, `--runtime-config-file`)
    /// cannot be read or used.
    #[error(transparent)]
    RuntimeConfig(#[from] RuntimeConfigError),
}

/// `invalid setting SESSION_ADMIN_KEY (admin_key): <rule>`: the name an operator set and the
/// name the component reads. A variable with no environment variable is named alone.
fn describe_setting(err: &zoe_session_config::ConfigError) -> String {
    let setting = zoe_session_config::SETTINGS
        .iter()
        .find(|setting| setting.name == err.name);
    match setting {
        Some(setting) => format!(
            "invalid setting {} ({}): {}",
            setting.env, err.name, err.rule
        ),
        None => format!("invalid setting {}: {}", err.name, err.rule),
    }
}

/// Configuration of one host: database location and component variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Where the `default` database lives.
    pub database: Location,
    /// SQLite's `synchronous` for a file database (`SESSION_SYNCHRONOUS`, default `normal`).
    pub synchronous: Synchronous,
    /// The platform whose grants the component gets (`serve --platform`): on
    /// [`Platform::Akamai`] no SQLite database (every `open` is `access-denied`, and no file
    /// is created) and only the `default` key-value store.
    pub platform: Platform,
    /// Present SQLite as Spin does, for measuring what Spin pays (`serve --spin-costs`): a
    /// new connection per guest `open`, in rollback-journal mode. See
    /// [`crate::sqlite::DatabaseOptions::connection_per_open`].
    pub connection_per_open: bool,
    /// Which Spin's `spin:postgres` answers to present (`SESSION_SPIN_COMPAT`, `serve
    /// --spin-compat`; default: current Spin). Tests run PostgreSQL in [`SpinCompat::V4_0`].
    pub spin_compat: SpinCompat,
    /// A PEM file of root certificates that `spin:postgres` trusts besides the system's when
    /// the URL says `sslmode=verify-ca` or `verify-full` (`SESSION_POSTGRES_ROOT_CERT`).
    pub postgres_root_cert: Option<PathBuf>,
    /// The key-value stores `fermyon:spin/key-value` opens: Spin's `default` file beside
    /// [`HostConfig::database`], and what a runtime config file in Spin's format adds or
    /// moves (`SESSION_RUNTIME_CONFIG_FILE`, `--runtime-config-file`).
    pub key_value: KeyValueConfig,
    /// Spin variables for the component. Unset ones take the component's defaults.
    pub variables: Variables,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            database: Location::File(DEFAULT_DB_PATH.into()),
            synchronous: Synchronous::default(),
            platform: Platform::default(),
            connection_per_open: false,
            spin_compat: SpinCompat::default(),
            postgres_root_cert: None,
            key_value: KeyValueConfig::default(),
            variables: Variables::default(),
        }
    }
}

impl HostConfig {
    /// An in-memory database and default settings: handy for tests and examples.
    pub fn in_memory() -> Self {
        Self {
            database: Location::Memory,
            synchronous: Synchronous::default(),
            platform: Platform::default(),
            connection_per_open: false,
            spin_compat: SpinCompat::default(),
            postgres_root_cert: None,
            key_value: KeyValueConfig::default(),
            variables: Variables::default(),
        }
    }

    /// Reads `SESSION_DB_PATH`, `SESSION_SYNCHRONOUS`, `SESSION_SPIN_COMPAT`,
    /// `SESSION_POSTGRES_ROOT_CERT`, `SESSION_RUNTIME_CONFIG_FILE` and the
    /// variables of [`env_to_variable`] from the environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when `SESSION_SYNCHRONOUS` is set to anything but `normal` or `full`,
    /// or `SESSION_SPIN_COMPAT` to anything but `4.0` or `current` (an empty value means the
    /// default), or when the runtime config file cannot be read or used. The component's
    /// variables are checked by the
    /// component itself.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`HostConfig::from_env`], with the environment given as a function.
    ///
    /// # Errors
    ///
    /// As [`HostConfig::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(path) = lookup("SESSION_DB_PATH").filter(|p| !p.is_empty()) {
            config.database = Location::parse(&path);
        }
        if let Some(value) = lookup(SYNCHRONOUS_ENV).filter(|v| !v.trim().is_empty()) {
            config.synchronous = value.parse()?;
        }
        if let Some(value) = lookup(SPIN_COMPAT_ENV).filter(|v| !v.trim().is_empty()) {
            config.spin_compat = value.parse()?;
        }
        if let Some(path) = lookup(POSTGRES_ROOT_CERT_ENV).filter(|p| !p.is_empty()) {
            config.postgres_root_cert = Some(PathBuf::from(path));
        }
        if let Some(path) = lookup(RUNTIME_CONFIG_FILE_ENV).filter(|p| !p.is_empty()) {
            config.read_runtime_config(std::path::Path::new(&path))?;
        }
        for (env, variable) in env_to_variable() {
            if let Some(value) = lookup(env) {
                config.variables.set(variable, value);
            }
        }
        Ok(config)
    }

    /// The component's settings as these variables give them, read by the component's own
    /// rules (the host needs `cleanup_interval` for its maintenance timer).
    pub fn settings(&self) -> zoe_session_config::Config {
        let variables = self.variables.clone();
        zoe_session_config::Config::from_lookup(move |name| variables.lookup(name).ok())
    }

    /// Takes the key-value stores of the runtime config file at `path` (Spin's format).
    ///
    /// # Errors
    ///
    /// [`ConfigError::RuntimeConfig`] when the file cannot be read or used.
    pub fn read_runtime_config(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        self.key_value = KeyValueConfig::from_runtime_config_file(path)?;
        Ok(())
    }

    /// Sets one Spin variable; a builder-style helper.
    pub fn with(mut self, variable: &str, value: impl Into<String>) -> Self {
        self.variables.set(variable, value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn environment_variables_map_to_spin_variables() {
        let env: HashMap<&str, &str> = [
            ("SESSION_DB_PATH", ":memory:"),
            ("SESSION_MAX_PER_USER", "5"),
            ("SESSION_ADMIN_KEY", "k".repeat(20).leak()),
            ("UNRELATED", "x"),
        ]
        .into();
        let config = HostConfig::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap();
        assert_eq!(config.database, Location::Memory);
        assert_eq!(config.variables.get("max_per_user"), Some("5"));
        assert_eq!(
            config.variables.get("admin_key"),
            Some("k".repeat(20).as_str())
        );
        assert_eq!(config.variables.get("min_timeout"), None);
    }

    #[test]
    fn the_database_url_is_the_database_url_variable_and_unset_means_sqlite() {
        let url = "postgres://app:secret@db.internal:5432/sessions";
        let config = HostConfig::from_lookup(|name| {
            (name == "SESSION_DATABASE_URL").then(|| url.to_owned())
        })
        .expect("valid");
        assert_eq!(config.variables.get(DATABASE_URL_VARIABLE), Some(url));
        // The SQLite file is still configured: the component chooses, the host offers both.
        assert_eq!(config.database, Location::File(DEFAULT_DB_PATH.into()));
        let unset = HostConfig::from_lookup(|_| None).expect("valid");
        assert_eq!(unset.variables.get(DATABASE_URL_VARIABLE), None);
    }

    #[test]
    fn a_bad_component_setting_is_named_by_its_variable_and_environment_variable() {
        let key = "0123456789abcdef-hunter2";
        let config = HostConfig::from_lookup(|name| {
            (name == "SESSION_ADMIN_KEY").then(|| format!("{key}\n"))
        })
        .unwrap();
        let err = ConfigError::from(config.settings().check_all().unwrap_err()).to_string();
        assert!(
            err.starts_with("invalid setting SESSION_ADMIN_KEY (admin_key): ends with a newline"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        // Positive control: the key without its newline is a valid setting.
        let config =
            HostConfig::from_lookup(|name| (name == "SESSION_ADMIN_KEY").then(|| key.to_owned()))
                .unwrap();
        config.settings().check_all().unwrap();
    }

    #[test]
    fn database_defaults_to_the_seed_path() {
        let config = HostConfig::from_lookup(|_| None).unwrap();
        assert_eq!(config.database, Location::File(DEFAULT_DB_PATH.into()));
        assert_eq!(config.synchronous, Synchronous::Normal);
    }

    #[test]
    fn spin_compat_is_read_from_the_environment_and_a_bad_value_is_refused() {
        let with = |value: &str| {
            let value = value.to_owned();
            HostConfig::from_lookup(move |name| (name == SPIN_COMPAT_ENV).then(|| value.clone()))
        };
        assert_eq!(with("").unwrap().spin_compat, SpinCompat::Current);
        assert_eq!(with("current").unwrap().spin_compat, SpinCompat::Current);
        for v4_0 in ["4.0", "4.0.x", "4.0.2", " 4.0 "] {
            assert_eq!(
                with(v4_0).unwrap().spin_compat,
                SpinCompat::V4_0,
                "{v4_0:?}"
            );
        }
        for bad in ["4", "4.1", "4.0.", "4.0.2a", "latest"] {
            let err = with(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "SESSION_SPIN_COMPAT: spin compatibility must be `4.0` or `current`, not {bad:?}"
                )
            );
        }
    }

    #[test]
    fn synchronous_is_read_from_the_environment_and_a_bad_value_is_refused() {
        let with = |value: &str| {
            let value = value.to_owned();
            HostConfig::from_lookup(move |name| (name == SYNCHRONOUS_ENV).then(|| value.clone()))
        };
        assert_eq!(with("full").unwrap().synchronous, Synchronous::Full);
        assert_eq!(with("FULL").unwrap().synchronous, Synchronous::Full);
        assert_eq!(with("normal").unwrap().synchronous, Synchronous::Normal);
        assert_eq!(with("").unwrap().synchronous, Synchronous::Normal);
        for bad in ["off", "extra", "2", "ful"] {
            let err = with(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("SESSION_SYNCHRONOUS: synchronous must be `normal` or `full`, not {bad:?}")
            );
        }
    }
}
