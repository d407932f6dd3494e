//! The Node.js package in `node/`: the very component the native host embeds, transpiled by
//! jco and run by Node's own test runner (`npm test`: the README walkthrough over loopback
//! HTTP, bad input, the per-user limit under concurrent creates, every `sessions` function
//! in process, and the package's spin:sqlite / variables / postgres imports).
//!
//! Needs Node.js 20 or newer and npm. It runs `npm ci` in `node/` when its `node_modules` is
//! missing (every dependency, libsql's SQLite binary included, comes from the npm registry),
//! then `npm test` with `ZOE_SESSION_WASM` naming a copy of
//! `zoe_session_host::runtime::EMBEDDED_COMPONENT`.

use std::path::Path;
use std::process::{Command, Output};
use zoe_test_support::describe_output;

#[test]
fn the_node_package_passes_its_tests_on_the_embedded_component() {
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let wasm = dir.path().join("zoe_session.wasm");
    std::fs::write(&wasm, zoe_session_host::runtime::EMBEDDED_COMPONENT)
        .expect("the component is written");

    if !package.join("node_modules/@bytecodealliance/jco").exists()
        || !package.join("node_modules/libsql").exists()
    {
        let output = run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&package));
        assert!(
            output.status.success(),
            "npm ci in node/ failed:\n{}",
            describe_output(&output)
        );
    }

    let output = run(Command::new("npm")
        .arg("test")
        .current_dir(&package)
        .env("ZOE_SESSION_WASM", &wasm)
        .env_remove("NODE_OPTIONS"));
    assert!(
        output.status.success(),
        "npm test in node/ failed:\n{}",
        describe_output(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The run did test something: Node's runner reports its counts.
    assert!(
        stdout.contains("ℹ fail 0") && !stdout.contains("ℹ pass 0"),
        "npm test ran no test:\n{}",
        describe_output(&output)
    );
}

fn run(command: &mut Command) -> Output {
    let program = format!("{:?}", command.get_program());
    command.output().unwrap_or_else(|err| {
        panic!("cannot run {program}: {err} (are Node.js and npm installed?)")
    })
}
