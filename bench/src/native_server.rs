//! The native HTTP baseline: a minimal hyper server answering `/health`,
//! `GET /sessions/validate` and `POST /sessions/create` with zoe-session's engine compiled
//! natively ([`crate::native`]) on a pool of rusqlite connections — what `serve` would be
//! without Wasm (and without most of the HTTP layer's checks, so a generous baseline).
//!
//! It runs as a child process (`zoe-session-bench native-serve ADDR DB ADMIN_KEY`) so it is
//! measured exactly like `zoe-session-host serve`: its own process, same loopback client.

use crate::native;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zoe_session::session::engine::EngineError;

/// The component's default per-user limit.
const MAX_PER_USER: u32 = 10;

struct State {
    db: PathBuf,
    admin_key: String,
}

thread_local! {
    // One engine connection per worker thread: the store's handles are not `Send`, and a
    // thread never runs two requests at once, which is what the host's pool gives at best.
    static ENGINE: RefCell<Option<native::Native>> = const { RefCell::new(None) };
}

impl State {
    /// The worker thread's engine connection, opened on first use.
    fn with_conn<T>(&self, work: impl FnOnce(&native::Native) -> T) -> anyhow::Result<T> {
        ENGINE.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                *slot = Some(native::Native::sqlite(&self.db, MAX_PER_USER)?);
            }
            Ok(work(slot.as_ref().expect("opened above")))
        })
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
            let result = state.with_conn(|c| c.validate(token, now))?;
            Ok(match result {
                Ok(found) => json(StatusCode::OK, &zoe_session::http::json::session(&found)),
                Err(err @ (EngineError::Storage(_) | EngineError::Random(_))) => {
                    return Err(err.into());
                }
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
            let token = state.with_conn(|c| c.create(user_id, now))??;
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
