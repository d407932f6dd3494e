//! Instance reuse in `serve`: an instance serves several requests, yet nothing one request
//! brings (credentials, cookies, a trap) reaches the next, it is replaced after its share of
//! requests, and `requests_per_instance: 1` gives every request a fresh instance as Spin does.
//! Instances are counted through [`Server::instances_created`], never inferred from timing.

mod support;

use serde_json::json;
use support::in_process::Harness;
use support::{ADMIN, get, request};
use zoe_session_host::{Allocation, Runtime, ServeOptions};

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
    let harness = Harness::start(ServeOptions {
        requests_per_instance: 1,
        ..ServeOptions::default()
    });
    for _ in 0..5 {
        health_ok(&harness);
    }
    assert_eq!(harness.server().instances_created(), 5);
}

#[test]
fn credentials_of_one_request_do_not_reach_the_next_on_the_same_instance() {
    let harness = Harness::start(ServeOptions::default());
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

#[test]
fn an_instance_that_overran_its_deadline_is_never_reused() {
    let runtime = Runtime::new(Allocation::Pooling { max_instances: 8 }).unwrap();
    let harness = Harness::with_one_tick_deadline(&runtime);
    // Settling after each answer keeps one instance at a time, so the one that overruns is
    // the only one there is.
    let overrun = harness.health_until_overrun(&runtime, || settle(&harness));
    assert!(
        overrun.is_some(),
        "a request overran the spinning epoch within 100 tries"
    );
    let before = harness.server().instances_created();
    // The trapped instance was dropped, so the next request that succeeds needs a new one.
    let healthy = (0..20).any(|_| get(harness.addr, "/health", &[]).is_ok_and(|r| r.status == 200));
    assert!(healthy, "the server answers again after the overrun");
    assert!(
        harness.server().instances_created() > before,
        "a fresh instance replaced the one that trapped"
    );
}
