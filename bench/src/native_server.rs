//! The native HTTP baseline: a minimal hyper server answering `/health`,
//! `GET /sessions/validate` and `POST /sessions/create` with the native engine
//! ([`crate::native`]) on a pool of rusqlite connections — what `serve` would be without Wasm.
//!
//! It runs as a child process (`zoe-session-bench native-serve ADDR DB ADMIN_KEY`) so it is
//! measured exactly like `zoe-session-host serve`: its own process, same loopback client.

use crate::native;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

struct State {
    db: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    admin_key: String,
}

impl State {
    /// A pooled connection, opened on demand like the host's pool.
    fn with_conn<T>(&self, work: impl FnOnce(&rusqlite::Connection) -> T) -> anyhow::Result<T> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(conn) => conn,
            None => native::connect(&self.db)?,
        };
        let result = work(&conn);
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        Ok(result)
    }
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, kind: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({"error": kind, "detail": kind}))
}

fn session(row: &native::Row, now: u64) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "user_id": row.user_id,
        "created_at": row.created_at,
        "last_activity": row.last_activity,
        "expires_at": row.expires_at,
        "absolute_expires_at": row.absolute_expires_at,
        "idle_timeout": row.idle_timeout,
        "metadata": serde_json::from_str::<serde_json::Value>(&row.metadata).unwrap_or_default(),
        "is_active": row.expires_at > now,
    })
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let now = native::now_ms();
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/health") => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"status": "healthy"}),
        )),
        ("GET", "/sessions/validate") => {
            let Some(token) = req
                .headers()
                .get("x-session-id")
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(error(StatusCode::UNAUTHORIZED, "unauthorized"));
            };
            let result = state.with_conn(|c| native::validate(c, token, now))?;
            Ok(match result {
                Ok(row) => json(StatusCode::OK, &session(&row, now)),
                Err(native::Failure::Sqlite(e)) => return Err(e.into()),
                Err(_) => error(StatusCode::UNAUTHORIZED, "unauthorized"),
            })
        }
        ("POST", "/sessions/create") => {
            let presented = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !bool::from(presented.as_bytes().ct_eq(state.admin_key.as_bytes())) {
                return Ok(error(StatusCode::UNAUTHORIZED, "unauthorized"));
            }
            let body = req.into_body().collect().await?.to_bytes();
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
            };
            let Some(user_id) = body["user_id"].as_str() else {
                return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));
            };
            let timeout = body["timeout"].as_u64().unwrap_or(3600);
            let token = state.with_conn(|c| native::create(c, user_id, timeout, 10, now))??;
            let id = token.split('.').next().unwrap_or_default().to_owned();
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"session_id": token, "id": id, "user_id": user_id}),
            ))
        }
        _ => Ok(error(StatusCode::NOT_FOUND, "not_found")),
    }
}

/// Serves until killed.
///
/// # Errors
///
/// When the address cannot be bound or the database opened.
pub fn serve(addr: &str, db: &str, admin_key: &str) -> anyhow::Result<()> {
    let state = Arc::new(State {
        db: PathBuf::from(db),
        idle: Mutex::new(Vec::new()),
        admin_key: admin_key.to_owned(),
    });
    state.with_conn(|_| ())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                // A client hanging up mid-request is not the server's failure.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
