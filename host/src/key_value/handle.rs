//! The guest's `store` resource: the store its `open` named, shared with every other handle
//! on the same label.

use super::stores::Backend;
use std::sync::Arc;

/// The guest's `store` resource.
#[derive(Debug, Clone)]
pub struct Store {
    pub(super) backend: Arc<Backend>,
}
