//! `spin:sqlite/sqlite@3.1.0`, the WASIp3-era interface (Spin >= 4.1, spin-sdk 7), over the
//! same database as `spin:sqlite@3.0.0`.
//!
//! Every function is implemented, the `-async` ones as concurrent host functions: while one
//! request of a reused instance waits for SQLite, the instance's other requests run. Each
//! statement still runs as the 3.0.0 `execute` runs it (the writer, the readers, a transaction
//! kept on one connection: see [`super`]); `execute-async` runs the statement to its end, then
//! hands the guest its rows as a stream and `ok` on the result future, as Spin's own
//! implementation does for a statement that has finished.
//!
//! The guest's handle is shared between the function calls that use it at once (a guest may
//! start a second statement on a handle before the first has finished; they run one after
//! the other, in the order they took the handle).

use super::handle::{Connection as Handle, SharedConnection as Connection};
use super::{SqliteCtxView, SqliteView};
use crate::bindings::p3::spin::sqlite::sqlite::{
    self as wit, Error, HostConnection, HostConnectionWithStore, RowResult, Value,
};
use crate::bindings::spin::sqlite::sqlite as v3_0;
use std::sync::Arc;
use wasmtime::component::{Accessor, FutureReader, HasSelf, Resource, StreamReader};

impl<T: SqliteView> wit::Host for T {}

impl<T: SqliteView> HostConnection for T {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        open(self.sqlite(), database)
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<wit::QueryResult, Error>> {
        let SqliteCtxView { ctx, table } = self.sqlite();
        ctx.calls.sqlite_statement();
        let handle = table.get(&connection)?.0.clone();
        Ok(run(&handle, statement, parameters).await)
    }

    async fn last_insert_rowid(
        &mut self,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        let handle = self.sqlite().table.get(&connection)?.0.clone();
        Ok(handle.lock().await.last_insert_rowid)
    }

    async fn changes(&mut self, connection: Resource<Connection>) -> wasmtime::Result<u64> {
        let handle = self.sqlite().table.get(&connection)?.0.clone();
        Ok(handle.lock().await.changes)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        // A statement still running keeps its clone; the lease it may hold goes when it ends.
        self.sqlite().table.delete(connection)?;
        Ok(())
    }
}

impl<U, T: SqliteView + 'static> HostConnectionWithStore<U> for HasSelf<T> {
    async fn open_async(
        accessor: &Accessor<U, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        accessor.with(|mut access| open(access.get().sqlite(), database))
    }

    async fn execute_async(
        accessor: &Accessor<U, Self>,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<String>,
                StreamReader<RowResult>,
                FutureReader<Result<(), Error>>,
            ),
            Error,
        >,
    > {
        let handle = accessor.with(|mut access| {
            let SqliteCtxView { ctx, table } = access.get().sqlite();
            ctx.calls.sqlite_statement();
            table.get(&connection).map(|c| c.0.clone())
        })?;
        let result = match run(&handle, statement, parameters).await {
            Ok(result) => result,
            Err(err) => return Ok(Err(err)),
        };
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, result.rows)?;
            let done = FutureReader::new(&mut access, async {
                Ok::<_, wasmtime::Error>(Ok::<(), Error>(()))
            })?;
            Ok(Ok((result.columns, rows, done)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<U, Self>,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        let handle = handle(accessor, &connection)?;
        Ok(handle.lock().await.last_insert_rowid)
    }

    async fn changes_async(
        accessor: &Accessor<U, Self>,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<u64> {
        let handle = handle(accessor, &connection)?;
        Ok(handle.lock().await.changes)
    }
}

fn handle<U, T: SqliteView + 'static>(
    accessor: &Accessor<U, HasSelf<T>>,
    connection: &Resource<Connection>,
) -> wasmtime::Result<Arc<tokio::sync::Mutex<Handle>>> {
    accessor.with(|mut access| Ok(access.get().sqlite().table.get(connection)?.0.clone()))
}

fn open(
    view: SqliteCtxView<'_>,
    database: String,
) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
    let SqliteCtxView { ctx, table } = view;
    ctx.calls.sqlite_open();
    // Spin's answer for a database the component was not granted, as in 3.0.0.
    if !ctx.grants(&database) {
        return Ok(Err(Error::AccessDenied));
    }
    let handle = Handle::new(ctx.database.clone());
    Ok(Ok(table.push(Connection(Arc::new(
        tokio::sync::Mutex::new(handle),
    )))?))
}

/// Runs one statement on `handle` as 3.0.0's `execute` does, in 3.1.0's types.
async fn run(
    handle: &tokio::sync::Mutex<Handle>,
    statement: String,
    parameters: Vec<Value>,
) -> Result<wit::QueryResult, Error> {
    let parameters = parameters.into_iter().map(value_to_v3_0).collect();
    let mut handle = handle.lock().await;
    match handle.execute(statement, parameters).await {
        Ok(result) => Ok(wit::QueryResult {
            columns: result.columns,
            rows: result
                .rows
                .into_iter()
                .map(|row| RowResult {
                    values: row.values.into_iter().map(value_from_v3_0).collect(),
                })
                .collect(),
        }),
        Err(err) => Err(error_from_v3_0(err)),
    }
}

// The two versions' types are the same WIT types, generated twice.

fn value_to_v3_0(value: Value) -> v3_0::Value {
    match value {
        Value::Integer(n) => v3_0::Value::Integer(n),
        Value::Real(f) => v3_0::Value::Real(f),
        Value::Text(s) => v3_0::Value::Text(s),
        Value::Blob(b) => v3_0::Value::Blob(b),
        Value::Null => v3_0::Value::Null,
    }
}

fn value_from_v3_0(value: v3_0::Value) -> Value {
    match value {
        v3_0::Value::Integer(n) => Value::Integer(n),
        v3_0::Value::Real(f) => Value::Real(f),
        v3_0::Value::Text(s) => Value::Text(s),
        v3_0::Value::Blob(b) => Value::Blob(b),
        v3_0::Value::Null => Value::Null,
    }
}

fn error_from_v3_0(err: v3_0::Error) -> Error {
    match err {
        v3_0::Error::NoSuchDatabase => Error::NoSuchDatabase,
        v3_0::Error::AccessDenied => Error::AccessDenied,
        v3_0::Error::InvalidConnection => Error::InvalidConnection,
        v3_0::Error::DatabaseFull => Error::DatabaseFull,
        v3_0::Error::Io(text) => Error::Io(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{Database, Location};
    use crate::state::HostState;

    fn state() -> HostState {
        HostState::new(
            wasmtime_wasi::WasiCtx::builder().build(),
            Database::open(Location::Memory).unwrap(),
            Default::default(),
            Default::default(),
        )
    }

    /// The functions 3.1.0 keeps from 3.0.0, called as a guest that uses no async function
    /// calls them (the async ones are driven by a guest in host/tests/all/p3_serve.rs).
    #[tokio::test]
    async fn the_synchronous_functions_run_statements_and_report_their_counters() {
        let mut state = state();
        let Ok(conn) = HostConnection::open(&mut state, "default".into())
            .await
            .unwrap()
        else {
            panic!("default opens");
        };
        let run = async |state: &mut HostState, sql: &str, params: Vec<Value>| {
            let conn = Resource::new_borrow(conn.rep());
            HostConnection::execute(state, conn, sql.to_owned(), params)
                .await
                .unwrap()
        };
        run(&mut state, "CREATE TABLE t (x, y)", vec![])
            .await
            .unwrap();
        let inserted = run(
            &mut state,
            "INSERT INTO t VALUES (?, ?), (?, ?)",
            vec![
                Value::Integer(1),
                Value::Text("one".into()),
                Value::Real(2.5),
                Value::Null,
            ],
        )
        .await;
        assert!(inserted.is_ok(), "{inserted:?}");
        let borrow = || Resource::new_borrow(conn.rep());
        assert_eq!(
            HostConnection::changes(&mut state, borrow()).await.unwrap(),
            2
        );
        assert_eq!(
            HostConnection::last_insert_rowid(&mut state, borrow())
                .await
                .unwrap(),
            2
        );
        let rows = run(&mut state, "SELECT x, y FROM t ORDER BY rowid", vec![])
            .await
            .unwrap();
        assert_eq!(rows.columns, ["x", "y"]);
        assert_eq!(
            rows.rows,
            [
                RowResult {
                    values: vec![Value::Integer(1), Value::Text("one".into())]
                },
                RowResult {
                    values: vec![Value::Real(2.5), Value::Null]
                },
            ]
        );
        // A bad statement is the guest's error, not a trap.
        let bad = run(&mut state, "SELEKT", vec![]).await;
        assert!(
            matches!(bad, Err(Error::Io(ref text)) if text.contains("syntax")),
            "{bad:?}"
        );
        HostConnection::drop(&mut state, conn).await.unwrap();
    }

    #[tokio::test]
    async fn only_the_default_database_opens() {
        let mut state = state();
        let other = HostConnection::open(&mut state, "other".into())
            .await
            .unwrap();
        assert!(matches!(other, Err(Error::AccessDenied)));
        let default = HostConnection::open(&mut state, "default".into())
            .await
            .unwrap();
        assert!(default.is_ok());
    }
}
