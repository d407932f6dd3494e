//! The key-value store (`key_value_store`) is not in the WASIp3 build yet: Spin's
//! `spin:key-value@3.0.0` is async-only, and a host must provide it before this build may
//! import it (an import the host lacks refuses the whole component). Until then a deployment
//! that names a store gets a clear configuration error here, never a trap; the WASIp2 build
//! (`spin-wasip2.toml`) serves key-value stores.

use crate::store::{KeyValue, StoreError};

/// Refuses every store label, saying which build serves key-value stores.
///
/// # Errors
///
/// Always [`StoreError::KeyValue`].
pub(crate) fn open(label: &str) -> Result<Box<dyn KeyValue>, StoreError> {
    Err(StoreError::KeyValue(format!(
        "key_value_store {label:?}: the WASIp3 build (spin.toml) does not serve key-value \
         stores yet; run the WASIp2 build (spin-wasip2.toml) for them"
    )))
}
