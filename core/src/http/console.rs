//! The admin console: one page, its script and its style sheet, built into the component so
//! that Spin and `serve` serve the same bytes and nothing comes from a CDN.
//!
//! The page is static and public; everything it shows comes from the JSON API, which the
//! script calls with the admin key as `Authorization: Bearer` (never a cookie, so the CSRF
//! rules are not involved, and never a URL). The headers make the safe path the only one: the
//! Content-Security-Policy allows scripts and styles from this origin only (no inline code),
//! forbids framing, and requires Trusted Types for DOM sinks, so a stray `innerHTML` with a
//! store value would throw instead of rendering markup.

use super::error::ApiError;
use super::{Ctx, Reply};

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// The Content-Security-Policy of every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'";

/// `GET /admin/`: the page.
pub fn page(_: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    Ok(asset("text/html; charset=utf-8", PAGE))
}

/// `GET /admin/console.js`.
pub fn script(_: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    Ok(asset("text/javascript; charset=utf-8", SCRIPT))
}

/// `GET /admin/console.css`.
pub fn style(_: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    Ok(asset("text/css; charset=utf-8", STYLE))
}

/// `GET /admin`: to `/admin/`, so that the page's relative links (and the API calls, made
/// relative to the page) resolve under whatever prefix the service is mounted at.
pub fn redirect(_: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    let mut reply = secured(Reply {
        status: 308,
        headers: Vec::new(),
        body: Vec::new(),
    });
    reply.set_header("location", "admin/");
    Ok(reply)
}

fn asset(content_type: &str, body: &str) -> Reply {
    secured(Reply {
        status: 200,
        headers: vec![("content-type".into(), content_type.into())],
        body: body.as_bytes().to_vec(),
    })
}

fn secured(mut reply: Reply) -> Reply {
    reply.set_header("content-security-policy", CONTENT_SECURITY_POLICY);
    // For browsers that predate `frame-ancestors`.
    reply.set_header("x-frame-options", "DENY");
    reply.set_header("referrer-policy", "no-referrer");
    reply.set_header("cross-origin-opener-policy", "same-origin");
    reply.set_header("cross-origin-resource-policy", "same-origin");
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy the browser enforces forbids inline code, so the page must have none: no
    /// `<script>` body, no `style=` or `on…=` attribute, no `<style>` element.
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let lower = PAGE.to_ascii_lowercase();
        for forbidden in [
            "<style",
            " style=",
            " onclick=",
            " onload=",
            " onsubmit=",
            "javascript:",
        ] {
            assert!(
                !lower.contains(forbidden),
                "the page contains {forbidden:?}"
            );
        }
        let scripts: Vec<&str> = lower.split("<script").skip(1).collect();
        assert_eq!(scripts.len(), 1, "one external script");
        assert!(scripts[0].starts_with(r#" src="console.js" defer></script>"#));
        // Positive control: the checks above do find what they look for.
        assert!("<p style=\"x\">".contains(" style="));
    }

    /// The script never writes markup and never keeps the key anywhere but the session.
    #[test]
    fn the_script_renders_text_only_and_keeps_the_key_out_of_storage_and_urls() {
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "localStorage",
            "document.cookie",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(forbidden), "console.js uses {forbidden}");
        }
        assert!(SCRIPT.contains("textContent"));
        assert!(SCRIPT.contains("credentials: 'omit'"));
    }

    #[test]
    fn every_console_response_carries_the_security_headers() {
        for reply in [asset("text/html", PAGE), redirect_reply()] {
            assert!(reply.header("content-security-policy").is_some_and(|csp| {
                csp.starts_with("default-src 'self';")
                    && csp.contains("frame-ancestors 'none'")
                    && !csp.contains("unsafe-inline")
            }));
            assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        }
    }

    fn redirect_reply() -> Reply {
        let req = super::super::Request::default();
        let config = crate::config::Config::default();
        redirect(&Ctx::new(&req, &config, 0), &[]).unwrap()
    }
}
