//! `spin:postgres/postgres@4.2.0`, the WASIp3-era interface (Spin >= 4.1, spin-sdk 7), over the
//! same pool as `spin:postgres@4.0.0`.
//!
//! Every function is implemented, the `-async` ones as concurrent host functions: while one
//! request of a reused instance waits for the server, the instance's other requests run. A
//! statement runs as 4.0.0's does (see [`super`]); `query-async` runs it to its end, then
//! hands the guest its rows as a stream and `ok` on the result future.
//!
//! `connection-builder` opens the one allowed URL like `open`. Its `set-ca-root` cannot widen
//! what the host trusts: the host's roots are the system's plus `SESSION_POSTGRES_ROOT_CERT`
//! ([`crate::HostConfig::postgres_root_cert`]), the operator's choice as Spin's runtime config
//! is. A certificate that is among them is accepted (the connection trusts it already); any
//! other is refused by `build` with `connection-failed` naming the setting, so a guest never
//! believes it pinned a root it did not.

use super::handle::{Connection as Handle, ConnectionBuilder, SharedConnection as Connection};
use super::{PostgresCtxView, PostgresView};
use crate::bindings::p3::spin::postgres::postgres::{
    self as wit, Column, DbDataType, DbError, DbValue, Error, Interval, ParameterValue, QueryError,
    RangeBoundKind, RowSet,
};
use crate::bindings::spin::postgres::postgres as v4_0;
use std::sync::Arc;
use wasmtime::component::{Accessor, FutureReader, HasSelf, Resource, StreamReader};

impl<T: PostgresView> wit::Host for T {}

impl<T: PostgresView> wit::HostConnectionBuilder for T {
    async fn new(&mut self, address: String) -> wasmtime::Result<Resource<ConnectionBuilder>> {
        Ok(self.postgres().table.push(ConnectionBuilder {
            address,
            ca_root: None,
        })?)
    }

    async fn set_ca_root(
        &mut self,
        builder: Resource<ConnectionBuilder>,
        certificate: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let builder = self.postgres().table.get_mut(&builder)?;
        if !certificate.contains("-----BEGIN CERTIFICATE-----") {
            return Ok(Err(Error::Other(
                "the CA root is not a PEM certificate".to_owned(),
            )));
        }
        builder.ca_root = Some(certificate);
        Ok(Ok(()))
    }

    async fn build(
        &mut self,
        builder: Resource<ConnectionBuilder>,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_open();
        let ConnectionBuilder { address, ca_root } = table.get(&builder)?;
        let opened = open_with(ctx.postgres.clone(), address.clone(), ca_root.clone()).await;
        push(self.postgres(), opened)
    }

    async fn drop(&mut self, builder: Resource<ConnectionBuilder>) -> wasmtime::Result<()> {
        self.postgres().table.delete(builder)?;
        Ok(())
    }
}

impl<U, T: PostgresView + 'static> wit::HostConnectionBuilderWithStore<U> for HasSelf<T> {
    async fn build_async(
        accessor: &Accessor<U, Self>,
        builder: Resource<ConnectionBuilder>,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let (postgres, address, ca_root) = accessor.with(|mut access| -> wasmtime::Result<_> {
            let PostgresCtxView { ctx, table } = access.get().postgres();
            ctx.calls.postgres_open();
            let builder = table.get(&builder)?;
            Ok((
                ctx.postgres.clone(),
                builder.address.clone(),
                builder.ca_root.clone(),
            ))
        })?;
        let opened = open_with(postgres, address, ca_root).await;
        accessor.with(|mut access| push(access.get().postgres(), opened))
    }
}

impl<T: PostgresView> wit::HostConnection for T {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let PostgresCtxView { ctx, .. } = self.postgres();
        ctx.calls.postgres_open();
        let opened = open_with(ctx.postgres.clone(), address, None).await;
        push(self.postgres(), opened)
    }

    async fn query(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_statement();
        let handle = table.get(&connection)?.0.clone();
        query(&handle, statement, params).await
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let PostgresCtxView { ctx, table } = self.postgres();
        ctx.calls.postgres_statement();
        let handle = table.get(&connection)?.0.clone();
        Ok(execute(&handle, statement, params).await)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        // A statement still running keeps its clone; the connection goes back when it ends.
        self.postgres().table.delete(connection)?;
        Ok(())
    }
}

impl<U, T: PostgresView + 'static> wit::HostConnectionWithStore<U> for HasSelf<T> {
    async fn open_async(
        accessor: &Accessor<U, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let postgres = accessor.with(|mut access| {
            let ctx = access.get().postgres().ctx;
            ctx.calls.postgres_open();
            ctx.postgres.clone()
        });
        let opened = open_with(postgres, address, None).await;
        accessor.with(|mut access| push(access.get().postgres(), opened))
    }

    async fn query_async(
        accessor: &Accessor<U, Self>,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<Column>,
                StreamReader<Vec<DbValue>>,
                FutureReader<Result<(), Error>>,
            ),
            Error,
        >,
    > {
        let handle = handle(accessor, &connection)?;
        let rows = match query(&handle, statement, params).await? {
            Ok(rows) => rows,
            Err(err) => return Ok(Err(err)),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, rows.rows)?;
            let done = FutureReader::new(&mut access, async {
                Ok::<_, wasmtime::Error>(Ok::<(), Error>(()))
            })?;
            Ok(Ok((rows.columns, stream, done)))
        })
    }

    async fn execute_async(
        accessor: &Accessor<U, Self>,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let handle = handle(accessor, &connection)?;
        Ok(execute(&handle, statement, params).await)
    }
}

fn handle<U, T: PostgresView + 'static>(
    accessor: &Accessor<U, HasSelf<T>>,
    connection: &Resource<Connection>,
) -> wasmtime::Result<Arc<tokio::sync::Mutex<Handle>>> {
    accessor.with(|mut access| {
        let PostgresCtxView { ctx, table } = access.get().postgres();
        ctx.calls.postgres_statement();
        Ok(table.get(connection)?.0.clone())
    })
}

/// Opens `address` through the pool; a `ca_root` must be one the host trusts already.
async fn open_with(
    postgres: Arc<super::Postgres>,
    address: String,
    ca_root: Option<String>,
) -> Result<Handle, Error> {
    if let Some(certificate) = ca_root
        && !postgres.trusts_root(&certificate)
    {
        return Err(Error::ConnectionFailed(format!(
            "this host trusts the system's root certificates and those in {} only; \
             put the component's CA root there to use it",
            crate::config::POSTGRES_ROOT_CERT_ENV
        )));
    }
    postgres
        .open(&address)
        .await
        .map_err(|err| error_from_v4_0(err.into()))
}

fn push(
    view: PostgresCtxView<'_>,
    opened: Result<Handle, Error>,
) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
    let handle = match opened {
        Ok(handle) => handle,
        Err(err) => return Ok(Err(err)),
    };
    // A full resource table is the guest holding too many handles: Spin's answer, as in 4.0.0.
    Ok(view
        .table
        .push(Connection(Arc::new(tokio::sync::Mutex::new(handle))))
        .map_err(|_| Error::ConnectionFailed("too many connections".to_owned())))
}

async fn query(
    handle: &tokio::sync::Mutex<Handle>,
    statement: String,
    params: Vec<ParameterValue>,
) -> wasmtime::Result<Result<RowSet, Error>> {
    let params = params.into_iter().map(parameter_to_v4_0).collect();
    let mut handle = handle.lock().await;
    match handle.query(&statement, params).await {
        Ok(rows) => {
            handle.compat.check_query(&statement, rows.rows.len())?;
            Ok(Ok(RowSet {
                columns: rows.columns.into_iter().map(column_from_v4_0).collect(),
                rows: rows
                    .rows
                    .into_iter()
                    .map(|row| row.into_iter().map(value_from_v4_0).collect())
                    .collect(),
            }))
        }
        Err(err) => Ok(Err(error_from_v4_0(err.into()))),
    }
}

async fn execute(
    handle: &tokio::sync::Mutex<Handle>,
    statement: String,
    params: Vec<ParameterValue>,
) -> Result<u64, Error> {
    let params = params.into_iter().map(parameter_to_v4_0).collect();
    let mut handle = handle.lock().await;
    handle
        .execute(&statement, params)
        .await
        .map_err(|err| error_from_v4_0(err.into()))
}

// The two versions' types are the same WIT types, generated twice: each variant maps to its
// namesake.

macro_rules! same_variants {
    ($value:expr, $from:ident => $to:ident,
     payload: [$($payload:ident),* $(,)?],
     unit: [$($unit:ident),* $(,)?],
     other: { $($rest:tt)* }) => {
        match $value {
            $($from::$payload(v) => $to::$payload(v),)*
            $($from::$unit => $to::$unit,)*
            $($rest)*
        }
    };
}

fn bound_to_v4_0(kind: RangeBoundKind) -> v4_0::RangeBoundKind {
    match kind {
        RangeBoundKind::Inclusive => v4_0::RangeBoundKind::Inclusive,
        RangeBoundKind::Exclusive => v4_0::RangeBoundKind::Exclusive,
    }
}

fn bound_from_v4_0(kind: v4_0::RangeBoundKind) -> RangeBoundKind {
    match kind {
        v4_0::RangeBoundKind::Inclusive => RangeBoundKind::Inclusive,
        v4_0::RangeBoundKind::Exclusive => RangeBoundKind::Exclusive,
    }
}

type Range<V, K> = (Option<(V, K)>, Option<(V, K)>);

fn range<V, A, B>((low, high): Range<V, A>, bound: fn(A) -> B) -> Range<V, B> {
    (
        low.map(|(v, k)| (v, bound(k))),
        high.map(|(v, k)| (v, bound(k))),
    )
}

fn parameter_to_v4_0(value: ParameterValue) -> v4_0::ParameterValue {
    use v4_0::ParameterValue as To;
    same_variants!(value, ParameterValue => To,
    payload: [Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary, Date,
              Time, Datetime, Timestamp, Uuid, Jsonb, Decimal, ArrayInt32, ArrayInt64,
              ArrayDecimal, ArrayStr],
    unit: [DbNull],
    other: {
        ParameterValue::RangeInt32(r) => To::RangeInt32(range(r, bound_to_v4_0)),
        ParameterValue::RangeInt64(r) => To::RangeInt64(range(r, bound_to_v4_0)),
        ParameterValue::RangeDecimal(r) => To::RangeDecimal(range(r, bound_to_v4_0)),
        ParameterValue::Interval(Interval { micros, days, months }) => {
            To::Interval(v4_0::Interval { micros, days, months })
        }
    })
}

fn value_from_v4_0(value: v4_0::DbValue) -> DbValue {
    use v4_0::DbValue as From;
    same_variants!(value, From => DbValue,
    payload: [Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary, Date,
              Time, Datetime, Timestamp, Uuid, Jsonb, Decimal, ArrayInt32, ArrayInt64,
              ArrayDecimal, ArrayStr, Unsupported],
    unit: [DbNull],
    other: {
        From::RangeInt32(r) => DbValue::RangeInt32(range(r, bound_from_v4_0)),
        From::RangeInt64(r) => DbValue::RangeInt64(range(r, bound_from_v4_0)),
        From::RangeDecimal(r) => DbValue::RangeDecimal(range(r, bound_from_v4_0)),
        From::Interval(v4_0::Interval { micros, days, months }) => {
            DbValue::Interval(Interval { micros, days, months })
        }
    })
}

fn column_from_v4_0(column: v4_0::Column) -> Column {
    use v4_0::DbDataType as From;
    let data_type = same_variants!(column.data_type, From => DbDataType,
        payload: [Other],
        unit: [Boolean, Int8, Int16, Int32, Int64, Floating32, Floating64, Str, Binary, Date,
               Time, Datetime, Timestamp, Uuid, Jsonb, Decimal, RangeInt32, RangeInt64,
               RangeDecimal, ArrayInt32, ArrayInt64, ArrayDecimal, ArrayStr, Interval],
        other: {});
    Column {
        name: column.name,
        data_type,
    }
}

fn error_from_v4_0(err: v4_0::Error) -> Error {
    use v4_0::Error as From;
    same_variants!(err, From => Error,
    payload: [ConnectionFailed, BadParameter, ValueConversionFailed, Other],
    unit: [],
    other: {
        From::QueryFailed(v4_0::QueryError::Text(text)) => {
            Error::QueryFailed(QueryError::Text(text))
        }
        From::QueryFailed(v4_0::QueryError::DbError(e)) => {
            Error::QueryFailed(QueryError::DbError(DbError {
                as_text: e.as_text,
                severity: e.severity,
                code: e.code,
                message: e.message,
                detail: e.detail,
                extras: e.extras,
            }))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::PoolOptions;
    use crate::sqlite::{Database, Location};
    use crate::state::HostState;
    use wit::{HostConnection, HostConnectionBuilder};

    fn state(url: &str, root: Option<&std::path::Path>) -> HostState {
        HostState::new(
            wasmtime_wasi::WasiCtx::builder().build(),
            Database::open(Location::Memory).unwrap(),
            Arc::new(super::super::Postgres::with_root_cert(
                Some(url),
                PoolOptions::default(),
                root,
            )),
            Default::default(),
        )
    }

    /// The builder and the functions 4.2.0 keeps from 4.0.0, called as a guest that uses no
    /// async function calls them (the async ones are driven by a guest in p3_serve.rs).
    #[tokio::test]
    async fn a_built_connection_runs_statements_and_a_foreign_root_is_refused() {
        let (server, ca) = zoe_test_postgres::shared_tls();
        let url = format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
            server.port()
        );
        let mut state = state(&url, Some(&ca.ca_path()));
        let trusted = std::fs::read_to_string(ca.ca_path()).unwrap();

        let builder = HostConnectionBuilder::new(&mut state, url.clone())
            .await
            .unwrap();
        let borrow = |b: &Resource<ConnectionBuilder>| Resource::new_borrow(b.rep());
        let not_pem = HostConnectionBuilder::set_ca_root(&mut state, borrow(&builder), "x".into());
        assert!(matches!(not_pem.await.unwrap(), Err(Error::Other(_))));
        let pem = HostConnectionBuilder::set_ca_root(&mut state, borrow(&builder), trusted);
        assert_eq!(pem.await.unwrap(), Ok(()));
        let Ok(conn) = HostConnectionBuilder::build(&mut state, borrow(&builder))
            .await
            .unwrap()
        else {
            panic!("a trusted root builds");
        };
        let rows = HostConnection::query(
            &mut state,
            Resource::new_borrow(conn.rep()),
            "SELECT $1::int8 + 1 AS n".into(),
            vec![ParameterValue::Int64(41)],
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(rows.rows, [vec![DbValue::Int64(42)]]);
        let executed = HostConnection::execute(
            &mut state,
            Resource::new_borrow(conn.rep()),
            "SELECT 1".into(),
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(executed, Ok(1));

        // A root the host does not trust: set, but the build is refused, naming the setting.
        let other_ca = zoe_test_postgres::TestCa::new().unwrap();
        let foreign = std::fs::read_to_string(other_ca.ca_path()).unwrap();
        let builder = HostConnectionBuilder::new(&mut state, url).await.unwrap();
        let set = HostConnectionBuilder::set_ca_root(&mut state, borrow(&builder), foreign);
        assert_eq!(set.await.unwrap(), Ok(()));
        match HostConnectionBuilder::build(&mut state, borrow(&builder))
            .await
            .unwrap()
        {
            Err(Error::ConnectionFailed(text)) => {
                assert!(text.contains("SESSION_POSTGRES_ROOT_CERT"), "{text}")
            }
            other => panic!("{other:?}"),
        }
        // Another address than the configured one is refused as by 4.0.0's open.
        let elsewhere = HostConnection::open(&mut state, "postgres://a@b:1/c".into()).await;
        assert!(matches!(
            elsewhere.unwrap(),
            Err(Error::ConnectionFailed(_))
        ));
    }
}
