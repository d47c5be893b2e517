//! The IdP's signing key: an ECDSA P-256 (ES256) key pair created on first start, stored as a
//! PKCS#8 PEM (mode 0600) in the IdP directory; its public half is published in the JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

/// The one signing algorithm; verification pins it (so `alg: none` or HS256 never verify).
pub(crate) const ALG: Algorithm = Algorithm::ES256;

/// The key file inside the IdP directory.
pub(crate) const KEY_FILE: &str = "signing-key.pem";

/// How old the signing key may get before a start rotates it.
pub(crate) const ROTATE_AFTER: Duration = Duration::from_secs(60 * 60 * 24 * 90);
/// How long a retired key stays in the JWKS and verifies: longer than any token it signed lives.
pub(crate) const RETIRED_FOR_SECS: u64 = super::ACCESS_TTL_SECS + 600;
/// The retired public keys (JWKs with a `retired` unix time) inside the IdP directory.
pub(crate) const RETIRED_FILE: &str = "retired-keys.json";

/// A public key: verifies tokens, published in the JWKS.
struct PublicKey {
    kid: String,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

impl PublicKey {
    fn from_jwk(jwk: serde_json::Value) -> Option<Self> {
        let s = |k: &str| jwk.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let (kid, x, y) = (s("kid")?, s("x")?, s("y")?);
        let decoding = DecodingKey::from_ec_components(&x, &y).ok()?;
        Some(Self { kid, decoding, jwk })
    }
}

/// The current signing key and the retired public keys still published.
pub(crate) struct SigningKey {
    encoding: EncodingKey,
    current: PublicKey,
    previous: Vec<PublicKey>,
}

impl SigningKey {
    /// Loads `<dir>/signing-key.pem`, creating it (0600) when absent and rotating it when older
    /// than [`ROTATE_AFTER`] (the old public key stays published for a while); `None` = a key in
    /// memory only.
    pub(crate) fn load_or_create(dir: Option<&Path>) -> Result<Self, String> {
        let Some(dir) = dir else {
            let kp = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
            return Self::from_key_pair(&kp, Vec::new());
        };
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let path = dir.join(KEY_FILE);
        let now = super::now_secs();
        let mut retired = read_retired(&dir.join(RETIRED_FILE));
        retired.retain(|j| {
            j.get("retired")
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|t| t + RETIRED_FOR_SECS > now)
        });
        let existing = match std::fs::read_to_string(&path) {
            Ok(pem) => {
                let kp = rcgen::KeyPair::from_pem(&pem).map_err(|e| e.to_string())?;
                let age = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .unwrap_or_default();
                if age > ROTATE_AFTER {
                    let mut jwk = Self::from_key_pair(&kp, Vec::new())?.current.jwk;
                    if let Some(o) = jwk.as_object_mut() {
                        o.insert("retired".into(), now.into());
                    }
                    retired.push(jwk);
                    std::fs::remove_file(&path).map_err(|e| e.to_string())?;
                    tracing::info!("rotated the OpenID Connect signing key");
                    None
                } else {
                    Some(kp)
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let kp = match existing {
            Some(kp) => kp,
            None => {
                let kp = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
                write_private(&path, &kp.serialize_pem())?;
                kp
            }
        };
        let body = serde_json::Value::Array(retired.clone()).to_string();
        std::fs::write(dir.join(RETIRED_FILE), body).map_err(|e| e.to_string())?;
        Self::from_key_pair(&kp, retired)
    }

    fn from_key_pair(kp: &rcgen::KeyPair, retired: Vec<serde_json::Value>) -> Result<Self, String> {
        let raw = kp.public_key_raw();
        // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
        let (Some(x), Some(y)) = (raw.get(1..33), raw.get(33..65)) else {
            return Err("the signing key is not a P-256 key".to_owned());
        };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let digest = Sha256::digest(raw);
        let kid = URL_SAFE_NO_PAD.encode(digest.get(..12).unwrap_or_default());
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": kid, "x": x, "y": y,
        });
        let current = PublicKey::from_jwk(jwk).ok_or("unusable public key")?;
        let previous = retired
            .into_iter()
            .filter_map(|mut j| {
                if let Some(o) = j.as_object_mut() {
                    o.remove("retired");
                }
                PublicKey::from_jwk(j)
            })
            .collect();
        Ok(Self {
            encoding: EncodingKey::from_ec_der(&kp.serialize_der()),
            current,
            previous,
        })
    }

    /// The JWKS: the current key first, then the retired ones still valid.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| k.jwk.clone())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs claims as a compact JWS with this key's `kid` and the given `typ`.
    pub(crate) fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, String> {
        let mut header = Header::new(ALG);
        header.kid = Some(self.current.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// Verifies signature (ES256 only, key by `kid`), issuer, audience and expiry.
    pub(crate) fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuers: &[String],
        audiences: &[&str],
    ) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != ALG || header.typ.as_deref() != Some(typ) {
            return None;
        }
        let key = match header.kid.as_deref() {
            None => &self.current,
            Some(kid) => std::iter::once(&self.current)
                .chain(&self.previous)
                .find(|k| k.kid == kid)?,
        };
        let mut v = jsonwebtoken::Validation::new(ALG);
        v.leeway = 30;
        v.set_audience(audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.set_issuer(issuers);
        jsonwebtoken::decode::<T>(token, &key.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}

fn read_retired(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).ok())
        .unwrap_or_default()
}

/// `at_hash`: the left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6).
pub(crate) fn at_hash(access_token: &str) -> String {
    let d = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(d.get(..16).unwrap_or_default())
}

fn write_private(path: &Path, pem: &str) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    f.write_all(pem.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
