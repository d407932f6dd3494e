//! A [`KeyValue`] in memory, shared by its clones as replicas share one store: the native
//! backend of the key-value layout's tests and races. An optional latency per call stands in
//! for a round trip to Redis or Akamai's store, which is what gives concurrent operations
//! room to interleave.

use super::super::error::StoreError;
use super::super::key_value::KeyValue;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// An in-memory store; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MemoryKeyValue {
    map: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    latency: Duration,
}

impl MemoryKeyValue {
    /// An empty store answering at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Another handle on the same store whose calls each take `latency` (a sleep before the
    /// call, so that other threads' calls land in between).
    pub fn with_latency(&self, latency: Duration) -> Self {
        Self {
            map: self.map.clone(),
            latency,
        }
    }

    /// Every key and value, for tests that look at the layout itself.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic elsewhere leaves the map whole (every call is one insert or remove).
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait(&self) {
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
    }
}

impl KeyValue for MemoryKeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.wait();
        Ok(self.lock().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.wait();
        self.lock().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.wait();
        self.lock().remove(key);
        Ok(())
    }

    fn get_keys(&self) -> Result<Vec<String>, StoreError> {
        self.wait();
        Ok(self.lock().keys().cloned().collect())
    }
}
