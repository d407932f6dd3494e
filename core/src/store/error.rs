//! The store's one error type.

/// A failure of the database; the text is for operators, never for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(String),
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("key-value: {0}")]
    KeyValue(String),
    /// A record larger than the store accepts (a key-value store's value limit): the caller's
    /// input made it so, and the text says how large it was and what the limit is.
    #[error("{0}")]
    TooLarge(String),
    /// The database cannot be reached (refused, dropped, restarting, out of connections):
    /// a passing condition that clients may retry, unlike the other variants.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected row shape: {0}")]
    Shape(&'static str),
    #[error("database schema version {found} is newer than this build understands ({known})")]
    FutureSchema { found: i64, known: i64 },
}
