//! Builds the zoe-session component (the workspace's root package) for `wasm32-wasip2` and
//! hands its path to the host crate, which embeds it with `include_bytes!`. A fresh clone
//! therefore needs nothing but the wasm target: `cargo build` or `cargo test` builds both.
//!
//! The nested cargo uses its own target directory under the workspace's `target/` so it never
//! waits on the lock held by the cargo invocation that runs this script.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace root");
    for input in ["src", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=ZOE_SESSION_WASM");

    // Packagers and CI may supply a prebuilt component instead.
    if let Some(prebuilt) = env::var_os("ZOE_SESSION_WASM") {
        println!(
            "cargo:rustc-env=ZOE_SESSION_WASM={}",
            Path::new(&prebuilt).display()
        );
        return;
    }

    require_wasm_target();

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("component");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "zoe-session",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags and profile are for the host; the component has its own.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG")
        // Under `cargo clippy` the outer build lints; the embedded component is linted by its
        // own clippy run, so the nested build must be a plain build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CLIPPY_CONF_DIR")
        .status()
        .expect("failed to run cargo to build the zoe-session component");
    if !status.success() {
        panic!("building the zoe-session component for {TARGET} failed (see the output above)");
    }
    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join("zoe_session.wasm");
    assert!(
        wasm.exists(),
        "cargo succeeded but {} is missing",
        wasm.display()
    );
    println!("cargo:rustc-env=ZOE_SESSION_WASM={}", wasm.display());
}

/// Fails early, with the one command that fixes it, when the wasm target is not installed.
fn require_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if !libdir.is_some_and(|dir| dir.exists()) {
        panic!(
            "\n\nThe Rust target {TARGET} is not installed; the zoe-session component cannot be \
             built.\nInstall it once with:\n\n    rustup target add {TARGET}\n\n"
        );
    }
}
