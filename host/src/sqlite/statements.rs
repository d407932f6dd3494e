//! Running one guest statement: on the handle's transaction, on a free reader in place, or on
//! tokio's blocking pool; and what it leaves behind for the handle (its counters, and the
//! connection when it is inside a transaction).

use super::connection::Role;
use super::errors::{io_error, sqlite_error};
use super::handle::Connection;
use super::pool::{Database, Lease};
use super::values::{from_sql, to_sql};
use crate::bindings::spin::sqlite::sqlite::{Error, QueryResult, RowResult, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What one statement left behind for the guest handle that ran it.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) result: Result<QueryResult, Error>,
    /// `changes` and `last_insert_rowid` after the statement, if it reached a connection.
    counters: Option<(u64, i64)>,
    /// The connection, if the statement left it inside a transaction.
    kept: Option<Lease>,
}

/// Runs one guest statement on `held` (the handle's transaction) or a connection chosen for
/// it. Blocks: the async import runs it on tokio's blocking pool.
pub(super) fn run_blocking(
    database: &Arc<Database>,
    held: Option<Lease>,
    statement: &str,
    parameters: Vec<Value>,
) -> Outcome {
    let lease = match held {
        Some(lease) => lease,
        None => match database.lease_for(statement) {
            Ok(lease) => lease,
            Err(err) => {
                return Outcome {
                    result: Err(err.into()),
                    counters: None,
                    kept: None,
                };
            }
        },
    };
    let conn = lease.conn();
    let result = run_statement(conn, statement, parameters);
    let counters = Some((conn.changes(), conn.last_insert_rowid()));
    if !conn.is_autocommit() {
        return Outcome {
            result,
            counters,
            kept: Some(lease),
        };
    }
    if lease.role == Role::Writer {
        database.checkpoint_if_large(conn);
    }
    Outcome {
        result,
        counters,
        kept: None,
    }
}

impl Connection {
    /// Runs `statement` on this handle's own connection, as Spin's `sqlite-inproc` does: the
    /// connection is opened by the first statement, then every statement runs on it on the
    /// blocking pool.
    async fn execute_on_own(
        &mut self,
        path: PathBuf,
        statement: String,
        parameters: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        let own = self.own.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let conn = match own {
                Some(conn) => conn,
                None => Arc::new(Mutex::new(
                    rusqlite::Connection::open(&path).map_err(|e| io_error(&e))?,
                )),
            };
            let guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            let result = run_statement(&guard, &statement, parameters);
            let counters = (guard.changes(), guard.last_insert_rowid());
            drop(guard);
            Ok::<_, Error>((conn, result, counters))
        })
        .await
        .map_err(|err| Error::Io(format!("database task failed: {err}")))?;
        let (conn, result, (changes, rowid)) = outcome?;
        self.own = Some(conn);
        self.changes = changes;
        self.last_insert_rowid = rowid;
        result
    }

    /// Runs `statement` on the blocking pool. The handle's transaction travels with the work
    /// as a [`Lease`]: if this future is dropped, the blocking task still finishes and its
    /// output, the lease, is dropped with it, which rolls back and returns the connection.
    pub(super) async fn execute(
        &mut self,
        statement: String,
        parameters: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        if self.database.options.connection_per_open
            && let Some(path) = self.database.path()
        {
            let path = path.to_owned();
            return self.execute_on_own(path, statement, parameters).await;
        }
        let held = self.in_transaction.take();
        let database = self.database.clone();
        // A read-only statement with a reader free runs here: in WAL mode a reader never
        // waits for the writer, so it cannot hold this thread behind a write, and the trip
        // to the blocking pool costs more than the read itself (tens of µs against a few;
        // docs/benchmarks-history.md, issue 18). Whatever may wait (a write, a transaction, a
        // wait for a free connection, a statement not yet classified) goes to the blocking pool.
        if held.is_none()
            && let Some(reader) = database.idle_reader_for(&statement)
        {
            let outcome = run_blocking(&database, Some(reader), &statement, parameters);
            return self.settle(outcome);
        }
        let outcome = tokio::task::spawn_blocking(move || {
            run_blocking(&database, held, &statement, parameters)
        })
        .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            // The statement's thread panicked (a host bug); its lease was dropped during
            // unwinding, so the connection is back. The guest sees a failed statement.
            Err(err) => return Err(Error::Io(format!("database task failed: {err}"))),
        };
        self.settle(outcome)
    }

    /// Takes what a statement left behind: the handle's counters and its transaction.
    fn settle(&mut self, outcome: Outcome) -> Result<QueryResult, Error> {
        // `changes` and `last_insert_rowid` describe this handle's statements, as they would
        // on a connection of its own, whichever pooled connection ran them.
        if let Some((changes, rowid)) = outcome.counters {
            self.changes = changes;
            self.last_insert_rowid = rowid;
        }
        self.in_transaction = outcome.kept;
        outcome.result
    }
}

fn run_statement(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> Result<QueryResult, Error> {
    let mut stmt = conn
        .prepare_cached(statement)
        .map_err(|e| sqlite_error(&e))?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let params = rusqlite::params_from_iter(parameters.into_iter().map(to_sql));
    let mut rows = stmt.query(params).map_err(|e| sqlite_error(&e))?;
    let mut result = Vec::new();
    while let Some(row) = rows.next().map_err(|e| sqlite_error(&e))? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(from_sql))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| sqlite_error(&e))?;
        result.push(RowResult { values });
    }
    Ok(QueryResult {
        columns,
        rows: result,
    })
}
