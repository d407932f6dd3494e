//! The request as Spin hands it to a component: Spin's headers, an absolute URI, and the body
//! already read within its deadline.

use super::guest::RequestError;
use bytes::Bytes;
use http::header::HOST;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::time::Duration;

/// The most of a request body the host reads; one byte more than the guest accepts is enough
/// for the guest to refuse it with its own 413. The guest's cap is `MAX_BODY_BYTES` in
/// src/http/request.rs, a crate the host does not depend on; `oversized_bodies_are_refused_with_413`
/// (host/tests/abuse.rs) fails if the two disagree.
pub(super) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request as the guest gets it: the body already read.
pub(super) type GuestRequest = Request<Full<Bytes>>;

/// Rewrites the request as Spin hands it to a component on route `/...`: an absolute
/// URI, and the `spin-*` headers (any the client sent are removed first, so they cannot
/// be forged).
pub(super) fn present_like_spin<B>(
    req: Request<B>,
    peer: SocketAddr,
    listen: SocketAddr,
) -> Result<Request<B>, &'static str> {
    let (mut parts, body) = req.into_parts();
    let spin_headers: Vec<_> = parts
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in spin_headers {
        parts.headers.remove(name);
    }
    let authority = match parts.headers.get(HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => host.to_owned(),
        None => listen.to_string(),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let full_url = format!("http://{authority}{path_and_query}");
    parts.uri = full_url
        .parse()
        .map_err(|_| "invalid Host header or request target")?;
    let path = parts.uri.path().to_owned();
    // Names made once, at compile time: parsing them again on every request was 2.6% of a
    // trivial component's request under `serve` (BENCHMARKS.md, fifth session).
    const FULL_URL: HeaderName = HeaderName::from_static("spin-full-url");
    const PATH_INFO: HeaderName = HeaderName::from_static("spin-path-info");
    const MATCHED_ROUTE: HeaderName = HeaderName::from_static("spin-matched-route");
    const RAW_COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-raw-component-route");
    const COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-component-route");
    const BASE_PATH: HeaderName = HeaderName::from_static("spin-base-path");
    const CLIENT_ADDR: HeaderName = HeaderName::from_static("spin-client-addr");
    let headers = [
        (FULL_URL, full_url.as_str()),
        (PATH_INFO, path.as_str()),
        (MATCHED_ROUTE, "/..."),
        (RAW_COMPONENT_ROUTE, "/..."),
        (COMPONENT_ROUTE, ""),
        (BASE_PATH, "/"),
        (CLIENT_ADDR, &peer.to_string()),
    ];
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|_| "invalid request target")?;
        parts.headers.insert(name, value);
    }
    Ok(Request::from_parts(parts, body))
}

/// Reads `req`'s body into memory within `deadline`, however it trickles, stopping one byte
/// past [`MAX_BODY_BYTES`]: enough for the guest to refuse it, which it does from what it is
/// given. A declared length over the cap is not read at all; the guest refuses it from the
/// header. Reading here rather than letting the guest stream from the socket costs at most
/// the cap per connection, which the connection limit bounds (hyper's own read buffer is
/// larger), and keeps every wait on the client outside the guest. Trailers are dropped: the
/// guest never reads them.
pub(super) async fn read_body(
    req: Request<Incoming>,
    deadline: Duration,
) -> Result<GuestRequest, RequestError> {
    let (parts, mut body) = req.into_parts();
    let over_cap = body
        .size_hint()
        .exact()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64);
    let mut read = Vec::new();
    if !over_cap && !body.is_end_stream() {
        let collect = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(RequestError::BodyUnreadable)?;
                if let Ok(data) = frame.into_data() {
                    let room = MAX_BODY_BYTES + 1 - read.len();
                    read.extend_from_slice(&data[..data.len().min(room)]);
                    if read.len() > MAX_BODY_BYTES {
                        break;
                    }
                }
            }
            Ok(())
        };
        tokio::time::timeout(deadline, collect)
            .await
            .map_err(|_| RequestError::BodyTimedOut(deadline))??;
    }
    Ok(Request::from_parts(parts, Full::new(Bytes::from(read))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn header<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
        req.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn spin_headers_are_set_from_the_connection_and_forged_ones_are_dropped() {
        let req = Request::builder()
            .uri("/sessions/validate?role=admin")
            .header(HOST, "sessions.example:8080")
            .header("spin-client-addr", "6.6.6.6:1")
            .header("spin-full-url", "https://forged/")
            .header("spin-made-up", "x")
            .body(())
            .unwrap();
        let peer = addr("10.1.2.3:4567");
        let req = present_like_spin(req, peer, addr("127.0.0.1:3000")).unwrap();
        assert_eq!(
            header(&req, "spin-full-url"),
            Some("http://sessions.example:8080/sessions/validate?role=admin")
        );
        assert_eq!(header(&req, "spin-path-info"), Some("/sessions/validate"));
        assert_eq!(header(&req, "spin-client-addr"), Some("10.1.2.3:4567"));
        assert_eq!(header(&req, "spin-matched-route"), Some("/..."));
        assert_eq!(
            header(&req, "spin-made-up"),
            None,
            "unknown spin-* headers go"
        );
        assert_eq!(
            req.uri().to_string(),
            "http://sessions.example:8080/sessions/validate?role=admin"
        );
    }

    #[test]
    fn without_a_host_header_the_listen_address_is_the_authority() {
        let req = Request::builder().uri("/health").body(()).unwrap();
        let req = present_like_spin(req, addr("127.0.0.1:9"), addr("127.0.0.1:3000")).unwrap();
        assert_eq!(
            header(&req, "spin-full-url"),
            Some("http://127.0.0.1:3000/health")
        );
    }

    #[test]
    fn a_host_that_makes_no_uri_is_refused() {
        let req = Request::builder()
            .uri("/health")
            .header(HOST, "bad host/with space")
            .body(())
            .unwrap();
        assert!(present_like_spin(req, addr("127.0.0.1:9"), addr("127.0.0.1:3000")).is_err());
    }
}
