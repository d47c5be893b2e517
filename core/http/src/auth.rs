//! Who is calling: HTTP Basic credentials (RFC 7617) checked by the domain's authenticator.
//! `Bearer` access tokens from the embedded OpenID Connect provider yield the same `Principal`.

use crate::util::blocking;
use crate::{ApiError, AppState};
use base64::Engine;
use hearth_domain::{CoreError, Principal};
use http::HeaderMap;
use std::net::IpAddr;

/// Authenticates a request or fails with 401 (or 429 while throttled).
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    addr: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(ApiError(CoreError::Unauthenticated));
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(ApiError(CoreError::Unauthenticated));
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return bearer(state, headers, rest.trim()).await;
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError(CoreError::Unauthenticated));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(ApiError(CoreError::Unauthenticated))?;
    let (user, pass) = decoded
        .split_once(':')
        .ok_or(ApiError(CoreError::Unauthenticated))?;
    if let Some(p) = state.core.auth.cached(user, pass) {
        return Ok(p);
    }
    let (user, pass) = (user.to_owned(), pass.to_owned());
    let auth = state.core.auth.clone();
    blocking(move || auth.verify_basic(&user, &pass, addr)).await
}

/// A Bearer access token: signature (ES256 only), issuer, audience, expiry, not revoked; then the
/// account it names must still exist.
async fn bearer(state: &AppState, headers: &HeaderMap, token: &str) -> Result<Principal, ApiError> {
    let user = crate::oidc::verify_access(state, token, headers)
        .ok_or(ApiError(CoreError::Unauthenticated))?;
    let core = state.core.clone();
    blocking(move || {
        let account = core
            .accounts
            .get_by_id(user)?
            .ok_or(CoreError::Unauthenticated)?;
        core.auth
            .principal_of(&account.username)?
            .ok_or(CoreError::Unauthenticated)
    })
    .await
}
