//! Authentication: HTTP Basic credentials checked against argon2id hashes, with a cache of verified
//! credentials (so a sync client's thousands of requests do not each cost an argon2 run) and
//! throttling of failures per account and per client address. A Basic password is either the
//! account password (unless [`ThrottleConfig::account_password_basic`] is off) or one of the user's
//! app passwords (see `accounts::app_passwords` for the scheme). Bearer tokens (OIDC, a later
//! issue) plug in beside [`Authenticator::verify_basic`] and yield the same [`Principal`].

use crate::CoreError;
use crate::accounts::app_passwords::{self, TOUCH_INTERVAL_SECS};
use crate::accounts::{Accounts, verify_password};
use crate::clock::now_secs;
use hearth_types::UserId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable user id.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// E-mail, if known.
    pub email: Option<String>,
}

/// Throttling of failed logins, and which passwords Basic auth accepts.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures allowed within `window` before the account or address is blocked.
    pub max_failures: u32,
    /// Window over which failures are counted.
    pub window: Duration,
    /// First block duration; doubles with each further failure, up to `max_block`.
    pub block: Duration,
    /// Longest block.
    pub max_block: Duration,
    /// How long a verified credential stays cached.
    pub cache_ttl: Duration,
    /// Whether the account password itself works over Basic auth (app passwords always do).
    pub account_password_basic: bool,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(300),
            block: Duration::from_secs(30),
            max_block: Duration::from_secs(900),
            cache_ttl: Duration::from_secs(300),
            account_password_basic: true,
        }
    }
}

#[derive(Default)]
struct Failures {
    count: u32,
    first: Option<Instant>,
    blocked_until: Option<Instant>,
}

struct Cached {
    generation: u64,
    principal: Principal,
    expires: Instant,
    /// The id of the app password this credential is, if it is one.
    app_password: Option<String>,
    /// Unix seconds when the app password's `last_used` was last written.
    touched: i64,
}

/// What the cache knows about a credential.
enum Hit {
    /// Valid; nothing to do.
    Fresh(Principal),
    /// Valid app password whose `last_used` is due an update.
    Touch(Principal, String),
}

/// Cached credentials kept at most; beyond this, expired ones are dropped.
const CACHE_PRUNE_AT: usize = 4096;

/// The authenticator.
pub struct Authenticator {
    accounts: Arc<Accounts>,
    cfg: ThrottleConfig,
    /// Per-process random key, so cached digests are useless outside this process.
    key: [u8; 32],
    /// Keyed by the digest of (user name, password): a user's devices each have their own entry.
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    by_user: Mutex<HashMap<String, Failures>>,
    by_addr: Mutex<HashMap<IpAddr, Failures>>,
    /// Argon2 runs in progress; each holds ~19 MiB, so they are bounded (16 clients connecting
    /// at once would otherwise need ~300 MiB for a moment).
    hashing: Mutex<usize>,
    hashing_done: std::sync::Condvar,
}

/// Argon2 verifications allowed at once.
const MAX_HASHING: usize = 2;

impl Authenticator {
    pub(crate) fn new(accounts: Arc<Accounts>, cfg: ThrottleConfig) -> Self {
        Self {
            accounts,
            cfg,
            key: rand::random(),
            cache: Mutex::default(),
            by_user: Mutex::default(),
            by_addr: Mutex::default(),
            hashing: Mutex::new(0),
            hashing_done: std::sync::Condvar::new(),
        }
    }

    fn digest(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((username.len() as u64).to_le_bytes());
        h.update(username.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Checks Basic credentials against the cache of recently verified ones: no I/O, no argon2.
    /// `None` means "not known" (or an app password's last-use time is due a write), not "wrong":
    /// then call [`Authenticator::verify_basic`].
    pub fn cached(&self, username: &str, password: &str) -> Option<Principal> {
        match self.lookup(username, password, now_secs())? {
            Hit::Fresh(p) => Some(p),
            Hit::Touch(..) => None,
        }
    }

    fn lookup(&self, username: &str, password: &str, now: i64) -> Option<Hit> {
        let digest = self.digest(username, password);
        let generation = self.accounts.generation();
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let c = cache
            .get(&digest)
            .filter(|c| c.expires > Instant::now() && c.generation == generation)?;
        Some(match &c.app_password {
            Some(id) if now - c.touched >= TOUCH_INTERVAL_SECS => {
                Hit::Touch(c.principal.clone(), id.clone())
            }
            _ => Hit::Fresh(c.principal.clone()),
        })
    }

    /// Serves a cache hit, writing an app password's last-use time when due.
    fn serve(&self, username: &str, password: &str) -> Option<Principal> {
        let now = now_secs();
        match self.lookup(username, password, now)? {
            Hit::Fresh(p) => Some(p),
            Hit::Touch(p, id) => {
                let digest = self.digest(username, password);
                if let Some(c) = self
                    .cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_mut(&digest)
                {
                    c.touched = now;
                }
                if let Err(e) = self.accounts.touch_app_password(p.id, &id) {
                    tracing::warn!(error = %e, "recording an app password's use");
                }
                Some(p)
            }
        }
    }

    /// Checks Basic credentials. Blocking (argon2): call from a blocking thread.
    ///
    /// Unknown user and wrong password give the same answer; a blocked account or address gets
    /// [`CoreError::Throttled`] without any password check.
    pub fn verify_basic(
        &self,
        username: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<Principal, CoreError> {
        self.verify(
            username,
            password,
            addr,
            true,
            self.cfg.account_password_basic,
        )
    }

    /// Checks the account password only, as the sign-in form does: app passwords are for
    /// Basic-auth devices and never open an interactive session, and the
    /// `account_password_basic` switch does not apply (the form is not Basic auth). Same
    /// throttling and the same answer for unknown users. Blocking (argon2).
    pub fn verify_login(
        &self,
        username: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<Principal, CoreError> {
        self.verify(username, password, addr, false, true)
    }

    fn verify(
        &self,
        username: &str,
        password: &str,
        addr: Option<IpAddr>,
        allow_app: bool,
        allow_account: bool,
    ) -> Result<Principal, CoreError> {
        // The cache holds Basic credentials (possibly app passwords): only Basic checks use it.
        if allow_app && let Some(p) = self.serve(username, password) {
            return Ok(p);
        }
        let now = Instant::now();
        // Read the generation before the account: a change racing this check voids the entry.
        let generation = self.accounts.generation();
        let user = self.accounts.get(username)?;
        self.check_blocked(username, addr, now)?;
        // An app password is found by its id (first group), so at most one argon2 run is spent
        // on it, however many the user has.
        let app = match (&user, app_passwords::parse(password)) {
            (Some(u), Some((raw, id))) if allow_app => {
                self.accounts.app_password(u.id, &id)?.map(|rec| (raw, rec))
            }
            _ => None,
        };
        let matched: Option<Option<String>> = {
            let _permit = self.hashing_permit();
            // A client opening many connections at once: the first check fills the cache.
            if allow_app && let Some(p) = self.serve(username, password) {
                return Ok(p);
            }
            let mut ran = false;
            let mut matched = None;
            if let Some((raw, rec)) = &app {
                ran = true;
                if verify_password(&rec.hash, raw) {
                    matched = Some(Some(rec.id.clone()));
                }
            }
            if matched.is_none()
                && allow_account
                && let Some(u) = &user
            {
                ran = true;
                if verify_password(&u.password_hash, password) {
                    matched = Some(None);
                }
            }
            if !ran {
                // Spend the same time as a real check, so timing does not reveal which names exist.
                verify_password(DUMMY_HASH, password);
            }
            matched
        };
        match (matched, user) {
            (Some(app_password), Some(u)) => {
                self.clear_failures(username, addr);
                let p = principal(&u);
                let secs = now_secs();
                if let (Some(id), Some((_, rec))) = (&app_password, &app)
                    && rec
                        .last_used
                        .is_none_or(|t| secs - t >= TOUCH_INTERVAL_SECS)
                    && let Err(e) = self.accounts.touch_app_password(u.id, id)
                {
                    tracing::warn!(error = %e, "recording an app password's use");
                }
                if !allow_app {
                    return Ok(p);
                }
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                if cache.len() >= CACHE_PRUNE_AT {
                    cache.retain(|_, c| c.expires > now && c.generation == generation);
                }
                cache.insert(
                    self.digest(username, password),
                    Cached {
                        generation,
                        principal: p.clone(),
                        expires: now + self.cfg.cache_ttl,
                        app_password,
                        touched: secs,
                    },
                );
                Ok(p)
            }
            _ => {
                self.note_failure(username, addr, now);
                Err(CoreError::Unauthenticated)
            }
        }
    }

    /// Waits for one of the [`MAX_HASHING`] argon2 slots.
    fn hashing_permit(&self) -> HashingPermit<'_> {
        let mut n = self.hashing.lock().unwrap_or_else(PoisonError::into_inner);
        while *n >= MAX_HASHING {
            n = self
                .hashing_done
                .wait(n)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *n += 1;
        HashingPermit(self)
    }

    /// Whether `password` is (the shape of, and has the id of) one of `username`'s app passwords.
    /// No argon2: call it on credentials that already authenticated, to tell the two kinds apart.
    pub fn is_app_password(&self, username: &str, password: &str) -> Result<bool, CoreError> {
        let (Some(u), Some((_, id))) =
            (self.accounts.get(username)?, app_passwords::parse(password))
        else {
            return Ok(false);
        };
        Ok(self.accounts.app_password(u.id, &id)?.is_some())
    }

    /// Looks up a user by name without credentials (for a later token-based login).
    pub fn principal_of(&self, username: &str) -> Result<Option<Principal>, CoreError> {
        Ok(self.accounts.get(username)?.as_ref().map(principal))
    }

    fn check_blocked(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), CoreError> {
        let wait = |f: Option<&Failures>| {
            f.and_then(|f| f.blocked_until)
                .filter(|t| *t > now)
                .map(|t| (t - now).as_secs().max(1))
        };
        let u = wait(
            self.by_user
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(username),
        );
        let a = addr.and_then(|a| {
            wait(
                self.by_addr
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&a),
            )
        });
        match u.max(a) {
            Some(secs) => Err(CoreError::Throttled(secs)),
            None => Ok(()),
        }
    }

    fn note_failure(&self, username: &str, addr: Option<IpAddr>, now: Instant) {
        let cfg = &self.cfg;
        let bump = |f: &mut Failures, limit: u32| {
            if f.first.is_none_or(|t| now.duration_since(t) > cfg.window) {
                *f = Failures {
                    count: 0,
                    first: Some(now),
                    blocked_until: None,
                };
            }
            f.count += 1;
            if f.count >= limit {
                let extra = f.count - limit;
                let block = cfg
                    .block
                    .saturating_mul(1u32 << extra.min(16))
                    .min(cfg.max_block);
                f.blocked_until = Some(now + block);
            }
        };
        {
            let mut m = self.by_user.lock().unwrap_or_else(PoisonError::into_inner);
            bump(m.entry(username.to_owned()).or_default(), cfg.max_failures);
            prune(&mut m, now, cfg.window);
        }
        if let Some(a) = addr {
            let mut m = self.by_addr.lock().unwrap_or_else(PoisonError::into_inner);
            // Addresses get a larger allowance: a household shares one NAT address.
            bump(m.entry(a).or_default(), cfg.max_failures.saturating_mul(4));
            prune(&mut m, now, cfg.window);
        }
    }

    fn clear_failures(&self, username: &str, _addr: Option<IpAddr>) {
        self.by_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(username);
    }
}

/// An argon2 slot, released on drop.
struct HashingPermit<'a>(&'a Authenticator);

impl Drop for HashingPermit<'_> {
    fn drop(&mut self) {
        let mut n = self
            .0
            .hashing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *n = n.saturating_sub(1);
        self.0.hashing_done.notify_one();
    }
}

/// Keeps the failure maps bounded: drops entries whose window and block are over.
fn prune<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Failures>, now: Instant, window: Duration) {
    if m.len() < 10_000 {
        return;
    }
    m.retain(|_, f| {
        f.blocked_until.is_some_and(|t| t > now)
            || f.first.is_some_and(|t| now.duration_since(t) <= window)
    });
}

fn principal(u: &hearth_store::UserRecord) -> Principal {
    Principal {
        id: u.id,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        email: u.email.clone(),
    }
}

/// An argon2id hash of a random password, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$yrXpmj8xYrFfpkc1pP7Uew2ja6QDc+xN0QFtTDk3NDQ";

#[cfg(test)]
mod tests {
    use crate::{Core, CoreError, StorageOptions, ThrottleConfig};

    #[test]
    fn cache_serves_verified_credentials_until_the_account_changes() {
        let dir = tempfile::tempdir().unwrap();
        let core = Core::open(
            StorageOptions::new(dir.path().to_path_buf()),
            ThrottleConfig::default(),
        )
        .unwrap();
        core.accounts.add("alice", "one", None).unwrap();
        assert!(core.auth.cached("alice", "one").is_none());
        core.auth.verify_basic("alice", "one", None).unwrap();
        assert_eq!(core.auth.cached("alice", "one").unwrap().username, "alice");
        assert!(
            core.auth.cached("alice", "two").is_none(),
            "another password is not a hit"
        );
        core.accounts.set_password("alice", "two").unwrap();
        assert!(
            core.auth.cached("alice", "one").is_none(),
            "a password change voids the cache"
        );
        assert!(matches!(
            core.auth.verify_basic("alice", "one", None),
            Err(CoreError::Unauthenticated)
        ));
        core.auth.verify_basic("alice", "two", None).unwrap();
        core.accounts.remove("alice").unwrap();
        assert!(
            core.auth.cached("alice", "two").is_none(),
            "a removed account is not served"
        );
        assert!(core.auth.verify_basic("alice", "two", None).is_err());
    }
}
