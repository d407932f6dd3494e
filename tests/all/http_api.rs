//! The REST API over real loopback HTTP against `serve`: every row of the API table with its
//! success and refusal paths, every bad-input status, cookies, HTTPS, and what reaches logs.
//!
//! main.rs includes this suite three times: as `http_api`, on the WASIp2 build (a fresh instance
//! per request), as `http_api_wasip3`, on the WASIp3 build, which `serve` runs as Spin 4.1
//! does (an instance reused for 128 requests, 16 at once), and as `http_api_on_akamai`, on the
//! WASIp2 build served as Akamai Functions serves it (`serve --platform akamai`: no SQLite, the
//! sessions in the `default` key-value store), and as `http_api_key_value_wasip3`, on the WASIp3
//! build with its sessions in the `default` key-value store, where a validate reads its lookup
//! keys ahead through the async `spin:key-value@3.0.0` (`p3/src/read_ahead.rs`).

use crate::support::http::{ADMIN_KEY, Api, admin, platform_of, start_on, start_on_akamai};
use serde_json::Value;
use std::time::Duration;
use zoe_session_host::Platform;
use zoe_test_support::Build;

/// The build this copy of the suite serves.
const BUILD: Build = Build::of_module(module_path!());

/// A server of [`BUILD`] with the admin key and `variables`.
async fn start(variables: &[(&str, &str)]) -> Api {
    start_with(Some(ADMIN_KEY), variables).await
}

/// A server of [`BUILD`] with an optional admin key and `variables`, served as this copy's
/// platform serves it.
async fn start_with(admin_key: Option<&str>, variables: &[(&str, &str)]) -> Api {
    match platform_of(module_path!()) {
        Platform::Akamai => start_on_akamai(admin_key, variables).await,
        Platform::Spin if module_path!().contains("key_value") => {
            let mut all = vec![(
                "key_value_store",
                zoe_session_host::key_value::DEFAULT_LABEL,
            )];
            all.extend_from_slice(variables);
            start_on(BUILD.serve_runtime(), admin_key, &all).await
        }
        Platform::Spin => start_on(BUILD.serve_runtime(), admin_key, variables).await,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

fn session_header(token: &str) -> [(&'static str, &str); 1] {
    [("x-session-id", token)]
}

/// README.md's walkthrough, read from README.md itself: every `$ curl` line of its first
/// `console` block that talks to `localhost:3000` is sent to a server with a fixed clock, and
/// the answer must be the one printed under it — the same status, the same fields, the same
/// values, except what differs between runs by nature (tokens and ids, mapped from the README's
/// to ours as they first appear; times, compared as offsets from the first `created_at` within
/// a few seconds; the client's address and user agent). So the README cannot drift.
#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let steps = readme_walkthrough::steps(&readme);
    assert!(
        steps
            .iter()
            .filter(|s| s.command.starts_with("curl"))
            .count()
            >= 10,
        "the walkthrough was not found in README.md"
    );
    let api = start(&[]).await;
    let mut walk = readme_walkthrough::Walk::default();
    walk.set("KEY", ADMIN_KEY);
    for step in &steps {
        walk.run(&api, step).await;
    }
    api.stop().await;
}

mod readme_walkthrough {
    use crate::support::http::Api;
    use serde_json::Value;
    use std::collections::HashMap;

    /// One `$ ` line of the block and what the README prints under it.
    #[derive(Debug)]
    pub struct Step {
        pub command: String,
        pub output: Vec<String>,
    }

    /// The `$ ` lines of the first console block that uses `curl`.
    pub fn steps(readme: &str) -> Vec<Step> {
        let mut blocks = readme
            .split("```console\n")
            .skip(1)
            .map(|rest| rest.split("\n```").next().unwrap_or_default());
        let block = blocks
            .find(|block| block.contains("$ curl") && block.contains("localhost:3000"))
            .unwrap_or_default();
        let mut steps: Vec<Step> = Vec::new();
        for line in block.lines() {
            match (line.strip_prefix("$ "), steps.last_mut()) {
                (Some(command), _) => steps.push(Step {
                    command: command.to_owned(),
                    output: Vec::new(),
                }),
                (None, Some(step)) => step.output.push(line.to_owned()),
                (None, None) => {}
            }
        }
        steps
    }

    /// The shell's variables, and the README's tokens and ids mapped to this run's.
    #[derive(Debug, Default)]
    pub struct Walk {
        variables: HashMap<String, String>,
        ours: HashMap<String, String>,
        /// The first `created_at` in the README and in this run, in ms.
        epochs: Option<(i64, i64)>,
    }

    impl Walk {
        pub fn set(&mut self, name: &str, value: &str) {
            self.variables.insert(name.to_owned(), value.to_owned());
        }

        pub async fn run(&mut self, api: &Api, step: &Step) {
            let words = self.words(&step.command);
            match words.first().map(String::as_str) {
                Some("curl") => self.curl(api, step, &words[1..]).await,
                Some(assignment) if assignment.contains('=') => {
                    let (name, value) = assignment.split_once('=').unwrap();
                    // `KEY=$(cat data/admin.key)` is set by the test; a `TOKEN=` line names a
                    // token the README got, which stands for the one this run got.
                    if !value.starts_with("$(") {
                        let ours = self.ours.get(value).unwrap_or_else(|| {
                            panic!("`{}` names a token no earlier answer gave", step.command)
                        });
                        let ours = ours.clone();
                        self.set(name, &ours);
                    }
                }
                _ => panic!(
                    "the walkthrough has a line the test cannot run: {}",
                    step.command
                ),
            }
        }

        async fn curl(&mut self, api: &Api, step: &Step, args: &[String]) {
            let (mut method, mut url, mut headers, mut body) = ("GET", None, Vec::new(), None);
            let mut args = args.iter();
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "-s" => {}
                    "-X" => method = args.next().expect("-X METHOD"),
                    "-H" => {
                        let header = args.next().expect("-H HEADER");
                        let (name, value) = header.split_once(':').expect("Name: value");
                        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                    "-d" => body = Some(args.next().expect("-d BODY").clone()),
                    "-w" => {
                        args.next();
                    }
                    other if other.starts_with("localhost:3000") => url = Some(other),
                    other => panic!("a curl option the test does not know: {other}"),
                }
            }
            // curl sends its own User-Agent, which the session records.
            headers.push(("user-agent".to_owned(), "curl/8".to_owned()));
            let path = url.expect("a URL").trim_start_matches("localhost:3000");
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let reply = api.send(method, path, &headers, body.as_deref()).await;
            let printed = step.output.join("\n");
            // `-w ' (%{http_code})\n'` prints the status after the body; without it, 200.
            let (printed, status) = match printed.rsplit_once(" (") {
                Some((json, code)) if code.ends_with(')') => {
                    (json.to_owned(), code.trim_end_matches(')').parse().unwrap())
                }
                _ => (printed, 200),
            };
            assert_eq!(
                reply.status,
                status,
                "{}\n{}",
                step.command,
                reply.report("status")
            );
            let expected: Value = serde_json::from_str(&printed)
                .unwrap_or_else(|err| panic!("README output is not JSON ({err}): {printed}"));
            self.same(&expected, &reply.json, &step.command, "");
        }

        /// Whether `ours` is what the README printed, field by field.
        fn same(&mut self, readme: &Value, ours: &Value, command: &str, at: &str) {
            match (readme, ours) {
                (Value::Object(r), Value::Object(o)) => {
                    let mut keys: Vec<&String> = r.keys().collect();
                    let mut our_keys: Vec<&String> = o.keys().collect();
                    keys.sort();
                    our_keys.sort();
                    assert_eq!(keys, our_keys, "{command}: fields of {at:?}");
                    for (key, value) in r {
                        self.same(value, &o[key], command, key);
                    }
                }
                (Value::Array(r), Value::Array(o)) => {
                    assert_eq!(r.len(), o.len(), "{command}: length of {at}");
                    for (r, o) in r.iter().zip(o) {
                        self.same(r, o, command, at);
                    }
                }
                (Value::String(r), Value::String(o)) => self.same_text(r, o, command, at),
                _ => assert_eq!(readme, ours, "{command}: {at}"),
            }
        }

        fn same_text(&mut self, readme: &str, ours: &str, command: &str, at: &str) {
            match at {
                // Set by the client and the connection.
                "client_addr" | "user_agent" => assert!(!ours.is_empty(), "{command}: {at}"),
                "id" | "session_id" => {
                    let mapped = self
                        .ours
                        .entry(readme.to_owned())
                        .or_insert_with(|| ours.to_owned());
                    assert_eq!(
                        mapped, ours,
                        "{command}: {at} is not the one the README had"
                    );
                }
                _ if at.ends_with("_at") || at == "last_activity" => {
                    let (r, o) = (millis(readme, command), millis(ours, command));
                    let (r0, o0) = *self.epochs.get_or_insert((r, o));
                    let drift = ((r - r0) - (o - o0)).abs();
                    // The README's session took a few seconds to type; this clock stands still.
                    assert!(drift <= 5_000, "{command}: {at} {readme} vs {ours}");
                }
                _ => assert_eq!(readme, ours, "{command}: {at}"),
            }
        }

        /// Splits a command line as the shell would: quotes, and `$NAME` expanded outside
        /// single quotes.
        fn words(&self, line: &str) -> Vec<String> {
            let mut words = Vec::new();
            let mut word: Option<String> = None;
            let mut chars = line.chars().peekable();
            let mut quote = None;
            while let Some(c) = chars.next() {
                match (quote, c) {
                    (None, ' ') => words.extend(word.take()),
                    (None, '\'' | '"') => {
                        quote = Some(c);
                        word.get_or_insert_default();
                    }
                    (Some(q), c) if c == q => quote = None,
                    (q, '$')
                        if q != Some('\'')
                            && chars.peek().is_some_and(|c| c.is_ascii_uppercase()) =>
                    {
                        let mut name = String::new();
                        while let Some(&c) = chars
                            .peek()
                            .filter(|c| c.is_ascii_uppercase() || **c == '_')
                        {
                            name.push(c);
                            chars.next();
                        }
                        let value = self.variables.get(&name).map_or("", String::as_str);
                        word.get_or_insert_default().push_str(value);
                    }
                    (_, c) => word.get_or_insert_default().push(c),
                }
            }
            words.extend(word);
            words
        }
    }

    /// An RFC 3339 time (`2026-11-28T12:33:42.647Z`) as milliseconds since the epoch.
    fn millis(text: &str, command: &str) -> i64 {
        let bad = || panic!("{command}: {text} is not a timestamp");
        let digits = |range: std::ops::Range<usize>| -> i64 {
            text.get(range)
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(bad)
        };
        // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
        let (y, m, d) = (digits(0..4), digits(5..7), digits(8..10));
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
        ((days * 24 + digits(11..13)) * 60 + digits(14..16)) * 60_000
            + digits(17..19) * 1000
            + digits(20..23)
    }
}

#[tokio::test]
async fn the_seed_integration_test_passes() {
    let api = start(&[]).await;
    let response = api
        .send(
            "POST",
            "/sessions/create",
            admin(),
            Some(r#"{"user_id": "testuser"}"#),
        )
        .await;
    assert_eq!(response.status, 200);
    let session_id = response.json["session_id"].as_str().unwrap().to_owned();
    let response = api
        .get("/sessions/validate", &session_header(&session_id))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json["user_id"], "testuser");
    api.stop().await;
}

#[tokio::test]
async fn create_needs_the_admin_key() {
    let api = start(&[]).await;
    let body = Some(r#"{"user_id":"alice"}"#);
    let none = api.send("POST", "/sessions/create", &[], body).await;
    none.expect_error(401, "unauthorized");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    api.send(
        "POST",
        "/sessions/create",
        &[("authorization", "Bearer wrong-key-wrong-key")],
        body,
    )
    .await
    .expect_error(401, "invalid_admin_key");
    api.send(
        "POST",
        "/sessions/create",
        &[("authorization", &format!("Basic {ADMIN_KEY}"))],
        body,
    )
    .await
    .expect_error(401, "unauthorized");
    // A session is no substitute for the admin key when creating sessions.
    let (token, _) = api.login("alice").await;
    api.send("POST", "/sessions/create", &session_header(&token), body)
        .await
        .expect_error(401, "unauthorized");
    api.stop().await;
}

#[tokio::test]
async fn privileged_endpoints_answer_503_with_a_how_to_when_no_admin_key_is_configured() {
    let api = start_with(None, &[]).await;
    for (method, path) in [
        ("POST", "/sessions/create"),
        ("GET", "/sessions/stats"),
        ("POST", "/sessions/cleanup"),
        ("DELETE", "/sessions?all=true"),
    ] {
        let reply = api
            .send(
                method,
                path,
                admin(),
                Some(r#"{"user_id":"a"}"#).filter(|_| method == "POST" && path.ends_with("create")),
            )
            .await;
        reply.expect_error(503, "admin_key_not_configured");
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(
            detail.contains("admin_key") && detail.contains("SESSION_ADMIN_KEY"),
            "{detail}"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn a_session_is_read_by_token_admin_or_same_user_but_not_by_others() {
    let api = start(&[]).await;
    let (alice, alice_id) = api.login("alice").await;
    let (alice2, _) = api.login("alice").await;
    let (bob, _) = api.login("bob").await;

    let by_token = api.get(&format!("/sessions/{alice}"), &[]).await;
    assert_eq!(by_token.expect(200)["id"], alice_id.as_str());
    assert!(
        !by_token.text.contains(&alice),
        "get must not echo the token"
    );

    let path = format!("/sessions/{alice_id}");
    api.get(&path, &[]).await.expect_error(401, "unauthorized");
    api.get(&path, admin()).await.expect(200);
    api.get(&path, &session_header(&alice2)).await.expect(200);
    api.get(&path, &session_header(&bob))
        .await
        .expect_error(403, "forbidden");
    api.get(&path, &[("authorization", "Bearer not-the-admin-key")])
        .await
        .expect_error(401, "invalid_admin_key");
    api.get("/sessions/00000000-0000-4000-8000-000000000000", admin())
        .await
        .expect_error(404, "not_found");
    api.get("/sessions/not-a-session", admin())
        .await
        .expect_error(404, "not_found");
    api.stop().await;
}

#[tokio::test]
async fn activity_extend_and_rotate_work_by_token_and_by_public_id() {
    let api = start(&[]).await;
    let (token, id) = api.login("alice").await;
    let (bob, _) = api.login("bob").await;
    api.clock.advance(Duration::from_secs(600));

    let touched = api
        .send("POST", &format!("/sessions/{token}/activity"), &[], None)
        .await;
    assert_eq!(
        touched.expect(200)["last_activity"],
        "2027-01-15T08:10:00.000Z"
    );
    let by_id = api
        .send(
            "POST",
            &format!("/sessions/{id}/activity"),
            &session_header(&token),
            None,
        )
        .await;
    by_id.expect(200);
    api.send(
        "POST",
        &format!("/sessions/{id}/activity"),
        &session_header(&bob),
        None,
    )
    .await
    .expect_error(403, "forbidden");

    let extend = Some(r#"{"additional_seconds": 600}"#);
    api.send("POST", &format!("/sessions/{id}/extend"), admin(), extend)
        .await
        .expect(200);
    api.send("POST", &format!("/sessions/{id}/extend"), &[], extend)
        .await
        .expect_error(401, "unauthorized");

    let rotated = api
        .send("POST", &format!("/sessions/{id}/rotate"), admin(), None)
        .await;
    let new_token = rotated.expect(200)["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_token, token);
    assert_eq!(rotated.json["id"], id.as_str());
    api.stop().await;
}

#[tokio::test]
async fn a_rotated_away_token_is_dead_and_the_new_one_works() {
    let api = start(&[]).await;
    let (old, _) = api.login("alice").await;
    let rotated = api
        .send("POST", &format!("/sessions/{old}/rotate"), &[], None)
        .await;
    let new = rotated.expect(200)["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.get("/sessions/validate", &session_header(&old))
        .await
        .expect_error(401, "invalid_token");
    api.get(&format!("/sessions/{old}"), &[])
        .await
        .expect_error(401, "invalid_token");
    api.send("POST", &format!("/sessions/{old}/rotate"), &[], None)
        .await
        .expect_error(401, "invalid_token");
    api.get("/sessions/validate", &session_header(&new))
        .await
        .expect(200);
    api.stop().await;
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let api = start(&[]).await;
    let (token, _) = api.login("alice").await;
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    api.get("/sessions/validate", &session_header(&tampered))
        .await
        .expect_error(401, "invalid_token");
    api.get(&format!("/sessions/{tampered}"), &[])
        .await
        .expect_error(401, "invalid_token");
    api.send("DELETE", &format!("/sessions/{tampered}"), &[], None)
        .await
        .expect_error(401, "invalid_token");
    api.get("/sessions/validate", &session_header("garbage"))
        .await
        .expect_error(401, "invalid_token");
    api.stop().await;
}

#[tokio::test]
async fn an_expired_session_is_refused_everywhere() {
    let api = start(&[]).await;
    let (token, id) = api.login("alice").await;
    api.clock.advance(HOUR + Duration::from_secs(1));
    api.get("/sessions/validate", &session_header(&token))
        .await
        .expect_error(401, "session_expired");
    api.get(&format!("/sessions/{token}"), &[])
        .await
        .expect_error(401, "session_expired");
    api.send(
        "POST",
        &format!("/sessions/{token}/extend"),
        &[],
        Some(r#"{"additional_seconds":600}"#),
    )
    .await
    .expect_error(401, "session_expired");
    api.get("/sessions/user/alice/sessions", &session_header(&token))
        .await
        .expect_error(401, "session_expired");
    api.get(&format!("/sessions/{id}"), admin())
        .await
        .expect_error(401, "session_expired");
    api.stop().await;
}

#[tokio::test]
async fn a_deleted_session_is_gone() {
    let api = start(&[]).await;
    let (token, id) = api.login("alice").await;
    let deleted = api
        .send("DELETE", &format!("/sessions/{token}"), &[], None)
        .await;
    assert_eq!(deleted.expect(200)["invalidated"], true);
    assert_eq!(deleted.json["id"], id.as_str());
    api.get(&format!("/sessions/{token}"), &[])
        .await
        .expect_error(404, "not_found");
    api.get("/sessions/validate", &session_header(&token))
        .await
        .expect_error(401, "invalid_session");
    api.send("DELETE", &format!("/sessions/{id}"), admin(), None)
        .await
        .expect_error(404, "not_found");

    let (other, other_id) = api.login("alice").await;
    let (bob, _) = api.login("bob").await;
    api.send(
        "DELETE",
        &format!("/sessions/{other_id}"),
        &session_header(&bob),
        None,
    )
    .await
    .expect_error(403, "forbidden");
    api.send(
        "DELETE",
        &format!("/sessions/{other_id}"),
        &session_header(&other),
        None,
    )
    .await
    .expect(200);
    api.stop().await;
}

#[tokio::test]
async fn user_sessions_are_listed_without_tokens_to_the_admin_or_the_same_user() {
    let api = start(&[]).await;
    let (a1, _) = api.login("alice").await;
    let (a2, _) = api.login("alice").await;
    let (bob, _) = api.login("bob").await;
    let listed = api
        .get("/sessions/user/alice/sessions", &session_header(&a1))
        .await;
    assert_eq!(listed.expect(200)["count"], 2);
    assert_eq!(listed.json["sessions"].as_array().unwrap().len(), 2);
    for token in [&a1, &a2] {
        let secret = token.split_once('.').unwrap().1;
        assert!(
            !listed.text.contains(secret),
            "list leaked a token: {}",
            listed.text
        );
    }
    api.get("/sessions/user/alice/sessions", admin())
        .await
        .expect(200);
    api.get("/sessions/user/alice/sessions", &session_header(&bob))
        .await
        .expect_error(403, "forbidden");
    api.get("/sessions/user/alice/sessions", &[])
        .await
        .expect_error(401, "unauthorized");
    api.stop().await;
}

#[tokio::test]
async fn a_user_can_sign_out_everywhere_else_and_the_admin_everywhere() {
    let api = start(&[]).await;
    let (keep, keep_id) = api.login("alice").await;
    api.login("alice").await;
    api.login("alice").await;
    let (bob, _) = api.login("bob").await;
    api.send(
        "DELETE",
        "/sessions/user/alice",
        &session_header(&bob),
        None,
    )
    .await
    .expect_error(403, "forbidden");
    api.send("DELETE", "/sessions/user/alice", &[], None)
        .await
        .expect_error(401, "unauthorized");
    let others = api
        .send(
            "DELETE",
            "/sessions/user/alice?except_current=true",
            &session_header(&keep),
            None,
        )
        .await;
    assert_eq!(others.expect(200)["invalidated"], 2);
    let left = api.get("/sessions/user/alice/sessions", admin()).await;
    assert_eq!(left.expect(200)["sessions"][0]["id"], keep_id.as_str());
    api.send(
        "DELETE",
        "/sessions/user/alice?except_current=true",
        admin(),
        None,
    )
    .await
    .expect_error(422, "invalid_input");
    let all = api
        .send("DELETE", "/sessions/user/alice", admin(), None)
        .await;
    assert_eq!(all.expect(200)["invalidated"], 1);
    api.stop().await;
}

#[tokio::test]
async fn delete_all_sessions_is_for_the_admin_only_and_must_be_confirmed() {
    let api = start(&[]).await;
    let (alice, _) = api.login("alice").await;
    let (bob, _) = api.login("bob").await;
    // A user's own session, however valid, cannot log everyone out.
    api.send(
        "DELETE",
        "/sessions?all=true",
        &session_header(&alice),
        None,
    )
    .await
    .expect_error(401, "unauthorized");
    api.send(
        "DELETE",
        "/sessions?all=true",
        &[("authorization", "Bearer wrong-wrong-wrong-wrong")],
        None,
    )
    .await
    .expect_error(401, "invalid_admin_key");
    for unconfirmed in ["/sessions", "/sessions?all=false", "/sessions?all=maybe"] {
        api.send("DELETE", unconfirmed, admin(), None)
            .await
            .expect_error(422, "invalid_input");
    }
    api.get("/sessions/validate", &session_header(&alice))
        .await
        .expect(200);

    let all = api
        .send("DELETE", "/sessions?all=true", admin(), None)
        .await;
    assert_eq!(all.expect(200)["invalidated"], 2);
    for token in [&alice, &bob] {
        api.get("/sessions/validate", &session_header(token))
            .await
            .expect_error(401, "invalid_session");
    }
    let stats = api.get("/sessions/stats", admin()).await;
    assert_eq!(stats.expect(200)["active_sessions"], 0);
    api.stop().await;
}

#[tokio::test]
async fn stats_and_cleanup_are_for_the_admin_only() {
    let api = start(&[]).await;
    let (token, _) = api.login("alice").await;
    api.login("bob").await;
    api.get("/sessions/stats", &session_header(&token))
        .await
        .expect_error(401, "unauthorized");
    api.get(
        "/sessions/stats",
        &[("authorization", "Bearer wrong-wrong-wrong-wrong")],
    )
    .await
    .expect_error(401, "invalid_admin_key");
    let stats = api.get("/sessions/stats", admin()).await;
    assert_eq!(stats.expect(200)["active_sessions"], 2);
    assert_eq!(stats.json["active_users"], 2);
    assert!(!stats.text.contains(token.split_once('.').unwrap().1));

    api.clock.advance(2 * HOUR);
    api.send("POST", "/sessions/cleanup", &session_header(&token), None)
        .await
        .expect_error(401, "unauthorized");
    let cleaned = api.send("POST", "/sessions/cleanup", admin(), None).await;
    assert_eq!(cleaned.expect(200)["deleted"], 2);
    let limited = api
        .send(
            "POST",
            "/sessions/cleanup",
            admin(),
            Some(r#"{"max_rows": 0}"#),
        )
        .await;
    limited.expect_error(422, "invalid_input");
    let stats = api.get("/sessions/stats", admin()).await;
    assert_eq!(stats.expect(200)["active_sessions"], 0);
    assert_eq!(stats.json["expired_awaiting_cleanup"], 0);
    assert_eq!(stats.json["last_cleanup_at"], "2027-01-15T10:00:00.000Z");
    api.stop().await;
}

#[tokio::test]
async fn validate_checks_roles_and_permissions() {
    let api = start(&[]).await;
    let dev = api
        .create(r#"{"user_id":"dev","metadata":{"role":"developer","permissions":["read"]}}"#)
        .await;
    let dev = dev["session_id"].as_str().unwrap();
    let boss = api
        .create(r#"{"user_id":"boss","metadata":{"role":"admin"}}"#)
        .await;
    let boss = boss["session_id"].as_str().unwrap();
    let h = session_header(dev);
    api.get("/sessions/validate?role=developer", &h)
        .await
        .expect(200);
    api.get("/sessions/validate?permission=read", &h)
        .await
        .expect(200);
    api.get("/sessions/validate?role=admin", &h)
        .await
        .expect_error(403, "forbidden");
    api.get("/sessions/validate?permission=delete", &h)
        .await
        .expect_error(403, "forbidden");
    api.get("/sessions/validate?role=developer&permission=write", &h)
        .await
        .expect_error(403, "forbidden");
    api.get("/sessions/validate?role=anything", &session_header(boss))
        .await
        .expect(200);
    api.get("/sessions/validate?role=", &h)
        .await
        .expect_error(422, "invalid_input");
    api.get("/sessions/validate", &[])
        .await
        .expect_error(401, "unauthorized");
    api.stop().await;
}

#[tokio::test]
async fn bad_input_gets_the_right_status() {
    let api = start(&[]).await;
    let (token, _) = api.login("alice").await;
    let create = |body: &'static str| api.send("POST", "/sessions/create", admin(), Some(body));
    create(r#"{"user_id":"a","timeout":5}"#)
        .await
        .expect_error(422, "invalid_input");
    let reply = create(r#"{"user_id":"a","timeout":5}"#).await;
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap()
            .contains("between 300 and 86400")
    );
    create(r#"{"user_id":"a","timout":600}"#)
        .await
        .expect_error(422, "invalid_input");
    create(r#"{"timeout":600}"#)
        .await
        .expect_error(422, "invalid_input");
    create(r#"{"user_id":""}"#)
        .await
        .expect_error(422, "invalid_input");
    create(r#"{"user_id":"a","metadata":[1]}"#)
        .await
        .expect_error(422, "invalid_input");
    create(r#"{"user_id":"a","timeout":-1}"#)
        .await
        .expect_error(422, "invalid_input");
    create("{not json").await.expect_error(422, "invalid_input");
    api.send("POST", "/sessions/create", admin(), None)
        .await
        .expect_error(422, "invalid_input");
    api.send(
        "POST",
        "/sessions/create",
        &[admin()[0], ("content-type", "text/plain")],
        Some(r#"{"user_id":"a"}"#),
    )
    .await
    .expect_error(415, "unsupported_media_type");

    let huge = format!(
        r#"{{"user_id":"a","metadata":{{"x":"{}"}}}}"#,
        "y".repeat(70 * 1024)
    );
    api.send("POST", "/sessions/create", admin(), Some(&huge))
        .await
        .expect_error(413, "payload_too_large");
    let big_metadata = format!(
        r#"{{"user_id":"a","metadata":{{"x":"{}"}}}}"#,
        "y".repeat(20 * 1024)
    );
    api.send("POST", "/sessions/create", admin(), Some(&big_metadata))
        .await
        .expect_error(422, "invalid_input");

    let extend = format!("/sessions/{token}/extend");
    api.send("POST", &extend, &[], None)
        .await
        .expect_error(422, "invalid_input");
    api.send("POST", &extend, &[], Some(r#"{"additional_seconds":0}"#))
        .await
        .expect_error(422, "invalid_input");
    api.send("POST", &extend, &[], Some(r#"{"additional_seconds":"60"}"#))
        .await
        .expect_error(422, "invalid_input");
    // serde would read an array as the fields in order; a body must be an object.
    let array = api.send("POST", &extend, &[], Some("[600]")).await;
    array.expect_error(422, "invalid_input");
    assert!(array.json["detail"].as_str().unwrap().contains("object"));
    create(r#"["a", 600]"#)
        .await
        .expect_error(422, "invalid_input");
    create("null").await.expect_error(422, "invalid_input");
    api.send(
        "POST",
        "/sessions/create?set_cookie=maybe",
        admin(),
        Some(r#"{"user_id":"a"}"#),
    )
    .await
    .expect_error(422, "invalid_input");
    api.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let api = start(&[]).await;
    for path in ["/", "/nope", "/session", "/sessions/a/b/c/d"] {
        api.get(path, &[]).await.expect_error(404, "not_found");
    }
    let reply = api.get("/sessions", &[]).await;
    reply.expect_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("DELETE"));
    let reply = api.send("PUT", "/sessions/stats", admin(), None).await;
    reply.expect_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET"));
    let reply = api.get("/sessions/create", &[]).await;
    reply.expect_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = api.send("PATCH", "/sessions/abc", &[], None).await;
    assert_eq!(reply.header("allow"), Some("GET, DELETE"));
    api.stop().await;
}

#[tokio::test]
async fn the_reject_policy_refuses_a_session_over_the_limit_with_409() {
    let api = start(&[("max_per_user", "2"), ("limit_policy", "reject")]).await;
    api.login("alice").await;
    api.login("alice").await;
    api.send(
        "POST",
        "/sessions/create",
        admin(),
        Some(r#"{"user_id":"alice"}"#),
    )
    .await
    .expect_error(409, "limit_reached");
    api.stop().await;
}

// It reaches into the SQLite file, which a platform without SQLite does not have.
not_on_akamai! {
#[tokio::test]
async fn a_create_whose_cleanup_fails_still_answers_with_a_working_token() {
    let api = start(&[("cleanup_interval", "60")]).await;
    // The first create migrates the database and claims the cleanup slot.
    api.login("old").await;
    // Another connection makes every cleanup claim fail, as a held lock or a fault would.
    rusqlite::Connection::open(api.database_path())
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER block_cleanup BEFORE UPDATE ON zoe_state \
             BEGIN SELECT RAISE(ABORT, 'cleanup blocked'); END",
        )
        .unwrap();
    api.clock.advance(HOUR);
    let (token, _) = api.login("alice").await;
    let session = api.get("/sessions/validate", &session_header(&token)).await;
    assert_eq!(session.expect(200)["user_id"], "alice");
    // The cleanup was attempted and failed (so the create above really met the fault).
    let log = api.log_text();
    let warning = log
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line["message"] == "opportunistic cleanup failed; the session was created")
        .unwrap_or_else(|| panic!("no cleanup warning in:\n{log}"));
    assert_eq!(warning["level"], "WARN");
    assert!(
        warning["cause"]
            .as_str()
            .unwrap()
            .contains("cleanup blocked"),
        "{warning}"
    );
    api.stop().await;
}
}

#[tokio::test]
async fn health_and_the_openapi_document_are_public() {
    let api = start(&[]).await;
    assert_eq!(api.get("/health", &[]).await.expect(200)["status"], "ok");
    let doc = api.get("/openapi.json", &[]).await;
    assert!(
        doc.expect(200)["openapi"]
            .as_str()
            .unwrap()
            .starts_with("3.")
    );
    assert!(doc.json["paths"]["/sessions/{session_id}/rotate"]["post"].is_object());
    api.stop().await;
}

#[tokio::test]
async fn a_cookie_session_works_and_state_changes_need_a_same_origin_signal() {
    let api = start(&[]).await;
    let created = api
        .send(
            "POST",
            "/sessions/create?set_cookie=true",
            admin(),
            Some(r#"{"user_id":"alice"}"#),
        )
        .await;
    created.expect(200);
    let set_cookie = created.header("set-cookie").unwrap().to_owned();
    let token = created.json["session_id"].as_str().unwrap();
    assert!(
        set_cookie.starts_with(&format!("zoe_session={token};")),
        "{set_cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"));
    let cookie = format!("zoe_session={token}");
    let id = created.json["id"].as_str().unwrap();

    api.get("/sessions/validate", &[("cookie", &cookie)])
        .await
        .expect(200);
    api.get(&format!("/sessions/{id}"), &[("cookie", &cookie)])
        .await
        .expect(200);

    let delete = format!("/sessions/{id}");
    api.send("DELETE", &delete, &[("cookie", &cookie)], None)
        .await
        .expect_error(403, "csrf");
    api.send(
        "DELETE",
        &delete,
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        None,
    )
    .await
    .expect_error(403, "csrf");
    api.send(
        "DELETE",
        &delete,
        &[("cookie", &cookie), ("origin", "https://evil.example")],
        None,
    )
    .await
    .expect_error(403, "csrf");
    let origin = format!("http://{}", api.addr);
    let deleted = api
        .send(
            "DELETE",
            &delete,
            &[("cookie", &cookie), ("origin", &origin)],
            None,
        )
        .await;
    deleted.expect(200);
    let cleared = deleted.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("zoe_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    api.stop().await;
}

#[tokio::test]
async fn rotate_can_set_the_cookie_and_same_origin_fetches_pass_the_csrf_check() {
    let api = start(&[("secure_cookies", "true")]).await;
    let (token, id) = api.login("alice").await;
    let cookie = format!("__Host-zoe_session={token}");
    // Without the secure prefix the cookie is not ours.
    api.get(
        "/sessions/validate",
        &[("cookie", &format!("zoe_session={token}"))],
    )
    .await
    .expect_error(401, "unauthorized");
    let rotated = api
        .send(
            "POST",
            &format!("/sessions/{id}/rotate?set_cookie=true"),
            &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
            None,
        )
        .await;
    rotated.expect(200);
    let set_cookie = rotated.header("set-cookie").unwrap();
    let new = rotated.json["session_id"].as_str().unwrap();
    assert!(
        set_cookie.starts_with(&format!("__Host-zoe_session={new};")),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    api.send(
        "POST",
        &format!("/sessions/{id}/activity"),
        &[
            ("cookie", &format!("__Host-zoe_session={new}")),
            ("x-requested-with", "fetch"),
        ],
        None,
    )
    .await
    .expect(200);
    api.stop().await;
}

#[tokio::test]
async fn require_https_refuses_plain_http_and_sends_hsts() {
    let api = start(&[("require_https", "true")]).await;
    let refused = api.get("/sessions/stats", admin()).await;
    refused.expect_error(403, "https_required");
    assert!(refused.header("strict-transport-security").is_some());
    // Clients cannot forge Spin's own headers: serve strips them.
    api.get(
        "/sessions/stats",
        &[admin()[0], ("spin-full-url", "https://x/sessions/stats")],
    )
    .await
    .expect_error(403, "https_required");
    // A client's own X-Forwarded-Proto is not believed (no trusted proxy is configured).
    api.get(
        "/sessions/stats",
        &[admin()[0], ("x-forwarded-proto", "https")],
    )
    .await
    .expect_error(403, "https_required");
    api.stop().await;
    let api = start(&[("require_https", "true"), ("trusted_proxies", "127.0.0.1")]).await;
    let behind_proxy = api
        .get(
            "/sessions/stats",
            &[admin()[0], ("x-forwarded-proto", "https")],
        )
        .await;
    behind_proxy.expect(200);
    assert_eq!(
        behind_proxy.header("strict-transport-security"),
        Some("max-age=63072000; includeSubDomains")
    );
    api.get("/health", &[]).await.expect(200);
    api.stop().await;
}

#[tokio::test]
async fn no_token_or_admin_key_reaches_a_log_line() {
    let api = start(&[("log_level", "DEBUG")]).await;
    let (token, id) = api.login("alice").await;
    api.get("/sessions/validate", &session_header(&token))
        .await
        .expect(200);
    api.get(&format!("/sessions/{token}"), &[])
        .await
        .expect(200);
    api.send(
        "POST",
        &format!("/sessions/{token}/extend"),
        &[],
        Some(r#"{"additional_seconds":60}"#),
    )
    .await
    .expect(200);
    let rotated = api
        .send("POST", &format!("/sessions/{token}/rotate"), &[], None)
        .await;
    let new = rotated.expect(200)["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.get(&format!("/sessions/{id}"), &session_header(&new))
        .await
        .expect(200);
    api.get("/sessions/user/alice/sessions", admin())
        .await
        .expect(200);
    api.send("DELETE", &format!("/sessions/{new}"), &[], None)
        .await
        .expect(200);

    let log = api.log_text();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let requests = lines.iter().filter(|l| l["message"] == "request").count();
    assert!(requests >= 8, "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l["path"].as_str().is_some_and(|p| p.contains("<token:")))
    );
    for secret in [&token, &new].map(|t| t.split_once('.').unwrap().1.to_owned()) {
        assert!(!log.contains(&secret), "a token reached the log:\n{log}");
    }
    assert!(!log.contains(ADMIN_KEY), "the admin key reached the log");
    api.stop().await;
}

#[tokio::test]
async fn request_logging_can_be_turned_off() {
    let api = start(&[("log_requests", "false")]).await;
    api.get("/health", &[]).await.expect(200);
    assert!(
        !api.log_text().contains("\"request\""),
        "{}",
        api.log_text()
    );
    api.stop().await;
    // Positive control: the same request with logging on leaves the line the check looks for.
    let api = start(&[("log_requests", "true")]).await;
    api.get("/health", &[]).await.expect(200);
    assert!(
        api.log_text().contains("\"message\":\"request\""),
        "{}",
        api.log_text()
    );
    api.stop().await;
}

/// One cell of the authorization matrix: who calls, naming which session.
#[derive(Debug, Clone, Copy)]
enum Caller {
    /// The low-role session's own token in the path.
    OwnToken,
    /// The low-role session's public id, with its own token in the header.
    OwnId,
    /// A sibling (same user, admin role) by public id, with the low-role token in the header.
    SiblingId,
    /// Another user's session by public id, with the low-role token in the header.
    OtherUsersId,
    /// The sibling by public id, with the admin key.
    Admin,
}

/// Every route that names a session, by every kind of caller: a session of the same user
/// may read or revoke a sibling by public id, and nothing else (issue 17, item 1).
#[tokio::test]
async fn a_session_may_only_read_or_revoke_its_siblings() {
    let api = start(&[]).await;
    let routes: [(&str, &str, Option<&str>); 5] = [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/activity", None),
        ("POST", "/extend", Some(r#"{"additional_seconds": 60}"#)),
        ("POST", "/rotate", None),
    ];
    let callers = [
        Caller::OwnToken,
        Caller::OwnId,
        Caller::SiblingId,
        Caller::OtherUsersId,
        Caller::Admin,
    ];
    for (n, (method, suffix, body)) in routes.into_iter().enumerate() {
        for (m, caller) in callers.into_iter().enumerate() {
            let user = format!("alice-{n}-{m}");
            let low = api
                .create(&format!(
                    r#"{{"user_id":"{user}","metadata":{{"role":"viewer","permissions":["read"]}}}}"#
                ))
                .await;
            let high = api
                .create(&format!(
                    r#"{{"user_id":"{user}","metadata":{{"role":"admin"}}}}"#
                ))
                .await;
            let (other, _) = api.login(&format!("bob-{n}-{m}")).await;
            let other_id = other.split_once('.').unwrap().0.to_owned();
            let [low_token, low_id, high_token, high_id] = [
                &low["session_id"],
                &low["id"],
                &high["session_id"],
                &high["id"],
            ]
            .map(|v| v.as_str().unwrap().to_owned());
            let low_header = [("x-session-id", low_token.as_str())];
            let (named, headers): (&str, &[(&str, &str)]) = match caller {
                Caller::OwnToken => (&low_token, &[]),
                Caller::OwnId => (&low_id, &low_header),
                Caller::SiblingId => (&high_id, &low_header),
                Caller::OtherUsersId => (&other_id, &low_header),
                Caller::Admin => (&high_id, admin()),
            };
            let path = format!("/sessions/{named}{suffix}");
            let reply = api.send(method, &path, headers, body).await;
            let sibling_may = matches!(method, "GET" | "DELETE");
            let cell = format!("{method} {suffix:?} as {caller:?}");
            match caller {
                Caller::OwnToken | Caller::OwnId | Caller::Admin => {
                    assert_eq!(reply.status, 200, "{cell}: {}", reply.text);
                }
                Caller::SiblingId if sibling_may => {
                    assert_eq!(reply.status, 200, "{cell}: {}", reply.text);
                }
                Caller::SiblingId | Caller::OtherUsersId => {
                    assert_eq!(reply.status, 403, "{cell}: {}", reply.text);
                    assert_eq!(reply.json["error"], "forbidden", "{cell}");
                }
            }
            // No answer carries a token the caller did not hold, except to the admin.
            if let Some(issued) = reply.json["session_id"].as_str() {
                assert!(
                    matches!(caller, Caller::OwnToken | Caller::OwnId | Caller::Admin),
                    "{cell} was handed a token"
                );
                let expected_id = if matches!(caller, Caller::Admin) {
                    &high_id
                } else {
                    &low_id
                };
                assert!(issued.starts_with(expected_id.as_str()), "{cell}");
            }
            // A refused act leaves the sibling's holder in possession.
            if reply.status == 403 && matches!(caller, Caller::SiblingId) {
                api.get(
                    "/sessions/validate?role=admin",
                    &session_header(&high_token),
                )
                .await
                .expect(200);
            }
        }
    }
    api.stop().await;
}

/// The probe's reproduction: a viewer session lists its user's sessions, finds the admin-role
/// one by public id and tries to rotate, extend and touch it.
#[tokio::test]
async fn a_low_role_session_cannot_take_over_its_users_admin_session() {
    let api = start(&[]).await;
    let low = api
        .create(r#"{"user_id":"alice","metadata":{"role":"viewer"}}"#)
        .await;
    let high = api
        .create(r#"{"user_id":"alice","metadata":{"role":"admin"}}"#)
        .await;
    let low_token = low["session_id"].as_str().unwrap();
    let high_token = high["session_id"].as_str().unwrap();
    let listed = api
        .get("/sessions/user/alice/sessions", &session_header(low_token))
        .await;
    let high_id = listed.expect(200)["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["role"] == "admin")
        .expect("the admin-role session is listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (suffix, body) in [
        ("/rotate", None),
        ("/extend", Some(r#"{"additional_seconds": 600}"#)),
        ("/activity", None),
    ] {
        let reply = api
            .send(
                "POST",
                &format!("/sessions/{high_id}{suffix}"),
                &session_header(low_token),
                body,
            )
            .await;
        reply.expect_error(403, "forbidden");
        assert!(reply.json.get("session_id").is_none(), "{}", reply.text);
    }
    // The real holder still holds it, role and all.
    api.get("/sessions/validate?role=admin", &session_header(high_token))
        .await
        .expect(200);
    // Positive control: the admin can rotate it, and the old token then dies.
    let rotated = api
        .send(
            "POST",
            &format!("/sessions/{high_id}/rotate"),
            admin(),
            None,
        )
        .await;
    assert!(rotated.expect(200)["session_id"].is_string());
    api.get("/sessions/validate", &session_header(high_token))
        .await
        .expect_error(401, "invalid_token");
    api.stop().await;
}

#[tokio::test]
async fn ambiguous_credentials_are_refused() {
    let api = start(&[]).await;
    let (alice, _) = api.login("alice").await;
    let (bob, _) = api.login("bob").await;
    let key = format!("Bearer {ADMIN_KEY}");
    let twice_authorization = [
        ("authorization", key.as_str()),
        ("authorization", "Bearer someone-else-entirely"),
    ];
    api.get("/sessions/stats", &twice_authorization)
        .await
        .expect_error(400, "ambiguous_credentials");
    api.get(
        "/sessions/validate",
        &[("x-session-id", &alice), ("x-session-id", &bob)],
    )
    .await
    .expect_error(400, "ambiguous_credentials");
    let alice_cookie = format!("zoe_session={alice}");
    let bob_cookie = format!("zoe_session={bob}");
    api.get(
        "/sessions/validate",
        &[("cookie", &alice_cookie), ("cookie", &bob_cookie)],
    )
    .await
    .expect_error(400, "ambiguous_credentials");
    let both_in_one = format!("{alice_cookie}; {bob_cookie}");
    api.get("/sessions/validate", &[("cookie", &both_in_one)])
        .await
        .expect_error(400, "ambiguous_credentials");
    // Positive controls: one of each is fine, and other cookies beside ours are ignored.
    api.get("/sessions/stats", &twice_authorization[..1])
        .await
        .expect(200);
    let with_others = format!("theme=dark; {alice_cookie}; lang=en");
    let ok = api
        .get("/sessions/validate", &[("cookie", &with_others)])
        .await;
    assert_eq!(ok.expect(200)["user_id"], "alice");

    for body in [
        r#"{"user_id":"victim","user_id":"mallory"}"#,
        r#"{"user_id":"mallory","metadata":{"role":"user","role":"admin"}}"#,
    ] {
        let reply = api
            .send("POST", "/sessions/create", admin(), Some(body))
            .await;
        reply.expect_error(422, "invalid_input");
        assert!(
            reply.json["detail"]
                .as_str()
                .unwrap()
                .contains("duplicate key")
        );
    }
    let stats = api.get("/sessions/stats", admin()).await;
    assert_eq!(
        stats.expect(200)["active_sessions"],
        2,
        "nothing was created"
    );
    api.stop().await;
}

#[tokio::test]
async fn the_mass_logout_needs_exactly_one_all_true() {
    let api = start(&[]).await;
    let (alice, _) = api.login("alice").await;
    for query in [
        "all",
        "all=",
        "all=1",
        "all=yes",
        "all=TRUE",
        "all=true&all=false",
        "all=true&all=true",
    ] {
        api.send("DELETE", &format!("/sessions?{query}"), admin(), None)
            .await
            .expect_error(422, "invalid_input");
    }
    api.get("/sessions/validate", &session_header(&alice))
        .await
        .expect(200);
    for query in [
        "set_cookie=",
        "set_cookie=1",
        "set_cookie=true&set_cookie=true",
    ] {
        api.send(
            "POST",
            &format!("/sessions/create?{query}"),
            admin(),
            Some(r#"{"user_id":"carol"}"#),
        )
        .await
        .expect_error(422, "invalid_input");
    }
    // Positive control: the one plain confirmation works.
    let all = api
        .send("DELETE", "/sessions?all=true", admin(), None)
        .await;
    assert_eq!(all.expect(200)["invalidated"], 1);
    api.stop().await;
}

#[tokio::test]
async fn head_health_answers_like_get_without_a_body() {
    let api = start(&[]).await;
    let head = api.send("HEAD", "/health", &[], None).await;
    assert_eq!(head.status, 200);
    assert!(head.text.is_empty(), "{}", head.text);
    assert_eq!(head.header("content-type"), Some("application/json"));
    // Positive control: GET has the body HEAD leaves out.
    let get = api.get("/health", &[]).await;
    assert_eq!(get.expect(200)["status"], "ok");
    let wrong = api.send("HEAD", "/sessions/create", &[], None).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("POST"));
    api.stop().await;
}

#[tokio::test]
async fn look_alike_user_ids_are_refused_and_visible_unicode_is_kept() {
    let api = start(&[]).await;
    for user in ["alice ", "al\u{200B}ice", "\u{202E}ecila", "alice\u{FEFF}"] {
        let body = serde_json::json!({ "user_id": user }).to_string();
        api.send("POST", "/sessions/create", admin(), Some(&body))
            .await
            .expect_error(422, "invalid_input");
    }
    let (_, _) = api.login("alice").await;
    let cyrillic = api.create(r#"{"user_id":"\u0430lice"}"#).await;
    assert_eq!(cyrillic["user_id"], "\u{430}lice");
    let listed = api.get("/sessions/user/alice/sessions", admin()).await;
    assert_eq!(listed.expect(200)["count"], 1, "а-lice is another user");
    api.stop().await;
}

/// Whatever sits in a `{session_id}` position reaches the log as a fingerprint, unless it is
/// a public id; no error body echoes the path (issues 16.5 and 17.3).
#[tokio::test]
async fn credential_positions_are_fingerprinted_in_the_log_and_never_echoed() {
    let api = start(&[]).await;
    let (token, id) = api.login("alice").await;
    let secret = token.split_once('.').unwrap().1.to_owned();
    let probes = [
        (
            "the admin key",
            format!("/sessions/{ADMIN_KEY}"),
            ADMIN_KEY.to_owned(),
        ),
        ("a token", format!("/sessions/{token}"), secret.clone()),
        (
            "a bare secret",
            format!("/sessions/{secret}"),
            secret.clone(),
        ),
        (
            "garbage",
            "/sessions/garbage-XyZzY".to_owned(),
            "XyZzY".to_owned(),
        ),
        (
            "an undecodable segment",
            format!("/sessions/{id}%2E{secret}%C3"),
            secret.clone(),
        ),
        ("a miss", format!("/nope/{secret}"), secret.clone()),
    ];
    for (what, path, hidden) in &probes {
        let reply = api.get(path, admin()).await;
        assert!(
            !reply.text.contains(hidden.as_str()),
            "{what}: {}",
            reply.text
        );
    }
    api.get(&format!("/sessions/{id}"), admin())
        .await
        .expect(200);
    let log = api.log_text();
    let paths: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .filter_map(|line| line["path"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(paths.len(), probes.len() + 2, "{log}");
    for ((what, _, hidden), path) in probes.iter().zip(&paths[1..]) {
        assert!(!path.contains(hidden.as_str()), "{what} logged as {path}");
        assert!(
            path.contains("<redacted:") || path.contains("<token:"),
            "{what}: {path}"
        );
    }
    // Positive control: a public id is logged as it is, so the check above could see one.
    assert_eq!(paths.last().unwrap(), &format!("/sessions/{id}"));
    assert!(!log.contains(&secret) && !log.contains(ADMIN_KEY), "{log}");
    api.stop().await;
}

/// Behind a TLS-terminating proxy the service sees plain HTTP; only a configured trusted
/// proxy's `X-Forwarded-Proto` may say otherwise (issues 16.6 and 17.4).
#[tokio::test]
async fn forwarded_proto_is_believed_only_from_trusted_proxies() {
    // serve's peer is 127.0.0.1: trusted in the last case only.
    for (trusted, believed) in [("", false), ("10.0.0.0/8", false), ("127.0.0.1", true)] {
        let api = start(&[("require_https", "true"), ("trusted_proxies", trusted)]).await;
        let stats = api
            .get(
                "/sessions/stats",
                &[admin()[0], ("x-forwarded-proto", "https")],
            )
            .await;
        if believed {
            stats.expect(200);
        } else {
            stats.expect_error(403, "https_required");
        }
        api.stop().await;
    }
}

/// The CSRF origin check judges the scheme as `require_https` does: behind a trusted TLS
/// proxy a same-origin `https://` Origin passes, and a client's own forwarding header does
/// not make it pass.
#[tokio::test]
async fn the_csrf_origin_check_understands_a_trusted_tls_proxy() {
    for (trusted, believed) in [("", false), ("127.0.0.1", true)] {
        let api = start(&[("trusted_proxies", trusted)]).await;
        let (token, id) = api.login("alice").await;
        let cookie = format!("zoe_session={token}");
        let origin = format!("https://{}", api.addr);
        // By public id, so the cookie is what authenticates the request.
        let path = format!("/sessions/{id}/activity");
        let proxied = api
            .send(
                "POST",
                &path,
                &[
                    ("cookie", &cookie),
                    ("origin", &origin),
                    ("x-forwarded-proto", "https"),
                ],
                None,
            )
            .await;
        if believed {
            proxied.expect(200);
        } else {
            proxied.expect_error(403, "csrf");
        }
        // Without the proxy's word the https Origin is another origin than ours.
        api.send(
            "POST",
            &path,
            &[("cookie", &cookie), ("origin", &origin)],
            None,
        )
        .await
        .expect_error(403, "csrf");
        api.stop().await;
    }
}

/// Issue 13: a session shows the device it was created or last active on, so an app can
/// render "your devices"; `record_devices=false` keeps none.
#[tokio::test]
async fn a_listed_session_shows_its_device_unless_recording_is_off() {
    for (record, expect_device) in [("true", true), ("false", false)] {
        let api = start(&[("record_devices", record)]).await;
        let headers = [
            admin()[0],
            ("user-agent", "Mozilla/5.0 (X11; Linux) Firefox/140.0"),
        ];
        api.send(
            "POST",
            "/sessions/create",
            &headers,
            Some(r#"{"user_id": "alice"}"#),
        )
        .await
        .expect(200);
        let listed = api.get("/sessions/user/alice/sessions", admin()).await;
        let session = &listed.expect(200)["sessions"][0];
        if expect_device {
            assert_eq!(
                session["user_agent"],
                "Mozilla/5.0 (X11; Linux) Firefox/140.0"
            );
            assert!(
                session["client_addr"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("127.0.0.1:")),
                "{session}"
            );
        } else {
            assert_eq!(
                (&session["user_agent"], &session["client_addr"]),
                (&Value::Null, &Value::Null)
            );
        }
        api.stop().await;
    }
}

// --- issue 27: the outside probe's findings ----------------------------------------------

/// Finding 1, login CSRF through rotate: a cross-site form posting an attacker's token in the
/// path to `rotate?set_cookie=true` made the victim's browser store the attacker's cookie.
/// A request a browser marks as cross-site never gets an answer that sets the cookie, and
/// nothing is done for it; our own origin, a configured one, and clients that are not
/// browsers still get it.
#[tokio::test]
async fn a_cross_site_request_never_gets_the_session_cookie() {
    let api = start(&[("allowed_origins", "https://app.example")]).await;
    let ours = format!("http://{}", api.addr);
    let form = ("content-type", "application/x-www-form-urlencoded");
    let cross_site: [&[(&str, &str)]; 4] = [
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
            form,
        ],
        &[("sec-fetch-site", "cross-site"), form],
        &[("sec-fetch-site", "same-site"), form],
        &[("origin", "https://evil.example"), form],
    ];
    for headers in cross_site {
        let (token, _) = api.login("mallory").await;
        let rotated = api
            .send(
                "POST",
                &format!("/sessions/{token}/rotate?set_cookie=true"),
                headers,
                Some(""),
            )
            .await;
        rotated.expect_error(403, "csrf");
        assert_eq!(rotated.header("set-cookie"), None, "{headers:?}");
        // Refused before acting: the attacker's token was not rotated.
        api.get("/sessions/validate", &session_header(&token))
            .await
            .expect(200);
        // The same through create (the admin's own browser on a hostile page).
        let mut create_headers = headers.to_vec();
        create_headers.push(admin()[0]);
        create_headers.retain(|(name, _)| *name != "content-type");
        create_headers.push(("content-type", "application/json"));
        let created = api
            .send(
                "POST",
                "/sessions/create?set_cookie=true",
                &create_headers,
                Some(r#"{"user_id": "mallory"}"#),
            )
            .await;
        created.expect_error(403, "csrf");
        assert_eq!(created.header("set-cookie"), None);
    }
    // Positive controls: our own origin, a configured origin, and a client that is no browser.
    let trusted: [&[(&str, &str)]; 4] = [
        &[("sec-fetch-site", "same-origin"), ("origin", &ours)],
        &[("origin", &ours)],
        &[
            ("origin", "https://app.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        &[],
    ];
    for headers in trusted {
        let (token, _) = api.login("alice").await;
        let rotated = api
            .send(
                "POST",
                &format!("/sessions/{token}/rotate?set_cookie=true"),
                headers,
                None,
            )
            .await;
        let new = rotated.expect(200)["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let cookie = rotated.header("set-cookie").unwrap_or_default();
        assert!(
            cookie.starts_with(&format!("zoe_session={new};")),
            "{headers:?}: {cookie}"
        );
    }
    // Without set_cookie a cross-site rotate by token is what it always was: no cookie.
    let (token, _) = api.login("bob").await;
    let rotated = api
        .send(
            "POST",
            &format!("/sessions/{token}/rotate"),
            &[("sec-fetch-site", "cross-site")],
            None,
        )
        .await;
    rotated.expect(200);
    assert_eq!(rotated.header("set-cookie"), None);
    api.stop().await;
}

/// Finding 5: a misspelt or unknown query parameter used to be dropped silently, so the
/// filter it meant (`?permissions=` for `?permission=`) never ran.
#[tokio::test]
async fn an_unknown_query_parameter_is_refused_on_every_route() {
    let api = start(&[]).await;
    let (token, _) = api.login("alice").await;
    for (method, path) in [
        ("GET", "/sessions/validate?permissions=admin"),
        ("GET", "/sessions/validate?Role=admin"),
        ("GET", "/sessions/stats?verbose=1"),
        ("GET", "/sessions/user/alice/sessions?limit=1"),
        ("POST", "/sessions/cleanup?max_rows=1"),
        ("GET", "/health?x"),
        ("GET", "/admin/?debug=true"),
    ] {
        let headers = [admin()[0], session_header(&token)[0]];
        let reply = api.send(method, path, &headers, None).await;
        reply.expect_error(400, "unknown_parameter");
    }
    // Positive control: the documented parameters pass and do their work.
    api.get(
        "/sessions/validate?permission=write",
        &session_header(&token),
    )
    .await
    .expect_error(403, "forbidden");
    api.get("/health", &[]).await.expect(200);
    api.stop().await;
}

/// Findings 9 and 11: user ids that only look blank, and `.`/`..` (which no URL can name),
/// are refused at create with a clear message.
#[tokio::test]
async fn blank_looking_and_dot_user_ids_are_refused_at_create() {
    let api = start(&[]).await;
    for user_id in ["\u{2800}", "\u{3164}", "\u{200b}", ".", ".."] {
        let body = serde_json::json!({"user_id": user_id}).to_string();
        let reply = api
            .send(
                "POST",
                "/sessions/create",
                &[admin()[0], ("content-type", "application/json")],
                Some(&body),
            )
            .await;
        reply.expect_error(422, "invalid_input");
        assert!(
            reply.json["detail"].as_str().unwrap().contains("user_id"),
            "{user_id:?}"
        );
    }
    // Positive control: a dot among other characters is an ordinary id.
    api.create(r#"{"user_id": "a.b"}"#).await;
    api.stop().await;
}

/// Finding 7: a token or the admin key sent where a user id goes was logged in clear, on the
/// request line and as the audit event's user id.
#[tokio::test]
async fn a_credential_in_a_user_id_position_never_reaches_the_log() {
    let api = start(&[]).await;
    let (token, _) = api.login("alice").await;
    api.send("DELETE", &format!("/sessions/user/{token}"), admin(), None)
        .await
        .expect(200);
    api.get(&format!("/sessions/user/{ADMIN_KEY}/sessions"), admin())
        .await
        .expect(200);
    api.send("DELETE", "/sessions/user/alice", admin(), None)
        .await
        .expect(200);
    let log = api.log_text();
    assert!(!log.contains(&token), "{log}");
    assert!(!log.contains(ADMIN_KEY), "{log}");
    let secret = token.split_once('.').unwrap().1;
    assert!(!log.contains(secret), "{log}");
    // Positive control: an ordinary user id is logged, on the request line and the event.
    assert!(log.contains("/sessions/user/alice"), "{log}");
    assert!(log.contains(r#""user_id":"alice""#), "{log}");
    api.stop().await;
}

/// Hardening: every response says `nosniff`, not only the console's.
#[tokio::test]
async fn every_response_carries_nosniff() {
    let api = start(&[]).await;
    for path in ["/health", "/sessions/validate", "/nope", "/openapi.json"] {
        let reply = api.get(path, &[]).await;
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    api.stop().await;
}

/// Finding 10: a client's own `X-Forwarded-Proto: https` outranked what the trusted proxy
/// appended in `Forwarded: proto=http`. Both present: HTTPS only when both say so.
#[tokio::test]
async fn a_clients_forwarding_header_cannot_outrank_the_proxys() {
    let api = start(&[("require_https", "true"), ("trusted_proxies", "127.0.0.1")]).await;
    api.get(
        "/sessions/stats",
        &[
            admin()[0],
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=1.2.3.4;proto=http"),
        ],
    )
    .await
    .expect_error(403, "https_required");
    api.get(
        "/sessions/stats",
        &[
            admin()[0],
            ("x-forwarded-proto", "http"),
            ("forwarded", "proto=https"),
        ],
    )
    .await
    .expect_error(403, "https_required");
    // Positive controls: the proxy's one header, or both agreeing, say HTTPS.
    for proxy in [
        vec![("forwarded", "for=1.2.3.4;proto=https")],
        vec![("x-forwarded-proto", "https")],
        vec![("x-forwarded-proto", "https"), ("forwarded", "proto=https")],
    ] {
        let headers = [proxy, vec![admin()[0]]].concat();
        api.get("/sessions/stats", &headers).await.expect(200);
    }
    api.stop().await;
}

// The throttle lives in the instance; on a platform that gives every request a fresh
// one (Akamai Functions), every refusal writes its line (docs/deploy-akamai.md).
not_on_akamai! {
/// Hardening: a flood of invalid tokens wrote ~460 bytes of log per request. Refusals for a
/// bad credential now write one line a second per kind (per instance), then one saying how
/// many were dropped; a token reuse, the event that matters, is never dropped.
#[tokio::test]
async fn a_flood_of_invalid_tokens_writes_a_line_a_second_with_a_count() {
    // The throttle lives in the instance, so it shows on one that serves many requests: a
    // WASIp3 one as served, a WASIp2 one asked to (`serve` gives it a fresh instance per
    // request by default, as Spin does, and then every refusal writes its line).
    let runtime = BUILD.serve_runtime();
    let api = crate::support::http::start_reusing(runtime, Some(ADMIN_KEY), &[], 100).await;
    let (token, id) = api.login("alice").await;
    let forged = format!("{id}.{}", "A".repeat(43));
    const FLOOD: usize = 60;
    for _ in 0..FLOOD {
        api.get("/sessions/validate", &session_header(&forged))
            .await
            .expect_error(401, "invalid_token");
    }
    let lines = |log: &str, pred: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        log.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| pred(line))
            .collect()
    };
    let failed = |l: &Value| l["event"] == "session.validate_failed";
    let refused = |l: &Value| l["message"] == "request" && l["status"] == 401;
    let log = api.log_text();
    // The clock stands still, so every request fell in one second: a line per instance that
    // served them at most (serve reuses instances; a handful at most here).
    let (events, requests) = (lines(&log, &failed).len(), lines(&log, &refused).len());
    assert!((1..=4).contains(&events), "{events} events\n{log}");
    assert!(
        (1..=4).contains(&requests),
        "{requests} request lines\n{log}"
    );
    // A second later the next refusal writes again and says how many were dropped.
    api.clock.advance(Duration::from_secs(1));
    api.get("/sessions/validate", &session_header(&forged))
        .await
        .expect_error(401, "invalid_token");
    let log = api.log_text();
    let dropped: u64 = lines(&log, &failed)
        .iter()
        .filter_map(|l| l["suppressed"].as_u64())
        .sum();
    assert!(dropped as usize >= FLOOD - 4, "{dropped} dropped\n{log}");
    // Positive control: successful requests are each logged.
    for _ in 0..10 {
        api.get("/sessions/validate", &session_header(&token))
            .await
            .expect(200);
    }
    let ok = lines(&api.log_text(), &|l| {
        l["message"] == "request" && l["status"] == 200
    });
    assert!(ok.len() >= 10, "{}", ok.len());
    api.stop().await;
}
}
