//! Running one guest statement on a handle's server connection: the transaction checked
//! before and followed after, the plan prepared once and cached, a stale plan forgotten.

use super::errors::PgError;
use super::handle::Connection;
use super::pool::checkout;
use super::transactions::{Effect, Transaction, classify, statement_is_rollback};
use super::values::{SqlParameter, row_set, to_sql_parameters};
use crate::bindings::spin::postgres::postgres::{ParameterValue, RowSet};
use deadpool_postgres::Object;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

/// Prepared statements cached per connection before the cache is emptied: the guest uses a
/// small fixed set, and a guest that builds SQL text must not grow a connection without bound.
const STATEMENT_CACHE: usize = 256;

impl Connection {
    /// The connection for the next statement: the held one, or outside a transaction a fresh
    /// one if the server has closed it.
    async fn client(&mut self) -> Result<&Object, PgError> {
        let closed = self.client.as_ref().is_none_or(|client| client.is_closed());
        if closed {
            match self.transaction {
                Transaction::None => {
                    let fresh = checkout(&self.pool, &self.shown, self.options).await?;
                    if let Some(dead) = self.client.replace(fresh) {
                        drop(Object::take(dead));
                    }
                }
                Transaction::Open | Transaction::Lost => {
                    self.transaction = Transaction::Lost;
                    return Err(PgError::TransactionLost(self.shown.clone()));
                }
            }
        }
        self.client
            .as_ref()
            .ok_or_else(|| PgError::Pool("connection already returned".to_owned()))
    }

    /// Checks the transaction state before `statement`: its effect, or `None` when the
    /// statement has nothing left to do (a `ROLLBACK` of a transaction the server already
    /// rolled back).
    fn before(&mut self, statement: &str) -> Result<Option<Effect>, PgError> {
        let effect = classify(statement);
        if self.transaction != Transaction::Lost {
            return Ok(Some(effect));
        }
        if effect == Effect::Ends {
            self.transaction = Transaction::None;
            if statement_is_rollback(statement) {
                return Ok(None);
            }
        }
        Err(PgError::TransactionLost(self.shown.clone()))
    }

    fn after(&mut self, effect: Effect, succeeded: bool) {
        match effect {
            // A failed COMMIT ends the transaction too, and if the connection died the
            // server rolled it back.
            Effect::Ends => self.transaction = Transaction::None,
            Effect::Begins if succeeded => self.transaction = Transaction::Open,
            Effect::Begins | Effect::Savepoint | Effect::Neither => {}
        }
    }

    pub(super) async fn query(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, PgError> {
        let Some(effect) = self.before(statement)? else {
            return Ok(RowSet {
                columns: Vec::new(),
                rows: Vec::new(),
            });
        };
        let params = to_sql_parameters(params)?;
        let client = self.client().await?;
        let result = async {
            let prepared = prepare(client, statement).await?;
            let rows = client.query(&prepared, &refs(&params)).await?;
            row_set(&rows)
        }
        .await;
        forget_failed_plan(client, statement, &result);
        self.after(effect, result.is_ok());
        result
    }

    pub(super) async fn execute(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<u64, PgError> {
        let Some(effect) = self.before(statement)? else {
            return Ok(0);
        };
        let params = to_sql_parameters(params)?;
        let client = self.client().await?;
        let result = async {
            let prepared = prepare(client, statement).await?;
            Ok::<_, PgError>(client.execute(&prepared, &refs(&params)).await?)
        }
        .await;
        forget_failed_plan(client, statement, &result);
        self.after(effect, result.is_ok());
        result
    }
}

/// A cached plan can go stale (a migration changed a table's columns), so a statement the
/// server rejected is prepared afresh next time.
fn forget_failed_plan<T>(client: &Object, statement: &str, result: &Result<T, PgError>) {
    if let Err(PgError::Query(err)) = result
        && err.as_db_error().is_some()
    {
        client.statement_cache.remove(statement, &[]);
    }
}

fn refs(params: &[SqlParameter]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

async fn prepare(client: &Object, statement: &str) -> Result<Statement, tokio_postgres::Error> {
    if client.statement_cache.size() >= STATEMENT_CACHE {
        client.statement_cache.clear();
    }
    client.prepare_cached(statement).await
}
