//! Configuration: the settings table lives in the `zoe-session-config` crate, shared with the
//! gate and the native host, so that every setting is defined once.

pub use zoe_session_config::*;
