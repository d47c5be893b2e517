//! Hearth's service layer: the traits and implementations every protocol adapter (WebDAV, OCS,
//! TUS, later CS3 gRPC and LDAP) calls. Adapters never touch redb or the file system directly.
#![deny(clippy::indexing_slicing)]

pub mod accounts;
pub mod auth;
mod clock;
pub mod error;
pub mod files;
pub mod locks;
pub mod oidc;
#[cfg(test)]
mod testing;
pub mod uploads;

pub use accounts::Accounts;
pub use auth::{Authenticator, Principal, ThrottleConfig};
pub use error::CoreError;
pub use files::{
    Checksums, FileStore, MoveOutcome, NodeKind, PutOptions, Quota, ResourceInfo, StagedUpload,
    StorageOptions, StorageProvider, TrashRecord, Upload, VersionRecord,
};
pub use locks::{LockRequest, Locks};
pub use oidc::{OidcGrants, RefreshUse};
pub use uploads::Uploads;

use hearth_store::Store;
use std::path::Path;
use std::sync::Arc;

/// Everything the adapters need, opened over one data directory.
#[derive(Clone)]
pub struct Core {
    /// Accounts and groups.
    pub accounts: Arc<Accounts>,
    /// Credential checks with caching and throttling.
    pub auth: Arc<Authenticator>,
    /// The storage provider for personal spaces.
    pub files: Arc<FileStore>,
    /// WebDAV write locks.
    pub locks: Arc<Locks>,
    /// Resumable (TUS) uploads.
    pub uploads: Arc<Uploads>,
    /// OpenID Connect refresh tokens and revoked grant families.
    pub oidc: Arc<OidcGrants>,
    store: Store,
}

impl Core {
    /// Opens the metadata database in `opts.data_dir` and builds every service.
    pub fn open(opts: StorageOptions, throttle: ThrottleConfig) -> Result<Self, CoreError> {
        std::fs::create_dir_all(&opts.data_dir)
            .map_err(|e| CoreError::io("creating the data directory", e))?;
        let store = Store::open(&opts.data_dir.join("hearth.redb"))?;
        let files = Arc::new(FileStore::new(store.clone(), opts)?);
        let accounts = Arc::new(Accounts::new(store.clone(), files.clone()));
        let auth = Arc::new(Authenticator::new(accounts.clone(), throttle));
        let locks = Arc::new(Locks::new(store.clone()));
        let uploads = Arc::new(Uploads::new(store.clone(), files.clone(), locks.clone())?);
        let oidc = Arc::new(OidcGrants::new(store.clone()));
        Ok(Self {
            accounts,
            auth,
            files,
            locks,
            uploads,
            oidc,
            store,
        })
    }

    /// Makes every metadata write durable (shutdown).
    pub fn flush(&self) -> Result<(), CoreError> {
        Ok(self.store.flush()?)
    }

    /// The metadata database file of a data directory.
    pub fn db_path(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("hearth.redb")
    }
}
