//! `CoreError`: the one error every adapter maps to its wire format (HTTP/WebDAV in
//! `hearth-http/src/error.rs`; later OCS, CS3 and LDAP each in one place).

use hearth_store::StoreError;
use hearth_types::NameError;

/// Everything a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No such resource (or not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// Credentials missing or wrong.
    #[error("authentication required")]
    Unauthenticated,
    /// Too many failed logins; retry after this many seconds.
    #[error("too many failed attempts; retry in {0} s")]
    Throttled(u64),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The target already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// A parent folder is missing, or the operation conflicts with the tree's state.
    #[error("{0}")]
    Conflict(String),
    /// A condition (If-Match, If-None-Match, Overwrite: F, If header) did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The resource is locked and the right lock token was not submitted.
    #[error("{0}")]
    Locked(String),
    /// The write would exceed the quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The request is malformed (bad name, checksum mismatch, bad input).
    #[error("{0}")]
    BadRequest(String),
    /// An uploaded chunk or file does not match the checksum the client announced, in a protocol
    /// that reports this apart from other bad input (TUS: 460 Checksum Mismatch).
    #[error("{0}")]
    ChecksumMismatch(String),
    /// A resumable upload session has expired (TUS: 410 Gone).
    #[error("{0}")]
    UploadExpired(String),
    /// Something broke inside; details are logged, never sent to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// An I/O failure, with what we were doing.
    pub fn io(what: &str, e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => CoreError::NotFound(format!("{what}: not found")),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                CoreError::QuotaExceeded("the disk is full".into())
            }
            std::io::ErrorKind::InvalidFilename => {
                CoreError::BadRequest(format!("{what}: invalid file name"))
            }
            _ => CoreError::Internal(format!("{what}: {e}")),
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        CoreError::Internal(e.to_string())
    }
}

impl From<NameError> for CoreError {
    fn from(e: NameError) -> Self {
        CoreError::BadRequest(e.to_string())
    }
}
