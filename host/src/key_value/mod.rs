//! `fermyon:spin/key-value@2.0.0` (spin-sdk 5.2's `key_value`), presented the way Spin
//! presents it.
//!
//! Stores are named by label. As under `spin up`, `default` is Spin's local store, a SQLite
//! file (here beside the session database), and a runtime config file in Spin's format maps any
//! label onto Spin's file or onto Redis ([`KeyValueConfig::from_runtime_config_file`]):
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//! ```
//!
//! `open` answers as Spin does: a label the component is not granted is `access-denied` (the
//! host grants every store it defines unless [`KeyValueConfig::granted`] says otherwise, as
//! spin.toml's `key_value_stores` does), and a label that names no store is `no-such-store`.
//! Every failure of a backend is `other` with a sentence for operators (Redis down or too slow,
//! a file that cannot be written): the interface has no finer error, and the component treats
//! it as "the store is unavailable" (503). Bounds on Redis's waits are in [`redis`](RedisStore).
//!
//! The parts: `runtime_config` (which stores exist), `stores` (the host's stores and grants),
//! `local` (Spin's SQLite file), `redis`, `errors` (what crosses the interface), `handle` (the
//! guest's [`Store`] resource), and here the interface itself, reached through
//! [`KeyValueView`].

mod errors;
pub(crate) mod handle;
mod local;
mod redis;
mod runtime_config;
mod stores;
#[cfg(test)]
mod tests;
pub mod v3_0;

pub use errors::KeyValueError;
pub use handle::Store;
pub use local::LocalStore;
pub use redis::{RedisOptions, RedisStore};
pub use runtime_config::{
    DEFAULT_FILE_NAME, DEFAULT_LABEL, KeyValueConfig, RuntimeConfigError, StoreConfig,
    default_location,
};
pub use stores::{Backend, KeyValueStores};

use crate::bindings::fermyon::spin::key_value::{self as wit, Error};
use crate::host_calls::HostCalls;
use std::sync::Arc;
use wasmtime::component::{Resource, ResourceTable};

/// One instance's `fermyon:spin/key-value` state: the host's stores, and the counter its
/// calls are counted in.
#[derive(Debug)]
pub struct KeyValueCtx {
    stores: Arc<KeyValueStores>,
    calls: Arc<HostCalls>,
}

impl KeyValueCtx {
    pub fn new(stores: Arc<KeyValueStores>, calls: Arc<HostCalls>) -> Self {
        Self { stores, calls }
    }

    /// The stores this instance may open.
    pub fn stores(&self) -> &Arc<KeyValueStores> {
        &self.stores
    }
}

/// What `fermyon:spin/key-value` needs of a store: its [`KeyValueCtx`] and the resource table
/// that holds the guest's store handles.
#[derive(Debug)]
pub struct KeyValueCtxView<'a> {
    pub ctx: &'a mut KeyValueCtx,
    pub table: &'a mut ResourceTable,
}

/// A store whose guest may import `fermyon:spin/key-value`.
pub trait KeyValueView: Send {
    fn key_value(&mut self) -> KeyValueCtxView<'_>;
}

// The linker hands the host `&mut T` (`HasSelf`).
impl<T: KeyValueView + ?Sized> KeyValueView for &mut T {
    fn key_value(&mut self) -> KeyValueCtxView<'_> {
        T::key_value(self)
    }
}

impl<T: KeyValueView> wit::Host for T {}

impl From<KeyValueError> for Error {
    fn from(err: KeyValueError) -> Self {
        match err {
            KeyValueError::NoSuchStore => Self::NoSuchStore,
            KeyValueError::AccessDenied => Self::AccessDenied,
            KeyValueError::Other(text) => Self::Other(text),
        }
    }
}

/// The backend behind a guest handle; a handle that is not in the table is a host bug or a
/// forged handle, and traps.
fn backend<T: KeyValueView>(
    host: &mut T,
    store: &Resource<Store>,
) -> wasmtime::Result<Arc<stores::Backend>> {
    Ok(host.key_value().table.get(store)?.backend.clone())
}

impl<T: KeyValueView> wit::HostStore for T {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<Store>, Error>> {
        let KeyValueCtxView { ctx, table } = self.key_value();
        ctx.calls.key_value_open();
        let backend = match ctx.stores.open(&label) {
            Ok(backend) => backend,
            Err(err) => return Ok(Err(err.into())),
        };
        Ok(table
            .push(Store { backend })
            .map_err(|_| Error::StoreTableFull))
    }

    async fn get(
        &mut self,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.key_value().ctx.calls.key_value_read();
        Ok(backend(self, &store)?.get(key).await.map_err(Into::into))
    }

    async fn set(
        &mut self,
        store: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.key_value().ctx.calls.key_value_write();
        Ok(backend(self, &store)?
            .set(key, value)
            .await
            .map_err(Into::into))
    }

    async fn delete(
        &mut self,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.key_value().ctx.calls.key_value_write();
        Ok(backend(self, &store)?.delete(key).await.map_err(Into::into))
    }

    async fn exists(
        &mut self,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.key_value().ctx.calls.key_value_read();
        Ok(backend(self, &store)?.exists(key).await.map_err(Into::into))
    }

    async fn get_keys(
        &mut self,
        store: Resource<Store>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        self.key_value().ctx.calls.key_value_read();
        Ok(backend(self, &store)?.get_keys().await.map_err(Into::into))
    }

    async fn drop(&mut self, store: Resource<Store>) -> wasmtime::Result<()> {
        self.key_value().table.delete(store)?;
        Ok(())
    }
}
