//! Issue 31's figures (`--stores`): validate and create under `serve` (the WASIp2 build,
//! instances reused, its default) on each store zoe-session can keep its sessions in — SQLite,
//! PostgreSQL (a throwaway server), Spin's key-value store on its local SQLite file, and on
//! Redis (a throwaway `redis-server`, named in a runtime config file in Spin's format) — and the
//! host calls each operation makes there (`serve --count-host-calls`). Beside them the WASIp3
//! build (what spin.toml runs on Spin 4.1, an instance reused for 128 requests, 16 at once) on
//! SQLite and on Redis, where a validate reads its five keys ahead in two concurrent rounds.
//!
//! Two floors for the key-value cells, measured in the same rounds: the trivial component
//! (`bench/trivial`, `GET /kv?r=R&w=W`) making exactly the key-value reads and writes that
//! zoe-session's operation made, under the same `serve` and store; and those reads and writes as
//! raw Redis commands (`GET`, `SET`) from a Rust client (redis-rs, one multiplexed connection, as
//! the host keeps one per store), which is all Redis itself can give.

use crate::client::{Cell, Conn, Load, load, request};
use crate::http::{Server, create_request, spawn_serve, spawn_serve_logged, tokens, wait_ready};
use crate::stats::{Samples, Table, median, ratio};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Interleaved rounds of every throughput cell.
const ROUNDS: usize = 3;

/// Instances reused, as issue 31 measures it: named rather than left to `serve`'s default, which
/// for a WASIp2 component may be Spin's fresh instance per request.
const REUSE: [&str; 2] = ["--requests-per-instance", "100"];

/// Requests per operation whose host calls are counted (the table shows the median).
const COUNTED: usize = 21;

/// The stores, in the tables' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Sqlite,
    Postgres,
    KeyValueLocal,
    KeyValueRedis,
}

impl Store {
    const ALL: [Self; 4] = [
        Self::Sqlite,
        Self::Postgres,
        Self::KeyValueLocal,
        Self::KeyValueRedis,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::KeyValueLocal => "key-value, local",
            Self::KeyValueRedis => "key-value, Redis",
        }
    }

    fn is_key_value(self) -> bool {
        matches!(self, Self::KeyValueLocal | Self::KeyValueRedis)
    }
}

/// Where the stores live for this run.
struct Places {
    dir: PathBuf,
    postgres_url: String,
    /// A runtime config file naming the Redis server as key-value store `default`.
    redis_config: PathBuf,
}

impl Places {
    /// The `serve` environment that keeps sessions in `store`; `tag` keeps files apart.
    fn env(&self, store: Store, tag: &str) -> Vec<(&'static str, String)> {
        let db = self
            .dir
            .join(format!("stores-{tag}.db"))
            .display()
            .to_string();
        let mut env = vec![("SESSION_DB_PATH", db)];
        match store {
            Store::Sqlite => {}
            Store::Postgres => env.push(("SESSION_DATABASE_URL", self.postgres_url.clone())),
            Store::KeyValueLocal => env.push(("SESSION_KEY_VALUE_STORE", "default".to_owned())),
            Store::KeyValueRedis => {
                env.push(("SESSION_KEY_VALUE_STORE", "default".to_owned()));
                env.push((
                    "SESSION_RUNTIME_CONFIG_FILE",
                    self.redis_config.display().to_string(),
                ));
            }
        }
        env
    }
}

/// One operation's host calls, medians over [`COUNTED`] requests.
#[derive(Debug, Clone, Copy, Default)]
struct Calls {
    statements: f64,
    kv_opens: f64,
    kv_reads: f64,
    kv_writes: f64,
}

impl Calls {
    fn cell(&self, store: Store) -> String {
        if store.is_key_value() {
            format!(
                "{:.0} reads, {:.0} writes ({:.0} opens)",
                self.kv_reads, self.kv_writes, self.kv_opens
            )
        } else {
            format!("{:.0} SQL statement(s)", self.statements)
        }
    }

    /// The trivial component's request making the same key-value calls.
    fn floor_path(&self) -> String {
        format!("/kv?r={:.0}&w={:.0}", self.kv_reads, self.kv_writes)
    }
}

/// The host-call lines `log` gained after byte `from`.
fn lines_since(log: &Path, from: u64) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read(log).with_context(|| log.display().to_string())?;
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "host calls")
        .collect())
}

/// The median host calls of `COUNTED` validates and creates on `server` (stderr in `log`).
async fn count(server: &Server, log: &Path) -> anyhow::Result<[Calls; 2]> {
    let token = crate::fresh::token(server).await?;
    let mut conn = Conn::connect(server.addr).await?;
    let mut out = [Calls::default(); 2];
    for (o, op) in ["validate", "create"].into_iter().enumerate() {
        let from = std::fs::metadata(log).map_or(0, |m| m.len());
        for n in 0..COUNTED {
            let req = match op {
                "validate" => validate_request(&token),
                _ => create_request(&format!("count-{n}")),
            };
            let (status, _) = conn.send(&req).await?;
            anyhow::ensure!(
                (200..300).contains(&status),
                "{} {op}: {status}",
                server.name
            );
        }
        // Each line is written once its response body is done with, just after it is sent.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lines = lines_since(log, from)?;
        anyhow::ensure!(
            lines.len() >= COUNTED,
            "{}: {} host-call lines for {COUNTED} {op} requests",
            server.name,
            lines.len()
        );
        let pick = |names: &[&str]| {
            median(
                lines
                    .iter()
                    .map(|l| names.iter().map(|n| l[*n].as_f64().unwrap_or(0.0)).sum())
                    .collect(),
            )
        };
        out[o] = Calls {
            statements: pick(&["sqlite_statements", "postgres_statements"]),
            kv_opens: pick(&["key_value_opens"]),
            kv_reads: pick(&["key_value_reads"]),
            kv_writes: pick(&["key_value_writes"]),
        };
    }
    Ok(out)
}

fn validate_request(token: &str) -> Vec<u8> {
    request("GET", "/sessions/validate", &[("x-session-id", token)], "")
}

/// `reads` `GET`s then `writes` `SET`s of 200 bytes per operation, one after another, on
/// `concurrency` tasks sharing one multiplexed connection, for `duration`: the floor a
/// key-value operation on Redis cannot go under.
async fn raw_redis(
    url: &str,
    calls: Calls,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Load> {
    let client = redis::Client::open(url)?;
    let manager = redis::aio::ConnectionManager::new(client).await?;
    let (reads, writes) = (calls.kv_reads as usize, calls.kv_writes as usize);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let mut manager = manager.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(1 << 14);
            let value = vec![b'v'; 200];
            let mut n = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                for i in 0..reads {
                    let _: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(format!("floor-read-{i}"))
                        .query_async(&mut manager)
                        .await?;
                }
                for i in 0..writes {
                    let () = redis::cmd("SET")
                        .arg(format!("floor-raw-{c}-{n}-{i}"))
                        .arg(&value)
                        .query_async(&mut manager)
                        .await?;
                }
                samples.push(t.elapsed());
                n += 1;
            }
            anyhow::Ok(samples)
        }));
    }
    let mut latencies = Samples::default();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Load {
        latencies,
        elapsed: start.elapsed(),
        errors: 0,
    })
}

/// Runs the section.
pub async fn run(dir: &Path, host_bin: &Path, seconds: f64) -> anyhow::Result<()> {
    let postgres = zoe_test_postgres::PgServer::start()
        .map_err(|err| anyhow::anyhow!("PostgreSQL for --stores: {err}"))?;
    let postgres_url = postgres
        .fresh_database()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let redis = zoe_test_redis::RedisServer::start()
        .map_err(|err| anyhow::anyhow!("Redis for --stores: {err}"))?;
    let redis_config = dir.join("stores-redis.toml");
    std::fs::write(
        &redis_config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url()
        ),
    )?;
    let places = Places {
        dir: dir.to_owned(),
        postgres_url,
        redis_config,
    };
    println!(
        "\n`--stores`: serve (WASIp2, instances reused); a throwaway PostgreSQL (testing/postgres) and {} (testing/redis) on loopback",
        redis_version()
    );

    // Host calls, on servers of their own (the count's log line is work too), one at a time.
    let mut calls = Vec::new();
    for store in Store::ALL {
        let log = dir.join(format!("stores-count-{store:?}.log"));
        let mut server = spawn_serve_logged(
            host_bin,
            store.name(),
            &["--count-host-calls", REUSE[0], REUSE[1]],
            &places.env(store, &format!("count-{store:?}")),
            &log,
        )?;
        wait_ready(&mut server).await?;
        calls.push(count(&server, &log).await?);
    }
    let mut table = Table::new(
        "Host calls per operation, `serve --count-host-calls`, a reused instance, median of 21",
        &["store", "validate", "create"],
    );
    for (s, store) in Store::ALL.into_iter().enumerate() {
        table.row(vec![
            store.name().to_owned(),
            calls[s][0].cell(store),
            calls[s][1].cell(store),
        ]);
    }
    table.print();

    // Throughput: every store, and the floors, in interleaved rounds.
    let trivial = env!("TRIVIAL_WASM");
    let mut servers = Vec::new();
    for store in Store::ALL {
        servers.push(spawn_serve(
            host_bin,
            store.name(),
            &REUSE,
            &places.env(store, &format!("rate-{store:?}")),
        )?);
    }
    let mut floor_local = spawn_serve(
        host_bin,
        "trivial component, key-value local",
        &["--component", trivial, REUSE[0], REUSE[1]],
        &places.env(Store::KeyValueLocal, "rate-trivial"),
    )?;
    let mut floor_redis = spawn_serve(
        host_bin,
        "trivial component, key-value Redis",
        &["--component", trivial, REUSE[0], REUSE[1]],
        &places.env(Store::KeyValueRedis, "rate-trivial-redis"),
    )?;
    // The WASIp3 build (what spin.toml runs on Spin 4.1, `serve`'s reuse by default) on SQLite
    // and on Redis, where a validate reads its lookup keys ahead, together.
    let p3 = zoe_session_host::runtime::WASIP3_COMPONENT_PATH;
    for store in [Store::Sqlite, Store::KeyValueRedis] {
        servers.push(spawn_serve(
            host_bin,
            if store == Store::Sqlite {
                "WASIp3, SQLite"
            } else {
                "WASIp3, key-value Redis"
            },
            &["--component", p3],
            &places.env(store, &format!("rate-p3-{store:?}")),
        )?);
    }
    for server in servers
        .iter_mut()
        .chain([&mut floor_local, &mut floor_redis])
    {
        wait_ready(server).await?;
    }
    let mut all_tokens = Vec::new();
    for server in &servers {
        all_tokens.push(tokens(server).await?);
    }
    let duration = Duration::from_secs_f64(seconds);
    // Columns: the four stores, the WASIp3 build on SQLite and on Redis, the trivial floor on
    // the local store and on Redis, raw Redis.
    const COLUMNS: usize = 9;
    let ops = ["validate", "create"];
    let levels = [1usize, 32];
    let mut rounds = vec![vec![Vec::new(); COLUMNS]; ops.len() * levels.len()];
    for round in 0..ROUNDS {
        for (o, op) in ops.into_iter().enumerate() {
            for (l, &concurrency) in levels.iter().enumerate() {
                let row = &mut rounds[o * levels.len() + l];
                for (s, server) in servers.iter().enumerate() {
                    let tokens = all_tokens[s].clone();
                    let tag = format!("r{round}-s{s}-c{concurrency}");
                    let result = load(server.addr, concurrency, duration, move |c, n| match op {
                        // A token per connection: a session in use, whose activity is written
                        // at most once per 15 s (auto_update), as in steady use.
                        "validate" => validate_request(&tokens[c % tokens.len()]),
                        _ => create_request(&format!("{tag}-{c}-{n}")),
                    })
                    .await?;
                    ensure_clean(&result, server.name, op)?;
                    row[s].push(Cell::of(&result));
                }
                for (column, server, store) in [
                    (6, &floor_local, Store::KeyValueLocal),
                    (7, &floor_redis, Store::KeyValueRedis),
                ] {
                    let path = calls[store as usize][o].floor_path();
                    let result = load(server.addr, concurrency, duration, move |_, _| {
                        request("GET", &path, &[], "")
                    })
                    .await?;
                    ensure_clean(&result, server.name, op)?;
                    row[column].push(Cell::of(&result));
                }
                let result = raw_redis(
                    &redis.url(),
                    calls[Store::KeyValueRedis as usize][o],
                    concurrency,
                    duration,
                )
                .await?;
                row[8].push(Cell::of(&result));
            }
        }
    }
    let figures: Vec<Vec<Cell>> = rounds
        .iter()
        .map(|row| row.iter().map(|cells| Cell::median(cells)).collect())
        .collect();
    let mut table = Table::new(
        &format!(
            "`serve` (WASIp2, instances reused; and the WASIp3 build, Spin 4.1's reuse) per store, {ROUNDS} interleaved rounds of {seconds} s per cell: req/s (p50 / p99 µs), medians over the rounds; floors: the trivial component making the same key-value calls (WASIp2), and those calls as raw Redis commands"
        ),
        &[
            "op",
            "c",
            "SQLite",
            "PostgreSQL",
            "key-value, local",
            "key-value, Redis",
            "WASIp3: SQLite",
            "WASIp3: key-value, Redis",
            "floor: trivial, local",
            "floor: trivial, Redis",
            "floor: raw Redis",
        ],
    );
    for (o, op) in ops.into_iter().enumerate() {
        for (l, concurrency) in levels.iter().enumerate() {
            let mut cells = vec![op.to_owned(), concurrency.to_string()];
            cells.extend(figures[o * levels.len() + l].iter().map(Cell::text));
            table.row(cells);
        }
    }
    table.print();
    let mut ratios = Table::new(
        "Ratios of req/s (medians over the rounds)",
        &[
            "op",
            "c",
            "Redis / SQLite",
            "Redis / PostgreSQL",
            "local / SQLite",
            "Redis / trivial on Redis",
            "Redis / raw Redis",
            "local / trivial on local",
            "WASIp3: Redis / SQLite",
            "WASIp3: Redis / PostgreSQL (WASIp2)",
        ],
    );
    for (o, op) in ops.into_iter().enumerate() {
        for (l, concurrency) in levels.iter().enumerate() {
            let f = &figures[o * levels.len() + l];
            let r = |a: usize, b: usize| ratio(f[a].per_second, f[b].per_second);
            ratios.row(vec![
                op.to_owned(),
                concurrency.to_string(),
                r(3, 0),
                r(3, 1),
                r(2, 0),
                r(3, 7),
                r(3, 8),
                r(2, 6),
                r(5, 4),
                r(5, 1),
            ]);
        }
    }
    ratios.print();
    println!(
        "\nTargets (issue 31): key-value on Redis validate ≥ 0.7x SQLite and ≥ PostgreSQL at c=1 and c=32; creates bounded by Redis round trips (the floors above)."
    );
    Ok(())
}

fn ensure_clean(result: &Load, name: &str, op: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        result.errors == 0,
        "{name} {op}: {} of {} answers were not 2xx",
        result.errors,
        result.latencies.len()
    );
    Ok(())
}

/// `redis-server --version`'s version, for the run's header.
fn redis_version() -> String {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .find_map(|w| w.strip_prefix("v=").map(|v| format!("Redis {v}")))
        })
        .unwrap_or_else(|| "Redis (version unknown)".to_owned())
}
