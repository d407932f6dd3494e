//! The session cookie: its name, reading it from a request, and the `Set-Cookie` values that
//! set and clear it.
//!
//! The cookie is always `HttpOnly` (scripts never see the token), `SameSite=Lax` and
//! `Path=/`. With `secure_cookies` on it is also `Secure` and named with the `__Host-` prefix,
//! which browsers only accept from HTTPS origins without a `Domain`, so a sibling subdomain
//! cannot plant or overwrite it.

use crate::config::{Config, ConfigError};

/// The cookie name without a prefix.
pub const BASE_NAME: &str = "zoe_session";

/// The cookie name under `config`.
///
/// # Errors
///
/// A bad `secure_cookies`.
pub fn name(config: &Config) -> Result<&'static str, ConfigError> {
    Ok(if *config.secure_cookies()? {
        "__Host-zoe_session"
    } else {
        BASE_NAME
    })
}

/// The value of cookie `name` in a `Cookie` header, if present and not empty.
pub fn find<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    find_all(header, name).next()
}

/// Every non-empty value of cookie `name` in a `Cookie` header, in order.
pub fn find_all<'a>(header: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value carrying `token`, kept by the browser for `max_age` seconds.
///
/// # Errors
///
/// A bad `secure_cookies`.
pub fn set(config: &Config, token: &str, max_age: u64) -> Result<String, ConfigError> {
    Ok(format!(
        "{}={token}; Max-Age={max_age}{}",
        name(config)?,
        attributes(config)?
    ))
}

/// A `Set-Cookie` value that deletes the cookie.
///
/// # Errors
///
/// A bad `secure_cookies`.
pub fn clear(config: &Config) -> Result<String, ConfigError> {
    Ok(format!(
        "{}=; Max-Age=0{}",
        name(config)?,
        attributes(config)?
    ))
}

fn attributes(config: &Config) -> Result<&'static str, ConfigError> {
    Ok(if *config.secure_cookies()? {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let header = "theme=dark; zoe_session=abc.def ; other=1";
        assert_eq!(find(header, "zoe_session"), Some("abc.def"));
        assert_eq!(find(header, "missing"), None);
        assert_eq!(find("zoe_session=", "zoe_session"), None);
    }

    #[test]
    fn plain_cookies_are_http_only_lax_and_rooted() {
        let value = set(&Config::default(), "t", 60).unwrap();
        assert_eq!(
            value,
            "zoe_session=t; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn secure_cookies_use_the_host_prefix_and_secure() {
        let config = Config::from_pairs(&[("secure_cookies", "true")]);
        let value = set(&config, "t", 60).unwrap();
        assert!(value.starts_with("__Host-zoe_session=t;"), "{value}");
        assert!(value.ends_with("; Secure"), "{value}");
        assert!(clear(&config).unwrap().contains("Max-Age=0"));
    }
}
