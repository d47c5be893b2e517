//! An external OpenID Connect provider in place of the embedded one. Two real providers play it:
//! another Hearth (A, its embedded provider, tokens from the real code + PKCE flow) and a tiny
//! discovery + JWKS server inside the test whose keys the test controls (rotation, garbage `kid`s,
//! claims Hearth's provider never issues, the provider being down).

use super::*;
use axum::extract::State;
use axum::routing::get;
use hearth_server::Config;
use jsonwebtoken::jwk::Jwk;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ANDROID: &str = "e4rAsNUSIUs0lF4nbv9FmCeUkTlV9GdgTLDH1b5uie7syb90SzEVrbN7HIpmWJeD";
const ANDROID_SECRET: &str = "dInFYGV33xKzhbRmpqQltYNdfLdJIfJ9L5ISoKhNoT9qZftpdWSP71VrpGR9pmoD";
const ANDROID_REDIRECT: &str = "oc://android.owncloud.com";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn use_external(cfg: &mut Config, issuer: &str, client: &str) {
    cfg.oidc.external_issuer = Some(issuer.to_owned());
    cfg.oidc.external_client_id = Some(client.to_owned());
}

async fn add_account(s: &TestServer, name: &str, pass: &str, display: &str) {
    let core = s.handle.as_ref().unwrap().core().clone();
    let (n, p, d) = (name.to_owned(), pass.to_owned(), display.to_owned());
    tokio::task::spawn_blocking(move || core.accounts.add(&n, &p, Some(&d)).unwrap())
        .await
        .unwrap();
}

/// An access token from Hearth A's embedded provider for the desktop client.
async fn desktop_token(a: &TestServer, user: &str, pass: &str) -> String {
    let c = no_redirect();
    let code = code_as(a, &c, user, pass, &[]).await;
    let (status, t) = exchange(a, &c, &code, VERIFIER).await;
    assert_eq!(status, 200, "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

/// An access token from A for the Android app (another audience).
async fn android_token(a: &TestServer) -> String {
    let c = no_redirect();
    let ch = challenge(VERIFIER);
    let pkce = [
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let (_, login, cookie) =
        open_form(&c, &authorize_url(a, ANDROID, ANDROID_REDIRECT, &pkce)).await;
    let r = post_form(&c, a, &login, &cookie, "alice", "secret").await;
    assert_eq!(r.status(), 303);
    let code = query_param(r.headers()["location"].to_str().unwrap(), "code").unwrap();
    let r = c
        .post(format!("{}/konnect/v1/token", a.base))
        .basic_auth(ANDROID, Some(ANDROID_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", ANDROID_REDIRECT),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

async fn propfind_as(s: &TestServer, user: &str, bearer: &str) -> u16 {
    crate::harness::propfind_bearer(&s.client, &s.base, user, bearer).await
}

/// OCS `cloud/user` with a token: (status, data).
async fn ocs_user(s: &TestServer, bearer: &str) -> (u16, Value) {
    let r = Client::new()
        .get(format!("{}/ocs/v1.php/cloud/user?format=json", s.base))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null);
    (status, body["ocs"]["data"].clone())
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = no_redirect().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

/// A's signing key (read from its data dir) to forge tokens that only differ in one claim.
fn a_key(a: &TestServer) -> EncodingKey {
    let pem = std::fs::read_to_string(a.dir.path().join("idp").join("signing-key.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    EncodingKey::from_ec_der(&der)
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn another_hearth_as_the_external_provider() {
    let a = TestServer::start().await;
    add_account(&a, "carol", "carol-pw", "Carol C").await;
    let b = TestServer::start_with(|cfg| use_external(cfg, &a.base, DESKTOP)).await;

    // B points clients at A: discovery is A's document, webfinger names A as the issuer.
    let (st, d) = get_json(&format!("{}/.well-known/openid-configuration", b.base)).await;
    assert_eq!(st, 200);
    assert_eq!(d["issuer"], a.base.as_str());
    assert_eq!(d["token_endpoint"], format!("{}/konnect/v1/token", a.base));
    let (st, wf) = get_json(&format!(
        "{}/.well-known/webfinger?resource=acct:alice@localhost",
        b.base
    ))
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        wf["links"][0]["rel"],
        "http://openid.net/specs/connect/1.0/issuer"
    );
    assert_eq!(wf["links"][0]["href"], a.base.as_str());
    // B's own provider is gone: no login form, no tokens, no keys.
    let c = no_redirect();
    let ch = challenge(VERIFIER);
    let pkce = [
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = c
        .get(authorize_url(&b, DESKTOP, REDIRECT, &pkce))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains(&a.base));
    let (st, e) = token(
        &b,
        &c,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!((st, e["error"].as_str()), (404, Some("external_provider")));
    let (st, _) = get_json(&format!("{}/konnect/v1/jwks.json", b.base)).await;
    assert_eq!(st, 404);

    // A token from A works on B's WebDAV and OCS for an account B has.
    let at = desktop_token(&a, "alice", "secret").await;
    assert_eq!(propfind(&b, &at).await, 207);
    let (st, data) = ocs_user(&b, &at).await;
    assert_eq!((st, data["id"].as_str()), (200, Some("alice")));
    // …and opens webfinger's instance relation on B.
    let r = Client::new()
        .get(format!(
            "{}/.well-known/webfinger?resource=acct:alice@localhost",
            b.base
        ))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    let wf: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(
        wf["links"].as_array().unwrap().iter().any(|l| l["rel"]
            == "http://webfinger.owncloud/rel/server-instance"
            && l["href"] == b.base.as_str()),
        "{wf}"
    );

    // A's ID token (same key, same audience) is not an access token.
    let c = no_redirect();
    let code = code_as(&a, &c, "alice", "secret", &[]).await;
    let (_, t) = exchange(&a, &c, &code, VERIFIER).await;
    assert_eq!(propfind(&b, t["access_token"].as_str().unwrap()).await, 207);
    assert_eq!(propfind(&b, t["id_token"].as_str().unwrap()).await, 401);

    // An account B does not have: 401 (auto-create is off), and nothing is created.
    let carol = desktop_token(&a, "carol", "carol-pw").await;
    assert_eq!(
        propfind_as(&a, "carol", &carol).await,
        207,
        "A itself accepts it"
    );
    assert_eq!(propfind_as(&b, "carol", &carol).await, 401);
    assert_eq!(ocs_user(&b, &carol).await.0, 401);
    let core = b.handle.as_ref().unwrap().core().clone();
    let exists = tokio::task::spawn_blocking(move || core.accounts.get("carol").unwrap().is_some())
        .await
        .unwrap();
    assert!(!exists);

    // A token for another client of A (the Android app): wrong audience.
    let android = android_token(&a).await;
    assert_eq!(propfind(&a, &android).await, 207, "A itself accepts it");
    assert_eq!(propfind(&b, &android).await, 401);

    // Tampered payload (same signature), `alg: none`, and tokens re-signed with A's real key but
    // expired, not yet valid, or from another issuer.
    let claims = payload(&at);
    let (forged, none) = forgeries(&at, "carol");
    assert_eq!(propfind(&b, &forged).await, 401);
    assert_eq!(propfind(&b, &none).await, 401);
    let key = a_key(&a);
    let kid = jsonwebtoken::decode_header(&at).unwrap().kid;
    let sign = |c: &Value| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = kid.clone();
        h.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&h, c, &key).unwrap()
    };
    assert_eq!(propfind(&b, &sign(&claims)).await, 207, "re-signed as is");
    let mut expired = claims.clone();
    expired["exp"] = (now() - 600).into();
    assert_eq!(propfind(&b, &sign(&expired)).await, 401);
    let mut early = claims.clone();
    early["nbf"] = (now() + 600).into();
    assert_eq!(propfind(&b, &sign(&early)).await, 401);
    let mut other = claims.clone();
    other["iss"] = format!("{}/other", a.base).into();
    assert_eq!(propfind(&b, &sign(&other)).await, 401);

    // The account is removed on B: its tokens stop working there.
    let core = b.handle.as_ref().unwrap().core().clone();
    tokio::task::spawn_blocking(move || core.accounts.remove("alice").unwrap())
        .await
        .unwrap();
    assert_eq!(propfind(&b, &at).await, 401);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn auto_create_makes_the_account_on_the_first_token() {
    let a = TestServer::start().await;
    add_account(&a, "carol", "carol-pw", "Carol C").await;
    let b = TestServer::start_with(|cfg| {
        use_external(cfg, &a.base, DESKTOP);
        cfg.oidc.external_auto_create = true;
    })
    .await;
    let carol = desktop_token(&a, "carol", "carol-pw").await;
    assert_eq!(propfind_as(&b, "carol", &carol).await, 207);
    let (st, data) = ocs_user(&b, &carol).await;
    assert_eq!((st, data["id"].as_str()), (200, Some("carol")));
    let core = b.handle.as_ref().unwrap().core().clone();
    let rec = tokio::task::spawn_blocking(move || core.accounts.get("carol").unwrap())
        .await
        .unwrap()
        .expect("carol was created");
    // A's access tokens carry no `name`: the login name is the display name.
    assert_eq!(rec.display_name, "carol");
    // Nobody knows the generated password; A's password is not B's.
    let r = b
        .client
        .get(format!("{}/remote.php/dav/files/carol/", b.base))
        .basic_auth("carol", Some("carol-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The second token finds the account made by the first.
    let again = desktop_token(&a, "carol", "carol-pw").await;
    assert_eq!(propfind_as(&b, "carol", &again).await, 207);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn switching_to_an_external_provider_voids_embedded_tokens() {
    let a = TestServer::start().await;
    let mut b = TestServer::start().await;
    let own = desktop_token(&b, "alice", "secret").await;
    assert_eq!(propfind(&b, &own).await, 207);
    // Restart B on the same data dir and port (so the issuer string matches), now with A.
    let addr = b.handle.as_ref().unwrap().http_addr().unwrap();
    b.handle.take().unwrap().shutdown().await;
    let mut cfg = Config {
        data_dir: b.dir.path().to_path_buf(),
        listen: addr,
        ..Config::default()
    };
    cfg.jobs.scan_interval_secs = 0;
    use_external(&mut cfg, &a.base, DESKTOP);
    b.handle = Some(hearth_server::start(cfg).await.unwrap());
    assert!(
        b.dir.path().join("idp").join("signing-key.pem").exists(),
        "the old key stays on disk"
    );
    assert_eq!(propfind(&b, &own).await, 401, "B's old tokens are void");
    let (st, _) = token(
        &b,
        &no_redirect(),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(st, 404);
    let from_a = desktop_token(&a, "alice", "secret").await;
    assert_eq!(propfind(&b, &from_a).await, 207);
    b.stop().await;
    a.stop().await;
}

/// A provider the test controls: discovery and JWKS over real HTTP, keys swapped at will.
struct Tiny {
    base: String,
    /// Published JWKs.
    keys: Mutex<Vec<Value>>,
    /// The `issuer` the discovery document names (defaults to `base`).
    issuer: Mutex<Option<String>>,
    /// Answers 503 while false.
    up: std::sync::atomic::AtomicBool,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Tiny {
    async fn start() -> Arc<Tiny> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/realms/home", listener.local_addr().unwrap());
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let tiny = Arc::new(Tiny {
            base,
            keys: Mutex::new(Vec::new()),
            issuer: Mutex::new(None),
            up: true.into(),
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
            stop,
        });
        async fn discovery(State(t): State<Arc<Tiny>>) -> (http_status::StatusCode, String) {
            t.discovery_hits.fetch_add(1, Ordering::SeqCst);
            if !t.up.load(Ordering::SeqCst) {
                return (http_status::StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
            let issuer = t.issuer.lock().unwrap().clone().unwrap_or(t.base.clone());
            let doc = serde_json::json!({
                "issuer": issuer,
                "jwks_uri": format!("{}/protocol/openid-connect/certs", t.base),
                "authorization_endpoint": format!("{}/protocol/openid-connect/auth", t.base),
                "token_endpoint": format!("{}/protocol/openid-connect/token", t.base),
            });
            (http_status::StatusCode::OK, doc.to_string())
        }
        async fn jwks(State(t): State<Arc<Tiny>>) -> (http_status::StatusCode, String) {
            t.jwks_hits.fetch_add(1, Ordering::SeqCst);
            if !t.up.load(Ordering::SeqCst) {
                return (http_status::StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
            let keys = t.keys.lock().unwrap().clone();
            (
                http_status::StatusCode::OK,
                serde_json::json!({ "keys": keys }).to_string(),
            )
        }
        let app = axum::Router::new()
            .route(
                "/realms/home/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/home/protocol/openid-connect/certs", get(jwks))
            .with_state(tiny.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .unwrap();
        });
        tiny
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn hits(&self) -> (usize, usize) {
        (
            self.discovery_hits.load(Ordering::SeqCst),
            self.jwks_hits.load(Ordering::SeqCst),
        )
    }

    fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// The status codes of axum's re-exported `http` (the tests crate has no direct dependency).
mod http_status {
    pub use axum::http::StatusCode;
}

struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    fn rsa(kid: &str) -> Self {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let key = EncodingKey::from_rsa_der(pkcs1_of(&kp.serialize_der()));
        Self::new(kid, Algorithm::RS256, key)
    }

    fn ec(kid: &str) -> Self {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = EncodingKey::from_ec_der(&kp.serialize_der());
        Self::new(kid, Algorithm::ES256, key)
    }

    fn new(kid: &str, alg: Algorithm, key: EncodingKey) -> Self {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        Self {
            kid: kid.to_owned(),
            alg,
            key,
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(kid.to_owned());
        h.typ = Some("JWT".into());
        jsonwebtoken::encode(&h, claims, &self.key).unwrap()
    }
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (what jsonwebtoken wants):
/// SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING key }.
fn pkcs1_of(pkcs8: &[u8]) -> &[u8] {
    // (tag, header length, content length) of the element at the start of `d`.
    fn tlv(d: &[u8]) -> (u8, usize, usize) {
        match d[1] {
            n if n < 0x80 => (d[0], 2, n as usize),
            n => {
                let k = (n & 0x7f) as usize;
                let len = d[2..2 + k].iter().fold(0, |a, b| (a << 8) | *b as usize);
                (d[0], 2 + k, len)
            }
        }
    }
    let (_, h, _) = tlv(pkcs8);
    let mut rest = &pkcs8[h..];
    for _ in 0..2 {
        let (_, h, len) = tlv(rest);
        rest = &rest[h + len..];
    }
    let (tag, h, len) = tlv(rest);
    assert_eq!(tag, 0x04, "OCTET STRING");
    &rest[h..h + len]
}

/// Keycloak-shaped access-token claims: `aud: account`, the client in `azp`.
fn claims(tiny: &Tiny, login: &str) -> Value {
    serde_json::json!({
        "iss": tiny.base,
        "sub": format!("sub-{login}"),
        "aud": "account",
        "azp": "hearth",
        "exp": now() + 300,
        "iat": now(),
        "login": login,
        "name": format!("{login} from the IdP"),
    })
}

async fn start_against(tiny: &Tiny, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let issuer = tiny.base.clone();
    TestServer::start_with(move |cfg| {
        use_external(cfg, &issuer, "hearth");
        cfg.oidc.external_username_claim = "login".into();
        cfg.oidc.external_auto_create = true;
        cfg.oidc.external_jwks_refetch_secs = 1;
        tweak(cfg);
    })
    .await
}

#[tokio::test]
async fn keys_are_cached_refetched_on_rotation_and_rate_limited() {
    let tiny = Tiny::start().await;
    let k1 = SigningKey::rsa("k1");
    let k2 = SigningKey::ec("k2");
    tiny.publish(&[&k1]);
    let b = start_against(&tiny, |_| {}).await;
    assert_eq!(tiny.hits(), (0, 0), "nothing is fetched before a token");

    // RS256, `aud` + `azp` as Keycloak sends them; the account is created with the `name` claim.
    let t1 = k1.sign(&claims(&tiny, "dave"));
    assert_eq!(propfind_as(&b, "dave", &t1).await, 207);
    let (st, data) = ocs_user(&b, &t1).await;
    assert_eq!(st, 200);
    assert_eq!(data["id"], "dave");
    assert_eq!(data["display-name"], "dave from the IdP");
    assert_eq!(tiny.hits(), (1, 1));
    assert_eq!(propfind_as(&b, "dave", &t1).await, 207);
    assert_eq!(tiny.hits(), (1, 1), "keys are cached");

    // Garbage `kid`s: refused, and at most one fetch per interval whatever their number.
    let before = Instant::now();
    for i in 0..20 {
        let junk = k1.sign_as(&format!("junk-{i}"), &claims(&tiny, "dave"));
        assert_eq!(propfind_as(&b, "dave", &junk).await, 401);
    }
    let windows = before.elapsed().as_secs() as usize + 1;
    let (_, jwks) = tiny.hits();
    assert!(jwks - 1 <= windows, "{jwks} fetches in {windows} s");

    // Claims the provider must never get away with.
    let mut c = claims(&tiny, "dave");
    c["exp"] = (now() - 600).into();
    assert_eq!(propfind_as(&b, "dave", &k1.sign(&c)).await, 401, "expired");
    let mut c = claims(&tiny, "dave");
    c["nbf"] = (now() + 600).into();
    assert_eq!(propfind_as(&b, "dave", &k1.sign(&c)).await, 401, "nbf");
    let mut c = claims(&tiny, "dave");
    c["iss"] = "https://evil.example/realms/home".into();
    assert_eq!(propfind_as(&b, "dave", &k1.sign(&c)).await, 401, "iss");
    let mut c = claims(&tiny, "dave");
    c["azp"] = "other".into();
    assert_eq!(propfind_as(&b, "dave", &k1.sign(&c)).await, 401, "azp");
    c["aud"] = serde_json::json!(["account", "hearth"]);
    assert_eq!(
        propfind_as(&b, "dave", &k1.sign(&c)).await,
        207,
        "aud array"
    );
    let mut c = claims(&tiny, "dave");
    c.as_object_mut().unwrap().remove("login");
    assert_eq!(propfind_as(&b, "dave", &k1.sign(&c)).await, 401, "no login");
    let mut c = claims(&tiny, "dave");
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(propfind_as(&b, "dave", &k1.sign(&c)).await, 401, "no exp");
    // HS256 keyed with the public JWK (the classic key confusion), and `alg: none`.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &h,
        &claims(&tiny, "dave"),
        &EncodingKey::from_secret(k1.jwk.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(propfind_as(&b, "dave", &hs).await, 401, "HS256");
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(claims(&tiny, "dave").to_string())
    );
    assert_eq!(propfind_as(&b, "dave", &none).await, 401, "none");
    // A logout token is not an access token.
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("k1".into());
    h.typ = Some("logout+jwt".into());
    let logout = jsonwebtoken::encode(&h, &claims(&tiny, "dave"), &k1.key).unwrap();
    assert_eq!(propfind_as(&b, "dave", &logout).await, 401, "typ");

    // Rotation: the provider now signs with k2 (ES256) only. Once the interval has passed, the
    // first k2 token makes Hearth fetch the keys again.
    tiny.publish(&[&k2]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, jwks_before) = tiny.hits();
    let t2 = k2.sign(&claims(&tiny, "dave"));
    assert_eq!(propfind_as(&b, "dave", &t2).await, 207);
    assert_eq!(tiny.hits().1, jwks_before + 1);
    // k1 is no longer published, so its tokens are refused now.
    assert_eq!(propfind_as(&b, "dave", &t1).await, 401);
    b.stop().await;
    tiny.stop();
}

#[tokio::test]
async fn provider_down_at_start_then_up() {
    let tiny = Tiny::start().await;
    let k1 = SigningKey::ec("k1");
    tiny.publish(&[&k1]);
    tiny.up.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let b = start_against(&tiny, |_| {}).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let t = k1.sign(&claims(&tiny, "erin"));
    assert_eq!(propfind_as(&b, "erin", &t).await, 401);
    // Hearth's discovery cannot serve the provider's document: it redirects there.
    let r = no_redirect()
        .get(format!("{}/.well-known/openid-configuration", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("{}/.well-known/openid-configuration", tiny.base).as_str()
    );
    // The provider comes up; after the interval the same token works.
    tiny.up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(propfind_as(&b, "erin", &t).await, 207);
    b.stop().await;
    tiny.stop();

    // An issuer nobody listens on: the server starts, tokens get 401.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let c = TestServer::start_with(|cfg| {
        use_external(cfg, &format!("http://127.0.0.1:{port}"), "hearth");
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(propfind(&c, &t).await, 401);
    c.stop().await;
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_not_trusted() {
    let tiny = Tiny::start().await;
    let k1 = SigningKey::ec("k1");
    tiny.publish(&[&k1]);
    *tiny.issuer.lock().unwrap() = Some("https://elsewhere.example/realms/home".into());
    let b = start_against(&tiny, |_| {}).await;
    let t = k1.sign(&claims(&tiny, "frank"));
    assert_eq!(propfind_as(&b, "frank", &t).await, 401);
    assert_eq!(tiny.hits(), (1, 0), "the keys are not even fetched");
    b.stop().await;
    tiny.stop();
}

#[tokio::test]
async fn incomplete_settings_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    cfg.oidc.external_issuer = Some("https://id.example.com".into());
    let e = hearth_server::start(cfg.clone()).await.err().unwrap();
    assert!(e.to_string().contains("external_client_id"), "{e}");
    cfg.oidc.external_client_id = Some("hearth".into());
    cfg.oidc.external_ca_file = Some(dir.path().join("missing.pem"));
    let e = hearth_server::start(cfg).await.err().unwrap();
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

#[tokio::test]
async fn an_https_provider_trusted_through_its_ca_file() {
    // A serves HTTPS with a certificate from its own CA; B trusts it only via external_ca_file.
    let mut a = TestServer::start_with(|cfg| cfg.tls.enabled = true).await;
    let https = format!(
        "https://{}",
        a.handle.as_ref().unwrap().https_addr().unwrap()
    );
    let ca = Client::new()
        .get(format!("{}/ca.crt", a.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("idp-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    // A token from A's HTTPS issuer (the flow itself runs over HTTPS).
    let c = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    a.base = https.clone();
    let code = code_as(&a, &c, "alice", "secret", &[]).await;
    let (st, t) = exchange(&a, &c, &code, VERIFIER).await;
    assert_eq!(st, 200, "{t}");
    let at = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(payload(&at)["iss"], https.as_str());

    let untrusting = TestServer::start_with(|cfg| use_external(cfg, &https, DESKTOP)).await;
    assert_eq!(propfind(&untrusting, &at).await, 401, "unknown CA");
    untrusting.stop().await;
    let b = TestServer::start_with(|cfg| {
        use_external(cfg, &https, DESKTOP);
        cfg.oidc.external_ca_file = Some(ca_file.clone());
    })
    .await;
    assert_eq!(propfind(&b, &at).await, 207);
    b.stop().await;
    a.stop().await;
}
