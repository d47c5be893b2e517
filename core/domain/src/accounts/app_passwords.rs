//! App passwords: random per-device passwords for Basic-auth clients (rclone, davfs2, Finder,
//! Explorer, owncloudcmd/nextcloudcmd), shown once, stored hashed, named, revocable.
//!
//! Scheme: a password is 30 characters from [`ALPHABET`] (31 letters and digits without the
//! look-alikes `0 1 i l o`; ~148 random bits), shown as six groups of five joined by `-`. The
//! first group is the password's id: stored in clear as the lookup key (`(user, id)`), so checking
//! a Basic login costs one argon2 run however many app passwords the user has. The id carries ~25
//! of the bits; the other ~124 stay secret. The record keeps the argon2id PHC hash of the whole
//! password (dashes removed). Clients may send the password with or without dashes, in any case.

use super::{Accounts, hash_password};
use crate::CoreError;
use crate::clock::now_secs;
use hearth_store::AppPasswordRecord;
use hearth_types::UserId;

/// The characters of an app password: no `0`/`o`, `1`/`i`/`l` to confuse.
pub const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// Characters in a password (without dashes).
const LEN: usize = 30;
/// Characters per group; the first group is the id.
const GROUP: usize = 5;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// `last_used` is written at most this often per password (seconds).
pub const TOUCH_INTERVAL_SECS: i64 = 60;

/// A new app password: its record and the secret, which is never shown again.
#[derive(Debug, Clone)]
pub struct NewAppPassword {
    /// The stored record (no secret in it).
    pub record: AppPasswordRecord,
    /// The password, grouped `xxxxx-xxxxx-…`.
    pub secret: String,
}

/// Generates a password (without dashes).
fn generate() -> String {
    (0..LEN)
        .map(|_| {
            let i = rand::random_range(0..ALPHABET.len());
            ALPHABET.get(i).copied().map(char::from).unwrap_or('x')
        })
        .collect()
}

/// Groups a password for display: `xxxxx-xxxxx-…`.
fn grouped(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    chars
        .chunks(GROUP)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// If `password` has the shape of an app password, its normalised form (lower case, no dashes
/// or spaces) and id; otherwise `None` (then it can only be an account password).
pub(crate) fn parse(password: &str) -> Option<(String, String)> {
    let raw: String = password
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if raw.len() != LEN || !raw.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    let id = raw.get(..GROUP)?.to_owned();
    Some((raw, id))
}

fn validate_name(name: &str) -> Result<String, CoreError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(CoreError::BadRequest(format!(
            "an app password name must be 1-{MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

impl Accounts {
    /// Creates an app password for `user` named `name`. The returned secret is not stored.
    pub fn create_app_password(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<NewAppPassword, CoreError> {
        let name = validate_name(name)?;
        // Retry on the (1 in ~28 million per existing password) chance of an id clash.
        for _ in 0..8 {
            let raw = generate();
            let Some((raw, id)) = parse(&raw) else {
                continue;
            };
            let record = AppPasswordRecord {
                id,
                user,
                name: name.clone(),
                hash: hash_password(&raw)?,
                created: now_secs(),
                last_used: None,
            };
            // A new password voids no cached credential: no generation bump.
            let stored = self.store.write(|tx| -> Result<bool, CoreError> {
                if tx.username_of(user)?.is_none() {
                    return Err(CoreError::NotFound(format!("no user {user}")));
                }
                if tx.app_password(user, &record.id)?.is_some() {
                    return Ok(false);
                }
                tx.put_app_password(&record)?;
                Ok(true)
            })?;
            if stored {
                return Ok(NewAppPassword {
                    secret: grouped(&raw),
                    record,
                });
            }
        }
        Err(CoreError::Internal(
            "could not find a free app password id".into(),
        ))
    }

    /// The app passwords of `user` (records only: secrets are never kept).
    pub fn list_app_passwords(&self, user: UserId) -> Result<Vec<AppPasswordRecord>, CoreError> {
        let mut v = self.store.read(|tx| tx.app_passwords(user))?;
        v.sort_by_key(|r| r.created);
        Ok(v)
    }

    /// Revokes an app password; cached logins with it stop working at once.
    pub fn revoke_app_password(&self, user: UserId, id: &str) -> Result<(), CoreError> {
        // `write` bumps the generation, voiding every cached credential.
        let found = self.write(|tx| Ok(tx.remove_app_password(user, id)?))?;
        if found {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!("no app password {id:?}")))
        }
    }

    /// The app password of `user` with this id, if any.
    pub(crate) fn app_password(
        &self,
        user: UserId,
        id: &str,
    ) -> Result<Option<AppPasswordRecord>, CoreError> {
        Ok(self.store.read(|tx| tx.app_password(user, id))?)
    }

    /// Records a use of an app password (not durable at once: losing it in a crash is harmless).
    pub(crate) fn touch_app_password(&self, user: UserId, id: &str) -> Result<(), CoreError> {
        let now = now_secs();
        self.store.write_lazy(|tx| -> Result<(), CoreError> {
            if let Some(mut r) = tx.app_password(user, id)?
                && r.last_used.is_none_or(|t| now - t >= TOUCH_INTERVAL_SECS)
            {
                r.last_used = Some(now);
                tx.put_app_password(&r)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Core, StorageOptions, ThrottleConfig};

    fn core(cfg: ThrottleConfig) -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().unwrap();
        let core = Core::open(StorageOptions::new(dir.path().to_path_buf()), cfg).unwrap();
        (dir, core)
    }

    #[test]
    fn secret_shape_and_parse() {
        let raw = generate();
        assert_eq!(raw.len(), LEN);
        let g = grouped(&raw);
        assert_eq!(g.len(), LEN + LEN / GROUP - 1);
        assert_eq!(g.split('-').count(), 6);
        let (norm, id) = parse(&g).unwrap();
        assert_eq!(norm, raw);
        assert_eq!(id, raw[..5]);
        assert_eq!(parse(&g.to_uppercase()).unwrap().0, raw);
        assert!(parse("secret").is_none());
        assert!(
            parse(&format!("0{}", &raw[1..])).is_none(),
            "0 is not in the alphabet"
        );
        assert!(parse(&raw[1..]).is_none(), "too short");
    }

    #[test]
    fn create_list_verify_revoke() {
        let (_d, core) = core(ThrottleConfig::default());
        let u = core.accounts.add("alice", "pw", None).unwrap();
        let new = core.accounts.create_app_password(u.id, " laptop ").unwrap();
        assert_eq!(new.record.name, "laptop");
        assert!(!new.record.hash.contains(&new.secret));
        let list = core.accounts.list_app_passwords(u.id).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, new.record.id);
        assert!(list[0].last_used.is_none());

        let p = core.auth.verify_basic("alice", &new.secret, None).unwrap();
        assert_eq!(p.username, "alice");
        // Without dashes, upper case: the same password.
        let bare = new.secret.replace('-', "").to_uppercase();
        core.auth.verify_basic("alice", &bare, None).unwrap();
        assert!(
            core.accounts.list_app_passwords(u.id).unwrap()[0]
                .last_used
                .is_some()
        );
        // The account password still works (default switch).
        core.auth.verify_basic("alice", "pw", None).unwrap();
        // Another user cannot use it.
        core.accounts.add("bob", "pw2", None).unwrap();
        assert!(core.auth.verify_basic("bob", &new.secret, None).is_err());

        // (Adding bob voided the cache; fill it again.)
        core.auth.verify_basic("alice", &new.secret, None).unwrap();
        assert!(core.auth.cached("alice", &new.secret).is_some());
        core.accounts
            .revoke_app_password(u.id, &new.record.id)
            .unwrap();
        assert!(core.auth.cached("alice", &new.secret).is_none());
        assert!(matches!(
            core.auth.verify_basic("alice", &new.secret, None),
            Err(CoreError::Unauthenticated)
        ));
        assert!(matches!(
            core.accounts.revoke_app_password(u.id, &new.record.id),
            Err(CoreError::NotFound(_))
        ));
        assert!(core.accounts.list_app_passwords(u.id).unwrap().is_empty());
    }

    #[test]
    fn names_are_validated() {
        let (_d, core) = core(ThrottleConfig::default());
        let u = core.accounts.add("alice", "pw", None).unwrap();
        for bad in ["", "   ", &"x".repeat(MAX_NAME_CHARS + 1), "a\nb"] {
            assert!(matches!(
                core.accounts.create_app_password(u.id, bad),
                Err(CoreError::BadRequest(_))
            ));
        }
        core.accounts
            .create_app_password(u.id, &"é".repeat(MAX_NAME_CHARS))
            .unwrap();
    }

    #[test]
    fn account_password_switch() {
        let (_d, core) = core(ThrottleConfig {
            account_password_basic: false,
            ..ThrottleConfig::default()
        });
        let u = core.accounts.add("alice", "pw", None).unwrap();
        let new = core.accounts.create_app_password(u.id, "phone").unwrap();
        assert!(matches!(
            core.auth.verify_basic("alice", "pw", None),
            Err(CoreError::Unauthenticated)
        ));
        core.auth.verify_basic("alice", &new.secret, None).unwrap();
    }

    #[test]
    fn wrong_app_passwords_are_throttled() {
        let (_d, core) = core(ThrottleConfig {
            max_failures: 2,
            ..ThrottleConfig::default()
        });
        let u = core.accounts.add("alice", "pw", None).unwrap();
        let new = core.accounts.create_app_password(u.id, "phone").unwrap();
        // Right id, wrong rest.
        let mut wrong = new.secret.clone();
        let last = if wrong.ends_with('2') { "3" } else { "2" };
        wrong.pop();
        wrong.push_str(last);
        for _ in 0..2 {
            assert!(matches!(
                core.auth.verify_basic("alice", &wrong, None),
                Err(CoreError::Unauthenticated)
            ));
        }
        assert!(matches!(
            core.auth.verify_basic("alice", &new.secret, None),
            Err(CoreError::Throttled(_))
        ));
    }

    #[test]
    fn removing_the_account_removes_its_app_passwords() {
        let (_d, core) = core(ThrottleConfig::default());
        let u = core.accounts.add("alice", "pw", None).unwrap();
        core.accounts.create_app_password(u.id, "phone").unwrap();
        core.accounts.remove("alice").unwrap();
        assert!(core.accounts.list_app_passwords(u.id).unwrap().is_empty());
    }
}
