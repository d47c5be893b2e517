//! Accounts (users, later groups): creation, passwords (argon2id), listing, removal. Each user gets
//! a personal space on creation.

use crate::clock::now_secs;
use crate::{CoreError, FileStore};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hearth_store::{Store, UserRecord};
use hearth_types::UserId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub mod app_passwords;

/// The account service.
pub struct Accounts {
    store: Store,
    files: Arc<FileStore>,
    /// Bumped by every change to any account; cached credentials from an older generation are
    /// void. This process is the only writer (the store is held exclusively), so it sees them all.
    generation: AtomicU64,
}

/// Checks a login name: 1–64 characters of letters, digits, `.`, `-`, `_`, `@`, not starting with `.`.
pub fn validate_username(name: &str) -> Result<(), CoreError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if name.is_empty() || name.chars().count() > 64 || !ok_chars || name.starts_with('.') {
        return Err(CoreError::BadRequest(format!(
            "invalid user name {name:?}: use 1-64 letters, digits, '.', '-', '_' or '@', not starting with '.'"
        )));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, CoreError> {
    if password.is_empty() {
        return Err(CoreError::BadRequest(
            "the password must not be empty".into(),
        ));
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| CoreError::Internal(format!("making a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches an argon2 PHC string.
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Accounts {
    pub(crate) fn new(store: Store, files: Arc<FileStore>) -> Self {
        Self {
            store,
            files,
            generation: AtomicU64::new(0),
        }
    }

    /// The current account generation (see the field).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A write to the accounts; bumps the generation afterwards, whatever the outcome.
    fn write<T>(
        &self,
        f: impl FnOnce(&hearth_store::WriteTx) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let r = self.store.write(f);
        self.generation.fetch_add(1, Ordering::AcqRel);
        r
    }

    /// Creates an account and its personal space.
    pub fn add(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<UserRecord, CoreError> {
        validate_username(username)?;
        let password_hash = hash_password(password)?;
        let rec = UserRecord {
            id: UserId::fresh(),
            username: username.to_owned(),
            display_name: display_name.unwrap_or(username).to_owned(),
            email: None,
            password_hash,
            quota: None,
            created: now_secs(),
            admin: false,
        };
        self.write(|tx| {
            if tx.user(username)?.is_some() {
                return Err(CoreError::AlreadyExists(format!(
                    "user {username:?} already exists"
                )));
            }
            tx.put_user(&rec)?;
            self.files.create_personal_space(tx, &rec)?;
            Ok(())
        })?;
        Ok(rec)
    }

    /// Changes a password.
    pub fn set_password(&self, username: &str, password: &str) -> Result<(), CoreError> {
        let hash = hash_password(password)?;
        self.write(|tx| {
            let mut u = tx
                .user(username)?
                .ok_or_else(|| CoreError::NotFound(format!("no user {username:?}")))?;
            u.password_hash = hash;
            tx.put_user(&u)?;
            Ok(())
        })
    }

    /// Sets a user's quota in bytes (`None`: the server default).
    pub fn set_quota(&self, username: &str, quota: Option<u64>) -> Result<(), CoreError> {
        self.write(|tx| {
            let mut u = tx
                .user(username)?
                .ok_or_else(|| CoreError::NotFound(format!("no user {username:?}")))?;
            u.quota = quota;
            tx.put_user(&u)?;
            Ok(())
        })
    }

    /// Removes an account. Its files stay on disk under `files/<username>` (nothing is deleted);
    /// re-creating the same name adopts them as a new account's files.
    pub fn remove(&self, username: &str) -> Result<(), CoreError> {
        self.write(|tx| {
            let u = tx
                .user(username)?
                .ok_or_else(|| CoreError::NotFound(format!("no user {username:?}")))?;
            tx.remove_user(&u)?;
            for p in tx.app_passwords(u.id)? {
                tx.remove_app_password(u.id, &p.id)?;
            }
            self.files.forget_personal_space(tx, &u)?;
            Ok(())
        })
    }

    /// All accounts, by login name.
    pub fn list(&self) -> Result<Vec<UserRecord>, CoreError> {
        Ok(self.store.read(|tx| tx.users())?)
    }

    /// One account by login name.
    pub fn get(&self, username: &str) -> Result<Option<UserRecord>, CoreError> {
        Ok(self.store.read(|tx| tx.user(username))?)
    }

    /// One account by id.
    pub fn get_by_id(&self, id: UserId) -> Result<Option<UserRecord>, CoreError> {
        Ok(self.store.read(|tx| match tx.username_of(id)? {
            Some(name) => tx.user(&name),
            None => Ok(None),
        })?)
    }
}
