//! Uploads: content is streamed into an unnamed temporary file (hashing as it goes, see
//! `staging`), made durable, then given the real name in one step (linkat, or rename over an old
//! file), so a reader (or a crash) only ever sees the old content or the new content whole. The
//! replaced content is kept as a version (hard link). The durable steps run on the upload commit
//! threads, shared by every upload finishing at the same time (`hearth_store::Committer`).

use super::hashes::Hashes;
use super::history::prune_versions;
use super::staging::{self, Staging};
use super::tree::{Located, new_etag, propagate, record_from_disk, to_i64};
use super::{FileStore, ResourceInfo};
use crate::CoreError;
use crate::auth::Principal;
use crate::clock::{now_ns, system_ns};
use hearth_store::{Checksums, NodeKind, NodeRecord, Receipt, SpaceRecord, VersionRecord};
use hearth_types::{NodeId, RelPath, ResourceId, SpaceId};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A checksum algorithm clients may send (`OC-Checksum: SHA1:<hex>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgo {
    /// SHA-1.
    Sha1,
    /// MD5.
    Md5,
    /// Adler-32.
    Adler32,
}

impl ChecksumAlgo {
    /// Parses `SHA1`, `MD5`, `ADLER32` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Self::Sha1),
            "MD5" => Some(Self::Md5),
            "ADLER32" => Some(Self::Adler32),
            _ => None,
        }
    }

    /// Whether `sums` has this algorithm's digest and it is `want` (hex, any case).
    pub(crate) fn matches(self, sums: &Checksums, want: &str) -> bool {
        let have = match self {
            Self::Sha1 => sums.sha1.as_deref(),
            Self::Md5 => sums.md5.as_deref(),
            Self::Adler32 => sums.adler32.as_deref(),
        };
        have.is_some_and(|h| h.eq_ignore_ascii_case(want))
    }
}

/// Conditions and metadata of a PUT.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// `If-Match`: the current etag must be one of these (unquoted; `*` = must exist).
    pub if_match: Option<Vec<String>>,
    /// `If-None-Match`: the current etag must be none of these (`*` = must not exist).
    pub if_none_match: Option<Vec<String>>,
    /// `X-OC-Mtime`: the modification time to set, in seconds.
    pub mtime_secs: Option<i64>,
    /// The checksum the client announced.
    pub checksum: Option<(ChecksumAlgo, String)>,
    /// The length the client announced; a different length means a truncated upload.
    pub expected_len: Option<u64>,
}

/// An upload in progress: a temporary file plus running hashes.
pub struct Upload {
    staging: Staging,
    /// Buffered: network chunks are small, write(2) calls should not be.
    file: std::io::BufWriter<File>,
    /// SHA-1, MD5, Adler-32 and the length of what was received.
    hashes: Hashes,
    /// Given its real name: nothing to clean up.
    placed: bool,
    /// Background syncs of a large upload as it arrives.
    writeback: Option<super::writeback::Writeback>,
}

/// The largest upload [`FileStore::small_upload`] takes (a write this size into the page cache
/// is brief enough for an async worker).
pub const SMALL_UPLOAD: usize = 64 << 10;

/// Uploads larger than this sync their own content before their commit round.
const SYNC_ALONE_AFTER: u64 = 4 << 20;

impl Upload {
    /// An empty upload into `file`, writing through a buffer of `buffer` bytes.
    fn fresh(file: File, staging: Staging, buffer: usize) -> Self {
        Upload {
            staging,
            file: std::io::BufWriter::with_capacity(buffer, file),
            hashes: Hashes::default(),
            placed: false,
            writeback: None,
        }
    }

    /// Appends bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<(), CoreError> {
        self.file
            .write_all(data)
            .map_err(|e| CoreError::io("writing an upload", e))?;
        let before = self.hashes.len();
        self.hashes.update_slice(data)?;
        self.wrote(before, self.hashes.len());
        Ok(())
    }

    /// Starts a background sync each time a large upload passes another `writeback::EVERY` bytes
    /// (it had `before` bytes and now has `len`).
    fn wrote(&mut self, before: u64, len: u64) {
        use super::writeback::{EVERY, Writeback};
        if len > SYNC_ALONE_AFTER && before / EVERY != len / EVERY {
            if self.writeback.is_none() {
                self.writeback = Writeback::start(self.file.get_ref());
            }
            if let Some(w) = &self.writeback {
                w.kick();
            }
        }
    }

    /// Appends a received buffer; large uploads hash its MD5 on a helper thread (no copy).
    pub fn write_bytes(&mut self, data: bytes::Bytes) -> Result<(), CoreError> {
        let before = self.hashes.len();
        self.hashes.update(data.clone())?;
        self.file
            .write_all(&data)
            .map_err(|e| CoreError::io("writing an upload", e))?;
        self.wrote(before, self.hashes.len());
        Ok(())
    }

    /// Writes out what is buffered.
    pub(crate) fn flush_file(&mut self) -> Result<(), CoreError> {
        self.file
            .flush()
            .map_err(|e| CoreError::io("writing an upload", e))
    }

    /// Moves the temporary file to `path` (a chunk), nothing checked; returns its hashes.
    pub(crate) fn persist_to(mut self, path: &std::path::Path) -> Result<Hashes, CoreError> {
        self.file
            .flush()
            .map_err(|e| CoreError::io("writing an upload", e))?;
        staging::place(self.file.get_ref(), &self.staging, path)?;
        self.placed = true;
        self.hashes.settle()?;
        Ok(std::mem::take(&mut self.hashes))
    }

    /// Appends the rest of `src` without hashing it (the upload was begun with hashes that
    /// already cover it): copied in the kernel where it can (`copy_file_range`). Returns the
    /// number of bytes.
    pub(crate) fn append_unhashed(&mut self, src: &mut File) -> Result<u64, CoreError> {
        use std::io::Seek;
        self.file
            .flush()
            .map_err(|e| CoreError::io("writing an upload", e))?;
        let out = self.file.get_mut();
        let before = out
            .stream_position()
            .map_err(|e| CoreError::io("copying a chunk", e))?;
        let n = std::io::copy(src, out).map_err(|e| CoreError::io("copying a chunk", e))?;
        self.wrote(before, before + n);
        Ok(n)
    }

    /// Adopts a complete file written elsewhere (a resumable upload's data) as an upload;
    /// `finish_upload` then places it like any other. Dropped unplaced, it is removed. `hashes`
    /// are those of the file's content as it was received, if they cover all of it; else the
    /// file is hashed from disk.
    pub fn from_file(path: PathBuf, hashes: Option<Hashes>) -> Result<Self, CoreError> {
        use std::io::Read;
        let mut file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| CoreError::io("opening an upload", e))?;
        let size = file
            .metadata()
            .map_err(|e| CoreError::io("opening an upload", e))?
            .len();
        let kept = hashes.filter(|h| h.len() == size);
        let rehash = kept.is_none();
        let mut up = Upload {
            staging: Staging::Named(path),
            file: std::io::BufWriter::new(
                file.try_clone()
                    .map_err(|e| CoreError::io("opening an upload", e))?,
            ),
            hashes: kept.unwrap_or_default(),
            placed: false,
            writeback: None,
        };
        if rehash {
            loop {
                // A fresh buffer per MiB (filled without zeroing), shared with the MD5 helper.
                let mut buf = Vec::with_capacity(1 << 20);
                match (&mut file).take(1 << 20).read_to_end(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => up.hashes.update(bytes::Bytes::from(buf))?,
                    Err(e) => return Err(CoreError::io("reading an upload", e)),
                }
            }
        }
        up.hashes.settle()?;
        Ok(up)
    }

    /// The checksums of what was received so far.
    pub fn checksums(&mut self) -> Result<Checksums, CoreError> {
        self.hashes.checksums()
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.hashes.len()
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.hashes.len() == 0
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Unless it took its real name, the temporary file goes.
        if !self.placed {
            staging::discard(&self.staging);
        }
    }
}

/// An upload that passed its checks and holds its path's lock (see
/// [`FileStore::check_upload`]); [`FileStore::submit_upload`] hands it to the commit threads.
pub struct CheckedUpload {
    up: Upload,
    checksums: Checksums,
    space: SpaceRecord,
    parent_id: NodeId,
    name: String,
    /// Where it goes on disk.
    target: PathBuf,
    /// Held until the record is durable: released by the commit thread with the change.
    guard: super::PathGuard,
    /// The file it replaces.
    existing: Option<Located>,
    path: RelPath,
}

impl CheckedUpload {
    /// Whether it replaces a file: submitting it then links the old content as a version, which
    /// may wait for the disk (a new folder under `system/versions`), so callers on an async
    /// worker submit it on the blocking pool.
    pub fn replaces(&self) -> bool {
        self.existing.is_some()
    }
}

/// What the commit thread reports for a placed upload.
struct Committed {
    id: NodeId,
    rec: NodeRecord,
    created: bool,
    /// Version files whose records the same transaction dropped (over the retention limits).
    pruned: Vec<PathBuf>,
}

/// An upload handed to the commit thread. [`StagedUpload::wait`] (blocking) or
/// [`StagedUpload::done`] (`async`) returns its resource and whether it was created, once its
/// content, name and record are durable.
pub struct StagedUpload {
    receipt: Receipt<Committed, CoreError>,
    placement: Placement,
}

/// Where a staged upload goes, to describe it (or clean up) once its commit is known.
struct Placement {
    storage_id: hearth_types::StorageId,
    space: SpaceRecord,
    path: RelPath,
    /// The replaced content's version link, removed if the upload fails.
    version: Option<PathBuf>,
}

impl StagedUpload {
    /// Blocks the thread until the upload is durable.
    pub fn wait(self) -> Result<(ResourceInfo, bool), CoreError> {
        self.placement.finish(self.receipt.wait())
    }

    /// Waits without holding a thread.
    pub async fn done(self) -> Result<(ResourceInfo, bool), CoreError> {
        self.placement.finish(self.receipt.done().await)
    }
}

impl Placement {
    /// The resource as committed; removes version files the commit dropped, or the version
    /// link of a failed upload (rare unlinks, quick enough for an async caller).
    fn finish(
        self,
        outcome: Result<Committed, CoreError>,
    ) -> Result<(ResourceInfo, bool), CoreError> {
        let c = match outcome {
            Ok(c) => c,
            Err(e) => {
                if let Some(p) = self.version {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        };
        for p in &c.pruned {
            let _ = std::fs::remove_file(p);
        }
        let info = ResourceInfo {
            id: ResourceId {
                storage: self.storage_id,
                space: self.space.id,
                node: c.id,
            },
            path: self.path,
            kind: c.rec.kind,
            size: c.rec.size,
            mtime_ns: c.rec.mtime_ns,
            etag: c.rec.etag,
            checksums: c.rec.checksums,
            owner: self.space.owner,
            favorite: false,
        };
        Ok((info, c.created))
    }
}

fn etag_matches(list: &[String], etag: &str) -> bool {
    list.iter()
        .any(|e| e == "*" || e.trim_start_matches("W/").trim_matches('"') == etag)
}

impl FileStore {
    /// Starts an upload; SHA-1, MD5 and Adler-32 are computed while it streams in (clients such as
    /// rclone compare MD5, the desktop clients SHA-1), as oCIS does after an upload.
    pub(crate) fn begin_upload_impl(&self) -> Result<Upload, CoreError> {
        let (file, staging) = staging::create(&self.tmp_dir, self.unnamed_tmp)?;
        // Buffered: network chunks are small, write(2) calls should not be.
        Ok(Upload::fresh(file, staging, 1 << 20))
    }

    /// An upload whose hashes start from `hashes`: what is written to it is hashed on top of
    /// them (a chunk following the chunks before it), what is appended with
    /// [`Upload::append_unhashed`] is taken as covered by them (an assembly).
    pub(crate) fn begin_upload_with(&self, hashes: Hashes) -> Result<Upload, CoreError> {
        let mut up = self.begin_upload_impl()?;
        up.hashes = hashes;
        Ok(up)
    }

    /// An upload of `data`, received whole (a small PUT or TUS creation-with-upload).
    pub fn upload_of(&self, data: &[u8]) -> Result<Upload, CoreError> {
        let (file, staging) = staging::create(&self.tmp_dir, self.unnamed_tmp)?;
        Self::whole(file, staging, data)
    }

    /// An upload of `data` (received whole, at most [`SMALL_UPLOAD`] bytes) in a file created
    /// ahead of time, so it may run on an async worker (see `spares`). `None` when the data is
    /// larger or no spare file is ready: then use [`FileStore::upload_of`] on the blocking pool.
    pub fn small_upload(&self, data: &[u8]) -> Result<Option<Upload>, CoreError> {
        let spare = self
            .spares
            .as_ref()
            .filter(|_| data.len() <= SMALL_UPLOAD)
            .and_then(|s| s.take());
        let Some(file) = spare else { return Ok(None) };
        let staging = Staging::Unnamed {
            tmp_dir: self.tmp_dir.clone(),
        };
        Self::whole(file, staging, data).map(Some)
    }

    /// An upload of `data` written straight into `file` (one write(2), no buffer).
    fn whole(file: File, staging: Staging, data: &[u8]) -> Result<Upload, CoreError> {
        let mut up = Upload::fresh(file, staging, 0);
        up.write(data)?;
        Ok(up)
    }

    /// Fails early when `incoming` bytes written to `path` (replacing what is there) cannot fit
    /// the quota (PUT with Content-Length), before any byte is received.
    pub fn check_quota(
        &self,
        who: &Principal,
        space: SpaceId,
        path: &RelPath,
        incoming: u64,
    ) -> Result<(), CoreError> {
        let q = super::StorageProvider::quota(self, who, space)?;
        let Some(total) = q.total else { return Ok(()) };
        let rec = self.space_for(who, space)?;
        let old = match self.try_locate(&rec, path)? {
            Some(l) if l.rec.kind == NodeKind::File => l.rec.size,
            _ => 0,
        };
        if q.used.saturating_sub(old).saturating_add(incoming) > total {
            return Err(CoreError::QuotaExceeded(format!(
                "{incoming} bytes do not fit: {} of {total} bytes are used",
                q.used
            )));
        }
        Ok(())
    }

    /// Verifies an upload, checks its conditions and the quota, and hands it to the commit thread
    /// (see [`FileStore::submit_placed`]); the [`StagedUpload`] tells when it has its real name.
    pub fn stage_upload(
        &self,
        who: &Principal,
        space_id: SpaceId,
        path: &RelPath,
        up: Upload,
        opts: &PutOptions,
    ) -> Result<StagedUpload, CoreError> {
        let checked = self.check_upload(who, space_id, path, up, opts)?;
        self.submit_upload(checked)
    }

    /// The first half of [`FileStore::stage_upload`]: verifies the upload (length, checksum),
    /// sets its modification time, and checks its conditions and the quota under its path's
    /// lock (waiting for a write of the same path to commit).
    pub fn check_upload(
        &self,
        who: &Principal,
        space_id: SpaceId,
        path: &RelPath,
        up: Upload,
        opts: &PutOptions,
    ) -> Result<CheckedUpload, CoreError> {
        let lock = |target: &Path| Ok::<_, std::convert::Infallible>(self.lock_path(target));
        match self.check_locked(who, space_id, path, up, opts, lock)? {
            Ok(checked) => Ok(checked),
            Err((never, _)) => match never {},
        }
    }

    /// [`FileStore::check_upload`] without waiting: for an upload from
    /// [`FileStore::small_upload`], this waits for the disk no more than a GET does (lookups in
    /// cached redb pages, a `stat` per path step), so it may run on an async worker. While a
    /// write of the same path is in flight it hands the upload back (`Ok(Err(upload))`): check
    /// it with [`FileStore::check_upload`] on the blocking pool.
    pub fn try_check_upload(
        &self,
        who: &Principal,
        space_id: SpaceId,
        path: &RelPath,
        up: Upload,
        opts: &PutOptions,
    ) -> Result<Result<CheckedUpload, Upload>, CoreError> {
        let lock = |target: &Path| self.path_locks.try_lock(target).ok_or(());
        Ok(self
            .check_locked(who, space_id, path, up, opts, lock)?
            .map_err(|((), up)| up))
    }

    /// Verifies `up`, finds where it goes and takes that path's lock with `lock`; if `lock`
    /// fails, hands back its error and the upload.
    fn check_locked<B>(
        &self,
        who: &Principal,
        space_id: SpaceId,
        path: &RelPath,
        mut up: Upload,
        opts: &PutOptions,
        lock: impl FnOnce(&Path) -> Result<super::PathGuard, B>,
    ) -> Result<Result<CheckedUpload, (B, Upload)>, CoreError> {
        let checksums = verify(&mut up, opts)?;
        let (space, parent, name) = self.space_and_parent(who, space_id, path)?;
        let target = parent.disk.join(name.as_str());
        // Taken before the lookup: the entry cannot change between the checks and the commit.
        let guard = match lock(&target) {
            Ok(g) => g,
            Err(b) => return Ok(Err((b, up))),
        };
        let slot = Slot {
            space,
            parent,
            name,
            target,
            guard,
        };
        self.check_in(slot, path, up, checksums, opts).map(Ok)
    }

    /// The checks under the path's lock: the current entry (no folder), the conditions, the
    /// quota.
    fn check_in(
        &self,
        slot: Slot,
        path: &RelPath,
        up: Upload,
        checksums: Checksums,
        opts: &PutOptions,
    ) -> Result<CheckedUpload, CoreError> {
        let Slot {
            space,
            parent,
            name,
            target,
            guard,
        } = slot;
        let (existing, quota) = self.child_and_quota(&space, &parent, &name, path)?;
        if let Some(e) = &existing
            && e.rec.kind == NodeKind::Dir
        {
            return Err(CoreError::Conflict(format!("{path} is a folder")));
        }
        check_conditions(existing.as_ref(), opts)?;
        let old_size = existing.as_ref().map_or(0, |e| e.rec.size);
        if let Some(total) = quota.total
            && quota.used.saturating_sub(old_size).saturating_add(up.len()) > total
        {
            return Err(CoreError::QuotaExceeded(format!(
                "{} bytes do not fit: {} of {total} bytes are used",
                up.len(),
                quota.used
            )));
        }
        Ok(CheckedUpload {
            up,
            checksums,
            space,
            parent_id: parent.id,
            name: name.as_str().to_owned(),
            target,
            guard,
            existing,
            path: path.clone(),
        })
    }

    /// The second half of [`FileStore::stage_upload`]: keeps the content it replaces as a version
    /// (file-system work that may wait for the disk: on the blocking pool, see
    /// [`CheckedUpload::replaces`]) and hands the upload to the commit threads.
    pub fn submit_upload(&self, checked: CheckedUpload) -> Result<StagedUpload, CoreError> {
        let CheckedUpload {
            mut up,
            checksums,
            space,
            parent_id,
            name: name_owned,
            target,
            guard,
            existing,
            path,
        } = checked;
        // Keep the replaced content as a version: a hard link costs no copy and survives the rename.
        let version = match &existing {
            Some(e) => Some(self.link_version(e)?),
            None => None,
        };
        let new_len = up.len();
        let space_id = space.id;
        let version_key = version.as_ref().map(|(key, _)| *key);
        // Both steps own their inputs: the commit threads run them. The content is durable
        // before it takes the real name (its round's syncfs comes first).
        let place = move || -> Result<std::fs::Metadata, CoreError> {
            staging::place(up.file.get_ref(), &up.staging, &target)?;
            up.placed = true;
            // fstat of the open file: the inode now under the real name, without a path lookup.
            up.file
                .get_ref()
                .metadata()
                .map_err(|e| CoreError::io("reading an upload", e))
        };
        let (versions_dir, max_count, max_age) = (
            self.versions_dir.clone(),
            self.opts.versions_max_count,
            self.opts.versions_max_age,
        );
        let receipt = self.submit_placed(place, move |tx, meta| -> Result<_, CoreError> {
            let _held = &guard;
            let disk_mtime = meta.modified().map(system_ns).unwrap_or_else(|_| now_ns());
            // Re-read inside the transaction: the record is the truth for the id.
            let fresh = || record_from_disk(space_id, parent_id, &name_owned, NodeKind::File, meta);
            let (id, mut rec, created) = match tx.child(parent_id, &name_owned)? {
                Some(id) => match tx.node(id)? {
                    Some(rec) => (id, rec, false),
                    None => (id, fresh(), true),
                },
                None => (NodeId::fresh(), fresh(), true),
            };
            let delta = to_i64(new_len) - if created { 0 } else { to_i64(rec.size) };
            if let (Some(key), false) = (version_key, created) {
                tx.put_version(
                    id,
                    &VersionRecord {
                        key,
                        size: rec.size,
                        mtime_ns: rec.mtime_ns,
                        etag: rec.etag.clone(),
                        checksums: rec.checksums.clone(),
                    },
                )?;
            }
            rec.kind = NodeKind::File;
            rec.size = new_len;
            rec.disk_size = new_len;
            rec.disk_mtime_ns = disk_mtime;
            rec.mtime_ns = disk_mtime;
            rec.etag = new_etag();
            rec.checksums = Some(checksums.clone());
            tx.put_node(id, &rec)?;
            tx.put_child(parent_id, &name_owned, id)?;
            propagate(tx, parent_id, delta)?;
            let pruned = if created {
                Vec::new()
            } else {
                prune_versions(tx, &versions_dir, id, max_count, max_age)?
            };
            Ok(Committed {
                id,
                rec,
                created,
                pruned,
            })
        });
        Ok(StagedUpload {
            receipt,
            placement: Placement {
                storage_id: self.storage_id,
                space,
                path,
                version: version.map(|(_, p)| p),
            },
        })
    }

    /// Hard-links the current content of a file into the versions folder; returns (key, path).
    fn link_version(&self, e: &Located) -> Result<(u64, PathBuf), CoreError> {
        let dir = self.versions_dir.join(e.id.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|e| CoreError::io("creating the versions folder", e))?;
        let mut key = u64::try_from(now_ns()).unwrap_or(0);
        loop {
            let p = dir.join(key.to_string());
            match std::fs::hard_link(&e.disk, &p) {
                Ok(()) => return Ok((key, p)),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => key += 1,
                Err(err) => return Err(CoreError::io("keeping a version", err)),
            }
        }
    }
}

/// Where a checked upload goes: its space, parent folder, name and disk path, with the path's
/// lock held.
struct Slot {
    space: SpaceRecord,
    parent: Located,
    name: hearth_types::Name,
    target: PathBuf,
    guard: super::PathGuard,
}

/// Verifies what was received (length, checksum) and makes the file ready to take its name
/// (buffers flushed, a large one's content synced, the modification time set); returns its
/// checksums.
fn verify(up: &mut Upload, opts: &PutOptions) -> Result<Checksums, CoreError> {
    if let Some(n) = opts.expected_len
        && n != up.len()
    {
        return Err(CoreError::BadRequest(format!(
            "expected {n} bytes but received {}",
            up.len()
        )));
    }
    let checksums = up.hashes.checksums()?;
    if let Some((algo, want)) = &opts.checksum
        && !algo.matches(&checksums, want)
    {
        return Err(CoreError::BadRequest(
            "The computed checksum does not match the one received from the client.".into(),
        ));
    }
    // Everything buffered reaches the file before its times are set.
    up.file
        .flush()
        .map_err(|e| CoreError::io("writing an upload", e))?;
    if let Some(w) = up.writeback.take() {
        w.finish()?;
    }
    if up.len() > SYNC_ALONE_AFTER {
        // A large file makes its own content durable here, so the shared `syncfs` of its
        // commit round does not keep the small uploads of that round waiting for it.
        rustix::fs::fdatasync(up.file.get_ref())
            .map_err(|e| CoreError::io("writing an upload", e.into()))?;
    }
    if let Some(secs) = opts.mtime_secs {
        let t = if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        up.file
            .get_ref()
            .set_modified(t)
            .map_err(|e| CoreError::io("setting the modification time", e))?;
    }
    Ok(checksums)
}

fn check_conditions(existing: Option<&Located>, opts: &PutOptions) -> Result<(), CoreError> {
    let etag = existing.map(|e| e.rec.etag.as_str());
    if let Some(list) = &opts.if_match {
        match etag {
            Some(t) if etag_matches(list, t) => {}
            _ => {
                return Err(CoreError::PreconditionFailed(
                    "If-Match does not match the current etag".into(),
                ));
            }
        }
    }
    if let Some(list) = &opts.if_none_match
        && let Some(t) = etag
        && etag_matches(list, t)
    {
        return Err(CoreError::PreconditionFailed(
            "If-None-Match matches the current etag".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A store in a fresh folder with alice's space.
    fn alice() -> (
        tempfile::TempDir,
        crate::Core,
        crate::auth::Principal,
        hearth_types::SpaceId,
    ) {
        #![allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        let (core, who, space) =
            crate::testing::alice(crate::StorageOptions::new(dir.path().to_path_buf()));
        (dir, core, who, space)
    }

    /// A small upload in a spare file (waits, bounded, for the helper to fill the stock).
    fn small(core: &crate::Core, data: &[u8]) -> super::Upload {
        #![allow(clippy::unwrap_used)]
        let start = std::time::Instant::now();
        loop {
            if let Some(up) = core.files.small_upload(data).unwrap() {
                return up;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(10));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// The worker-side path: a small upload is checked without waiting; while a write of the
    /// same path is in flight it is handed back whole, and goes through once that one commits,
    /// keeping the replaced content as a version.
    #[test]
    fn a_small_upload_is_handed_back_while_its_path_is_busy() {
        #![allow(clippy::unwrap_used)]
        use crate::{PutOptions, StorageProvider};
        let (dir, core, who, space) = alice();
        let path = hearth_types::RelPath::from_decoded("s.txt").unwrap();
        let opts = PutOptions::default();
        let Ok(first) = core
            .files
            .try_check_upload(&who, space, &path, small(&core, b"one"), &opts)
            .unwrap()
        else {
            panic!("nothing else holds the path");
        };
        assert!(!first.replaces());
        let Err(second) = core
            .files
            .try_check_upload(&who, space, &path, small(&core, b"two"), &opts)
            .unwrap()
        else {
            panic!("the first upload holds the path");
        };
        core.files.submit_upload(first).unwrap().wait().unwrap();
        let Ok(second) = core
            .files
            .try_check_upload(&who, space, &path, second, &opts)
            .unwrap()
        else {
            panic!("the first upload has committed");
        };
        assert!(second.replaces());
        let (info, created) = core.files.submit_upload(second).unwrap().wait().unwrap();
        assert!(!created);
        assert_eq!(info.size, 3);
        assert_eq!(
            std::fs::read(dir.path().join("files/alice/s.txt")).unwrap(),
            b"two"
        );
        let (_, versions) = core.files.list_versions(&who, &info.id).unwrap();
        assert_eq!(versions.len(), 1, "the first content is kept as a version");
        // Larger contents are not taken on this path.
        let big = vec![0u8; super::SMALL_UPLOAD + 1];
        assert!(core.files.small_upload(&big).unwrap().is_none());
    }

    /// A large upload syncs in the background as it arrives, and is stored whole.
    #[test]
    fn a_large_upload_is_written_back_as_it_arrives() {
        #![allow(clippy::unwrap_used)]
        use crate::{PutOptions, StorageProvider};
        let (dir, core, who, space) = alice();
        let mut up = core.files.begin_upload().unwrap();
        let piece = bytes::Bytes::from(vec![7u8; 1 << 20]);
        let pieces = (super::super::writeback::EVERY >> 20) + 3;
        for i in 0..pieces {
            up.write_bytes(piece.clone()).unwrap();
            if i == 0 {
                assert!(up.writeback.is_none(), "not before the first stretch");
            }
        }
        assert!(up.writeback.is_some(), "started past the first stretch");
        let path = hearth_types::RelPath::from_decoded("big.bin").unwrap();
        let info = core
            .files
            .finish_upload(&who, space, &path, up, &PutOptions::default())
            .unwrap()
            .0;
        assert_eq!(info.size, pieces << 20);
        let on_disk = std::fs::metadata(dir.path().join("files/alice/big.bin")).unwrap();
        assert_eq!(on_disk.len(), pieces << 20);
    }
}
