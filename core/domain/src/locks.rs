//! WebDAV write locks (RFC 4918 §6, §7): exclusive and shared, depth 0 or infinity, with timeouts.
//! Locks name a path (a URL's namespace), not a node, as the RFC defines them.

use crate::CoreError;
use crate::auth::Principal;
use crate::clock::now_secs;
use hearth_store::{LockRecord, Store};
use hearth_types::{RelPath, SpaceId};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a LOCK request asks for.
#[derive(Debug, Clone)]
pub struct LockRequest {
    /// The space.
    pub space: SpaceId,
    /// The lock root.
    pub path: RelPath,
    /// Depth infinity (the whole subtree) or 0.
    pub depth_infinity: bool,
    /// Shared or exclusive.
    pub shared: bool,
    /// The client's owner XML fragment.
    pub owner_xml: Option<String>,
    /// Timeout in seconds (`None` = infinite).
    pub timeout_secs: Option<u64>,
}

/// The lock service.
pub struct Locks {
    store: Store,
    /// Bumped after every lock is created (after its commit).
    created: AtomicU64,
    /// The value of `created` read before a snapshot that held no lock at all: while the two are
    /// equal, no lock exists and write checks need no read transaction. A lock created later
    /// bumps `created`; a snapshot taken before that lock's commit was read under an older value.
    empty_at: AtomicU64,
}

fn names(p: &RelPath) -> Vec<String> {
    p.names().iter().map(|n| n.as_str().to_owned()).collect()
}

fn live(l: &LockRecord, now: i64) -> bool {
    l.expires_at.is_none_or(|t| t > now)
}

/// Whether lock `l` applies to `path` (its root, or below a depth-infinity root).
fn covers(l: &LockRecord, space: SpaceId, path: &[String]) -> bool {
    l.space == space
        && path.starts_with(&l.path)
        && (l.depth_infinity || l.path.len() == path.len())
}

/// Whether lock `l` lies strictly below `path`.
fn below(l: &LockRecord, space: SpaceId, path: &[String]) -> bool {
    l.space == space && l.path.len() > path.len() && l.path.starts_with(path)
}

fn expiry(timeout: Option<u64>) -> Option<i64> {
    timeout.map(|t| now_secs().saturating_add(i64::try_from(t).unwrap_or(i64::MAX)))
}

impl Locks {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            created: AtomicU64::new(1),
            empty_at: AtomicU64::new(0),
        }
    }

    fn all_live(&self) -> Result<Vec<LockRecord>, CoreError> {
        let seen = self.created.load(Ordering::SeqCst);
        if self.empty_at.load(Ordering::SeqCst) == seen {
            return Ok(Vec::new());
        }
        let now = now_secs();
        let all = self.store.read(|tx| tx.locks())?;
        if all.is_empty() {
            self.empty_at.store(seen, Ordering::SeqCst);
        }
        Ok(all.into_iter().filter(|l| live(l, now)).collect())
    }

    /// Creates a lock; `Locked` if it conflicts with an existing one.
    pub fn lock(&self, who: &Principal, req: LockRequest) -> Result<LockRecord, CoreError> {
        let path = names(&req.path);
        let now = now_secs();
        let created = self.store.write(|tx| {
            for l in tx.locks()? {
                if !live(&l, now) {
                    tx.remove_lock(&l.token)?;
                    continue;
                }
                let overlaps = covers(&l, req.space, &path)
                    || (req.depth_infinity && below(&l, req.space, &path));
                if overlaps && !(l.shared && req.shared) {
                    return Err(CoreError::Locked(format!("{} is locked", req.path)));
                }
            }
            let rec = LockRecord {
                token: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                space: req.space,
                path: path.clone(),
                depth_infinity: req.depth_infinity,
                shared: req.shared,
                owner_xml: req.owner_xml.clone(),
                user: who.id,
                timeout_secs: req.timeout_secs,
                expires_at: expiry(req.timeout_secs),
            };
            tx.put_lock(&rec)?;
            Ok(rec)
        });
        // After the commit (also when only its flush failed): snapshots from now on may hold it.
        self.created.fetch_add(1, Ordering::SeqCst);
        created
    }

    /// Refreshes the lock `token`, which must apply to `path`.
    pub fn refresh(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        token: &str,
        timeout: Option<u64>,
    ) -> Result<LockRecord, CoreError> {
        let p = names(path);
        let now = now_secs();
        self.store.write(|tx| {
            let lock = tx
                .locks()?
                .into_iter()
                .find(|l| {
                    l.token == token && live(l, now) && covers(l, space, &p) && l.user == who.id
                })
                .ok_or_else(|| {
                    CoreError::PreconditionFailed(
                        "the lock token does not match a lock on this resource".into(),
                    )
                })?;
            let mut lock = lock;
            lock.timeout_secs = timeout;
            lock.expires_at = expiry(timeout);
            tx.put_lock(&lock)?;
            Ok(lock)
        })
    }

    /// Removes the lock `token`, which must apply to `path`.
    pub fn unlock(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        token: &str,
    ) -> Result<(), CoreError> {
        let p = names(path);
        let now = now_secs();
        self.store.write(|tx| {
            let lock = tx
                .locks()?
                .into_iter()
                .find(|l| l.token == token && live(l, now))
                .ok_or_else(|| CoreError::Conflict("no such lock token".into()))?;
            if !covers(&lock, space, &p) {
                return Err(CoreError::Conflict(
                    "the lock token does not apply to this resource".into(),
                ));
            }
            if lock.user != who.id {
                return Err(CoreError::PermissionDenied(
                    "the lock belongs to someone else".into(),
                ));
            }
            tx.remove_lock(token)?;
            Ok(())
        })
    }

    /// The live locks that apply to `path`.
    pub fn covering(&self, space: SpaceId, path: &RelPath) -> Result<Vec<LockRecord>, CoreError> {
        let p = names(path);
        Ok(self
            .all_live()?
            .into_iter()
            .filter(|l| covers(l, space, &p))
            .collect())
    }

    /// Every live lock in a space (for rendering `lockdiscovery` in listings).
    pub fn covering_space(&self, space: SpaceId) -> Result<Vec<LockRecord>, CoreError> {
        Ok(self
            .all_live()?
            .into_iter()
            .filter(|l| l.space == space)
            .collect())
    }

    /// Whether `path` (and, if `recursive`, anything below it) may be changed by `who` submitting
    /// `tokens`: every applying lock's token must be among them and belong to `who`.
    pub fn check_write(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        tokens: &[String],
        recursive: bool,
    ) -> Result<(), CoreError> {
        let p = names(path);
        for l in self.all_live()? {
            let applies = covers(&l, space, &p) || (recursive && below(&l, space, &p));
            if applies && !(tokens.iter().any(|t| t == &l.token) && l.user == who.id) {
                return Err(CoreError::Locked(format!("{path} is locked")));
            }
        }
        Ok(())
    }

    /// Drops the locks rooted at or below `path` (after it was deleted or moved away).
    pub fn release_under(&self, space: SpaceId, path: &RelPath) -> Result<(), CoreError> {
        let p = names(path);
        let doomed: Vec<String> = self
            .store
            .read(|tx| tx.locks())?
            .into_iter()
            .filter(|l| l.space == space && l.path.starts_with(&p))
            .map(|l| l.token)
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        self.store.write(|tx| -> Result<(), CoreError> {
            for t in &doomed {
                tx.remove_lock(t)?;
            }
            Ok(())
        })
    }
}
