//! Builds the trivial component (`bench/trivial`, Spin's floor) for `wasm32-wasip2`, so the
//! fresh-instance section can run it beside zoe-session under the same host mode. It shares
//! `target/components` with the gate and the chat app (compose/build.rs), and so their builds
//! of spin-sdk. It also builds the session middleware and its example app (WASIp3) with the
//! command and target directory compose/build.rs uses (so one build serves both), for the
//! middleware chain's cells of `--wasip3`.

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

    for input in [
        "middleware/src",
        "middleware/Cargo.toml",
        "examples/identity-app/src",
        "examples/identity-app/Cargo.toml",
        "core/src",
        "config/src",
        "src",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    let middleware = wasm_component::build(
        workspace,
        &["-p", "zoe-session-middleware", "-p", "zoe-identity-app"],
        &wasm_component::target_dir(workspace).join("component"),
        "zoe_session_middleware",
    );
    println!("cargo:rustc-env=MIDDLEWARE_WASM={}", middleware.display());
    println!(
        "cargo:rustc-env=IDENTITY_APP_WASM={}",
        middleware.with_file_name("zoe_identity_app.wasm").display()
    );
}
