//! `GET /api/v1/status` (unauthenticated): the running server as the UI and the tray show it —
//! health of the supervised services, the URLs, and the SHA-256 fingerprints of the CA and of the
//! certificate the server presents, so a user can compare them with what a phone displays.

use crate::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use serde::Serialize;

/// The certificate in use, as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSummary {
    /// SHA-256 of Hearth's own CA (upper-case hex pairs joined by `:`).
    pub ca_sha256: String,
    /// SHA-256 of the certificate presented to clients.
    pub server_sha256: String,
    /// The names the generated certificate covers (empty for a user-provided certificate).
    pub names: Vec<String>,
    /// Whether a user-provided certificate replaces the generated one.
    pub user_certificate: bool,
}

/// The supervisor's view of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `running`, `degraded` or `stopping`.
    pub state: &'static str,
    /// For `degraded`: which service fails and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the runtime (the supervisor) tells the status API.
pub trait RuntimeStatus: std::fmt::Debug + Send + Sync {
    /// The health of the services.
    fn health(&self) -> Health;
    /// The TLS certificate in use (`None` with TLS off).
    fn tls(&self) -> Option<TlsSummary>;
}

/// The routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/status", get(status))
}

async fn status(State(state): State<AppState>) -> Response {
    let runtime = state.opts.runtime.as_deref();
    let health = runtime.map(|r| r.health()).unwrap_or(Health {
        state: "running",
        detail: None,
    });
    let tls = runtime.and_then(|r| r.tls());
    let body = serde_json::json!({
        "product": crate::status::PRODUCT,
        "version": env!("CARGO_PKG_VERSION"),
        "health": health,
        "tls": tls.map(|t| serde_json::json!({
            "enabled": true,
            "ca_sha256": t.ca_sha256,
            "server_sha256": t.server_sha256,
            "names": t.names,
            "user_certificate": t.user_certificate,
            "ca_url": if t.user_certificate { None } else { Some("/ca.crt") },
        })).unwrap_or_else(|| serde_json::json!({"enabled": false})),
    });
    let mut resp = body.to_string().into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
