//! The native PostgreSQL backend over TLS, against a real server that accepts TCP connections
//! over TLS only, with a certificate for `localhost` signed by a CA made for the test: the
//! same `sslmode` rules as the host's `spin:postgres` (whose tests cover every mode).

use zoe_session::store::native_postgres::NativePostgres;
use zoe_session::store::{Executor, Value};
use zoe_test_postgres::{shared, shared_tls};

/// Whether the connection asking is encrypted, as the server sees it (`1` or `0`: the native
/// store decodes integers and text only).
const IS_TLS: &str = "SELECT ssl::int FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn is_tls(db: &NativePostgres) -> bool {
    let rows = db.query(IS_TLS, &[]).expect("query");
    match rows.as_slice() {
        [row] => matches!(row.0.as_slice(), [Value::Int(1)]),
        other => panic!("unexpected rows {other:?}"),
    }
}

fn url(port: u16, host: &str, sslmode: &str) -> String {
    format!("postgres://postgres:hunter2@{host}:{port}/postgres?sslmode={sslmode}")
}

#[test]
fn native_verify_full_trusts_the_configured_ca_and_only_it() {
    let (server, ca) = shared_tls();
    let url = url(server.port(), "localhost", "verify-full");
    let db = NativePostgres::connect_with_root_cert(&url, Some(&ca.ca_path())).expect("connect");
    assert!(is_tls(&db));
    let err = NativePostgres::connect_with_root_cert(&url, None)
        .expect_err("an untrusted server is refused")
        .to_string();
    assert!(err.contains("not trusted (verify-full)"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn native_verify_full_checks_the_host_name_and_require_checks_nothing() {
    let (server, ca) = shared_tls();
    let port = server.port();
    let err = NativePostgres::connect_with_root_cert(
        &url(port, "127.0.0.1", "verify-full"),
        Some(&ca.ca_path()),
    )
    .expect_err("the certificate names localhost only")
    .to_string();
    assert!(err.contains("does not name 127.0.0.1"), "{err}");
    let db = NativePostgres::connect_with_root_cert(&url(port, "127.0.0.1", "require"), None)
        .expect("require checks no certificate");
    assert!(is_tls(&db));
}

#[test]
fn native_disable_is_plain_and_refused_by_a_tls_only_server() {
    let plain = NativePostgres::connect(&url(shared().port(), "127.0.0.1", "disable"))
        .expect("a plain server");
    assert!(!is_tls(&plain));
    let (server, _) = shared_tls();
    let err = NativePostgres::connect(&url(server.port(), "127.0.0.1", "disable"))
        .expect_err("the server requires TLS")
        .to_string();
    assert!(err.contains("no encryption"), "{err}");
    // The default, prefer, speaks TLS to it.
    let prefer = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port());
    assert!(is_tls(&NativePostgres::connect(&prefer).expect("prefer")));
}
