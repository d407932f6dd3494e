//! The built component's outer shape: what it exports and the only things it imports. This is
//! what `wasm-tools component wit` shows, checked on every test run.

use crate::support as common;

use std::collections::BTreeSet;

fn names<'a>(items: impl Iterator<Item = (&'a str, impl Sized)>) -> BTreeSet<String> {
    items.map(|(name, _)| name.to_owned()).collect()
}

#[test]
fn exports_the_sessions_interface() {
    let runtime = common::runtime();
    let ty = runtime.component().component_type();
    let exports = names(ty.exports(runtime.engine()));
    assert!(
        exports.contains("zoe:session/sessions@0.2.0"),
        "{exports:?}"
    );
    for name in &exports {
        assert!(
            name == "zoe:session/sessions@0.2.0"
                || name.starts_with("wasi:http/incoming-handler@0.2."),
            "unexpected export {name}"
        );
    }
}

#[test]
fn imports_only_spin_sqlite_spin_postgres_spin_key_value_spin_variables_and_wasi_0_2() {
    let runtime = common::runtime();
    let ty = runtime.component().component_type();
    let imports = names(ty.imports(runtime.engine()));
    assert!(imports.contains("spin:sqlite/sqlite@3.0.0"), "{imports:?}");
    assert!(
        imports.contains("spin:postgres/postgres@4.0.0"),
        "{imports:?}"
    );
    assert!(
        imports.contains("fermyon:spin/variables@2.0.0"),
        "{imports:?}"
    );
    // spin-sdk 5.2's key-value, which Spin 4.0 and later provide.
    assert!(
        imports.contains("fermyon:spin/key-value@2.0.0"),
        "{imports:?}"
    );
    for name in &imports {
        let allowed = name == "spin:sqlite/sqlite@3.0.0"
            || name == "spin:postgres/postgres@4.0.0"
            || name == "fermyon:spin/key-value@2.0.0"
            || name == "fermyon:spin/variables@2.0.0"
            || (name.starts_with("wasi:") && name.contains("@0.2."));
        assert!(allowed, "unexpected import {name}");
    }
}

/// The WASIp3 build imports its store interfaces as Spin 4.1 names them, and the synchronous
/// `fermyon:spin/key-value@2.0.0` (Spin links every version for every component) for the
/// synchronous engine, with the async `spin:key-value@3.0.0` beside it only for the reads a
/// validate makes ahead, together; the rest is WASI (0.2 and 0.3, from spin-sdk 7).
#[test]
fn the_wasip3_build_imports_the_synchronous_key_value_interface() {
    let runtime = zoe_test_support::Build::Wasip3.runtime();
    let ty = runtime.component().component_type();
    let imports = names(ty.imports(runtime.engine()));
    for name in [
        "spin:sqlite/sqlite@3.1.0",
        "spin:postgres/postgres@4.2.0",
        "spin:variables/variables@3.0.0",
        "fermyon:spin/key-value@2.0.0",
        "spin:key-value/key-value@3.0.0",
    ] {
        assert!(imports.contains(name), "{name} missing: {imports:?}");
    }
    for name in &imports {
        assert!(
            name.starts_with("wasi:")
                || name.starts_with("spin:")
                || name == "fermyon:spin/key-value@2.0.0",
            "unexpected import {name}"
        );
    }
}
