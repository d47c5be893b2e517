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

/// How long a revoked family stays listed at least: longer than any access token lives (its
/// refresh tokens are removed at once, so after this the listing has nothing left to refuse).
pub const REVOKED_LISTED_SECS: i64 = 86_400;

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
                // The whole family dies: its refresh tokens now, its access tokens by the listing.
                tx.remove_refresh_family(&rec.family)?;
                tx.put_revoked_family(&rec.family, now.saturating_add(REVOKED_LISTED_SECS))?;
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

    /// Revokes a family: its refresh tokens are removed, and it stays listed (refusing its access
    /// tokens) until `until` (unix seconds), at least [`REVOKED_LISTED_SECS`] from now.
    pub fn revoke_family(&self, family: &str, until: i64) -> Result<(), CoreError> {
        let until = until.max(now_secs().saturating_add(REVOKED_LISTED_SECS));
        self.store.write(|tx| {
            tx.remove_refresh_family(family)?;
            Ok(tx.put_revoked_family(family, until)?)
        })
    }

    /// The families revoked and still listed, with the time (unix seconds) until which they are.
    pub fn revoked_families(&self) -> Result<Vec<(String, i64)>, CoreError> {
        let now = now_secs();
        Ok(self
            .store
            .read(|tx| tx.revoked_families())?
            .into_iter()
            .filter(|(_, until)| *until > now)
            .collect())
    }

    /// Removes expired refresh tokens and revoked families whose tokens have all expired
    /// (the jobs service calls this); returns (families, tokens) removed.
    pub fn prune(&self) -> Result<(usize, usize), CoreError> {
        self.prune_at(now_secs())
    }

    /// [`Self::prune`] as of `now` (unix seconds).
    pub fn prune_at(&self, now: i64) -> Result<(usize, usize), CoreError> {
        Ok(self.store.write(|tx| tx.prune_oidc(now))?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hearth_types::UserId;

    fn record(family: &str, expires: i64) -> RefreshTokenRecord {
        RefreshTokenRecord {
            client_id: "web".into(),
            user: UserId(uuid::Uuid::nil()),
            scope: "openid".into(),
            family: family.into(),
            expires,
            used: false,
        }
    }

    fn grants() -> (tempfile::TempDir, OidcGrants) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("meta.redb")).unwrap();
        (dir, OidcGrants::new(store))
    }

    #[test]
    fn replay_kills_the_family_and_prune_forgets_only_what_expired() {
        let (_dir, g) = grants();
        let now = now_secs();
        g.issue_refresh("a1", &record("fa", now + 100)).unwrap();
        g.issue_refresh("b1", &record("fb", now + 100)).unwrap();
        g.issue_refresh("old", &record("fc", now - 1)).unwrap();
        assert!(matches!(
            g.use_refresh("a1", "web").unwrap(),
            RefreshUse::Valid(_)
        ));
        g.issue_refresh("a2", &record("fa", now + 200)).unwrap();
        // Replaying a1 revokes the family: its successor a2 is dead too.
        assert_eq!(
            g.use_refresh("a1", "web").unwrap(),
            RefreshUse::Replayed("fa".into())
        );
        assert_eq!(g.use_refresh("a2", "web").unwrap(), RefreshUse::Invalid);
        let listed = g.revoked_families().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].1 >= now + REVOKED_LISTED_SECS);
        // Pruning now removes only the expired token; the listing stays.
        assert_eq!(g.prune_at(now).unwrap(), (0, 1));
        assert!(matches!(
            g.use_refresh("b1", "web").unwrap(),
            RefreshUse::Valid(_)
        ));
        // A day later the listing and b1 are gone too.
        assert_eq!(g.prune_at(now + REVOKED_LISTED_SECS + 1).unwrap(), (1, 1));
        assert!(g.revoked_families().unwrap().is_empty());
    }
}
