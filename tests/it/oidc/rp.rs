//! Third-party relying parties against the embedded provider over real HTTPS, trusting only the
//! generated CA (`<data_dir>/tls/ca.crt`): the `openidconnect` crate (code + PKCE for the public
//! `web` client and the confidential desktop client, ID token verification, WebDAV and OCS with the
//! access token, userinfo, refresh, revocation, RP-initiated logout), and Authlib (Python).

use super::{DESKTOP, DESKTOP_SECRET};
use crate::harness::{TestServer, between};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreRevocableToken, CoreSubjectIdentifierType, CoreTokenResponse,
    CoreUserInfoClaims,
};
use openidconnect::url::Url;
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalProviderMetadata, AsyncHttpClient, AuthorizationCode,
    ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IssuerUrl, LogoutProviderMetadata, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl, RefreshToken,
    RequestTokenError, RevocationUrl, Scope, TokenResponse,
};
use serde_json::Value;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

/// `revocation_endpoint` (RFC 8414), which the core metadata type does not carry.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct RevocationMetadata {
    revocation_endpoint: Option<RevocationUrl>,
}
impl AdditionalProviderMetadata for RevocationMetadata {}

/// The core provider metadata plus `end_session_endpoint` and `revocation_endpoint`.
type Metadata = ProviderMetadata<
    LogoutProviderMetadata<RevocationMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// openidconnect's HTTP client over our reqwest 0.13 (its own `reqwest` feature is reqwest 0.12).
struct Https(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for Https {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, reqwest::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.execute(reqwest::Request::try_from(request)?).await?;
            let (status, headers) = (response.status(), response.headers().clone());
            let mut out = openidconnect::http::Response::new(response.bytes().await?.to_vec());
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

/// A client that trusts only the server's generated CA and never follows redirects (as
/// openidconnect requires, and as the tests need to see the 303s of the login form).
fn ca_client(data_dir: &Path) -> reqwest::Client {
    let pem = std::fs::read(data_dir.join("tls").join("ca.crt")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A server whose main listener speaks HTTPS; returns it and the HTTPS port.
async fn https_server() -> (TestServer, u16) {
    let s = TestServer::start_with(|cfg| cfg.tls.enabled = true).await;
    let port = s.handle.as_ref().unwrap().https_addr().unwrap().port();
    (s, port)
}

/// Plays the browser: opens the authorization URL, reads the login form (CSRF field, cookie,
/// action), posts alice's credentials, and returns where the provider redirects to.
async fn browser_sign_in(browser: &reqwest::Client, authorize: &Url) -> Url {
    let r = browser.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 200, "the login form");
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let page = r.text().await.unwrap();
    let login = between(&page, "name=\"login\" value=\"", "\"").unwrap();
    let action = authorize
        .join(&between(&page, "<form method=\"post\" action=\"", "\"").unwrap())
        .unwrap();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("login", &login)
        .append_pair("user", "alice")
        .append_pair("password", "secret")
        .finish();
    let r = browser
        .post(action.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// PROPFIND on alice's root and OCS' current user with a Bearer token: (DAV status, OCS status,
/// OCS user id).
async fn use_token(c: &reqwest::Client, base: &str, token: &AccessToken) -> (u16, u16, Value) {
    let dav = crate::harness::propfind_bearer(c, base, "alice", token.secret()).await;
    let r = c
        .get(format!("{base}/ocs/v2.php/cloud/user?format=json"))
        .bearer_auth(token.secret())
        .send()
        .await
        .unwrap();
    let ocs = r.status().as_u16();
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null);
    (dav, ocs, body["ocs"]["data"]["id"].clone())
}

/// A client built from discovery, with its redirect URI and the revocation endpoint set.
type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovers the provider at `base` (the issuer must be exactly `base`).
async fn discover(http: &Https, base: &str) -> Metadata {
    let meta = Metadata::discover_async(IssuerUrl::new(base.to_owned()).unwrap(), http)
        .await
        .unwrap();
    assert_eq!(meta.issuer().as_str(), base);
    assert!(
        meta.token_endpoint()
            .unwrap()
            .as_str()
            .starts_with("https://")
    );
    meta
}

fn relying_party(meta: &Metadata, id: &str, secret: Option<&str>, redirect: &str) -> Rp {
    let extra = &meta.additional_metadata().additional_metadata;
    CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new(id.to_owned()),
        secret.map(|s| ClientSecret::new(s.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap())
    .set_revocation_url(extra.revocation_endpoint.clone().unwrap())
}

/// What one code + PKCE sign-in yields.
struct SignedIn {
    access: AccessToken,
    refresh: RefreshToken,
    subject: String,
}

/// The whole front channel and the code exchange: authorization URL with PKCE S256, nonce and
/// state; the browser signs in; the code is exchanged with the verifier; the ID token is
/// verified (signature from the JWKS, issuer, audience, expiry, nonce, at_hash).
async fn sign_in(rp: &Rp, http: &Https, browser: &reqwest::Client, issuer: &str) -> SignedIn {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert_eq!(
        query(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let back = browser_sign_in(browser, &url).await;
    let redirect = rp.redirect_uri().unwrap().url();
    assert_eq!(
        (back.scheme(), back.host_str(), back.port(), back.path()),
        (
            redirect.scheme(),
            redirect.host_str(),
            redirect.port(),
            redirect.path()
        ),
        "{back}"
    );
    assert_eq!(
        query(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = AuthorizationCode::new(query(&back, "code").unwrap());
    let tokens = rp
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap().clone();
    let verifier = rp.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.issuer().as_str(), issuer);
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("alice")
    );
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    SignedIn {
        access: tokens.access_token().clone(),
        refresh: tokens.refresh_token().unwrap().clone(),
        subject: claims.subject().as_str().to_owned(),
    }
}

/// Refreshes; the provider must refuse with `invalid_grant`.
/// A successful refresh-token grant.
async fn refreshed(rp: &Rp, http: &Https, rt: &RefreshToken) -> CoreTokenResponse {
    rp.exchange_refresh_token(rt)
        .unwrap()
        .request_async(http)
        .await
        .unwrap()
}

async fn assert_refresh_refused(rp: &Rp, http: &Https, rt: &RefreshToken) {
    match rp
        .exchange_refresh_token(rt)
        .unwrap()
        .request_async(http)
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error(), &CoreErrorResponseType::InvalidGrant, "{e:?}");
        }
        other => panic!("the refresh token still works: {other:?}"),
    }
}

/// The public `web` client on `https://localhost:<port>`: discovery, code + PKCE, ID token,
/// WebDAV + OCS + userinfo with the access token, refresh (rotation; the new access token
/// works), then RFC 7009 revocation of the refresh token ends the grant.
#[tokio::test]
async fn openidconnect_web_client_over_https() {
    let (s, port) = https_server().await;
    let base = format!("https://localhost:{port}");
    let c = ca_client(s.dir.path());
    let http = Https(c.clone());
    // Without the CA, a client refuses the server's certificate.
    let untrusting = reqwest::Client::new();
    let e = untrusting
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");

    let meta = discover(&http, &base).await;
    let extra = &meta.additional_metadata();
    assert_eq!(
        extra.end_session_endpoint.as_ref().unwrap().url().as_str(),
        format!("{base}/signin/v1/identifier/_/endsession")
    );
    let rp = relying_party(&meta, "web", None, &format!("{base}/oidc-callback.html"));
    let t = sign_in(&rp, &http, &c, &base).await;
    assert_eq!(
        use_token(&c, &base, &t.access).await,
        (207, 200, Value::from("alice"))
    );
    let info: CoreUserInfoClaims = rp
        .user_info(t.access.clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), t.subject);
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));

    // Refresh: a new access token that works, a rotated refresh token, a fresh ID token.
    let t2 = refreshed(&rp, &http, &t.refresh).await;
    let rt2 = t2.refresh_token().unwrap().clone();
    assert_ne!(rt2.secret(), t.refresh.secret());
    assert_ne!(t2.access_token().secret(), t.access.secret());
    assert_eq!(
        use_token(&c, &base, t2.access_token()).await,
        (207, 200, Value::from("alice"))
    );
    let id2 = t2.id_token().unwrap();
    let claims2 = id2
        .claims(&rp.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(claims2.subject().as_str(), t.subject);

    // Revocation (RFC 7009) of the refresh token: refused afterwards, and its access token too.
    rp.revoke_token(CoreRevocableToken::RefreshToken(rt2.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_refresh_refused(&rp, &http, &rt2).await;
    assert_eq!(use_token(&c, &base, t2.access_token()).await.0, 401);
    s.stop().await;
}

/// The confidential desktop client (id + secret, PKCE, loopback redirect on any port) on
/// `https://127.0.0.1:<port>` (the certificate names the address too): sign-in, WebDAV + OCS,
/// refresh, then RP-initiated logout with the ID token ends the grant.
#[tokio::test]
async fn openidconnect_desktop_client_over_https_on_the_ip_address() {
    let (s, port) = https_server().await;
    let base = format!("https://127.0.0.1:{port}");
    let c = ca_client(s.dir.path());
    let http = Https(c.clone());
    let meta = discover(&http, &base).await;
    // A loopback port of our own, as the desktop client listens on one.
    let loopback = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect = format!(
        "http://127.0.0.1:{}/",
        loopback.local_addr().unwrap().port()
    );
    let rp = relying_party(&meta, DESKTOP, Some(DESKTOP_SECRET), &redirect);
    let t = sign_in(&rp, &http, &c, &base).await;
    assert_eq!(
        use_token(&c, &base, &t.access).await,
        (207, 200, Value::from("alice"))
    );
    let t2 = refreshed(&rp, &http, &t.refresh).await;
    let rt2 = t2.refresh_token().unwrap().clone();
    assert_eq!(use_token(&c, &base, t2.access_token()).await.0, 207);

    // RP-initiated logout: the browser opens the end-session URL; back to the app with its state.
    let end_session = meta
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .unwrap();
    let logout_state = CsrfToken::new_random();
    let logout = LogoutRequest::from(end_session)
        .set_id_token_hint(t2.id_token().unwrap())
        .set_client_id(ClientId::new(DESKTOP.to_owned()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(redirect.clone()).unwrap())
        .set_state(logout_state.clone())
        .http_get_url();
    let r = c.get(logout.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let back = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(&redirect), "{back}");
    assert_eq!(
        query(&back, "state").as_deref(),
        Some(logout_state.secret().as_str())
    );
    assert_refresh_refused(&rp, &http, &rt2).await;
    assert_eq!(use_token(&c, &base, t2.access_token()).await.0, 401);
    assert_eq!(use_token(&c, &base, &t.access).await.0, 401);
    drop(loopback);
    s.stop().await;
}

/// Authlib 1.9 (Python) as the relying party over HTTPS, trusting only the CA: discovery, code +
/// PKCE S256 for `web`, the login form, ID token validation with Authlib's JOSE against the JWKS,
/// WebDAV and OCS, refresh, revocation. `python/oidc_authlib.py` prints what it saw.
#[tokio::test]
#[ignore = "needs Authlib (CI installs it)"]
async fn authlib_web_client_over_https() {
    let (s, port) = https_server().await;
    let base = format!("https://localhost:{port}");
    let ca = s.dir.path().join("tls").join("ca.crt");
    let stdout = crate::harness::run_python(
        "oidc_authlib.py",
        &[base.as_ref(), ca.as_ref(), s.user.as_ref(), s.pass.as_ref()],
    )
    .await;
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "issuer": base,
            "token_type": "Bearer",
            "id_token": {"iss": base, "aud": "web", "preferred_username": "alice", "nonce_ok": true},
            "wrong_nonce_rejected": true,
            "propfind": 207,
            "ocs": 200,
            "ocs_id": "alice",
            "refresh_rotated": true,
            "refreshed_propfind": 207,
            "revocation": 200,
            "refresh_after_revocation": "invalid_grant",
            "propfind_after_revocation": 401,
        })
    );
    s.stop().await;
}
