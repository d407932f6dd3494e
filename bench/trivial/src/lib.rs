//! The floor of a fresh instance under a host: a spin-sdk component that reads nothing and
//! answers `{"status":"ok"}` and a newline (16 bytes), as `GET /health` does with more work
//! behind it; and, for `GET /sessions/validate`, the least a validate can do: open the
//! `default` database and look the token's id up in `sessions` with one statement; and, for
//! `POST /sessions/create`, the least a create can do: read the body, insert one row with one
//! statement; and, for `GET /kv?r=R&w=W`, the least a session operation on a key-value store
//! can do: open `default`, then `R` sequential `get`s and `W` sequential `set`s of 200 bytes
//! (`zoe-session-bench --stores` passes the counts zoe-session's own operations made).
//! `zoe-session-bench --fresh` runs it beside zoe-session in the same host mode, on the same
//! database file.

use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;
use spin_sdk::sqlite3::{Connection, Value};

#[http_component]
async fn handle(request: IncomingRequest) -> Response {
    if let Some(query) = request
        .path_with_query()
        .as_deref()
        .and_then(|p| p.strip_prefix("/kv?"))
    {
        return match key_value_calls(query) {
            Ok(found) => Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(format!("{{\"found\":{found}}}\n"))
                .build(),
            Err(err) => Response::new(500, format!("{err}\n")),
        };
    }
    if request.path_with_query().as_deref() == Some("/sessions/create") {
        let user = request.into_body().await.unwrap_or_default();
        return match insert(String::from_utf8_lossy(&user).into_owned()) {
            Ok(id) => Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(format!("{{\"id\":\"{id}\"}}\n"))
                .build(),
            Err(err) => Response::new(500, format!("{err:?}\n")),
        };
    }
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

/// Inserts a session row for `user` (its body, as sent) with an id unique in this process.
fn insert(user: String) -> Result<String, spin_sdk::sqlite3::Error> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("{:x}-{n:x}", now.as_nanos());
    let ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let db = Connection::open_default()?;
    db.execute(
        "INSERT INTO sessions (id, secret_hash, user_id, created_at, last_activity, \
         expires_at, absolute_expires_at, idle_timeout, metadata) \
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?5, 3600, '{}')",
        &[
            Value::Text(id.clone()),
            Value::Blob(vec![0; 32]),
            Value::Text(user),
            Value::Integer(ms),
            Value::Integer(ms + 3_600_000),
        ],
    )?;
    Ok(id)
}

/// Opens the `default` key-value store, then makes `r` `get`s of fixed keys and `w` `set`s (of
/// keys unique in this instance: a round trip each, whoever else writes the same key), one
/// after another, as a session operation's calls follow one
/// another; answers how many `get`s found a value.
fn key_value_calls(query: &str) -> Result<usize, String> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let (mut reads, mut writes) = (0u32, 0u32);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("r", n)) => reads = n.parse().map_err(|_| format!("bad r: {n}"))?,
            Some(("w", n)) => writes = n.parse().map_err(|_| format!("bad w: {n}"))?,
            _ => return Err(format!("unknown parameter: {pair}")),
        }
    }
    let store = spin_sdk::key_value::Store::open_default().map_err(|e| format!("{e:?}"))?;
    let mut found = 0;
    for i in 0..reads {
        if store
            .get(&format!("floor-read-{i}"))
            .map_err(|e| format!("{e:?}"))?
            .is_some()
        {
            found += 1;
        }
    }
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let value = [b'v'; 200];
    for i in 0..writes {
        // An instance's first request writes the keys later reads find.
        let key = if n == 0 {
            format!("floor-read-{i}")
        } else {
            format!("floor-{n:x}-{i}")
        };
        store.set(&key, &value).map_err(|e| format!("{e:?}"))?;
    }
    Ok(found)
}
