//! The request as Spin hands it to a component: Spin's headers, an absolute URI, and the body
//! read within its deadline (up to a cap; past it a WASIp3 guest gets the rest streamed).

use super::errors::RequestError;
use bytes::Bytes;
use http::header::HOST;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::WasiBody;

/// The most of a request body the host reads; one byte more than the guest accepts is enough
/// for the guest to refuse it with its own 413. The guest's cap is `MAX_BODY_BYTES` in
/// core/src/http/request.rs, a crate the host does not depend on; `oversized_bodies_are_refused_with_413`
/// (host/tests/all/abuse.rs) fails if the two disagree.
pub(super) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request as a WASIp2 guest gets it: the body already read ([`ReadBody::in_memory`]).
pub(super) type GuestRequest = Request<Full<Bytes>>;

/// Rewrites the request as Spin hands it to a component on route `/...`: an absolute
/// URI, and the `spin-*` headers (any the client sent are removed first, so they cannot
/// be forged).
///
/// The authority comes from `Host`, or from the request target when it is in absolute form
/// (`GET http://host/path`), or is the listen address when neither gives one; whichever it
/// is must be a host and an optional port ([`is_authority`]), so that `Host:
/// x/admin/?` cannot move the path the guest sees. Spin (trigger-http's `set_req_uri`)
/// parses `Host` as an `http::uri::Authority`, refuses a `Host` that differs from the
/// target's authority, and drops the connection without an answer on either; this is
/// stricter (no user info, percent-encoding or sub-delimiters, two `Host` headers refused, a
/// scheme other than `http`/`https` refused, the target must be a path) and answers 400.
///
/// # Errors
///
/// Why the request cannot be presented, for the 400's `detail`.
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
    let mut hosts = parts.headers.get_all(HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return Err("the request has more than one Host header"),
        (Some(host), None) => Some(host.to_str().map_err(|_| BAD_HOST)?),
        (None, None) => None,
    };
    if host.is_some_and(|host| !is_authority(host)) {
        return Err(BAD_HOST);
    }
    if parts
        .uri
        .scheme_str()
        .is_some_and(|s| !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https"))
    {
        return Err("the request target's scheme must be http or https");
    }
    let target = match parts.uri.authority().map(|a| a.as_str()) {
        Some(target) => {
            if !is_authority(target) {
                return Err(BAD_TARGET);
            }
            if host.is_some_and(|host| !host.eq_ignore_ascii_case(target)) {
                return Err("the Host header does not match the request target's authority");
            }
            Some(target)
        }
        None => None,
    };
    let authority = match host.or(target) {
        Some(authority) => authority.to_owned(),
        None => listen.to_string(),
    };
    let path = parts.uri.path();
    if !path.starts_with('/') {
        return Err("the request target must be a path starting with `/`");
    }
    let full_url = match parts.uri.query() {
        Some(query) => format!("http://{authority}{path}?{query}"),
        None => format!("http://{authority}{path}"),
    };
    parts.uri = full_url.parse().map_err(|_| BAD_TARGET)?;
    let path = parts.uri.path().to_owned();
    // Names made once, at compile time: parsing them again on every request was 2.6% of a
    // trivial component's request under `serve` (docs/benchmarks-history.md, 2026-12-02).
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

const BAD_HOST: &str = "the Host header must be a host name or IP address and an optional port, \
     with no path, query, fragment, user info, spaces or control characters";
const BAD_TARGET: &str = "the request target's authority must be a host name or IP address and an \
     optional port";

/// Whether `authority` is `host[:port]`: the host a name of letters, digits and `-._~`
/// (which covers IPv4 addresses) or a bracketed IPv6 address, the port 1 to 5 digits up to
/// 65535. Everything else RFC 3986 allows in an authority (user info, percent-encoding,
/// sub-delimiters, `IPvFuture`, an empty port) no client of this API needs, so none of it
/// reaches the guest.
fn is_authority(authority: &str) -> bool {
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let Some((address, after)) = rest.split_once(']') else {
                return false;
            };
            let port = match after {
                "" => None,
                after => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return false,
                },
            };
            (address.parse::<std::net::Ipv6Addr>().is_ok(), port)
        }
        None => {
            let (name, port) = match authority.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (authority, None),
            };
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            (name_ok, port)
        }
    };
    let port_ok = port.is_none_or(|port| {
        (1..=5).contains(&port.len())
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

/// A request body as the host has read it before the guest runs.
pub(super) enum ReadBody {
    /// All of it, at most [`MAX_BODY_BYTES`].
    Whole(Bytes),
    /// More than the cap: what was read (whole frames, just past the cap, or nothing when the
    /// declared length alone is over it) and the rest, still on the connection, due by
    /// `deadline`.
    Over {
        read: Bytes,
        rest: Incoming,
        deadline: tokio::time::Instant,
    },
}

impl ReadBody {
    /// The body for a WASIp2 guest, in memory: all of it, or for one over the cap at most one
    /// byte past it, enough for our guest to refuse it with its own 413 (nothing when the
    /// declared length is over: it refuses from the header).
    pub(super) fn in_memory(self) -> Full<Bytes> {
        match self {
            Self::Whole(read) => Full::new(read),
            Self::Over { read, .. } => Full::new(read.slice(..read.len().min(MAX_BODY_BYTES + 1))),
        }
    }

    /// The body for a WASIp3 guest, whole: one within the cap from memory, a larger one
    /// streamed from the connection as Spin streams it, what was read first, then the rest.
    /// The rest must arrive by the body's deadline; after it the guest's next read fails with
    /// `connection-read-timeout` (the host cannot answer 408 once the guest has the request).
    pub(super) fn streamed(self) -> WasiBody {
        match self {
            Self::Whole(read) => Full::new(read)
                .map_err(|never| match never {})
                .boxed_unsync(),
            Self::Over {
                read,
                rest,
                deadline,
            } => Streamed {
                read: (!read.is_empty()).then_some(read),
                rest,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
            }
            .boxed_unsync(),
        }
    }
}

/// A body over the cap as a WASIp3 guest reads it: the frames already read, then the
/// connection's, until the deadline.
struct Streamed {
    read: Option<Bytes>,
    rest: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(read) = self.read.take() {
            return Poll::Ready(Some(Ok(Frame::data(read))));
        }
        // What has arrived is handed on even past the deadline; only a wait ends there.
        if let Poll::Ready(frame) = Pin::new(&mut self.rest).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(wasmtime_wasi_http::Error::from)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read = self.read.as_ref().map_or(0, |read| read.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + read);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + read);
        }
        hint
    }
}

/// Reads `req`'s body into memory within `deadline`, however it trickles, up to
/// [`MAX_BODY_BYTES`]; a body that goes past it is left on the connection after the frame
/// that crossed the cap, and a declared length over the cap is not read at all
/// ([`ReadBody::Over`]: a WASIp2 guest refuses it from what it is given, a WASIp3 guest gets
/// it streamed). Reading here rather than letting the guest stream from the socket costs at
/// most the cap per connection, which the connection limit bounds (hyper's own read buffer is
/// larger), and keeps every wait on the client within the cap outside the guest. Trailers of
/// a body read whole are dropped: the guest never reads them.
pub(super) async fn read_body(
    req: Request<Incoming>,
    deadline: Duration,
) -> Result<Request<ReadBody>, RequestError> {
    let due = tokio::time::Instant::now() + deadline;
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
                    read.extend_from_slice(&data);
                    if read.len() > MAX_BODY_BYTES {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        };
        let whole = tokio::time::timeout_at(due, collect)
            .await
            .map_err(|_| RequestError::BodyTimedOut(deadline))??;
        if whole {
            return Ok(Request::from_parts(parts, ReadBody::Whole(read.into())));
        }
    } else if !over_cap {
        return Ok(Request::from_parts(parts, ReadBody::Whole(Bytes::new())));
    }
    let over = ReadBody::Over {
        read: read.into(),
        rest: body,
        deadline: due,
    };
    Ok(Request::from_parts(parts, over))
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

    /// `present_like_spin` of a GET of `target` with these `Host` headers.
    fn present(target: &str, hosts: &[&[u8]]) -> Result<Request<()>, &'static str> {
        let mut req = Request::builder().uri(target);
        for host in hosts {
            req = req.header(HOST, HeaderValue::from_bytes(host).unwrap());
        }
        present_like_spin(
            req.body(()).unwrap(),
            addr("127.0.0.1:9"),
            addr("127.0.0.1:3000"),
        )
    }

    #[test]
    fn a_host_that_is_more_than_host_and_port_is_refused() {
        let bad: &[&[u8]] = &[
            b"127.0.0.1/sessions/stats?x=",
            b"x/admin/?",
            b"example.com?x=1",
            b"example.com#fragment",
            b"user@example.com",
            b"example.com:80@evil.example",
            b"exa mple.com",
            b"example.com\t",
            b"exa\tmple.com",
            b"",
            b"example.com:",
            b"example.com:http",
            b"example.com:65536",
            b"example.com:80:80",
            b"[::1",
            b"[::1]x",
            b"[not-an-address]:80",
            b"%65xample.com",
            b"example.com;x",
            b"\xffexample.com",
        ];
        for host in bad {
            let shown = String::from_utf8_lossy(host);
            let err = present("/sessions/validate", &[host]).expect_err(&shown);
            assert_eq!(err, BAD_HOST, "{shown:?}");
        }
    }

    #[test]
    fn two_host_headers_are_refused() {
        let err = present("/health", &[b"example.com", b"example.com"]).unwrap_err();
        assert!(err.contains("more than one Host"), "{err}");
        // Positive control: either one alone is fine.
        present("/health", &[b"example.com"]).unwrap();
    }

    #[test]
    fn a_host_that_is_host_and_port_makes_the_url() {
        for host in [
            "example.com",
            "example.com:8080",
            "[::1]:3000",
            "127.0.0.1",
            "[::1]",
        ] {
            let req = present("/sessions/validate?role=admin", &[host.as_bytes()]).expect(host);
            let url = format!("http://{host}/sessions/validate?role=admin");
            assert_eq!(header(&req, "spin-full-url"), Some(url.as_str()));
            assert_eq!(req.uri().to_string(), url);
            assert_eq!(header(&req, "spin-path-info"), Some("/sessions/validate"));
        }
    }

    #[test]
    fn an_absolute_target_gives_the_authority_and_must_agree_with_host() {
        let req = present("http://example.com:8080/health?x=1", &[]).unwrap();
        assert_eq!(
            header(&req, "spin-full-url"),
            Some("http://example.com:8080/health?x=1")
        );
        assert_eq!(header(&req, "spin-path-info"), Some("/health"));
        // Case does not matter in a host; a different authority does.
        present("http://EXAMPLE.com/health", &[b"example.com"]).unwrap();
        let err = present("http://example.com/health", &[b"other.example"]).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        for target in [
            "http://user@example.com/health",
            "ftp://example.com/health",
            "*",
        ] {
            assert!(present(target, &[b"example.com"]).is_err(), "{target}");
        }
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
