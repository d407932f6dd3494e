//! The WASIp3 build's configuration. `spin:variables@3.0.0` has only an async `get`, and a
//! reused instance serves many requests, so the first request reads every variable the
//! configuration can use, all at once (each `get` cost 50–270 µs on Spin when measured, issue
//! 30), before the synchronous core runs; the parsed settings then live as long as the
//! instance. The secrets (admin key, database URL) are among them: a reused instance keeps
//! them in memory from its first request rather than from its first privileged one.

use crate::bindings::spin::variables::variables::{Error, get};
use crate::config::{Config, REQUEST_SETTINGS, VARIABLE_NAMES};
use crate::http::log;
use crate::instance::now_ms;
use futures::future::join_all;
use std::cell::OnceCell;
use std::rc::Rc;

thread_local! {
    static CONFIG: OnceCell<Rc<Config>> = const { OnceCell::new() };
}

/// The instance's configuration, read on the first call.
///
/// Requests that start together on a fresh instance may each read the variables; the first
/// to finish is kept, and they all read the same values.
pub(crate) async fn load() -> Rc<Config> {
    if let Some(config) = CONFIG.with(|slot| slot.get().cloned()) {
        return config;
    }
    let names = VARIABLE_NAMES
        .iter()
        .copied()
        .chain([REQUEST_SETTINGS.variable]);
    let values: Vec<(&'static str, Option<String>)> =
        join_all(names.map(|name| async move { (name, variable(name).await) })).await;
    let config = Rc::new(Config::from_lookup(move |name| {
        values
            .iter()
            .find(|(read, _)| *read == name)
            .and_then(|(_, value)| value.clone())
    }));
    CONFIG.with(|slot| slot.get_or_init(|| config).clone())
}

/// The configuration for the synchronous `sessions` export, which cannot await: read by
/// [`load`] under `block_on` when no HTTP request has read it yet. Wasmtime lets a
/// synchronous export wait only once it has returned (`CannotBlockSyncTask`), so this works
/// while the host answers `get` without suspending, as Spin's and our host's variable
/// providers do for values they hold; a provider that suspends (a remote vault) traps the
/// call, and such a deployment must let an HTTP request come first.
pub(crate) fn config() -> Rc<Config> {
    CONFIG
        .with(|slot| slot.get().cloned())
        .unwrap_or_else(|| spin_sdk::wit_bindgen::block_on(load()))
}

/// One Spin variable. Undeclared or undefined variables take their defaults; a provider
/// failure also falls back rather than taking the service down, and is logged.
async fn variable(name: &'static str) -> Option<String> {
    match get(name.to_owned()).await {
        Ok(value) => Some(value),
        Err(Error::Undefined(_) | Error::InvalidName(_)) => None,
        Err(_) => {
            log::variable_provider_failed(now_ms(), name);
            None
        }
    }
}
