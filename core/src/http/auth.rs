//! Who may call what: the admin key, the caller's own session (header or cookie), the CSRF
//! check for cookie-authenticated state changes, and the HTTPS requirement.
//!
//! The rules of DESIGN.md's table, in one place:
//! - admin-only endpoints need `Authorization: Bearer <admin_key>`;
//! - a full token in the path is its own proof (possession);
//! - a public id in the path, or a user id, needs the admin key or a valid session of the
//!   same user in the session header or cookie.

use super::error::ApiError;
use super::{Ctx, cookies};
use crate::session::audit::Event;
use crate::session::engine::{EngineError, Session, SessionRef};
use crate::session::token;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Where the caller's own session token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Cookie,
}

/// The caller's own session token, from the session header or else the cookie.
///
/// # Errors
///
/// 400 when the credential is ambiguous: the session header sent twice, or the session cookie
/// named twice (a proxy in front may read the other copy than we do).
pub fn caller_token(ctx: &Ctx<'_>) -> Result<Option<(String, Source)>, ApiError> {
    let header = ctx.config.session_header()?;
    if let Some(value) = single_header(ctx, header)? {
        let value = value.trim();
        if !value.is_empty() {
            return Ok(Some((value.to_owned(), Source::Header)));
        }
    }
    // The cookie's name depends on a setting: read it only when there are cookies.
    if ctx.req.headers_named("cookie").next().is_none() {
        return Ok(None);
    }
    let name = cookies::name(ctx.config)?;
    let mut found = ctx
        .req
        .headers_named("cookie")
        .flat_map(|header| cookies::find_all(header, name));
    let first = found.next();
    if found.next().is_some() {
        return Err(ApiError::ambiguous(format!(
            "the session cookie `{name}` is sent more than once"
        )));
    }
    Ok(first.map(|value| (value.to_owned(), Source::Cookie)))
}

/// The one value of header `name`, refusing a header that is sent more than once.
fn single_header<'a>(ctx: &Ctx<'a>, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = ctx
        .req
        .headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::ambiguous(format!(
            "the {name} header is sent more than once"
        )));
    }
    Ok(first)
}

/// The bearer credential of the `Authorization` header, if any.
fn bearer<'a>(ctx: &Ctx<'a>) -> Option<Result<&'a str, ApiError>> {
    let header = match single_header(ctx, "authorization") {
        Ok(header) => header?,
        Err(err) => return Some(Err(err)),
    };
    Some(match header.trim().split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => Ok(key.trim()),
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <admin key>`",
        )),
    })
}

/// Checks a presented admin key. Both sides are hashed first so the comparison is constant
/// time in the key's length as well as its content.
fn check_admin_key(ctx: &Ctx<'_>, presented: &str) -> Result<(), ApiError> {
    let Some(configured) = ctx.config.admin_key()? else {
        return Err(ApiError::AdminKeyMissing);
    };
    let equal: bool = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(configured.expose().as_bytes()))
        .into();
    if equal {
        Ok(())
    } else {
        ctx.events.record(Event::AdminAuthFailed {
            reason: "wrong_key",
        });
        Err(ApiError::Unauthorized {
            kind: "invalid_admin_key",
            detail: "the admin key is not valid".to_owned(),
        })
    }
}

/// Requires the admin key, and a configuration without a bad setting: the admin's routes
/// are where an operator learns of one that no other route needed yet.
///
/// # Errors
///
/// 503 when none is configured, 401 when it is missing or wrong, 500 naming the first bad
/// setting.
pub fn require_admin(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    if ctx.config.admin_key()?.is_none() {
        return Err(ApiError::AdminKeyMissing);
    }
    match bearer(ctx) {
        None => {
            ctx.events
                .record(Event::AdminAuthFailed { reason: "missing" });
            Err(ApiError::unauthorized(
                "this endpoint needs the admin key as `Authorization: Bearer <admin key>`",
            ))
        }
        Some(key) => check_admin_key(ctx, key?),
    }?;
    Ok(ctx.config.check_all()?)
}

/// Who the caller is, for endpoints open to the admin or to a session's own user.
#[derive(Debug)]
pub enum Caller {
    Admin,
    User { session: Session, source: Source },
}

/// Identifies the caller by admin key or by their own session. A bearer credential, when
/// present, decides alone: a wrong key is refused even if a session is also sent.
///
/// # Errors
///
/// 401 for no credentials or an invalid, expired or unknown session; 503 for a bearer key
/// while none is configured; 403 for a cookie-authenticated state change failing the CSRF
/// check.
pub fn caller(ctx: &Ctx<'_>) -> Result<Caller, ApiError> {
    if let Some(key) = bearer(ctx) {
        check_admin_key(ctx, key?)?;
        ctx.config.check_all()?;
        return Ok(Caller::Admin);
    }
    let Some((token, source)) = caller_token(ctx)? else {
        return Err(ApiError::unauthorized(format!(
            "send a session token in the {} header (or the session cookie), or the admin key",
            ctx.config.session_header()?
        )));
    };
    if source == Source::Cookie {
        check_csrf(ctx)?;
    }
    let session = own_session(ctx, &token)?;
    Ok(Caller::User { session, source })
}

/// Validates the caller's own token. Any failure is a 401: the caller's credential is bad,
/// whether the session is unknown, expired or the token tampered.
pub fn own_session(ctx: &Ctx<'_>, token: &str) -> Result<Session, ApiError> {
    ctx.engine()?.validate(token).map_err(|err| match err {
        EngineError::NotFound => ApiError::Unauthorized {
            kind: "invalid_session",
            detail: "the session does not exist (it was invalidated or has expired)".to_owned(),
        },
        other => ApiError::from(other),
    })
}

/// Requires the admin, or a session of `user_id`. Returns the caller.
pub fn admin_or_user(ctx: &Ctx<'_>, user_id: &str) -> Result<Caller, ApiError> {
    let caller = caller(ctx)?;
    if let Caller::User { session, .. } = &caller
        && session.user_id != user_id
    {
        return Err(ApiError::forbidden(
            "forbidden",
            "a session may only act on its own user's sessions",
        ));
    }
    Ok(caller)
}

/// What a route does to the session named in its path: DESIGN.md lets a sibling session
/// (same user, named by public id) read or revoke it — "sign out that device" — and nothing
/// else, because roles live in each session's metadata and acting on a more privileged
/// sibling would let a restricted session climb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `GET` and `DELETE`: the admin, the token's holder, or any session of the same user.
    ReadOrRevoke,
    /// `activity`, `extend`, `rotate`: the admin or the token's holder only.
    Act,
}

/// A session named in the path.
#[derive(Debug)]
pub enum Target {
    /// A full token: possession is the proof. Also the caller's own session named by its
    /// public id, resolved to the caller's own token.
    Token(String),
    /// A public id, after the caller was found to be the admin or (for
    /// [`Access::ReadOrRevoke`]) a session of the same user.
    Id(String),
}

impl Target {
    /// The public id of the session.
    pub fn id(&self) -> &str {
        match self {
            Self::Token(token) => token.split_once('.').map_or(token.as_str(), |(id, _)| id),
            Self::Id(id) => id,
        }
    }

    /// What the engine acts on: the token, or the id the caller was authorized for.
    pub fn session_ref(&self) -> SessionRef<'_> {
        match self {
            Self::Token(token) => SessionRef::Token(token),
            Self::Id(id) => SessionRef::TrustedId(id),
        }
    }

    /// The token or id, as the engine takes it.
    pub fn reference(&self) -> &str {
        match self {
            Self::Token(text) | Self::Id(text) => text,
        }
    }
}

/// Resolves `{session_id}` and checks the caller may act on it with `access`.
///
/// # Errors
///
/// 404 for something that is neither a token nor a public id, or an unknown id; 401/403 from
/// [`caller`]; 403 when the caller's session belongs to another user, or is a sibling asking
/// for more than [`Access::ReadOrRevoke`].
pub fn target(ctx: &Ctx<'_>, value: &str, access: Access) -> Result<Target, ApiError> {
    if value.contains('.') {
        return Ok(Target::Token(value.to_owned()));
    }
    if !token::is_session_id(value) {
        return Err(ApiError::NotFound(
            "no session has this id (expected a token or a public session id)".to_owned(),
        ));
    }
    let Caller::User { session, .. } = caller(ctx)? else {
        return Ok(Target::Id(value.to_owned()));
    };
    if session.id == value {
        // The caller's own session: act with the token it proved it holds, so the engine
        // checks the secret again in the same statement that changes the row.
        let (token, _) = caller_token(ctx)?
            .ok_or_else(|| ApiError::Internal("caller without a token".to_owned()))?;
        return Ok(Target::Token(token));
    }
    let target = ctx.engine()?.get(value)?;
    if target.user_id != session.user_id {
        return Err(ApiError::forbidden(
            "forbidden",
            "a session may only act on its own user's sessions",
        ));
    }
    match access {
        Access::ReadOrRevoke => Ok(Target::Id(value.to_owned())),
        Access::Act => Err(ApiError::forbidden(
            "forbidden",
            "another session of the same user may only be read or revoked by public id; \
             activity, extend and rotate need that session's own token or the admin key",
        )),
    }
}

/// What a browser says of where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// Our own origin, or one configured in `allowed_origins`.
    Trusted,
    /// Another site: `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that is
    /// neither ours nor configured.
    Cross,
    /// Neither header: not a browser (a server, a CLI), or one too old to say.
    Unknown,
}

/// Where the request came from, as the browser tells it. An `Origin` listed in
/// `allowed_origins` is trusted first (a configured front end on another host); otherwise
/// `Sec-Fetch-Site` decides, then `Origin` against our own origin.
///
/// # Errors
///
/// A bad `allowed_origins` or `trusted_proxies`, read only when a browser header is present.
pub fn site(ctx: &Ctx<'_>) -> Result<Site, ApiError> {
    let origin = ctx.req.header("origin").map(str::trim);
    let fetch_site = ctx.req.header("sec-fetch-site").map(str::trim);
    if origin.is_none() && fetch_site.is_none() {
        return Ok(Site::Unknown);
    }
    if let Some(origin) = origin
        && ctx
            .config
            .allowed_origins()?
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    {
        return Ok(Site::Trusted);
    }
    let trusted = match (fetch_site, origin) {
        (Some(site), _) => matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => ctx
            .origin()?
            .is_some_and(|ours| ours.eq_ignore_ascii_case(origin)),
        (None, None) => false,
    };
    Ok(if trusted { Site::Trusted } else { Site::Cross })
}

/// CSRF defence for cookie-authenticated state changes: the browser must say the request is
/// same-origin (`Sec-Fetch-Site`), or send an `Origin` equal to ours or listed in
/// `allowed_origins`, or the client must send the custom `X-Requested-With` header, which a
/// cross-site form cannot.
pub fn check_csrf(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    if !matches!(ctx.req.method.as_str(), "POST" | "DELETE" | "PUT" | "PATCH") {
        return Ok(());
    }
    let refuse = |why: &str| Err(ApiError::forbidden("csrf", why.to_owned()));
    match site(ctx)? {
        Site::Trusted => Ok(()),
        Site::Cross => {
            refuse("cross-site request refused: a session cookie may only be used from this site")
        }
        Site::Unknown if ctx.req.header("x-requested-with").is_some() => Ok(()),
        Site::Unknown => refuse(
            "a state-changing request authenticated by cookie needs an Origin or Sec-Fetch-Site \
             header, or X-Requested-With",
        ),
    }
}

/// Login CSRF and session fixation: a request a browser marks as cross-site never gets an
/// answer that sets the session cookie, whatever carried its credential (a cross-site form
/// posting an attacker's token in the path to `rotate?set_cookie=true` would otherwise sign
/// the victim's browser in as the attacker). Checked before the handler acts. Clients that
/// send neither browser header (servers, CLIs) are not browsers and are not refused.
///
/// # Errors
///
/// 403 `csrf` for a cross-site request; a bad `allowed_origins`.
pub fn check_cookie_may_be_set(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    match site(ctx)? {
        Site::Cross => Err(ApiError::forbidden(
            "csrf",
            "cross-site request refused: the session cookie is only set for requests from \
             this site (or one listed in allowed_origins)"
                .to_owned(),
        )),
        Site::Trusted | Site::Unknown => Ok(()),
    }
}
