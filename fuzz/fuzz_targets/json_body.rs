//! JSON request bodies: any bytes under any content type either decode to an object body or
//! are refused with 415 (`unsupported_media_type`) or 422 (`invalid_input`), never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use zoe_session::config::Config;
use zoe_session::http::{Ctx, Request};

fuzz_target!(|input: (bool, &[u8])| {
    let (json_type, body) = input;
    let content_type = if json_type {
        "application/json"
    } else {
        "text/plain"
    };
    let req = Request {
        method: "POST".to_owned(),
        path: "/sessions/cleanup".to_owned(),
        headers: vec![("content-type".to_owned(), content_type.to_owned())],
        body: body.to_vec(),
        ..Request::default()
    };
    let config = Config::default();
    match Ctx::new(&req, &config, 0).optional_json::<Value>() {
        Ok(None) => assert!(body.iter().all(u8::is_ascii_whitespace)),
        Ok(Some(value)) => assert!(json_type && value.is_object()),
        Err(err) => assert!(
            matches!(err.status(), 415 | 422),
            "{} {}",
            err.status(),
            err.kind()
        ),
    }
});
