//! Contention figures (issue 16): `/health` latency beside a create flood, the WAL's largest
//! size under creates with a CPU-bound competitor, and the cost of `synchronous=FULL`. Each
//! drives a `serve` child process; `ZOE_SESSION_HOST_BIN` picks the binary, which is how the
//! same figures are taken on an older build for a before/after comparison.

use crate::client::{Conn, load, request};
use crate::http::{Server, create_request, spawn_serve, wait_ready};
use crate::stats::{Table, us};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn start(host_bin: &Path, db: &Path, synchronous: Option<&str>) -> anyhow::Result<Server> {
    let mut env = vec![("SESSION_DB_PATH", db.display().to_string())];
    if let Some(value) = synchronous {
        env.push(("SESSION_SYNCHRONOUS", value.to_owned()));
    }
    // Reused instances, as these figures were always taken (serve's WASIp2 default is now
    // Spin's fresh instance per request).
    spawn_serve(host_bin, "serve", &["--requests-per-instance", "100"], &env)
}

/// Threads spinning on the CPU until dropped, the competitor of the WAL figure.
struct Burners {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Burners {
    fn start(count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn creates(tag: &'static str) -> impl Fn(usize, usize) -> Vec<u8> + Send + Sync + Clone + 'static {
    move |c, n| create_request(&format!("{tag}-{c}-{n}"))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Runs the three contention tables.
pub async fn run(
    dir: &Path,
    host_bin: &Path,
    seconds: f64,
    wal_seconds: f64,
) -> anyhow::Result<()> {
    let cell = Duration::from_secs_f64(seconds);
    let health = |_: usize, _: usize| request("GET", "/health", &[], "");

    // 1. /health alone, beside a create flood at c=32, and beside two spinning threads (CPU
    //    sharing alone, no database work): the difference between the last two is what the
    //    flood adds beyond taking CPU.
    let db = dir.join("contention-health.db");
    let mut server = start(host_bin, &db, None)?;
    wait_ready(&mut server).await?;
    let mut table = Table::new(
        &format!("`/health` at concurrency 1, {seconds} s per cell"),
        &[
            "condition",
            "health req/s",
            "p50 µs",
            "p99 µs",
            "creates/s beside",
        ],
    );
    let idle = load(server.addr, 1, cell, health).await?;
    table.row(vec![
        "idle".into(),
        format!("{:.0}", idle.per_second()),
        us(idle.latencies.quantile_us(0.5)),
        us(idle.latencies.quantile_us(0.99)),
        "–".into(),
    ]);
    let addr = server.addr;
    let flood = tokio::spawn(load(
        addr,
        32,
        cell + Duration::from_millis(500),
        creates("flood"),
    ));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let busy = load(addr, 1, cell, health).await?;
    let flood = flood.await??;
    table.row(vec![
        "create flood, c=32".into(),
        format!("{:.0}", busy.per_second()),
        us(busy.latencies.quantile_us(0.5)),
        us(busy.latencies.quantile_us(0.99)),
        format!("{:.0} ({} errors)", flood.per_second(), flood.errors),
    ]);
    let burned = {
        let _burners = Burners::start(2);
        load(addr, 1, cell, health).await?
    };
    table.row(vec![
        "2 spinning threads, no creates".into(),
        format!("{:.0}", burned.per_second()),
        us(burned.latencies.quantile_us(0.5)),
        us(burned.latencies.quantile_us(0.99)),
        "–".into(),
    ]);
    drop(server);
    table.print();

    // 2. The WAL's largest size during creates at c=32 with a CPU-bound competitor.
    let db = dir.join("contention-wal.db");
    let wal = dir.join("contention-wal.db-wal");
    let mut server = start(host_bin, &db, None)?;
    wait_ready(&mut server).await?;
    let largest = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (largest, sampling, wal) = (largest.clone(), sampling.clone(), wal.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                largest.fetch_max(file_len(&wal), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let run = {
        let _burners = Burners::start(2);
        load(
            server.addr,
            32,
            Duration::from_secs_f64(wal_seconds),
            creates("wal"),
        )
        .await?
    };
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let mut table = Table::new(
        &format!(
            "WAL under creates at concurrency 32 for {wal_seconds} s, 2 spinning threads competing"
        ),
        &[
            "creates",
            "creates/s",
            "errors",
            "largest WAL",
            "WAL at end",
            "database",
        ],
    );
    let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64);
    table.row(vec![
        run.latencies.len().to_string(),
        format!("{:.0}", run.per_second()),
        run.errors.to_string(),
        mib(largest.load(Ordering::Relaxed)),
        mib(file_len(&wal)),
        mib(file_len(&db)),
    ]);
    drop(server);
    table.print();

    // 3. Create cost, synchronous NORMAL vs FULL.
    let mut table = Table::new(
        &format!("create, `SESSION_SYNCHRONOUS` normal vs full, {seconds} s per cell"),
        &[
            "conc.",
            "normal req/s",
            "p50 µs",
            "p99 µs",
            "full req/s",
            "p50 µs",
            "p99 µs",
        ],
    );
    let mut servers = Vec::new();
    for value in ["normal", "full"] {
        let mut server = start(
            host_bin,
            &dir.join(format!("contention-{value}.db")),
            Some(value),
        )?;
        wait_ready(&mut server).await?;
        // Make sure the schema exists before timing (the first create migrates).
        let mut conn = Conn::connect(server.addr).await?;
        conn.send(&create_request("warm-up")).await?;
        servers.push(server);
    }
    for concurrency in [1, 32] {
        let mut cells = vec![concurrency.to_string()];
        for server in &servers {
            let run = load(server.addr, concurrency, cell, creates("sync")).await?;
            cells.push(format!("{:.0}", run.per_second()));
            cells.push(us(run.latencies.quantile_us(0.5)));
            cells.push(us(run.latencies.quantile_us(0.99)));
        }
        table.row(cells);
    }
    table.print();
    Ok(())
}
