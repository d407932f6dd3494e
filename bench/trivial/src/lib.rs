//! The floor of a fresh instance under a host: a spin-sdk component that reads nothing and
//! answers `{"status":"ok"}` and a newline (16 bytes), as `GET /health` does with more work
//! behind it; and, for `GET /sessions/validate`, the least a validate can do: open the
//! `default` database and look the token's id up in `sessions` with one statement.
//! `zoe-session-bench --fresh` runs it beside zoe-session in the same host mode, on the same
//! database file.

use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;
use spin_sdk::sqlite3::{Connection, Value};

#[http_component]
async fn handle(request: IncomingRequest) -> Response {
    let body = if request.path_with_query().as_deref() == Some("/sessions/validate") {
        let token = request
            .headers()
            .get("x-session-id")
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let id = token.split('.').next().unwrap_or_default().to_owned();
        match lookup(id) {
            Ok(found) => format!("{{\"found\":{found}}}\n"),
            Err(err) => return Response::new(500, format!("{err:?}\n")),
        }
    } else {
        "{\"status\":\"ok\"}\n".to_owned()
    };
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .build()
}

fn lookup(id: String) -> Result<bool, spin_sdk::sqlite3::Error> {
    let db = Connection::open_default()?;
    let result = db.execute(
        "SELECT user_id, expires_at FROM sessions WHERE id = ?1",
        &[Value::Text(id)],
    )?;
    Ok(!result.rows.is_empty())
}
