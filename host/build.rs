//! Builds the zoe-session component (the workspace's root package) for `wasm32-wasip2` and
//! hands its path to the host crate, which embeds it with `include_bytes!`. A fresh clone
//! therefore needs nothing but the wasm target: `cargo build` or `cargo test` builds both.
//! The nested build is `build-support/wasm_component.rs`, shared with the other build scripts.

#[path = "../build-support/wasm_component.rs"]
mod wasm_component;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use wasm_component::TARGET;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace root");
    for input in [
        "src",
        "core",
        "config",
        "wire",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        "build-support/wasm_component.rs",
    ] {
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

    // The same command and target directory as compose/build.rs, so the two share the build.
    let wasm = wasm_component::build(
        workspace,
        &["-p", "zoe-session"],
        &wasm_component::target_dir(workspace).join("component"),
        "zoe_session",
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
