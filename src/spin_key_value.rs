//! [`KeyValue`] on Spin's synchronous key-value interface, `fermyon:spin/key-value@2.0.0`: the
//! store `key_value_store` names, which Spin maps onto its local file, Redis, Azure Cosmos DB
//! or the platform's store by runtime configuration. The WASIp2 build imports it through
//! spin-sdk 5.2; the WASIp3 build and the session middleware include this file and import the
//! same interface through their own bindings (`crate::bindings::key_value` is the interface
//! each build imports): Spin links every version of its interfaces for every component, and
//! `spin:key-value@3.0.0`, all async, would not serve the synchronous engine.
//!
//! Each failure is converted here, once. The interface says only `other(text)` when the store
//! fails (Redis down or too slow, a file that cannot be written), and that is a passing state
//! of the store, not a fault of ours: it becomes [`StoreError::Unavailable`], which the API
//! answers with 503 and the instance recovers from by opening the store again. A store the
//! component may not open (`access-denied`, `no-such-store`) is a deployment mistake that no
//! retry mends: [`StoreError::KeyValue`], saying what to grant or define.

use crate::bindings::key_value::{Error, Store};
use crate::store::kv::read_ahead::ReadAhead;
use crate::store::{KeyValue, StoreError};
use std::cell::RefCell;

thread_local! {
    // Values the running request read ahead (the WASIp3 build's `read_ahead`). Empty but
    // while [`with_reads_ahead`] runs the synchronous core, which never awaits, so no other
    // request of a reused instance can see them.
    static READ_AHEAD: RefCell<ReadAhead> = RefCell::new(ReadAhead::default());
}

/// Runs `run` (the synchronous core, for one request) with `values` read ahead: each key's
/// first read is answered from them, and a write of the key drops its value. Whatever is left
/// is dropped when `run` returns.
#[allow(
    dead_code,
    reason = "the WASIp3 build's; the WASIp2 build cannot overlap reads, so reads none ahead"
)]
pub(crate) fn with_reads_ahead<R>(values: ReadAhead, run: impl FnOnce() -> R) -> R {
    /// Empties the values however `run` ends.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            READ_AHEAD.with(|ahead| *ahead.borrow_mut() = ReadAhead::default());
        }
    }
    READ_AHEAD.with(|ahead| *ahead.borrow_mut() = values);
    let _clear = Clear;
    run()
}

fn read_ahead(key: &str) -> Option<Result<Option<Vec<u8>>, StoreError>> {
    READ_AHEAD.with(|ahead| ahead.borrow_mut().take(key))
}

fn forget_read_ahead(key: &str) {
    READ_AHEAD.with(|ahead| ahead.borrow_mut().forget(key));
}

/// The store named by a label.
pub(crate) struct SpinKeyValue {
    store: Store,
}

// The bindings' `Store` is a bare resource handle with no `Debug`.
impl std::fmt::Debug for SpinKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinKeyValue").finish_non_exhaustive()
    }
}

/// Opens the store labelled `label`.
///
/// # Errors
///
/// [`StoreError::KeyValue`] when the component is not granted the store or no store has that
/// label; [`StoreError::Unavailable`] when the host cannot open it now.
pub(crate) fn open(label: &str) -> Result<Box<dyn KeyValue>, StoreError> {
    let store = Store::open(label).map_err(|err| match err {
        Error::AccessDenied => StoreError::KeyValue(format!(
            "the component may not open key-value store {label:?}: list it in spin.toml's \
             key_value_stores"
        )),
        Error::NoSuchStore => StoreError::KeyValue(format!(
            "no key-value store is labelled {label:?}: define it in the runtime config \
             ([key_value_store.{label}])"
        )),
        other => store_error(other),
    })?;
    Ok(Box::new(SpinKeyValue { store }))
}

impl KeyValue for SpinKeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read_ahead(key).unwrap_or_else(|| self.store.get(key).map_err(store_error))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        forget_read_ahead(key);
        self.store.set(key, value).map_err(store_error)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        forget_read_ahead(key);
        self.store.delete(key).map_err(store_error)
    }

    fn get_keys(&self) -> Result<Vec<String>, StoreError> {
        self.store.get_keys().map_err(store_error)
    }
}

/// A failure of an open store: the store cannot serve us now. (The WASIp3 shell's reads
/// ahead convert the async interface's errors through this too.)
pub(crate) fn store_error(err: Error) -> StoreError {
    StoreError::Unavailable(match err {
        Error::Other(text) => format!("key-value store: {text}"),
        Error::StoreTableFull => "key-value store: too many stores open".to_owned(),
        Error::AccessDenied => "key-value store: access denied".to_owned(),
        Error::NoSuchStore => "key-value store: no such store".to_owned(),
    })
}
