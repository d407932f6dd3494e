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
    let created = request(
        serve.addr,
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
        serve.addr,
        "GET",
        "/sessions/validate",
        &[("x-session-id", &token)],
        None,
    )
    .unwrap();
    assert_eq!(valid.expect(200).json()["user_id"], "alice");
    assert!(!db.exists(), "no SQLite file on a platform without SQLite");
    // Positive control: the sessions are in Spin's key-value file beside where it would be.
    assert!(
        dir.path()
            .join(zoe_session_host::key_value::DEFAULT_FILE_NAME)
            .exists(),
        "the key-value store's file is made"
    );
}
