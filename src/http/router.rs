//! The one route table, [`ROUTES`], and matching a request's method and path against it
//! (404 and 405 with `Allow`).

use super::{ApiError, Ctx, Reply, console, handlers, percent_decode};

/// A route handler: path parameters in pattern order.
pub type Handler = fn(&Ctx<'_>, &[String]) -> Result<Reply, ApiError>;

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Literal segments and `{name}` parameters, as in the OpenAPI document.
    pub pattern: &'static str,
    pub handler: Handler,
}

/// Every endpoint of the API.
pub const ROUTES: &[Route] = &[
    route("POST", "/sessions/create", handlers::create),
    route("GET", "/sessions/validate", handlers::validate),
    route("GET", "/sessions/stats", handlers::stats),
    route("GET", "/sessions/users", handlers::list_users),
    route("POST", "/sessions/cleanup", handlers::cleanup),
    route("DELETE", "/sessions", handlers::delete_all),
    route("GET", "/sessions/{session_id}", handlers::get),
    route("DELETE", "/sessions/{session_id}", handlers::delete),
    route(
        "POST",
        "/sessions/{session_id}/activity",
        handlers::activity,
    ),
    route("POST", "/sessions/{session_id}/extend", handlers::extend),
    route("POST", "/sessions/{session_id}/rotate", handlers::rotate),
    route("DELETE", "/sessions/user/{user_id}", handlers::delete_user),
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
    Route {
        method,
        pattern,
        handler,
    }
}

/// The parameters of `pattern` matched against `segments`, or `None`. Parameters never match
/// an empty segment.
fn match_pattern(pattern: &str, segments: &[String]) -> Option<Vec<String>> {
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            params.push(segment.clone());
        } else if part != segment {
            return None;
        }
    }
    Some(params)
}

fn literal_segments(pattern: &str) -> usize {
    pattern.split('/').filter(|p| !p.starts_with('{')).count()
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
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or_else(not_found)?;
    let matching: Vec<(&'static Route, Vec<String>)> = ROUTES
        .iter()
        .filter_map(|r| match_pattern(r.pattern, &segments).map(|p| (r, p)))
        .collect();
    let best = matching
        .iter()
        .map(|(r, _)| literal_segments(r.pattern))
        .max()
        .ok_or_else(not_found)?;
    let mut candidates = matching
        .into_iter()
        .filter(|(r, _)| literal_segments(r.pattern) == best);
    let mut allowed = Vec::new();
    for (route, params) in candidates.by_ref() {
        if route.method == method {
            return Ok((route, params));
        }
        allowed.push(route.method);
    }
    Err(ApiError::MethodNotAllowed(allowed))
}
