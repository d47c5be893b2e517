//! Transfer tokens for resumable uploads: `<upload id>.<expires>.<HMAC-SHA256(id.expires), hex>`
//! under a random server secret kept in the store's meta table. The token is the last segment of
//! the upload URL, which tus clients call without credentials.
//!
//! Outcomes: a malformed token or a wrong MAC is `PermissionDenied` (403, as oCIS' datagateway
//! answers an invalid transfer token); a genuine token past its expiry is `UploadExpired` (410
//! Gone); a genuine, unexpired token whose upload is no longer there (finished, terminated or
//! purged) is `NotFound` (404), which `Uploads::record` reports.

use super::Uploads;
use crate::CoreError;
use crate::clock::now_secs;
use hearth_store::Store;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET_KEY: &str = "transfer_secret";

/// The server's token secret, created with 32 random bytes on first use.
pub(super) fn load_or_create_secret(store: &Store) -> Result<[u8; 32], CoreError> {
    if let Some(b) = store.read(|tx| tx.meta(SECRET_KEY))?
        && let Ok(arr) = <[u8; 32]>::try_from(b.as_slice())
    {
        return Ok(arr);
    }
    let secret: [u8; 32] = rand::random();
    store.write(|tx| tx.put_meta(SECRET_KEY, &secret))?;
    Ok(secret)
}

impl Uploads {
    fn mac(&self, id: &str, expires: i64) -> Result<Hmac<Sha256>, CoreError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .map_err(|e| CoreError::Internal(format!("token key: {e}")))?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(expires.to_string().as_bytes());
        Ok(mac)
    }

    /// The transfer token of an upload.
    pub(super) fn token(&self, id: &str, expires: i64) -> String {
        match self.mac(id, expires) {
            Ok(m) => format!("{id}.{expires}.{}", hex::encode(m.finalize().into_bytes())),
            // Unreachable (HMAC takes keys of any length); an unverifiable token is harmless.
            Err(_) => format!("{id}.{expires}.invalid"),
        }
    }

    /// Checks a token and returns the upload id.
    pub(super) fn verify(&self, token: &str) -> Result<String, CoreError> {
        let forged = || CoreError::PermissionDenied("invalid transfer token".into());
        let mut parts = token.split('.');
        let (Some(id), Some(exp), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(forged());
        };
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(forged());
        }
        let expires: i64 = exp.parse().map_err(|_| forged())?;
        let sig = hex::decode(sig).map_err(|_| forged())?;
        self.mac(id, expires)?
            .verify_slice(&sig)
            .map_err(|_| forged())?;
        if expires < now_secs() {
            return Err(CoreError::UploadExpired("the upload has expired".into()));
        }
        Ok(id.to_owned())
    }
}
