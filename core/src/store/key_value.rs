//! The seam between the store and a key-value backend: Spin's `key-value` interface as the
//! component imports it (`spin:key-value`), whose stores Spin maps onto its local SQLite
//! file, Redis, Azure Cosmos DB or Akamai's store by runtime configuration. Only what every
//! one of them offers is here: no transaction, no compare-and-swap, no expiry, no atomic
//! increment. The layout and the guarantees built on it are the key-value store's concern.

use super::error::StoreError;

/// One open key-value store.
///
/// Every method is one host call (one round trip to Redis or Akamai's store). Errors are
/// converted where they happen: [`StoreError::Unavailable`] when the store cannot be
/// reached, [`StoreError::KeyValue`] otherwise.
pub trait KeyValue: std::fmt::Debug {
    /// The value under `key`, `None` when there is none.
    ///
    /// # Errors
    ///
    /// As the trait says.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `value` under `key`, replacing any value there.
    ///
    /// # Errors
    ///
    /// As the trait says.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Removes `key`; removing a key that is not there is not an error.
    ///
    /// # Errors
    ///
    /// As the trait says.
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Every key in the store (Spin's only listing: no prefix, no cursor).
    ///
    /// # Errors
    ///
    /// As the trait says.
    fn get_keys(&self) -> Result<Vec<String>, StoreError>;
}
