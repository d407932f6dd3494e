//! The one route table, [`ROUTES`], and matching a request's method and path against it
//! (404 and 405 with `Allow`).

use super::{ApiError, Ctx, Reply, console, handlers, percent_decoded};
use std::borrow::Cow;

/// A route handler: path parameters in pattern order.
pub type Handler = fn(&Ctx<'_>, &[String]) -> Result<Reply, ApiError>;

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Literal segments and `{name}` parameters, as in the OpenAPI document.
    pub pattern: &'static str,
    pub handler: Handler,
    /// How many segments the pattern has, and how many of them are literal: worked out when
    /// the table is compiled, so matching a request skips patterns of another length without
    /// looking at them (every request is matched against the table, on a fresh instance).
    pub segments: usize,
    pub literals: usize,
    /// The query parameters the route reads; any other is refused (400), so that a misspelt
    /// filter (`?permissions=` for `?permission=`) never fails open.
    pub query: &'static [&'static str],
}

/// Every endpoint of the API.
pub const ROUTES: &[Route] = &[
    route("POST", "/sessions/create", handlers::create).reading(&["set_cookie"]),
    route("GET", "/sessions/validate", handlers::validate).reading(&["role", "permission"]),
    route("GET", "/sessions/stats", handlers::stats),
    route("GET", "/sessions/users", handlers::list_users).reading(&["prefix", "after", "limit"]),
    route("POST", "/sessions/cleanup", handlers::cleanup),
    route("DELETE", "/sessions", handlers::delete_all).reading(&["all"]),
    route("GET", "/sessions/{session_id}", handlers::get),
    route("DELETE", "/sessions/{session_id}", handlers::delete),
    route(
        "POST",
        "/sessions/{session_id}/activity",
        handlers::activity,
    ),
    route("POST", "/sessions/{session_id}/extend", handlers::extend),
    route("POST", "/sessions/{session_id}/rotate", handlers::rotate).reading(&["set_cookie"]),
    route("DELETE", "/sessions/user/{user_id}", handlers::delete_user).reading(&["except_current"]),
    route(
        "GET",
        "/sessions/user/{user_id}/sessions",
        handlers::list_user,
    ),
    route("GET", "/health", handlers::health),
    route("GET", "/openapi.json", handlers::openapi),
    route("GET", "/admin", console::redirect),
    route("GET", "/admin/", console::page),
    route("GET", "/admin/console.js", console::script),
    route("GET", "/admin/console.css", console::style),
];

const fn route(method: &'static str, pattern: &'static str, handler: Handler) -> Route {
    let (segments, literals) = shape(pattern);
    Route {
        method,
        pattern,
        handler,
        segments,
        literals,
        query: &[],
    }
}

impl Route {
    /// The route with the query parameters it reads.
    const fn reading(self, query: &'static [&'static str]) -> Self {
        Self { query, ..self }
    }

    /// Refuses a query parameter the route does not read (an empty query, and empty pieces
    /// between `&`s, are fine).
    ///
    /// # Errors
    ///
    /// 400 `unknown_parameter` naming the first unknown parameter and the ones the route
    /// takes.
    pub fn check_query(&self, query: &str) -> Result<(), ApiError> {
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let key = pair.split_once('=').map_or(pair, |(key, _)| key);
            let known = percent_decoded(&key.replace('+', " "))
                .is_some_and(|key| self.query.contains(&key.as_ref()));
            if !known {
                let shown: String = key.chars().take(64).collect();
                let takes = if self.query.is_empty() {
                    "takes no query parameters".to_owned()
                } else {
                    format!("takes only {}", self.query.join(", "))
                };
                return Err(ApiError::BadRequest {
                    kind: "unknown_parameter",
                    detail: format!(
                        "unknown query parameter {shown:?}: {} {} {takes}",
                        self.method, self.pattern
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The segments of `pattern` (`/a/{b}` has two) and how many of them are literal.
const fn shape(pattern: &str) -> (usize, usize) {
    let bytes = pattern.as_bytes();
    let (mut segments, mut parameters, mut i) = (0, 0, 0);
    while i < bytes.len() {
        if bytes[i] == b'/' {
            segments += 1;
            if i + 1 < bytes.len() && bytes[i + 1] == b'{' {
                parameters += 1;
            }
        }
        i += 1;
    }
    (segments, segments - parameters)
}

/// Every literal segment of the route table, for logging paths (`redact::redact_path`): a test holds
/// it equal to the words of [`ROUTES`].
pub const ROUTE_WORDS: &[&str] = &[
    "sessions",
    "create",
    "validate",
    "stats",
    "users",
    "cleanup",
    "activity",
    "extend",
    "rotate",
    "user",
    "health",
    "openapi.json",
    "admin",
    "console.js",
    "console.css",
];

/// Whether `pattern` has the shape of `segments`: as many segments, the literal ones equal.
/// Parameters never match an empty segment.
fn fits(pattern: &str, segments: &[Cow<'_, str>]) -> bool {
    let mut parts = pattern.trim_start_matches('/').split('/');
    let shaped = segments.iter().all(|segment| match parts.next() {
        Some(part) if part.starts_with('{') => !segment.is_empty(),
        Some(part) => part == segment,
        None => false,
    });
    shaped && parts.next().is_none()
}

/// The parameters of `pattern`, one that [`fits`], taken from `segments` in pattern order.
fn parameters(pattern: &str, segments: &[Cow<'_, str>]) -> Vec<String> {
    pattern
        .trim_start_matches('/')
        .split('/')
        .zip(segments)
        .filter(|(part, _)| part.starts_with('{'))
        .map(|(_, segment)| segment.clone().into_owned())
        .collect()
}

/// Finds the route for `method` and `path`. Among patterns matching the path, the most
/// literal ones win, so `/sessions/stats` is never read as a session id.
///
/// # Errors
///
/// 404 when no pattern matches the path; 405 (with the allowed methods) when only the
/// method is wrong.
pub fn find_route(method: &str, path: &str) -> Result<(&'static Route, Vec<String>), ApiError> {
    // The path is not echoed: it may hold a credential the client put in the wrong place.
    let not_found = || ApiError::NotFound("no endpoint matches this path".to_owned());
    let segments: Vec<Cow<'_, str>> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decoded)
        .collect::<Option<_>>()
        .ok_or_else(not_found)?;
    // One pass over the table, keeping the most literal patterns seen so far: the first of
    // them for `method`, and the methods of the others for a 405's `Allow`. Every request
    // goes through here, so besides the segment list it allocates only the answer (the
    // winner's parameters, or the `Allow` list).
    let mut best: Option<usize> = None;
    let mut chosen: Option<&'static Route> = None;
    let mut allowed = Vec::new();
    let candidates = ROUTES
        .iter()
        .filter(|r| r.segments == segments.len() && fits(r.pattern, &segments));
    for route in candidates {
        let literals = route.literals;
        match best {
            Some(best) if literals < best => continue,
            Some(best) if literals == best => {}
            _ => {
                best = Some(literals);
                chosen = None;
                allowed.clear();
            }
        }
        if route.method == method {
            chosen.get_or_insert(route);
        } else {
            allowed.push(route.method);
        }
    }
    match (chosen, best) {
        (Some(route), _) => Ok((route, parameters(route.pattern, &segments))),
        (None, Some(_)) => Err(ApiError::MethodNotAllowed(allowed)),
        (None, None) => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn each_route_knows_its_shape() {
        for route in ROUTES {
            let parts: Vec<&str> = route.pattern.trim_start_matches('/').split('/').collect();
            let literals = parts.iter().filter(|p| !p.starts_with('{')).count();
            assert_eq!(
                (route.segments, route.literals),
                (parts.len(), literals),
                "{}",
                route.pattern
            );
        }
    }

    #[test]
    fn the_route_words_are_the_literal_segments_of_the_table() {
        let words: BTreeSet<&str> = ROUTES
            .iter()
            .flat_map(|r| r.pattern.split('/'))
            .filter(|p| !p.is_empty() && !p.starts_with('{'))
            .collect();
        assert_eq!(words, ROUTE_WORDS.iter().copied().collect::<BTreeSet<_>>());
        assert_eq!(words.len(), ROUTE_WORDS.len(), "no word twice");
    }
}
