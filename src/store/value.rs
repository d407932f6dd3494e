//! Typed access to the column values of a `spin:sqlite` row.

use super::StoreError;
use spin_sdk::sqlite3::{RowResult, Value};

/// One result row; getters fail with [`StoreError::Shape`] instead of panicking.
#[derive(Debug)]
pub(super) struct Row(Vec<Value>);

impl From<RowResult> for Row {
    fn from(row: RowResult) -> Self {
        Self(row.values)
    }
}

impl Row {
    fn get(&self, index: usize) -> Result<&Value, StoreError> {
        self.0.get(index).ok_or(StoreError::Shape("missing column"))
    }

    pub(super) fn text(&self, index: usize) -> Result<&str, StoreError> {
        match self.get(index)? {
            Value::Text(text) => Ok(text),
            _ => Err(StoreError::Shape("expected text")),
        }
    }

    pub(super) fn blob(&self, index: usize) -> Result<&[u8], StoreError> {
        match self.get(index)? {
            Value::Blob(bytes) => Ok(bytes),
            _ => Err(StoreError::Shape("expected blob")),
        }
    }

    pub(super) fn opt_uint(&self, index: usize) -> Result<Option<u64>, StoreError> {
        match self.get(index)? {
            Value::Null => Ok(None),
            Value::Integer(n) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| StoreError::Shape("negative integer")),
            _ => Err(StoreError::Shape("expected integer")),
        }
    }

    pub(super) fn uint(&self, index: usize) -> Result<u64, StoreError> {
        self.opt_uint(index)?
            .ok_or(StoreError::Shape("unexpected null"))
    }

    pub(super) fn int(&self, index: usize) -> Result<i64, StoreError> {
        match self.get(index)? {
            Value::Integer(n) => Ok(*n),
            _ => Err(StoreError::Shape("expected integer")),
        }
    }
}
