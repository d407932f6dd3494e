//! Builds the trivial component (`bench/trivial`, Spin's floor) for `wasm32-wasip2`, so the
//! fresh-instance section can run it beside zoe-session under the same host mode. It shares
//! `target/components` with the gate and the chat app (compose/build.rs), and so their builds
//! of spin-sdk.

#[path = "../build-support/wasm_component.rs"]
mod wasm_component;

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let trivial = manifest_dir.join("trivial");
    for input in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", trivial.join(input).display());
    }
    let workspace = manifest_dir
        .parent()
        .expect("bench/ lives in the workspace");
    let wasm = wasm_component::build(
        &trivial,
        &[],
        &wasm_component::target_dir(workspace).join("components"),
        "zoe_bench_trivial",
    );
    println!("cargo:rustc-env=TRIVIAL_WASM={}", wasm.display());
}
