//! PUT (RFC 9110 §9.3.4 with the ownCloud headers `X-OC-Mtime`, `OC-Checksum`), MKCOL
//! (RFC 4918 §9.3) and DELETE (RFC 4918 §9.6; deleted items go to the trash).

use super::conditions::evaluate_if;
use super::read::file_headers;
use super::{Target, on_target};
use crate::util::{bad, header};
use crate::{ApiError, AppState};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hearth_domain::files::ChecksumAlgo;
use hearth_domain::{CoreError, Principal, PutOptions, StagedUpload, StorageProvider, Upload};
use hearth_types::{RelPath, SpaceId};
use http::{HeaderMap, HeaderValue, StatusCode};

/// Bodies up to this size are collected and written in one blocking call; larger ones stream.
pub(crate) const SMALL_BODY: u64 = 1 << 20;

fn etag_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

pub(crate) fn put_options(h: &HeaderMap) -> Result<PutOptions, ApiError> {
    let mtime_secs = match header(h, "x-oc-mtime") {
        // CLIENT QUIRK (ownCloud/Nextcloud desktop): X-OC-Mtime may carry a fraction ("1700000000.5").
        Some(v) => Some(
            v.trim()
                .split('.')
                .next()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| bad(format!("invalid X-OC-Mtime {v:?}")))?,
        ),
        None => None,
    };
    let checksum = match header(h, "oc-checksum") {
        Some(v) => {
            let (algo, hex) = v
                .trim()
                .split_once(':')
                .ok_or_else(|| bad(format!("invalid OC-Checksum {v:?}")))?;
            let algo = ChecksumAlgo::parse(algo)
                .ok_or_else(|| bad(format!("unsupported checksum type {algo:?}")))?;
            if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(format!("invalid OC-Checksum {v:?}")));
            }
            Some((algo, hex.to_ascii_lowercase()))
        }
        None => None,
    };
    let content_len = header(h, "content-length").and_then(|v| v.parse::<u64>().ok());
    // CLIENT QUIRK (macOS Finder): sends the real length in X-Expected-Entity-Length.
    let expected = header(h, "x-expected-entity-length").and_then(|v| v.parse::<u64>().ok());
    Ok(PutOptions {
        if_match: header(h, "if-match").map(etag_list),
        if_none_match: header(h, "if-none-match").map(etag_list),
        mtime_secs,
        checksum,
        expected_len: expected.or(content_len),
    })
}

pub(crate) async fn put(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    if t.path.is_root() {
        return Err(ApiError(CoreError::Conflict(
            "cannot PUT onto the space root".into(),
        )));
    }
    if req.headers().contains_key("content-range") {
        return Err(bad("partial PUT with Content-Range is not supported"));
    }
    // CLIENT QUIRK (ownCloud/Nextcloud clients without dav.chunking): legacy "v1" chunking PUTs
    // `<name>-chunking-<transfer>-<count>-<index>` with `OC-Chunked: 1`. Refused clearly: we
    // advertise chunking NG (dav.chunking "1.0") and TUS instead.
    if req.headers().contains_key("oc-chunked") {
        return Err(bad(
            "legacy ownCloud chunking (OC-Chunked) is not supported; use chunking NG (/remote.php/dav/uploads/) or TUS",
        ));
    }
    let opts = put_options(req.headers())?;
    let submitted = evaluate_if(state, who, t, req.headers()).await?;
    let small = opts.expected_len.is_some_and(|n| n <= SMALL_BODY);
    let mtime_set = opts.mtime_secs.is_some();
    if !small {
        // Refuse a large upload before receiving it: locks, then quota for the announced length.
        let (sub, len) = (submitted.clone(), opts.expected_len);
        on_target(state, who, t, move |c, w, space, path| {
            sub.allow(c, w, space, path, false)?;
            match len {
                Some(n) => c.files.check_quota(w, space, path, n),
                None => Ok(()),
            }
        })
        .await?;
    }
    let staged = if small {
        let body = axum::body::to_bytes(
            req.into_body(),
            usize::try_from(SMALL_BODY).unwrap_or(usize::MAX),
        )
        .await
        .map_err(|_| bad("the request body was cut off"))?;
        match state.core.files.small_upload(&body).map_err(ApiError)? {
            Some(up) => {
                submitted
                    .allow(&state.core, who, t.space, &t.path, false)
                    .map_err(ApiError)?;
                stage_small(state, who, t.space, &t.path, up, opts).await?
            }
            None => {
                on_target(state, who, t, move |c, w, space, path| {
                    submitted.allow(c, w, space, path, false)?;
                    let up = c.files.upload_of(&body)?;
                    c.files.stage_upload(w, space, path, up, &opts)
                })
                .await?
            }
        }
    } else {
        let up = receive(state, req.into_body()).await?;
        on_target(state, who, t, move |c, w, space, path| {
            submitted.allow(c, w, space, path, false)?;
            c.files.stage_upload(w, space, path, up, &opts)
        })
        .await?
    };
    // The commit thread makes it durable; the request waits without holding a thread.
    let (info, created) = staged.done().await?;
    tracing::info!(protocol = "put", path = %info.path, size = info.size, "upload complete");
    Ok(upload_response(&info, created, mtime_set))
}

/// Stages an upload from [`hearth_domain::FileStore::small_upload`] (a PUT or TUS creation
/// received whole): checked and handed to the commit threads right here on the async worker,
/// as a GET is served (see `hearth_domain::files::spares`). Only the version link of a replaced
/// file goes to the blocking pool, and so does the whole staging while another write of the
/// same path is in flight (it waits for that one to commit).
pub(crate) async fn stage_small(
    state: &AppState,
    who: &Principal,
    space: SpaceId,
    path: &RelPath,
    up: Upload,
    opts: PutOptions,
) -> Result<StagedUpload, ApiError> {
    let files = &state.core.files;
    let checked = files
        .try_check_upload(who, space, path, up, &opts)
        .map_err(ApiError)?;
    let core = state.core.clone();
    match checked {
        Ok(c) if !c.replaces() => files.submit_upload(c).map_err(ApiError),
        Ok(c) => crate::util::blocking(move || core.files.submit_upload(c)).await,
        Err(up) => {
            let (who, path) = (who.clone(), path.clone());
            crate::util::blocking(move || core.files.stage_upload(&who, space, &path, up, &opts))
                .await
        }
    }
}

/// The answer to a completed upload (PUT, chunk assembly): 201/204 with the headers the sync
/// clients read (ETag, OC-ETag, OC-FileId, OC-Perm, X-OC-MTime).
pub(crate) fn upload_response(
    info: &hearth_domain::ResourceInfo,
    created: bool,
    mtime_set: bool,
) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    };
    let mut resp = status.into_response();
    let hm = resp.headers_mut();
    file_headers(hm, info);
    hm.remove("oc-checksum");
    if let Ok(v) = HeaderValue::from_str(info.permissions()) {
        hm.insert("oc-perm", v);
    }
    if mtime_set {
        hm.insert("x-oc-mtime", HeaderValue::from_static("accepted"));
    }
    resp
}

/// Streams a request body into a new upload (hashed as it is written). A body that breaks off
/// leaves nothing behind.
pub(crate) async fn receive(
    state: &AppState,
    body: axum::body::Body,
) -> Result<hearth_domain::Upload, ApiError> {
    let files = state.core.files.clone();
    let up = crate::util::blocking(move || files.begin_upload()).await?;
    let (up, whole) = crate::util::pump(body, up, |u, b| u.write_bytes(b)).await?;
    if !whole {
        // Dropping the upload removes its temporary file: nothing is stored.
        return Err(bad("the request body was cut off"));
    }
    Ok(up)
}
pub(crate) async fn mkcol(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let body = super::small_body(req).await?;
    if !body.is_empty() {
        return Ok(crate::error::plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Sabre\\DAV\\Exception\\UnsupportedMediaType",
            "MKCOL with a body is not supported",
        ));
    }
    let submitted = evaluate_if(state, who, t, &headers).await?;
    let info = on_target(state, who, t, move |c, w, space, path| {
        submitted.allow(c, w, space, path, false)?;
        c.files.mkdir(w, space, path)
    })
    .await?;
    let mut resp = StatusCode::CREATED.into_response();
    file_headers(resp.headers_mut(), &info);
    Ok(resp)
}

pub(crate) async fn delete(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
) -> Result<Response, ApiError> {
    if let Some(d) = header(req.headers(), "depth")
        && !d.eq_ignore_ascii_case("infinity")
    {
        return Err(bad("DELETE needs Depth: infinity"));
    }
    let submitted = evaluate_if(state, who, t, req.headers()).await?;
    on_target(state, who, t, move |c, w, space, path| {
        submitted.allow(c, w, space, path, true)?;
        c.files.delete(w, space, path)?;
        c.locks.release_under(space, path)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
