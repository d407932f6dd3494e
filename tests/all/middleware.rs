//! The session middleware in front of the example WASIp3 app, served by the host over
//! loopback HTTP with Spin's instance policy: the chain as `serve --middleware` composes it
//! (Spin's `dependencies.middleware`), and once as `wac plug` composes it. The app answers with
//! the user it was handed and every `x-session-*` header that reached it (`received`), so a
//! forged header would show; the app alone is the positive control that it would.
//!
//! Sessions are created on the served database file by the core's native engine, as the API
//! would create them: the middleware validates on that same store.

use crate::support::http::{Api, Reply, START_MS, start_on};
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use zoe_session::config::Config;
use zoe_session::session::engine::Engine;
use zoe_session::store::Db;
use zoe_session::store::native_sqlite::NativeSqlite;
use zoe_session_compose::{GUARDED_IDENTITY_APP_WASM, IDENTITY_APP_WASM, MIDDLEWARE_WASM};
use zoe_session_host::middleware::{Link, compose};
use zoe_session_host::{Allocation, Runtime};

/// The rules every test serves under.
const RULES: &[(&str, &str)] = &[
    ("protected_paths", "/api,/admin"),
    ("excluded_paths", "/health,/api/public"),
    ("optional_paths", "/feed"),
    ("required_roles", "/admin=admin"),
    ("required_permissions", "/api/reports=reports:read"),
    ("login_url", "/login"),
];

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn runtime_of(bytes: &[u8]) -> Runtime {
    Runtime::from_bytes(bytes, Allocation::Pooling { max_instances: 64 }).expect("it compiles")
}

/// The middleware in front of the app, composed as `serve --middleware` composes it.
pub(crate) fn chain() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let (middleware, app) = (read(MIDDLEWARE_WASM), read(IDENTITY_APP_WASM));
        let composed = compose(
            &[Link {
                name: "zoe-session-middleware",
                bytes: &middleware,
            }],
            Link {
                name: "zoe-identity-app",
                bytes: &app,
            },
        )
        .expect("the chain composes");
        runtime_of(&composed)
    })
}

/// The app alone: no middleware in front.
fn app_alone() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| runtime_of(&read(IDENTITY_APP_WASM)))
}

/// The middleware and the app plugged together at build time (`wac plug`).
fn plugged() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| runtime_of(&read(GUARDED_IDENTITY_APP_WASM)))
}

async fn serve(runtime: &Runtime, extra: &[(&str, &str)]) -> Api {
    let mut variables = RULES.to_vec();
    variables.extend_from_slice(extra);
    start_on(runtime, None, &variables).await
}

/// A session of `user` with `metadata` on `api`'s database, created at the start time; its
/// token.
fn session(api: &Api, user: &str, metadata: &str) -> String {
    let db = Db::open(Box::new(
        NativeSqlite::open(&api.database_path()).expect("open"),
    ))
    .expect("migrate");
    Engine::new(&Config::default(), &db, START_MS)
        .create(user, None, Some(metadata))
        .expect("create")
        .token
        .expose()
}

fn revoke(api: &Api, token: &str) {
    let db = Db::open(Box::new(
        NativeSqlite::open(&api.database_path()).expect("open"),
    ))
    .expect("migrate");
    Engine::new(&Config::default(), &db, START_MS)
        .invalidate(token)
        .expect("revoke");
}

/// The `x-session-*` headers the app received, by name.
fn received(reply: &Reply) -> &serde_json::Map<String, Value> {
    reply.json["received"]
        .as_object()
        .unwrap_or_else(|| panic!("{}", reply.report("the app did not answer")))
}

const FORGED: &[(&str, &str)] = &[
    ("x-session-user-id", "mallory"),
    ("X-Session-User-Id", "mallory2"),
    ("X-SESSION-ROLES", "admin"),
    ("x-session-permissions", "reports:read"),
    ("x-session-public-id", "forged"),
    ("x-session-expires-at", "2099-01-01T00:00:00.000Z"),
    ("x-session-whatever", "x"),
];

#[tokio::test]
async fn forged_identity_headers_never_reach_the_app() {
    // Positive control: without the middleware, every forged header reaches the app.
    let alone = serve(app_alone(), &[]).await;
    let reply = alone.send("GET", "/feed", FORGED, None).await;
    reply.expect(200);
    assert_eq!(reply.json["user_id"], "mallory", "{}", reply.text);
    assert!(received(&reply).contains_key("x-session-whatever"));
    alone.stop().await;

    let api = serve(chain(), &[]).await;
    // An open path, an excluded one, an optional one without a session: no identity at all.
    for path in ["/elsewhere", "/health", "/api/public/x", "/feed"] {
        let reply = api.send("GET", path, FORGED, None).await;
        reply.expect(200);
        assert!(received(&reply).is_empty(), "{path}: {}", reply.text);
        assert_eq!(reply.json["user_id"], Value::Null);
    }
    // With a valid session: only ours, one copy each.
    let token = session(&api, "alice", r#"{"role":"editor"}"#);
    let mut headers = FORGED.to_vec();
    headers.push(("x-session-id", &token));
    let reply = api.send("GET", "/api/chat", &headers, None).await;
    reply.expect(200);
    assert_eq!(reply.json["user_id"], "alice", "{}", reply.text);
    let got = received(&reply);
    assert_eq!(got["x-session-user-id"], serde_json::json!(["alice"]));
    assert_eq!(got["x-session-roles"], serde_json::json!(["editor"]));
    assert!(!got.contains_key("x-session-whatever"), "{}", reply.text);
    api.stop().await;
}

#[tokio::test]
async fn a_valid_header_or_cookie_hands_the_app_its_identity() {
    let api = serve(chain(), &[]).await;
    let token = session(
        &api,
        "alice",
        r#"{"role":"editor","permissions":["read","reports:read"]}"#,
    );
    let public_id = token.split_once('.').expect("id.secret").0.to_owned();
    let cookie = format!("zoe_session={token}");
    for headers in [
        vec![("x-session-id", token.as_str())],
        vec![("cookie", cookie.as_str())],
    ] {
        let reply = api.send("GET", "/api/reports/2026", &headers, None).await;
        let body = reply.expect(200);
        assert_eq!(body["user_id"], "alice");
        assert_eq!(body["session_id"], public_id.as_str());
        assert_eq!(body["roles"], serde_json::json!(["editor"]));
        assert_eq!(
            body["permissions"],
            serde_json::json!(["read", "reports:read"])
        );
        assert!(
            body["expires_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{}",
            reply.text
        );
        // The token header is passed on as it came; the token never appears in an identity
        // header.
        assert!(
            received(&reply)
                .iter()
                .filter(|(name, _)| *name != "x-session-id")
                .all(|(_, values)| !values.to_string().contains(&token)),
            "{}",
            reply.text
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn a_request_slides_the_session_s_activity_as_the_api_does() {
    let api = serve(chain(), &[]).await;
    let token = session(&api, "alice", "{}");
    let expires = |reply: &Reply| reply.json["expires_at"].as_str().unwrap_or("").to_owned();
    let first = api
        .send("GET", "/api/x", &[("x-session-id", &token)], None)
        .await;
    first.expect(200);
    api.clock.advance(Duration::from_secs(600));
    let later = api
        .send("GET", "/api/x", &[("x-session-id", &token)], None)
        .await;
    later.expect(200);
    assert!(
        expires(&later) > expires(&first),
        "activity moved the idle expiry: {} then {}",
        expires(&first),
        expires(&later)
    );
    api.stop().await;
}

#[tokio::test]
async fn an_expired_or_revoked_session_is_401_json() {
    let api = serve(chain(), &[]).await;
    let token = session(&api, "alice", "{}");
    api.send("GET", "/api/x", &[("x-session-id", &token)], None)
        .await
        .expect(200);
    api.clock.advance(Duration::from_secs(2 * 3600));
    let reply = api
        .send("GET", "/api/x", &[("x-session-id", &token)], None)
        .await;
    reply.expect(401);
    assert_eq!(reply.json["error"], "session_expired", "{}", reply.text);

    let api = serve(chain(), &[]).await;
    let token = session(&api, "bob", "{}");
    api.send("GET", "/api/x", &[("x-session-id", &token)], None)
        .await
        .expect(200);
    revoke(&api, &token);
    let reply = api
        .send("GET", "/api/x", &[("x-session-id", &token)], None)
        .await;
    reply.expect(401);
    assert_eq!(reply.json["error"], "invalid_session", "{}", reply.text);
    let reply = api.send("GET", "/api/x", &[], None).await;
    reply.expect(401);
    assert_eq!(reply.json["error"], "unauthorized");
    api.stop().await;
}

#[tokio::test]
async fn a_browser_navigation_without_a_session_goes_to_the_login_page() {
    let api = serve(chain(), &[]).await;
    let reply = api
        .send(
            "GET",
            "/api/chat?room=1",
            &[("sec-fetch-mode", "navigate"), ("accept", "text/html")],
            None,
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.report("expected a redirect"));
    assert_eq!(
        reply.header("location"),
        Some("/login?next=/api/chat%3Froom%3D1")
    );
    // A script's fetch gets the JSON 401 instead.
    api.send("GET", "/api/chat", &[("sec-fetch-mode", "cors")], None)
        .await
        .expect(401);
    api.stop().await;
}

#[tokio::test]
async fn an_optional_path_gives_the_identity_when_present_and_never_refuses() {
    let api = serve(chain(), &[]).await;
    let token = session(&api, "carol", "{}");
    let reply = api.send("GET", "/feed", &[], None).await;
    assert_eq!(reply.expect(200)["greeting"], "hello, guest");
    let reply = api
        .send("GET", "/feed", &[("x-session-id", "not.valid")], None)
        .await;
    assert_eq!(reply.expect(200)["user_id"], Value::Null);
    let reply = api
        .send("GET", "/feed/today", &[("x-session-id", &token)], None)
        .await;
    assert_eq!(reply.expect(200)["greeting"], "hello, carol");
    api.stop().await;
}

#[tokio::test]
async fn a_missing_role_or_permission_is_403_and_every_spelling_of_the_path_is_judged() {
    let api = serve(chain(), &[]).await;
    let editor = session(&api, "dan", r#"{"role":"editor"}"#);
    for path in [
        "/admin",
        "/admin/",
        "/ADMIN/users",
        "//admin",
        "/%61dmin",
        "/api/reports/1",
    ] {
        let reply = api
            .send("GET", path, &[("x-session-id", &editor)], None)
            .await;
        reply.expect(403);
        assert_eq!(reply.json["error"], "forbidden", "{path}");
    }
    for path in [
        "/admin/../api/x",
        "/api/%2e%2e/admin",
        "/api%2Fadmin",
        "/admin%5Cx",
    ] {
        let reply = api
            .send("GET", path, &[("x-session-id", &editor)], None)
            .await;
        reply.expect(400);
        assert_eq!(reply.json["error"], "ambiguous_path", "{path}");
    }
    // Positive control: the admin passes everywhere, and a lookalike is not admin.
    let admin = session(&api, "erin", r#"{"role":"admin"}"#);
    for path in ["/ADMIN/users", "/api/reports/1"] {
        let reply = api
            .send("GET", path, &[("x-session-id", &admin)], None)
            .await;
        assert_eq!(reply.expect(200)["user_id"], "erin", "{path}");
    }
    api.send("GET", "/administrator", &[], None)
        .await
        .expect(200);
    api.stop().await;
}

#[tokio::test]
async fn a_cross_site_cookie_post_is_403_and_a_same_site_one_passes() {
    let api = serve(chain(), &[]).await;
    let token = session(&api, "frank", "{}");
    let cookie = format!("zoe_session={token}");
    let reply = api
        .send(
            "POST",
            "/api/chat",
            &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
            Some("{}"),
        )
        .await;
    reply.expect(403);
    assert_eq!(reply.json["error"], "csrf");
    let reply = api
        .send(
            "POST",
            "/api/chat",
            &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
            Some("{}"),
        )
        .await;
    assert_eq!(reply.expect(200)["method"], "POST");
    // The header token is not a cookie: no CSRF check applies to it.
    api.send(
        "POST",
        "/api/chat",
        &[("x-session-id", &token), ("sec-fetch-site", "cross-site")],
        Some("{}"),
    )
    .await
    .expect(200);
    api.stop().await;
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_is_503_never_a_pass() {
    // Nothing listens on port 1: every open of the store fails.
    let api = serve(
        chain(),
        &[("database_url", "postgres://zoe@127.0.0.1:1/sessions")],
    )
    .await;
    for path in ["/api/x", "/feed"] {
        let reply = api
            .send("GET", path, &[("x-session-id", "a.b")], None)
            .await;
        reply.expect(503);
        assert_eq!(reply.json["error"], "storage_unavailable", "{path}");
    }
    // Paths that need no session still pass.
    api.send("GET", "/health", &[], None).await.expect(200);
    api.stop().await;
}

#[tokio::test]
async fn the_wac_plugged_composition_behaves_the_same() {
    let api = serve(plugged(), &[]).await;
    let token = session(&api, "grace", r#"{"role":"admin"}"#);
    let mut headers = FORGED.to_vec();
    headers.push(("x-session-id", &token));
    let reply = api.send("GET", "/admin", &headers, None).await;
    assert_eq!(reply.expect(200)["user_id"], "grace");
    assert_eq!(
        received(&reply)["x-session-roles"],
        serde_json::json!(["admin"])
    );
    api.send("GET", "/admin", &[], None).await.expect(401);
    api.stop().await;
}

#[tokio::test]
async fn concurrent_requests_on_a_reused_instance_each_see_only_their_own_user() {
    let api = serve(chain(), &[]).await;
    let tokens: Vec<(String, String)> = (0..16)
        .map(|n| {
            let user = format!("user-{n}");
            let token = session(&api, &user, "{}");
            (user, token)
        })
        .collect();
    for _round in 0..4 {
        let requests: Vec<_> = tokens
            .iter()
            .map(|(_, token)| [("x-session-id", token.as_str())])
            .collect();
        let replies = futures::future::join_all(
            requests
                .iter()
                .map(|headers| api.send("GET", "/api/x", headers, None)),
        )
        .await;
        for ((user, _), reply) in tokens.iter().zip(&replies) {
            assert_eq!(
                reply.expect(200)["user_id"],
                user.as_str(),
                "{}",
                reply.text
            );
            assert_eq!(
                received(reply)["x-session-user-id"],
                serde_json::json!([user]),
                "{}",
                reply.text
            );
        }
    }
    // The 64 requests shared instances (Spin's policy: 16 at once, 128 each), so requests of
    // different users did run on one instance.
    let created = api.server.as_ref().expect("serving").instances_created();
    assert!(
        created < 64,
        "{created} instances for 64 requests: no reuse"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_folded_identity_header_never_reaches_the_app() {
    let api = serve(chain(), &[]).await;
    let addr = api.addr;
    // A raw client: hyper's would never send a folded line.
    let send_raw = |head: String| async move {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Write as _};
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream.write_all(head.as_bytes()).expect("write");
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).expect("read");
            String::from_utf8_lossy(&answer).into_owned()
        })
        .await
        .expect("the raw client")
    };
    // Positive control: the raw client reaches the app through the middleware.
    let plain =
        send_raw("GET /feed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned()).await;
    assert!(plain.contains("hello, guest"), "{plain}");
    let folded = send_raw(
        "GET /feed HTTP/1.1\r\nHost: x\r\nX-Session-User-Id: mallory\r\n  continued\r\n\
         Connection: close\r\n\r\n"
            .to_owned(),
    )
    .await;
    assert!(!folded.contains("mallory"), "{folded}");
    api.stop().await;
}

#[tokio::test]
async fn on_postgresql_the_middleware_validates_on_the_same_store() {
    let url = crate::support::fresh_database();
    let api = serve(chain(), &[("database_url", &url)]).await;
    // The session is created in PostgreSQL, as the API on that database would create it.
    let token = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let db = Db::open(Box::new(
                zoe_session::store::native_postgres::NativePostgres::connect(&url)
                    .expect("connect"),
            ))
            .expect("migrate");
            Engine::new(&Config::default(), &db, START_MS)
                .create("heidi", None, Some(r#"{"role":"admin"}"#))
                .expect("create")
                .token
                .expose()
        })
        .await
        .expect("create on postgres")
    };
    let reply = api
        .send("GET", "/admin", &[("x-session-id", &token)], None)
        .await;
    assert_eq!(reply.expect(200)["user_id"], "heidi", "{}", reply.text);
    // A token unknown to PostgreSQL is refused there (no fallback to another store).
    api.send("GET", "/admin", &[("x-session-id", "x.y")], None)
        .await
        .expect(401);
    api.stop().await;
}

/// The example's spin.toml, which no Spin here can load: its middleware entry names a
/// component of the manifest, inherits the database and the variables the middleware reads,
/// both sources are the artefacts the build makes, and every rule declared is handed to the
/// app (whose variables the middleware inherits) under its own name.
#[test]
fn the_example_manifest_puts_the_middleware_in_front_with_the_app_s_database_and_rules() {
    use toml_edit::{DocumentMut, Item};
    let text = include_str!("../../examples/identity-app/spin.toml");
    let manifest: DocumentMut = text.parse().expect("valid TOML");
    let trigger = &manifest["trigger"]["http"]
        .as_array_of_tables()
        .expect("[[trigger.http]]")
        .iter()
        .next()
        .expect("one trigger")
        .clone();
    let middleware = trigger["dependencies"]["middleware"]
        .as_array()
        .expect("dependencies.middleware is a list");
    let entry = middleware
        .iter()
        .next()
        .and_then(|v| v.as_inline_table())
        .expect("one middleware entry");
    let name = entry
        .get("component")
        .and_then(|v| v.as_str())
        .expect("component");
    let inherited: Vec<&str> = entry
        .get("inherit_configuration")
        .and_then(|v| v.as_array())
        .expect("inherit_configuration list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(inherited, ["sqlite_databases", "variables"]);
    let components = manifest["component"].as_table().expect("[component]");
    let source = |id: &str| {
        components
            .get(id)
            .and_then(|c| c.get("source"))
            .and_then(Item::as_str)
            .unwrap_or_else(|| panic!("component {id} has a source"))
            .to_owned()
    };
    let app = trigger["component"].as_str().expect("the app component");
    assert!(
        source(name).ends_with(
            Path::new(MIDDLEWARE_WASM)
                .file_name()
                .and_then(|f| f.to_str())
                .expect("file name")
        )
    );
    assert!(
        source(app).ends_with(
            Path::new(IDENTITY_APP_WASM)
                .file_name()
                .and_then(|f| f.to_str())
                .expect("file name")
        )
    );
    let granted = components[app]["sqlite_databases"]
        .as_array()
        .expect("the app is granted a database");
    assert_eq!(
        granted
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>(),
        ["default"]
    );
    let declared: Vec<&str> = manifest["variables"]
        .as_table()
        .expect("[variables]")
        .iter()
        .map(|(k, _)| k)
        .collect();
    let handed = components[app]["variables"]
        .as_table()
        .expect("app variables");
    for variable in &declared {
        assert!(
            zoe_session::config::VARIABLE_NAMES.contains(variable),
            "{variable} is a setting"
        );
        assert_eq!(
            handed.get(variable).and_then(Item::as_str),
            Some(format!("{{{{ {variable} }}}}").as_str()),
            "{variable} is handed to the app"
        );
    }
    // The check reads what it compares: the rules are there.
    assert!(declared.contains(&"required_roles") && declared.len() >= 6);
}

#[tokio::test]
async fn a_request_body_passes_through_the_middleware_whole() {
    // 60 KiB: several stream writes, within the 64 KiB that `serve` reads before the guest
    // runs; 200 KiB: past it, so the rest streams from the connection to the app, as Spin
    // streams it (it once reached a WASIp3 app empty, answered 200: lost data).
    let sizes = [60 * 1024, 200 * 1024];
    // Positive control: the app alone reads each whole.
    let alone = serve(app_alone(), &[]).await;
    for size in sizes {
        let body = vec![b'x'; size];
        let reply = alone
            .send_bytes(
                "POST",
                "/upload",
                &[("content-type", "text/plain")],
                Some(body),
            )
            .await;
        assert_eq!(reply.expect(200)["body_bytes"], size, "{}", reply.text);
    }
    // A chunked body with no declared length: `serve` reads frames until it passes the cap,
    // then hands on what it read and streams the rest.
    let size = 200 * 1024;
    let (status, json) = chunked_post(alone.addr, "/upload", &[], size).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["body_bytes"], size, "{json}");
    alone.stop().await;

    let api = serve(chain(), &[]).await;
    let token = session(&api, "ivan", "{}");
    for size in sizes {
        let body = vec![b'x'; size];
        let reply = api
            .send_bytes(
                "POST",
                "/api/upload",
                &[("x-session-id", &token), ("content-type", "text/plain")],
                Some(body),
            )
            .await;
        let json = reply.expect(200);
        assert_eq!(json["body_bytes"], size, "{}", reply.text);
        assert_eq!(json["user_id"], "ivan");
    }
    let (status, json) =
        chunked_post(api.addr, "/api/upload", &[("x-session-id", &token)], size).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        (&json["body_bytes"], &json["user_id"]),
        (&size.into(), &"ivan".into())
    );
    // And an empty one stays empty.
    let reply = api
        .send("POST", "/api/upload", &[("x-session-id", &token)], None)
        .await;
    assert_eq!(reply.expect(200)["body_bytes"], 0);
    api.stop().await;
}

/// POSTs `size` bytes to `path` chunked (16 KiB a chunk, no `Content-Length`) on a connection
/// of its own, and returns the status and JSON body of the answer.
async fn chunked_post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    size: usize,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: zoe\r\nconnection: close\r\n\
         content-type: text/plain\r\ntransfer-encoding: chunked\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 16 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        conn.write_all(format!("{n:x}\r\n").as_bytes())
            .await
            .unwrap();
        conn.write_all(&chunk[..n]).await.unwrap();
        conn.write_all(b"\r\n").await.unwrap();
        left -= n;
    }
    conn.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut answer))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    // The answer may itself be chunked: its JSON is the text between the braces.
    let json = body
        .find('{')
        .zip(body.rfind('}'))
        .and_then(|(from, to)| serde_json::from_str(&body[from..=to]).ok())
        .unwrap_or_else(|| Value::String(body.to_owned()));
    (status, json)
}
