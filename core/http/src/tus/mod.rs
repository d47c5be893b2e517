//! TUS 1.0.0 resumable uploads (core protocol plus the creation, creation-with-upload, checksum,
//! expiration and termination extensions) as oCIS serves them: `POST` to a WebDAV folder URL
//! creates an upload (`Upload-Metadata: filename …`), and the transfer continues at
//! `/data/<token>` (`HEAD`, `PATCH`, `DELETE`, `OPTIONS`), which needs no credentials because the
//! token authorises it. A thin adapter over `hearth_domain::uploads`.

mod data;

pub(crate) use data::data;

use crate::dav::Target;
use crate::dav::conditions::evaluate_if;
use crate::dav::read::file_headers;
use crate::util::{bad, blocking, header};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hearth_domain::files::ChecksumAlgo;
use hearth_domain::uploads::{NewUpload, Progress, Session};
use hearth_domain::{CoreError, Principal, ResourceInfo, StorageProvider};
use hearth_types::RelPath;
use http::{HeaderMap, HeaderValue, StatusCode};
use std::time::{Duration, UNIX_EPOCH};

const VERSION: &str = "1.0.0";
const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// The headers that advertise TUS support (OPTIONS on WebDAV URLs and on `/data/…`).
pub(crate) fn advertise(h: &mut HeaderMap) {
    for (k, v) in [
        ("tus-resumable", VERSION),
        ("tus-version", VERSION),
        (
            "tus-extension",
            "creation,creation-with-upload,checksum,expiration,termination",
        ),
        ("tus-checksum-algorithm", "md5,sha1,adler32"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
}

/// Adds `Tus-Max-Size` (the space left in the quota) to a WebDAV OPTIONS answer when the request
/// carries valid credentials and the caller's quota is limited; otherwise leaves it as it is.
pub(crate) async fn with_max_size(
    state: &AppState,
    headers: &HeaderMap,
    addr: Option<std::net::IpAddr>,
    mut resp: Response,
) -> Response {
    if !headers.contains_key(http::header::AUTHORIZATION) {
        return resp;
    }
    let Ok(who) = crate::auth::authenticate(state, headers, addr).await else {
        return resp;
    };
    let core = state.core.clone();
    let quota = blocking(move || {
        let space = core.files.personal_space(who.id)?;
        core.files.quota(&who, space)
    })
    .await;
    if let Ok(q) = quota
        && let Some(avail) = q.available()
        && let Ok(v) = HeaderValue::from_str(&avail.to_string())
    {
        resp.headers_mut().insert("tus-max-size", v);
    }
    resp
}

/// Every TUS answer carries `Tus-Resumable`.
fn tus_response(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(VERSION));
    resp
}

/// `Tus-Resumable: 1.0.0` is required; anything else is refused with 412 and the versions we
/// speak (`None` = fine).
fn version_refusal(h: &HeaderMap) -> Option<Response> {
    if header(h, "tus-resumable").map(str::trim) == Some(VERSION) {
        return None;
    }
    let mut resp = ApiError(CoreError::PreconditionFailed(format!(
        "Tus-Resumable {VERSION} is required"
    )))
    .into_response();
    resp.headers_mut()
        .insert("tus-version", HeaderValue::from_static(VERSION));
    Some(resp)
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs (a key may have no value).
fn metadata(h: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = header(h, "upload-metadata") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad(format!("Upload-Metadata {key} is not base64 UTF-8")))?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

fn etag_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

/// Unix seconds; a fraction (as the desktop client may send) is dropped.
fn parse_mtime(v: &str) -> Result<i64, ApiError> {
    v.trim()
        .split('.')
        .next()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| bad(format!("invalid mtime {v:?}")))
}

/// Reads the creation request into what the domain needs.
fn new_upload(t: &Target, h: &HeaderMap) -> Result<NewUpload, ApiError> {
    // oCIS answers a missing Upload-Length with 412 (deferred length is not supported).
    let length = header(h, "upload-length")
        .ok_or_else(|| {
            ApiError(CoreError::PreconditionFailed(
                "Upload-Length is required".into(),
            ))
        })?
        .trim()
        .parse::<u64>()
        .map_err(|_| bad("invalid Upload-Length"))?;
    let meta = metadata(h)?;
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    // The filename may be a path below the POSTed folder ("dir/sub/a.txt", or "/sub/a.txt" from
    // the desktop client); a missing or invalid one is 412, as in oCIS.
    let rel = get("filename")
        .map(RelPath::from_decoded)
        .and_then(Result::ok)
        .filter(|p| !p.is_root())
        .ok_or_else(|| {
            ApiError(CoreError::PreconditionFailed(
                "Upload-Metadata needs a valid filename".into(),
            ))
        })?;
    let path = rel.names().iter().fold(t.path.clone(), |p, n| p.join(n));
    let mtime_secs = match get("mtime").or_else(|| header(h, "x-oc-mtime")) {
        Some(v) => Some(parse_mtime(v)?),
        None => None,
    };
    let checksum = match get("checksum") {
        Some(v) => {
            let (algo, hex) = v
                .trim()
                .split_once([' ', ':'])
                .ok_or_else(|| bad(format!("invalid checksum {v:?}")))?;
            let algo = ChecksumAlgo::parse(algo)
                .ok_or_else(|| bad(format!("unsupported checksum type {algo:?}")))?;
            let hex = hex.trim();
            if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(format!("invalid checksum {v:?}")));
            }
            Some((algo, hex.to_ascii_lowercase()))
        }
        None => None,
    };
    let if_match = header(h, "if-match")
        .or_else(|| get("if-match"))
        .map(etag_list);
    Ok(NewUpload {
        lock_tokens: Vec::new(),
        path,
        length,
        mtime_secs,
        checksum,
        if_match,
    })
}

/// The externally visible base URL (scheme and host).
fn base_url(state: &AppState, h: &HeaderMap) -> String {
    match &state.opts.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!("http://{}", header(h, "host").unwrap_or("localhost")),
    }
}

fn expires_header(h: &mut HeaderMap, expires: i64) {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(expires).unwrap_or(0));
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(t)) {
        h.insert("upload-expires", v);
    }
}

/// Offset, expiry and — when the upload completed — what a PUT answers (ETag, OC-ETag, OC-FileId,
/// OC-Perm, Last-Modified, X-OC-MTime), which the desktop client reads from the last chunk.
fn progress_headers(h: &mut HeaderMap, offset: u64, expires: i64, done: Option<&ResourceInfo>) {
    h.insert("upload-offset", HeaderValue::from(offset));
    match done {
        Some(info) => {
            tracing::info!(protocol = "tus", path = %info.path, size = info.size, "upload complete");
            file_headers(h, info);
            h.remove("oc-checksum");
            if let Ok(v) = HeaderValue::from_str(info.permissions()) {
                h.insert("oc-perm", v);
            }
        }
        None => expires_header(h, expires),
    }
}

fn mtime_header(h: &mut HeaderMap, p: &Progress) {
    if p.mtime_set && p.done.is_some() {
        h.insert("x-oc-mtime", HeaderValue::from_static("accepted"));
    }
}

/// Streams a request body into an upload with constant memory. A body that breaks off keeps what
/// arrived (the client resumes from the offset HEAD reports) and is answered with 400.
async fn stream_into(session: Session, body: Body) -> Result<Progress, ApiError> {
    let (session, whole) = crate::util::pump(body, session, |s, b| s.write_bytes(b)).await?;
    let broken = !whole;
    let progress = blocking(move || session.commit(!broken)).await?;
    if broken {
        return Err(bad("the request body was cut off"));
    }
    Ok(progress)
}

/// `POST` on a WebDAV folder: creates an upload (201 + `Location`), with the request body as the
/// first chunk when it is `application/offset+octet-stream` (creation-with-upload).
pub(crate) async fn create(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    Ok(answer(create_upload(state, who, t, req).await))
}

async fn create_upload(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    if let Some(resp) = version_refusal(req.headers()) {
        return Ok(resp);
    }
    let mut new = new_upload(t, req.headers())?;
    // Lock tokens in the `If` header are for the file being uploaded, not the POSTed folder.
    let file = Target {
        path: new.path.clone(),
        ..t.clone()
    };
    new.lock_tokens = evaluate_if(state, who, &file, req.headers())
        .await?
        .into_tokens();
    let mtime_set = new.mtime_secs.is_some();
    let location_base = base_url(state, req.headers());
    let with_body = header(req.headers(), "content-type")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(OFFSET_STREAM));
    let (core, who2, space) = (state.core.clone(), who.clone(), t.space);
    let content_len = header(req.headers(), "content-length").and_then(|v| v.trim().parse().ok());
    let body = req.into_body();
    let whole = with_body
        && new.length > 0
        && new.length <= crate::dav::SMALL_BODY
        && content_len == Some(new.length);
    // The body still to stream into the upload (creation-with-upload of a part).
    let (created, rest) = if whole {
        // CLIENT QUIRK (ownCloud desktop with TUS): every file, however small, is a
        // creation-with-upload carrying all of it. Kept out of the resumable machinery (record,
        // data file, durable offset, completion): it is placed like a PUT.
        let bytes = axum::body::to_bytes(body, usize::try_from(new.length).unwrap_or(usize::MAX))
            .await
            .map_err(|_| bad("the request body was cut off"))?;
        let created = match core.files.small_upload(&bytes).map_err(ApiError)? {
            // Staged on the async worker like a small PUT (see `crate::dav::stage_small`).
            Some(mut up) => {
                let opts = core
                    .uploads
                    .check_whole(who, space, &new, &mut up)
                    .map_err(ApiError)?;
                let staged = crate::dav::stage_small(state, who, space, &new.path, up, opts);
                let done = staged.await?.done().await.map_err(ApiError)?;
                core.uploads.created_whole(new.length, done)
            }
            None => {
                blocking(move || {
                    let up = core.files.upload_of(&bytes)?;
                    core.uploads.create_whole(&who2, space, new, up)
                })
                .await?
            }
        };
        (created, None)
    } else {
        let created = blocking(move || core.uploads.create(&who2, space, new)).await?;
        (created, with_body.then_some(body))
    };
    let st = created.state;
    let mut progress = Progress {
        offset: st.offset,
        length: st.length,
        expires: st.expires,
        mtime_set,
        done: created.done,
    };
    if let Some(body) = rest.filter(|_| progress.done.is_none()) {
        let (core, token) = (state.core.clone(), st.token.clone());
        let mut session = blocking(move || core.uploads.open(&token)).await?;
        session.begin(0, None).map_err(ApiError)?;
        progress = stream_into(session, body).await?;
    }
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{location_base}/data/{}", st.token)) {
        h.insert(http::header::LOCATION, v);
    }
    progress_headers(
        h,
        progress.offset,
        progress.expires,
        progress.done.as_ref().map(|d| &d.0),
    );
    mtime_header(h, &progress);
    Ok(resp)
}

/// Errors of TUS handlers carry `Tus-Resumable` too.
fn answer(r: Result<Response, ApiError>) -> Response {
    tus_response(r.unwrap_or_else(IntoResponse::into_response))
}

/// Decodes `Upload-Checksum: <algo> <base64 digest>`.
fn chunk_checksum(h: &HeaderMap) -> Result<Option<(ChecksumAlgo, Vec<u8>)>, ApiError> {
    let Some(v) = header(h, "upload-checksum") else {
        return Ok(None);
    };
    let (algo, b64) = v
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("invalid Upload-Checksum"))?;
    let algo = ChecksumAlgo::parse(algo)
        .ok_or_else(|| bad(format!("unsupported checksum algorithm {algo:?}")))?;
    let digest = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad("Upload-Checksum is not base64"))?;
    Ok(Some((algo, digest)))
}
