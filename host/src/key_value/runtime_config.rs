//! Which key-value stores exist and where each lives: Spin's defaults, changed by a runtime
//! config file in Spin's own format (`spin up --runtime-config-file`), so one file serves
//! both:
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//!
//! [key_value_store.archive]
//! type = "spin"              # Spin's SQLite file
//! path = "archive.db"        # relative to this file's directory, as Spin resolves it
//! ```
//!
//! Without a file, or when the file does not define it, `default` is Spin's local store: a
//! SQLite file, here `sqlite_key_value.db` beside the session database (`SESSION_DB_PATH`; in
//! memory when that is `:memory:`), where Spin keeps it in `.spin/`. Only `key_value_store`
//! tables are read; any other table Spin knows (`sqlite_database`, `variables_provider`, …) is
//! refused by name rather than ignored, since this host takes those from `SESSION_*`.

use crate::sqlite::Location;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The label every Spin host defines, and the one spin.toml grants.
pub const DEFAULT_LABEL: &str = "default";

/// File name of the default store beside the session database (Spin's own name for it).
pub const DEFAULT_FILE_NAME: &str = "sqlite_key_value.db";

/// Where one store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Spin's own store (`type = "spin"`): rows of `spin_key_value (store, key, value)` in a
    /// SQLite file, as Spin writes them, so either can open the other's file.
    Spin(Location),
    /// A Redis server (`type = "redis"`, `url = "redis://…"`). The URL may hold a password:
    /// nothing shows it (`Debug` names the host and port only).
    Redis(String),
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spin(location) => f.debug_tuple("Spin").field(location).finish(),
            Self::Redis(url) => f.debug_tuple("Redis").field(&redis_address(url)).finish(),
        }
    }
}

/// `redis://HOST:PORT` of a Redis URL, without user, password or database: what errors and
/// logs may show.
pub(crate) fn redis_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("redis://{host}")
}

/// The stores a runtime config defines, and which of them the component may open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValueConfig {
    /// Stores by label, as the runtime config defines them. `default` is added beside the
    /// session database when absent ([`KeyValueConfig::resolve`]).
    pub stores: BTreeMap<String, StoreConfig>,
    /// The labels the component may open (spin.toml's `key_value_stores`); `None`: every
    /// defined label. A granted label must be defined, or the host refuses to start, as Spin
    /// does.
    pub granted: Option<BTreeSet<String>>,
}

/// A runtime config file this host cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeConfigError {
    #[error("runtime config {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("runtime config {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// A store whose settings the backend refuses.
    #[error("[key_value_store.{label}]: {message}")]
    Store { label: String, message: String },
    /// A granted label that no store answers to.
    #[error(
        "unknown key_value_stores label {label:?}: define it in the runtime config as \
         [key_value_store.{label}]"
    )]
    UnknownLabel { label: String },
}

impl KeyValueConfig {
    /// The stores of the runtime config file at `path`. Relative `path`s of `spin` stores are
    /// resolved against the file's directory, as Spin resolves them.
    ///
    /// # Errors
    ///
    /// [`RuntimeConfigError`] when the file cannot be read, is not TOML, has a table other
    /// than `key_value_store`, or a store of another type than `spin` or `redis`, without a
    /// `redis://` URL, or with a key its type does not know.
    pub fn from_runtime_config_file(path: &Path) -> Result<Self, RuntimeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| RuntimeConfigError::Read {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_runtime_config(&text, base).map_err(|message| RuntimeConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// The stores of a runtime config's text; relative paths are taken from `base`.
    ///
    /// # Errors
    ///
    /// The message of [`KeyValueConfig::from_runtime_config_file`]'s errors.
    pub fn from_runtime_config(text: &str, base: &Path) -> Result<Self, String> {
        let table: toml::Table = text
            .parse()
            .map_err(|err: toml::de::Error| format!("not valid TOML: {}", err.message()))?;
        let mut config = Self::default();
        for (key, value) in table {
            if key != "key_value_store" {
                return Err(format!(
                    "[{key}] is not read by this host: it reads [key_value_store.*] only (the \
                     SQLite file is SESSION_DB_PATH, variables are SESSION_* environment \
                     variables)"
                ));
            }
            let stores = value
                .as_table()
                .ok_or("key_value_store must be a table of stores, [key_value_store.LABEL]")?;
            for (label, store) in stores {
                let store = store
                    .as_table()
                    .ok_or_else(|| format!("[key_value_store.{label}] must be a table"))?;
                let parsed = store_config(store, base)
                    .map_err(|message| format!("[key_value_store.{label}]: {message}"))?;
                config.stores.insert(label.clone(), parsed);
            }
        }
        Ok(config)
    }

    /// Every store by label: the runtime config's, and `default` beside `database` when the
    /// runtime config leaves it out. Checks that each granted label is defined.
    ///
    /// # Errors
    ///
    /// [`RuntimeConfigError::UnknownLabel`] for a granted label no store answers to.
    pub fn resolve(
        &self,
        database: &Location,
    ) -> Result<(BTreeMap<String, StoreConfig>, BTreeSet<String>), RuntimeConfigError> {
        let mut stores = self.stores.clone();
        stores
            .entry(DEFAULT_LABEL.to_owned())
            .or_insert_with(|| StoreConfig::Spin(default_location(database)));
        let granted = match &self.granted {
            Some(granted) => granted.clone(),
            None => stores.keys().cloned().collect(),
        };
        if let Some(label) = granted.iter().find(|label| !stores.contains_key(*label)) {
            return Err(RuntimeConfigError::UnknownLabel {
                label: label.clone(),
            });
        }
        Ok((stores, granted))
    }
}

/// Where Spin's `default` store lives for a host whose sessions database is `database`.
pub fn default_location(database: &Location) -> Location {
    match database {
        Location::Memory => Location::Memory,
        Location::File(path) => Location::File(
            path.parent()
                .unwrap_or(Path::new(""))
                .join(DEFAULT_FILE_NAME),
        ),
    }
}

fn store_config(store: &toml::Table, base: &Path) -> Result<StoreConfig, String> {
    let text = |key: &str| -> Result<Option<&str>, String> {
        match store.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let only = |known: &[&str]| -> Result<(), String> {
        match store.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(format!("unknown key `{key}`")),
            None => Ok(()),
        }
    };
    match text("type")? {
        Some("spin") => {
            only(&["type", "path"])?;
            Ok(StoreConfig::Spin(match text("path")? {
                // Spin keeps a store without a path in memory.
                None => Location::Memory,
                Some(path) => Location::File(base.join(path)),
            }))
        }
        Some("redis") => {
            only(&["type", "url"])?;
            let url = text("url")?.ok_or("a redis store needs `url = \"redis://HOST:PORT\"`")?;
            if !url.starts_with("redis://") {
                return Err(format!(
                    "`url` must be a redis:// URL (this host speaks no TLS to Redis), not {}",
                    redis_address(url).replace("redis://", "…://")
                ));
            }
            Ok(StoreConfig::Redis(url.to_owned()))
        }
        Some(other) => Err(format!(
            "type {other:?} is not one this host provides (`spin` or `redis`)"
        )),
        None => Err("`type` is missing (`spin` or `redis`)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KeyValueConfig, String> {
        KeyValueConfig::from_runtime_config(text, Path::new("/etc/zoe"))
    }

    #[test]
    fn spin_s_redis_and_spin_store_tables_are_read() {
        let config = parse(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://:pw@127.0.0.1:6379/2\"\n\
             [key_value_store.archive]\ntype = \"spin\"\npath = \"kv/archive.db\"\n\
             [key_value_store.scratch]\ntype = \"spin\"\n",
        )
        .unwrap();
        assert_eq!(
            config.stores["default"],
            StoreConfig::Redis("redis://:pw@127.0.0.1:6379/2".into())
        );
        assert_eq!(
            config.stores["archive"],
            StoreConfig::Spin(Location::File("/etc/zoe/kv/archive.db".into()))
        );
        assert_eq!(
            config.stores["scratch"],
            StoreConfig::Spin(Location::Memory)
        );
        // The password never shows.
        let shown = format!("{config:?}");
        assert!(shown.contains("redis://127.0.0.1:6379"), "{shown}");
        assert!(!shown.contains("pw"), "{shown}");
    }

    #[test]
    fn default_lives_beside_the_session_database_unless_the_file_moves_it() {
        let (stores, granted) = KeyValueConfig::default()
            .resolve(&Location::File("data/sessions.db".into()))
            .unwrap();
        assert_eq!(
            stores["default"],
            StoreConfig::Spin(Location::File("data/sqlite_key_value.db".into()))
        );
        assert_eq!(granted, BTreeSet::from(["default".to_owned()]));
        let (stores, _) = KeyValueConfig::default()
            .resolve(&Location::Memory)
            .unwrap();
        assert_eq!(stores["default"], StoreConfig::Spin(Location::Memory));
        let redis =
            parse("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://h:1\"").unwrap();
        let (stores, _) = redis.resolve(&Location::Memory).unwrap();
        assert_eq!(stores["default"], StoreConfig::Redis("redis://h:1".into()));
    }

    #[test]
    fn a_granted_label_that_no_store_answers_to_refuses_start_up() {
        let config = KeyValueConfig {
            granted: Some(BTreeSet::from([
                "default".to_owned(),
                "sessions".to_owned(),
            ])),
            ..KeyValueConfig::default()
        };
        let err = config.resolve(&Location::Memory).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown key_value_stores label \"sessions\": define it in the runtime config as \
             [key_value_store.sessions]"
        );
        // Positive control: granting only what exists starts.
        let config = KeyValueConfig {
            granted: Some(BTreeSet::from(["default".to_owned()])),
            ..KeyValueConfig::default()
        };
        config.resolve(&Location::Memory).unwrap();
    }

    #[test]
    fn what_this_host_cannot_use_is_refused_by_name() {
        for (text, expected) in [
            (
                "[sqlite_database.default]\ntype = \"spin\"",
                "[sqlite_database] is not read",
            ),
            (
                "[key_value_store.default]\ntype = \"azure_cosmos\"",
                "type \"azure_cosmos\"",
            ),
            (
                "[key_value_store.default]\nurl = \"redis://h\"",
                "`type` is missing",
            ),
            ("[key_value_store.default]\ntype = \"redis\"", "needs `url"),
            (
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"rediss://u:secret@h:6380\"",
                "must be a redis:// URL",
            ),
            (
                "[key_value_store.default]\ntype = \"spin\"\npaht = \"x\"",
                "unknown key `paht`",
            ),
            (
                "[key_value_store.default]\ntype = \"spin\"\npath = 3",
                "`path` must be a string",
            ),
            ("key_value_store = 1", "must be a table of stores"),
            ("[key_value_store\n", "not valid TOML"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn redis_addresses_drop_credentials_and_database() {
        assert_eq!(redis_address("redis://u:p@h:6379/3?x=1"), "redis://h:6379");
        assert_eq!(redis_address("redis://h"), "redis://h");
    }
}
