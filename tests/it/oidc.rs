//! The embedded OpenID Connect provider over real HTTP: discovery, the login form, code + PKCE,
//! tokens used on WebDAV and OCS, refresh rotation and reuse detection, and the refusals.
//! The relying party is hand-driven with reqwest; ID tokens are verified with jsonwebtoken.
//! Third-party relying parties (the `openidconnect` crate, Authlib) over HTTPS are in `rp.rs`.

mod external;
mod lifecycle;
mod rp;

use crate::harness::TestServer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use reqwest::Client;
use serde_json::Value;
use sha2::{Digest, Sha256};

const DESKTOP: &str = "xdXOt13JKxym1B1QcEncf2XDkLAexMBFwiT9j6EfhhHFJhs2KM9jbjTmf8JBXE69";
const DESKTOP_SECRET: &str = "UBntmLjC2yYCeHwsyj73Uwo9TAaecAetRwMw0xYcvNL9yRdLSUi0hUAHfvCHFeFh";
const REDIRECT: &str = "http://127.0.0.1:45678";
const VERIFIER: &str = "a-long-random-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

fn challenge(v: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

fn no_redirect() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn query_param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn authorize_url(s: &TestServer, client: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("scope", "openid offline_access profile email"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
    ];
    pairs.extend_from_slice(extra);
    format!(
        "{}/signin/v1/identifier/_/authorize?{}",
        s.base,
        form(&pairs)
    )
}

/// Opens the login form; returns (status, CSRF/login id, cookie).
async fn open_form(c: &Client, url: &str) -> (u16, String, String) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    let login = crate::harness::between(&body, "name=\"login\" value=\"", "\"").unwrap_or_default();
    (status, login, cookie)
}

/// Posts the login form like a browser; returns the response.
async fn post_form(
    c: &Client,
    s: &TestServer,
    login: &str,
    cookie: &str,
    user: &str,
    pass: &str,
) -> reqwest::Response {
    c.post(format!("{}/signin/v1/identifier/_/authorize", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(form(&[
            ("login", login),
            ("user", user),
            ("password", pass),
        ]))
        .send()
        .await
        .unwrap()
}

/// The desktop flow up to the code.
async fn code_for(s: &TestServer, c: &Client, extra: &[(&str, &str)]) -> String {
    code_as(s, c, "alice", "secret", extra).await
}

/// The desktop flow up to the code, signing in as `user`.
async fn code_as(
    s: &TestServer,
    c: &Client,
    user: &str,
    pass: &str,
    extra: &[(&str, &str)],
) -> String {
    let ch = challenge(VERIFIER);
    let mut params = vec![
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let (status, login, cookie) = open_form(c, &authorize_url(s, DESKTOP, REDIRECT, &params)).await;
    assert_eq!(status, 200);
    assert!(cookie.starts_with("hearth_login="));
    let r = post_form(c, s, &login, &cookie, user, pass).await;
    assert_eq!(r.status().as_u16(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(&format!("{REDIRECT}?")), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st4te"));
    query_param(&loc, "code").unwrap()
}

async fn token(s: &TestServer, c: &Client, pairs: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .post(format!("{}/konnect/v1/token", s.base))
        .basic_auth(DESKTOP, Some(DESKTOP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

async fn exchange(s: &TestServer, c: &Client, code: &str, verifier: &str) -> (u16, Value) {
    token(
        s,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", DESKTOP),
            ("client_secret", DESKTOP_SECRET),
        ],
    )
    .await
}

/// Two forgeries of a JWT: its payload naming `user` under the original signature, and the
/// original payload with `alg: none` and no signature.
fn forgeries(token: &str, user: &str) -> (String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["preferred_username"] = user.into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        parts[1]
    );
    (tampered, none)
}

async fn propfind(s: &TestServer, bearer: &str) -> u16 {
    crate::harness::propfind_bearer(&s.client, &s.base, &s.user, bearer).await
}

#[tokio::test]
async fn discovery_jwks_webfinger_and_challenges() {
    let s = TestServer::start().await;
    let c = Client::new();
    let d: Value = serde_json::from_str(
        &c.get(format!("{}/.well-known/openid-configuration", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(d["issuer"], s.base.as_str());
    assert_eq!(
        d["authorization_endpoint"],
        format!("{}/signin/v1/identifier/_/authorize", s.base)
    );
    assert_eq!(d["token_endpoint"], format!("{}/konnect/v1/token", s.base));
    assert_eq!(d["jwks_uri"], format!("{}/konnect/v1/jwks.json", s.base));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert!(d["end_session_endpoint"].is_string() && d["revocation_endpoint"].is_string());
    let jwks: Value = serde_json::from_str(
        &c.get(format!("{}/konnect/v1/jwks.json", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(jwks["keys"][0]["kid"].is_string());
    let wf: Value = serde_json::from_str(
        &c.get(format!(
            "{}/.well-known/webfinger?resource=acct:alice@localhost",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        wf["links"][0]["rel"],
        "http://openid.net/specs/connect/1.0/issuer"
    );
    assert_eq!(wf["links"][0]["href"], s.base.as_str());
    // The key is kept (0600) and reused across restarts.
    let key = s.dir.path().join("idp").join("signing-key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // 401 carries both challenges (the desktop picks OAuth from the Bearer one).
    for url in [s.dav(""), format!("{}/ocs/v1.php/cloud/user", s.base)] {
        let r = c.get(url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let ch: Vec<_> = r
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(ch.iter().any(|v| v.starts_with("Basic ")), "{ch:?}");
        assert!(
            ch.iter().any(|v| v.starts_with("Bearer realm=\"Hearth\"")),
            "{ch:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn desktop_code_flow_with_pkce_refresh_and_reuse_detection() {
    let s = TestServer::start().await;
    let c = no_redirect();
    let code = code_for(&s, &c, &[]).await;
    let (status, t) = exchange(&s, &c, &code, VERIFIER).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    let at = t["access_token"].as_str().unwrap().to_owned();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    // The ID token verifies against the published JWKS.
    let jwks: Value = serde_json::from_str(
        &c.get(format!("{}/konnect/v1/jwks.json", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[DESKTOP]);
    v.set_issuer(&[s.base.as_str()]);
    let id = jsonwebtoken::decode::<Value>(
        t["id_token"].as_str().unwrap(),
        &DecodingKey::from_jwk(&jwk).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(id["nonce"], "n0nce");
    assert_eq!(id["preferred_username"], "alice");
    let at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(at.as_bytes())[..16]);
    assert_eq!(id["at_hash"], at_hash.as_str());
    // The access token works on WebDAV, OCS and userinfo.
    assert_eq!(propfind(&s, &at).await, 207);
    let r = Client::new()
        .get(format!("{}/ocs/v1.php/cloud/user?format=json", s.base))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ocs: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(ocs["ocs"]["data"]["id"], "alice");
    let ui: Value = serde_json::from_str(
        &c.get(format!("{}/konnect/v1/userinfo", s.base))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ui["preferred_username"], "alice");
    assert_eq!(ui["sub"], id["sub"]);
    // Refresh rotates the refresh token.
    let (status, t2) = token(
        &s,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    let at2 = t2["access_token"].as_str().unwrap().to_owned();
    assert_ne!(rt, rt2);
    assert_eq!(propfind(&s, &at2).await, 207);
    // Replaying the old refresh token is refused and revokes the whole family.
    let (status, e) = token(
        &s,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = token(
        &s,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(propfind(&s, &at2).await, 401);
    assert_eq!(propfind(&s, &at).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn login_form_refusals() {
    let s = TestServer::start().await;
    let c = no_redirect();
    let ch = challenge(VERIFIER);
    let pkce = [
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // Wrong password and unknown user: the same answer.
    let (_, login, cookie) = open_form(&c, &authorize_url(&s, DESKTOP, REDIRECT, &pkce)).await;
    let a = post_form(&c, &s, &login, &cookie, "alice", "wrong").await;
    let (sa, ba) = (a.status().as_u16(), a.text().await.unwrap());
    let b = post_form(&c, &s, &login, &cookie, "nobody", "wrong").await;
    let (sb, bb) = (b.status().as_u16(), b.text().await.unwrap());
    assert_eq!((sa, sb), (401, 401));
    assert_eq!(ba.replace("alice", "nobody"), bb);
    // Without the CSRF cookie the form is refused.
    let r = post_form(&c, &s, &login, "", "alice", "secret").await;
    assert_eq!(r.status(), 400);
    // Unknown client and unregistered redirect URI: an error page, never a redirect.
    let (st, _, _) = open_form(&c, &authorize_url(&s, "nope", REDIRECT, &pkce)).await;
    assert_eq!(st, 400);
    let (st, _, _) = open_form(
        &c,
        &authorize_url(&s, DESKTOP, "https://evil.example/", &pkce),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _, _) = open_form(
        &c,
        &authorize_url(&s, "web", "https://evil.example/oidc-callback.html", &pkce),
    )
    .await;
    assert_eq!(st, 400);
    // `plain` is refused; a public client without PKCE is refused.
    for (client, redirect, extra) in [
        (
            DESKTOP,
            REDIRECT.to_owned(),
            vec![
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ),
        ("web", format!("{}/oidc-callback.html", s.base), vec![]),
    ] {
        let r = c
            .get(authorize_url(&s, client, &redirect, &extra))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"].to_str().unwrap();
        assert_eq!(
            query_param(loc, "error").as_deref(),
            Some("invalid_request"),
            "{loc}"
        );
    }
    // Repeated failures are throttled with Retry-After.
    let mut last = 0;
    for _ in 0..8 {
        let r = post_form(&c, &s, &login, &cookie, "alice", "wrong").await;
        last = r.status().as_u16();
        if last == 429 {
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(last, 429);
    s.stop().await;
}

#[tokio::test]
async fn token_endpoint_refusals() {
    let s = TestServer::start().await;
    let c = no_redirect();
    // Missing and wrong verifier.
    let code = code_for(&s, &c, &[]).await;
    let (st, e) = exchange(&s, &c, &code, "").await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
    let code = code_for(&s, &c, &[]).await;
    let (st, _) = exchange(
        &s,
        &c,
        &code,
        "another-verifier-that-is-long-enough-0123456789-abcdefgh",
    )
    .await;
    assert_eq!(st, 400);
    // Wrong client secret.
    let code = code_for(&s, &c, &[]).await;
    let r = c
        .post(format!("{}/konnect/v1/token", s.base))
        .basic_auth(DESKTOP, Some("wrong"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A reused code is refused and revokes the tokens issued from it.
    let code = code_for(&s, &c, &[]).await;
    let (st, t) = exchange(&s, &c, &code, VERIFIER).await;
    assert_eq!(st, 200);
    let at = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(propfind(&s, &at).await, 207);
    let (st, e) = exchange(&s, &c, &code, VERIFIER).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(propfind(&s, &at).await, 401);
    let (st, _) = token(
        &s,
        &c,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(st, 400);
    s.stop().await;
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let s = TestServer::start().await;
    let c = no_redirect();
    let code = code_for(&s, &c, &[]).await;
    let (_, t) = exchange(&s, &c, &code, VERIFIER).await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(propfind(&s, &at).await, 207);
    let parts: Vec<&str> = at.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    // Tampered payload (same signature), and `alg: none`.
    let (forged, none) = forgeries(&at, "admin");
    assert_eq!(propfind(&s, &forged).await, 401);
    assert_eq!(propfind(&s, &none).await, 401);
    // Signed with the real key (read from the data dir) but expired, or for another audience,
    // or from another issuer.
    let pem = std::fs::read_to_string(s.dir.path().join("idp").join("signing-key.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let key = EncodingKey::from_ec_der(&der);
    let header = jsonwebtoken::decode_header(&at).unwrap();
    let sign = |c: &Value| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = header.kid.clone();
        h.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&h, c, &key).unwrap()
    };
    assert_eq!(
        propfind(&s, &sign(&claims)).await,
        207,
        "a re-signed valid token works"
    );
    let mut expired = claims.clone();
    expired["exp"] = (claims["iat"].as_u64().unwrap() - 3600).into();
    assert_eq!(propfind(&s, &sign(&expired)).await, 401);
    let mut aud = claims.clone();
    aud["aud"] = "someone-else".into();
    assert_eq!(propfind(&s, &sign(&aud)).await, 401);
    claims["iss"] = "https://evil.example".into();
    assert_eq!(propfind(&s, &sign(&claims)).await, 401);
    // An ID token is not an access token.
    assert_eq!(propfind(&s, t["id_token"].as_str().unwrap()).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn app_passwords_do_not_open_a_sign_in_session() {
    let s = TestServer::start().await;
    let r = s
        .req("POST", &format!("{}/api/v1/app-passwords", s.base))
        .header("Content-Type", "application/json")
        .body(r#"{"name":"phone"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let app_pw = body["password"].as_str().unwrap().to_owned();
    // The app password works for Basic-auth clients…
    let r = s
        .client
        .get(s.dav(""))
        .basic_auth("alice", Some(&app_pw))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 401);
    // …but the sign-in form answers it like a wrong password.
    let c = no_redirect();
    let ch = challenge(VERIFIER);
    let pkce = [
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let (_, login, cookie) = open_form(&c, &authorize_url(&s, DESKTOP, REDIRECT, &pkce)).await;
    let r = post_form(&c, &s, &login, &cookie, "alice", &app_pw).await;
    assert_eq!(r.status(), 401);
    s.stop().await;
}

/// An authorization code used after its lifetime (1 s here) is refused with `invalid_grant`
/// and yields no tokens; one redeemed in time works.
#[tokio::test]
async fn an_expired_code_is_refused() {
    let s = TestServer::start_with(|cfg| cfg.auth.oidc_code_ttl_secs = 1).await;
    let c = no_redirect();
    let fresh = code_for(&s, &c, &[]).await;
    let stale = code_for(&s, &c, &[]).await;
    let (st, t) = exchange(&s, &c, &fresh, VERIFIER).await;
    assert_eq!(st, 200, "{t}");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (st, e) = exchange(&s, &c, &stale, VERIFIER).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    for field in ["access_token", "id_token", "refresh_token"] {
        assert!(e.get(field).is_none(), "{e}");
    }
    // Still refused on a second try (not a replay: nothing was issued from it).
    let (st, e) = exchange(&s, &c, &stale, VERIFIER).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
    // The tokens of the code redeemed in time are untouched.
    assert_eq!(propfind(&s, t["access_token"].as_str().unwrap()).await, 207);
    s.stop().await;
}
