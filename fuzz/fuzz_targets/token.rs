//! Token parsing: any text either fails with `MalformedToken` or is a canonical token that
//! prints back to exactly the input, and never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zoe_session::session::token::{Token, is_session_id};

fuzz_target!(|text: &str| {
    if let Ok(token) = Token::parse(text) {
        assert_eq!(token.expose(), text, "only canonical text parses");
        assert!(is_session_id(&token.id));
        assert_eq!(token.secret_hash().len(), 32);
    }
    if is_session_id(text) {
        assert_eq!(text.len(), 36);
    }
});
