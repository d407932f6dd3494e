//! zoe-session-gate: the seed's session middleware as a WASIp2 component.
//!
//! Composed in front of any app that exports `wasi:http/incoming-handler` (and with
//! zoe-session for `zoe:session/sessions`), it answers 401 JSON for protected paths without a
//! valid session and passes everything else to the app unchanged.
//!
//! - [`rules`]: which paths are protected (pure, unit-tested natively);
//! - [`config`]: the settings, shared by name and default with zoe-session;
//! - `gate`: the handler itself (wasm only).

pub mod config;
pub mod rules;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod gate;
