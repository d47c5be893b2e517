//! WebDAV (RFC 4918) with the ownCloud extensions, on the paths the clients use:
//! `/remote.php/dav/files/<user>/…`, `/dav/files/<user>/…`, and the legacy `/remote.php/webdav/…`
//! and `/webdav/…`. `<user>` is the login name or the user id (clients use what `cloud/user`
//! returned as `id`).

mod conditions;
mod copymove;
mod lock;
mod propfind;
mod props;
mod read;
mod write;

use crate::auth::authenticate;
use crate::util::blocking;
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use hearth_domain::{CoreError, Principal, StorageProvider};
use hearth_types::{RelPath, SpaceId, encode_path, encode_segment};
use http::{Method, StatusCode};
use std::net::SocketAddr;

/// A request's target inside a user's personal space.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The href prefix of the space root as the client addressed it (no trailing slash).
    pub base: String,
    /// The space.
    pub space: SpaceId,
    /// The path inside it.
    pub path: RelPath,
}

impl Target {
    /// The href of `path` (percent-encoded), with a trailing slash for folders.
    pub fn href(&self, path: &RelPath, is_dir: bool) -> String {
        let mut h = format!("{}/{}", self.base, encode_path(path));
        if is_dir && !path.is_root() {
            h.push('/');
        }
        h
    }
}

/// Which DAV root a URL path is under: (prefix up to the user segment, user segment or None for the
/// legacy roots, the rest).
fn split_dav_path(raw: &str) -> Option<(&'static str, Option<&str>, &str)> {
    for prefix in ["/remote.php/dav/files/", "/dav/files/"] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            let (user, tail) = rest.split_once('/').unwrap_or((rest, ""));
            return Some((prefix, Some(user), tail));
        }
    }
    for prefix in ["/remote.php/webdav", "/webdav"] {
        if let Some(rest) = raw.strip_prefix(prefix)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return Some((prefix, None, rest));
        }
    }
    None
}

/// Resolves a raw (percent-encoded) URL path to a target in the caller's space.
pub(crate) fn resolve_target(
    state: &AppState,
    who: &Principal,
    raw: &str,
) -> Result<Target, ApiError> {
    let (prefix, user, tail) = split_dav_path(raw)
        .ok_or_else(|| ApiError(CoreError::NotFound("no such WebDAV endpoint".into())))?;
    let base = match user {
        None => prefix.to_owned(),
        Some(seg) => {
            let decoded = percent_decode(seg);
            if seg.is_empty() {
                return Err(ApiError(CoreError::NotFound(
                    "no user in the WebDAV path".into(),
                )));
            }
            if decoded != who.username && decoded != who.id.to_string() {
                // Other users' spaces are invisible until sharing exists: a plain 404.
                return Err(ApiError(CoreError::NotFound(format!("no space {decoded}"))));
            }
            format!("{prefix}{}", encode_segment(&decoded))
        }
    };
    let path = RelPath::from_url_path(tail).map_err(|e| ApiError(CoreError::from(e)))?;
    let space = state.core.files.personal_space(who.id).map_err(ApiError)?;
    Ok(Target { base, space, path })
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

const ALLOW: &str =
    "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK, REPORT";

/// Entry point for every request the router has no explicit route for.
pub(crate) async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let raw = req.uri().path().to_owned();
    if split_dav_path(&raw).is_none() {
        return ApiError(CoreError::NotFound(format!("nothing at {raw}"))).into_response();
    }
    if req.method() == Method::OPTIONS {
        return options();
    }
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let who = match authenticate(&state, req.headers(), addr).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let target = match resolve_target(&state, &who, &raw) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let result = match req.method().as_str() {
        "GET" => read::get(&state, &who, &target, req, true).await,
        "HEAD" => read::get(&state, &who, &target, req, false).await,
        "PUT" => write::put(&state, &who, &target, req).await,
        "MKCOL" => write::mkcol(&state, &who, &target, req).await,
        "DELETE" => write::delete(&state, &who, &target, req).await,
        "COPY" => copymove::copy_or_move(&state, &who, &target, req, false).await,
        "MOVE" => copymove::copy_or_move(&state, &who, &target, req, true).await,
        "PROPFIND" => propfind::propfind(&state, &who, &target, req).await,
        "PROPPATCH" => props::proppatch(&state, &who, &target, req).await,
        "REPORT" => propfind::report(&state, &who, &target, req).await,
        "LOCK" => lock::lock(&state, &who, &target, req).await,
        "UNLOCK" => lock::unlock(&state, &who, &target, req).await,
        other => return method_not_allowed(other),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// 405 with the methods we do support.
fn method_not_allowed(method: &str) -> Response {
    let mut r = ApiError(CoreError::BadRequest(format!(
        "method {method} is not supported here"
    )))
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r.headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static(ALLOW));
    r
}

/// OPTIONS (RFC 4918 §9.1 / §18): compliance classes 1 and 2 (locking), and the methods.
fn options() -> Response {
    (
        StatusCode::OK,
        [
            ("DAV", "1, 2"),
            ("Allow", ALLOW),
            ("MS-Author-Via", "DAV"),
            ("Accept-Ranges", "bytes"),
            ("Content-Length", "0"),
        ],
    )
        .into_response()
}

/// Reads a small request body (XML) with the DAV size limit.
pub(crate) async fn small_body(req: Request) -> Result<bytes::Bytes, ApiError> {
    let limit = hearth_dav_proto::MAX_BODY_BYTES;
    match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => Ok(b),
        Err(_) => Err(crate::util::bad(format!(
            "the request body is larger than {limit} bytes or broken"
        ))),
    }
}

/// Runs a blocking service call on the request's target: `f` gets the services, the caller, and
/// the target's space and path.
pub(crate) async fn on_target<T: Send + 'static>(
    state: &AppState,
    who: &Principal,
    t: &Target,
    f: impl FnOnce(&hearth_domain::Core, &Principal, SpaceId, &RelPath) -> Result<T, CoreError>
    + Send
    + 'static,
) -> Result<T, ApiError> {
    let (core, who, space, path) = (state.core.clone(), who.clone(), t.space, t.path.clone());
    blocking(move || f(&core, &who, space, &path)).await
}

/// Stat that maps to `Option`.
pub(crate) async fn try_stat(
    state: &AppState,
    who: &Principal,
    t: &Target,
) -> Result<Option<hearth_domain::ResourceInfo>, ApiError> {
    match on_target(state, who, t, |c, w, space, path| {
        c.files.stat(w, space, path)
    })
    .await
    {
        Ok(i) => Ok(Some(i)),
        Err(ApiError(CoreError::NotFound(_))) => Ok(None),
        Err(e) => Err(e),
    }
}
