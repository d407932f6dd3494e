//! Instance reuse in `serve`: an instance serves several requests, yet nothing one request
//! brings (credentials, cookies, a trap) reaches the next, it is replaced after its share of
//! requests, and `requests_per_instance: 1` (the default) gives every request a fresh instance
//! as Spin does.
//! Instances are counted through [`Server::instances_created`], never inferred from timing.

use crate::support::in_process::Harness;
use crate::support::{ADMIN, get, request};
use serde_json::json;
use std::time::Duration;
use zoe_session_host::ServeOptions;

/// A `/health` request that must succeed, then waits until its guest has finished, so the
/// instance is back in the pool (or dropped) before the next request: a guest may still be
/// returning from its handler when the client already has the response.
fn health_ok(harness: &Harness) {
    let reply = get(harness.addr, "/health", &[]).expect("health answers");
    assert_eq!(reply.status, 200);
    settle(harness);
}

fn settle(harness: &Harness) {
    harness.wait_for_guests(|running| running == 0, "a guest is still running");
}

#[test]
fn one_instance_serves_sequential_requests_and_is_replaced_after_its_share() {
    let harness = Harness::start(ServeOptions {
        requests_per_instance: 3,
        ..ServeOptions::default()
    });
    for _ in 0..3 {
        health_ok(&harness);
    }
    assert_eq!(harness.server().instances_created(), 1);
    health_ok(&harness);
    assert_eq!(
        harness.server().instances_created(),
        2,
        "the fourth request needs a fresh instance"
    );
    for _ in 0..2 {
        health_ok(&harness);
    }
    assert_eq!(harness.server().instances_created(), 2);
}

#[test]
fn one_request_per_instance_instantiates_every_time() {
    // The default, as on Spin (issue 30); the test above is the positive control of reuse.
    assert_eq!(ServeOptions::default().requests_per_instance, 1);
    let harness = Harness::start(ServeOptions::default());
    for _ in 0..5 {
        health_ok(&harness);
    }
    assert_eq!(harness.server().instances_created(), 5);
}

#[test]
fn credentials_of_one_request_do_not_reach_the_next_on_the_same_instance() {
    // Reuse is an opt-in (the default is Spin's fresh instance per request).
    let harness = Harness::start(ServeOptions {
        requests_per_instance: 100,
        ..ServeOptions::default()
    });
    let token = harness.create_token("alice");
    let stats = request(harness.addr, "GET", "/sessions/stats", &[ADMIN], None).unwrap();
    assert_eq!(stats.status, 200);
    // Same instance (checked below), no credentials: refused.
    let anonymous = get(harness.addr, "/sessions/stats", &[]).unwrap();
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.json());
    let own = get(
        harness.addr,
        "/sessions/validate",
        &[("x-session-id", &token)],
    )
    .unwrap();
    assert_eq!(own.status, 200);
    let without = get(harness.addr, "/sessions/validate", &[]).unwrap();
    assert_eq!(without.status, 401, "{:?}", without.json());
    // A cookie-set response does not make the next response set a cookie.
    let cookie = request(
        harness.addr,
        "POST",
        "/sessions/create?set_cookie=true",
        &[ADMIN],
        Some(&json!({"user_id": "bob"})),
    )
    .unwrap();
    assert!(cookie.header("set-cookie").is_some());
    settle(&harness);
    let plain = request(
        harness.addr,
        "POST",
        "/sessions/create",
        &[ADMIN],
        Some(&json!({"user_id": "bob"})),
    )
    .unwrap();
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("set-cookie"), None);
    assert_eq!(
        harness.server().instances_created(),
        1,
        "every request above ran on one instance"
    );
}

/// The request deadline of [`an_instance_that_overran_its_deadline_is_never_reused`].
const DEADLINE: Duration = Duration::from_secs(1);

#[test]
fn an_instance_that_overran_its_deadline_is_never_reused() {
    let harness = Harness::start(ServeOptions {
        request_timeout: DEADLINE,
        requests_per_instance: 100,
        ..ServeOptions::default()
    });
    health_ok(&harness);
    assert_eq!(harness.server().instances_created(), 1);
    // The create runs on that instance, the only one there is, and overruns its deadline
    // waiting for the write lock: a wait, not a race against a spinning epoch, so it overruns
    // however busy the other tests keep the machine.
    let overrun = harness.create_with_write_lock_held(DEADLINE * 3 / 2);
    assert_eq!(overrun.status, 503, "{:?}", overrun.json());
    assert_eq!(overrun.json()["error"], "timeout");
    settle(&harness);
    assert_eq!(harness.server().instances_created(), 1);
    // The trapped instance was dropped, so the next request needs a new one.
    health_ok(&harness);
    assert_eq!(
        harness.server().instances_created(),
        2,
        "a fresh instance replaced the one that trapped"
    );
}
