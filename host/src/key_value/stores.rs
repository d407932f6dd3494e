//! The stores one host provides, by label, and which of them its component may open.

use super::errors::KeyValueError as Error;
use super::local::LocalStore;
use super::redis::{RedisOptions, RedisStore};
use super::runtime_config::{KeyValueConfig, RuntimeConfigError, StoreConfig};
use crate::sqlite::{Location, Synchronous};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One store's backend.
#[derive(Debug)]
pub enum Backend {
    Local(LocalStore),
    // Boxed: a Redis client is several times the size of a file store.
    Redis(Box<RedisStore>),
}

impl Backend {
    pub(super) async fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::Local(store) => store.get(key).await,
            Self::Redis(store) => store.get(key).await,
        }
    }

    pub(super) async fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        match self {
            Self::Local(store) => store.set(key, value).await,
            Self::Redis(store) => store.set(key, value).await,
        }
    }

    pub(super) async fn delete(&self, key: String) -> Result<(), Error> {
        match self {
            Self::Local(store) => store.delete(key).await,
            Self::Redis(store) => store.delete(key).await,
        }
    }

    pub(super) async fn exists(&self, key: String) -> Result<bool, Error> {
        match self {
            Self::Local(store) => store.exists(key).await,
            Self::Redis(store) => store.exists(key).await,
        }
    }

    pub(super) async fn get_keys(&self) -> Result<Vec<String>, Error> {
        match self {
            Self::Local(store) => store.get_keys().await,
            Self::Redis(store) => store.get_keys().await,
        }
    }
}

/// Every store of one host, by label, and the labels its component may open. Shared by all
/// the host's instances, so that they share each store's connection.
#[derive(Debug, Default)]
pub struct KeyValueStores {
    stores: BTreeMap<String, Arc<Backend>>,
    granted: BTreeSet<String>,
}

impl KeyValueStores {
    /// The stores `config` defines (with `default` beside `database` unless it says
    /// otherwise); nothing opens or connects until the component first uses a store.
    ///
    /// # Errors
    ///
    /// [`RuntimeConfigError`] for a granted label that is not defined, or a Redis URL that
    /// redis-rs cannot use.
    pub fn new(
        config: &KeyValueConfig,
        database: &Location,
        synchronous: Synchronous,
        redis: RedisOptions,
    ) -> Result<Self, RuntimeConfigError> {
        let (defined, granted) = config.resolve(database)?;
        let mut stores = BTreeMap::new();
        for (label, store) in defined {
            let backend = match store {
                StoreConfig::Spin(location) => {
                    Backend::Local(LocalStore::new(&label, location, synchronous))
                }
                StoreConfig::Redis(url) => Backend::Redis(Box::new(
                    RedisStore::new(&url, redis).map_err(|message| RuntimeConfigError::Store {
                        label: label.clone(),
                        message,
                    })?,
                )),
            };
            stores.insert(label, Arc::new(backend));
        }
        Ok(Self { stores, granted })
    }

    /// A host without key-value stores: every `open` is `no-such-store`.
    pub fn none() -> Self {
        Self::default()
    }

    /// The store `label` names, as Spin answers `open`: `access-denied` for a store the
    /// component is not granted, `no-such-store` for a label no store answers to (Spin, which
    /// checks grants first, says `access-denied` for that too).
    pub(super) fn open(&self, label: &str) -> Result<Arc<Backend>, Error> {
        let store = self.stores.get(label).ok_or(Error::NoSuchStore)?;
        if !self.granted.contains(label) {
            return Err(Error::AccessDenied);
        }
        Ok(store.clone())
    }

    /// The backend of `label`, granted or not (for tests and operators).
    pub fn backend(&self, label: &str) -> Option<&Arc<Backend>> {
        self.stores.get(label)
    }
}
