//! Reads ahead, for the WASIp3 build and the session middleware (which includes this file):
//! the key-value keys the core names for a request (`http::key_value_reads_ahead` in the
//! build, `decide::key_value_reads_ahead` in the middleware: a validate's lookup keys), read
//! through the async `spin:key-value@3.0.0` before the synchronous core runs, the lookup keys
//! at once and then the slot their record names. A validate on Redis then waits for two round
//! trips instead of five, and none of them stops the instance's other requests, as each
//! synchronous host call does (`store::kv::read_ahead` says why reading ahead is safe). The
//! instance remembers each session's slot (`SlotMemo`), so the same session's next validate
//! here reads its slot with the four keys: one round trip. The
//! store is opened once per instance on the label the settings name, beside the synchronous
//! handle the engine keeps (`instance`).
//!
//! A failure to open or read is not reported here: the value is handed over as the error it
//! is (the engine's first read of that key answers it, as its own read would have), or, for a
//! store that cannot be opened, nothing is read ahead and the engine's own open reports it.

use crate::bindings::key_value_async::{Error, Store};
use crate::config::{Backend, Config};
use crate::store::StoreError;
use crate::store::kv::read_ahead::{ReadAhead, ReadOutcome, SlotMemo};
use futures::future::join_all;
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    // The instance's async handle on the store, with its label (the settings live as long as
    // the instance, so the label does not change; kept to be sure).
    static STORE: RefCell<Option<(String, Rc<Store>)>> = const { RefCell::new(None) };
    // The slot each session validated on this instance named: a hint, public ids only.
    static SLOTS: RefCell<SlotMemo> = RefCell::new(SlotMemo::default());
}

/// The values of `keys`, read concurrently; empty when there are none or the store will not
/// open.
pub(crate) async fn fetch(config: &Config, keys: Vec<String>) -> ReadAhead {
    if keys.is_empty() {
        return ReadAhead::default();
    }
    let Ok(Backend::KeyValue(label)) = config.backend() else {
        return ReadAhead::default();
    };
    let Some(store) = store(label).await else {
        return ReadAhead::default();
    };
    let first = SLOTS.with(|memo| memo.borrow().first_round(keys));
    let mut ahead = ReadAhead::new(read_all(&store, first).await);
    // The second round: the slot the record names, unless the first round read it.
    let follow_up = SLOTS.with(|memo| memo.borrow_mut().second_round(&ahead));
    if !follow_up.is_empty() {
        ahead.extend(read_all(&store, follow_up).await);
    }
    ahead
}

/// `keys`' values, all read at once.
async fn read_all(store: &Rc<Store>, keys: Vec<String>) -> Vec<(String, ReadOutcome)> {
    join_all(keys.into_iter().map(|key| {
        let store = store.clone();
        async move {
            let value = store.get(key.clone()).await.map_err(store_error);
            (key, value)
        }
    }))
    .await
}

async fn store(label: &str) -> Option<Rc<Store>> {
    let open = STORE.with(|slot| {
        slot.borrow()
            .as_ref()
            .filter(|(open, _)| open == label)
            .map(|(_, store)| store.clone())
    });
    if open.is_some() {
        return open;
    }
    let store = Rc::new(Store::open(label.to_owned()).await.ok()?);
    STORE.with(|slot| *slot.borrow_mut() = Some((label.to_owned(), store.clone())));
    Some(store)
}

/// As the synchronous executor converts its errors (`spin_key_value`): the store cannot
/// serve us now. The two interfaces' error variants are the same.
fn store_error(err: Error) -> StoreError {
    use crate::bindings::key_value::Error as Sync;
    crate::spin_key_value::store_error(match err {
        Error::Other(text) => Sync::Other(text),
        Error::StoreTableFull => Sync::StoreTableFull,
        Error::AccessDenied => Sync::AccessDenied,
        Error::NoSuchStore => Sync::NoSuchStore,
    })
}
