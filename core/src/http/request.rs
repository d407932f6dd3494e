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
