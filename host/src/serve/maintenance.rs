//! The cleanup timer: expired sessions deleted on a schedule, the WAL kept bounded.

use super::log::log_line;
use crate::api::SessionHost;
use std::time::Duration;

/// Expired rows one timer run deletes at most (the component deletes in small batches).
const CLEANUP_ROWS: u32 = 100_000;

/// Deletes expired sessions every `every`, and for file databases truncates the WAL so it
/// cannot grow without bound between checkpoints.
pub(super) async fn cleanup_timer(host: SessionHost, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match cleanup_once(&host).await {
            Ok(0) => {}
            Ok(deleted) => log_line(
                "INFO",
                "cleanup",
                &format!("deleted {deleted} expired session(s)"),
            ),
            Err(err) => log_line("ERROR", "cleanup failed", &err),
        }
    }
}

async fn cleanup_once(host: &SessionHost) -> Result<u32, String> {
    let deleted = async { host.sessions().await?.cleanup(CLEANUP_ROWS).await }
        .await
        .map_err(|err| err.to_string())?;
    if host.database().path().is_some() {
        let database = host.database().clone();
        tokio::task::spawn_blocking(move || {
            database.with_connection(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            })
        })
        .await
        .map_err(|err| err.to_string())??;
    }
    Ok(deleted)
}
