//! The session middleware on a key-value store (`key_value_store`), as the API keeps sessions
//! there: it includes the API's own `src/spin_key_value.rs` and imports the same synchronous
//! `fermyon:spin/key-value@2.0.0`, which Spin links for WASIp3 components too. The store is a
//! database of its own on the run's Redis server, which the API (the WASIp2 build, through the
//! host's typed API) and the chain (served as `serve --middleware` composes it) share.

use crate::support::http::{START_MS, start_configured};
use zoe_session_host::key_value::{DEFAULT_LABEL, StoreConfig};
use zoe_session_host::{Clock, CreateOptions, HostConfig, SessionHost};
use zoe_test_support::Build;

/// The store `default` on `url`.
fn on_redis(config: &mut HostConfig, url: &str) {
    config
        .key_value
        .stores
        .insert(DEFAULT_LABEL.to_owned(), StoreConfig::Redis(url.to_owned()));
}

#[tokio::test]
async fn on_a_key_value_store_the_middleware_validates_the_api_s_sessions() {
    let url = zoe_test_redis::shared().fresh_url();
    // The API keeps a session in the store.
    let mut config = HostConfig::in_memory();
    on_redis(&mut config, &url);
    config.variables.set("key_value_store", DEFAULT_LABEL);
    let api =
        SessionHost::open_with_clock(Build::Wasip2.runtime(), config, Clock::manual(START_MS))
            .await
            .expect("the API opens");
    let token = api
        .sessions()
        .await
        .expect("an instance")
        .create(
            "heidi",
            CreateOptions {
                metadata: Some(r#"{"role":"admin"}"#.to_owned()),
                ..CreateOptions::default()
            },
        )
        .await
        .expect("create")
        .token;

    // The chain as the middleware's own tests compose it (`serve --middleware`).
    let runtime = crate::middleware::chain();
    let variables = [
        ("protected_paths", "/admin"),
        ("required_roles", "/admin=admin"),
        ("key_value_store", DEFAULT_LABEL),
    ];
    let served = start_configured(runtime, None, &variables, |config| on_redis(config, &url)).await;
    let reply = served
        .send("GET", "/admin", &[("x-session-id", &token)], None)
        .await;
    assert_eq!(reply.expect(200)["user_id"], "heidi", "{}", reply.text);
    // A token the store does not hold is refused there.
    served
        .send("GET", "/admin", &[("x-session-id", "x.y")], None)
        .await
        .expect(401);
    served.stop().await;

    // Control: the same chain on its SQLite database, which never saw the session, refuses
    // the token, so the 200 above came from the key-value store.
    let sql = start_configured(runtime, None, &variables[..2], |_| {}).await;
    sql.send("GET", "/admin", &[("x-session-id", &token)], None)
        .await
        .expect(401);
    sql.stop().await;
}
