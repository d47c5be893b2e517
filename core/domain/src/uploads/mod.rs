//! Resumable uploads (TUS 1.0.0: core protocol, creation, checksum, expiration, termination) as a
//! domain service. Each upload is a record in the `UPLOADS` table and its bytes are in
//! `<data>/system/uploads/<id>` (not `system/tmp`, which is cleared at start-up). Every chunk is
//! made durable before its new offset is recorded, so an upload survives a crash or `kill -9` and
//! resumes byte-exact. The bytes are hashed as they arrive, and the hashes kept between requests
//! (in memory: an upload resumed after a restart is hashed from disk when it completes). A
//! complete upload is checked against the announced checksum, and handed to the [`FileStore`]
//! for the atomic, quota- and If-Match-checked placement.
//! Transfers are authorised by an HMAC token because tus clients send no credentials to the
//! upload URL.

mod session;
mod token;

pub use session::{Progress, Session};

use crate::CoreError;
use crate::auth::Principal;
use crate::clock::now_secs;
use crate::files::{
    ChecksumAlgo, FileStore, Hashes, PutOptions, ResourceInfo, StorageProvider, Upload,
};
use crate::locks::Locks;
use hearth_store::{Store, UploadRecord};
use hearth_types::{RelPath, SpaceId, UserId};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// What a client announces when it creates an upload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// Target path from the space root.
    pub path: RelPath,
    /// Total length in bytes (`Upload-Length`).
    pub length: u64,
    /// Modification time to set (Unix seconds).
    pub mtime_secs: Option<i64>,
    /// Whole-file checksum: algorithm and hex digest.
    pub checksum: Option<(ChecksumAlgo, String)>,
    /// The target's etag must be one of these on creation and on completion.
    pub if_match: Option<Vec<String>>,
    /// WebDAV lock tokens submitted with the creation (`If` header): a write lock on the target
    /// must be one of them, on creation and on completion (else 423).
    pub lock_tokens: Vec<String>,
}

/// Where an upload stands.
#[derive(Debug, Clone)]
pub struct UploadState {
    /// The transfer token (the last segment of the upload URL).
    pub token: String,
    /// Bytes received and durable.
    pub offset: u64,
    /// Total length.
    pub length: u64,
    /// Unix seconds after which the upload is gone.
    pub expires: i64,
}

/// A created upload; `done` is set when it was complete at once (length 0).
#[derive(Debug, Clone)]
pub struct Created {
    /// The new upload.
    pub state: UploadState,
    /// The placed file and whether it was created (not replaced).
    pub done: Option<(ResourceInfo, bool)>,
}

/// The resumable-upload service.
pub struct Uploads {
    store: Store,
    files: Arc<FileStore>,
    locks: Arc<Locks>,
    dir: PathBuf,
    secret: [u8; 32],
    /// Uploads a request is working on right now (one at a time per upload).
    busy: Arc<Mutex<HashSet<String>>>,
    /// The hashes of each upload's durable bytes, kept between its requests; taken by the
    /// request working on it (see [`Session`]).
    hashes: Mutex<HashMap<String, Hashes>>,
}

/// Marks an upload busy while alive.
struct BusyGuard {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Uploads {
    /// Opens the service over the store and the file store (creates `system/uploads`).
    pub(crate) fn new(
        store: Store,
        files: Arc<FileStore>,
        locks: Arc<Locks>,
    ) -> Result<Self, CoreError> {
        let dir = files.options().data_dir.join("system").join("uploads");
        std::fs::create_dir_all(&dir)
            .map_err(|e| CoreError::io("creating the uploads folder", e))?;
        let secret = token::load_or_create_secret(&store)?;
        Ok(Self {
            store,
            files,
            locks,
            dir,
            secret,
            busy: Arc::default(),
            hashes: Mutex::default(),
        })
    }

    fn data_path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn try_busy(&self, id: &str) -> Option<BusyGuard> {
        let mut set = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        set.insert(id.to_owned()).then(|| BusyGuard {
            set: self.busy.clone(),
            id: id.to_owned(),
        })
    }

    fn state(&self, rec: &UploadRecord) -> UploadState {
        UploadState {
            token: self.token(&rec.id, rec.expires),
            offset: rec.offset,
            length: rec.length,
            expires: rec.expires,
        }
    }

    /// Creates an upload of `req.length` bytes to `req.path`: the parent folder must exist (else
    /// 412, as in oCIS), the target must not be a folder (409), If-Match must hold (412) and the
    /// length must fit the quota (507). A zero-length upload is placed at once.
    pub fn create(
        &self,
        who: &Principal,
        space: SpaceId,
        req: NewUpload,
    ) -> Result<Created, CoreError> {
        self.check_target(who, space, &req)?;
        self.files.check_quota(who, space, &req.path, req.length)?;

        let now = now_secs();
        let rec = UploadRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            user: who.id,
            space,
            path: req.path.to_string(),
            length: req.length,
            offset: 0,
            mtime_secs: req.mtime_secs,
            checksum: req
                .checksum
                .map(|(a, hex)| (algo_name(a).to_owned(), hex.to_ascii_lowercase())),
            if_match: req.if_match,
            lock_tokens: req.lock_tokens,
            created: now,
            expires: self.expiry_from(now),
        };
        // The record first: a data file without a record is an orphan the purge removes.
        self.store.write(|tx| tx.put_upload(&rec))?;
        std::fs::File::create_new(self.data_path(&rec.id))
            .map_err(|e| CoreError::io("creating an upload", e))?;
        let state = self.state(&rec);
        let done = if rec.length == 0 {
            let _busy = self.try_busy(&rec.id);
            Some(self.complete(&rec, None)?)
        } else {
            None
        };
        Ok(Created { state, done })
    }

    /// Creation-with-upload whose request carries the whole file (the desktop clients send every
    /// small file this way): no resumable state is kept. The same checks as [`Uploads::create`]
    /// and completion apply (parent 412, folder 409, If-Match 412, checksum 460, quota 507), and
    /// the bytes take the file store's upload path, sharing its group commit like a PUT, instead
    /// of three durable record writes and two syncs of their own. The returned token names an
    /// upload that no longer exists, as after any completed upload (HEAD: 404).
    pub fn create_whole(
        &self,
        who: &Principal,
        space: SpaceId,
        req: NewUpload,
        mut upload: Upload,
    ) -> Result<Created, CoreError> {
        let opts = self.check_whole(who, space, &req, &mut upload)?;
        let done = self
            .files
            .finish_upload(who, space, &req.path, upload, &opts)?;
        Ok(self.created_whole(req.length, done))
    }

    /// The checks of [`Uploads::create_whole`] before its upload is placed (no waiting beyond
    /// lookups, so an async worker may run them for an upload from
    /// [`crate::FileStore::small_upload`]); returns the options to place it with.
    pub fn check_whole(
        &self,
        who: &Principal,
        space: SpaceId,
        req: &NewUpload,
        upload: &mut Upload,
    ) -> Result<PutOptions, CoreError> {
        self.check_target(who, space, req)?;
        if upload.len() != req.length {
            return Err(CoreError::BadRequest(format!(
                "Upload-Length is {} but the request carried {} bytes",
                req.length,
                upload.len()
            )));
        }
        if let Some((algo, want)) = &req.checksum {
            check_checksum(upload, *algo, want)?;
        }
        Ok(PutOptions {
            if_match: req.if_match.clone(),
            if_none_match: None,
            mtime_secs: req.mtime_secs,
            checksum: None,
            expected_len: Some(req.length),
        })
    }

    /// The answer to a whole creation of `length` bytes once placed (`done`): a token naming
    /// an upload that no longer exists.
    pub fn created_whole(&self, length: u64, done: (ResourceInfo, bool)) -> Created {
        let expires = self.expiry_from(now_secs());
        let id = uuid::Uuid::new_v4().simple().to_string();
        Created {
            state: UploadState {
                token: self.token(&id, expires),
                offset: length,
                length,
                expires,
            },
            done: Some(done),
        }
    }

    /// When an upload created at `now` expires.
    fn expiry_from(&self, now: i64) -> i64 {
        let expiry =
            i64::try_from(self.files.options().upload_expiry.as_secs()).unwrap_or(i64::MAX);
        now.saturating_add(expiry)
    }

    /// The checks on an upload's target: its folder exists (else 412, as in oCIS), it is not a
    /// folder itself (409), it is not locked against the client (423), and If-Match holds (412).
    fn check_target(
        &self,
        who: &Principal,
        space: SpaceId,
        req: &NewUpload,
    ) -> Result<(), CoreError> {
        let parent = req
            .path
            .parent()
            .ok_or_else(|| CoreError::PreconditionFailed("no file name".into()))?;
        match self.files.stat(who, space, &parent) {
            Ok(p) if p.is_dir() => {}
            Ok(_) => return Err(CoreError::Conflict(format!("{parent} is not a folder"))),
            Err(CoreError::NotFound(_)) => {
                return Err(CoreError::PreconditionFailed(format!(
                    "the folder {parent} does not exist"
                )));
            }
            Err(e) => return Err(e),
        }
        let existing = match self.files.stat(who, space, &req.path) {
            Ok(i) => Some(i),
            Err(CoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        if existing.as_ref().is_some_and(ResourceInfo::is_dir) {
            return Err(CoreError::Conflict(format!("{} is a folder", req.path)));
        }
        self.locks
            .check_write(who, space, &req.path, &req.lock_tokens, false)?;
        if let Some(list) = &req.if_match {
            let ok = existing.as_ref().is_some_and(|i| {
                list.iter()
                    .any(|e| e == "*" || e.trim_start_matches("W/").trim_matches('"') == i.etag)
            });
            if !ok {
                return Err(CoreError::PreconditionFailed(
                    "If-Match does not match the current etag".into(),
                ));
            }
        }
        Ok(())
    }

    /// The state of an upload (HEAD). Data beyond the durable offset (left by a crash or a failed
    /// chunk) is cut off first, unless a request is writing to the upload right now.
    pub fn status(&self, token: &str) -> Result<UploadState, CoreError> {
        let id = self.verify(token)?;
        let mut rec = self.record(&id)?;
        if let Some(_busy) = self.try_busy(&id) {
            self.reconcile(&mut rec)?;
            if rec.offset == rec.length {
                // Complete but not placed (a crash between the last chunk and the rename).
                self.complete(&rec, self.take_hashes(&rec.id, rec.offset))?;
            }
        }
        Ok(self.state(&rec))
    }

    /// Starts a request that appends to an upload (PATCH). One at a time per upload: a second
    /// concurrent one gets `Locked`.
    pub fn open(self: &Arc<Self>, token: &str) -> Result<Session, CoreError> {
        let id = self.verify(token)?;
        let busy = self
            .try_busy(&id)
            .ok_or_else(|| CoreError::Locked("the upload is in use by another request".into()))?;
        let mut rec = self.record(&id)?;
        self.reconcile(&mut rec)?;
        Session::new(self.clone(), rec, busy)
    }

    /// Terminates an upload (DELETE): its record and bytes go.
    pub fn terminate(&self, token: &str) -> Result<(), CoreError> {
        let id = self.verify(token)?;
        let _busy = self
            .try_busy(&id)
            .ok_or_else(|| CoreError::Locked("the upload is in use by another request".into()))?;
        self.record(&id)?;
        self.remove(&id)
    }

    /// Removes expired uploads and data files without a record (the background job calls this).
    /// Returns how many went.
    pub fn purge_expired(&self) -> Result<usize, CoreError> {
        let now = now_secs();
        let mut purged = 0;
        let records = self.store.read(|tx| tx.uploads())?;
        for rec in &records {
            if rec.expires < now
                && let Some(_busy) = self.try_busy(&rec.id)
            {
                self.remove(&rec.id)?;
                purged += 1;
            }
        }
        let known: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| CoreError::io("listing uploads", e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if known.contains(name.as_str()) {
                continue;
            }
            // Created after the listing above? Its record exists now: leave it.
            if self.store.read(|tx| tx.upload(&name))?.is_some() {
                continue;
            }
            if let Some(_busy) = self.try_busy(&name) {
                let _ = std::fs::remove_file(e.path());
                purged += 1;
            }
        }
        Ok(purged)
    }

    fn record(&self, id: &str) -> Result<UploadRecord, CoreError> {
        let rec = self
            .store
            .read(|tx| tx.upload(id))?
            .ok_or_else(|| CoreError::NotFound("no such upload (finished or terminated)".into()))?;
        if rec.expires < now_secs() {
            return Err(CoreError::UploadExpired("the upload has expired".into()));
        }
        Ok(rec)
    }

    /// Takes the kept hashes of upload `id` if they cover exactly its first `offset` bytes; a
    /// fresh state for an upload with no bytes yet.
    fn take_hashes(&self, id: &str, offset: u64) -> Option<Hashes> {
        let kept = self
            .hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        match kept {
            Some(h) if h.len() == offset => Some(h),
            _ if offset == 0 => Some(Hashes::default()),
            _ => None,
        }
    }

    /// Keeps the hashes of upload `id` for its next request.
    fn keep_hashes(&self, id: &str, hashes: Hashes) {
        self.hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), hashes);
    }

    fn remove(&self, id: &str) -> Result<(), CoreError> {
        self.hashes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        self.store.write(|tx| tx.remove_upload(id))?;
        match std::fs::remove_file(self.data_path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CoreError::io("removing an upload", e)),
        }
    }

    /// Brings the data file in line with the durable offset: longer → cut off; shorter (lost
    /// writes) → the offset follows the file; missing → recreated when empty, else the upload is gone.
    fn reconcile(&self, rec: &mut UploadRecord) -> Result<(), CoreError> {
        let path = self.data_path(&rec.id);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() == rec.offset => Ok(()),
            Ok(m) if m.len() > rec.offset => {
                let f = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .map_err(|e| CoreError::io("opening an upload", e))?;
                f.set_len(rec.offset)
                    .map_err(|e| CoreError::io("truncating an upload", e))
            }
            Ok(m) => {
                rec.offset = m.len();
                let r = rec.clone();
                self.store.write(|tx| tx.put_upload(&r))?;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rec.offset == 0 => {
                std::fs::File::create(&path).map_err(|e| CoreError::io("creating an upload", e))?;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.remove(&rec.id)?;
                Err(CoreError::NotFound(
                    "no such upload (finished or lost)".into(),
                ))
            }
            Err(e) => Err(CoreError::io("reading an upload", e)),
        }
    }

    /// The account an upload belongs to.
    fn owner(&self, user: UserId) -> Result<Principal, CoreError> {
        let rec = self.store.read(|tx| match tx.username_of(user)? {
            Some(name) => tx.user(&name),
            None => Ok(None),
        })?;
        let u = rec.ok_or_else(|| CoreError::NotFound("the upload's owner is gone".into()))?;
        Ok(Principal {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            email: u.email,
        })
    }
}

/// Checks a complete upload against the checksum announced for it (mismatch → 460, nothing
/// stored: the caller drops the upload).
fn check_checksum(upload: &mut Upload, algo: ChecksumAlgo, want: &str) -> Result<(), CoreError> {
    if !algo.matches(&upload.checksums()?, want) {
        return Err(CoreError::ChecksumMismatch(format!(
            "the upload does not match its {} checksum",
            algo_name(algo)
        )));
    }
    Ok(())
}

fn algo_name(a: ChecksumAlgo) -> &'static str {
    match a {
        ChecksumAlgo::Sha1 => "SHA1",
        ChecksumAlgo::Md5 => "MD5",
        ChecksumAlgo::Adler32 => "ADLER32",
    }
}

#[cfg(test)]
mod tests;
