//! The store's one error type.

use std::path::PathBuf;

/// Anything that can go wrong below the service layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database exclusively.
    #[error("the database {0} is in use by another process")]
    InUse(PathBuf),
    /// The database was written by a newer Hearth.
    #[error(
        "the data directory has schema version {found}, newer than this Hearth understands ({supported})"
    )]
    TooNew {
        /// The version on disk.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A record could not be decoded.
    #[error("corrupt record in table {table}: {detail}")]
    Corrupt {
        /// Which table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// redb reported an error.
    #[error("database error: {0}")]
    Db(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
