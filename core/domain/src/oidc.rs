//! Persistent OpenID Connect grant state: refresh tokens (stored by hash, rotated on use) and
//! revoked grant families. Codes and login forms are short-lived and stay in the HTTP layer's memory.

use crate::CoreError;
use crate::clock::now_secs;
use hearth_store::{RefreshTokenRecord, Store};

/// What using a refresh token gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Valid: it is now marked used; issue its successor in the same family.
    Valid(RefreshTokenRecord),
    /// Unknown, expired, for another client, or its family was revoked.
    Invalid,
    /// Used before: its whole family is now revoked.
    Replayed(String),
}

/// Refresh tokens and revoked families.
pub struct OidcGrants {
    store: Store,
}

impl OidcGrants {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Stores a new refresh token under `hash` (hex SHA-256 of the token).
    pub fn issue_refresh(&self, hash: &str, rec: &RefreshTokenRecord) -> Result<(), CoreError> {
        self.store.write(|tx| Ok(tx.put_refresh_token(hash, rec)?))
    }

    /// Uses a refresh token once (rotation with reuse detection), atomically.
    pub fn use_refresh(&self, hash: &str, client_id: &str) -> Result<RefreshUse, CoreError> {
        let now = now_secs();
        self.store.write(|tx| {
            let Some(mut rec) = tx.refresh_token(hash)? else {
                return Ok(RefreshUse::Invalid);
            };
            if rec.client_id != client_id || rec.expires <= now {
                return Ok(RefreshUse::Invalid);
            }
            if rec.used {
                tx.put_revoked_family(&rec.family, rec.expires)?;
                return Ok(RefreshUse::Replayed(rec.family));
            }
            let revoked = tx
                .revoked_families()?
                .into_iter()
                .any(|(f, _)| f == rec.family);
            if revoked {
                return Ok(RefreshUse::Invalid);
            }
            rec.used = true;
            tx.put_refresh_token(hash, &rec)?;
            Ok(RefreshUse::Valid(rec))
        })
    }

    /// The family of a stored refresh token.
    pub fn family_of(&self, hash: &str) -> Result<Option<String>, CoreError> {
        Ok(self
            .store
            .read(|tx| tx.refresh_token(hash))?
            .map(|r| r.family))
    }

    /// Revokes a family until `until` (unix seconds; after that its tokens have expired anyway).
    pub fn revoke_family(&self, family: &str, until: i64) -> Result<(), CoreError> {
        self.store
            .write(|tx| Ok(tx.put_revoked_family(family, until)?))
    }

    /// The families revoked and still listed.
    pub fn revoked_families(&self) -> Result<Vec<String>, CoreError> {
        let now = now_secs();
        Ok(self
            .store
            .read(|tx| tx.revoked_families())?
            .into_iter()
            .filter(|(_, until)| *until > now)
            .map(|(f, _)| f)
            .collect())
    }
}
