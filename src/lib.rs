//! zoe-session: session management as one WebAssembly component.
//!
//! The component exports `zoe:session/sessions` (the trusted in-process API) and stores
//! sessions in Spin's SQLite. Layers, each with its own error type converted once at the
//! boundary above it:
//!
//! - [`store`]: SQL over `spin:sqlite` ([`store::StoreError`]);
//! - [`session`]: tokens, policy and the engine ([`session::engine::EngineError`]);
//! - `component`: the WIT exports, which read the clock and configuration once per call and
//!   turn engine errors into the WIT `error` variant.

#[expect(clippy::all, reason = "generated code")]
mod bindings;
mod component;
pub mod config;
pub mod session;
pub mod store;
