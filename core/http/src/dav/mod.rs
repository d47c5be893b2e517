//! WebDAV (RFC 4918) with the ownCloud extensions, on the paths the clients use:
//! `/remote.php/dav/files/<user>/…`, `/dav/files/<user>/…`, the spaces form
//! `/remote.php/dav/spaces/<storage>$<space>/…`, and the legacy `/remote.php/webdav/…` and
//! `/webdav/…`. `<user>` is the login name or the user id (clients use what `cloud/user` returned
//! as `id`). Beside the files: the trash bin (`trash-bin/`), versions (`meta/`) and chunked
//! uploads (`uploads/`).

mod chunks;
pub(crate) mod conditions;
mod copymove;
mod lock;
mod meta;
mod propfind;
mod props;
pub(crate) mod read;
mod trash;
mod write;
pub(crate) use write::{SMALL_BODY, stage_small};

use crate::auth::authenticate;
use crate::util::blocking;
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use hearth_domain::{CoreError, Principal, StorageProvider};
use hearth_types::{RelPath, ResourceId, SpaceId, encode_path, encode_segment};
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

/// The DAV endpoints, by URL prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    /// Files of a space: (prefix up to the owner/space segment, that segment or `None` for the
    /// legacy roots, the rest).
    Files(&'static str, Option<&'a str>, &'a str),
    /// Files addressed by space id: (prefix, `<storage>$<space>`, the rest).
    Space(&'static str, &'a str, &'a str),
    /// The trash bin: (prefix, user or space segment, the rest).
    Trash(&'static str, &'a str, &'a str),
    /// Versions and metadata by file id: (file id, the rest).
    Meta(&'a str, &'a str),
    /// Chunked uploads: (user segment, the rest).
    Uploads(&'a str, &'a str),
}

fn first_segment(rest: &str) -> (&str, &str) {
    rest.split_once('/').unwrap_or((rest, ""))
}

/// Classifies a raw URL path.
fn endpoint(raw: &str) -> Option<Endpoint<'_>> {
    for dav in ["/remote.php/dav/", "/dav/"] {
        let Some(rest) = raw.strip_prefix(dav) else {
            continue;
        };
        let files = if dav == "/dav/" {
            "/dav/files/"
        } else {
            "/remote.php/dav/files/"
        };
        let spaces = if dav == "/dav/" {
            "/dav/spaces/"
        } else {
            "/remote.php/dav/spaces/"
        };
        if let Some(r) = rest.strip_prefix("files/") {
            let (user, tail) = first_segment(r);
            return Some(Endpoint::Files(files, Some(user), tail));
        }
        if let Some(r) = rest.strip_prefix("spaces/trash-bin/") {
            let (space, tail) = first_segment(r);
            let prefix = if dav == "/dav/" {
                "/dav/spaces/trash-bin/"
            } else {
                "/remote.php/dav/spaces/trash-bin/"
            };
            return Some(Endpoint::Trash(prefix, space, tail));
        }
        if let Some(r) = rest.strip_prefix("spaces/") {
            let (space, tail) = first_segment(r);
            return Some(Endpoint::Space(spaces, space, tail));
        }
        if let Some(r) = rest.strip_prefix("trash-bin/") {
            let (user, tail) = first_segment(r);
            let prefix = if dav == "/dav/" {
                "/dav/trash-bin/"
            } else {
                "/remote.php/dav/trash-bin/"
            };
            return Some(Endpoint::Trash(prefix, user, tail));
        }
        if let Some(r) = rest.strip_prefix("meta/") {
            let (id, tail) = first_segment(r);
            return Some(Endpoint::Meta(id, tail));
        }
        if let Some(r) = rest.strip_prefix("uploads/") {
            let (user, tail) = first_segment(r);
            return Some(Endpoint::Uploads(user, tail));
        }
    }
    for prefix in ["/remote.php/webdav", "/webdav"] {
        if let Some(rest) = raw.strip_prefix(prefix)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return Some(Endpoint::Files(prefix, None, rest));
        }
    }
    None
}

/// Checks that a URL's user segment names the caller; returns the canonical (encoded) segment.
pub(crate) fn own_user_segment(who: &Principal, seg: &str) -> Result<String, ApiError> {
    let decoded = percent_decode(seg);
    if decoded.is_empty() {
        return Err(ApiError(CoreError::NotFound(
            "no user in the WebDAV path".into(),
        )));
    }
    if decoded != who.username && decoded != who.id.to_string() {
        // Other users' spaces are invisible until sharing exists: a plain 404.
        return Err(ApiError(CoreError::NotFound(format!("no space {decoded}"))));
    }
    Ok(encode_segment(&decoded))
}

/// Checks that a `<storage>$<space>` segment names one of the caller's spaces.
pub(crate) fn own_space_segment(
    state: &AppState,
    who: &Principal,
    seg: &str,
) -> Result<SpaceId, ApiError> {
    let not_found = || ApiError(CoreError::NotFound(format!("no space {seg}")));
    let id: ResourceId = percent_decode(seg).parse().map_err(|_| not_found())?;
    let mine = state.core.files.personal_space(who.id).map_err(ApiError)?;
    if id.storage != state.core.files.storage_id() || id.space != mine {
        return Err(not_found());
    }
    Ok(mine)
}

/// Resolves a raw (percent-encoded) URL path to a target in the caller's space.
pub(crate) fn resolve_target(
    state: &AppState,
    who: &Principal,
    raw: &str,
) -> Result<Target, ApiError> {
    let (base, tail, space) = match endpoint(raw) {
        // The space's existence is checked by the operation itself (no read transaction here).
        Some(Endpoint::Files(prefix, None, tail)) => (
            prefix.to_owned(),
            tail,
            state.core.files.personal_space_id(who.id),
        ),
        Some(Endpoint::Files(prefix, Some(seg), tail)) => {
            let seg = own_user_segment(who, seg)?;
            (
                format!("{prefix}{seg}"),
                tail,
                state.core.files.personal_space_id(who.id),
            )
        }
        Some(Endpoint::Space(prefix, seg, tail)) => {
            let space = own_space_segment(state, who, seg)?;
            (
                format!("{prefix}{}", encode_segment(&percent_decode(seg))),
                tail,
                space,
            )
        }
        _ => return Err(ApiError(CoreError::NotFound("not a files endpoint".into()))),
    };
    let path = RelPath::from_url_path(tail).map_err(|e| ApiError(CoreError::from(e)))?;
    Ok(Target { base, space, path })
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

const ALLOW: &str = "OPTIONS, GET, HEAD, POST, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK, REPORT";

/// Entry point for every request the router has no explicit route for: the DAV endpoints.
pub(crate) async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let raw = req.uri().path().to_owned();
    let Some(ep) = endpoint(&raw) else {
        return ApiError(CoreError::NotFound(format!("nothing at {raw}"))).into_response();
    };
    if req.method() == Method::OPTIONS {
        let addr = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        return crate::tus::with_max_size(&state, req.headers(), addr, options()).await;
    }
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let who = match authenticate(&state, req.headers(), addr).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let result = match ep {
        Endpoint::Trash(prefix, seg, tail) => {
            trash::handle(&state, &who, prefix, seg, tail, req).await
        }
        Endpoint::Meta(id, tail) => meta::handle(&state, &who, id, tail, req).await,
        Endpoint::Uploads(seg, tail) => chunks::handle(&state, &who, seg, tail, req).await,
        Endpoint::Files(..) | Endpoint::Space(..) => files(&state, &who, &raw, req).await,
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The methods on files and folders.
async fn files(
    state: &AppState,
    who: &Principal,
    raw: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let target = resolve_target(state, who, raw)?;
    match req.method().as_str() {
        "GET" => read::get(state, who, &target, req, true).await,
        "HEAD" => read::get(state, who, &target, req, false).await,
        "PUT" => write::put(state, who, &target, req).await,
        "MKCOL" => write::mkcol(state, who, &target, req).await,
        "DELETE" => write::delete(state, who, &target, req).await,
        "COPY" => copymove::copy_or_move(state, who, &target, req, false).await,
        "MOVE" => copymove::copy_or_move(state, who, &target, req, true).await,
        "PROPFIND" => propfind::propfind(state, who, &target, req).await,
        "PROPPATCH" => props::proppatch(state, who, &target, req).await,
        "REPORT" => propfind::report(state, who, &target, req).await,
        "LOCK" => lock::lock(state, who, &target, req).await,
        "UNLOCK" => lock::unlock(state, who, &target, req).await,
        "POST" => crate::tus::create(state, who, &target, req).await,
        other => Ok(method_not_allowed(other)),
    }
}

/// 405 with the methods we do support.
pub(crate) fn method_not_allowed(method: &str) -> Response {
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
    let mut r = (
        StatusCode::OK,
        [
            ("DAV", "1, 2"),
            ("Allow", ALLOW),
            ("MS-Author-Via", "DAV"),
            ("Accept-Ranges", "bytes"),
            ("Content-Length", "0"),
        ],
    )
        .into_response();
    // TUS creation is a POST on a folder URL (see `crate::tus`).
    crate::tus::advertise(r.headers_mut());
    r
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
