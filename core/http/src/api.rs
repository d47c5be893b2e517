//! Hearth's own JSON API for the web UI (`/api/v1/…`). For now: app passwords.
//!
//! - `GET /api/v1/app-passwords` → 200 `[{"id","name","created","last_used"}]` (Unix seconds;
//!   `last_used` is `null` until first use; secrets are never listed).
//! - `POST /api/v1/app-passwords` with `{"name": "…"}` → 201 with the record plus `"password"`,
//!   the only time the secret is shown.
//! - `DELETE /api/v1/app-passwords/{id}` → 204; logins with it fail at once.
//!
//! Every call authenticates like the other protocols (`crate::auth::authenticate`). Creating an app
//! password needs more than an app password: Basic credentials that are an app password get 403,
//! so a leaked device password cannot mint lasting ones. Errors are JSON
//! (`{"error":{"code","message"}}`, rendered in `error.rs`).

use crate::auth::authenticate;
use crate::util::blocking;
use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use base64::Engine;
use bytes::Bytes;
use hearth_domain::{CoreError, Principal};
use hearth_store::AppPasswordRecord;
use http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// The JSON API routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/app-passwords", get(list).post(create))
        .route("/api/v1/app-passwords/{id}", delete(revoke))
}

/// A handler result rendered as JSON either way.
struct Json(Result<(StatusCode, Option<Value>), ApiError>);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        match self.0 {
            Ok((status, body)) => {
                let mut resp = match body {
                    Some(v) => (status, v.to_string()).into_response(),
                    None => status.into_response(),
                };
                let h = resp.headers_mut();
                if status != StatusCode::NO_CONTENT {
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp
            }
            Err(e) => e.into_json_response(),
        }
    }
}

fn addr_of(ext: &Extensions) -> Option<std::net::IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn record_json(r: &AppPasswordRecord) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "created": r.created,
        "last_used": r.last_used,
    })
}

async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    ext: &Extensions,
) -> Result<Principal, ApiError> {
    authenticate(state, headers, addr_of(ext)).await
}

/// `GET /api/v1/app-passwords`.
async fn list(State(state): State<AppState>, ext: Extensions, headers: HeaderMap) -> Json {
    Json(
        async {
            let who = caller(&state, &headers, &ext).await?;
            let accounts = state.core.accounts.clone();
            let recs = blocking(move || accounts.list_app_passwords(who.id)).await?;
            Ok((
                StatusCode::OK,
                Some(Value::Array(recs.iter().map(record_json).collect())),
            ))
        }
        .await,
    )
}

/// The Basic credentials of a request, if it carries any.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// `POST /api/v1/app-passwords` with `{"name": "…"}`.
async fn create(
    State(state): State<AppState>,
    ext: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Json {
    Json(
        async {
            let who = caller(&state, &headers, &ext).await?;
            if let Some((user, pass)) = basic_credentials(&headers) {
                let auth = state.core.auth.clone();
                if blocking(move || auth.is_app_password(&user, &pass)).await? {
                    return Err(ApiError(CoreError::PermissionDenied(
                        "creating an app password needs the account password, not an app password"
                            .into(),
                    )));
                }
            }
            if body.len() > MAX_BODY {
                return Err(ApiError(CoreError::BadRequest(
                    "request body too large".into(),
                )));
            }
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError(CoreError::BadRequest(format!("invalid JSON: {e}"))))?;
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError(CoreError::BadRequest(
                        "expected {\"name\": \"…\"} with a string name".into(),
                    ))
                })?
                .to_owned();
            let accounts = state.core.accounts.clone();
            let new = blocking(move || accounts.create_app_password(who.id, &name)).await?;
            let mut out = record_json(&new.record);
            if let Some(o) = out.as_object_mut() {
                o.insert("password".into(), Value::String(new.secret));
            }
            Ok((StatusCode::CREATED, Some(out)))
        }
        .await,
    )
}

/// `DELETE /api/v1/app-passwords/{id}`.
async fn revoke(
    State(state): State<AppState>,
    ext: Extensions,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Json {
    Json(
        async {
            let who = caller(&state, &headers, &ext).await?;
            let accounts = state.core.accounts.clone();
            blocking(move || accounts.revoke_app_password(who.id, &id)).await?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        .await,
    )
}
