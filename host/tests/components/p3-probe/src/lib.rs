//! A WASIp3 app (spin-sdk 7) that tells the host's tests how `serve` runs it.
//!
//! Every answer carries `x-instance` (a random id drawn once per instance), `x-served` (this
//! request's ordinal in its instance), `x-max-in-flight` (the most requests the instance has run
//! at once so far, this one included) and `x-chain` (the request's own `x-chain` header, which
//! test middlewares append to). Routes: `/probe?sleep_ms=N` waits N ms before answering, so
//! that requests overlap; `/trap` panics, which traps; `/spin` loops forever; `/status/500` answers 500 itself;
//! `/sqlite` runs a statement through `spin:sqlite@3.1.0`'s async functions; `/variable/NAME`
//! reads a variable through `spin:variables@3.0.0`; `/pg` inserts a row into the PostgreSQL
//! database of the variable `database_url` and counts the rows, through
//! `spin:postgres@4.2.0`'s async functions; `/pg/ca` opens that database through a
//! `connection-builder` given the root certificate in the variable `pg_ca`; `/kv` sets, reads,
//! lists and deletes a key in the `default` store through `spin:key-value@3.0.0`, and
//! `/kv/NAME` opens store NAME.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static INSTANCE: OnceLock<u64> = OnceLock::new();
static SERVED: AtomicU32 = AtomicU32::new(0);
static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static MAX_IN_FLIGHT: AtomicU32 = AtomicU32::new(0);

/// Counts a request in flight until dropped, however the handler ends.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        MAX_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    let instance = *INSTANCE.get_or_init(spin_sdk::wasip3::random::random::get_random_u64);
    let served = SERVED.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight::start();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let chain = request
        .headers()
        .get("x-chain")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (status, body) = match path.as_str() {
        "/probe" => {
            let sleep_ms = query
                .strip_prefix("sleep_ms=")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            if sleep_ms > 0 {
                spin_sdk::time::sleep(Duration::from_millis(sleep_ms)).await;
            }
            (200, "probed".to_owned())
        }
        "/trap" => panic!("a trap, as the test asked"),
        // Never yields: only the host's epoch deadline stops it.
        "/spin" => loop {
            std::hint::black_box(SERVED.load(Ordering::Relaxed));
        },
        "/status/500" => (500, "the guest's own 500".to_owned()),
        "/sqlite" => match sqlite().await {
            Ok(text) => (200, text),
            Err(text) => (500, text),
        },
        "/pg" => match pg().await {
            Ok(text) => (200, text),
            Err(text) => (500, text),
        },
        "/kv" => match key_value().await {
            Ok(text) => (200, text),
            Err(text) => (500, text),
        },
        "/pg/ca" => match pg_with_ca().await {
            Ok(text) => (200, text),
            Err(text) => (500, text),
        },
        _ if path.starts_with("/kv/") => {
            match spin_sdk::key_value::Store::open(&path["/kv/".len()..]).await {
                Ok(_) => (200, "opened".to_owned()),
                Err(err) => (403, format!("{err:?}")),
            }
        }
        _ => match path.strip_prefix("/variable/") {
            Some(name) => match spin_sdk::variables::get(name).await {
                Ok(value) => (200, value),
                Err(err) => (404, format!("{err:?}")),
            },
            None => (404, "no such route".to_owned()),
        },
    };
    http::Response::builder()
        .status(status)
        .header("x-instance", format!("{instance:016x}"))
        .header("x-served", served.to_string())
        .header(
            "x-max-in-flight",
            MAX_IN_FLIGHT.load(Ordering::SeqCst).to_string(),
        )
        .header("x-chain", chain)
        .body(body)
        .expect("a valid response")
}

async fn sqlite() -> Result<String, String> {
    use spin_sdk::sqlite::{Connection, Value};
    let db = Connection::open_default()
        .await
        .map_err(|e| format!("open: {e:?}"))?;
    let result = db
        .execute("SELECT ? + 2, 'p3'", [Value::Integer(40)])
        .await
        .map_err(|e| format!("execute: {e:?}"))?;
    let columns = result.columns().len();
    let rows = result.collect().await.map_err(|e| format!("rows: {e:?}"))?;
    let first = rows.first().ok_or("no row")?;
    let sum: i64 = first.get(0).ok_or("no integer")?;
    let text: &str = first.get(1).ok_or("no text")?;
    let changes = db.changes().await;
    Ok(format!(
        "{sum} {text} columns={columns} rows={} changes={changes}",
        rows.len()
    ))
}

async fn pg() -> Result<String, String> {
    use spin_sdk::pg::{Connection, ParameterValue};
    let url = spin_sdk::variables::get("database_url")
        .await
        .map_err(|e| format!("database_url: {e:?}"))?;
    let db = Connection::open(url)
        .await
        .map_err(|e| format!("open: {e:?}"))?;
    db.execute("CREATE TABLE IF NOT EXISTS p3_probe (n int8, t text)", [])
        .await
        .map_err(|e| format!("create: {e:?}"))?;
    let inserted = db
        .execute(
            "INSERT INTO p3_probe VALUES ($1, $2)",
            [
                ParameterValue::Int64(7),
                ParameterValue::Str("seven".to_owned()),
            ],
        )
        .await
        .map_err(|e| format!("insert: {e:?}"))?;
    let rows = db
        .query("SELECT n, t FROM p3_probe ORDER BY n", [])
        .await
        .map_err(|e| format!("query: {e:?}"))?;
    let columns = rows.columns().len();
    let rows = rows.collect().await.map_err(|e| format!("rows: {e:?}"))?;
    let first = rows.first().ok_or("no row")?;
    let n: i64 = first.get("n").ok_or("no n")?;
    let t: String = first.get("t").ok_or("no t")?;
    Ok(format!(
        "inserted={inserted} rows={} columns={columns} first={n},{t}",
        rows.len()
    ))
}

async fn pg_with_ca() -> Result<String, String> {
    use spin_sdk::pg::{Certificate, Connection, OpenOptions};
    let url = spin_sdk::variables::get("database_url")
        .await
        .map_err(|e| format!("database_url: {e:?}"))?;
    let ca = spin_sdk::variables::get("pg_ca")
        .await
        .map_err(|e| format!("pg_ca: {e:?}"))?;
    let options = OpenOptions {
        ca_root: Some(Certificate::Text(ca)),
    };
    let db = Connection::open_with_options(url, options)
        .await
        .map_err(|e| format!("open: {e:?}"))?;
    let rows = db
        .query("SELECT 1::int8 AS one", [])
        .await
        .map_err(|e| format!("query: {e:?}"))?
        .collect()
        .await
        .map_err(|e| format!("rows: {e:?}"))?;
    Ok(format!("opened rows={}", rows.len()))
}

async fn key_value() -> Result<String, String> {
    let store = spin_sdk::key_value::Store::open_default()
        .await
        .map_err(|e| format!("open: {e:?}"))?;
    store
        .set("p3-key", b"p3-value")
        .await
        .map_err(|e| format!("set: {e:?}"))?;
    let value = store
        .get("p3-key")
        .await
        .map_err(|e| format!("get: {e:?}"))?;
    let exists = store
        .exists("p3-key")
        .await
        .map_err(|e| format!("exists: {e:?}"))?;
    let keys = store
        .get_keys()
        .await
        .collect()
        .await
        .map_err(|e| format!("keys: {e:?}"))?;
    store
        .delete("p3-key")
        .await
        .map_err(|e| format!("delete: {e:?}"))?;
    let gone = !store
        .exists("p3-key")
        .await
        .map_err(|e| format!("exists: {e:?}"))?;
    Ok(format!(
        "value={} exists={exists} keys={} gone={gone}",
        String::from_utf8_lossy(&value.unwrap_or_default()),
        keys.join(",")
    ))
}
