//! Configuration parsing: arbitrary `name=value` lines (the Spin variables) either give a
//! configuration that keeps every documented invariant or an error naming a real variable.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use zoe_session::config::{Config, VARIABLE_NAMES};

fuzz_target!(|text: &str| {
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    match Config::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned())) {
        Ok(config) => {
            assert!(config.min_timeout <= config.default_timeout);
            assert!(config.default_timeout <= config.max_timeout);
            assert!(config.max_per_user >= 1);
            assert!(!config.session_header.is_empty());
            assert!(config.admin_key.as_ref().is_none_or(|key| key.len() >= 16));
            // The admin key never reaches Debug output.
            if config.admin_key.is_some() {
                assert!(format!("{config:?}").contains(r#"admin_key: Some("<redacted>")"#));
            }
        }
        Err(err) => assert!(VARIABLE_NAMES.contains(&err.name), "{err}"),
    }
});
