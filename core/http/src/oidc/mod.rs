//! The embedded OpenID Connect provider under the oCIS paths (discovery, JWKS, webfinger,
//! authorize, token, userinfo, revocation, end-session). Tokens are ES256 JWTs. With an external
//! provider configured (`external.rs`) only discovery and webfinger remain, pointing at it.

mod authorize;
mod clients;
pub(crate) mod external;
mod grants;
pub(crate) mod keys;
mod token;

use crate::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hearth_domain::OidcGrants;
use hearth_types::UserId;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use grants::Grants;
pub(crate) use keys::SigningKey;

/// Access tokens live one hour.
pub(crate) const ACCESS_TTL_SECS: u64 = 3600;
/// The JWT `typ` of access tokens (RFC 9068), so an ID token is never accepted as one.
pub(crate) const ACCESS_TYP: &str = "at+jwt";

/// Marks requests that arrived over TLS (inserted as a request extension by the server).
#[derive(Debug, Clone, Copy)]
pub struct TlsConnection;

/// The provider's state.
pub(crate) struct Idp {
    pub key: SigningKey,
    pub grants: Grants,
}

impl Idp {
    /// Loads or creates the signing key in `dir` (an in-memory key without a directory).
    /// Authorization codes live `code_ttl` (default [`grants::CODE_TTL`]).
    pub(crate) fn open(
        dir: Option<&Path>,
        store: Arc<OidcGrants>,
        code_ttl: Option<Duration>,
    ) -> Result<Self, String> {
        Ok(Self {
            key: SigningKey::load_or_create(dir)?,
            grants: Grants::new(store, code_ttl.unwrap_or(grants::CODE_TTL))?,
        })
    }
}

/// The claims of our access tokens.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub preferred_username: String,
    /// The grant family (code + its refresh tokens); revoking it voids the token.
    pub sid: String,
    pub scope: String,
}

/// The server's external base URL: `public_url`, else the scheme used + `Host`.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap, tls: bool) -> String {
    if let Some(u) = &state.opts.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', '@', ' ', '"', '<', '>']))
        .unwrap_or("localhost");
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

fn request_base(state: &AppState, req: &Request) -> String {
    let tls = req.extensions().get::<TlsConnection>().is_some();
    base_url(state, req.headers(), tls)
}

/// Verifies a Bearer access token; yields the user id. `None` for anything not valid.
/// The issuer must be this server as addressed by the request (either scheme: the caller of
/// this function may not know which listener the request came through).
pub(crate) fn verify_access(state: &AppState, token: &str, headers: &HeaderMap) -> Option<UserId> {
    let idp = state.idp.as_deref()?;
    let issuers = [
        base_url(state, headers, false),
        base_url(state, headers, true),
    ];
    let claims: AccessClaims = idp
        .key
        .verify(token, ACCESS_TYP, &issuers, &clients::ids())?;
    if idp.grants.is_revoked(&claims.sid) {
        return None;
    }
    claims.sub.parse::<UserId>().ok()
}

/// The routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/webfinger", get(webfinger))
        .route("/konnect/v1/jwks.json", get(jwks))
        .route(
            "/signin/v1/identifier/_/authorize",
            get(authorize::show).post(authorize::submit),
        )
        .route("/konnect/v1/token", post(token::token))
        .route(
            "/konnect/v1/userinfo",
            get(token::userinfo).post(token::userinfo),
        )
        .route("/konnect/v1/revocation", post(token::revoke))
        .route(
            "/signin/v1/identifier/_/endsession",
            get(token::end_session),
        )
}

/// The routes with an external provider: discovery and webfinger point clients at it; the
/// embedded provider's endpoints answer 404 with a message naming the provider.
pub(crate) fn external_routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(external_discovery))
        .route("/.well-known/webfinger", get(webfinger))
        .route("/konnect/v1/jwks.json", get(replaced))
        .route(
            "/signin/v1/identifier/_/authorize",
            get(replaced).post(replaced),
        )
        .route("/konnect/v1/token", post(replaced))
        .route("/konnect/v1/userinfo", get(replaced).post(replaced))
        .route("/konnect/v1/revocation", post(replaced))
        .route("/signin/v1/identifier/_/endsession", get(replaced))
}

/// 404 for the embedded provider's endpoints while an external provider signs users in.
async fn replaced(State(state): State<AppState>) -> Response {
    let issuer = state
        .external
        .as_ref()
        .map(|e| e.opts.issuer.clone())
        .unwrap_or_default();
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({
            "error": "external_provider",
            "error_description": format!(
                "this server signs users in with the OpenID Connect provider {issuer}; \
                 its endpoints are in {issuer}'s discovery document"
            ),
        }),
    )
}

/// `GET /.well-known/openid-configuration` with an external provider: its own document, as
/// oCIS does with `PROXY_OIDC_REWRITE_WELLKNOWN`, so the desktop and mobile apps that look here
/// find the provider; a 308 to the provider's URL while Hearth cannot fetch it.
async fn external_discovery(State(state): State<AppState>) -> Response {
    let Some(ext) = state.external.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match ext.discovery_document().await {
        Some(raw) => {
            let mut r = (StatusCode::OK, raw).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        None => match HeaderValue::from_str(&ext.discovery_url()) {
            Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
            Err(_) => StatusCode::BAD_GATEWAY.into_response(),
        },
    }
}

/// 503: the provider has no signing key.
pub(crate) fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "OpenID Connect is unavailable",
    )
        .into_response()
}

pub(crate) fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn discovery(State(state): State<AppState>, req: Request) -> Response {
    let base = request_base(&state, &req);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/signin/v1/identifier/_/authorize"),
            "token_endpoint": format!("{base}/konnect/v1/token"),
            "userinfo_endpoint": format!("{base}/konnect/v1/userinfo"),
            "end_session_endpoint": format!("{base}/signin/v1/identifier/_/endsession"),
            "revocation_endpoint": format!("{base}/konnect/v1/revocation"),
            "jwks_uri": format!("{base}/konnect/v1/jwks.json"),
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "at_hash", "name", "preferred_username", "email"],
        }),
    )
}

async fn jwks(State(state): State<AppState>) -> Response {
    let Some(idp) = state.idp.clone() else {
        return unavailable();
    };
    json(StatusCode::OK, &idp.key.jwks())
}

const REL_ISSUER: &str = "http://openid.net/specs/connect/1.0/issuer";
const REL_INSTANCE: &str = "http://webfinger.owncloud/rel/server-instance";

/// WebFinger (RFC 7033): the issuer relation (this server, or the external provider) for anyone,
/// the instance relation with a valid token.
async fn webfinger(State(state): State<AppState>, req: Request) -> Response {
    let base = request_base(&state, &req);
    let issuer = match &state.external {
        Some(e) => e.opts.issuer.clone(),
        None => base.clone(),
    };
    let query = req.uri().query().unwrap_or_default();
    let mut resource = None;
    let mut rels = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "resource" => resource = Some(v.into_owned()),
            "rel" => rels.push(v.into_owned()),
            _ => {}
        }
    }
    let Some(resource) = resource else {
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": "resource is required"}),
        );
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let authorized = match bearer {
        Some(t) => crate::auth::bearer(&state, req.headers(), &t).await.is_ok(),
        None => false,
    };
    let wanted = |rel: &str| rels.is_empty() || rels.iter().any(|r| r == rel);
    let mut links = Vec::new();
    if wanted(REL_INSTANCE) && authorized {
        links.push(
            serde_json::json!({"rel": REL_INSTANCE, "href": base, "titles": {"en": "Hearth"}}),
        );
    }
    if wanted(REL_ISSUER) {
        links.push(serde_json::json!({"rel": REL_ISSUER, "href": issuer}));
    }
    let mut r = json(
        StatusCode::OK,
        &serde_json::json!({"subject": resource, "links": links}),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jrd+json"),
    );
    r
}

/// Seconds since the epoch, signed (store records).
pub(crate) fn now_secs_i64() -> i64 {
    i64::try_from(now_secs()).unwrap_or(i64::MAX)
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
