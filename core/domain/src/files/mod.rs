//! The storage provider for spaces on the local disk (CS3 `StorageProvider` semantics: Stat,
//! ListContainer, CreateContainer, Delete, Move, Copy, upload/download, quota, recycle, versions,
//! arbitrary metadata). The bytes of every file are an ordinary file with its real name in a real
//! folder tree under `<data>/files/<user>/`; redb holds ids, etags, checksums, properties, trash and
//! version indexes. Changes made on disk by the host user are reconciled on access and by a scan.

mod chunks;
mod hashes;
mod history;
mod ops;
mod path_locks;
mod props;
mod provider;
mod recycle;
mod spares;
mod staging;
mod tree;
mod write;
mod writeback;

pub use chunks::ChunkUpload;
pub use hashes::Hashes;
pub use hearth_store::{Checksums, NodeKind, TrashRecord, VersionRecord};
pub use write::{CheckedUpload, ChecksumAlgo, PutOptions, SMALL_UPLOAD, StagedUpload, Upload};

use crate::CoreError;
use crate::auth::Principal;
use crate::clock::now_ns;
use hearth_store::{
    Committer, GroupSync, NodeRecord, Receipt, SpaceKind, SpaceRecord, Store, UserRecord, WriteTx,
};
use hearth_types::{NodeId, RelPath, ResourceId, SpaceId, StorageId};
use path_locks::{PathGuard, PathLocks};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where and how files are kept.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// The data directory (holds `hearth.redb`, `files/`, `system/`).
    pub data_dir: PathBuf,
    /// Quota for users without their own (`None` = unlimited).
    pub default_quota: Option<u64>,
    /// Versions kept per file at most.
    pub versions_max_count: usize,
    /// Versions older than this are removed.
    pub versions_max_age: Duration,
    /// Trash items older than this are purged by the background job.
    pub trash_retention: Duration,
    /// Resumable (TUS) uploads not finished within this time are removed.
    pub upload_expiry: Duration,
}

impl StorageOptions {
    /// Defaults for a data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            default_quota: None,
            versions_max_count: 20,
            versions_max_age: Duration::from_secs(30 * 24 * 3600),
            trash_retention: Duration::from_secs(30 * 24 * 3600),
            upload_expiry: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a stat or listing returns about one file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// `<storage>$<space>!<node>`.
    pub id: ResourceId,
    /// Path from the space root.
    pub path: RelPath,
    /// File or folder.
    pub kind: NodeKind,
    /// Bytes (tree size for folders).
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Unquoted etag.
    pub etag: String,
    /// Known checksums.
    pub checksums: Option<Checksums>,
    /// The owner of the space.
    pub owner: Option<hearth_types::UserId>,
    /// Whether the caller marked it as a favourite.
    pub favorite: bool,
}

impl ResourceInfo {
    /// Whether this is a folder.
    pub fn is_dir(&self) -> bool {
        self.kind == NodeKind::Dir
    }
    /// The MIME type guessed from the name (`httpd/unix-directory` for folders, as ownCloud does).
    pub fn mime(&self) -> String {
        if self.is_dir() {
            return "httpd/unix-directory".into();
        }
        self.path
            .file_name()
            .and_then(|n| mime_guess::from_path(n.as_str()).first())
            .map(|m| m.essence_str().to_owned())
            .unwrap_or_else(|| "application/octet-stream".into())
    }
    /// ownCloud permission letters (`oc:permissions`): the owner may do everything.
    pub fn permissions(&self) -> &'static str {
        if self.is_dir() { "RDNVCK" } else { "RDNVW" }
    }
}

/// Space usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bytes used.
    pub used: u64,
    /// Bytes allowed (`None` = unlimited).
    pub total: Option<u64>,
}

impl Quota {
    /// Bytes still free (`None` = unlimited).
    pub fn available(&self) -> Option<u64> {
        self.total.map(|t| t.saturating_sub(self.used))
    }
}

/// Whether a MOVE or COPY created the destination or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    /// The destination did not exist (201).
    Created,
    /// An existing destination was replaced (204); the old one went to the trash.
    Replaced,
}

/// The storage provider API (CS3 StorageProvider semantics), blocking: adapters call it from a
/// blocking thread. A later gRPC adapter implements CS3 over the same trait.
pub trait StorageProvider: Send + Sync {
    /// The personal space of a user.
    fn personal_space(&self, user: hearth_types::UserId) -> Result<SpaceId, CoreError>;
    /// Stat.
    fn stat(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<ResourceInfo, CoreError>;
    /// ListContainer.
    fn list(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<Vec<ResourceInfo>, CoreError>;
    /// CreateContainer.
    fn mkdir(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<ResourceInfo, CoreError>;
    /// Delete (to the trash).
    fn delete(&self, who: &Principal, space: SpaceId, path: &RelPath) -> Result<(), CoreError>;
    /// Move.
    fn move_to(
        &self,
        who: &Principal,
        space: SpaceId,
        from: &RelPath,
        to: &RelPath,
        overwrite: bool,
    ) -> Result<MoveOutcome, CoreError>;
    /// Copy (`recursive` false = Depth 0: a collection without members).
    fn copy_to(
        &self,
        who: &Principal,
        space: SpaceId,
        from: &RelPath,
        to: &RelPath,
        overwrite: bool,
        recursive: bool,
    ) -> Result<MoveOutcome, CoreError>;
    /// Starts an upload into a temporary file.
    fn begin_upload(&self) -> Result<Upload, CoreError>;
    /// Completes an upload: verifies, checks conditions and quota, and atomically puts it in place.
    fn finish_upload(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        upload: Upload,
        opts: &PutOptions,
    ) -> Result<(ResourceInfo, bool), CoreError>;
    /// Stats a resource and, for a file, opens it for reading (folders give `None`).
    fn open_read(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<(ResourceInfo, Option<std::fs::File>), CoreError>;
    /// Quota of a space.
    fn quota(&self, who: &Principal, space: SpaceId) -> Result<Quota, CoreError>;
    /// Dead properties (arbitrary metadata): (Clark name, XML fragment).
    fn properties(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
    ) -> Result<Vec<(String, String)>, CoreError>;
    /// Sets (`Some`) and removes (`None`) dead properties, all or nothing.
    fn patch_properties(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        ops: &[(String, Option<String>)],
    ) -> Result<(), CoreError>;
    /// Marks or unmarks a favourite.
    fn set_favorite(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        on: bool,
    ) -> Result<(), CoreError>;
    /// The caller's favourites.
    fn favorites(&self, who: &Principal) -> Result<Vec<(SpaceId, ResourceInfo)>, CoreError>;
    /// ListRecycle: the trash items of a space, newest first.
    fn list_recycle(&self, who: &Principal, space: SpaceId) -> Result<Vec<TrashRecord>, CoreError>;
    /// RestoreRecycleItem: puts an item back at `to` (its node id is kept).
    fn restore_recycle_item(
        &self,
        who: &Principal,
        space: SpaceId,
        key: &str,
        to: &RelPath,
        overwrite: bool,
    ) -> Result<MoveOutcome, CoreError>;
    /// PurgeRecycle: one item, or the whole trash when `key` is `None`.
    fn purge_recycle(
        &self,
        who: &Principal,
        space: SpaceId,
        key: Option<&str>,
    ) -> Result<(), CoreError>;
    /// Stat by resource id.
    fn stat_by_id(&self, who: &Principal, id: &ResourceId) -> Result<ResourceInfo, CoreError>;
    /// ListFileVersions: the file and its versions, oldest first.
    fn list_versions(
        &self,
        who: &Principal,
        id: &ResourceId,
    ) -> Result<(ResourceInfo, Vec<VersionRecord>), CoreError>;
    /// Opens one version's content.
    fn open_version(
        &self,
        who: &Principal,
        id: &ResourceId,
        key: u64,
    ) -> Result<(VersionRecord, std::fs::File), CoreError>;
    /// RestoreFileVersion: the version becomes the content, the current content a version.
    fn restore_version(
        &self,
        who: &Principal,
        id: &ResourceId,
        key: u64,
    ) -> Result<ResourceInfo, CoreError>;
}

/// The local-disk storage provider.
pub struct FileStore {
    store: Store,
    opts: StorageOptions,
    storage_id: StorageId,
    tmp_dir: PathBuf,
    trash_dir: PathBuf,
    versions_dir: PathBuf,
    chunks_dir: PathBuf,
    /// Uploads stage in unnamed `O_TMPFILE` inodes (see `staging`).
    unnamed_tmp: bool,
    /// Unnamed files created ahead of time for small uploads (with `unnamed_tmp` only).
    spares: Option<spares::Spares>,
    /// The data directory, held open for `syncfs`.
    data_fd: std::fs::File,
    /// Shares one `syncfs` between writers whose content must be durable before their rename
    /// (copies, chunks, resumable uploads; plain uploads go through `uploads`).
    data_sync: GroupSync,
    /// Shares one `syncfs` + durable metadata commit between operations that renamed something.
    tree_sync: GroupSync,
    /// The commit thread placing uploads: shares the `syncfs` calls, one write transaction and
    /// its durable commit between the uploads queued meanwhile.
    /// Replaced by [`FileStore::revive_uploads`] if its threads stop.
    uploads: std::sync::RwLock<Committer<CoreError>>,
    /// The hashes of each chunked transfer's chunks so far (see `chunks`).
    chunk_hashes: std::sync::Mutex<std::collections::HashMap<PathBuf, chunks::HashedChunks>>,
    /// Serialises the final step of writes to the same path.
    path_locks: Arc<PathLocks>,
}

/// The upload commit threads of the data directory `data_fd` (see [`Committer`]).
fn start_uploads(
    store: &Store,
    data_fd: &std::fs::File,
) -> Result<Committer<CoreError>, CoreError> {
    let fd = data_fd
        .try_clone()
        .map_err(|e| CoreError::io("opening the data directory", e))?;
    Ok(Committer::start(store, "hearth-commit", move || {
        syncfs(&fd)
    })?)
}

impl FileStore {
    pub(crate) fn new(store: Store, opts: StorageOptions) -> Result<Self, CoreError> {
        let system = opts.data_dir.join("system");
        let tmp_dir = system.join("tmp");
        let trash_dir = system.join("trash");
        let versions_dir = system.join("versions");
        let chunks_dir = system.join("chunks");
        for d in [
            &chunks_dir,
            &tmp_dir,
            &trash_dir,
            &versions_dir,
            &opts.data_dir.join("files"),
        ] {
            std::fs::create_dir_all(d)
                .map_err(|e| CoreError::io("creating the data directory layout", e))?;
        }
        // Leftovers of uploads interrupted by a crash: never visible under a real name, safe to drop.
        if let Ok(entries) = std::fs::read_dir(&tmp_dir) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
        let storage_id = store.storage_id()?;
        let data_fd = std::fs::File::open(&opts.data_dir)
            .map_err(|e| CoreError::io("opening the data directory", e))?;
        let unnamed_tmp = staging::unnamed_works(&tmp_dir);
        let spares = if unnamed_tmp {
            spares::Spares::start(tmp_dir.clone())
        } else {
            None
        };
        let uploads = std::sync::RwLock::new(start_uploads(&store, &data_fd)?);
        Ok(Self {
            store,
            opts,
            storage_id,
            unnamed_tmp,
            spares,
            tmp_dir,
            trash_dir,
            versions_dir,
            chunks_dir,
            path_locks: Arc::default(),
            chunk_hashes: std::sync::Mutex::default(),
            data_fd,
            data_sync: GroupSync::default(),
            tree_sync: GroupSync::default(),
            uploads,
        })
    }

    /// Whether the upload commit threads run (see [`Committer::running`]).
    pub fn uploads_running(&self) -> bool {
        self.uploads
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .running()
    }

    /// Starts new upload commit threads if the current ones stopped (the supervisor's `store`
    /// service calls this); `Ok(true)` if it did. Uploads queued on the stopped ones have failed.
    pub fn revive_uploads(&self) -> Result<bool, CoreError> {
        if self.uploads_running() {
            return Ok(false);
        }
        let fresh = start_uploads(&self.store, &self.data_fd)?;
        let stopped = {
            let mut current = self
                .uploads
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *current, fresh)
        };
        // Joins what is left of the old threads, outside the lock.
        drop(stopped);
        Ok(true)
    }

    /// Makes the content of every file written so far durable. Concurrent callers share one
    /// `syncfs(2)` of the data directory's file system.
    pub(crate) fn sync_data(&self) -> Result<(), CoreError> {
        self.data_sync.note();
        self.data_sync.wait(|| self.syncfs())
    }

    /// Commits a metadata change and returns once it, and every rename made before it, is
    /// durable: one `syncfs` (directory entries) plus one durable redb commit, shared by all
    /// concurrent callers.
    pub(crate) fn commit<T>(
        &self,
        f: impl FnOnce(&WriteTx) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let out = self.store.write_lazy(f)?;
        self.tree_sync.note();
        self.tree_sync.wait(|| {
            self.syncfs()?;
            Ok::<(), CoreError>(self.store.flush()?)
        })?;
        Ok(out)
    }

    /// Group commit of a change that gives a file its name: the commit threads run `place` once
    /// the content of every file in its round is durable (one shared `syncfs`), then `f` in a
    /// write transaction shared by the round, and answer once the record and (after the next
    /// round's `syncfs`) the new name are durable. `f` may run twice (see [`Committer`]).
    pub(crate) fn submit_placed<S: Send + 'static, T: Send + 'static>(
        &self,
        place: impl FnOnce() -> Result<S, CoreError> + Send + 'static,
        f: impl FnMut(&WriteTx, &S) -> Result<T, CoreError> + Send + 'static,
    ) -> Receipt<T, CoreError> {
        self.uploads
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .submit(place, f)
    }

    fn syncfs(&self) -> Result<(), CoreError> {
        syncfs(&self.data_fd)
    }

    /// The storage provider id.
    pub fn storage_id(&self) -> StorageId {
        self.storage_id
    }

    /// The options in force.
    pub fn options(&self) -> &StorageOptions {
        &self.opts
    }

    /// Creates the personal space of a new account (inside the account's transaction).
    pub(crate) fn create_personal_space(
        &self,
        tx: &WriteTx,
        user: &UserRecord,
    ) -> Result<(), CoreError> {
        let id = SpaceId(user.id.0);
        let rec = SpaceRecord {
            id,
            kind: SpaceKind::Personal,
            owner: Some(user.id),
            name: user.display_name.clone(),
            dir: format!("files/{}", user.username),
        };
        let dir = self.opts.data_dir.join(&rec.dir);
        std::fs::create_dir_all(&dir).map_err(|e| CoreError::io("creating the space folder", e))?;
        tx.put_space(&rec)?;
        tx.put_node(
            NodeId(id.0),
            &NodeRecord {
                space: id,
                parent: None,
                name: String::new(),
                kind: NodeKind::Dir,
                size: 0,
                mtime_ns: now_ns(),
                etag: tree::new_etag(),
                checksums: None,
                disk_mtime_ns: 0,
                disk_size: 0,
            },
        )?;
        Ok(())
    }

    /// Drops the records of a removed account's space (its files stay on disk).
    pub(crate) fn forget_personal_space(
        &self,
        tx: &WriteTx,
        user: &UserRecord,
    ) -> Result<(), CoreError> {
        let id = SpaceId(user.id.0);
        tree::remove_subtree(tx, NodeId(id.0))?;
        tx.remove_space(id)?;
        Ok(())
    }

    /// Every space (for the background scan).
    pub fn spaces(&self) -> Result<Vec<SpaceRecord>, CoreError> {
        Ok(self.store.read(|tx| tx.spaces())?)
    }

    fn space_for(&self, who: &Principal, space: SpaceId) -> Result<SpaceRecord, CoreError> {
        self.store.read(|tx| owned_space(tx, who, space))
    }

    /// The id of a user's personal space, without I/O. Whether it exists is checked by every
    /// operation on it (an authenticated account always has one: both are created together).
    pub fn personal_space_id(&self, user: hearth_types::UserId) -> SpaceId {
        SpaceId(user.0)
    }

    /// Holds the write lock of `path` (see [`path_locks`]).
    fn lock_path(&self, path: &std::path::Path) -> PathGuard {
        self.path_locks.lock(path)
    }
}

/// The space `space` if `who` may use it (inside a read transaction).
fn owned_space(
    tx: &hearth_store::ReadTx,
    who: &Principal,
    space: SpaceId,
) -> Result<SpaceRecord, CoreError> {
    let rec = tx
        .space(space)?
        .ok_or_else(|| CoreError::NotFound("no such space".into()))?;
    // Only the owner sees a personal space (sharing comes later); others get a plain 404.
    if rec.owner != Some(who.id) {
        return Err(CoreError::NotFound("no such space".into()));
    }
    Ok(rec)
}

/// `syncfs(2)` of the file system holding `fd`.
fn syncfs(fd: &std::fs::File) -> Result<(), CoreError> {
    rustix::fs::syncfs(fd)
        .map_err(|e| CoreError::io("syncing the data directory", std::io::Error::from(e)))
}
