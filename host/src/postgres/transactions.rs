//! Following the guest's transaction from its statements, so that a connection goes back to
//! the pool only outside one.

/// Where the guest's statements have left its server connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transaction {
    /// Autocommit: the connection may go back to the pool as it is.
    None,
    /// A transaction may be open (the guest began one and has not ended it).
    Open,
    /// The server closed the connection inside a transaction: statements fail until the
    /// guest ends it, so none of them silently runs outside the transaction it expects.
    Lost,
}

pub use crate::transaction_sql::{Effect, classify, statement_is_rollback};
