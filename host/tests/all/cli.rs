//! The operator commands, run as a user runs them: the real binary on a database file.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn run(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zoe-session-host"))
        .env_clear()
        .env("SESSION_DB_PATH", db)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

#[test]
fn create_then_validate_works_on_a_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested").join("sessions.db");
    let created = json(&run(
        &db,
        &[
            "create",
            "alice",
            "--json",
            "--metadata",
            r#"{"role":"admin"}"#,
        ],
    ));
    let token = created["session_id"]
        .as_str()
        .expect("create prints the token");
    assert_eq!(created["user_id"], "alice");
    assert_eq!(created["metadata"]["role"], "admin");
    assert!(
        db.exists(),
        "the database file and its directory are created"
    );

    let valid = run(&db, &["validate", token]);
    assert!(valid.status.success());
    assert!(stdout(&valid).contains("Valid."), "{}", stdout(&valid));
    let valid = json(&run(&db, &["validate", token, "--json"]));
    assert_eq!(valid["id"], created["id"]);
    assert!(
        valid.get("session_id").is_none(),
        "validate never echoes the token"
    );
}

#[test]
fn validate_exits_non_zero_for_a_bad_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let created = json(&run(&db, &["create", "alice", "--json"]));
    let token = created["session_id"].as_str().unwrap();
    for bad in ["garbage", &format!("{token}x")] {
        let output = run(&db, &["validate", bad]);
        assert_eq!(output.status.code(), Some(1), "{bad}");
        assert!(
            stdout(&output).contains("Not valid: invalid session token"),
            "{}",
            stdout(&output)
        );
    }
    run(&db, &["invalidate", token]);
    let output = run(&db, &["validate", token, "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["valid"], false);
}

#[test]
fn invalidate_all_logs_every_user_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let tokens: Vec<String> = ["alice", "bob", "bob"]
        .iter()
        .map(|user| {
            let created = json(&run(&db, &["create", user, "--json"]));
            created["session_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let output = run(&db, &["invalidate", "--all", "--json"]);
    assert_eq!(json(&output)["invalidated"], 3);
    for token in &tokens {
        let output = run(&db, &["validate", token]);
        assert_eq!(output.status.code(), Some(1), "{token} still valid");
    }
    // A session and --all together are refused rather than guessed at.
    let output = run(&db, &["invalidate", "--all", "some-id"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(run(&db, &["invalidate"]).status.code(), Some(2));
}

#[test]
fn list_stats_and_cleanup_report_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let first = json(&run(&db, &["create", "bob", "--json"]));
    json(&run(&db, &["create", "bob", "--json", "--timeout", "600"]));
    let list = json(&run(&db, &["list", "bob", "--json"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let secret = first["session_id"]
        .as_str()
        .unwrap()
        .split_once('.')
        .unwrap()
        .1;
    assert!(
        !serde_json::to_string(list).unwrap().contains(secret),
        "list never shows tokens"
    );

    let stats = json(&run(&db, &["stats", "--json"]));
    assert_eq!(stats["active_sessions"], 2);
    assert_eq!(stats["active_users"], 1);
    let cleanup = json(&run(&db, &["cleanup", "--json"]));
    assert_eq!(cleanup["deleted"], 0);
}

#[test]
fn bad_input_and_bad_settings_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let output = run(&db, &["create", "alice", "--timeout", "5"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("timeout must be between 300 and 86400"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_zoe-session-host"))
        .env_clear()
        .env("SESSION_DB_PATH", &db)
        .env("SESSION_MAX_PER_USER", "lots")
        .args(["stats"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_per_user"), "{stderr}");

    // A durability setting the host cannot honour is refused, not replaced by the default;
    // `full` in the same place is accepted (the command succeeds).
    let stats = |synchronous: &str| {
        Command::new(env!("CARGO_BIN_EXE_zoe-session-host"))
            .env_clear()
            .env("SESSION_DB_PATH", &db)
            .env("SESSION_SYNCHRONOUS", synchronous)
            .args(["stats"])
            .output()
            .unwrap()
    };
    let output = stats("off");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SESSION_SYNCHRONOUS: synchronous must be `normal` or `full`, not \"off\""),
        "{stderr}"
    );
    let output = stats("full");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_taken_port_is_reported_as_such_not_as_a_runtime_failure() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_zoe-session-host"))
        .env_clear()
        .env("SESSION_DB_PATH", dir.path().join("s.db"))
        .env("SESSION_ADMIN_KEY", "cli-test-admin-key-0123456789")
        .args(["serve", "--listen", &addr])
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!stderr.contains("runtime failure"), "{stderr}");
    // Positive control: with the port free, the same command starts and says where it listens.
    drop(taken);
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoe-session-host"))
        .env_clear()
        .env("SESSION_DB_PATH", dir.path().join("s.db"))
        .env("SESSION_ADMIN_KEY", "cli-test-admin-key-0123456789")
        .args(["serve", "--listen", &addr])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains(&format!("listening on http://{addr}")),
        "{line}"
    );
}

/// Starts `serve` with `env` and waits until it says where it listens (`Ok`, and it is then
/// stopped) or exits (`Err` with its exit code and stderr).
fn serve_until_listening(db: &Path, env: &[(&str, &str)]) -> Result<String, (Option<i32>, String)> {
    let stderr = db.with_extension("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoe-session-host"))
        .env_clear()
        .env("SESSION_DB_PATH", db)
        .envs(env.iter().copied())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let read = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    if read > 0 {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(line);
    }
    let status = child.wait().unwrap();
    Err((status.code(), std::fs::read_to_string(stderr).unwrap()))
}

/// Issue 27: an admin key with a trailing newline made every admin call 401 with nothing
/// logged, and a database URL with a stray space was refused later as "not permitted".
/// Either now stops `serve` before it listens, naming the setting and not its value.
#[test]
fn a_secret_with_stray_whitespace_stops_serve_naming_the_setting_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let key = "cli-test-admin-key-0123456789";
    let with_newline = format!("{key}\n");
    let (code, stderr) =
        serve_until_listening(&db, &[("SESSION_ADMIN_KEY", &with_newline)]).expect_err("refused");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("SESSION_ADMIN_KEY (admin_key): ends with a newline"),
        "{stderr}"
    );
    assert!(!stderr.contains(key), "{stderr}");

    let url = "postgres://u@127.0.0.1/db";
    let (code, stderr) = serve_until_listening(
        &db,
        &[
            ("SESSION_ADMIN_KEY", key),
            ("SESSION_DATABASE_URL", &format!(" {url}")),
        ],
    )
    .expect_err("refused");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("SESSION_DATABASE_URL (database_url): starts with a space"),
        "{stderr}"
    );
    assert!(!stderr.contains(url), "{stderr}");

    // The operator commands refuse the same way.
    let output = Command::new(env!("CARGO_BIN_EXE_zoe-session-host"))
        .env_clear()
        .env("SESSION_DB_PATH", &db)
        .env("SESSION_ADMIN_KEY", &with_newline)
        .args(["stats"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SESSION_ADMIN_KEY (admin_key)"), "{stderr}");
    assert!(!stderr.contains(key), "{stderr}");

    // Positive control: the same key without the newline starts.
    let line = serve_until_listening(&db, &[("SESSION_ADMIN_KEY", key)]).expect("starts");
    assert!(line.contains("listening on http://127.0.0.1:"), "{line}");
}

fn run_with(db: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zoe-session-host"))
        .env_clear()
        .env("SESSION_DB_PATH", db)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `--runtime-config-file` (or `SESSION_RUNTIME_CONFIG_FILE`) maps the key-value store
/// `default` onto Redis for every command, as `spin up --runtime-config-file` does; a file the
/// host cannot use stops the command, naming the file and the table.
#[test]
fn a_runtime_config_file_puts_the_key_value_store_on_redis() {
    let redis = zoe_test_redis::shared();
    let url = redis.fresh_url();
    let db_number: u32 = url.rsplit('/').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let file = dir.path().join("runtime-config.toml");
    std::fs::write(
        &file,
        format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let kv = [("SESSION_KEY_VALUE_STORE", "default")];

    assert_eq!(redis.keys_in(db_number).unwrap(), 0);
    let created = json(&run_with(
        &db,
        &kv,
        &["--runtime-config-file", file, "create", "alice", "--json"],
    ));
    let token = created["session_id"].as_str().unwrap();
    assert!(
        redis.keys_in(db_number).unwrap() > 0,
        "the session is in Redis"
    );
    // The environment variable names the same file.
    let env = [kv[0], ("SESSION_RUNTIME_CONFIG_FILE", file)];
    let valid = json(&run_with(&db, &env, &["validate", token, "--json"]));
    assert_eq!(valid["id"], created["id"]);
    // Positive control: without the file, `default` is Spin's file beside the database,
    // which has never seen the session.
    let elsewhere = run_with(&db, &kv, &["validate", token]);
    assert!(!elsewhere.status.success());
    assert!(
        stdout(&elsewhere).contains("Not valid"),
        "{}",
        stdout(&elsewhere)
    );

    let bad = dir.path().join("spin-runtime-config.toml");
    std::fs::write(&bad, "[sqlite_database.default]\ntype = \"spin\"\n").unwrap();
    let refused = run_with(
        &db,
        &kv,
        &["--runtime-config-file", bad.to_str().unwrap(), "stats"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("runtime config {}", bad.display()))
            && stderr.contains("[sqlite_database] is not read by this host"),
        "{stderr}"
    );
}
