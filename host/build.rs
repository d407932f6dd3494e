//! Builds the zoe-session component (the workspace's root package) for `wasm32-wasip2` and
//! hands its path to the host crate, which embeds it with `include_bytes!`; and its WASIp3
//! build (`p3/`, package zoe-session-p3), whose path the host names for tests, benchmarks and
//! `serve --component`. A fresh clone therefore needs nothing but the wasm target: `cargo
//! build` or `cargo test` builds all three.
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
        "p3",
        "host/wit",
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
    // Packagers and CI may supply prebuilt components instead.
    for (variable, package, artefact) in [
        // The same command and target directory as compose/build.rs, so the two share the build.
        ("ZOE_SESSION_WASM", "zoe-session", "zoe_session"),
        ("ZOE_SESSION_P3_WASM", "zoe-session-p3", "zoe_session_p3"),
    ] {
        println!("cargo:rerun-if-env-changed={variable}");
        let wasm = match env::var_os(variable) {
            Some(prebuilt) => PathBuf::from(prebuilt),
            None => {
                require_wasm_target();
                wasm_component::build(
                    workspace,
                    &["-p", package],
                    &wasm_component::target_dir(workspace).join("component"),
                    artefact,
                )
            }
        };
        println!("cargo:rustc-env={variable}={}", Path::new(&wasm).display());
    }
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
