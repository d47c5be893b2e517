//! Hearth's metadata store over redb: what the file system cannot hold (stable ids, etags, checksums,
//! dead properties, locks, favourites, trash and version indexes, accounts). The only crate that
//! touches redb; everything above it goes through [`Store::read`] and [`Store::write`].
#![deny(clippy::indexing_slicing)]

mod backend;
mod batch;
mod commit;
mod error;
mod migrate;
pub mod records;
pub mod schema;
mod tx;

pub use error::StoreError;
pub use records::*;
pub use tx::{ReadTx, WriteTx};

pub use batch::{Committer, Receipt};
pub use commit::GroupSync;
use redb::{Builder, ConcurrencyMode, Database, Durability, ReadableDatabase};
use std::path::Path;
use std::sync::Arc;

/// Memory redb may use to cache pages.
const CACHE_BYTES: usize = 16 << 20;

/// An open metadata database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    commits: GroupSync,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to [`schema::SCHEMA_VERSION`].
    ///
    /// One process at a time holds the database (redb's exclusive-writer mode, which is also what
    /// allows group commit with non-durable intermediate commits); a second process gets
    /// [`StoreError::InUse`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::Db(format!("opening {}: {e}", path.display())))?;
        let db = Builder::new()
            .set_concurrency_mode(ConcurrencyMode::ExclusiveWriter)
            // redb's default cache may grow to 1 GiB; Hearth lives on a desktop.
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(backend::FilledFile::new(file)?)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_path_buf()),
                other => StoreError::from(other),
            })?;
        let store = Self {
            inner: Arc::new(Inner {
                db,
                commits: GroupSync::default(),
            }),
        };
        migrate::run(&store)?;
        Ok(store)
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&ReadTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.inner.db.begin_read().map_err(StoreError::from)?;
        f(&ReadTx::new(txn))
    }

    /// Runs `f` in a write transaction and returns once the commit is durable on disk. If `f` fails,
    /// nothing it wrote is kept. Concurrent writers share one fsync (group commit).
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let out = self.write_lazy(f)?;
        self.inner.commits.wait(|| commit::flush(&self.inner.db))?;
        Ok(out)
    }

    /// Like [`Store::write`] but returns before the commit reaches the disk: for derived state that
    /// a crash may lose without harm (it is rebuilt from the file system).
    pub fn write_lazy<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut txn = self.inner.db.begin_write().map_err(StoreError::from)?;
        txn.set_durability(Durability::None)
            .map_err(StoreError::from)?;
        let wtx = WriteTx::new(txn);
        match f(&wtx) {
            Ok(v) => {
                wtx.into_inner().commit().map_err(StoreError::from)?;
                self.inner.commits.note();
                Ok(v)
            }
            Err(e) => {
                wtx.into_inner().abort().map_err(StoreError::from)?;
                Err(e)
            }
        }
    }

    /// The database, for the commit thread.
    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }

    /// Forces every earlier commit to disk (used at shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.commits.note();
        self.inner.commits.wait(|| commit::flush(&self.inner.db))
    }
}

#[cfg(test)]
mod tests;
