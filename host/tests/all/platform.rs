//! `serve --platform akamai`: the component run as Akamai Functions runs it (no SQLite, the
//! `default` key-value store, its limits), through the real binary.

use crate::support::{ADMIN, ADMIN_KEY, Serve, request};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `serve --listen 127.0.0.1:0 ARGS` on `db` and waits for it to exit; a server that is
/// still running after `within` is killed and the test fails (it was expected to refuse).
fn serve_expecting_exit(
    db: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    within: Duration,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zoe-session-host"));
    command
        .env_clear()
        .env("SESSION_DB_PATH", db)
        .env("SESSION_ADMIN_KEY", ADMIN_KEY)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the binary starts");
    let deadline = Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "serve {args:?} kept running: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Left on SQLite, the sessions' store cannot open under Akamai's grants: the host refuses to
/// start with Spin's answer for an ungranted database, says what to set, and makes no file.
#[test]
fn akamai_refuses_sqlite_as_spin_refuses_an_ungranted_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let output = serve_expecting_exit(&db, &[], &["--platform", "akamai"], Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("access denied"), "{stderr}");
    assert!(
        stderr.contains("SESSION_KEY_VALUE_STORE=default"),
        "says what to set: {stderr}"
    );
    assert!(
        !db.exists(),
        "no SQLite file is made on a platform without SQLite"
    );

    // Positive control: the same settings under Spin's grants serve from the file.
    let serve = Serve::start(&db, &[]);
    request(
        serve.addr,
        "POST",
        "/sessions/create",
        &[ADMIN],
        Some(&serde_json::json!({"user_id": "alice"})),
    )
    .unwrap()
    .expect(200);
    assert!(db.exists());
}

/// The platform's limits are its own: an operator's request timeout or reuse count beside
/// `--platform akamai` is refused rather than silently overridden.
#[test]
fn akamai_limits_cannot_be_mixed_with_the_operator_s() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    for extra in [
        &["--request-timeout", "5s"][..],
        &["--requests-per-instance", "10"],
        &["--no-instance-reuse"],
        &["--spin-costs"],
        &["--max-instance-reuse-count", "10"],
        &["--max-instance-concurrent-reuse-count", "4"],
    ] {
        let args: Vec<&str> = ["--platform", "akamai"]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        let output = serve_expecting_exit(&db, &[], &args, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot be used with"), "{args:?}: {stderr}");
    }
    // Positive control: an unknown platform is refused by name, so the parser reads the flag.
    let output = serve_expecting_exit(&db, &[], &["--platform", "lambda"], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("possible values: spin, akamai"), "{stderr}");
}

/// Configured as deploy/akamai/spin.toml configures it, the API works on the `default`
/// key-value store under Akamai's grants, and the SQLite database is never made.
#[test]
fn akamai_serves_sessions_from_the_default_key_value_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let serve = Serve::start_with(
        &db,
        // The harness's 100000 is past what a key-value store keeps per user.
        &[
            ("SESSION_KEY_VALUE_STORE", "default"),
            ("SESSION_MAX_PER_USER", "10"),
        ],
        &["--platform", "akamai"],
        None,
    );
    creates_and_validates_alice(serve.addr);
    assert!(!db.exists(), "no SQLite file on a platform without SQLite");
    // Positive control: the sessions are in Spin's key-value file beside where it would be.
    assert!(
        dir.path()
            .join(zoe_session_host::key_value::DEFAULT_FILE_NAME)
            .exists(),
        "the key-value store's file is made"
    );
}

/// A core module with one page of memory and `grow(pages) -> previous pages or -1`, written
/// out byte by byte (this crate builds Wasmtime without its text parser).
const GROWER: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // types: (i32) -> i32
    0x03, 0x02, 0x01, 0x00, // functions: one of type 0
    0x05, 0x03, 0x01, 0x00, 0x01, // memories: one, at least 1 page
    0x07, 0x0c, 0x02, // exports: two
    0x04, b'g', b'r', b'o', b'w', 0x00, 0x00, // "grow": function 0
    0x01, b'm', 0x02, 0x00, // "m": memory 0
    0x0a, 0x08, 0x01, 0x06, 0x00, // code: one body, no locals
    0x20, 0x00, 0x40, 0x00, 0x0b, // local.get 0; memory.grow 0; end
];

/// Grows a fresh instance of [`GROWER`] on `runtime`'s engine to `pages` pages in all and says
/// whether the memory got them.
fn grows_to(runtime: &zoe_session_host::Runtime, pages: i32) -> bool {
    use wasmtime::{Instance, Module, Store};
    let engine = runtime.engine();
    let module = Module::new(engine, GROWER).expect("the module compiles");
    let mut store = Store::new(engine, ());
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .expect("grow");
    grow.call(&mut store, pages - 1).expect("no trap") != -1
}

/// Akamai Functions gives a function 128 MiB; `serve --platform akamai` gives an instance's
/// memory as much and no more, where `serve` otherwise stops at 64 MiB.
#[test]
fn akamai_caps_an_instance_s_memory_at_128_mib() {
    use zoe_session_host::platform::{AKAMAI_MEMORY_BYTES, Platform};
    use zoe_session_host::{Allocation, Metering, Runtime, RuntimeOptions};
    const PAGE: usize = 64 << 10;
    let runtime = |max_memory_bytes| {
        Runtime::new(RuntimeOptions {
            allocation: Allocation::Pooling { max_instances: 2 },
            metering: Metering::Off,
            max_memory_bytes,
        })
        .expect("the component compiles")
    };
    let akamai = runtime(Platform::Akamai.max_memory_bytes());
    let limit = i32::try_from(AKAMAI_MEMORY_BYTES / PAGE).unwrap();
    assert!(grows_to(&akamai, limit), "128 MiB fits");
    assert!(!grows_to(&akamai, limit + 1), "past 128 MiB is refused");
    // Positive control: the default allocation refuses 128 MiB, so the cap above is the
    // platform's, not the module's or the machine's.
    let default = runtime(None);
    let default_limit =
        i32::try_from(zoe_session_host::runtime::DEFAULT_MAX_MEMORY_BYTES / PAGE).unwrap();
    assert!(grows_to(&default, default_limit));
    assert!(!grows_to(&default, limit));
}

/// Configured as deploy/akamai/spin-postgres.toml configures it (a PostgreSQL server reached
/// over TLS with `sslmode=verify-full`), the API works under Akamai's grants: the sessions are
/// in PostgreSQL, and the SQLite file is never made.
#[test]
fn akamai_serves_sessions_from_postgres_over_tls() {
    let (server, ca) = zoe_test_postgres::shared_tls();
    let plain = server.fresh_database().expect("a fresh database");
    let name = plain
        .rsplit('/')
        .next()
        .expect("a database name")
        .to_owned();
    // The server's certificate names `localhost`.
    let url = format!(
        "{}?sslmode=verify-full",
        plain.replace("@127.0.0.1:", "@localhost:")
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let ca_path = ca.ca_path();
    let serve = Serve::start_with(
        &db,
        &[
            ("SESSION_DATABASE_URL", &url),
            (
                "SESSION_POSTGRES_ROOT_CERT",
                ca_path.to_str().expect("a UTF-8 path"),
            ),
        ],
        &["--platform", "akamai"],
        None,
    );
    creates_and_validates_alice(serve.addr);
    assert!(!db.exists(), "no SQLite file on a platform without SQLite");
    // Positive control: the session is a row of the PostgreSQL database.
    let count = server
        .psql(
            &name,
            "SELECT count(*) FROM sessions WHERE user_id = 'alice'",
        )
        .expect("psql");
    assert_eq!(count.trim(), "1", "{count}");
}

/// Creates a session for alice on `addr` and validates its token there.
fn creates_and_validates_alice(addr: std::net::SocketAddr) {
    let created = request(
        addr,
        "POST",
        "/sessions/create",
        &[ADMIN],
        Some(&serde_json::json!({"user_id": "alice"})),
    )
    .unwrap();
    let token = created.expect(200).json()["session_id"]
        .as_str()
        .expect("a token")
        .to_owned();
    let valid = request(
        addr,
        "GET",
        "/sessions/validate",
        &[("x-session-id", &token)],
        None,
    )
    .unwrap();
    assert_eq!(valid.expect(200).json()["user_id"], "alice");
}
