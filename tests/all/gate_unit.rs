//! The gate's own unit tests (its path rules and configuration). The gate is a separate
//! workspace, built only for `wasm32-wasip2` inside the root build, so its native unit tests
//! run here, through cargo, to keep the README's one test command running every test.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_gates_unit_tests_pass() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("gate-native");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root.join("gate"))
        .args(["test", "--locked", "--target-dir"])
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the gate's tests failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // They ran, not merely compiled: the summary names a passing count above zero.
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("test result: ok.") && !line.contains(" 0 passed")),
        "{stdout}"
    );
}
