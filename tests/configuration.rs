//! One list of settings, three places that must agree: the component's variable names, the
//! host's environment map and spin.toml's variables (declared and handed to the component).

#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use zoe_session::config::VARIABLE_NAMES;
use zoe_session_host::config::ENV_TO_VARIABLE;

/// `[section]`'s keys in spin.toml (a `key = …` line per entry; the file keeps one per line).
fn spin_toml_keys(section: &str) -> BTreeSet<String> {
    let manifest = include_str!("../spin.toml");
    let header = format!("[{section}]");
    let mut keys = BTreeSet::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside
            && !line.starts_with('#')
            && let Some((key, _)) = line.split_once('=')
        {
            keys.insert(key.trim().to_owned());
        }
    }
    keys
}

#[test]
fn the_component_the_host_and_spin_toml_know_the_same_settings() {
    let component: BTreeSet<String> = VARIABLE_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let host: BTreeSet<String> = ENV_TO_VARIABLE
        .iter()
        .map(|(_, variable)| (*variable).to_owned())
        .collect();
    assert_eq!(host, component, "the host's SESSION_* map");
    // `database_host` is the manifest's own: it templates `allowed_outbound_hosts`, which
    // Spin cannot read out of the (secret) URL.
    let mut declared = spin_toml_keys("variables");
    assert!(
        declared.remove("database_host"),
        "spin.toml declares database_host"
    );
    assert!(
        include_str!("../spin.toml")
            .contains(r#"allowed_outbound_hosts = ["postgres://{{ database_host }}"]"#),
        "database_host feeds allowed_outbound_hosts"
    );
    assert_eq!(declared, component, "spin.toml [variables]");
    assert_eq!(
        spin_toml_keys("component.zoe-session.variables"),
        component,
        "spin.toml [component.zoe-session.variables]"
    );
    // Every environment variable is SESSION_ plus the upper-cased name, except the seed's
    // SESSION_HEADER for session_header.
    for (env, variable) in ENV_TO_VARIABLE {
        let expected = match *variable {
            "session_header" => "SESSION_HEADER".to_owned(),
            other => format!("SESSION_{}", other.to_ascii_uppercase()),
        };
        assert_eq!(*env, expected);
    }
}

/// Positive control: the parser sees a missing or extra key.
#[test]
fn the_spin_toml_reader_sees_the_keys_it_compares() {
    let keys = spin_toml_keys("variables");
    assert!(
        keys.contains("admin_key") && keys.contains("max_per_user"),
        "{keys:?}"
    );
    assert!(
        !keys.contains("source"),
        "a key of another section leaked in"
    );
    assert!(spin_toml_keys("no.such.section").is_empty());
}
