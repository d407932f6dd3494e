//! The seam between the store and a database: an [`Executor`] runs one parameterised
//! statement and hands back rows or a count of changed rows, in the neutral [`Param`] and
//! [`Value`] types. Each backend implements it once, converting its own values and errors
//! where they happen; everything above speaks only these types and the backend's
//! [`Dialect`](super::sql::Dialect).

use super::error::StoreError;
use super::sql::Dialect;

/// A statement parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// A column value read back. Every integer width a backend has arrives as [`Value::Int`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One database connection.
///
/// Transactions are plain statements of the dialect ([`Dialect::begin`], `COMMIT`,
/// `ROLLBACK`) run on the same connection; the provided methods run them, so a backend only
/// has to keep one connection per executor.
pub trait Executor: std::fmt::Debug {
    /// The SQL this connection speaks.
    fn dialect(&self) -> &'static Dialect;

    /// Runs a statement that returns rows.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the database cannot be reached, another
    /// [`StoreError`] when the statement fails.
    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError>;

    /// Runs a statement and returns how many rows it inserted, updated or deleted.
    ///
    /// # Errors
    ///
    /// As [`Executor::query`].
    fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError>;

    /// Starts a write transaction ([`Dialect::begin`]).
    ///
    /// # Errors
    ///
    /// As [`Executor::query`].
    fn begin(&self) -> Result<(), StoreError> {
        self.execute(self.dialect().begin, &[]).map(drop)
    }

    /// Commits the open transaction.
    ///
    /// # Errors
    ///
    /// As [`Executor::query`]; the transaction may then still be open (see
    /// [`Executor::rollback`]).
    fn commit(&self) -> Result<(), StoreError> {
        self.execute("COMMIT", &[]).map(drop)
    }

    /// Rolls the open transaction back.
    ///
    /// # Errors
    ///
    /// As [`Executor::query`]: the connection may then be inside a transaction still.
    fn rollback(&self) -> Result<(), StoreError> {
        self.execute("ROLLBACK", &[]).map(drop)
    }
}

/// One result row; getters fail with [`StoreError::Shape`] instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

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
            Value::Bytes(bytes) => Ok(bytes),
            _ => Err(StoreError::Shape("expected bytes")),
        }
    }

    pub(super) fn opt_text(&self, index: usize) -> Result<Option<&str>, StoreError> {
        match self.get(index)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text)),
            _ => Err(StoreError::Shape("expected text or null")),
        }
    }

    pub(super) fn opt_blob(&self, index: usize) -> Result<Option<&[u8]>, StoreError> {
        match self.get(index)? {
            Value::Null => Ok(None),
            Value::Bytes(bytes) => Ok(Some(bytes)),
            _ => Err(StoreError::Shape("expected bytes or null")),
        }
    }

    pub(super) fn opt_uint(&self, index: usize) -> Result<Option<u64>, StoreError> {
        match self.get(index)? {
            Value::Null => Ok(None),
            Value::Int(n) => u64::try_from(*n)
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
            Value::Int(n) => Ok(*n),
            _ => Err(StoreError::Shape("expected integer")),
        }
    }
}
