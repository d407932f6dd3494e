//! Builds the trivial component (`bench/trivial`, Spin's floor) for `wasm32-wasip2`, so the
//! fresh-instance section can run it beside zoe-session under the same host mode. It shares
//! `target/components` with the gate and the chat app (compose/build.rs), and so their builds
//! of spin-sdk; a nested target directory keeps it off the outer build's lock.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let trivial = manifest_dir.join("trivial");
    for input in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", trivial.join(input).display());
    }
    let workspace = manifest_dir
        .parent()
        .expect("bench/ lives in the workspace");
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("components");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&trivial)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags are for the host; the component has its own.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CLIPPY_CONF_DIR")
        .status()
        .unwrap_or_else(|err| panic!("cannot run cargo for {}: {err}", trivial.display()));
    assert!(
        status.success(),
        "building {} for {TARGET} failed (see above); is the target installed? \
         `rustup target add {TARGET}`",
        trivial.display()
    );
    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join("zoe_bench_trivial.wasm");
    assert!(
        wasm.exists(),
        "cargo succeeded but {} is missing",
        wasm.display()
    );
    println!("cargo:rustc-env=TRIVIAL_WASM={}", wasm.display());
}
