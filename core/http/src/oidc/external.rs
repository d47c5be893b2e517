//! An external OpenID Connect provider in place of the embedded one: its access tokens are checked
//! with OpenID Connect Discovery 1.0 (§4: `<issuer>/.well-known/openid-configuration`, whose
//! `issuer` must equal the configured one), RFC 7517 keys from its `jwks_uri` (cached, fetched
//! again for an unknown `kid`, at most once per interval) and the JWT claims of RFC 7519 / RFC 9068
//! §4 (`iss`, `aud` or `azp`, `exp`, `nbf`). A configured claim names the Hearth account.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;
/// Keys older than this are fetched again on the next token (kept if the provider is down).
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// The discovery document is fetched again after this.
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(3600);
/// Outbound request limits: the provider being slow must not hold requests for long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document or JWKS accepted.
const MAX_BODY: usize = 1024 * 1024;
/// The signature algorithms an RSA key may verify.
const RSA_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Signature algorithms accepted: asymmetric only (never `none` or HMAC, whose "key" would be
/// public).
fn accepted(alg: Algorithm) -> bool {
    RSA_ALGORITHMS.contains(&alg)
        || matches!(alg, Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA)
}

/// How Hearth trusts an external provider.
#[derive(Debug, Clone)]
pub struct ExternalIdpOptions {
    /// The issuer, exactly as the provider's discovery document names it.
    pub issuer: String,
    /// The client id tokens must be issued for (`aud` contains it, or `azp` equals it).
    pub client_id: String,
    /// The claim holding the login name (e.g. `preferred_username`).
    pub username_claim: String,
    /// Create an account for an unknown login name on its first valid token.
    pub auto_create: bool,
    /// Extra CA certificates (PEM) trusted for the provider's HTTPS, besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// The least time between two key fetches.
    pub refetch_interval: Duration,
}

/// Who a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The login name (the configured claim).
    pub username: String,
    /// The `name` claim, if any.
    pub display_name: Option<String>,
}

/// Why a token was refused (logged at debug level; the client only sees 401).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// Not a JWS at all.
    #[error("not a JWT")]
    Malformed,
    /// A symmetric or unsupported algorithm.
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// No published key matches (even after fetching the keys again, when allowed).
    #[error("no key of the provider matches kid {0:?}")]
    UnknownKey(Option<String>),
    /// Signature, issuer, expiry or not-before failed.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Issued for another client.
    #[error("the token is not for client {0:?}")]
    Audience(String),
    /// The login-name claim is missing or not a string.
    #[error("the token has no string claim {0:?}")]
    NoUsername(String),
}

/// A verification key from the provider's JWKS.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The algorithms this key may verify (its `alg`, or all of its type's).
    algorithms: Vec<Algorithm>,
    decoding: DecodingKey,
}

#[derive(Default)]
struct Keys {
    list: Vec<Key>,
    fetched: Option<Instant>,
}

#[derive(Default)]
struct Fetcher {
    /// `jwks_uri` and the raw discovery document, when fetched.
    discovery: Option<(String, Vec<u8>, Instant)>,
    /// The last key fetch (the rate limit).
    last_attempt: Option<Instant>,
    /// The last discovery fetch made for a client asking Hearth's discovery URL.
    last_discovery: Option<Instant>,
}

/// The verifier of one external provider's tokens.
pub(crate) struct ExternalIdp {
    pub opts: ExternalIdpOptions,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// Serialises fetches (one in flight) and holds the rate limit.
    fetcher: tokio::sync::Mutex<Fetcher>,
}

impl ExternalIdp {
    /// Checks the options and builds the HTTP client; nothing is fetched yet (the provider may
    /// be down while Hearth starts).
    pub(crate) fn new(opts: ExternalIdpOptions) -> Result<Self, String> {
        let url = reqwest::Url::parse(&opts.issuer)
            .map_err(|e| format!("the issuer {:?} is not a URL: {e}", opts.issuer))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(format!(
                "the issuer {:?} must be an http(s) URL",
                opts.issuer
            ));
        }
        if opts.client_id.is_empty() {
            return Err("the external client id must not be empty".into());
        }
        if opts.username_claim.is_empty() {
            return Err("the username claim must not be empty".into());
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("Hearth/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &opts.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the CA file is not PEM: {e}"))?;
            if certs.is_empty() {
                return Err("the CA file holds no certificate".into());
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        if url.scheme() == "http" && !is_loopback_host(&url) {
            tracing::warn!(issuer = %opts.issuer, "the external OpenID Connect issuer is plain HTTP: its keys can be forged on the way");
        }
        Ok(Self {
            opts,
            http,
            keys: RwLock::new(Keys::default()),
            fetcher: tokio::sync::Mutex::new(Fetcher::default()),
        })
    }

    /// The provider's discovery URL.
    pub(crate) fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.opts.issuer.trim_end_matches('/')
        )
    }

    /// Verifies an access token and names its account.
    pub(crate) async fn verify(&self, token: &str) -> Result<Identity, Refused> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refused::Malformed)?;
        if !accepted(header.alg) {
            return Err(Refused::Algorithm(header.alg));
        }
        // RFC 9068 asks for `at+jwt`, but Keycloak and others send `JWT` or nothing; other
        // types (logout tokens, DPoP proofs, ...) are never access tokens.
        if let Some(typ) = header.typ.as_deref()
            && !["JWT", "at+jwt", "application/at+jwt"]
                .iter()
                .any(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(Refused::Invalid(format!("typ {typ:?}")));
        }
        let stale = self.keys_stale();
        let mut keys = self.candidates(header.kid.as_deref(), header.alg);
        if keys.is_empty() || stale {
            self.refresh().await;
            keys = self.candidates(header.kid.as_deref(), header.alg);
        }
        if keys.is_empty() {
            return Err(Refused::UnknownKey(header.kid));
        }
        let mut v = Validation::new(header.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.validate_aud = false; // `aud` or `azp`: checked below
        v.set_issuer(&[&self.opts.issuer]);
        v.set_required_spec_claims(&["exp", "iss"]);
        let mut last = String::new();
        for key in &keys {
            match jsonwebtoken::decode::<Value>(token, key, &v) {
                Ok(data) => {
                    if is_id_token(&data.claims) {
                        return Err(Refused::Invalid(
                            "an ID token is not an access token".into(),
                        ));
                    }
                    if !for_client(&data.claims, &self.opts.client_id) {
                        return Err(Refused::Audience(self.opts.client_id.clone()));
                    }
                    return identity(&data.claims, &self.opts.username_claim)
                        .ok_or_else(|| Refused::NoUsername(self.opts.username_claim.clone()));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(Refused::Invalid(last))
    }

    /// The provider's discovery document as fetched (for clients asking Hearth), if available.
    /// Fetched at most once per interval, like the keys.
    pub(crate) async fn discovery_document(&self) -> Option<Vec<u8>> {
        let mut f = self.fetcher.lock().await;
        if let Some((_, raw, at)) = &f.discovery
            && at.elapsed() < DISCOVERY_MAX_AGE
        {
            return Some(raw.clone());
        }
        if f.last_discovery
            .is_some_and(|t| t.elapsed() < self.opts.refetch_interval)
        {
            return None;
        }
        f.last_discovery = Some(Instant::now());
        match self.discover().await {
            Ok(d) => {
                let raw = d.1.clone();
                f.discovery = Some(d);
                Some(raw)
            }
            Err(error) => {
                tracing::warn!(%error, issuer = %self.opts.issuer, "the external OpenID Connect provider's discovery document is unavailable");
                None
            }
        }
    }

    fn keys_stale(&self) -> bool {
        let k = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        k.fetched.is_some_and(|t| t.elapsed() > KEYS_MAX_AGE)
    }

    fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
        let k = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        k.list
            .iter()
            .filter(|key| key.algorithms.contains(&alg))
            .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
            .map(|key| key.decoding.clone())
            .collect()
    }

    /// Fetches discovery (when needed) and the keys, unless a fetch happened within the
    /// interval. Failures keep the keys we have and are logged.
    async fn refresh(&self) {
        let mut f = self.fetcher.lock().await;
        if f.last_attempt
            .is_some_and(|t| t.elapsed() < self.opts.refetch_interval)
        {
            return;
        }
        f.last_attempt = Some(Instant::now());
        let fresh = f
            .discovery
            .as_ref()
            .filter(|(_, _, at)| at.elapsed() < DISCOVERY_MAX_AGE)
            .map(|(uri, _, _)| uri.clone());
        let jwks_uri = match fresh {
            Some(uri) => uri,
            None => match self.discover().await {
                Ok(d) => {
                    let uri = d.0.clone();
                    f.discovery = Some(d);
                    uri
                }
                Err(error) => {
                    tracing::warn!(%error, issuer = %self.opts.issuer, "cannot reach the external OpenID Connect provider; its tokens are refused until it answers");
                    return;
                }
            },
        };
        match self.fetch_keys(&jwks_uri).await {
            Ok(list) => {
                tracing::info!(
                    keys = list.len(),
                    jwks_uri,
                    "fetched the external provider's keys"
                );
                let mut k = self.keys.write().unwrap_or_else(PoisonError::into_inner);
                k.list = list;
                k.fetched = Some(Instant::now());
            }
            Err(error) => {
                // Perhaps the provider moved its keys: discover again next time.
                f.discovery = None;
                tracing::warn!(%error, jwks_uri, "cannot fetch the external OpenID Connect provider's keys");
            }
        }
    }

    /// Fetches and checks the discovery document: (`jwks_uri`, raw document, when).
    async fn discover(&self) -> Result<(String, Vec<u8>, Instant), String> {
        let url = self.discovery_url();
        let raw = self.get(&url).await?;
        let doc: Value =
            serde_json::from_slice(&raw).map_err(|e| format!("{url}: not JSON: {e}"))?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if issuer != self.opts.issuer {
            return Err(format!(
                "{url} names the issuer {issuer:?}, not the configured {:?}",
                self.opts.issuer
            ));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .ok_or_else(|| format!("{url} has no http(s) jwks_uri"))?;
        Ok((jwks_uri.to_owned(), raw, Instant::now()))
    }

    async fn fetch_keys(&self, uri: &str) -> Result<Vec<Key>, String> {
        let raw = self.get(uri).await?;
        let set: Value = serde_json::from_slice(&raw).map_err(|e| format!("not JSON: {e}"))?;
        let list: Vec<Key> = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("no \"keys\" array")?
            .iter()
            .filter_map(key_of)
            .collect();
        if list.is_empty() {
            return Err("no usable signing key".into());
        }
        Ok(list)
    }

    /// GET with a size cap.
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut r = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("{url}: HTTP {}", r.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("{url}: larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn is_loopback_host(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback()),
        None => false,
    }
}

/// A JWK usable for signatures, with the algorithms it may verify; `None` for encryption keys,
/// symmetric keys and unsupported types.
fn key_of(v: &Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(v.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA_ALGORITHMS,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => by_type.to_vec(),
        Some(a) => {
            let a = Algorithm::try_from(a).ok()?;
            if !by_type.contains(&a) {
                return None;
            }
            vec![a]
        }
    };
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id,
        algorithms,
        decoding,
    })
}

/// ID tokens are signed by the same keys for the same client; only they carry `at_hash` or
/// `c_hash` (OpenID Connect Core §3.1.3.6, §3.3.2.11), and Keycloak marks them `typ: "ID"`.
pub(crate) fn is_id_token(claims: &Value) -> bool {
    claims.get("at_hash").is_some()
        || claims.get("c_hash").is_some()
        || claims.get("typ").and_then(Value::as_str) == Some("ID")
}

/// Whether the claims are for `client_id`: `aud` (a string or an array) contains it, or `azp`
/// equals it (Keycloak's access tokens carry `aud: "account"` and the client in `azp`).
pub(crate) fn for_client(claims: &Value, client_id: &str) -> bool {
    let aud = match claims.get("aud") {
        Some(Value::String(s)) => s == client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    aud || claims.get("azp").and_then(Value::as_str) == Some(client_id)
}

/// The identity named by `claim` (a non-empty string), with `name` as the display name.
pub(crate) fn identity(claims: &Value, claim: &str) -> Option<Identity> {
    let username = claims
        .get(claim)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())?
        .to_owned();
    let display_name = claims
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Some(Identity {
        username,
        display_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audience_or_authorized_party() {
        assert!(for_client(&json!({"aud": "hearth"}), "hearth"));
        assert!(for_client(&json!({"aud": ["other", "hearth"]}), "hearth"));
        assert!(for_client(
            &json!({"aud": "account", "azp": "hearth"}),
            "hearth"
        ));
        assert!(!for_client(&json!({"aud": "account"}), "hearth"));
        assert!(!for_client(
            &json!({"aud": ["a", "b"], "azp": "c"}),
            "hearth"
        ));
        assert!(!for_client(&json!({}), "hearth"));
        assert!(!for_client(&json!({"aud": 5, "azp": ["hearth"]}), "hearth"));
        assert!(!for_client(&json!({"aud": "hearthx"}), "hearth"));
    }

    #[test]
    fn id_tokens_are_told_apart() {
        assert!(is_id_token(&json!({"aud": "hearth", "at_hash": "x"})));
        assert!(is_id_token(&json!({"aud": "hearth", "c_hash": "x"})));
        assert!(is_id_token(&json!({"aud": "hearth", "typ": "ID"})));
        assert!(!is_id_token(&json!({"aud": "hearth", "typ": "Bearer"})));
        assert!(!is_id_token(&json!({"aud": "hearth", "scope": "openid"})));
    }

    #[test]
    fn claim_mapping() {
        let c = json!({"preferred_username": "alice", "name": "Alice A", "email": "a@x", "n": 3});
        assert_eq!(
            identity(&c, "preferred_username"),
            Some(Identity {
                username: "alice".into(),
                display_name: Some("Alice A".into())
            })
        );
        assert_eq!(
            identity(&c, "email").map(|i| i.username),
            Some("a@x".into())
        );
        assert_eq!(identity(&c, "n"), None, "not a string");
        assert_eq!(identity(&c, "missing"), None);
        assert_eq!(identity(&json!({"u": "  "}), "u"), None, "blank");
        assert_eq!(
            identity(&json!({"u": "bob", "name": ""}), "u"),
            Some(Identity {
                username: "bob".into(),
                display_name: None
            })
        );
    }

    #[test]
    fn jwks_entries() {
        // RSA without `alg`: every RSA algorithm; with `alg`: just that one.
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        let k = key_of(&json!({"kty": "RSA", "kid": "r", "n": n, "e": "AQAB"})).unwrap();
        assert_eq!(k.algorithms.len(), 6);
        assert_eq!(k.kid.as_deref(), Some("r"));
        let k = key_of(&json!({"kty": "RSA", "alg": "PS256", "n": n, "e": "AQAB"})).unwrap();
        assert_eq!(k.algorithms, vec![Algorithm::PS256]);
        // Encryption keys, symmetric keys, mismatched `alg` and junk are skipped.
        assert!(
            key_of(&json!({"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "n": n, "e": "AQAB"}))
                .is_none()
        );
        assert!(key_of(&json!({"kty": "RSA", "alg": "ES256", "n": n, "e": "AQAB"})).is_none());
        assert!(key_of(&json!({"kty": "oct", "k": "c2VjcmV0"})).is_none());
        assert!(key_of(&json!({"kty": "RSA", "alg": "HS256", "n": n, "e": "AQAB"})).is_none());
        assert!(key_of(&json!({"kty": "nope"})).is_none());
        // EC: the curve decides.
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "e",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert_eq!(key_of(&ec).unwrap().algorithms, vec![Algorithm::ES256]);
    }

    #[test]
    fn options_are_checked() {
        let opts = |issuer: &str, client: &str| ExternalIdpOptions {
            issuer: issuer.into(),
            client_id: client.into(),
            username_claim: "preferred_username".into(),
            auto_create: false,
            ca_pem: None,
            refetch_interval: Duration::from_secs(30),
        };
        assert!(ExternalIdp::new(opts("https://id.example.com/realms/x", "hearth")).is_ok());
        assert!(ExternalIdp::new(opts("not a url", "hearth")).is_err());
        assert!(ExternalIdp::new(opts("ftp://id.example.com", "hearth")).is_err());
        assert!(ExternalIdp::new(opts("https://id.example.com", "")).is_err());
        let mut bad_ca = opts("https://id.example.com", "hearth");
        bad_ca.ca_pem = Some(b"no certificate here".to_vec());
        assert!(ExternalIdp::new(bad_ca).is_err());
        let i =
            ExternalIdp::new(opts("https://id.example.com/application/o/hearth/", "h")).unwrap();
        assert_eq!(
            i.discovery_url(),
            "https://id.example.com/application/o/hearth/.well-known/openid-configuration"
        );
    }
}
