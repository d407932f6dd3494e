//! `spin:postgres` over TLS against a real PostgreSQL server that accepts TCP connections over
//! TLS only, with a certificate for `localhost` signed by a CA made for the test: each
//! `sslmode`, the configured root certificate, and what a refusal says.

use std::path::Path;
use std::sync::Arc;
use wasmtime_wasi::WasiCtx;
use zoe_session_host::postgres::wit::{self, DbValue, HostConnection};
use zoe_session_host::postgres::{PoolOptions, Postgres};
use zoe_session_host::sqlite::{Database, Location};
use zoe_session_host::{HostConfig, HostState, SessionHost};
use zoe_test_postgres::{PgServer, shared, shared_tls};
use zoe_test_support::serve_runtime;

/// Whether the connection asking is encrypted, as the server sees it.
const IS_TLS: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// A password the server ignores (it trusts loopback clients), to see that no error shows it.
const PASSWORD: &str = "hunter2";

/// `server`'s `postgres` database reached as `host` with `sslmode`.
fn url(server: &PgServer, host: &str, sslmode: &str) -> String {
    format!(
        "postgres://postgres:{PASSWORD}@{host}:{}/postgres?sslmode={sslmode}",
        server.port()
    )
}

/// Opens `url` through the host's `spin:postgres`, trusting `root_cert` besides the system's
/// roots, and asks whether the connection is TLS.
async fn is_tls(url: &str, root_cert: Option<&Path>) -> Result<bool, wit::Error> {
    let postgres = Arc::new(Postgres::with_root_cert(
        Some(url),
        PoolOptions::default(),
        root_cert,
    ));
    let mut state = HostState::new(
        WasiCtx::builder().build(),
        Database::open(Location::Memory).expect("in-memory SQLite"),
        postgres,
        Arc::default(),
    );
    let conn = HostConnection::open(&mut state, url.to_owned())
        .await
        .expect("open does not trap")?;
    let rows = HostConnection::query(&mut state, conn, IS_TLS.to_owned(), vec![])
        .await
        .expect("query does not trap")?;
    match rows.rows.as_slice() {
        [row] => match row.as_slice() {
            [DbValue::Boolean(ssl)] => Ok(*ssl),
            other => panic!("unexpected row {other:?}"),
        },
        other => panic!("unexpected rows {other:?}"),
    }
}

/// The refusal's text, which must not show the password.
fn refusal(result: Result<bool, wit::Error>) -> String {
    match result {
        Err(wit::Error::ConnectionFailed(text)) => {
            assert!(!text.contains(PASSWORD), "the password leaks: {text}");
            text
        }
        other => panic!("expected connection-failed, got {other:?}"),
    }
}

#[tokio::test]
async fn verify_full_with_the_configured_ca_connects_over_tls() {
    let (server, ca) = shared_tls();
    let url = url(server, "localhost", "verify-full");
    assert_eq!(is_tls(&url, Some(&ca.ca_path())).await, Ok(true));
}

#[tokio::test]
async fn verify_full_without_the_ca_is_refused_as_untrusted() {
    let (server, ca) = shared_tls();
    let url = url(server, "localhost", "verify-full");
    let text = refusal(is_tls(&url, None).await);
    assert!(
        text.contains("the server's certificate is not trusted (verify-full)")
            && text.contains("SESSION_POSTGRES_ROOT_CERT"),
        "{text}"
    );
    // The same URL opens once the CA is trusted: the refusal was the certificate's.
    assert_eq!(is_tls(&url, Some(&ca.ca_path())).await, Ok(true));
}

#[tokio::test]
async fn require_without_the_ca_connects_over_tls_unverified() {
    let (server, _) = shared_tls();
    assert_eq!(
        is_tls(&url(server, "127.0.0.1", "require"), None).await,
        Ok(true)
    );
}

#[tokio::test]
async fn verify_full_to_a_host_the_certificate_does_not_name_is_refused() {
    let (server, ca) = shared_tls();
    // The certificate names `localhost` only.
    let text = refusal(
        is_tls(
            &url(server, "127.0.0.1", "verify-full"),
            Some(&ca.ca_path()),
        )
        .await,
    );
    assert!(
        text.contains("the server's certificate does not name 127.0.0.1 (verify-full"),
        "{text}"
    );
    // verify-ca checks the chain only, so the same address is accepted.
    let verify_ca = url(server, "127.0.0.1", "verify-ca");
    assert_eq!(is_tls(&verify_ca, Some(&ca.ca_path())).await, Ok(true));
    // And without the CA, verify-ca refuses the chain.
    let text = refusal(is_tls(&verify_ca, None).await);
    assert!(text.contains("not trusted (verify-ca)"), "{text}");
}

#[tokio::test]
async fn disable_is_plain_and_refused_by_a_server_that_requires_tls() {
    // Today's path, kept: a server without TLS, reached without it.
    let plain = shared();
    assert_eq!(
        is_tls(&url(plain, "127.0.0.1", "disable"), None).await,
        Ok(false)
    );
    let (server, _) = shared_tls();
    let text = refusal(is_tls(&url(server, "127.0.0.1", "disable"), None).await);
    assert!(
        text.contains("no encryption") && text.contains("pg_hba.conf"),
        "{text}"
    );
    // The refusal is the server's rule: over TLS, the same server lets us in.
    assert_eq!(
        is_tls(&url(server, "127.0.0.1", "require"), None).await,
        Ok(true)
    );
}

#[tokio::test]
async fn prefer_speaks_tls_when_offered_and_plain_tcp_when_not() {
    // The default (no sslmode) is prefer.
    let (server, _) = shared_tls();
    let prefer = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port());
    assert_eq!(is_tls(&prefer, None).await, Ok(true));
    let plain = shared();
    assert_eq!(
        is_tls(&url(plain, "127.0.0.1", "prefer"), None).await,
        Ok(false)
    );
    // require does not fall back.
    let text = refusal(is_tls(&url(plain, "127.0.0.1", "require"), None).await);
    assert!(text.contains("server does not support TLS"), "{text}");
}

#[tokio::test]
async fn the_root_certificate_setting_reaches_the_component_s_database() {
    let (server, ca) = shared_tls();
    let database = server.fresh_database().expect("createdb");
    let database_url = format!(
        "{}?sslmode=verify-full",
        database.replace("127.0.0.1", "localhost")
    );
    let ca_path = ca.ca_path().display().to_string();
    let config = |root_cert: Option<&str>| {
        HostConfig::from_lookup(|name| match name {
            "SESSION_DATABASE_URL" => Some(database_url.clone()),
            "SESSION_POSTGRES_ROOT_CERT" => root_cert.map(str::to_owned),
            _ => None,
        })
        .expect("valid settings")
    };
    // Opening a host runs the component's migrations and a stats query on the database.
    let refused = SessionHost::open(serve_runtime(), config(None)).await;
    let err = refused.expect_err("an untrusted server is refused");
    assert!(
        err.to_string().contains("not trusted (verify-full)"),
        "{err}"
    );
    SessionHost::open(serve_runtime(), config(Some(&ca_path)))
        .await
        .expect("the configured root certificate is trusted");
}
