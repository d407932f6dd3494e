//! `serve` with a WASIp3 component (`wasi:http/handler@0.3.0`), as Spin 4.1 runs one: an
//! instance takes up to 128 requests, up to 16 at once, and is dropped after a trap (not after
//! a 500 it answers itself); a WASIp2 component keeps its own policy; a middleware chain runs
//! outermost first; and the WASIp3-era `spin:sqlite@3.1.0` and `spin:variables@3.0.0` answer.
//!
//! The apps are the test components in `host/tests/components/` (spin-sdk 7), built on first
//! use: `p3-probe` reports in headers which instance served a request (`x-instance`), the
//! request's ordinal there (`x-served`) and the most requests it has run at once
//! (`x-max-in-flight`); `p3-tag`, built once per tag, is a middleware that appends its tag to
//! `x-chain` on the way in and to `x-chain-out` on the way out, or answers `/deny-<tag>` itself.
//!
//! # Serving your own WASIp3 component or middleware (for the p3/ and middleware/ crates)
//!
//! From the command line (docs/operations.md, "serve"):
//!
//! ```text
//! zoe-session-host serve --component app.wasm                       # a WASIp3 app, Spin's reuse
//! zoe-session-host serve --component app.wasm --middleware mw.wasm  # mw in front of app
//! zoe-session-host serve --component app.wasm --middleware outer.wasm --middleware inner.wasm
//! ```
//!
//! `--max-instance-reuse-count` (128), `--max-instance-concurrent-reuse-count` (16) and
//! `--idle-instance-timeout` (1s) set Spin's policy for a WASIp3 app. In a test, compose with
//! [`zoe_session_host::middleware::compose`], load with `Runtime::from_bytes` and start
//! `Server` with `ServeOptions { p3_reuse, .. }`, as [`Harness::start_on`] does below; every
//! component of a chain gets the same variables and database.

use crate::support::get;
use crate::support::in_process::Harness;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use zoe_session_host::middleware::{Link, compose};
use zoe_session_host::runtime::EMBEDDED_COMPONENT;
use zoe_session_host::serve::ReusePolicy;
use zoe_session_host::{Allocation, HostCallSink, Runtime, ServeError, ServeOptions, Server};

#[path = "../../../build-support/wasm_component.rs"]
mod wasm_component;

/// The test components' bytes: the probe app, and the tag middleware built for `a` and `b`.
struct Components {
    probe: Vec<u8>,
    tag_a: Vec<u8>,
    tag_b: Vec<u8>,
}

fn components() -> &'static Components {
    static BUILT: OnceLock<Components> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/components");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("host/ lives in the workspace");
        // The directory the other components share, so spin-sdk 7 is built once for all.
        let target = wasm_component::target_dir(workspace).join("components");
        let build = |name: &str, args: &[&str], artefact: &str| -> Vec<u8> {
            let wasm: PathBuf = wasm_component::build(&dir.join(name), args, &target, artefact);
            std::fs::read(&wasm).unwrap_or_else(|err| panic!("{}: {err}", wasm.display()))
        };
        // The tag builds share one artefact path: each is read before the next build.
        Components {
            probe: build("p3-probe", &[], "zoe_test_p3_probe"),
            tag_a: build("p3-tag", &["--features", "a"], "zoe_test_p3_tag"),
            tag_b: build("p3-tag", &["--features", "b"], "zoe_test_p3_tag"),
        }
    })
}

fn runtime_of(bytes: &[u8]) -> Runtime {
    Runtime::from_bytes(bytes, Allocation::Pooling { max_instances: 200 }).expect("it compiles")
}

/// The probe app alone, compiled once for every test that serves it.
fn probe_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| runtime_of(&components().probe))
}

fn serve_probe(p3_reuse: ReusePolicy) -> Harness {
    Harness::start_on(
        probe_runtime(),
        ServeOptions {
            p3_reuse,
            ..ServeOptions::default()
        },
    )
}

/// What the probe says about the request that reached it.
#[derive(Debug)]
struct Probe {
    status: u16,
    instance: String,
    served: u32,
    max_in_flight: u32,
}

fn probe(harness: &Harness, path: &str) -> Probe {
    let reply = get(harness.addr, path, &[]).expect("the server answers");
    let number = |name: &str| {
        reply
            .header(name)
            .unwrap_or_else(|| panic!("no {name} on {path}: {}", reply.status))
            .parse()
            .unwrap()
    };
    Probe {
        status: reply.status,
        instance: reply.header("x-instance").expect("x-instance").to_owned(),
        served: number("x-served"),
        max_in_flight: number("x-max-in-flight"),
    }
}

#[test]
fn a_wasip3_instance_takes_128_requests_then_a_fresh_one_takes_over() {
    let harness = serve_probe(ReusePolicy::default());
    let first = probe(&harness, "/probe");
    // Reuse does happen: the same instance counts up.
    for expected in 2..=128 {
        let next = probe(&harness, "/probe");
        assert_eq!(
            (next.instance.as_str(), next.served),
            (first.instance.as_str(), expected)
        );
        assert_eq!(next.max_in_flight, 1, "one request at a time was sent");
    }
    let after = probe(&harness, "/probe");
    assert_ne!(
        after.instance, first.instance,
        "the 129th request needs a new instance"
    );
    assert_eq!(after.served, 1);
    assert_eq!(probe(&harness, "/probe").served, 2);
    assert_eq!(harness.server().instances_created(), 2);
}

#[test]
fn a_wasip3_instance_runs_at_most_16_requests_at_once() {
    let harness = serve_probe(ReusePolicy::default());
    let addr = harness.addr;
    // 48 requests that each wait 600 ms in the guest, all sent at once.
    let replies: Vec<_> = (0..48)
        .map(|_| std::thread::spawn(move || get(addr, "/probe?sleep_ms=600", &[])))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|thread| thread.join().unwrap().expect("answered"))
        .collect();
    let mut peak_by_instance: HashMap<String, u32> = HashMap::new();
    for reply in &replies {
        assert_eq!(reply.status, 200);
        let peak: u32 = reply.header("x-max-in-flight").unwrap().parse().unwrap();
        let instance = reply.header("x-instance").unwrap().to_owned();
        let seen = peak_by_instance.entry(instance).or_default();
        *seen = (*seen).max(peak);
    }
    let peak = peak_by_instance.values().copied().max().unwrap();
    assert!(
        peak <= 16,
        "an instance ran {peak} requests at once: {peak_by_instance:?}"
    );
    // The positive control: requests did run concurrently in one instance, up to the limit.
    assert!(
        peak > 1,
        "no instance ran two requests at once: {peak_by_instance:?}"
    );
    assert!(
        peak_by_instance.len() >= 3,
        "48 requests, 16 at most per instance, need 3 instances: {peak_by_instance:?}"
    );
}

#[test]
fn the_concurrency_limit_is_the_operators() {
    let harness = serve_probe(ReusePolicy {
        max_concurrent: 2,
        ..ReusePolicy::default()
    });
    let addr = harness.addr;
    let peaks: Vec<u32> = (0..8)
        .map(|_| std::thread::spawn(move || get(addr, "/probe?sleep_ms=400", &[])))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .map(|reply| reply.header("x-max-in-flight").unwrap().parse().unwrap())
        .collect();
    assert!(peaks.iter().all(|&peak| peak <= 2), "{peaks:?}");
    assert!(
        harness.server().instances_created() >= 4,
        "8 requests, 2 at once per instance"
    );
}

#[test]
fn a_trap_discards_the_instance_and_a_guest_500_does_not() {
    let harness = serve_probe(ReusePolicy::default());
    let first = probe(&harness, "/probe");
    let five_hundred = probe(&harness, "/status/500");
    assert_eq!(five_hundred.status, 500);
    assert_eq!(
        five_hundred.instance, first.instance,
        "the guest's own 500 is an answer"
    );
    let after_500 = probe(&harness, "/probe");
    assert_eq!(
        (after_500.instance.as_str(), after_500.served),
        (first.instance.as_str(), 3)
    );

    let trap = get(harness.addr, "/trap", &[]).unwrap();
    assert_eq!(trap.status, 500);
    assert_eq!(
        trap.json()["error"],
        "internal",
        "the host's answer, not the guest's"
    );
    let after_trap = probe(&harness, "/probe");
    assert_ne!(
        after_trap.instance, first.instance,
        "nothing goes to a trapped instance"
    );
    assert_eq!(after_trap.served, 1);
    assert_eq!(harness.server().instances_created(), 2);
}

#[test]
fn an_idle_wasip3_instance_is_dropped_after_the_idle_timeout() {
    let harness = serve_probe(ReusePolicy {
        idle_timeout: Duration::from_millis(300),
        ..ReusePolicy::default()
    });
    let first = probe(&harness, "/probe");
    // Within the timeout the instance is reused (the control)...
    assert_eq!(probe(&harness, "/probe").instance, first.instance);
    std::thread::sleep(Duration::from_millis(1200));
    // ...after it, a new one answers.
    let later = probe(&harness, "/probe");
    assert_ne!(later.instance, first.instance);
    assert_eq!(later.served, 1);
}

#[test]
fn a_wasip2_component_keeps_its_own_policy_whatever_the_wasip3_one() {
    // One request per instance, as Spin gives a WASIp2 component, with Spin's WASIp3 policy set.
    let harness = Harness::start(ServeOptions {
        requests_per_instance: 1,
        p3_reuse: ReusePolicy::default(),
        ..ServeOptions::default()
    });
    for _ in 0..5 {
        assert_eq!(get(harness.addr, "/health", &[]).unwrap().status, 200);
        harness.wait_for_guests(|running| running == 0, "a guest is still running");
    }
    assert_eq!(harness.server().instances_created(), 5);
}

#[test]
fn the_wasip3_spin_interfaces_reach_sqlite_and_variables() {
    let harness = serve_probe(ReusePolicy::default());
    let sqlite = get(harness.addr, "/sqlite", &[]).unwrap();
    assert_eq!(
        (
            sqlite.status,
            String::from_utf8_lossy(&sqlite.body).as_ref()
        ),
        (200, "42 p3 columns=2 rows=1 changes=0")
    );
    // The harness sets log_requests; an unset name is `undefined`, as in Spin.
    let set = get(harness.addr, "/variable/log_requests", &[]).unwrap();
    assert_eq!(
        (set.status, set.body.as_slice()),
        (200, b"false".as_slice())
    );
    let unset = get(harness.addr, "/variable/no_such_variable", &[]).unwrap();
    assert_eq!(unset.status, 404);
    assert!(String::from_utf8_lossy(&unset.body).contains("Undefined"));
}

/// The probe behind `chain` (outermost first).
fn serve_chain(chain: &[(&str, &[u8])]) -> (Harness, &'static Runtime) {
    let links: Vec<Link<'_>> = chain
        .iter()
        .map(|(name, bytes)| Link { name, bytes })
        .collect();
    let app = Link {
        name: "p3-probe",
        bytes: &components().probe,
    };
    let composed = compose(&links, app).expect("the chain composes");
    // Leaked: a runtime per chain, alive for the test process like the shared ones.
    let runtime: &'static Runtime = Box::leak(Box::new(runtime_of(&composed)));
    (Harness::start_on(runtime, ServeOptions::default()), runtime)
}

#[test]
fn a_middleware_chain_runs_outermost_first() {
    let built = components();
    let (a_then_b, _) = serve_chain(&[("a", &built.tag_a), ("b", &built.tag_b)]);
    let reply = get(a_then_b.addr, "/probe", &[("x-chain", "client")]).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-chain"),
        Some("client,a,b"),
        "a sees the request first"
    );
    assert_eq!(
        reply.header("x-chain-out"),
        Some("b,a"),
        "and the response last"
    );
    // The order is the list's: reversed, the tags come reversed.
    let (b_then_a, _) = serve_chain(&[("b", &built.tag_b), ("a", &built.tag_a)]);
    let reply = get(b_then_a.addr, "/probe", &[]).unwrap();
    assert_eq!(reply.header("x-chain"), Some("b,a"));
    assert_eq!(reply.header("x-chain-out"), Some("a,b"));
    // The app answered both (control for the refusal below).
    assert!(reply.header("x-instance").is_some());
}

#[test]
fn a_middleware_answers_by_itself_and_the_app_is_not_reached() {
    let built = components();
    let (harness, _) = serve_chain(&[("a", &built.tag_a), ("b", &built.tag_b)]);
    let denied = get(harness.addr, "/deny-b", &[]).unwrap();
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("x-denied-by"), Some("b"));
    assert_eq!(
        denied.header("x-chain-out"),
        Some("a"),
        "the outer one sees b's answer"
    );
    assert_eq!(denied.header("x-instance"), None, "the app never ran");
    // The same chain does reach the app on another path.
    assert!(
        get(harness.addr, "/probe", &[])
            .unwrap()
            .header("x-instance")
            .is_some()
    );
}

#[test]
fn a_wasip2_app_behind_middleware_is_refused_naming_the_export() {
    let err = compose(
        &[Link {
            name: "a",
            bytes: &components().tag_a,
        }],
        Link {
            name: "zoe-session (WASIp2)",
            bytes: EMBEDDED_COMPONENT,
        },
    )
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("zoe-session (WASIp2)") && text.contains("wasi:http/handler@0.3.0"),
        "{text}"
    );
}

#[test]
fn counting_host_calls_is_refused_for_a_wasip3_component() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let refused = rt.block_on(async {
        let host = zoe_session_host::SessionHost::open(
            probe_runtime(),
            zoe_test_support::file_config(&dir),
        )
        .await
        .expect("host opens");
        Server::start(
            host,
            ServeOptions {
                listen: ([127, 0, 0, 1], 0).into(),
                count_host_calls: Some(HostCallSink::log()),
                cleanup_interval: None,
                ..ServeOptions::default()
            },
        )
        .await
    });
    assert!(
        matches!(refused, Err(ServeError::CountingUnsupported)),
        "{refused:?}"
    );
}

/// The probe with `variables` set, e.g. `database_url`.
fn serve_probe_with(configure: impl FnOnce(&mut zoe_session_host::HostConfig)) -> Harness {
    Harness::start_configured(probe_runtime(), ServeOptions::default(), configure)
}

fn body(reply: &crate::support::Response) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

#[test]
fn spin_postgres_4_2_async_functions_reach_the_configured_database() {
    let url = zoe_test_postgres::shared()
        .fresh_database()
        .expect("a fresh database");
    let harness = serve_probe_with(|config| config.variables.set("database_url", url));
    let first = get(harness.addr, "/pg", &[]).unwrap();
    assert_eq!(
        (first.status, body(&first).as_str()),
        (200, "inserted=1 rows=1 columns=2 first=7,seven")
    );
    // The second request (the same instance, its own connection) sees the first one's row.
    let second = get(harness.addr, "/pg", &[]).unwrap();
    assert_eq!(body(&second), "inserted=1 rows=2 columns=2 first=7,seven");
}

#[test]
fn a_connection_builder_may_name_a_root_the_host_trusts_and_no_other() {
    let (server, ca) = zoe_test_postgres::shared_tls();
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        server.port()
    );
    let trusted = std::fs::read_to_string(ca.ca_path()).unwrap();
    let other_ca = zoe_test_postgres::TestCa::new().unwrap();
    let other = std::fs::read_to_string(other_ca.ca_path()).unwrap();
    assert_ne!(trusted, other);
    for (pem, expected_status) in [(trusted, 200), (other, 500)] {
        let (url, root) = (url.clone(), ca.ca_path());
        let harness = serve_probe_with(move |config| {
            config.variables.set("database_url", url);
            config.variables.set("pg_ca", pem);
            config.postgres_root_cert = Some(root);
        });
        let reply = get(harness.addr, "/pg/ca", &[]).unwrap();
        let text = body(&reply);
        assert_eq!(reply.status, expected_status, "{text}");
        if expected_status == 200 {
            assert_eq!(text, "opened rows=1");
        } else {
            assert!(
                text.contains("ConnectionFailed") && text.contains("SESSION_POSTGRES_ROOT_CERT"),
                "{text}"
            );
        }
    }
}

#[test]
fn spin_key_value_3_0_reaches_the_hosts_default_store_and_refuses_others() {
    let harness = serve_probe(ReusePolicy::default());
    let reply = get(harness.addr, "/kv", &[]).unwrap();
    assert_eq!(
        (reply.status, body(&reply).as_str()),
        (200, "value=p3-value exists=true keys=p3-key gone=true")
    );
    // `default` opens (the control); a label the host defines no store for does not.
    assert_eq!(get(harness.addr, "/kv/default", &[]).unwrap().status, 200);
    let unknown = get(harness.addr, "/kv/nowhere", &[]).unwrap();
    assert_eq!(unknown.status, 403);
    assert!(body(&unknown).contains("NoSuchStore"), "{}", body(&unknown));
}

#[test]
fn a_wasip3_guest_that_never_yields_is_stopped_at_its_deadline() {
    let harness = Harness::start_on(
        probe_runtime(),
        ServeOptions {
            request_timeout: Duration::from_millis(500),
            ..ServeOptions::default()
        },
    );
    let before = probe(&harness, "/probe");
    let started = std::time::Instant::now();
    let stopped = get(harness.addr, "/spin", &[]).expect("an answer, not a hang");
    assert_eq!(stopped.status, 503, "{}", body(&stopped));
    assert_eq!(stopped.json()["error"], "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Its instance is gone; a new one answers the next request.
    let after = probe(&harness, "/probe");
    assert_eq!(after.status, 200);
    assert_ne!(after.instance, before.instance);
}
