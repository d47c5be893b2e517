//! Chunked uploads as the Nextcloud/ownCloud desktop clients do them ("chunking NG"): a transfer
//! folder per upload under `<data>/system/chunks/<user>/<transfer>`, one file per chunk, and an
//! assembly step that streams the chunks, in order, into a normal upload which is then placed
//! atomically. Chunk files survive restarts; stale transfers are purged by the background job.
//!
//! Clients send the chunks in order, one after the other, so each chunk is hashed on top of the
//! hashes of the chunks before it ([`FileStore::begin_chunk`]), and the assembly copies the
//! chunks in the kernel without reading them back, if the chunks on disk are exactly those the
//! kept hashes cover (same names, sizes, inodes and change times). Anything else (a chunk out of
//! order, re-sent, or a restart in between) falls back to reading and hashing the chunks.

use super::hashes::Hashes;
use super::write::Upload;
use super::{FileStore, PutOptions, ResourceInfo, StorageProvider};
use crate::CoreError;
use crate::auth::Principal;
use crate::clock::now_ns;
use hearth_types::{Name, RelPath, SpaceId};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A stored chunk as assembly sees it: name, size, inode and change time (a chunk sent again
/// under the same name is a new inode).
type ChunkId = (String, u64, u64, i64);

/// The hashes of a transfer's first chunks, concatenated in assembly order.
pub(crate) struct HashedChunks {
    chunks: Vec<ChunkId>,
    hashes: Hashes,
}

/// What assembly knows of a stored chunk named `name`.
fn chunk_id(name: String, meta: &std::fs::Metadata) -> ChunkId {
    let changed = meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec();
    (name, meta.len(), meta.ino(), changed)
}

/// A chunk being received (see [`FileStore::begin_chunk`]).
pub struct ChunkUpload {
    up: Upload,
    /// The chunks whose hashes `up` continues, if it does.
    after: Option<Vec<ChunkId>>,
}

impl ChunkUpload {
    /// Appends a received buffer.
    pub fn write_bytes(&mut self, data: bytes::Bytes) -> Result<(), CoreError> {
        self.up.write_bytes(data)
    }
}

/// Sort key of a chunk name: ownCloud sends byte offsets, Nextcloud chunk indexes, both as
/// zero-padded numbers; anything else sorts by name after them.
fn chunk_order(name: &str) -> (u64, String) {
    (name.parse::<u64>().unwrap_or(u64::MAX), name.to_owned())
}

impl FileStore {
    fn transfer_dir(&self, who: &Principal, transfer: &Name) -> PathBuf {
        self.chunks_dir
            .join(who.id.to_string())
            .join(transfer.as_str())
    }

    fn existing_transfer(&self, who: &Principal, transfer: &Name) -> Result<PathBuf, CoreError> {
        let dir = self.transfer_dir(who, transfer);
        match super::tree::probe(&dir)? {
            Some((hearth_store::NodeKind::Dir, _)) => Ok(dir),
            _ => Err(CoreError::NotFound(format!("no upload {transfer}"))),
        }
    }

    /// The chunk files in `dir`, in assembly order.
    fn stored_chunks(dir: &Path) -> Result<Vec<ChunkId>, CoreError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| CoreError::io("listing an upload", e))? {
            let e = e.map_err(|e| CoreError::io("listing an upload", e))?;
            let (Ok(name), Ok(meta)) = (e.file_name().into_string(), e.metadata()) else {
                continue;
            };
            if meta.is_file() {
                out.push(chunk_id(name, &meta));
            }
        }
        out.sort_by_key(|(n, ..)| chunk_order(n));
        Ok(out)
    }

    /// Takes the kept hashes of the transfer in `dir`.
    fn take_chunk_hashes(&self, dir: &Path) -> Option<HashedChunks> {
        self.chunk_hashes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(dir)
    }

    /// Starts receiving `chunk` (PUT). If every stored chunk sorts before it and the kept hashes
    /// cover exactly those chunks, its bytes are hashed on top of them.
    pub fn begin_chunk(
        &self,
        who: &Principal,
        transfer: &Name,
        chunk: &Name,
    ) -> Result<ChunkUpload, CoreError> {
        let dir = self.existing_transfer(who, transfer)?;
        let kept = self.take_chunk_hashes(&dir);
        let stored = Self::stored_chunks(&dir)?;
        let next = stored
            .last()
            .is_none_or(|(last, ..)| chunk_order(last) < chunk_order(chunk.as_str()));
        let (hashes, after) = match kept {
            Some(k) if next && k.chunks == stored => (k.hashes, Some(k.chunks)),
            // The first chunk starts the hashes.
            _ if stored.is_empty() => (Hashes::default(), Some(Vec::new())),
            _ => (Hashes::default(), None),
        };
        Ok(ChunkUpload {
            up: self.begin_upload_with(hashes)?,
            after,
        })
    }

    /// Starts a transfer (MKCOL). `total` (OC-Total-Length) is checked against the quota.
    pub fn create_transfer(
        &self,
        who: &Principal,
        space: SpaceId,
        transfer: &Name,
        total: Option<u64>,
    ) -> Result<(), CoreError> {
        if let Some(n) = total {
            let q = self.quota(who, space)?;
            if q.total.is_some_and(|t| q.used.saturating_add(n) > t) {
                return Err(CoreError::QuotaExceeded(format!(
                    "{n} bytes do not fit the quota"
                )));
            }
        }
        let dir = self.transfer_dir(who, transfer);
        self.take_chunk_hashes(&dir);
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CoreError::io("creating the upload folder", e))?;
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(
                CoreError::AlreadyExists(format!("upload {transfer} exists")),
            ),
            Err(e) => Err(CoreError::io("creating the upload folder", e)),
        }
    }

    /// Stores one chunk (PUT). The chunk's bytes are durable before it takes its name, so a
    /// chunk that exists after a crash is whole.
    pub fn put_chunk(
        &self,
        who: &Principal,
        transfer: &Name,
        chunk: &Name,
        cu: ChunkUpload,
    ) -> Result<u64, CoreError> {
        let ChunkUpload { mut up, after } = cu;
        let dir = self.existing_transfer(who, transfer)?;
        up.flush_file()?;
        self.sync_data()?;
        let path = dir.join(chunk.as_str());
        let hashes = up.persist_to(&path)?;
        let stored = chunk_id(
            chunk.as_str().to_owned(),
            &std::fs::metadata(&path).map_err(|e| CoreError::io("reading a chunk", e))?,
        );
        let len = stored.1;
        if let Some(mut chunks) = after {
            chunks.push(stored);
            self.chunk_hashes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(dir, HashedChunks { chunks, hashes });
        }
        Ok(len)
    }

    /// The chunks of a transfer: (name, size), in assembly order.
    pub fn list_chunks(
        &self,
        who: &Principal,
        transfer: &Name,
    ) -> Result<Vec<(String, u64)>, CoreError> {
        let dir = self.existing_transfer(who, transfer)?;
        Ok(Self::stored_chunks(&dir)?
            .into_iter()
            .map(|(name, len, ..)| (name, len))
            .collect())
    }

    /// Assembles a transfer into `dest` (MOVE .file): the chunks are streamed in order into an
    /// upload that goes through the same checks and atomic placement as a PUT (copied without
    /// hashing when their hashes are kept, see the module documentation). The transfer is
    /// removed once the file is in place.
    pub fn assemble(
        &self,
        who: &Principal,
        transfer: &Name,
        space: SpaceId,
        dest: &RelPath,
        opts: &PutOptions,
    ) -> Result<(ResourceInfo, bool), CoreError> {
        let dir = self.existing_transfer(who, transfer)?;
        let kept = self.take_chunk_hashes(&dir);
        let chunks = Self::stored_chunks(&dir)?;
        let total: u64 = chunks.iter().map(|(_, n, ..)| n).sum();
        if let Some(want) = opts.expected_len
            && want != total
        {
            return Err(CoreError::BadRequest(format!(
                "the chunks hold {total} bytes but OC-Total-Length says {want}"
            )));
        }
        let kept = kept.filter(|k| k.chunks == chunks && k.hashes.len() == total);
        let hashed = kept.is_some();
        let mut up = self.begin_upload_with(kept.map(|k| k.hashes).unwrap_or_default())?;
        let mut copied = 0;
        for (name, ..) in &chunks {
            let mut f = std::fs::File::open(dir.join(name))
                .map_err(|e| CoreError::io("reading a chunk", e))?;
            if hashed {
                copied += up.append_unhashed(&mut f)?;
                continue;
            }
            loop {
                // A fresh buffer per MiB (filled without zeroing), shared with the MD5 helper.
                let mut buf = Vec::with_capacity(1 << 20);
                let n = (&mut f)
                    .take(1 << 20)
                    .read_to_end(&mut buf)
                    .map_err(|e| CoreError::io("reading a chunk", e))?;
                if n == 0 {
                    break;
                }
                up.write_bytes(bytes::Bytes::from(buf))?;
            }
        }
        if hashed && copied != total {
            return Err(CoreError::Internal(format!(
                "assembling {transfer}: copied {copied} of {total} bytes"
            )));
        }
        let out = self.finish_upload(who, space, dest, up, opts)?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(out)
    }

    /// Aborts a transfer (DELETE).
    pub fn abort_transfer(&self, who: &Principal, transfer: &Name) -> Result<(), CoreError> {
        let dir = self.existing_transfer(who, transfer)?;
        self.take_chunk_hashes(&dir);
        std::fs::remove_dir_all(&dir).map_err(|e| CoreError::io("removing an upload", e))
    }

    /// Removes transfers untouched for longer than `max_age` (the background job).
    pub fn purge_stale_transfers(&self, max_age: Duration) -> Result<usize, CoreError> {
        let cutoff = now_ns().saturating_sub(i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX));
        let mut purged = 0;
        let Ok(users) = std::fs::read_dir(&self.chunks_dir) else {
            return Ok(0);
        };
        for user in users.flatten() {
            let Ok(transfers) = std::fs::read_dir(user.path()) else {
                continue;
            };
            for t in transfers.flatten() {
                let touched = t
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(crate::clock::system_ns)
                    .unwrap_or(i64::MAX);
                if touched < cutoff && std::fs::remove_dir_all(t.path()).is_ok() {
                    self.take_chunk_hashes(&t.path());
                    purged += 1;
                }
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_order;

    #[test]
    fn offsets_and_indexes_sort_numerically() {
        let mut v = vec!["0000000000010000", "0000000000000000", "0000000000005000"];
        v.sort_by_key(|n| chunk_order(n));
        assert_eq!(
            v,
            ["0000000000000000", "0000000000005000", "0000000000010000"]
        );
        let mut w = vec!["10", "9", "x"];
        w.sort_by_key(|n| chunk_order(n));
        assert_eq!(w, ["9", "10", "x"]);
    }
}

#[cfg(test)]
mod assembly_tests {
    #![allow(clippy::unwrap_used)]
    use crate::{PutOptions, StorageOptions};
    use hearth_types::{Name, RelPath};

    /// Chunks sent in order are hashed on top of each other, and the assembly takes those hashes;
    /// chunks out of order or sent again fall back to reading them back. Either way the file and
    /// its checksums are those of the chunks in order.
    #[test]
    fn assembled_files_carry_the_checksums_of_their_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let (core, who, space) =
            crate::testing::alice(StorageOptions::new(dir.path().to_path_buf()));
        let files = &core.files;
        let data: Vec<u8> = (0..(6 << 20) + 3)
            .map(|i: usize| (i as u8).wrapping_mul(7).wrapping_add((i >> 12) as u8))
            .collect();
        let pieces: Vec<&[u8]> = data.chunks(2 << 20).collect();
        let send = |transfer: &Name, index: usize| {
            let chunk = Name::new(&format!("{:05}", index + 1)).unwrap();
            let mut cu = files.begin_chunk(&who, transfer, &chunk).unwrap();
            cu.write_bytes(bytes::Bytes::copy_from_slice(pieces[index]))
                .unwrap();
            files.put_chunk(&who, transfer, &chunk, cu).unwrap()
        };
        let kept = |transfer: &Name| {
            let dir = files.transfer_dir(&who, transfer);
            files
                .chunk_hashes
                .lock()
                .unwrap()
                .get(&dir)
                .map(|k| k.chunks.len())
        };
        // In order; then out of order; then in order with the second chunk sent again.
        let orders: [&[usize]; 3] = [&[0, 1, 2, 3], &[1, 0, 2, 3], &[0, 1, 1, 2, 3]];
        for (n, order) in orders.iter().enumerate() {
            let transfer = Name::new(&format!("t{n}")).unwrap();
            files.create_transfer(&who, space, &transfer, None).unwrap();
            for &i in *order {
                assert_eq!(send(&transfer, i), pieces[i].len() as u64);
            }
            assert_eq!(
                kept(&transfer),
                (n == 0).then_some(pieces.len()),
                "order {order:?}"
            );
            let dest = RelPath::from_decoded(&format!("f{n}.bin")).unwrap();
            let opts = PutOptions {
                expected_len: Some(data.len() as u64),
                ..PutOptions::default()
            };
            let (info, created) = files
                .assemble(&who, &transfer, space, &dest, &opts)
                .unwrap();
            assert!(created);
            assert_eq!(
                info.checksums,
                Some(crate::testing::checksums_of(&data)),
                "order {order:?}"
            );
            let on_disk = std::fs::read(dir.path().join("files/alice").join(format!("f{n}.bin")));
            assert!(on_disk.unwrap() == data, "order {order:?}");
            assert_eq!(kept(&transfer), None, "forgotten with the transfer");
        }
    }
}
