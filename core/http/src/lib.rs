//! Hearth's HTTP surface: one axum router for every protocol clients speak on the public port.
//! Each protocol module is a thin adapter over `hearth-domain`; errors are mapped to the wire in
//! one place per format: `error.rs` (WebDAV) and `ocs/response.rs` (OCS).
#![deny(clippy::indexing_slicing)]

mod api;
mod auth;
mod dav;
mod error;
mod ocs;
mod oidc;
mod runtime;
mod sendfile;
mod status;
mod tus;
mod util;

pub use error::ApiError;
pub use oidc::TlsConnection;
pub use oidc::external::ExternalIdpOptions;
pub use runtime::{Health, RuntimeStatus, TlsSummary};
pub use sendfile::{Sendfile, TcpIo};

use axum::Router;
use hearth_domain::Core;
use std::sync::Arc;

/// Options of the HTTP adapters.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Allow `PROPFIND` with `Depth: infinity` (off by default, as in oCIS: it can be huge).
    pub allow_depth_infinity: bool,
    /// The externally visible base URL (for `oc:privatelink`); derived from `Host` when unset.
    pub public_url: Option<String>,
    /// Hearth's own CA in PEM, served at `GET /ca.crt` (404 when TLS is off).
    pub ca_pem: Option<String>,
    /// Where the OpenID Connect provider keeps its signing key (`None`: a key in memory only).
    pub idp_dir: Option<std::path::PathBuf>,
    /// The runtime's health and certificate, for `GET /api/v1/status`.
    pub runtime: Option<Arc<dyn RuntimeStatus>>,
    /// How long an OpenID Connect authorization code stays valid (`None`: 60 s).
    pub oidc_code_ttl: Option<std::time::Duration>,
    /// An external OpenID Connect provider replacing the embedded one (`None`: embedded).
    pub external_idp: Option<ExternalIdpOptions>,
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The services.
    pub core: Core,
    /// HTTP options.
    pub opts: Arc<HttpOptions>,
    /// The embedded OpenID Connect provider (`None` when external or unusable).
    pub(crate) idp: Option<Arc<oidc::Idp>>,
    /// The external OpenID Connect provider, when configured instead.
    pub(crate) external: Option<Arc<oidc::external::ExternalIdp>>,
}

/// `GET /ca.crt` (unauthenticated): the CA phones and laptops install to trust this server.
async fn ca_certificate(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match &state.opts.ca_pem {
        Some(pem) => (
            [
                (http::header::CONTENT_TYPE, "application/x-x509-ca-cert"),
                (
                    http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"hearth-ca.crt\"",
                ),
            ],
            pem.clone(),
        )
            .into_response(),
        None => http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The router for every HTTP endpoint; fails only for unusable external-provider options.
pub fn router(core: Core, opts: HttpOptions) -> Result<Router, String> {
    let external = match &opts.external_idp {
        Some(o) => Some(Arc::new(oidc::external::ExternalIdp::new(o.clone())?)),
        None => None,
    };
    // With an external provider the embedded one does not exist: no key, no tokens.
    let idp = match external {
        Some(_) => None,
        None => oidc::Idp::open(opts.idp_dir.as_deref(), core.oidc.clone(), opts.oidc_code_ttl)
            .or_else(|error| {
                tracing::error!(%error, "the OpenID Connect signing key is unusable; using a temporary one");
                oidc::Idp::open(None, core.oidc.clone(), opts.oidc_code_ttl)
            })
            .map_err(|error| tracing::error!(%error, "OpenID Connect is disabled"))
            .ok()
            .map(Arc::new),
    };
    let oidc_routes = match external {
        Some(_) => oidc::external_routes(),
        None => oidc::routes(),
    };
    let state = AppState {
        core,
        opts: Arc::new(opts),
        idp,
        external,
    };
    Ok(Router::new()
        .merge(status::routes())
        .merge(ocs::routes())
        .merge(api::routes())
        .merge(runtime::routes())
        .merge(oidc_routes)
        .route("/data/{token}", axum::routing::any(tus::data))
        .route("/ca.crt", axum::routing::get(ca_certificate))
        .fallback(dav::dispatch)
        .layer(axum::middleware::from_fn(util::request_id))
        .with_state(state))
}
