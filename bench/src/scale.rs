//! Scale figures: validate latency as the table grows, database bytes per session, cleanup of
//! expired rows in bounded batches with validates running beside it, and resident memory.
//!
//! Rows are seeded natively in one transaction into the schema the component's migrations
//! made; the component then validates tokens spread over the whole table, so lookups touch
//! pages from everywhere in the index rather than a hot few.

use crate::inproc::host;
use crate::native;
use crate::stats::{Samples, Table, proc_kib, us};
use anyhow::Context as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use zoe_session_host::{Clock, Runtime};

/// Validates timed per table size (component and native each).
const VALIDATES: usize = 3000;
/// Expired rows seeded for the cleanup run.
const EXPIRED: u64 = 100_000;

/// Runs the scale figures for table sizes `sizes` (ascending) and prints their tables.
pub async fn run(runtime: &Runtime, dir: &Path, sizes: &[u64]) -> anyhow::Result<()> {
    let now = native::now_ms();
    let clock = Clock::manual(now);
    let path = dir.join("scale.db");
    let host = host(runtime, &path, clock.clone()).await?;
    let mut sessions = host.sessions().await?;
    let conn = native::connect(&path)?;
    let engine = native::Native::sqlite(&path, 100_000)?;

    let mut table = Table::new(
        "Validate latency as the table grows (component and native on the same file), µs",
        &[
            "sessions",
            "seed time",
            "component p50",
            "component p99",
            "native p50",
            "native p99",
            "DB bytes/session",
        ],
    );
    let mut seeded = 0u64;
    let mut tokens = Vec::new();
    for &size in sizes {
        let add = size.saturating_sub(seeded);
        let start = Instant::now();
        // Keep about 20k tokens in all, spread evenly over the rows.
        let keep_every = (sizes.last().copied().unwrap_or(size) / 20_000).max(1);
        tokens.extend(native::seed(
            &conn, seeded, add, now, 3_600_000, keep_every,
        )?);
        let seed_time = start.elapsed();
        seeded = size;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        let bytes = file_bytes(&path);

        // A fixed stride over the kept tokens visits the whole key range in a scattered order.
        let pick = |i: usize| &tokens[(i * 7919) % tokens.len()];
        let mut comp = Samples::with_capacity(VALIDATES);
        let mut nat = Samples::with_capacity(VALIDATES);
        for i in 0..VALIDATES {
            let t = Instant::now();
            sessions
                .validate(pick(i))
                .await
                .context("component validate")?;
            comp.push(t.elapsed());
            let t = Instant::now();
            engine
                .validate(pick(i + 1), now)
                .context("native validate")?;
            nat.push(t.elapsed());
        }
        table.row(vec![
            size.to_string(),
            format!("{:.1} s", seed_time.as_secs_f64()),
            us(comp.quantile_us(0.5)),
            us(comp.quantile_us(0.99)),
            us(nat.quantile_us(0.5)),
            us(nat.quantile_us(0.99)),
            format!("{:.0}", bytes as f64 / size as f64),
        ]);
    }
    table.print();

    // Cleanup: 100k expired rows on top of the largest table, deleted by the component in one
    // `cleanup` call (500-row statements) while another instance validates without pause.
    native::seed(&conn, seeded, EXPIRED, now, -1_000, u64::MAX)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    let stop = Arc::new(AtomicBool::new(false));
    let validator = {
        let host = host.clone();
        let stop = stop.clone();
        let tokens = tokens.clone();
        std::thread::spawn(move || -> anyhow::Result<Samples> {
            let rt = tokio::runtime::Builder::new_current_thread().build()?;
            rt.block_on(async {
                let mut sessions = host.sessions().await?;
                let mut samples = Samples::default();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    sessions
                        .validate(&tokens[(i * 7919) % tokens.len()])
                        .await
                        .context("validate during cleanup")?;
                    samples.push(t.elapsed());
                    i += 1;
                }
                Ok(samples)
            })
        })
    };
    // Let the validator reach its steady state before the cleanup starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let deleted = sessions.cleanup(EXPIRED as u32).await?;
    let cleanup_time = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during = validator
        .join()
        .map_err(|_| anyhow::anyhow!("validator thread panicked"))??;
    anyhow::ensure!(
        u64::from(deleted) == EXPIRED,
        "cleanup deleted {deleted} of {EXPIRED}"
    );

    let mut cleanup = Table::new(
        &format!(
            "Cleanup of {EXPIRED} expired rows (beside {seeded} live ones) with validates running"
        ),
        &["figure", "value"],
    );
    cleanup.row(vec![
        "cleanup(100000) wall time".to_owned(),
        format!("{:.0} ms", cleanup_time.as_secs_f64() * 1000.0),
    ]);
    cleanup.row(vec![
        "rows deleted per second".to_owned(),
        format!("{:.0}", f64::from(deleted) / cleanup_time.as_secs_f64()),
    ]);
    cleanup.row(vec![
        "validates completed meanwhile (incl. 200 ms before)".to_owned(),
        during.len().to_string(),
    ]);
    cleanup.row(vec![
        "validate p50".to_owned(),
        format!("{} µs", us(during.quantile_us(0.5))),
    ]);
    cleanup.row(vec![
        "validate p99".to_owned(),
        format!("{} µs", us(during.quantile_us(0.99))),
    ]);
    cleanup.row(vec![
        "worst validate".to_owned(),
        format!("{:.2} ms", during.max_us() / 1000.0),
    ]);
    cleanup.row(vec![
        "bench process VmRSS / VmHWM".to_owned(),
        format!(
            "{} / {} MiB",
            proc_kib("self", "VmRSS").map_or("–".into(), |k| (k / 1024).to_string()),
            proc_kib("self", "VmHWM").map_or("–".into(), |k| (k / 1024).to_string())
        ),
    ]);
    cleanup.print();
    Ok(())
}

/// Size of the database file and its WAL, in bytes.
fn file_bytes(path: &Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
