//! An app behind zoe-session-middleware. It never sees a token and never checks one: the
//! middleware in front of it has validated the session and says who the user is in the
//! `x-session-*` headers, which no client can forge (the middleware removes every copy a
//! client sends). No `x-session-user-id` means no session.
//!
//! Every path answers JSON naming the user, and, so that the tests can see what reached the
//! app, every `x-session-*` header it received (`received`) but the token header, and the size
//! of the body it read (`body_bytes`).

#[cfg(target_arch = "wasm32")]
mod app {
    use serde_json::{Map, Value, json};
    use spin_sdk::http::body::IncomingBodyExt as _;
    use spin_sdk::http::{IntoResponse, Json, Request};

    #[spin_sdk::http_service]
    async fn handle(request: Request) -> impl IntoResponse {
        let (head, body) = request.into_parts();
        let header = |name: &str| {
            head.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let list = |name: &str| -> Vec<String> {
            header(name)
                .filter(|text| !text.is_empty())
                .map(|text| text.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let mut received = Map::new();
        for (name, value) in &head.headers {
            // `x-session-id` is the default token header, which the middleware passes on for
            // an API behind it: a token is never put in a response.
            if name.as_str().starts_with("x-session-") && name.as_str() != "x-session-id" {
                let values = received
                    .entry(name.as_str().to_owned())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(values) = values {
                    values.push(Value::String(
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    ));
                }
            }
        }
        let greeting = match header("x-session-user-id") {
            Some(user) => format!("hello, {user}"),
            None => "hello, guest".to_owned(),
        };
        // The body as it reached the app, so the tests see the middleware passed it on whole.
        let body_bytes = match body.bytes().await {
            Ok(bytes) => Value::from(bytes.len()),
            Err(_) => Value::Null,
        };
        Json(json!({
            "greeting": greeting,
            "user_id": header("x-session-user-id"),
            "session_id": header("x-session-public-id"),
            "roles": list("x-session-roles"),
            "permissions": list("x-session-permissions"),
            "expires_at": header("x-session-expires-at"),
            "method": head.method.as_str(),
            "path": head.uri.path(),
            "body_bytes": body_bytes,
            "received": received,
        }))
    }
}
