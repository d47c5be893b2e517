//! Token, userinfo, revocation and end-session endpoints.

use super::grants::Refused;
use super::keys::at_hash;
use super::{
    ACCESS_TTL_SECS, ACCESS_TYP, AccessClaims, Idp, clients, json, now_secs, request_base,
};
use crate::AppState;
use crate::util::blocking;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hearth_store::UserRecord;
use hearth_types::UserId;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The ID token's claims.
#[derive(Debug, Serialize, Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    at_hash: String,
    sid: String,
    name: String,
    preferred_username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// Runs blocking grant work (store writes) off the async threads.
async fn off<T: Send + 'static>(
    idp: &Arc<Idp>,
    f: impl FnOnce(&Idp) -> T + Send + 'static,
) -> Option<T> {
    let idp = idp.clone();
    tokio::task::spawn_blocking(move || f(&idp)).await.ok()
}

fn server_error() -> Response {
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "internal error",
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = json(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Hearth\""),
        );
    }
    r
}

async fn read_form(req: Request) -> (HeaderMap, HashMap<String, String>) {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let form = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (parts.headers, form)
}

/// Client authentication: Basic (`client_secret_basic`) or form fields (`client_secret_post`/`none`).
fn client_of(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<&'static clients::Client> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match &basic {
        Some(pair) => match pair.split_once(':') {
            Some((i, s)) => (Some(i.to_owned()), Some(s.to_owned())),
            None => (None, None),
        },
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    let client = id.as_deref().and_then(clients::find);
    client.filter(|c| c.secret_ok(secret.as_deref()))
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    )
}

async fn account(state: &AppState, user: UserId) -> Option<UserRecord> {
    let accounts = state.core.accounts.clone();
    blocking(move || accounts.get_by_id(user))
        .await
        .ok()
        .flatten()
}

/// `POST /konnect/v1/token`.
pub(crate) async fn token(State(state): State<AppState>, req: Request) -> Response {
    let Some(idp) = state.idp.clone() else {
        return super::unavailable();
    };
    let issuer = request_base(&state, &req);
    let (headers, form) = read_form(req).await;
    let Some(client) = client_of(&headers, &form) else {
        return invalid_client();
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let (user, scope, family, nonce) = match field("grant_type") {
        "authorization_code" => {
            let code_text = field("code").to_owned();
            let redeemed = off(&idp, move |i| i.grants.redeem_code(&code_text)).await;
            let code = match redeemed.unwrap_or(Err(Refused::Internal)) {
                Ok(c) => c,
                Err(Refused::Replayed) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "code already used; its tokens are revoked",
                    );
                }
                Err(Refused::Invalid) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "invalid or expired code",
                    );
                }
                Err(Refused::Internal) => return server_error(),
            };
            if code.req.client_id != client.id || code.req.redirect_uri != field("redirect_uri") {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "client or redirect_uri mismatch",
                );
            }
            if let Some(challenge) = &code.req.challenge {
                let verifier = field("code_verifier");
                let ok_len = (43..=128).contains(&verifier.len());
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                if !ok_len || !clients::constant_eq(computed.as_bytes(), challenge.as_bytes()) {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "PKCE verification failed",
                    );
                }
            }
            (code.user, code.req.scope, code.family, code.req.nonce)
        }
        "refresh_token" => match off(&idp, {
            let token = field("refresh_token").to_owned();
            move |i| i.grants.use_refresh(&token, client.id)
        })
        .await
        .unwrap_or(Err(Refused::Internal))
        {
            Ok(r) => (r.user, r.scope, r.family, None),
            Err(Refused::Internal) => return server_error(),
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "invalid refresh token",
                );
            }
        },
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            );
        }
    };
    let Some(account) = account(&state, user).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the account no longer exists",
        );
    };
    let now = now_secs();
    let access = AccessClaims {
        iss: issuer.clone(),
        sub: account.id.to_string(),
        aud: client.id.to_owned(),
        exp: now + ACCESS_TTL_SECS,
        iat: now,
        jti: super::grants::random_token(),
        preferred_username: account.username.clone(),
        sid: family.clone(),
        scope: scope.clone(),
    };
    let Ok(access_token) = idp.key.sign(ACCESS_TYP, &access) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "signing failed",
        );
    };
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let mut body = serde_json::Map::new();
    body.insert("access_token".into(), access_token.clone().into());
    body.insert("token_type".into(), "Bearer".into());
    body.insert("expires_in".into(), ACCESS_TTL_SECS.into());
    body.insert("scope".into(), scope.clone().into());
    if scopes.contains(&"openid") {
        let id = IdClaims {
            iss: issuer,
            sub: account.id.to_string(),
            aud: client.id.to_owned(),
            exp: now + ACCESS_TTL_SECS,
            iat: now,
            nonce,
            at_hash: at_hash(&access_token),
            sid: family.clone(),
            name: account.display_name.clone(),
            preferred_username: account.username.clone(),
            email: account.email.clone(),
        };
        match idp.key.sign("JWT", &id) {
            Ok(t) => {
                body.insert("id_token".into(), t.into());
            }
            Err(_) => {
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "signing failed",
                );
            }
        }
    }
    if scopes.contains(&"offline_access") {
        let (s, f) = (scope.clone(), family.clone());
        let issued = off(&idp, move |i| {
            i.grants.issue_refresh(client.id, user, &s, &f)
        })
        .await;
        match issued {
            Some(Ok(rt)) => {
                body.insert("refresh_token".into(), rt.into());
            }
            _ => return server_error(),
        }
    }
    json(StatusCode::OK, &serde_json::Value::Object(body))
}

/// `GET|POST /konnect/v1/userinfo`.
pub(crate) async fn userinfo(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| super::verify_access(&state, t.trim(), &headers));
    let account = match user {
        Some(u) => account(&state, u).await,
        None => None,
    };
    let Some(a) = account else {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"Hearth\", error=\"invalid_token\""),
        );
        return r;
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "sub": a.id.to_string(),
            "preferred_username": a.username,
            "name": a.display_name,
            "email": a.email,
        }),
    )
}

/// `POST /konnect/v1/revocation` (RFC 7009): a refresh token or an access token; always 200.
pub(crate) async fn revoke(State(state): State<AppState>, req: Request) -> Response {
    let Some(idp) = state.idp.clone() else {
        return super::unavailable();
    };
    let issuer = request_base(&state, &req);
    let (headers, form) = read_form(req).await;
    if client_of(&headers, &form).is_none() {
        return invalid_client();
    }
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let sid = idp
        .key
        .verify::<AccessClaims>(token, ACCESS_TYP, &[issuer], &clients::ids())
        .map(|c| c.sid);
    let token = token.to_owned();
    off(&idp, move |i| {
        i.grants.revoke_refresh(&token);
        if let Some(sid) = sid {
            i.grants.revoke_family(&sid);
        }
    })
    .await;
    StatusCode::OK.into_response()
}

/// `GET /signin/v1/identifier/_/endsession`: revokes the grant of `id_token_hint`, then
/// redirects to `post_logout_redirect_uri` when it is registered for that client.
pub(crate) async fn end_session(State(state): State<AppState>, req: Request) -> Response {
    let Some(idp) = state.idp.clone() else {
        return super::unavailable();
    };
    let issuer = request_base(&state, &req);
    let p: HashMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let hint = p.get("id_token_hint").and_then(|t| {
        idp.key
            .verify::<IdClaims>(t, "JWT", std::slice::from_ref(&issuer), &clients::ids())
    });
    if let Some(sid) = hint.as_ref().map(|c| c.sid.clone()) {
        off(&idp, move |i| i.grants.revoke_family(&sid)).await;
    }
    let target = p.get("post_logout_redirect_uri").filter(|u| {
        hint.as_ref()
            .and_then(|c| clients::find(&c.aud))
            .is_some_and(|c| c.redirect_ok(u, &issuer))
    });
    match target {
        Some(uri) => {
            let mut t = uri.clone();
            if let Some(s) = p.get("state") {
                let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("state", s).finish();
                t.push(if t.contains('?') { '&' } else { '?' });
                t.push_str(&q);
            }
            match HeaderValue::from_str(&t) {
                Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            }
        }
        None => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><meta name=\"viewport\" content=\"width=device-width\"><p>You are signed out of Hearth.</p>",
        )
            .into_response(),
    }
}
