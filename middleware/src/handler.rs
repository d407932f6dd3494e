//! The `wasi:http/handler@0.3.0` export: read the settings once per instance, decide
//! ([`crate::decide`]), then answer the client or hand the request on to the next handler in
//! the chain with its headers rewritten.
//!
//! The request is rebuilt at the WASI level — a new `request` with the new headers and the
//! client's own body stream and trailers moved across — rather than through spin-sdk's `http`
//! conversions: those hand an untouched incoming request back as it came (`take_unstarted`),
//! which would silently drop every header change, and copy a body they do start reading.

use crate::decide::{Decision, decide, key_value_reads_ahead};
use crate::identity;
use crate::instance::{db, now_ms};
use crate::spin_key_value::with_reads_ahead;
use futures::future::join_all;
use spin_sdk::http::{IntoResponse as _, next};
use spin_sdk::wasip3::http::types::{ErrorCode, Fields, Request, Response};
use spin_sdk::wasip3::{wit_bindgen, wit_future};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use zoe_session_core::config::{Config, REQUEST_SETTINGS, SETTINGS};
use zoe_session_core::http::{ApiError, Reply, Request as CoreRequest};

struct Middleware;

// spin-sdk's `#[http_service]` would hand over an `http::Request`; the export is implemented
// directly so that the handler gets the WASI request itself (see the module's doc).
spin_sdk::wasip3::http::service::export!(Middleware);

impl spin_sdk::wasip3::exports::http::handler::Guest for Middleware {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        handle(request).await
    }
}

async fn handle(request: Request) -> Result<Response, ErrorCode> {
    let now = now_ms();
    let config = match config().await {
        Ok(config) => config,
        Err(reply) => return respond(reply),
    };
    let head = head_of(&request);
    let ahead = crate::read_ahead::fetch(&config, key_value_reads_ahead(&head, &config)).await;
    match with_reads_ahead(ahead, || decide(&head, &config, now, db)) {
        Decision::Answer(reply) => respond(reply),
        Decision::Forward(identity) => {
            // A bad session_header was refused by `decide`, so this cannot fail here.
            let token_header = config.session_header().map_or("", String::as_str);
            let forwarded = rewrite(request, token_header, &identity)?;
            let response = next(forwarded).await?;
            response.into_response()
        }
    }
}

thread_local! {
    // Read once per instance: Spin reuses a WASIp3 instance for up to 128 requests, and each
    // variable read is a host call (50-270 us each on Spin, issue 30).
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

/// The instance's settings, every variable read (concurrently) on the first request.
///
/// # Errors
///
/// 503 when the variable provider fails: a setting it could not give must not silently take
/// its default (an empty `protected_paths` would open every path). Nothing is cached then.
async fn config() -> Result<Rc<Config>, Reply> {
    if let Some(config) = CONFIG.with(|slot| slot.borrow().clone()) {
        return Ok(config);
    }
    let names: Vec<&'static str> = SETTINGS
        .iter()
        .map(|s| s.name)
        .chain([REQUEST_SETTINGS.variable])
        .collect();
    let values = join_all(names.iter().map(|name| spin_sdk::variables::get(*name))).await;
    let mut found = HashMap::new();
    for (name, value) in names.into_iter().zip(values) {
        match value {
            Ok(value) => {
                found.insert(name, value);
            }
            Err(
                spin_sdk::variables::Error::Undefined(_)
                | spin_sdk::variables::Error::InvalidName(_),
            ) => {}
            Err(_) => {
                return Err(ApiError::StorageUnavailable(format!(
                    "the variable provider failed for `{name}`"
                ))
                .into_reply());
            }
        }
    }
    let config = Rc::new(Config::from_lookup(move |name| found.get(name).cloned()));
    CONFIG.with(|slot| *slot.borrow_mut() = Some(config.clone()));
    Ok(config)
}

/// The request's head as the core reads it; the body stays with the request.
fn head_of(request: &Request) -> CoreRequest {
    let path_with_query = request
        .get_path_with_query()
        .unwrap_or_else(|| "/".to_owned());
    CoreRequest::from_head(
        method_name(&request.get_method()),
        &path_with_query,
        request.get_headers().copy_all(),
    )
}

fn method_name(method: &spin_sdk::wasip3::http::types::Method) -> String {
    use spin_sdk::wasip3::http::types::Method;
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => return other.clone(),
    }
    .to_owned()
}

/// `request` with every client copy of a reserved header removed and `identity` added, its
/// body and trailers moved across unread.
fn rewrite(
    request: Request,
    token_header: &str,
    identity: &[(&'static str, String)],
) -> Result<Request, ErrorCode> {
    let internal = |what: &str| ErrorCode::InternalError(Some(what.to_owned()));
    let mut entries: Vec<(String, Vec<u8>)> = request
        .get_headers()
        .copy_all()
        .into_iter()
        .filter(|(name, _)| !identity::is_stripped(name, token_header))
        .collect();
    entries.extend(
        identity
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone().into_bytes())),
    );
    let headers =
        Fields::from_list(&entries).map_err(|_| internal("the forwarded headers were refused"))?;
    let (method, scheme, authority, options) = (
        request.get_method(),
        request.get_scheme(),
        request.get_authority(),
        request.get_options(),
    );
    let path = request.get_path_with_query();
    // The next handler's verdict on the body travels back to the client's side.
    let (verdict_tx, verdict_rx) = wit_future::new(|| Ok(()));
    let (body, trailers) = Request::consume_body(request, verdict_rx);
    let (forwarded, transmitted) = Request::new(headers, Some(body), trailers, options);
    wit_bindgen::spawn(async move {
        let _ = verdict_tx.write(transmitted.await).await;
    });
    forwarded
        .set_method(&method)
        .map_err(|()| internal("method"))?;
    forwarded
        .set_scheme(scheme.as_ref())
        .map_err(|()| internal("scheme"))?;
    forwarded
        .set_authority(authority.as_deref())
        .map_err(|()| internal("authority"))?;
    forwarded
        .set_path_with_query(path.as_deref())
        .map_err(|()| internal("path"))?;
    Ok(forwarded)
}

/// The middleware's own answer, whole, with its length.
fn respond(reply: Reply) -> Result<Response, ErrorCode> {
    let mut response = spin_sdk::http::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    let length = reply.body.len();
    response
        .header("content-length", length)
        .body(spin_sdk::http::FullBody::new(bytes::Bytes::from(
            reply.body,
        )))
        .map_err(|err| ErrorCode::InternalError(Some(err.to_string())))?
        .into_response()
}
