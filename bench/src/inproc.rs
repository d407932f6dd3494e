//! In-process figures: the component through the host's typed API (one instance reused for
//! every call) against the same engine compiled natively on rusqlite, on the same kind of
//! database, interleaved in rounds so that load from elsewhere on the machine hits both
//! sides alike.

use crate::native;
use crate::stats::{Table, median, ratio, us};
use anyhow::Context as _;
use std::path::Path;
use std::time::Instant;
use zoe_session::session::engine::EngineError;
use zoe_session_host::{
    Allocation, Clock, CreateOptions, HostConfig, Location, Runtime, SessionHost,
};

/// Rounds per operation; the table shows the median round.
const ROUNDS: usize = 7;

/// A host over a file database in `dir`, with a clock stopped at `now` so validates never
/// fall due for an activity write (the write is throttled to once per 15 s per session; the
/// read path is what a hot validate costs).
pub async fn host(runtime: &Runtime, path: &Path, clock: Clock) -> anyhow::Result<SessionHost> {
    let config = HostConfig {
        database: Location::File(path.to_owned()),
        ..HostConfig::in_memory()
    }
    .with("max_per_user", "100000");
    Ok(SessionHost::open_with_clock(runtime, config, clock).await?)
}

/// Per-op timings of one operation, component and native side by side.
struct Op {
    name: &'static str,
    component: Vec<f64>,
    native: Vec<f64>,
}

impl Op {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            component: Vec::new(),
            native: Vec::new(),
        }
    }
}

/// Mean µs per iteration of `body` over `n` iterations; a macro so the body may `.await`
/// and borrow the instance mutably, which a closure returning a future cannot.
macro_rules! timed {
    ($n:expr, |$i:ident| $body:block) => {{
        let start = Instant::now();
        for $i in 0..$n {
            $body
        }
        start.elapsed().as_secs_f64() * 1e6 / $n as f64
    }};
}

/// Runs the in-process comparison and prints its table.
pub async fn run(runtime: &Runtime, dir: &Path, scale: usize) -> anyhow::Result<()> {
    let now = native::now_ms();
    let clock = Clock::manual(now);
    let comp_host = host(runtime, &dir.join("inproc-component.db"), clock.clone()).await?;
    // The native side gets its own file, migrated by its own (the same) store code.
    let native = native::Native::sqlite(&dir.join("inproc-native.db"), 100_000)?;
    let mut sessions = comp_host.sessions().await?;

    let tokens = 1000;
    let mut comp_tokens = Vec::with_capacity(tokens);
    let mut native_tokens = Vec::with_capacity(tokens);
    for i in 0..tokens {
        let user = format!("warm-{i}");
        comp_tokens.push(
            sessions
                .create(&user, CreateOptions::default())
                .await?
                .token,
        );
        native_tokens.push(native.create(&user, now)?);
    }
    for _ in 0..10 {
        sessions.create("lister", CreateOptions::default()).await?;
        native.create("lister", now)?;
    }

    let n_fast = 4000 / scale;
    let n_write = 600 / scale;
    let mut ops = vec![
        Op::new("call overhead: validate(\"x\")"),
        Op::new("validate"),
        Op::new("create"),
        Op::new("extend"),
        Op::new("list-user (10 sessions)"),
        Op::new("call overhead, pooling allocator"),
        Op::new("validate, pooling allocator"),
    ];
    // The same component on a runtime with the pooling allocator, sharing the database file:
    // shows what instance and fiber-stack allocation cost the typed API per call.
    let pooled_runtime = Runtime::new(Allocation::Pooling { max_instances: 16 })?;
    let pooled_host = host(
        &pooled_runtime,
        &dir.join("inproc-component.db"),
        clock.clone(),
    )
    .await?;
    let mut pooled = pooled_host.sessions().await?;
    for round in 0..ROUNDS {
        let s = &mut sessions;
        let c = native.at(now);
        ops[0].component.push(timed!(n_fast, |_i| {
            let result = s.validate("x").await;
            anyhow::ensure!(
                matches!(&result, Err(e) if e.session().is_some()),
                "validate(\"x\") should fail: {result:?}"
            );
        }));
        ops[0].native.push(timed!(n_fast, |_i| {
            let result = c.validate("x");
            anyhow::ensure!(
                matches!(result, Err(EngineError::InvalidToken)),
                "native validate(\"x\") should fail: {result:?}"
            );
        }));

        ops[1].component.push(timed!(n_fast, |i| {
            s.validate(&comp_tokens[i % tokens])
                .await
                .context("component validate")?;
        }));
        ops[1].native.push(timed!(n_fast, |i| {
            c.validate(&native_tokens[i % tokens])
                .context("native validate")?;
        }));

        ops[2].component.push(timed!(n_write, |i| {
            s.create(&format!("c{round}-{i}"), CreateOptions::default())
                .await
                .context("component create")?;
        }));
        ops[2].native.push(timed!(n_write, |i| {
            c.create(&format!("c{round}-{i}"), None, None)
                .context("native create")?;
        }));

        ops[3].component.push(timed!(n_write, |i| {
            s.extend(&comp_tokens[i % tokens], 60)
                .await
                .context("component extend")?;
        }));
        ops[3].native.push(timed!(n_write, |i| {
            c.extend(&native_tokens[i % tokens], 60)
                .context("native extend")?;
        }));

        ops[4].component.push(timed!(n_write, |_i| {
            let list = s.list_user("lister").await.context("component list")?;
            anyhow::ensure!(list.len() == 10, "list-user returned {}", list.len());
        }));
        ops[4].native.push(timed!(n_write, |_i| {
            let list = c.list_user("lister").context("native list")?;
            anyhow::ensure!(list.len() == 10, "native list-user returned {}", list.len());
        }));

        let p = &mut pooled;
        ops[5].component.push(timed!(n_fast, |_i| {
            let result = p.validate("x").await;
            anyhow::ensure!(result.is_err(), "validate(\"x\") should fail");
        }));
        ops[6].component.push(timed!(n_fast, |i| {
            p.validate(&comp_tokens[i % tokens])
                .await
                .context("pooled validate")?;
        }));
    }

    let mut table = Table::new(
        "In-process: typed host API (one instance reused) vs the same engine natively on rusqlite, µs/op",
        &["operation", "component", "native", "ratio"],
    );
    let mut medians: Vec<(f64, f64)> = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        // The pooled rows (5, 6) compare with the same native figures as rows 0 and 1.
        let n = match i {
            5 | 6 => medians[i - 5].1,
            _ => median(op.native),
        };
        let c = median(op.component);
        medians.push((c, n));
        table.row(vec![op.name.to_owned(), us(c), us(n), ratio(c, n)]);
    }
    table.print();

    let (overhead, _) = medians[0];
    let (validate, native_validate) = medians[1];
    let mut split = Table::new(
        "Where a component validate's time goes, µs",
        &["part", "µs", "share"],
    );
    let guest = validate - overhead - native_validate;
    for (part, value) in [
        (
            "call overhead (instance call, configuration, database handle)",
            overhead,
        ),
        (
            "the engine and SQLite natively (the native validate)",
            native_validate,
        ),
        (
            "the rest (guest code in Wasm, spin:sqlite marshalling, copies)",
            guest,
        ),
        ("total component validate", validate),
    ] {
        split.row(vec![
            part.to_owned(),
            us(value),
            format!("{:.0}%", value / validate * 100.0),
        ]);
    }
    split.print();
    Ok(())
}
