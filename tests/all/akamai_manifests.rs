//! The Akamai Functions manifests (`deploy/akamai/`), read as TOML the way Spin reads them: each
//! declares every setting of the table (with its default and secrecy, or as required where a
//! deployment must choose), hands each to the component as spin.toml does, builds and loads the
//! same `.wasm` as spin-wasip2.toml (the WASIp2 build: the WASIp3 build of spin.toml serves no
//! key-value store yet), and grants only what Akamai Functions has: the key-value store, or the
//! one PostgreSQL server; never a SQLite database, which the platform does not offer.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use toml_edit::{DocumentMut, Item, Value};
use zoe_session::config::{REQUEST_SETTINGS, SETTINGS};

/// A manifest, by its path from the repository root and its text.
struct Manifest {
    path: &'static str,
    text: &'static str,
}

/// spin.toml but for the component's build (`tests/all/configuration.rs` holds them so).
const ROOT: Manifest = Manifest {
    path: "spin-wasip2.toml",
    text: include_str!("../../spin-wasip2.toml"),
};

const AKAMAI_KEY_VALUE: Manifest = Manifest {
    path: "deploy/akamai/spin.toml",
    text: include_str!("../../deploy/akamai/spin.toml"),
};

const AKAMAI_POSTGRES: Manifest = Manifest {
    path: "deploy/akamai/spin-postgres.toml",
    text: include_str!("../../deploy/akamai/spin-postgres.toml"),
};

/// The one component of every manifest here.
const COMPONENT: &str = "zoe-session";

/// A `[variables]` entry as Spin reads it: `{ default = "…" }` or `{ required = true }`, either
/// with `secret = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Declared {
    default: Option<String>,
    required: bool,
    secret: bool,
}

impl Declared {
    fn default(value: &str, secret: bool) -> Self {
        Self {
            default: Some(value.to_owned()),
            required: false,
            secret,
        }
    }

    fn required(secret: bool) -> Self {
        Self {
            default: None,
            required: true,
            secret,
        }
    }
}

impl Manifest {
    fn document(&self) -> DocumentMut {
        self.text
            .parse()
            .unwrap_or_else(|err| panic!("{} is not valid TOML: {err}", self.path))
    }

    fn variables(&self) -> BTreeMap<String, Declared> {
        let document = self.document();
        let table = document
            .get("variables")
            .and_then(Item::as_table)
            .unwrap_or_else(|| panic!("{} has no [variables] table", self.path));
        table
            .iter()
            .map(|(name, item)| {
                let entry = item.as_inline_table().unwrap_or_else(|| {
                    panic!("{}: variable {name} is not an inline table", self.path)
                });
                for key in entry.iter().map(|(key, _)| key) {
                    assert!(
                        ["default", "required", "secret"].contains(&key),
                        "{}: variable {name} has `{key}`, which Spin does not know",
                        self.path
                    );
                }
                let flag = |key| entry.get(key).and_then(Value::as_bool).unwrap_or(false);
                let declared = Declared {
                    default: entry
                        .get("default")
                        .map(|v| v.as_str().expect("a string default").to_owned()),
                    required: flag("required"),
                    secret: flag("secret"),
                };
                // Spin refuses a variable with both, or with neither.
                assert!(
                    declared.default.is_some() != declared.required,
                    "{}: variable {name} must have a default or be required, not both",
                    self.path
                );
                (name.to_owned(), declared)
            })
            .collect()
    }

    /// `[component.zoe-session]`.
    fn component(&self) -> toml_edit::Table {
        self.document()
            .get("component")
            .and_then(|c| c.get(COMPONENT))
            .and_then(Item::as_table)
            .unwrap_or_else(|| panic!("{} has no [component.{COMPONENT}]", self.path))
            .clone()
    }

    /// A string-array field of the component; empty when absent.
    fn component_list(&self, field: &str) -> Vec<String> {
        match self.component().get(field) {
            None => Vec::new(),
            Some(item) => item
                .as_array()
                .unwrap_or_else(|| panic!("{}: {field} is not an array", self.path))
                .iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect(),
        }
    }

    fn component_str(&self, path: &[&str]) -> String {
        let mut current = Item::Table(self.component());
        for key in path {
            current = current
                .get(*key)
                .unwrap_or_else(|| panic!("{}: no {}", self.path, path.join(".")))
                .clone();
        }
        current
            .as_str()
            .unwrap_or_else(|| panic!("{}: {} is not a string", self.path, path.join(".")))
            .to_owned()
    }

    /// The SQLite databases the component is granted: Spin's `sqlite_databases`.
    fn sqlite_grants(&self) -> Vec<String> {
        self.component_list("sqlite_databases")
    }

    /// `[component.zoe-session.variables]`, values as the TOML strings say.
    fn handed(&self) -> BTreeMap<String, String> {
        let component = self.component();
        component
            .get("variables")
            .and_then(Item::as_table)
            .unwrap_or_else(|| panic!("{} hands the component no variables", self.path))
            .iter()
            .map(|(name, item)| {
                let value = item.as_str().unwrap_or_else(|| {
                    panic!("{}: component variable {name} is not a string", self.path)
                });
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }

    /// A path the manifest names, relative to the manifest's own directory (as Spin resolves
    /// `source` and `build.workdir`), from the repository root.
    fn resolve(&self, relative: &str) -> PathBuf {
        let base = Path::new(self.path).parent().expect("a file path");
        let mut resolved = PathBuf::new();
        for part in base.join(relative).components() {
            match part {
                Component::ParentDir => assert!(
                    resolved.pop(),
                    "{}: {relative} leaves the repository",
                    self.path
                ),
                Component::CurDir => {}
                other => resolved.push(other),
            }
        }
        resolved
    }
}

/// What every manifest declares for each setting: the table's default and secrecy.
fn table_declarations() -> BTreeMap<String, Declared> {
    SETTINGS
        .iter()
        .map(|s| (s.name.to_owned(), Declared::default(s.default, s.secret)))
        .collect()
}

/// What every manifest hands the component: the request bundle and each other setting.
fn table_handed() -> BTreeMap<String, String> {
    let mut handed: BTreeMap<String, String> = SETTINGS
        .iter()
        .filter(|s| !REQUEST_SETTINGS.settings.contains(&s.name))
        .map(|s| (s.name.to_owned(), format!("{{{{ {} }}}}", s.name)))
        .collect();
    handed.insert(
        REQUEST_SETTINGS.variable.to_owned(),
        REQUEST_SETTINGS.template(),
    );
    handed
}

#[test]
fn the_key_value_manifest_declares_every_setting_and_selects_the_granted_store() {
    let mut expected = table_declarations();
    // A deployment on the internet has no use without its admin key: Spin (and `spin aka
    // deploy`) refuse to start it until one is given.
    expected.insert("admin_key".into(), Declared::required(true));
    expected.insert(
        "key_value_store".into(),
        Declared::default("default", false),
    );
    // A cleanup reads every stored session, which Akamai's read budget pays for
    // (docs/key-value.md): an hour between them rather than five minutes.
    expected.insert("cleanup_interval".into(), Declared::default("3600", false));
    assert_eq!(AKAMAI_KEY_VALUE.variables(), expected);
    // The store the component opens is the one the manifest grants.
    assert_eq!(
        AKAMAI_KEY_VALUE.component_list("key_value_stores"),
        vec!["default".to_owned()]
    );
}

#[test]
fn the_postgres_manifest_declares_every_setting_and_requires_its_server() {
    let mut expected = table_declarations();
    expected.insert("admin_key".into(), Declared::required(true));
    expected.insert("database_url".into(), Declared::required(true));
    // The manifest's own: it templates `allowed_outbound_hosts`, which Spin cannot read out
    // of the secret URL.
    expected.insert("database_host".into(), Declared::required(false));
    assert_eq!(AKAMAI_POSTGRES.variables(), expected);
    assert_eq!(
        AKAMAI_POSTGRES.component_list("allowed_outbound_hosts"),
        vec!["postgres://{{ database_host }}".to_owned()]
    );
    assert!(
        AKAMAI_POSTGRES
            .component_list("key_value_stores")
            .is_empty()
    );
}

#[test]
fn the_akamai_manifests_grant_no_sqlite_and_no_other_outbound_host() {
    for manifest in [&AKAMAI_KEY_VALUE, &AKAMAI_POSTGRES] {
        assert_eq!(
            manifest.sqlite_grants(),
            Vec::<String>::new(),
            "{}: Akamai Functions has no SQLite",
            manifest.path
        );
    }
    assert!(
        AKAMAI_KEY_VALUE
            .component_list("allowed_outbound_hosts")
            .is_empty(),
        "the key-value deployment calls out to nothing"
    );
    // Positive control: the same reader sees spin.toml's grant of the `default` database.
    assert_eq!(ROOT.sqlite_grants(), vec!["default".to_owned()]);
}

#[test]
fn the_akamai_manifests_hand_the_component_every_setting_once() {
    for manifest in [&AKAMAI_KEY_VALUE, &AKAMAI_POSTGRES] {
        assert_eq!(manifest.handed(), table_handed(), "{}", manifest.path);
    }
}

#[test]
fn the_akamai_manifests_build_and_load_the_same_component_as_spin_toml() {
    let root_source = ROOT.resolve(&ROOT.component_str(&["source"]));
    let root_command = ROOT.component_str(&["build", "command"]);
    for manifest in [&AKAMAI_KEY_VALUE, &AKAMAI_POSTGRES] {
        assert_eq!(
            manifest.resolve(&manifest.component_str(&["source"])),
            root_source,
            "{} loads another file",
            manifest.path
        );
        assert_eq!(
            manifest.component_str(&["build", "command"]),
            root_command,
            "{}",
            manifest.path
        );
        assert_eq!(
            manifest.resolve(&manifest.component_str(&["build", "workdir"])),
            PathBuf::new(),
            "{} builds from the repository root",
            manifest.path
        );
        let document = manifest.document();
        let triggers = document["trigger"]["http"]
            .as_array_of_tables()
            .expect("[[trigger.http]]");
        let routes: Vec<(&str, &str)> = triggers
            .iter()
            .map(|t| {
                (
                    t["route"].as_str().expect("a route"),
                    t["component"].as_str().expect("a component"),
                )
            })
            .collect();
        assert_eq!(routes, [("/...", COMPONENT)], "{}", manifest.path);
    }
}

/// Positive controls for the reader: it sees defaults, requirements and secrecy as written,
/// refuses what is not TOML, and resolves paths as Spin does.
#[test]
fn the_manifest_reader_sees_what_it_compares() {
    let root = ROOT.variables();
    assert_eq!(root["max_per_user"], Declared::default("10", false));
    assert_eq!(root["admin_key"], Declared::default("", true));
    assert_eq!(
        AKAMAI_POSTGRES.variables()["database_url"],
        Declared::required(true)
    );
    let broken = Manifest {
        path: "broken.toml",
        text: "[variables]\nadmin_key = { default = \"\" ",
    };
    let refused = std::panic::catch_unwind(|| broken.document());
    assert!(refused.is_err(), "unterminated inline table accepted");
    assert_eq!(
        AKAMAI_KEY_VALUE.resolve("../../target/x.wasm"),
        PathBuf::from("target/x.wasm")
    );
}
