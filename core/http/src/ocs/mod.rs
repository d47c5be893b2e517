//! OCS API (`/ocs/v1.php/…`, `/ocs/v2.php/…`) after reva ocs/ocs.go: routing, authentication and
//! the discovery endpoints `cloud/capabilities`, `cloud/user` and `cloud/users/{userid}`.

mod capabilities;
mod response;
mod user;

use crate::auth::authenticate;
use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::routing::any;
use hearth_domain::{CoreError, Principal};
use http::Method;
use http::request::Parts;
use response::{Ctx, Version};
use serde_json::Value;
use std::net::SocketAddr;

/// The OCS routes: `/ocs/v1.php` and `/ocs/v2.php`, with or without anything below them.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ocs/v1.php", any(v1))
        .route("/ocs/v1.php/", any(v1))
        .route("/ocs/v1.php/{*endpoint}", any(v1))
        .route("/ocs/v2.php", any(v2))
        .route("/ocs/v2.php/", any(v2))
        .route("/ocs/v2.php/{*endpoint}", any(v2))
}

/// Entry point for `/ocs/v1.php` and everything below it.
async fn v1(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Version::V1, req).await
}

/// Entry point for `/ocs/v2.php` and everything below it.
async fn v2(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Version::V2, req).await
}

async fn handle(state: AppState, version: Version, request: Request) -> Response {
    // Only the head is needed (the body is not `Sync`, so it must not be borrowed across awaits).
    let (req, _body) = request.into_parts();
    let ctx = Ctx::new(version, req.uri.query());
    let prefix = match version {
        Version::V1 => "/ocs/v1.php",
        Version::V2 => "/ocs/v2.php",
    };
    let endpoint = req
        .uri
        .path()
        .strip_prefix(prefix)
        .unwrap_or_default()
        .trim_matches('/')
        .to_owned();
    match route(&state, &req, &endpoint).await {
        Ok(data) => ctx.ok(data),
        Err(ApiError(e)) => ctx.error(&e),
    }
}

/// The `data` of one OCS endpoint (`endpoint` is the path below `/ocs/vN.php/`).
async fn route(state: &AppState, req: &Parts, endpoint: &str) -> Result<Value, ApiError> {
    let segments: Vec<&str> = endpoint.split('/').collect();
    let is_read = matches!(req.method, Method::GET | Method::HEAD);
    match (is_read, segments.as_slice()) {
        // Unprotected, as in reva: clients fetch capabilities before logging in. Credentials that
        // are sent are still checked, so a wrong password answers 401 here too.
        // CLIENT QUIRK (owncloudcmd): it retries a 401 capabilities call a few times, then
        // aborts the sync; that is the wrong-password behaviour users see with oCIS as well.
        (true, ["cloud", "capabilities"]) => {
            if req.headers.contains_key(http::header::AUTHORIZATION) {
                caller(state, req).await?;
            }
            Ok(capabilities::capabilities())
        }
        (true, ["cloud", "user"]) => user::current(state, caller(state, req).await?).await,
        (true, ["cloud", "users", userid]) => {
            let who = caller(state, req).await?;
            let userid = percent_encoding::percent_decode_str(userid).decode_utf8_lossy();
            user::by_id(state, who, &userid).await
        }
        // Everything else is protected: authenticate first (so probing needs credentials),
        // then "not found".
        _ => {
            caller(state, req).await?;
            Err(ApiError(CoreError::NotFound(format!(
                "no OCS endpoint {} {endpoint}",
                req.method
            ))))
        }
    }
}

async fn caller(state: &AppState, req: &Parts) -> Result<Principal, ApiError> {
    let addr = req
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    authenticate(state, &req.headers, addr).await
}
