//! The seed's example routes, one handler each. Every handler returns JSON; refusals are
//! [`AppError`]s turned into 401/403 JSON by the caller.

use crate::auth;
use crate::bindings::sessions::{self, CreateOptions, Session};
use crate::error::AppError;
use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;

/// Largest request body the demo accepts; bigger ones are refused before parsing.
const MAX_BODY: usize = 64 * 1024;

/// The demo login body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user_id: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    preferences: Option<Value>,
    #[serde(default)]
    timeout: Option<u32>,
}

/// `POST /login` — DEMO ONLY: creates a session for whatever user, role and permissions the
/// body names. A real app authenticates the user first (password, OAuth, passkey…) and takes
/// the role and permissions from its own user records, never from the request.
pub fn login(req: &Request) -> Result<Value, AppError> {
    let login: Login = json_body(req)?;
    let metadata = json!({
        "role": login.role,
        "permissions": login.permissions,
        "preferences": login.preferences.unwrap_or_else(|| json!({})),
    });
    let issued = sessions::create(
        &login.user_id,
        &CreateOptions {
            timeout_seconds: login.timeout,
            metadata: Some(metadata.to_string()),
            client_addr: None,
            user_agent: None,
        },
    )?;
    Ok(json!({
        "session_id": issued.token,
        "id": issued.session.id,
        "user_id": issued.session.user_id,
        "expires_at": issued.session.expires_at,
    }))
}

/// `POST /logout`: ends the caller's session.
pub fn logout(req: &Request) -> Result<Value, AppError> {
    let (_, token) = auth::require_session(req)?;
    sessions::invalidate(&token)?;
    Ok(json!({"message": "Logged out"}))
}

/// `POST /api/chat` (and `GET`, as in the seed's curl example): session required.
pub fn chat(req: &Request) -> Result<Value, AppError> {
    let (session, _) = auth::require_session(req)?;
    let mut reply = json!({"response": format!("Hello {}!", session.user_id)});
    if !req.body().is_empty() {
        #[derive(Deserialize)]
        struct Chat {
            message: String,
        }
        let chat: Chat = json_body(req)?;
        reply["message"] = Value::String(chat.message);
    }
    Ok(reply)
}

/// `GET /public/info`: works with or without a session.
pub fn public_info(req: &Request) -> Result<Value, AppError> {
    Ok(match auth::optional_session(req)? {
        Some(session) => json!({"message": format!("Hello {}!", session.user_id)}),
        None => json!({"message": "Hello anonymous user!"}),
    })
}

/// `GET /admin`: role `admin`.
pub fn admin(req: &Request) -> Result<Value, AppError> {
    let session = auth::admin_user(req)?;
    Ok(json!({"admin": session.user_id}))
}

/// `GET /developer`: role `developer` (or `admin`).
pub fn developer(req: &Request) -> Result<Value, AppError> {
    let session = auth::developer_user(req)?;
    Ok(json!({"developer": session.user_id}))
}

/// `GET /write`: permission `write` (or role `admin`).
pub fn write(req: &Request) -> Result<Value, AppError> {
    auth::user_with_permission(req, "write")?;
    Ok(json!({"message": "Write access granted"}))
}

/// `GET /profile`: role, permissions and preferences from the session's metadata.
pub fn profile(req: &Request) -> Result<Value, AppError> {
    let (session, _) = auth::require_session(req)?;
    let metadata = metadata(&session);
    Ok(json!({
        "user_id": session.user_id,
        "role": metadata.get("role").cloned().unwrap_or(Value::Null),
        "permissions": metadata.get("permissions").cloned().unwrap_or_else(|| json!([])),
        "preferences": metadata.get("preferences").cloned().unwrap_or_else(|| json!({})),
    }))
}

/// The session's metadata object; the engine only stores objects, so anything else is empty.
fn metadata(session: &Session) -> serde_json::Map<String, Value> {
    match serde_json::from_str(&session.metadata) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, AppError> {
    let body = req.body();
    if body.len() > MAX_BODY {
        return Err(AppError::InvalidInput(format!(
            "the body must be at most {MAX_BODY} bytes"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|err| AppError::InvalidInput(format!("the body is not the expected JSON: {err}")))
}
