//! Grant state: pending login requests and authorization codes in memory (short-lived; lost on
//! restart), refresh tokens and revoked families in the store (`hearth_domain::OidcGrants`), with
//! the revoked families mirrored in memory so checking a Bearer token costs no I/O.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_domain::{OidcGrants, RefreshUse};
use hearth_store::RefreshTokenRecord;
use hearth_types::UserId;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an authorization code stays valid unless configured otherwise.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a login form stays valid.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(600);
/// How long a refresh token stays valid.
pub(crate) const REFRESH_TTL: Duration = Duration::from_secs(60 * 60 * 24 * 90);

/// A random URL-safe token of 32 bytes.
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex_hash(token: &str) -> String {
    hash(token).iter().map(|b| format!("{b:02x}")).collect()
}

/// The parameters of one authorization request, checked before the form is shown.
#[derive(Debug, Clone)]
pub(crate) struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: String,
    pub nonce: Option<String>,
    pub challenge: Option<String>,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub req: AuthRequest,
    pub user: UserId,
    /// Tokens issued from this code carry this family (`sid`).
    pub family: String,
    pub expires: Instant,
    pub used: bool,
}

#[derive(Default)]
struct Inner {
    logins: HashMap<String, (AuthRequest, Instant)>,
    codes: HashMap<[u8; 32], Code>,
    /// Revoked families and the unix time until which they stay listed.
    revoked: HashMap<String, i64>,
}

/// The grant store.
pub(crate) struct Grants {
    inner: Mutex<Inner>,
    store: Arc<OidcGrants>,
    /// How long an authorization code stays valid.
    code_ttl: Duration,
}

/// Why a grant was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Unknown, expired or belongs to someone else.
    Invalid,
    /// Used before: the family is now revoked.
    Replayed,
    /// The store failed.
    Internal,
}

impl Grants {
    /// Opens over the persistent part, loading the revoked families.
    pub(crate) fn new(store: Arc<OidcGrants>, code_ttl: Duration) -> Result<Self, String> {
        let revoked = store
            .revoked_families()
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        Ok(Self {
            inner: Mutex::new(Inner {
                revoked,
                ..Inner::default()
            }),
            store,
            code_ttl,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers a validated request for the login form; returns its id (also the CSRF token).
    pub(crate) fn start_login(&self, req: AuthRequest) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut g = self.lock();
        g.logins.retain(|_, (_, exp)| *exp > now);
        g.logins.insert(id.clone(), (req, now + LOGIN_TTL));
        id
    }

    /// The pending request of a login form.
    pub(crate) fn login(&self, id: &str) -> Option<AuthRequest> {
        let g = self.lock();
        g.logins
            .get(id)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(r, _)| r.clone())
    }

    /// Ends a login (successful sign-in); issues the code.
    pub(crate) fn issue_code(&self, login_id: &str, user: UserId) -> Option<String> {
        let mut g = self.lock();
        let (req, _) = g.logins.remove(login_id)?;
        let now = Instant::now();
        g.codes.retain(|_, c| c.expires > now);
        let code = random_token();
        g.codes.insert(
            hash(&code),
            Code {
                req,
                user,
                family: random_token(),
                expires: now + self.code_ttl,
                used: false,
            },
        );
        Some(code)
    }

    /// Redeems a code once. A second use revokes what the first one issued (RFC 6749 §4.1.2).
    pub(crate) fn redeem_code(&self, code: &str) -> Result<Code, Refused> {
        let mut g = self.lock();
        let Some(c) = g.codes.get_mut(&hash(code)) else {
            return Err(Refused::Invalid);
        };
        if c.used {
            let family = c.family.clone();
            drop(g);
            self.revoke_family(&family);
            return Err(Refused::Replayed);
        }
        if c.expires <= Instant::now() {
            return Err(Refused::Invalid);
        }
        c.used = true;
        Ok(c.clone())
    }

    /// Issues a refresh token in a family. Blocking (store write).
    pub(crate) fn issue_refresh(
        &self,
        client_id: &str,
        user: UserId,
        scope: &str,
        family: &str,
    ) -> Result<String, Refused> {
        let token = random_token();
        let rec = RefreshTokenRecord {
            client_id: client_id.to_owned(),
            user,
            scope: scope.to_owned(),
            family: family.to_owned(),
            expires: super::now_secs_i64() + REFRESH_TTL.as_secs() as i64,
            used: false,
        };
        self.store
            .issue_refresh(&hex_hash(&token), &rec)
            .map_err(|e| {
                tracing::error!(error = %e, "storing a refresh token");
                Refused::Internal
            })?;
        Ok(token)
    }

    /// Uses a refresh token once (rotation). A replay revokes the whole family. Blocking.
    pub(crate) fn use_refresh(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<RefreshTokenRecord, Refused> {
        match self.store.use_refresh(&hex_hash(token), client_id) {
            Ok(RefreshUse::Valid(r)) if !self.is_revoked(&r.family) => Ok(r),
            Ok(RefreshUse::Valid(_) | RefreshUse::Invalid) => Err(Refused::Invalid),
            Ok(RefreshUse::Replayed(family)) => {
                let until = super::now_secs_i64() + REFRESH_TTL.as_secs() as i64;
                self.lock().remember_revoked(family, until);
                Err(Refused::Replayed)
            }
            Err(e) => {
                tracing::error!(error = %e, "using a refresh token");
                Err(Refused::Internal)
            }
        }
    }

    /// Revokes the family of a refresh token (RFC 7009); unknown tokens are ignored. Blocking.
    pub(crate) fn revoke_refresh(&self, token: &str) {
        if let Ok(Some(family)) = self.store.family_of(&hex_hash(token)) {
            self.revoke_family(&family);
        }
    }

    /// Revokes a family (in memory at once, and in the store). Blocking.
    pub(crate) fn revoke_family(&self, family: &str) {
        let until = super::now_secs_i64() + REFRESH_TTL.as_secs() as i64;
        self.lock().remember_revoked(family.to_owned(), until);
        if let Err(e) = self.store.revoke_family(family, until) {
            tracing::error!(error = %e, "persisting a revoked grant family");
        }
    }

    /// Whether tokens of this family were revoked.
    pub(crate) fn is_revoked(&self, family: &str) -> bool {
        self.lock().revoked.contains_key(family)
    }
}

impl Inner {
    /// Lists a revoked family, forgetting the ones whose tokens have all expired.
    fn remember_revoked(&mut self, family: String, until: i64) {
        let now = super::now_secs_i64();
        self.revoked.retain(|_, u| *u > now);
        self.revoked.insert(family, until);
    }
}
