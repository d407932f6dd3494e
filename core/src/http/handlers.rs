//! The handlers of [`super::ROUTES`]: authorization, input, one engine call, JSON out.
//!
//! Request bodies reject unknown fields (`deny_unknown_fields`): a misspelt `timout` must
//! not silently fall back to the default. Endpoints that take no body ignore one.

use super::auth::{self, Access, Caller, Source};
use super::error::ApiError;
use super::{Ctx, Reply, cookies, json, log};
use crate::session::engine::{DEFAULT_USER_PAGE, Issued, MAX_USER_PAGE};
use crate::session::policy::Requirement;
use serde::Deserialize;
use serde_json::{Value, json as j};

/// The OpenAPI 3 document of this API, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Rows a `POST /sessions/cleanup` deletes when the body does not say.
const DEFAULT_CLEANUP_ROWS: u32 = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    user_id: String,
    timeout: Option<u32>,
    metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    additional_seconds: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CleanupBody {
    max_rows: Option<u32>,
}

/// `POST /sessions/create` (admin).
pub fn create(ctx: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    auth::require_admin(ctx)?;
    let body: CreateBody = ctx.json()?;
    let metadata = match body.metadata {
        None | Some(Value::Null) => None,
        Some(value @ Value::Object(_)) => Some(value.to_string()),
        Some(_) => {
            return Err(ApiError::InvalidInput(
                "metadata must be a JSON object".to_owned(),
            ));
        }
    };
    let set_cookie = cookie_requested(ctx)?;
    let issued = ctx
        .engine()?
        .create(&body.user_id, body.timeout, metadata.as_deref())?;
    log::cleanup_failure(ctx.log_level(), ctx.now, &issued);
    issued_reply(ctx, &issued, set_cookie)
}

/// `GET /sessions/{session_id}`.
pub fn get(ctx: &Ctx<'_>, params: &[String]) -> Result<Reply, ApiError> {
    let target = auth::target(ctx, param(params)?, Access::ReadOrRevoke)?;
    let session = ctx.engine()?.get(target.reference())?;
    Ok(Reply::ok(&json::session(&session)))
}

/// `POST /sessions/{session_id}/activity`.
pub fn activity(ctx: &Ctx<'_>, params: &[String]) -> Result<Reply, ApiError> {
    let target = auth::target(ctx, param(params)?, Access::Act)?;
    let session = ctx.engine()?.touch(target.session_ref())?;
    Ok(Reply::ok(&json::session(&session)))
}

/// `POST /sessions/{session_id}/extend` with `{"additional_seconds": n}`.
pub fn extend(ctx: &Ctx<'_>, params: &[String]) -> Result<Reply, ApiError> {
    let target = auth::target(ctx, param(params)?, Access::Act)?;
    let body: ExtendBody = ctx.json()?;
    let session = ctx
        .engine()?
        .extend(target.session_ref(), body.additional_seconds)?;
    Ok(Reply::ok(&json::session(&session)))
}

/// `POST /sessions/{session_id}/rotate`: a new token; the old one is dead at once. By public
/// id only the admin may rotate (the caller's own session resolves to its token): no answer
/// hands a token for a session the caller did not already hold.
pub fn rotate(ctx: &Ctx<'_>, params: &[String]) -> Result<Reply, ApiError> {
    let target = auth::target(ctx, param(params)?, Access::Act)?;
    let set_cookie = cookie_requested(ctx)?;
    let issued = ctx.engine()?.rotate(target.session_ref())?;
    issued_reply(ctx, &issued, set_cookie)
}

/// `DELETE /sessions/{session_id}`. Clears the session cookie when it named this session.
pub fn delete(ctx: &Ctx<'_>, params: &[String]) -> Result<Reply, ApiError> {
    let target = auth::target(ctx, param(params)?, Access::ReadOrRevoke)?;
    ctx.engine()?.invalidate(target.reference())?;
    let mut reply = Reply::ok(&j!({"invalidated": true, "id": target.id()}));
    if cookie_names(ctx, target.id())? {
        reply.set_header("set-cookie", cookies::clear(ctx.config)?);
    }
    Ok(reply)
}

/// `DELETE /sessions/user/{user_id}` (admin or the same user); `?except_current=true` keeps
/// the caller's own session.
pub fn delete_user(ctx: &Ctx<'_>, params: &[String]) -> Result<Reply, ApiError> {
    let user_id = param(params)?;
    let caller = auth::admin_or_user(ctx, user_id)?;
    let except_current = ctx.flag("except_current")?;
    let except = match (&caller, except_current) {
        (_, false) => None,
        (Caller::User { session, .. }, true) => Some(session.id.clone()),
        (Caller::Admin, true) => {
            return Err(ApiError::InvalidInput(format!(
                "except_current needs the caller's session in the {} header or cookie, \
                 not the admin key",
                ctx.config.session_header()?
            )));
        }
    };
    let count = ctx.engine()?.invalidate_user(user_id, except.as_deref())?;
    let mut reply = Reply::ok(&j!({"user_id": user_id, "invalidated": count}));
    let own_cookie = matches!(
        caller,
        Caller::User {
            source: Source::Cookie,
            ..
        }
    );
    if own_cookie && !except_current {
        reply.set_header("set-cookie", cookies::clear(ctx.config)?);
    }
    Ok(reply)
}

/// `DELETE /sessions?all=true` (admin): every session of every user. The query parameter
/// makes the mass logout deliberate; a bare `DELETE /sessions` is refused.
pub fn delete_all(ctx: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    auth::require_admin(ctx)?;
    if !ctx.flag("all")? {
        return Err(ApiError::InvalidInput(
            "DELETE /sessions ends every session of every user; add ?all=true to confirm".into(),
        ));
    }
    let count = ctx.engine()?.invalidate_all()?;
    Ok(Reply::ok(&j!({"invalidated": count})))
}

/// `GET /sessions/user/{user_id}/sessions` (admin or the same user). Never tokens.
pub fn list_user(ctx: &Ctx<'_>, params: &[String]) -> Result<Reply, ApiError> {
    let user_id = param(params)?;
    auth::admin_or_user(ctx, user_id)?;
    let sessions = ctx.engine()?.list_user(user_id)?;
    let list: Vec<Value> = sessions.iter().map(json::session).collect();
    Ok(Reply::ok(
        &j!({"user_id": user_id, "count": list.len(), "sessions": list}),
    ))
}

/// `GET /sessions/stats` (admin).
pub fn stats(ctx: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    auth::require_admin(ctx)?;
    Ok(Reply::ok(&json::stats(&ctx.engine()?.stats()?)))
}

/// `GET /sessions/users?prefix=&after=&limit=` (admin): users with active sessions whose id
/// starts with `prefix`, a page at a time (keyset: `after` is the previous page's
/// `next_after`).
pub fn list_users(ctx: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    auth::require_admin(ctx)?;
    let prefix = ctx.single_query("prefix")?.unwrap_or_default();
    let after = ctx.single_query("after")?;
    let limit = match ctx.single_query("limit")? {
        None => DEFAULT_USER_PAGE,
        Some(text) => text.parse().map_err(|_| {
            ApiError::InvalidInput(format!(
                "limit must be a whole number between 1 and {MAX_USER_PAGE}, got {text:?}"
            ))
        })?,
    };
    let page = ctx.engine()?.list_users(&prefix, after.as_deref(), limit)?;
    Ok(Reply::ok(&json::user_page(&page)))
}

/// `POST /sessions/cleanup` (admin), optional body `{"max_rows": n}`.
pub fn cleanup(ctx: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    auth::require_admin(ctx)?;
    let body: Option<CleanupBody> = ctx.optional_json()?;
    let max_rows = body
        .and_then(|b| b.max_rows)
        .unwrap_or(DEFAULT_CLEANUP_ROWS);
    let deleted = ctx.engine()?.cleanup(max_rows)?;
    Ok(Reply::ok(&j!({"deleted": deleted})))
}

/// `GET /sessions/validate`: the caller's own session (header or cookie); `?role=` and
/// `?permission=` add requirements (403 when unmet).
pub fn validate(ctx: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    let Some((token, _)) = auth::caller_token(ctx)? else {
        return Err(ApiError::unauthorized(format!(
            "send the session token in the {} header or the session cookie",
            ctx.config.session_header()?
        )));
    };
    let mut session = auth::own_session(ctx, &token)?;
    let engine = ctx.engine()?;
    for (name, requirement) in [
        ("role", Requirement::Role as fn(String) -> Requirement),
        ("permission", Requirement::Permission),
    ] {
        if let Some(value) = ctx.single_query(name)? {
            if value.is_empty() {
                return Err(ApiError::InvalidInput(format!(
                    "`{name}` must not be empty"
                )));
            }
            session = engine.authorize(&token, &requirement(value))?;
        }
    }
    let mut body = json::session(&session);
    body["valid"] = Value::Bool(true);
    Ok(Reply::ok(&body))
}

/// `GET /health`'s body, written out when compiled rather than built as a JSON value on every
/// probe (a test holds it equal to `{"status": "ok", "version": …}` serialized).
const HEALTH: &str = concat!(
    r#"{"status":"ok","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}"#
);

/// `GET /health`: no database access, so it answers even when storage is down.
pub fn health(_: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    Ok(Reply::ok_json_text(HEALTH))
}

/// `GET /openapi.json`.
pub fn openapi(_: &Ctx<'_>, _: &[String]) -> Result<Reply, ApiError> {
    Ok(Reply::ok_json_text(OPENAPI))
}

fn param(params: &[String]) -> Result<&str, ApiError> {
    params
        .first()
        .map(String::as_str)
        .ok_or_else(|| ApiError::Internal("route without its path parameter".to_owned()))
}

/// Whether the request's session cookie belongs to the session `id`.
fn cookie_names(ctx: &Ctx<'_>, id: &str) -> Result<bool, ApiError> {
    Ok(
        matches!(auth::caller_token(ctx)?, Some((token, Source::Cookie))
        if token.split_once('.').is_some_and(|(cookie_id, _)| cookie_id == id)),
    )
}

/// `?set_cookie=true`, refused before anything happens when a browser sent the request from
/// another site ([`auth::check_cookie_may_be_set`]).
fn cookie_requested(ctx: &Ctx<'_>) -> Result<bool, ApiError> {
    let set_cookie = ctx.flag("set_cookie")?;
    if set_cookie {
        auth::check_cookie_may_be_set(ctx)?;
    }
    Ok(set_cookie)
}

fn issued_reply(ctx: &Ctx<'_>, issued: &Issued, set_cookie: bool) -> Result<Reply, ApiError> {
    let mut reply = Reply::ok(&json::issued(issued));
    if set_cookie {
        let max_age = issued.session.absolute_expires_at.saturating_sub(ctx.now) / 1000;
        reply.set_header(
            "set-cookie",
            cookies::set(ctx.config, &issued.token.expose(), max_age)?,
        );
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_body_is_the_json_it_stands_for() {
        let value = j!({"status": "ok", "version": env!("CARGO_PKG_VERSION")});
        assert_eq!(HEALTH, value.to_string());
    }
}
