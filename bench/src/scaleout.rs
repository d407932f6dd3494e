//! Scale-out figures: `serve` on PostgreSQL against `serve` on SQLite, and one replica
//! against two on the same PostgreSQL database, in one run with the same closed-loop client;
//! then the native limit: the same engine compiled natively on rusqlite and on PostgreSQL,
//! next to the component in-process and `serve`, so each layer's share of a request shows.
//! The PostgreSQL server is a throwaway one on loopback (`testing/postgres`), with
//! `fsync=off` as in the tests; SQLite runs in WAL with `synchronous=NORMAL`, `serve`'s default.

use crate::client::{Load, load, request};
use crate::http::{Server, create_request, spawn_serve, tokens, wait_ready};
use crate::native::{self, Native};
use crate::stats::{Samples, Table, ratio, us};
use anyhow::Context as _;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use zoe_session_host::{Clock, CreateOptions, HostConfig, Location, Runtime, SessionHost};

/// Operations timed per cell of the native-limit table.
const NATIVE_OPS: usize = 2000;

/// Runs `endpoint` at `concurrency` spread evenly over `servers`, all at once.
async fn run_on(
    servers: &[&Server],
    tokens: &[String],
    endpoint: &'static str,
    concurrency: usize,
    duration: Duration,
    tag: &str,
) -> anyhow::Result<Load> {
    let per_server = (concurrency / servers.len()).max(1);
    let mut runs = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let tokens = tokens.to_vec();
        let tag = format!("{tag}-{i}");
        let make = move |c: usize, n: usize| match endpoint {
            "validate" => request(
                "GET",
                "/sessions/validate",
                &[("x-session-id", tokens[(c * 31 + n) % tokens.len()].as_str())],
                "",
            ),
            _ => create_request(&format!("{tag}-{c}-{n}")),
        };
        runs.push(tokio::spawn(load(server.addr, per_server, duration, make)));
    }
    let mut total: Option<Load> = None;
    for run in runs {
        let result = run.await??;
        anyhow::ensure!(
            result.errors == 0,
            "{endpoint}: {} of {} requests failed",
            result.errors,
            result.latencies.len()
        );
        total = Some(match total {
            None => result,
            Some(mut sum) => {
                sum.latencies.extend(result.latencies);
                sum.elapsed = sum.elapsed.max(result.elapsed);
                sum
            }
        });
    }
    total.context("no server")
}

/// Prints the scale-out table.
pub async fn run(
    runtime: &Runtime,
    dir: &Path,
    host_bin: &Path,
    seconds: f64,
) -> anyhow::Result<()> {
    let postgres = zoe_test_postgres::PgServer::start()
        .map_err(|err| anyhow::anyhow!("PostgreSQL for the scale-out figures: {err}"))?;
    let url = postgres
        .fresh_database()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let db = |name: &str| ("SESSION_DB_PATH", dir.join(name).display().to_string());
    // Reused instances, as these figures were always taken (serve's WASIp2 default is now
    // Spin's fresh instance per request).
    let reuse: &[&str] = &["--requests-per-instance", "100"];
    let mut sqlite = spawn_serve(
        host_bin,
        "serve on SQLite",
        reuse,
        &[db("scale-out-sqlite.db")],
    )?;
    let on_postgres = |name| {
        spawn_serve(
            host_bin,
            name,
            reuse,
            &[
                ("SESSION_DATABASE_URL", url.clone()),
                db("scale-out-unused.db"),
            ],
        )
    };
    let mut first = on_postgres("serve on PostgreSQL, replica 1")?;
    let mut second = on_postgres("serve on PostgreSQL, replica 2")?;
    for server in [&mut sqlite, &mut first, &mut second] {
        wait_ready(server).await?;
    }
    let sqlite_tokens = tokens(&sqlite).await?;
    let postgres_tokens = tokens(&first).await?;

    let duration = Duration::from_secs_f64(seconds);
    let mut table = Table::new(
        &format!(
            "Scale-out on loopback: `serve` on SQLite vs on PostgreSQL, one replica vs two on one database, {seconds} s per cell"
        ),
        &[
            "endpoint",
            "conc. (total)",
            "SQLite req/s",
            "p50 µs",
            "PostgreSQL, 1 replica req/s",
            "p50 µs",
            "p99 µs",
            "2 replicas req/s",
            "p50 µs",
            "ratio PG/SQLite",
            "ratio 2/1 replicas",
        ],
    );
    // p50 µs at one connection, per (endpoint, backend), for the native-limit table.
    let mut serve_p50 = HashMap::new();
    for endpoint in ["validate", "create"] {
        for concurrency in [1, 2, 32] {
            let tag = format!("so{concurrency}");
            let lite = run_on(
                &[&sqlite],
                &sqlite_tokens,
                endpoint,
                concurrency,
                duration,
                &format!("{tag}l"),
            )
            .await?;
            let one = run_on(
                &[&first],
                &postgres_tokens,
                endpoint,
                concurrency,
                duration,
                &format!("{tag}a"),
            )
            .await?;
            let (two_rate, two_p50) = if concurrency >= 2 {
                let two = run_on(
                    &[&first, &second],
                    &postgres_tokens,
                    endpoint,
                    concurrency,
                    duration,
                    &format!("{tag}b"),
                )
                .await?;
                (Some(two.per_second()), us(two.latencies.quantile_us(0.5)))
            } else {
                (None, "–".to_owned())
            };
            if concurrency == 1 {
                serve_p50.insert((endpoint, "sqlite"), lite.latencies.quantile_us(0.5));
                serve_p50.insert((endpoint, "postgres"), one.latencies.quantile_us(0.5));
            }
            table.row(vec![
                endpoint.to_owned(),
                concurrency.to_string(),
                format!("{:.0}", lite.per_second()),
                us(lite.latencies.quantile_us(0.5)),
                format!("{:.0}", one.per_second()),
                us(one.latencies.quantile_us(0.5)),
                us(one.latencies.quantile_us(0.99)),
                two_rate.map_or("–".to_owned(), |r| format!("{r:.0}")),
                two_p50,
                ratio(one.per_second(), lite.per_second()),
                two_rate.map_or("–".to_owned(), |r| ratio(r, one.per_second())),
            ]);
        }
    }
    table.print();
    drop((sqlite, first, second));
    native_limit(runtime, dir, &postgres, &serve_p50).await
}

/// p50 µs of validate and create, one at a time, on each backend and at each layer.
#[derive(Debug, Default)]
struct Layer {
    validate: Samples,
    create: Samples,
}

/// The engine natively on one backend; run on its own thread because the `postgres` crate
/// blocks on a runtime of its own, which a tokio worker may not do.
fn native_layer(open: impl FnOnce() -> anyhow::Result<Native> + Send) -> anyhow::Result<Layer> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let engine = open()?;
                let now = native::now_ms();
                let mut layer = Layer::default();
                let tokens = (0..200)
                    .map(|i| engine.create(&format!("warm-{i}"), now))
                    .collect::<Result<Vec<_>, _>>()?;
                for i in 0..NATIVE_OPS {
                    let t = Instant::now();
                    engine.validate(&tokens[i % tokens.len()], now)?;
                    layer.validate.push(t.elapsed());
                    let t = Instant::now();
                    engine.create(&format!("native-{i}"), now)?;
                    layer.create.push(t.elapsed());
                }
                Ok(layer)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the native benchmark thread panicked"))?
    })
}

/// The component through the host's typed API (one instance reused) on `config`'s store.
async fn component_layer(runtime: &Runtime, config: HostConfig) -> anyhow::Result<Layer> {
    let clock = Clock::manual(native::now_ms());
    let host = SessionHost::open_with_clock(runtime, config, clock).await?;
    let mut sessions = host.sessions().await?;
    let mut tokens = Vec::new();
    for i in 0..200 {
        let user = format!("warm-{i}");
        tokens.push(
            sessions
                .create(&user, CreateOptions::default())
                .await?
                .token,
        );
    }
    let mut layer = Layer::default();
    for i in 0..NATIVE_OPS {
        let t = Instant::now();
        sessions
            .validate(&tokens[i % tokens.len()])
            .await
            .context("component validate")?;
        layer.validate.push(t.elapsed());
        let t = Instant::now();
        sessions
            .create(&format!("component-{i}"), CreateOptions::default())
            .await
            .context("component create")?;
        layer.create.push(t.elapsed());
    }
    Ok(layer)
}

/// Prints the native-limit table: where a request's time goes on each backend.
async fn native_limit(
    runtime: &Runtime,
    dir: &Path,
    postgres: &zoe_test_postgres::PgServer,
    serve_p50: &HashMap<(&str, &str), f64>,
) -> anyhow::Result<()> {
    let fresh = || {
        postgres
            .fresh_database()
            .map_err(|err| anyhow::anyhow!("{err}"))
    };
    let native_sqlite = {
        let path = dir.join("native-limit.db");
        native_layer(move || Ok(Native::sqlite(&path, 100_000)?))?
    };
    let native_postgres = {
        let url = fresh()?;
        native_layer(move || Ok(Native::postgres(&url, 100_000)?))?
    };
    let component_sqlite = component_layer(
        runtime,
        HostConfig {
            database: Location::File(dir.join("native-limit-component.db")),
            ..HostConfig::in_memory()
        }
        .with("max_per_user", "100000"),
    )
    .await?;
    let component_postgres = component_layer(
        runtime,
        HostConfig::in_memory()
            .with("database_url", fresh()?)
            .with("max_per_user", "100000"),
    )
    .await?;
    let mut table = Table::new(
        &format!(
            "Native limit: the same engine natively, the component in-process, and `serve` at c=1; p50 µs per operation ({NATIVE_OPS} each)"
        ),
        &[
            "operation",
            "backend",
            "engine natively",
            "component in-process",
            "serve (HTTP)",
            "in-process / native",
            "serve / native",
        ],
    );
    for (op, pick) in [
        (
            "validate",
            (|l: &Layer| &l.validate) as fn(&Layer) -> &Samples,
        ),
        ("create", |l: &Layer| &l.create),
    ] {
        for (backend, native, component) in [
            ("SQLite", &native_sqlite, &component_sqlite),
            ("PostgreSQL", &native_postgres, &component_postgres),
        ] {
            let key = if backend == "SQLite" {
                "sqlite"
            } else {
                "postgres"
            };
            let n = pick(native).quantile_us(0.5);
            let c = pick(component).quantile_us(0.5);
            let s = serve_p50.get(&(op, key)).copied().unwrap_or(f64::NAN);
            table.row(vec![
                op.to_owned(),
                backend.to_owned(),
                us(n),
                us(c),
                us(s),
                ratio(c, n),
                ratio(s, n),
            ]);
        }
    }
    table.print();
    Ok(())
}
