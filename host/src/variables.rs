//! `fermyon:spin/variables@2.0.0`, answered from the host's configuration.
//!
//! As in Spin, names are lowercase letters, digits and underscores; a well-formed name that
//! is not configured is `undefined`, and the component then uses its default. The one
//! variable Spin's manifest composes from others, [`REQUEST_SETTINGS`], this host renders
//! from the settings it holds, as Spin renders spin.toml's template.

pub mod v3_0;

use crate::bindings::fermyon::spin::variables::{self as wit, Error};
use crate::host_calls::HostCalls;
use std::collections::BTreeMap;
use std::sync::Arc;
use zoe_session_config::REQUEST_SETTINGS;

/// Variable values by Spin variable name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Variables(BTreeMap<String, String>);

// Values may include the admin key, so only names are shown.
impl std::fmt::Debug for Variables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Variables {
    /// Sets `name` to `value`, replacing any earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Removes `name`, so the component uses its default.
    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    pub(crate) fn lookup(&self, name: &str) -> Result<String, Error> {
        let well_formed = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(Error::InvalidName(format!(
                "invalid variable name {name:?}"
            )));
        }
        if name == REQUEST_SETTINGS.variable && self.get(name).is_none() {
            return Ok(REQUEST_SETTINGS.render(|setting| self.get(setting).map(str::to_owned)));
        }
        self.get(name)
            .map(str::to_owned)
            .ok_or_else(|| Error::Undefined(format!("no variable named {name:?}")))
    }
}

/// One instance's `fermyon:spin/variables` state: the values, and the counter its reads are
/// counted in.
#[derive(Debug)]
pub struct VariablesCtx {
    variables: Arc<Variables>,
    calls: Arc<HostCalls>,
}

impl VariablesCtx {
    pub fn new(variables: Arc<Variables>, calls: Arc<HostCalls>) -> Self {
        Self { variables, calls }
    }

    /// The values this instance sees.
    pub fn variables(&self) -> &Arc<Variables> {
        &self.variables
    }
}

/// A store whose guest may import `fermyon:spin/variables`.
pub trait VariablesView: Send {
    fn variables(&mut self) -> &mut VariablesCtx;
}

// The linker hands the host `&mut T` (`HasSelf`).
impl<T: VariablesView + ?Sized> VariablesView for &mut T {
    fn variables(&mut self) -> &mut VariablesCtx {
        T::variables(self)
    }
}

impl<T: VariablesView> wit::Host for T {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        let ctx = self.variables();
        ctx.calls.variable_read();
        Ok(ctx.variables.lookup(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_variables_are_found_and_others_are_undefined() {
        let mut vars = Variables::default();
        vars.set("max_per_user", "3");
        assert!(matches!(vars.lookup("max_per_user"), Ok(v) if v == "3"));
        assert!(matches!(
            vars.lookup("min_timeout"),
            Err(Error::Undefined(_))
        ));
    }

    #[test]
    fn the_request_settings_are_rendered_from_the_settings_held() {
        let mut vars = Variables::default();
        vars.set("log_level", "DEBUG");
        vars.set("max_per_user", "3");
        let Ok(bundle) = vars.lookup(REQUEST_SETTINGS.variable) else {
            panic!("the bundle is always defined");
        };
        assert_eq!(
            bundle,
            "log_requests=\nlog_level=DEBUG\nrequire_https=\nsession_header=\nkey_value_store="
        );
        // Set explicitly, the variable is what it was set to.
        vars.set(REQUEST_SETTINGS.variable, "log_level=ERROR");
        assert!(matches!(vars.lookup(REQUEST_SETTINGS.variable), Ok(v) if v == "log_level=ERROR"));
    }

    #[test]
    fn malformed_names_are_invalid() {
        let vars = Variables::default();
        for name in ["", "Max", "9lives", "a-b", "a b"] {
            assert!(
                matches!(vars.lookup(name), Err(Error::InvalidName(_))),
                "{name:?}"
            );
        }
    }

    #[test]
    fn debug_shows_names_but_not_values() {
        let mut vars = Variables::default();
        vars.set("admin_key", "very-secret-admin-key");
        let shown = format!("{vars:?}");
        assert!(
            shown.contains("admin_key") && !shown.contains("very-secret"),
            "{shown}"
        );
    }
}
