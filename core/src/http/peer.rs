//! What the connection tells about a request, beyond its credentials: whether it came over
//! HTTPS and the client's address, each believed from a forwarding proxy only when the peer is
//! one of `trusted_proxies`. Read by the pipeline (`require_https`), the context (the origin,
//! the device) and the CSRF rules.

use super::Request;
use crate::config::{Config, ConfigError, TrustedProxies};
use std::net::{IpAddr, SocketAddr};

/// Whether the request reached us over HTTPS.
///
/// Judged from the connection (`spin-full-url`, which Spin and our host build from the
/// listener), unless the peer (`spin-client-addr`) is one of the configured
/// `trusted_proxies`: then the scheme that proxy reports in `X-Forwarded-Proto` (or RFC 7239
/// `Forwarded: proto=`) decides. A client's own forwarding header is never believed, so it
/// cannot talk its way past `require_https` or the CSRF origin check.
///
/// # Errors
///
/// A bad `trusted_proxies`, read only when a forwarding header is present.
pub fn is_https(req: &Request, config: &Config) -> Result<bool, ConfigError> {
    if let Some(https) = forwarded_https(req)
        && peer_is_trusted_proxy(req, config.trusted_proxies()?)
    {
        return Ok(https);
    }
    Ok(req.header("spin-full-url").is_some_and(|url| {
        url.get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }))
}

/// The client's address for the audit log: the connection's peer (`spin-client-addr`), or,
/// when that peer is a trusted proxy, the address it reports as the last entry of
/// `X-Forwarded-For` (proxies append the peer they saw). At most 64 characters; `None`
/// when the host gives no peer.
pub fn client_addr(req: &Request, config: &Config) -> Option<String> {
    let peer = req.header("spin-client-addr").map(str::trim)?;
    let forwarded = req
        .headers_named("x-forwarded-for")
        .last()
        .and_then(|list| list.rsplit(',').next())
        .map(str::trim)
        .filter(|addr| addr.parse::<IpAddr>().is_ok());
    let shown = match forwarded {
        Some(addr)
            if config
                .trusted_proxies()
                .is_ok_and(|proxies| peer_is_trusted_proxy(req, proxies)) =>
        {
            addr
        }
        _ => peer,
    };
    Some(shown.chars().take(64).collect())
}

/// Whether the connection's peer is one of `proxies`.
fn peer_is_trusted_proxy(req: &Request, proxies: &TrustedProxies) -> bool {
    if proxies.is_empty() {
        return false;
    }
    let Some(peer) = req.header("spin-client-addr").map(str::trim) else {
        return false;
    };
    let ip = peer
        .parse::<SocketAddr>()
        .map(|addr| addr.ip())
        .or_else(|_| peer.parse::<IpAddr>());
    ip.is_ok_and(|ip| proxies.contains(ip))
}

/// Whether the nearest proxy reports HTTPS, `None` when no forwarding header is present.
///
/// Proxies append, so of each header only the last entry can be the trusted proxy's own:
/// the last entry of the last `X-Forwarded-Proto`, the last `proto=` of the last element of
/// `Forwarded` (RFC 7239). We cannot tell which of the two headers the proxy writes and which
/// a client sent through it, so when both are present the request counts as HTTPS only if
/// both say so: a client can never talk its way up to HTTPS past a proxy that reports
/// `http` in the other header (the probe's finding, issue 27).
fn forwarded_https(req: &Request) -> Option<bool> {
    let x_forwarded = req
        .headers_named("x-forwarded-proto")
        .last()
        .and_then(|header| header.rsplit(',').next())
        .map(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let forwarded = req
        .headers_named("forwarded")
        .last()
        .and_then(|header| header.rsplit(',').next())
        .and_then(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("proto")
                    .then(|| value.trim().trim_matches('"').eq_ignore_ascii_case("https"))
            })
        });
    match (x_forwarded, forwarded) {
        (Some(a), Some(b)) => Some(a && b),
        (one, other) => one.or(other),
    }
}
