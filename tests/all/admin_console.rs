//! The admin console (`/admin/`): its headers over real HTTP, and the browser tests of
//! `tests/console/` (Debian's Chromium driven by playwright-core) against `serve`.
//!
//! The browser test needs Node.js, npm and `/usr/bin/chromium` (`apt-get install chromium`;
//! `.ci/run` installs it when missing). It runs `npm ci` in `tests/console/` when its
//! `node_modules` is missing, then `node --test` with the server's URL and the admin key in
//! the environment, and keeps the screenshots under `target/console-screenshots/`.

use crate::support::http::{ADMIN_KEY, admin, start};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use zoe_test_support::{describe_output, log_tail};

#[tokio::test]
async fn the_console_is_served_with_its_security_headers() {
    let api = start(&[]).await;
    for (path, media) in [
        ("/admin/", "text/html"),
        ("/admin/console.js", "text/javascript"),
        ("/admin/console.css", "text/css"),
    ] {
        let reply = api.get(path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert!(
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with(media)),
            "{path}: {:?}",
            reply.header("content-type")
        );
        let csp = reply.header("content-security-policy").unwrap_or("");
        assert!(csp.starts_with("default-src 'self';"), "{path}: {csp}");
        for directive in [
            "script-src 'self';",
            "style-src 'self';",
            "frame-ancestors 'none'",
            "form-action 'none'",
            "require-trusted-types-for 'script'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing: {csp}"
            );
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let page = api.get("/admin/", &[]).await;
    assert!(
        page.text
            .contains(r#"<script src="console.js" defer></script>"#)
    );

    let redirect = api.get("/admin", &[]).await;
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location"), Some("admin/"));
    assert!(redirect.header("content-security-policy").is_some());

    // Positive control: the API's own JSON answers do not carry the console's policy, so the
    // checks above see headers the console adds.
    let stats = api.get("/sessions/stats", admin()).await;
    stats.expect(200);
    assert_eq!(stats.header("content-security-policy"), None);
    api.stop().await;
}

#[tokio::test]
async fn under_require_https_the_console_is_served_over_https_only() {
    let api = start(&[("require_https", "true"), ("trusted_proxies", "127.0.0.1")]).await;
    api.get("/admin/", &[])
        .await
        .expect_error(403, "https_required");
    let https = [("x-forwarded-proto", "https")];
    let page = api.get("/admin/", &https).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.header("strict-transport-security").is_some());
    assert!(page.header("content-security-policy").is_some());
    // What the page then calls works the same way: the admin key, no cookie, so no CSRF rule
    // is involved.
    let stats = api.get("/sessions/stats", &[admin()[0], https[0]]).await;
    stats.expect(200);
    api.stop().await;
}

#[tokio::test]
async fn users_are_listed_by_prefix_for_the_admin_only_a_bounded_page_at_a_time() {
    let api = start(&[]).await;
    for user in ["alice", "albert", "bob", "a_b", "axb", "a%c"] {
        api.login(user).await;
    }
    let (token, _) = api.login("alice").await;
    api.get("/sessions/users", &[])
        .await
        .expect_error(401, "unauthorized");
    api.get("/sessions/users", &[("x-session-id", token.as_str())])
        .await
        .expect_error(401, "unauthorized");
    api.get("/sessions/users", &[("authorization", "Bearer wrong")])
        .await
        .expect_error(401, "invalid_admin_key");
    for query in [
        "limit=0",
        "limit=201",
        "limit=ten",
        "prefix=a&prefix=b",
        "after=",
    ] {
        api.get(&format!("/sessions/users?{query}"), admin())
            .await
            .expect_error(422, "invalid_input");
    }

    let first = api.get("/sessions/users?prefix=al&limit=1", admin()).await;
    let body = first.expect(200);
    assert_eq!(body["users"][0]["user_id"], "albert");
    assert_eq!(body["users"][0]["sessions"], 1);
    assert_eq!(
        body["users"][0]["last_activity"],
        "2027-01-15T08:00:00.000Z"
    );
    assert_eq!(body["next_after"], "albert");
    let next = api
        .get("/sessions/users?prefix=al&limit=1&after=albert", admin())
        .await;
    let body = next.expect(200);
    assert_eq!(body["users"][0]["user_id"], "alice");
    assert_eq!(body["users"][0]["sessions"], 2);
    assert_eq!(body["next_after"], serde_json::Value::Null);
    assert_eq!(body["users"].as_array().map(Vec::len), Some(1));

    // The prefix is a prefix, not a pattern: `_` and `%` match only themselves (as they
    // would not under LIKE).
    for (prefix, expected) in [("a_", "a_b"), ("a%25", "a%c")] {
        let page = api
            .get(&format!("/sessions/users?prefix={prefix}"), admin())
            .await;
        let users = page.expect(200)["users"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ids: Vec<&str> = users.iter().filter_map(|u| u["user_id"].as_str()).collect();
        assert_eq!(ids, [expected], "prefix {prefix}");
    }
    let all = api.get("/sessions/users", admin()).await;
    assert_eq!(all.expect(200)["users"].as_array().map(Vec::len), Some(6));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let chromium = std::env::var_os("ZOE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "the browser tests need Chromium at {}: install it with `apt-get install chromium` \
         (or set ZOE_CHROMIUM to another Chromium)",
        chromium.display()
    );
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    if !package.join("node_modules/playwright-core").exists() {
        let output = run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&package))
        .await;
        assert!(
            output.status.success(),
            "npm ci in tests/console failed:\n{}",
            describe_output(&output)
        );
    }
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("console-screenshots");

    let api = start(&[]).await;
    let output = run(Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.js"])
        .current_dir(&package)
        .env("ZOE_CONSOLE_URL", format!("http://{}", api.addr))
        .env("ZOE_ADMIN_KEY", ADMIN_KEY)
        .env("ZOE_SCREENSHOTS", &screenshots)
        .env("ZOE_CHROMIUM", &chromium))
    .await;
    let log = api.log_text();
    api.stop().await;
    assert!(
        output.status.success(),
        "the browser tests failed:\n{}\n--- guest log (last 4000 bytes)\n{}",
        describe_output(&output),
        log_tail(&log)
    );
    // The run did drive the page: it saved what it saw.
    assert!(screenshots.join("console.png").exists());
}

/// Runs `command` off the runtime's worker threads, so the server keeps serving meanwhile.
async fn run(command: &mut Command) -> Output {
    let mut command = std::mem::replace(command, Command::new("true"));
    let program = format!("{:?}", command.get_program());
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the blocking task runs")
        .unwrap_or_else(|err| panic!("cannot run {program}: {err} (is Node.js installed?)"))
}
