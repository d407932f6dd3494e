//! Credentials in headers: any `Authorization`, session header and `Cookie` values give the
//! caller token from the header or else the cookie, and the admin check passes only for
//! `Bearer <the key>`; refusals are 401, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zoe_session::config::Config;
use zoe_session::http::{Ctx, Request, auth};

const ADMIN_KEY: &str = "fuzz-admin-key-0123456789abcdef";

fuzz_target!(|input: (&str, &str, &str)| {
    let (authorization, session_header, cookie) = input;
    let config = Config {
        admin_key: Some(ADMIN_KEY.to_owned()),
        ..Config::default()
    };
    let req = Request {
        method: "POST".to_owned(),
        path: "/sessions/stats".to_owned(),
        headers: vec![
            ("authorization".to_owned(), authorization.to_owned()),
            (
                config.session_header.to_ascii_lowercase(),
                session_header.to_owned(),
            ),
            ("cookie".to_owned(), cookie.to_owned()),
        ],
        ..Request::default()
    };
    let ctx = Ctx::new(&req, &config, 0);
    if let Some((token, source)) = auth::caller_token(&ctx) {
        assert!(!token.is_empty());
        if !session_header.trim().is_empty() {
            assert_eq!(source, auth::Source::Header);
            assert_eq!(token, session_header.trim());
        }
    }
    let exact = authorization
        .trim()
        .split_once(' ')
        .is_some_and(|(scheme, key)| {
            scheme.eq_ignore_ascii_case("bearer") && key.trim() == ADMIN_KEY
        });
    match auth::require_admin(&ctx) {
        Ok(()) => assert!(exact),
        Err(err) => assert!(!exact && err.status() == 401, "{}", err.kind()),
    }
    let _ = auth::check_csrf(&ctx);
});
