//! The request as the handlers see it (method, path, query, headers, body already read) and
//! the reply they build; percent-decoding of paths and queries.

use serde_json::Value;
use std::borrow::Cow;

/// Largest request body accepted; bigger bodies get 413 without being read to the end.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request, read in full (up to [`MAX_BODY_BYTES`]) by the entry point.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path, still percent-encoded.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Set when the body exceeded [`MAX_BODY_BYTES`] (and was not read further).
    pub body_too_large: bool,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of header `name` (case-insensitive).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every occurrence of query parameter `name`, decoded (`None` for one that does not
    /// decode).
    pub fn query_params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Option<String>> + 'a {
        self.query.split('&').filter_map(move |pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(&key.replace('+', " "))? == name)
                .then(|| percent_decode(&value.replace('+', " ")))
        })
    }
}

/// How the shells (WASIp2, WASIp3) turn what `wasi:http` hands them into a [`Request`]: one
/// copy of the rules, whatever the WASI version's types.
impl Request {
    /// A request with the head a shell received and no body yet. Header names are lowercased
    /// in place and values taken as UTF-8 (lossily: a value that is not is never one we
    /// accept anyway); both arrive owned, and from Spin and our host already lowercase and
    /// UTF-8, so nothing is copied (header handling was a good part of a fresh `/health`'s
    /// guest work, docs/benchmarks-history.md).
    pub fn from_head(
        method: String,
        path_with_query: &str,
        headers: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Self {
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query, ""));
        let headers = headers
            .into_iter()
            .map(|(mut name, value)| {
                name.make_ascii_lowercase();
                let value = String::from_utf8(value)
                    .unwrap_or_else(|bad| String::from_utf8_lossy(bad.as_bytes()).into_owned());
                (name, value)
            })
            .collect();
        Self {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: Vec::new(),
            body_too_large: false,
        }
    }

    /// Whether the shell should read the body. Not when its declared length is over the cap
    /// (then [`Request::body_too_large`] is set, and the answer is 413 without reading), nor
    /// for a GET or HEAD: no route reads their body, so its stream is never opened (on a
    /// fresh instance the stream and its reads were host calls that `/health` and a validate
    /// paid for nothing).
    pub fn wants_body(&mut self) -> bool {
        let declared = self
            .header("content-length")
            .and_then(|len| len.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
            self.body_too_large = true;
            return false;
        }
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }

    /// Appends a chunk of the body; `false` (with the body dropped and
    /// [`Request::body_too_large`] set) once it passes the cap: stop reading.
    pub fn push_body(&mut self, chunk: &[u8]) -> bool {
        if self.body.len() + chunk.len() > MAX_BODY_BYTES {
            self.body.clear();
            self.body_too_large = true;
            return false;
        }
        self.body.extend_from_slice(chunk);
        true
    }

    /// The body broke off mid-way: it counts as empty, and the handler reports what it needed.
    pub fn body_broken(&mut self) {
        self.body.clear();
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON response.
    pub fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        }
    }

    /// A JSON response whose body is already text.
    pub fn json_text(status: u16, text: String) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: text.into_bytes(),
        }
    }

    /// 200 with a JSON body.
    pub fn ok(value: &Value) -> Self {
        Self::json(200, value)
    }

    /// 200 with a JSON document that is already text (the OpenAPI document, `/health`'s
    /// constant body).
    pub fn ok_json_text(text: &str) -> Self {
        Self::json_text(200, text.to_owned())
    }

    /// Adds a header.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_owned(), value.into()));
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl Reply {
    /// The head's headers as `wasi:http` takes them: one value per name, the last one set
    /// winning; the body's own `Content-Length` (one a handler set would only disagree), except
    /// where RFC 9110 forbids one (1xx, 204; a 304's would have to be the GET's) and on a HEAD
    /// answer (`head`), whose empty body would misstate the GET's length. A known length needs
    /// no chunk framing, so the whole answer can leave in one write.
    pub fn wire_headers(&self, head: bool) -> Vec<(String, Vec<u8>)> {
        let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(self.headers.len() + 1);
        for (name, value) in &self.headers {
            let name = name.to_ascii_lowercase();
            if name == "content-length" {
                continue;
            }
            match entries.iter_mut().find(|(seen, _)| *seen == name) {
                Some(entry) => entry.1 = value.clone().into_bytes(),
                None => entries.push((name, value.clone().into_bytes())),
            }
        }
        if !head && !matches!(self.status, 100..=199 | 204 | 304) {
            entries.push((
                "content-length".to_owned(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        entries
    }
}

/// Decodes `%XX` escapes; `None` for a bad escape or invalid UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    percent_decoded(text).map(Cow::into_owned)
}

/// As [`percent_decode`], borrowing `text` when it holds no escape (every route word, and
/// most ids), so matching and logging a path allocate nothing for it.
pub fn percent_decoded(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_split_and_its_header_names_lowercased() {
        let mut req = Request::from_head(
            "POST".into(),
            "/sessions/x/extend?a=1",
            [
                ("X-Session-ID".to_owned(), b"tok".to_vec()),
                ("content-length".to_owned(), b"12".to_vec()),
            ],
        );
        assert_eq!(
            (req.path.as_str(), req.query.as_str()),
            ("/sessions/x/extend", "a=1")
        );
        assert_eq!(req.header("x-session-id"), Some("tok"));
        assert_eq!(req.headers[0].0, "x-session-id");
        assert!(req.wants_body());
        assert!(!req.body_too_large);
    }

    #[test]
    fn a_get_or_an_oversized_declared_body_is_not_read() {
        let mut get = Request::from_head("GET".into(), "/health", []);
        assert!(!get.wants_body());
        assert!(!get.body_too_large);
        let too_long = (MAX_BODY_BYTES + 1).to_string().into_bytes();
        let mut big = Request::from_head(
            "POST".into(),
            "/x",
            [("Content-Length".to_owned(), too_long)],
        );
        assert!(!big.wants_body());
        assert!(big.body_too_large);
    }

    #[test]
    fn a_body_past_the_cap_is_dropped_and_marked() {
        let mut req = Request::from_head("POST".into(), "/x", []);
        assert!(req.push_body(&[b'a'; 10]));
        assert_eq!(req.body.len(), 10);
        assert!(!req.push_body(&vec![b'b'; MAX_BODY_BYTES]));
        assert!(req.body.is_empty());
        assert!(req.body_too_large);
    }

    #[test]
    fn wire_headers_keep_the_last_value_and_the_bodys_length() {
        let reply = Reply {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("content-type".into(), "application/json".into()),
                ("Content-Length".into(), "999".into()),
            ],
            body: b"{}".to_vec(),
        };
        assert_eq!(
            reply.wire_headers(false),
            vec![
                ("content-type".to_owned(), b"application/json".to_vec()),
                ("content-length".to_owned(), b"2".to_vec()),
            ]
        );
        // A HEAD answer and a 204 carry no length.
        assert_eq!(reply.wire_headers(true).len(), 1);
        let empty = Reply {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        };
        assert!(empty.wire_headers(false).is_empty());
    }
}
