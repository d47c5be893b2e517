//! Who is calling: HTTP Basic credentials (RFC 7617) checked by the domain's authenticator.
//! `Bearer` access tokens from the embedded OpenID Connect provider, or from the external one
//! configured instead, yield the same `Principal`.

use crate::oidc::external::ExternalIdp;
use crate::util::blocking;
use crate::{ApiError, AppState};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
/// account it names must still exist. With an external provider: see [`external_bearer`].
pub(crate) async fn bearer(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
) -> Result<Principal, ApiError> {
    if let Some(ext) = state.external.clone() {
        return external_bearer(state, &ext, token).await;
    }
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

/// A token of the external provider: verified there (keys, issuer, client, times), then its login
/// name claim must name an account, which is created first when so configured.
async fn external_bearer(
    state: &AppState,
    ext: &ExternalIdp,
    token: &str,
) -> Result<Principal, ApiError> {
    let id = ext.verify(token).await.map_err(|reason| {
        tracing::debug!(%reason, "external access token refused");
        ApiError(CoreError::Unauthenticated)
    })?;
    let core = state.core.clone();
    let auto_create = ext.opts.auto_create;
    blocking(move || {
        if let Some(p) = core.auth.principal_of(&id.username)? {
            return Ok(p);
        }
        if !auto_create {
            tracing::info!(user = %id.username, "valid external token for an unknown account (external_auto_create is off)");
            return Err(CoreError::Unauthenticated);
        }
        // Nobody knows this password: the account signs in through the provider only (and with
        // app passwords created later).
        let password = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        match core
            .accounts
            .add(&id.username, &password, id.display_name.as_deref())
        {
            Ok(_) => tracing::info!(user = %id.username, "created an account for an external sign-in"),
            // A concurrent request created it first.
            Err(CoreError::AlreadyExists(_)) => {}
            Err(CoreError::BadRequest(why)) => {
                tracing::warn!(user = %id.username, %why, "cannot create an account for this external login name");
                return Err(CoreError::Unauthenticated);
            }
            Err(e) => return Err(e),
        }
        core.auth
            .principal_of(&id.username)?
            .ok_or(CoreError::Unauthenticated)
    })
    .await
}
