//! zoe-session's core: everything the service decides, independent of the runtime that hosts
//! it. It names no spin-sdk type and no WASI version; a shell (the WASIp2 component in the
//! workspace root today) binds it to one: reads the clock once per call, hands requests to
//! [`http::handle`] with the way it opens the store, and exports the WIT interface over
//! [`session::engine::Engine`]. Layers, each with its own error type converted once at the
//! boundary above it:
//!
//! - [`store`]: SQL over an executor per backend, or the key-value layout over a
//!   [`store::KeyValue`] ([`store::StoreError`]); the executors and key-value stores for
//!   Spin's interfaces live in the shells, the native ones (features `native-sqlite`,
//!   `native-postgres`, and an in-memory key-value store) here;
//! - [`session`]: tokens, policy and the engine ([`session::engine::EngineError`]);
//! - [`http`]: the REST API, calling the engine directly and turning engine errors into HTTP
//!   statuses ([`http::ApiError`]).
//!
//! An arrow is "uses"; no two modules use each other (the parent of a folder only declares and
//! re-exports its children, or, as `store`'s `Db`, owns the type a child's `impl` extends):
//!
//! ```text
//! http ─► session ─► store ─► config
//!
//! http/:    mod ─► router ─► handlers ─► auth ─► ctx ─► peer ─► request
//!           mod ─► redact ─► {router, log};  router ─► console ─► ctx
//!           {handlers, auth, ctx, console} ─► error ─► request;  ctx ─► strict_json
//!           handlers ─► {cookies, json, log};  auth ─► cookies
//! session/: engine ─► {audit, policy, token}
//! store/:   mod (Db) ◄─ schema (impl Db);  mod ─► {executor, sql, error, rows, key_value, kv}
//!           executor ─► {sql, error};  key_value ─► error
//!           kv ─► {layout, key_value, rows, error};  layout ─► {rows, error}
//!           kv/memory ─► {key_value, error}
//!           native_sqlite, native_postgres ─► {executor, sql, error}
//! ```

pub mod config;
pub mod http;
pub mod session;
pub mod store;
