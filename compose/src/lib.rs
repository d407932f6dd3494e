//! zoe-session-compose: builds the example chat app and the session gate for
//! `wasm32-wasip2`, and composes them with zoe-session using wac-graph, so that neither a
//! `wac` binary nor Spin is needed to get a runnable `.wasm`.
//!
//! The build script produces two composed components whose paths are below:
//!
//! - [`CHAT_APP_WASM`]: chat-app ← zoe-session (`zoe:session/sessions`);
//! - [`GATED_CHAT_APP_WASM`]: gate ← chat-app (`wasi:http/incoming-handler`) and
//!   gate ← zoe-session (`zoe:session/sessions`).
//!
//! Both import only WASI, `spin:sqlite@3.0.0` and `fermyon:spin/variables@2.0.0`, so Spin or
//! `zoe-session-host` runs them. [`plug`] composes your own components the same way.

mod plug;

pub use plug::{Plug, plug};

/// The chat app composed with zoe-session.
pub const CHAT_APP_WASM: &str = env!("CHAT_APP_COMPOSED_WASM");

/// The session gate in front of the composed chat app, with its own zoe-session instance.
pub const GATED_CHAT_APP_WASM: &str = env!("GATED_CHAT_APP_WASM");

/// The gate component alone (imports the app's handler and `sessions`).
pub const GATE_WASM: &str = env!("GATE_WASM");

/// The chat app component alone (imports `sessions`).
pub const CHAT_APP_ALONE_WASM: &str = env!("CHAT_APP_WASM");

/// The zoe-session component these were composed with.
pub const ZOE_SESSION_WASM: &str = env!("ZOE_SESSION_WASM");

/// The session middleware alone (WASIp3: imports and exports `wasi:http/handler@0.3.0`).
pub const MIDDLEWARE_WASM: &str = env!("MIDDLEWARE_WASM");

/// The example WASIp3 app that takes its user from the middleware's identity headers.
pub const IDENTITY_APP_WASM: &str = env!("IDENTITY_APP_WASM");

/// The session middleware with the example app plugged into its handler import (`wac plug`).
pub const GUARDED_IDENTITY_APP_WASM: &str = env!("GUARDED_IDENTITY_APP_WASM");

/// The interface name apps import to use sessions.
pub const SESSIONS: &str = "zoe:session/sessions@0.2.0";

/// The interface name of an HTTP handler.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.0";
