//! Cookie headers: looking up the session cookie in any `Cookie` header never panics, and a
//! value it returns is a non-empty piece of that header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zoe_session::http::cookies;

fuzz_target!(|header: &str| {
    for name in [cookies::BASE_NAME, "__Host-zoe_session"] {
        if let Some(value) = cookies::find(header, name) {
            assert!(!value.is_empty());
            assert!(header.contains(value));
        }
    }
});
