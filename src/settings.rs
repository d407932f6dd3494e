//! The WASIp2 build's configuration: Spin variables through the synchronous
//! `fermyon:spin/variables@2.0.0`, each read when first needed and kept for the instance's
//! life (Spin gives every request a fresh instance, so a request reads only what it uses).

use crate::config::Config;
use crate::http::log;
use crate::instance::now_ms;
use std::rc::Rc;

thread_local! {
    // An instance may serve many calls (the native host reuses one); each setting is read on
    // first use and kept for the instance's life.
    static CONFIG: Rc<Config> = Rc::new(Config::from_lookup(variable));
}

/// The configuration from Spin variables, each read when first needed.
pub(crate) fn config() -> Rc<Config> {
    CONFIG.with(Rc::clone)
}

/// One Spin variable. Undeclared or undefined variables take their defaults; a provider
/// failure also falls back rather than taking the service down, and is logged.
fn variable(name: &'static str) -> Option<String> {
    match spin_sdk::variables::get(name) {
        Ok(value) => Some(value),
        Err(err) => {
            if !matches!(
                err,
                spin_sdk::variables::Error::Undefined(_)
                    | spin_sdk::variables::Error::InvalidName(_)
            ) {
                log::variable_provider_failed(now_ms(), name);
            }
            None
        }
    }
}
