//! zoe-session's core: everything the service decides, independent of the runtime that hosts
//! it. It names no spin-sdk type and no WASI version; a shell (the WASIp2 component in the
//! workspace root today) binds it to one: reads the clock once per call, hands requests to
//! [`http::handle`] with the way it opens the store, and exports the WIT interface over
//! [`session::engine::Engine`]. Layers, each with its own error type converted once at the
//! boundary above it:
//!
//! - [`store`]: SQL over an executor per backend ([`store::StoreError`]); the executors for
//!   Spin's interfaces live in the shells, the native ones (features `native-sqlite`,
//!   `native-postgres`) here;
//! - [`session`]: tokens, policy and the engine ([`session::engine::EngineError`]);
//! - [`http`]: the REST API, calling the engine directly and turning engine errors into HTTP
//!   statuses ([`http::ApiError`]).

pub mod config;
pub mod http;
pub mod session;
pub mod store;
