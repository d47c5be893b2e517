//! The TUS upload URL `/data/<token>`: `HEAD` (offset for resuming), `PATCH` (append a chunk),
//! `DELETE` (termination) and `OPTIONS`. No credentials: the HMAC token authorises the transfer.
//! A forged token answers 403, an expired upload 410, a finished or terminated one 404.

use super::{
    OFFSET_STREAM, advertise, answer, chunk_checksum, expires_header, mtime_header,
    progress_headers, stream_into, tus_response, version_refusal,
};
use crate::util::{bad, blocking, header};
use crate::{ApiError, AppState};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

/// Entry point for every method on `/data/<token>`.
pub(crate) async fn data(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    match req.method().as_str() {
        "OPTIONS" => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            advertise(resp.headers_mut());
            resp
        }
        "HEAD" => answer(head(&state, token).await),
        "PATCH" => answer(patch(&state, token, req).await),
        "DELETE" => answer(delete(&state, token, req).await),
        _ => {
            let mut resp = ApiError(hearth_domain::CoreError::BadRequest(
                "only OPTIONS, HEAD, PATCH and DELETE are supported on upload URLs".into(),
            ))
            .into_response();
            *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            resp.headers_mut().insert(
                http::header::ALLOW,
                HeaderValue::from_static("OPTIONS, HEAD, PATCH, DELETE"),
            );
            tus_response(resp)
        }
    }
}

async fn head(state: &AppState, token: String) -> Result<Response, ApiError> {
    let core = state.core.clone();
    let st = blocking(move || core.uploads.status(&token)).await?;
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert("upload-offset", HeaderValue::from(st.offset));
    h.insert("upload-length", HeaderValue::from(st.length));
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    expires_header(h, st.expires);
    Ok(resp)
}

async fn patch(state: &AppState, token: String, req: Request) -> Result<Response, ApiError> {
    if let Some(resp) = version_refusal(req.headers()) {
        return Ok(resp);
    }
    if !header(req.headers(), "content-type")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(OFFSET_STREAM))
    {
        return Ok(crate::error::plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Sabre\\DAV\\Exception\\UnsupportedMediaType",
            "PATCH needs Content-Type: application/offset+octet-stream",
        ));
    }
    let offset = header(req.headers(), "upload-offset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| bad("a valid Upload-Offset is required"))?;
    let checksum = chunk_checksum(req.headers())?;
    let core = state.core.clone();
    let session = blocking(move || {
        let mut s = core.uploads.open(&token)?;
        s.begin(offset, checksum)?;
        Ok(s)
    })
    .await?;
    let progress = stream_into(session, req.into_body()).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    progress_headers(
        h,
        progress.offset,
        progress.expires,
        progress.done.as_ref().map(|d| &d.0),
    );
    mtime_header(h, &progress);
    Ok(resp)
}

async fn delete(state: &AppState, token: String, req: Request) -> Result<Response, ApiError> {
    if let Some(resp) = version_refusal(req.headers()) {
        return Ok(resp);
    }
    let core = state.core.clone();
    blocking(move || core.uploads.terminate(&token)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
