//! One table of settings (the `zoe-session-config` crate), and the places that must agree with
//! it: the host's environment map, and spin.toml's variables (declared with the table's
//! defaults and secrecy, and handed to the component one by one or in the request bundle).

use std::collections::BTreeMap;
use zoe_session::config::{REQUEST_SETTINGS, SETTINGS};
use zoe_session_host::config::env_to_variable;

/// The `key = value` lines of `[section]` in spin.toml (the file keeps one per line), values
/// as written.
fn spin_toml_section(section: &str) -> BTreeMap<String, String> {
    let manifest = include_str!("../../spin.toml");
    let header = format!("[{section}]");
    let mut entries = BTreeMap::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside
            && !line.starts_with('#')
            && let Some((key, value)) = line.split_once(" = ")
        {
            entries.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    entries
}

/// A TOML basic string's text: `"a\nb"` as written is `a`, newline, `b`.
fn basic_string(written: &str) -> String {
    let inner = written
        .strip_prefix('"')
        .and_then(|w| w.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a one-line basic string: {written}"));
    inner.replace("\\n", "\n")
}

#[test]
fn spin_toml_declares_every_setting_with_its_default_and_secrecy() {
    let mut declared = spin_toml_section("variables");
    // `database_host` is the manifest's own: it templates `allowed_outbound_hosts`, which
    // Spin cannot read out of the (secret) URL.
    assert!(declared.remove("database_host").is_some());
    assert!(
        include_str!("../../spin.toml")
            .contains(r#"allowed_outbound_hosts = ["postgres://{{ database_host }}"]"#),
        "database_host feeds allowed_outbound_hosts"
    );
    let names: Vec<&str> = declared.keys().map(String::as_str).collect();
    let mut table: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
    table.sort_unstable();
    assert_eq!(names, table, "spin.toml's [variables] are the table's");
    for setting in SETTINGS {
        let written = &declared[setting.name];
        let expected = if setting.secret {
            format!(r#"{{ default = "{}", secret = true }}"#, setting.default)
        } else {
            format!(r#"{{ default = "{}" }}"#, setting.default)
        };
        assert_eq!(*written, expected, "spin.toml's {}", setting.name);
    }
}

#[test]
fn spin_toml_hands_the_component_every_setting_once() {
    let mut handed = spin_toml_section("component.zoe-session.variables");
    let bundle = handed
        .remove(REQUEST_SETTINGS.variable)
        .expect("spin.toml templates the request bundle");
    assert_eq!(basic_string(&bundle), REQUEST_SETTINGS.template());
    let expected: BTreeMap<String, String> = SETTINGS
        .iter()
        .filter(|s| !REQUEST_SETTINGS.settings.contains(&s.name))
        .map(|s| (s.name.to_owned(), format!("\"{{{{ {} }}}}\"", s.name)))
        .collect();
    assert_eq!(handed, expected);
}

/// spin-wasip2.toml (the WASIp2 build, for Spin 4.0) is spin.toml (the WASIp3 build) but for
/// the component's source and build: the same variables, grants and route, so that the tests
/// above hold for both.
#[test]
fn spin_wasip2_toml_is_spin_toml_but_for_the_build() {
    fn settings(manifest: &str) -> Vec<&str> {
        manifest
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .filter(|line| {
                !["source =", "command =", "watch ="]
                    .iter()
                    .any(|key| line.starts_with(key))
            })
            .collect()
    }
    let wasip3 = include_str!("../../spin.toml");
    let wasip2 = include_str!("../../spin-wasip2.toml");
    assert_eq!(settings(wasip3), settings(wasip2));
    // Positive control: the build lines, left out above, differ and name each build.
    assert!(wasip3.contains("\nsource = \"target/wasm32-wasip2/release/zoe_session_p3.wasm\""));
    assert!(wasip3.contains("--release -p zoe-session-p3\""));
    assert!(wasip2.contains("\nsource = \"target/wasm32-wasip2/release/zoe_session.wasm\""));
    assert!(wasip2.contains("--release -p zoe-session\""));
    assert!(
        settings(wasip3).len() > 50,
        "the comparison sees the manifest's lines"
    );
}

#[test]
fn the_host_reads_each_setting_from_its_environment_variable() {
    let host: Vec<(&str, &str)> = env_to_variable().collect();
    let table: Vec<(&str, &str)> = SETTINGS.iter().map(|s| (s.env, s.name)).collect();
    assert_eq!(host, table);
    assert!(host.contains(&("SESSION_HEADER", "session_header")));
}

/// Positive control: the reader sees entries, their values, and nothing of other sections.
#[test]
fn the_spin_toml_reader_sees_what_it_compares() {
    let variables = spin_toml_section("variables");
    assert_eq!(
        variables.get("max_per_user").map(String::as_str),
        Some(r#"{ default = "10" }"#)
    );
    assert!(
        !variables.contains_key("source"),
        "another section leaked in"
    );
    assert!(spin_toml_section("no.such.section").is_empty());
    assert_eq!(basic_string(r#""a\nb""#), "a\nb");
}

/// The Node package keeps its own copy of the environment map (it is JavaScript); it must be
/// this table, entry for entry, with the same request bundle.
#[test]
fn the_node_package_maps_the_same_environment_variables() {
    let source = include_str!("../../node/src/config.js");
    let entries: Vec<(String, String)> = source
        .lines()
        .map(str::trim)
        .filter_map(|line| {
            let (name, env) = line.strip_suffix(',')?.split_once(": ")?;
            let env = env.strip_prefix('"')?.strip_suffix('"')?;
            env.starts_with("SESSION_")
                .then(|| (name.to_owned(), env.to_owned()))
        })
        .collect();
    let table: Vec<(String, String)> = SETTINGS
        .iter()
        .map(|s| (s.name.to_owned(), s.env.to_owned()))
        .collect();
    assert_eq!(entries, table, "node/src/config.js VARIABLE_TO_ENV");
    let bundle = format!(
        "settings: Object.freeze([{}])",
        REQUEST_SETTINGS
            .settings
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        source.contains(&bundle),
        "node/src/config.js lacks `{bundle}`"
    );
    assert!(source.contains(&format!("variable: \"{}\"", REQUEST_SETTINGS.variable)));
}

/// Where the settings table of the documentation lives.
const SETTINGS_DOC: &str = "docs/configuration.md";

/// The documentation's table of settings is the one `markdown_table` renders from the
/// `settings!` table, between its two markers: a setting added, renamed or given another
/// default or meaning in `config/src/lib.rs` fails here until the docs say the same.
#[test]
fn the_documented_settings_table_is_the_code_s() {
    let path = format!("{}/{SETTINGS_DOC}", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&path).expect("the settings document");
    let table = doc
        .split_once("<!-- settings table: generated from config/src/lib.rs -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- end of settings table -->"))
        .map(|(table, _)| table)
        .unwrap_or_else(|| panic!("{SETTINGS_DOC} has no settings table markers"));
    let expected = zoe_session::config::markdown_table();
    assert!(
        table == expected,
        "{SETTINGS_DOC}'s settings table differs from the code's; replace it with:\n{expected}"
    );
    // The check sees a table: every setting has its row.
    for setting in SETTINGS {
        assert!(table.contains(&format!("| `{}`", setting.name)));
    }
}
