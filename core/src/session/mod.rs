//! Sessions: tokens, the rules they follow, and the engine that applies them to storage.

pub mod audit;
pub mod engine;
pub mod policy;
pub mod token;
