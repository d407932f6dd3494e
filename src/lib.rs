//! zoe-session: session management as one WebAssembly component.
//!
//! The component exports `zoe:session/sessions` (the trusted in-process API) and stores
//! sessions in Spin's SQLite, or in PostgreSQL when `database_url` is set. Layers, each with
//! its own error type converted once at the boundary above it:
//!
//! - [`store`]: SQL over an executor per backend ([`store::StoreError`]);
//! - [`session`]: tokens, policy and the engine ([`session::engine::EngineError`]);
//! - `component`: the WIT exports, which read the clock and configuration once per call and
//!   turn engine errors into the WIT `error` variant;
//! - [`http`]: the REST API over `wasi:http/incoming-handler`, calling the engine directly and
//!   turning engine errors into HTTP statuses ([`http::ApiError`]).

// The WIT exports exist only in the wasm build: a native build (unit tests) would otherwise
// try to export symbols named like `zoe:session/sessions@0.2.0#create`, which no native
// linker accepts.
#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod component;
pub mod config;
pub mod http;
pub mod session;
pub mod store;
