//! One request appending to a resumable upload (TUS PATCH, or the body of a creation-with-upload
//! POST): bytes are appended and hashed (the upload's running hashes, and the optional per-chunk
//! checksum), then made durable before the new offset is recorded; the last chunk completes the
//! upload.

use super::{BusyGuard, Uploads};
use crate::CoreError;
use crate::files::{ChecksumAlgo, Hashes, PutOptions, ResourceInfo, StorageProvider, Upload};
use hearth_store::UploadRecord;
use hearth_types::RelPath;
use sha1::Digest;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

/// Where an upload stands after a request.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Bytes received and durable.
    pub offset: u64,
    /// Total length.
    pub length: u64,
    /// Unix seconds after which the upload is gone.
    pub expires: i64,
    /// Whether a modification time was given (the client wants `X-OC-MTime: accepted`).
    pub mtime_set: bool,
    /// When this request completed the upload: the placed file and whether it was created.
    pub done: Option<(ResourceInfo, bool)>,
}

enum ChunkHash {
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Adler32(adler2::Adler32),
}

impl ChunkHash {
    fn new(a: ChecksumAlgo) -> Self {
        match a {
            ChecksumAlgo::Sha1 => Self::Sha1(sha1::Sha1::new()),
            ChecksumAlgo::Md5 => Self::Md5(md5::Md5::new()),
            ChecksumAlgo::Adler32 => Self::Adler32(adler2::Adler32::new()),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(h) => h.update(data),
            Self::Md5(h) => h.update(data),
            Self::Adler32(h) => h.write_slice(data),
        }
    }
    fn digest(self) -> Vec<u8> {
        match self {
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Md5(h) => h.finalize().to_vec(),
            Self::Adler32(h) => h.checksum().to_be_bytes().to_vec(),
        }
    }
}

/// An open upload that one request appends to. Bytes written but not committed are cut off by
/// the next request (the durable offset is the truth).
pub struct Session {
    up: Arc<Uploads>,
    rec: UploadRecord,
    file: std::io::BufWriter<File>,
    /// Bytes appended by this request.
    written: u64,
    chunk: Option<(ChunkHash, Vec<u8>)>,
    /// The upload's hashes, covering its durable bytes plus this request's (`None`: not kept,
    /// the upload is hashed from disk when it completes).
    hashes: Option<Hashes>,
    /// A copy of `hashes` from before this request, for a chunk that may be dropped.
    before: Option<Hashes>,
    _busy: BusyGuard,
}

impl Session {
    pub(super) fn new(
        up: Arc<Uploads>,
        rec: UploadRecord,
        busy: BusyGuard,
    ) -> Result<Self, CoreError> {
        let file = File::options()
            .append(true)
            .open(up.data_path(&rec.id))
            .map_err(|e| CoreError::io("opening an upload", e))?;
        Ok(Self {
            up,
            rec,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            written: 0,
            chunk: None,
            hashes: None,
            before: None,
            _busy: busy,
        })
    }

    /// Bytes durable before this request.
    pub fn offset(&self) -> u64 {
        self.rec.offset
    }

    /// Total length.
    pub fn length(&self) -> u64 {
        self.rec.length
    }

    /// Starts the request's chunk at `offset`, which must be the current offset (else `Conflict`,
    /// 409), optionally with the chunk's checksum (algorithm and raw digest).
    pub fn begin(
        &mut self,
        offset: u64,
        checksum: Option<(ChecksumAlgo, Vec<u8>)>,
    ) -> Result<(), CoreError> {
        if offset != self.rec.offset {
            return Err(CoreError::Conflict(format!(
                "Upload-Offset {offset} does not match the current offset {}",
                self.rec.offset
            )));
        }
        self.hashes = self.up.take_hashes(&self.rec.id, self.rec.offset);
        // Only a chunk with a checksum can be dropped again (mismatch, or cut off).
        self.before = match (&checksum, &mut self.hashes) {
            (Some(_), Some(h)) => Some(h.snapshot()?),
            _ => None,
        };
        self.chunk = checksum.map(|(a, want)| (ChunkHash::new(a), want));
        Ok(())
    }

    /// Appends a received buffer (shared with the MD5 helper of a large upload: no copy).
    pub fn write_bytes(&mut self, data: bytes::Bytes) -> Result<(), CoreError> {
        self.append(&data)?;
        if let Some(h) = &mut self.hashes {
            h.update(data)?;
        }
        Ok(())
    }

    /// Appends bytes; more than the announced length is refused.
    pub fn write(&mut self, data: &[u8]) -> Result<(), CoreError> {
        self.append(data)?;
        if let Some(h) = &mut self.hashes {
            h.update_slice(data)?;
        }
        Ok(())
    }

    /// Writes `data` to the file and the chunk's checksum.
    fn append(&mut self, data: &[u8]) -> Result<(), CoreError> {
        let n = data.len() as u64;
        if self.rec.offset + self.written + n > self.rec.length {
            return Err(CoreError::BadRequest(format!(
                "the upload exceeds its Upload-Length of {} bytes",
                self.rec.length
            )));
        }
        self.file
            .write_all(data)
            .map_err(|e| CoreError::io("writing an upload", e))?;
        if let Some((h, _)) = &mut self.chunk {
            h.update(data);
        }
        self.written += n;
        Ok(())
    }

    /// Ends the request's chunk: checks its checksum (mismatch → `ChecksumMismatch`, 460, and the
    /// chunk is dropped), makes the bytes durable, records the new offset, and completes the upload
    /// when all bytes are there. `whole` is false when the request body was cut off: what arrived
    /// is kept (the client resumes from there) unless it was to be checked against a checksum.
    pub fn commit(mut self, whole: bool) -> Result<Progress, CoreError> {
        self.file
            .flush()
            .map_err(|e| CoreError::io("writing an upload", e))?;
        let keep = match self.chunk.take() {
            Some((h, want)) => whole && h.digest() == want,
            None => true,
        };
        if !keep {
            self.file
                .get_ref()
                .set_len(self.rec.offset)
                .map_err(|e| CoreError::io("truncating an upload", e))?;
            if let Some(h) = self.before.take() {
                self.up.keep_hashes(&self.rec.id, h);
            }
            if whole {
                return Err(CoreError::ChecksumMismatch(
                    "the chunk does not match its Upload-Checksum".into(),
                ));
            }
            return Ok(self.progress(None));
        }
        if self.written > 0 {
            // The bytes are durable before the offset that covers them (one shared syncfs).
            self.up.files.sync_data()?;
            self.rec.offset += self.written;
            let rec = self.rec.clone();
            self.up.store.write(|tx| tx.put_upload(&rec))?;
        }
        let done = if self.rec.offset == self.rec.length {
            Some(self.up.complete(&self.rec, self.hashes.take())?)
        } else {
            if let Some(mut h) = self.hashes.take() {
                // The helper thread of a large upload stops with the request.
                h.settle()?;
                self.up.keep_hashes(&self.rec.id, h);
            }
            None
        };
        Ok(self.progress(done))
    }

    fn progress(&self, done: Option<(ResourceInfo, bool)>) -> Progress {
        Progress {
            offset: self.rec.offset,
            length: self.rec.length,
            expires: self.rec.expires,
            mtime_set: self.rec.mtime_secs.is_some(),
            done,
        }
    }
}

impl Uploads {
    /// Places a complete upload: hashes the data (unless `hashes` cover it), checks the
    /// announced checksum (mismatch → `ChecksumMismatch` and nothing is stored), then lets the
    /// file store check quota and If-Match and rename it into place. The upload is gone afterwards, whatever the outcome.
    /// The caller holds the upload's busy guard.
    pub(super) fn complete(
        &self,
        rec: &UploadRecord,
        hashes: Option<Hashes>,
    ) -> Result<(ResourceInfo, bool), CoreError> {
        let result = self.place(rec, hashes);
        // On success the data file is now the real file; on failure `Upload` removed it.
        self.remove(&rec.id)?;
        result
    }

    fn place(
        &self,
        rec: &UploadRecord,
        hashes: Option<Hashes>,
    ) -> Result<(ResourceInfo, bool), CoreError> {
        let who = self.owner(rec.user)?;
        let path = RelPath::from_decoded(&rec.path)?;
        let algo = rec
            .checksum
            .as_ref()
            .and_then(|(a, hex)| ChecksumAlgo::parse(a).map(|a| (a, hex.clone())));
        // A lock taken since the creation holds unless the client submitted its token then.
        self.locks
            .check_write(&who, rec.space, &path, &rec.lock_tokens, false)?;
        let mut upload = Upload::from_file(self.data_path(&rec.id), hashes)?;
        if let Some((a, want)) = &algo {
            super::check_checksum(&mut upload, *a, want)?;
        }
        let opts = PutOptions {
            if_match: rec.if_match.clone(),
            if_none_match: None,
            mtime_secs: rec.mtime_secs,
            checksum: None,
            expected_len: Some(rec.length),
        };
        self.files
            .finish_upload(&who, rec.space, &path, upload, &opts)
    }
}
