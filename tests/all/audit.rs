//! Audit events over HTTP (issue 13): a scripted session life through `serve` — create,
//! validate, rotate, the old token presented again after the grace period, a mass logout and
//! a wrong admin key — leaves its audit lines in order, with the documented fields and no
//! secret.

use crate::support::http::{ADMIN_KEY, Api, admin, start};
use serde_json::Value;
use std::time::Duration;

/// The audit lines of the server's log, in order.
fn audit_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["audit"] == true)
        .collect()
}

/// Rotates session `id` with `token` in the header, as a client does; returns the new token.
async fn rotate(api: &Api, id: &str, token: &str) -> String {
    let rotated = api
        .send(
            "POST",
            &format!("/sessions/{id}/rotate"),
            &[("x-session-id", token)],
            None,
        )
        .await;
    rotated.expect(200)["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_session_s_life_is_told_by_its_audit_lines_in_order_without_secrets() {
    let api = start(&[]).await;
    let create = |request_id: &'static str| {
        let api = &api;
        async move {
            let headers = [admin()[0], ("x-request-id", request_id)];
            let reply = api
                .send(
                    "POST",
                    "/sessions/create",
                    &headers,
                    Some(r#"{"user_id": "alice"}"#),
                )
                .await;
            assert_eq!(reply.header("x-request-id"), Some(request_id));
            reply.expect(200).clone()
        }
    };
    let first = create("req-create-1").await;
    let second = create("req-create-2").await;
    let (id, old) = (
        first["id"].as_str().unwrap().to_owned(),
        first["session_id"].as_str().unwrap().to_owned(),
    );
    api.get("/sessions/validate", &[("x-session-id", &old)])
        .await
        .expect(200);
    let new = rotate(&api, &id, &old).await;
    // Past the 30 s grace, the old token comes back: as any dead token, a 401.
    api.clock.advance(Duration::from_secs(31));
    api.get("/sessions/validate", &[("x-session-id", &old)])
        .await
        .expect_error(401, "invalid_token");
    // And the session is gone with it: the rotate's own token is dead too.
    let after = api
        .get("/sessions/validate", &[("x-session-id", &new)])
        .await;
    assert_eq!(after.status, 401, "{}", after.text);
    api.send("DELETE", "/sessions/user/alice", admin(), None)
        .await
        .expect(200);
    let wrong_key = "Bearer not-the-admin-key-at-all";
    api.get("/sessions/stats", &[("authorization", wrong_key)])
        .await
        .expect_error(401, "invalid_admin_key");

    let log = api.log_text();
    let lines = audit_lines(&log);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "session.created",
            "session.created",
            "session.rotated",
            "session.token_reuse",
            "session.validate_failed",
            "session.invalidated",
            "admin.auth_failed",
        ],
        "{log}"
    );
    for line in &lines {
        assert_eq!(line["message"], line["event"], "{line}");
        assert!(
            line["ts"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert!(
            line["client_addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{line}"
        );
        assert_eq!(
            line["request_id"].as_str().map(str::len).map(|n| n > 0),
            Some(true)
        );
    }
    assert_eq!(lines[0]["request_id"], "req-create-1");
    assert_eq!(lines[0]["session_id"], id);
    assert_eq!(lines[0]["user_id"], "alice");
    assert_eq!(lines[1]["session_id"], second["id"]);
    assert_eq!(lines[3]["level"], "WARN");
    assert_eq!(lines[3]["session_id"], id);
    assert_eq!(lines[3]["rotated_at"], "2027-01-15T08:00:00.000Z");
    assert_eq!(lines[4]["kind"], "unknown");
    assert_eq!(
        (&lines[5]["scope"], &lines[5]["count"]),
        (&"user".into(), &1.into())
    );
    assert_eq!(lines[6]["reason"], "wrong_key");
    assert_eq!(lines[6]["level"], "WARN");

    // No secret anywhere in the log: neither token's secret, nor either key. The public id,
    // which shares the token's text up to the dot, is there: the search does see tokens' text.
    assert!(log.contains(&id));
    for secret in [
        old.split_once('.').unwrap().1,
        new.split_once('.').unwrap().1,
        second["session_id"]
            .as_str()
            .unwrap()
            .split_once('.')
            .unwrap()
            .1,
        ADMIN_KEY,
        "not-the-admin-key-at-all",
    ] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
    api.stop().await;
}

#[tokio::test]
async fn within_the_grace_the_old_token_is_refused_and_revokes_nothing() {
    let api = start(&[]).await;
    let created = api.create(r#"{"user_id": "bob"}"#).await;
    let (id, old) = (
        created["id"].as_str().unwrap().to_owned(),
        created["session_id"].as_str().unwrap().to_owned(),
    );
    let new = rotate(&api, &id, &old).await;
    // A request of the same client still carrying the old token, 10 s later.
    api.clock.advance(Duration::from_secs(10));
    api.get("/sessions/validate", &[("x-session-id", &old)])
        .await
        .expect_error(401, "invalid_token");
    api.get("/sessions/validate", &[("x-session-id", &new)])
        .await
        .expect(200);
    let lines = audit_lines(&api.log_text());
    assert!(lines.iter().all(|l| l["event"] != "session.token_reuse"));
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "session.validate_failed" && l["kind"] == "bad_secret")
    );
    api.stop().await;
}

#[tokio::test]
async fn audit_events_off_writes_no_audit_line_but_the_request_log_stays() {
    let api = start(&[("audit_events", "false")]).await;
    api.create(r#"{"user_id": "carol"}"#).await;
    api.get(
        "/sessions/stats",
        &[("authorization", "Bearer wrong-key-wrong-key")],
    )
    .await
    .expect_error(401, "invalid_admin_key");
    let log = api.log_text();
    assert!(audit_lines(&log).is_empty(), "{log}");
    assert!(log.contains(r#""message":"request""#), "{log}");
    // Positive control: the same server with events on has them.
    let on = start(&[]).await;
    on.create(r#"{"user_id": "carol"}"#).await;
    assert_eq!(audit_lines(&on.log_text()).len(), 1);
    on.stop().await;
    api.stop().await;
}
