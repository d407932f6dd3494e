//! zoe-session as a WASIp3 component (spin-sdk 7, `wasi:http/handler@0.3.0`), for Spin 4.1
//! and later, which reuses an instance for up to 128 requests, 16 at once. The same core,
//! the same `zoe:session/sessions` export and the same HTTP API as the WASIp2 build in `src/`
//! (spin-sdk 5.2, Spin 4.0, jco), which stays.
//!
//! What differs from the WASIp2 build is only what the WASI version makes differ, and is here:
//!
//! - `http_entry`: the `wasi:http/handler@0.3.0` export, which reads the request, runs the
//!   synchronous core and hands the host a response whose whole body is already offered;
//! - `read_ahead`: a validate's lookup keys on a key-value store, read together through the
//!   async `spin:key-value@3.0.0` before the synchronous core runs;
//! - `settings`: the configuration, every setting read once per instance and concurrently
//!   (`spin:variables@3.0.0` has only an async `get`);
//! - `bindings`: `spin:sqlite@3.1.0`, `spin:postgres@4.2.0`, `spin:variables@3.0.0`,
//!   `fermyon:spin/key-value@2.0.0` and `spin:key-value@3.0.0`.
//!
//! The rest is the WASIp2 build's own files, included: the `sessions` export (`component`),
//! the instance's database handle and the clock (`instance`), and the executors on Spin's
//! databases (`spin_sqlite`, `spin_postgres`), which call the synchronous `open`, `execute`
//! and `query` that `@3.1.0` and `@4.2.0` keep, and on its key-value stores
//! (`spin_key_value`), which calls the synchronous `fermyon:spin/key-value@2.0.0` that Spin
//! still links for WASIp3 components: the engine is synchronous (DESIGN.md, "Two builds, one
//! core").

// A native build (`cargo clippy --workspace`) compiles none of this: the exports' symbols are
// for a component, and spin-sdk 7 is a wasm32 dependency only.
#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/component.rs"]
mod component;
#[cfg(target_arch = "wasm32")]
mod http_entry;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/instance.rs"]
mod instance;
#[cfg(target_arch = "wasm32")]
mod read_ahead;
#[cfg(target_arch = "wasm32")]
mod settings;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/spin_key_value.rs"]
mod spin_key_value;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/spin_postgres.rs"]
mod spin_postgres;
#[cfg(target_arch = "wasm32")]
#[path = "../../src/spin_sqlite.rs"]
mod spin_sqlite;

#[cfg(target_arch = "wasm32")]
use zoe_session_core::{config, http, session, store};
