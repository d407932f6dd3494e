//! Composed components served by the host over loopback HTTP: the example chat app (its own
//! component importing `zoe:session/sessions`, composed with zoe-session by wac-graph) and the
//! session gate in front of it. Every seed route allows and refuses as the seed describes, and
//! the gate admits, refuses and resists spoofing as documented.

// The tests run natively and drive the component through the host.

use crate::support::http::{Api, Reply};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use zoe_session_compose::{CHAT_APP_WASM, GATED_CHAT_APP_WASM};
use zoe_session_host::{Allocation, Runtime};

/// Each composed component compiled once per test binary.
fn runtime(path: &str) -> Runtime {
    static RUNTIMES: OnceLock<Mutex<HashMap<String, Runtime>>> = OnceLock::new();
    let mut cache = RUNTIMES
        .get_or_init(Default::default)
        .lock()
        .expect("runtime cache");
    cache
        .entry(path.to_owned())
        .or_insert_with(|| {
            Runtime::from_file(Path::new(path), Allocation::Pooling { max_instances: 16 })
                .unwrap_or_else(|err| panic!("{path} compiles and links: {err:#}"))
        })
        .clone()
}

/// A composed component served on an ephemeral loopback port, over a temp-dir database with a
/// manual clock, with the chat app's own requests on top of the shared client.
struct App {
    api: Api,
}

impl Deref for App {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

async fn serve(path: &str, variables: &[(&str, &str)]) -> App {
    App {
        api: crate::support::http::start_on(&runtime(path), None, variables).await,
    }
}

impl App {
    async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = token.map(|t| ("x-session-id", t)).into_iter().collect();
        self.send("GET", path, &headers, None).await
    }

    /// The demo login: a session with the given role, permissions and preferences.
    async fn login(&self, body: Value) -> String {
        let reply = self
            .send("POST", "/login", &[], Some(&body.to_string()))
            .await;
        reply.expect(200)["session_id"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    async fn login_as(&self, user: &str, role: Option<&str>, permissions: &[&str]) -> String {
        self.login(json!({"user_id": user, "role": role, "permissions": permissions}))
            .await
    }

    async fn stop(self) {
        self.api.stop().await;
    }
}

// ---- the chat app composed with zoe-session ----

#[tokio::test]
async fn chat_requires_a_session_and_greets_its_user() {
    let app = serve(CHAT_APP_WASM, &[]).await;
    app.send("POST", "/api/chat", &[], Some(r#"{"message":"hi"}"#))
        .await
        .expect_error(401, "unauthorized");
    app.send(
        "POST",
        "/api/chat",
        &[("x-session-id", "not-a-token")],
        Some(r#"{"message":"hi"}"#),
    )
    .await
    .expect_error(401, "invalid_token");

    let token = app.login_as("user123", None, &[]).await;
    let reply = app
        .send(
            "POST",
            "/api/chat",
            &[("x-session-id", &token)],
            Some(r#"{"message":"hi"}"#),
        )
        .await;
    assert_eq!(
        reply.expect(200),
        &json!({"response": "Hello user123!", "message": "hi"})
    );
    // The seed's own integration test and curl example use GET.
    assert_eq!(
        app.get("/api/chat", Some(&token)).await.expect(200),
        &json!({"response": "Hello user123!"})
    );
    app.stop().await;
}

#[tokio::test]
async fn public_info_greets_sessions_and_anonymous_callers_alike() {
    let app = serve(CHAT_APP_WASM, &[]).await;
    assert_eq!(
        app.get("/public/info", None).await.expect(200),
        &json!({"message": "Hello anonymous user!"})
    );
    assert_eq!(
        app.get("/public/info", Some("bogus.token"))
            .await
            .expect(200),
        &json!({"message": "Hello anonymous user!"})
    );
    let token = app.login_as("alice", None, &[]).await;
    assert_eq!(
        app.get("/public/info", Some(&token)).await.expect(200),
        &json!({"message": "Hello alice!"})
    );
    app.stop().await;
}

#[tokio::test]
async fn admin_route_admits_only_the_admin_role() {
    let app = serve(CHAT_APP_WASM, &[]).await;
    let admin = app.login_as("root", Some("admin"), &[]).await;
    let developer = app.login_as("dev", Some("developer"), &["write"]).await;
    assert_eq!(
        app.get("/admin", Some(&admin)).await.expect(200),
        &json!({"admin": "root"})
    );
    app.get("/admin", Some(&developer))
        .await
        .expect_error(403, "forbidden");
    app.get("/admin", None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn developer_route_admits_developers_and_admins_only() {
    let app = serve(CHAT_APP_WASM, &[]).await;
    let developer = app.login_as("dev", Some("developer"), &[]).await;
    let admin = app.login_as("root", Some("admin"), &[]).await;
    let user = app.login_as("bob", Some("user"), &["write"]).await;
    let no_role = app.login_as("carol", None, &[]).await;
    assert_eq!(
        app.get("/developer", Some(&developer)).await.expect(200),
        &json!({"developer": "dev"})
    );
    assert_eq!(
        app.get("/developer", Some(&admin)).await.expect(200),
        &json!({"developer": "root"})
    );
    for token in [&user, &no_role] {
        app.get("/developer", Some(token))
            .await
            .expect_error(403, "forbidden");
    }
    app.get("/developer", None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn write_route_needs_the_write_permission_or_admin() {
    let app = serve(CHAT_APP_WASM, &[]).await;
    let writer = app.login_as("w", None, &["read", "write"]).await;
    let reader = app.login_as("r", Some("developer"), &["read"]).await;
    let admin = app.login_as("root", Some("admin"), &[]).await;
    for token in [&writer, &admin] {
        assert_eq!(
            app.get("/write", Some(token)).await.expect(200),
            &json!({"message": "Write access granted"})
        );
    }
    app.get("/write", Some(&reader))
        .await
        .expect_error(403, "forbidden");
    app.get("/write", None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn profile_reads_role_permissions_and_preferences_from_metadata() {
    let app = serve(CHAT_APP_WASM, &[]).await;
    let token = app
        .login(json!({
            "user_id": "user123",
            "role": "admin",
            "permissions": ["read", "write", "delete"],
            "preferences": {"theme": "dark", "language": "en"},
        }))
        .await;
    assert_eq!(
        app.get("/profile", Some(&token)).await.expect(200),
        &json!({
            "user_id": "user123",
            "role": "admin",
            "permissions": ["read", "write", "delete"],
            "preferences": {"theme": "dark", "language": "en"},
        })
    );
    let plain = app.login_as("bob", None, &[]).await;
    assert_eq!(
        app.get("/profile", Some(&plain)).await.expect(200),
        &json!({"user_id": "bob", "role": null, "permissions": [], "preferences": {}})
    );
    app.get("/profile", None)
        .await
        .expect_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_or_logged_out_session_is_refused_by_the_app() {
    let app = serve(CHAT_APP_WASM, &[]).await;
    let expiring = app.login(json!({"user_id": "alice", "timeout": 300})).await;
    let leaving = app.login_as("bob", None, &[]).await;
    app.clock.advance(Duration::from_secs(301));
    app.get("/api/chat", Some(&expiring))
        .await
        .expect_error(401, "session_expired");

    app.send("POST", "/logout", &[("x-session-id", &leaving)], None)
        .await
        .expect(200);
    app.get("/api/chat", Some(&leaving))
        .await
        .expect_error(401, "invalid_token");
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_not_faults() {
    let app = serve(CHAT_APP_WASM, &[]).await;
    app.send("POST", "/login", &[], Some("{not json"))
        .await
        .expect_error(422, "invalid_input");
    app.send("POST", "/login", &[], Some(r#"{"user_id": ""}"#))
        .await
        .expect_error(422, "invalid_input");
    app.send(
        "POST",
        "/login",
        &[],
        Some(r#"{"user_id": "a", "timeout": 5}"#),
    )
    .await
    .expect_error(422, "invalid_input");
    app.get("/nowhere", None)
        .await
        .expect_error(404, "not_found");
    app.get("/login", None)
        .await
        .expect_error(405, "method_not_allowed");
    let token = app.login_as("alice", None, &[]).await;
    assert!(
        !app.log_text().contains(&token),
        "a token reached the log: {}",
        app.log_text()
    );
    app.stop().await;
}

// ---- the gate in front of the chat app ----

#[tokio::test]
async fn the_gate_refuses_protected_paths_without_a_valid_session() {
    let app = serve(GATED_CHAT_APP_WASM, &[]).await;
    // `/tasks` is protected by default but the app has no such route: a 401 can only come
    // from the gate, a 404 only from the app behind it.
    app.get("/tasks", None)
        .await
        .expect_error(401, "unauthorized");
    app.get("/tasks/today", Some("bogus.token"))
        .await
        .expect_error(401, "invalid_token");
    app.get("/health/../tasks", None)
        .await
        .expect_error(401, "unauthorized");

    let token = app.login_as("alice", None, &[]).await;
    app.get("/tasks", Some(&token))
        .await
        .expect_error(404, "not_found");
    app.send(
        "GET",
        "/tasks",
        &[("cookie", &format!("theme=dark; zoe_session={token}"))],
        None,
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(
        app.get("/api/chat", Some(&token)).await.expect(200),
        &json!({"response": "Hello alice!"})
    );
    // Unlisted paths pass unchecked; the app decides.
    assert_eq!(
        app.get("/public/info", None).await.expect(200),
        &json!({"message": "Hello anonymous user!"})
    );
    app.stop().await;
}

#[tokio::test]
async fn excluded_paths_pass_the_gate_without_a_session() {
    let app = serve(
        GATED_CHAT_APP_WASM,
        &[
            ("protected_paths", "/"),
            ("excluded_paths", "/login,/public"),
        ],
    )
    .await;
    assert_eq!(
        app.get("/public/info", None).await.expect(200),
        &json!({"message": "Hello anonymous user!"})
    );
    let token = app.login_as("alice", Some("admin"), &[]).await;
    app.get("/profile", None)
        .await
        .expect_error(401, "unauthorized");
    app.get("/publicity", None)
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(
        app.get("/admin", Some(&token)).await.expect(200),
        &json!({"admin": "alice"})
    );
    app.stop().await;
}

#[tokio::test]
async fn clients_cannot_send_identity_headers_through_the_gate() {
    let app = serve(GATED_CHAT_APP_WASM, &[]).await;
    let token = app.login_as("mallory", None, &[]).await;
    for (name, value) in [("x-session-user", "admin"), ("X-Session-Role", "admin")] {
        for path in ["/public/info", "/api/chat", "/admin"] {
            app.send(
                "GET",
                path,
                &[(name, value), ("x-session-id", &token)],
                None,
            )
            .await
            .expect_error(400, "identity_header");
        }
    }
    // With the token in another header, `x-session-id` is an identity header too.
    let app = serve(GATED_CHAT_APP_WASM, &[("session_header", "X-Token")]).await;
    app.send("GET", "/public/info", &[("x-session-id", "anything")], None)
        .await
        .expect_error(400, "identity_header");
    app.send("GET", "/tasks", &[("x-token", "bogus.token")], None)
        .await
        .expect_error(401, "invalid_token");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_session_is_refused_by_the_gate() {
    let app = serve(GATED_CHAT_APP_WASM, &[]).await;
    let token = app.login(json!({"user_id": "alice", "timeout": 300})).await;
    app.get("/tasks", Some(&token))
        .await
        .expect_error(404, "not_found");
    app.clock.advance(Duration::from_secs(301));
    app.get("/tasks", Some(&token))
        .await
        .expect_error(401, "session_expired");
    app.stop().await;
}

#[tokio::test]
async fn requests_through_the_gate_keep_a_session_alive_only_with_auto_update() {
    for (auto_update, expected) in [("true", 404), ("false", 401)] {
        let app = serve(GATED_CHAT_APP_WASM, &[("auto_update", auto_update)]).await;
        let token = app.login(json!({"user_id": "alice", "timeout": 300})).await;
        app.clock.advance(Duration::from_secs(200));
        app.get("/tasks", Some(&token))
            .await
            .expect_error(404, "not_found");
        // 400 s after login, 200 s after the last gated request.
        app.clock.advance(Duration::from_secs(200));
        let reply = app.get("/tasks", Some(&token)).await;
        assert_eq!(
            reply.status, expected,
            "auto_update={auto_update}: {}",
            reply.text
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_bad_gate_setting_is_a_config_error_not_a_fault() {
    let app = serve(GATED_CHAT_APP_WASM, &[("protected_paths", "api")]).await;
    app.get("/api/chat", None).await.expect_error(500, "config");
    assert!(
        app.log_text().contains("protected_paths"),
        "{}",
        app.log_text()
    );
    app.stop().await;
}

/// With `session_header` set, the app behind the gate reads the token from that header too:
/// every route behaves as it does with the default header (issue 16, item 7).
#[tokio::test]
async fn the_gated_app_honours_a_configured_session_header() {
    let app = serve(
        GATED_CHAT_APP_WASM,
        &[
            ("session_header", "X-Token"),
            (
                "protected_paths",
                "/api/chat,/developer,/admin,/write,/profile",
            ),
        ],
    )
    .await;
    let admin = app.login_as("alice", Some("admin"), &["write"]).await;
    let viewer = app.login_as("bob", Some("viewer"), &[]).await;
    let with = |token: &str| vec![("x-token", token.to_owned())];
    let cases: [(&str, &str, &String, u16); 8] = [
        ("GET", "/api/chat", &admin, 200),
        ("POST", "/api/chat", &admin, 200),
        ("GET", "/public/info", &admin, 200),
        ("GET", "/admin", &admin, 200),
        ("GET", "/admin", &viewer, 403),
        ("GET", "/developer", &admin, 200),
        ("GET", "/write", &admin, 200),
        ("GET", "/profile", &viewer, 200),
    ];
    for (method, path, token, status) in cases {
        let headers = with(token);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let body = (method == "POST").then_some(r#"{"message":"hi"}"#);
        let reply = app.send(method, path, &headers, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
    }
    let greeting = app
        .send("GET", "/public/info", &[("x-token", &viewer)], None)
        .await;
    assert_eq!(greeting.expect(200), &json!({"message": "Hello bob!"}));
    // The app names the configured header when it is missing.
    let missing = app.send("GET", "/profile", &[], None).await;
    missing.expect_error(401, "unauthorized");
    assert!(
        missing.json["detail"].as_str().unwrap().contains("X-Token"),
        "{}",
        missing.text
    );
    let logout = app
        .send("POST", "/logout", &[("x-token", &viewer)], None)
        .await;
    logout.expect(200);
    app.send("GET", "/profile", &[("x-token", &viewer)], None)
        .await
        .expect_error(401, "invalid_token");
    app.stop().await;
}
