//! Builds zoe-session, the session gate and the example chat app for `wasm32-wasip2`, then
//! composes them with wac-graph (the same code as the library's `plug`), so `cargo test` from a
//! fresh clone produces every `.wasm` the composition tests serve.
//!
//! Nested cargo runs (`build-support/wasm_component.rs`) use target directories of their own
//! under the workspace's `target/`. The gate and the
//! chat app are separate workspaces (excluded from the root one) so a native build never
//! compiles them for the host; they share one target directory to share dependency builds.

#[path = "src/plug.rs"]
mod plug;
#[path = "../build-support/wasm_component.rs"]
mod wasm_component;

use std::env;
use std::path::{Path, PathBuf};

const SESSIONS: &str = "zoe:session/sessions@0.2.0";
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.0";
const HANDLER_P3: &str = "wasi:http/handler@0.3.0";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("compose/ lives in the workspace");
    for input in [
        "src",
        "core",
        "config",
        "wire",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        "gate/src",
        "gate/Cargo.toml",
        "gate/Cargo.lock",
        "examples/chat-app/src",
        "examples/chat-app/Cargo.toml",
        "examples/chat-app/Cargo.lock",
        "compose/src/plug.rs",
        "build-support/wasm_component.rs",
        "middleware/src",
        "middleware/Cargo.toml",
        "examples/identity-app/src",
        "examples/identity-app/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=ZOE_SESSION_WASM");

    let target = wasm_component::target_dir(workspace);

    let zoe = match env::var_os("ZOE_SESSION_WASM") {
        Some(prebuilt) => PathBuf::from(prebuilt),
        // The same command and target directory as host/build.rs, so the two share the build.
        None => wasm_component::build(
            workspace,
            &["-p", "zoe-session"],
            &target.join("component"),
            "zoe_session",
        ),
    };
    let components = target.join("components");
    let gate = wasm_component::build(
        &workspace.join("gate"),
        &[],
        &components,
        "zoe_session_gate",
    );
    let chat = wasm_component::build(
        &workspace.join("examples/chat-app"),
        &[],
        &components,
        "chat_app",
    );

    let read = |path: &Path| {
        std::fs::read(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
    };
    let (zoe_bytes, gate_bytes, chat_bytes) = (read(&zoe), read(&gate), read(&chat));

    let composed = target.join("composed");
    std::fs::create_dir_all(&composed).expect("create target/composed");

    let chat_app = plug::plug(
        "zoe:chat-app",
        &chat_bytes,
        &[plug::Plug {
            name: "zoe:session",
            bytes: &zoe_bytes,
            provides: &[SESSIONS],
        }],
    )
    .unwrap_or_else(|err| panic!("composing chat-app with zoe-session failed: {err:#}"));
    let chat_app_path = composed.join("chat-app.wasm");
    std::fs::write(&chat_app_path, &chat_app).expect("write chat-app.wasm");

    let gated = plug::plug(
        "zoe:gate",
        &gate_bytes,
        &[
            plug::Plug {
                name: "zoe:chat-app",
                bytes: &chat_app,
                provides: &[INCOMING_HANDLER],
            },
            plug::Plug {
                name: "zoe:session",
                bytes: &zoe_bytes,
                provides: &[SESSIONS],
            },
        ],
    )
    .unwrap_or_else(|err| panic!("composing the gate in front of chat-app failed: {err:#}"));
    let gated_path = composed.join("gated-chat-app.wasm");
    std::fs::write(&gated_path, &gated).expect("write gated-chat-app.wasm");

    // The session middleware and its example app (WASIp3, workspace members): built with
    // zoe-session's command and target directory, so the three share the core's build.
    let middleware = wasm_component::build(
        workspace,
        &["-p", "zoe-session-middleware", "-p", "zoe-identity-app"],
        &target.join("component"),
        "zoe_session_middleware",
    );
    let identity_app = middleware.with_file_name("zoe_identity_app.wasm");
    let guarded = plug::plug(
        "zoe:session-middleware",
        &read(&middleware),
        &[plug::Plug {
            name: "zoe:identity-app",
            bytes: &read(&identity_app),
            provides: &[HANDLER_P3],
        }],
    )
    .unwrap_or_else(|err| panic!("composing the middleware in front of the app failed: {err:#}"));
    let guarded_path = composed.join("guarded-identity-app.wasm");
    std::fs::write(&guarded_path, &guarded).expect("write guarded-identity-app.wasm");

    for (name, path) in [
        ("MIDDLEWARE_WASM", &middleware),
        ("IDENTITY_APP_WASM", &identity_app),
        ("GUARDED_IDENTITY_APP_WASM", &guarded_path),
        ("ZOE_SESSION_WASM", &zoe),
        ("GATE_WASM", &gate),
        ("CHAT_APP_WASM", &chat),
        ("CHAT_APP_COMPOSED_WASM", &chat_app_path),
        ("GATED_CHAT_APP_WASM", &gated_path),
    ] {
        println!("cargo:rustc-env={name}={}", path.display());
    }
}
