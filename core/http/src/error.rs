//! The one place where `CoreError` becomes an HTTP/WebDAV response: status code, Sabre-style XML
//! error body (what the ownCloud clients parse), and `WWW-Authenticate` / `Retry-After` headers.
//! The JSON API (`/api/v1/…`) gets the same statuses and headers with a JSON body
//! (`{"error":{"code":…,"message":…}}`, [`ApiError::into_json_response`]).

use axum::response::{IntoResponse, Response};
use hearth_domain::CoreError;
use http::{HeaderValue, StatusCode, header};

/// A handler error.
#[derive(Debug)]
pub struct ApiError(pub CoreError);

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        Self(e)
    }
}

/// Status and Sabre exception class for each error.
pub(crate) fn classify(e: &CoreError) -> (StatusCode, &'static str) {
    use CoreError::*;
    match e {
        NotFound(_) => (StatusCode::NOT_FOUND, "Sabre\\DAV\\Exception\\NotFound"),
        Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "Sabre\\DAV\\Exception\\NotAuthenticated",
        ),
        Throttled(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Sabre\\DAV\\Exception\\TooManyRequests",
        ),
        PermissionDenied(_) => (StatusCode::FORBIDDEN, "Sabre\\DAV\\Exception\\Forbidden"),
        AlreadyExists(_) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "Sabre\\DAV\\Exception\\MethodNotAllowed",
        ),
        Conflict(_) => (StatusCode::CONFLICT, "Sabre\\DAV\\Exception\\Conflict"),
        PreconditionFailed(_) => (
            StatusCode::PRECONDITION_FAILED,
            "Sabre\\DAV\\Exception\\PreconditionFailed",
        ),
        Locked(_) => (StatusCode::LOCKED, "Sabre\\DAV\\Exception\\Locked"),
        QuotaExceeded(_) => (
            StatusCode::INSUFFICIENT_STORAGE,
            "Sabre\\DAV\\Exception\\InsufficientStorage",
        ),
        BadRequest(_) => (StatusCode::BAD_REQUEST, "Sabre\\DAV\\Exception\\BadRequest"),
        // TUS checksum extension: 460 "Checksum Mismatch" (not an IANA status; tus.io defines it).
        ChecksumMismatch(_) => (
            StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            "Sabre\\DAV\\Exception\\BadRequest",
        ),
        UploadExpired(_) => (StatusCode::GONE, "Sabre\\DAV\\Exception\\NotFound"),
        Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Sabre\\DAV\\Exception"),
    }
}

/// An error response for a protocol condition that has no `CoreError` (e.g. 415, 502).
pub(crate) fn plain(status: StatusCode, exception: &str, message: &str) -> Response {
    let mut resp = (status, hearth_dav_proto::sabre_error(exception, message)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    resp
}

/// A short machine-readable code for the JSON API.
fn json_code(e: &CoreError) -> &'static str {
    use CoreError::*;
    match e {
        NotFound(_) => "not_found",
        Unauthenticated => "unauthenticated",
        Throttled(_) => "throttled",
        PermissionDenied(_) => "forbidden",
        AlreadyExists(_) => "already_exists",
        Conflict(_) => "conflict",
        PreconditionFailed(_) => "precondition_failed",
        Locked(_) => "locked",
        QuotaExceeded(_) => "quota_exceeded",
        BadRequest(_) => "bad_request",
        ChecksumMismatch(_) => "checksum_mismatch",
        UploadExpired(_) => "upload_expired",
        Internal(_) => "internal",
    }
}

/// The message a client may see (internal details are logged, not sent).
fn public_message(e: &CoreError) -> String {
    match e {
        CoreError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            "Internal error".to_owned()
        }
        other => other.to_string(),
    }
}

impl ApiError {
    /// The error for the JSON API: `{"error":{"code":…,"message":…}}`, same status and headers.
    pub(crate) fn into_json_response(self) -> Response {
        let (status, _) = classify(&self.0);
        let body = serde_json::json!({
            "error": {"code": json_code(&self.0), "message": public_message(&self.0)}
        })
        .to_string();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.add_headers(&mut resp);
        resp
    }

    fn add_headers(&self, resp: &mut Response) {
        let h = resp.headers_mut();
        match &self.0 {
            CoreError::Unauthenticated => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Hearth\", charset=\"UTF-8\""),
                );
                // The desktop client chooses OAuth when it sees a Bearer challenge.
                h.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"Hearth\""),
                );
            }
            CoreError::Throttled(secs) => {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    h.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, exception) = classify(&self.0);
        let body = hearth_dav_proto::sabre_error(exception, &public_message(&self.0));
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        self.add_headers(&mut resp);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status() {
        let cases = [
            (CoreError::NotFound("x".into()), 404),
            (CoreError::Unauthenticated, 401),
            (CoreError::Throttled(3), 429),
            (CoreError::PermissionDenied("x".into()), 403),
            (CoreError::AlreadyExists("x".into()), 405),
            (CoreError::Conflict("x".into()), 409),
            (CoreError::PreconditionFailed("x".into()), 412),
            (CoreError::Locked("x".into()), 423),
            (CoreError::QuotaExceeded("x".into()), 507),
            (CoreError::BadRequest("x".into()), 400),
            (CoreError::ChecksumMismatch("x".into()), 460),
            (CoreError::UploadExpired("x".into()), 410),
            (CoreError::Internal("secret detail".into()), 500),
        ];
        for (e, code) in cases {
            let r = ApiError(e).into_response();
            assert_eq!(r.status().as_u16(), code);
        }
    }

    #[tokio::test]
    async fn internal_details_stay_inside() {
        let r = ApiError(CoreError::Internal("secret detail".into())).into_response();
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }
}
