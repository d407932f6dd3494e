//! `spin:key-value/key-value@3.0.0`, the WASIp3-era interface (Spin >= 4.1, spin-sdk 7), over
//! the same stores as `fermyon:spin/key-value@2.0.0`: every function is async, implemented as
//! a concurrent host function, so one request's wait on Redis does not hold up the instance's
//! other requests. The guest's `store` is the 2.0.0 handle. `get-keys` lists the keys, then
//! hands them to the guest as a stream, with the outcome on its future.

use super::{KeyValueCtxView, KeyValueError, KeyValueView, Store};
use crate::bindings::p3::spin::key_value::key_value::{self as wit, Error};
use wasmtime::component::{Accessor, FutureReader, HasSelf, Resource, StreamReader};

impl<T: KeyValueView> wit::Host for T {}

impl<T: KeyValueView> wit::HostStore for T {
    async fn drop(&mut self, store: Resource<Store>) -> wasmtime::Result<()> {
        self.key_value().table.delete(store)?;
        Ok(())
    }
}

/// The backend behind a guest handle, counted as `count` says; a handle not in the table is a
/// forged one, and traps.
fn backend<U, T: KeyValueView + 'static>(
    accessor: &Accessor<U, HasSelf<T>>,
    store: &Resource<Store>,
    count: fn(&crate::host_calls::HostCalls),
) -> wasmtime::Result<std::sync::Arc<super::stores::Backend>> {
    accessor.with(|mut access| {
        let KeyValueCtxView { ctx, table } = access.get().key_value();
        count(&ctx.calls);
        Ok(table.get(store)?.backend.clone())
    })
}

fn read(calls: &crate::host_calls::HostCalls) {
    calls.key_value_read();
}

fn write(calls: &crate::host_calls::HostCalls) {
    calls.key_value_write();
}

impl<U, T: KeyValueView + 'static> wit::HostStoreWithStore<U> for HasSelf<T> {
    async fn open(
        accessor: &Accessor<U, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<Store>, Error>> {
        accessor.with(|mut access| {
            let KeyValueCtxView { ctx, table } = access.get().key_value();
            ctx.calls.key_value_open();
            let backend = match ctx.stores.open(&label) {
                Ok(backend) => backend,
                Err(err) => return Ok(Err(err.into())),
            };
            Ok(table
                .push(Store { backend })
                .map_err(|_| Error::StoreTableFull))
        })
    }

    async fn get(
        accessor: &Accessor<U, Self>,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let backend = backend(accessor, &store, read)?;
        Ok(backend.get(key).await.map_err(Into::into))
    }

    async fn set(
        accessor: &Accessor<U, Self>,
        store: Resource<Store>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let backend = backend(accessor, &store, write)?;
        Ok(backend.set(key, value).await.map_err(Into::into))
    }

    async fn delete(
        accessor: &Accessor<U, Self>,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let backend = backend(accessor, &store, write)?;
        Ok(backend.delete(key).await.map_err(Into::into))
    }

    async fn exists(
        accessor: &Accessor<U, Self>,
        store: Resource<Store>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let backend = backend(accessor, &store, read)?;
        Ok(backend.exists(key).await.map_err(Into::into))
    }

    async fn get_keys(
        accessor: &Accessor<U, Self>,
        store: Resource<Store>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let backend = backend(accessor, &store, read)?;
        let (keys, outcome) = match backend.get_keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(err) => (Vec::new(), Err(err.into())),
        };
        accessor.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let outcome =
                FutureReader::new(
                    &mut access,
                    async move { Ok::<_, wasmtime::Error>(outcome) },
                )?;
            Ok((keys, outcome))
        })
    }
}

impl From<KeyValueError> for Error {
    fn from(err: KeyValueError) -> Self {
        match err {
            KeyValueError::NoSuchStore => Self::NoSuchStore,
            KeyValueError::AccessDenied => Self::AccessDenied,
            KeyValueError::Other(text) => Self::Other(text),
        }
    }
}
