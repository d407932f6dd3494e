//! PostgreSQL over TLS for the native clients: the host's `spin:postgres` (tokio-postgres) and
//! the core's native backend (the `postgres` crate), with libpq's `sslmode` meanings on rustls.
//!
//! | `sslmode` | TLS | certificate checked |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `prefer` (the default) | if the server offers it, else plain | no |
//! | `require` | always | no |
//! | `verify-ca` | always | chain, against the roots |
//! | `verify-full` | always | chain and host name |
//!
//! The roots are the system's (`rustls-native-certs`) plus, when configured, one PEM file
//! ([`ROOT_CERT_ENV`]). tokio-postgres 0.7 parses only `disable`, `prefer` and `require`, so
//! [`parse`] takes the two verifying modes out of the URL before tokio-postgres reads it.
//! `sslrootcert=` in the URL is refused, as Spin refuses it (tokio-postgres does not know it):
//! the root certificate is the operator's setting, not part of the URL.
//!
//! Rustls with the `ring` provider is pure Rust to build (no OpenSSL); this crate is never
//! part of the component.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use tokio_postgres_rustls::MakeRustlsConnect;

/// The environment variable naming a PEM file of root certificates to trust besides the
/// system's (a managed database's CA, or a self-signed one).
pub const ROOT_CERT_ENV: &str = "SESSION_POSTGRES_ROOT_CERT";

/// libpq's `sslmode`, as this crate honours it (`allow` is not supported, as in tokio-postgres).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The name in a connection string.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// Why a connection string or the TLS setup cannot be used. Never carries the URL (it holds
/// the password).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the database URL is not a valid PostgreSQL connection string")]
    InvalidUrl,
    #[error(
        "sslrootcert in the database URL is not supported: give the root certificate in {ROOT_CERT_ENV}"
    )]
    RootCertInUrl,
    #[error("cannot read the PostgreSQL root certificate {path}: {reason}")]
    RootCert { path: PathBuf, reason: String },
    #[error("sslmode={0} needs root certificates, and none were found: set {ROOT_CERT_ENV}")]
    NoRoots(&'static str),
}

/// Parses a connection string (URL or `key=value` form) into tokio-postgres's configuration and
/// the `sslmode` it asks for.
///
/// # Errors
///
/// [`TlsError::InvalidUrl`] when tokio-postgres refuses it, [`TlsError::RootCertInUrl`] when it
/// names `sslrootcert`.
pub fn parse(url: &str) -> Result<(tokio_postgres::Config, SslMode), TlsError> {
    let (rewritten, mode) = take_ssl_mode(url)?;
    let config = rewritten
        .parse::<tokio_postgres::Config>()
        .map_err(|_| TlsError::InvalidUrl)?;
    Ok((config, mode))
}

/// The URL with `verify-ca`/`verify-full` replaced by `require` (which tokio-postgres knows),
/// and the mode it asked for.
fn take_ssl_mode(url: &str) -> Result<(String, SslMode), TlsError> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (head, params, separator) = if is_url {
        match url.split_once('?') {
            Some((head, query)) => (format!("{head}?"), query.to_owned(), "&"),
            None => return Ok((url.to_owned(), SslMode::Prefer)),
        }
    } else {
        (String::new(), url.to_owned(), " ")
    };
    let mut mode = SslMode::Prefer;
    let mut kept = Vec::new();
    let pairs: Vec<&str> = if is_url {
        params.split('&').collect()
    } else {
        params.split_whitespace().collect()
    };
    for pair in pairs {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslrootcert" => return Err(TlsError::RootCertInUrl),
            "sslmode" => {
                mode = match value {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    _ => return Err(TlsError::InvalidUrl),
                };
                let known = if mode.verifies() { "require" } else { value };
                kept.push(format!("sslmode={known}"));
            }
            _ => kept.push(pair.to_owned()),
        }
    }
    Ok((format!("{head}{}", kept.join(separator)), mode))
}

/// The TLS connector for `mode`: the system's roots plus `root_cert` (a PEM file) when given.
/// Use it for every mode but `disable` (for which tokio-postgres never calls it).
///
/// # Errors
///
/// [`TlsError::RootCert`] when `root_cert` cannot be read or holds no certificate;
/// [`TlsError::NoRoots`] when a verifying mode finds no root at all.
pub fn connector(mode: SslMode, root_cert: Option<&Path>) -> Result<MakeRustlsConnect, TlsError> {
    #[expect(
        deprecated,
        reason = "ring builds without a C toolchain; post-quantum key exchange needs aws-lc-rs"
    )]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    if mode.verifies() {
        // Unreadable system certificates are skipped, as a browser skips them.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
    }
    if let Some(path) = root_cert {
        let failed = |reason: String| TlsError::RootCert {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|err| failed(err.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| failed(format!("not PEM: {err}")))?;
        if certs.is_empty() {
            return Err(failed("no certificate in the file".to_owned()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| failed(format!("not a usable certificate: {err}")))?;
        }
    }
    let webpki = if mode.verifies() {
        if roots.is_empty() {
            return Err(TlsError::NoRoots(mode.name()));
        }
        let built = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|_| TlsError::NoRoots(mode.name()))?;
        Some(built)
    } else {
        None
    };
    let verifier = Arc::new(Verifier {
        mode,
        webpki,
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `err` and its sources, `: `-separated: tokio-postgres shows only its own part ("error
/// performing TLS handshake"), and the reason (which certificate, why) is in the sources.
pub fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = refusal(cause).unwrap_or_else(|| cause.to_string());
        // An io::Error wrapping an error shows that error's text, then gives its source.
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// A certificate [`Verifier`] refused, in its own words: rustls shows it as
/// `invalid peer certificate: Other(OtherError(…))`, and tokio-rustls wraps it in an io::Error.
fn refusal(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    let rustls = cause.downcast_ref::<rustls::Error>().or_else(|| {
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })?;
    match rustls {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(refused))) => {
            Some(refused.to_string())
        }
        _ => None,
    }
}

/// Checks the server's certificate as `sslmode` says: not at all (`prefer`, `require`: the
/// handshake's signatures are still checked), its chain (`verify-ca`), its chain and name
/// (`verify-full`). Refusals say which mode refused and why.
#[derive(Debug)]
struct Verifier {
    mode: SslMode,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

/// A refused certificate, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        let mode = self.mode.name();
        let refused = |text: String| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                Refused(text),
            ))))
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Ok(verified) => Ok(verified),
            // The chain was checked before the name: verify-ca accepts any name.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.mode == SslMode::VerifyCa => Ok(ServerCertVerified::assertion()),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Err(refused(format!(
                "the server's certificate does not name {} ({mode} checks the host name)",
                server_name.to_str()
            ))),
            Err(rustls::Error::InvalidCertificate(reason)) => Err(refused(format!(
                "the server's certificate is not trusted ({mode}): {reason}; give its root \
                 certificate in {ROOT_CERT_ENV}"
            ))),
            Err(other) => Err(other),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_are_taken_out_of_the_url_for_tokio_postgres() {
        let (config, mode) = parse("postgres://u:pw@db:5432/x?sslmode=verify-full").unwrap();
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let (config, mode) = parse("host=db user=u sslmode=verify-ca dbname=x").unwrap();
        assert_eq!(mode, SslMode::VerifyCa);
        assert_eq!(config.get_dbname(), Some("x"));
        assert_eq!(parse("postgres://u@db/x").unwrap().1, SslMode::Prefer);
        let (config, mode) = parse("postgres://u@db/x?sslmode=disable").unwrap();
        assert_eq!(mode, SslMode::Disable);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        assert!(matches!(
            parse("postgres://u@db/x?sslrootcert=/ca.pem"),
            Err(TlsError::RootCertInUrl)
        ));
        assert!(matches!(
            parse("postgres://u:pw@db/x?sslmode=bogus"),
            Err(TlsError::InvalidUrl)
        ));
    }

    #[test]
    fn an_unreadable_root_certificate_is_named_in_the_error() {
        let err = connector(SslMode::VerifyFull, Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        assert!(connector(SslMode::Require, None).is_ok());
    }
}
