//! Building a component for `wasm32-wasip2` from a build script: the one copy shared by
//! host/build.rs (the embedded zoe-session), compose/build.rs (the gate, the chat app) and
//! bench/build.rs (the trivial component), each including it with `#[path]`.
//!
//! The nested cargo uses a target directory of its own under the workspace's `target/`, so it
//! never waits on the lock held by the cargo invocation running the build script.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// Runs `cargo build --release --locked --target wasm32-wasip2 ARGS` in `dir` with
/// `target_dir`, and returns the path of `ARTEFACT.wasm`.
///
/// # Panics
///
/// When cargo cannot run, the build fails (naming `rustup target add` as the likely fix) or
/// the artefact is missing: a build script has no other way to fail.
pub fn build(dir: &Path, args: &[&str], target_dir: &Path, artefact: &str) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .args(args)
        .arg("--target-dir")
        .arg(target_dir)
        // The outer build's flags and profile are for the host; components have their own.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG")
        // Under `cargo clippy` the outer build lints; components are linted by their own runs,
        // so the nested build must be a plain build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CLIPPY_CONF_DIR")
        .status()
        .unwrap_or_else(|err| panic!("cannot run cargo for {}: {err}", dir.display()));
    assert!(
        status.success(),
        "building {} for {TARGET} failed (see the output above); is the target installed? \
         `rustup target add {TARGET}`",
        dir.display()
    );
    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{artefact}.wasm"));
    assert!(
        wasm.exists(),
        "cargo succeeded but {} is missing",
        wasm.display()
    );
    wasm
}

/// The workspace's target directory (`CARGO_TARGET_DIR`, else `WORKSPACE/target`).
pub fn target_dir(workspace: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
}
