//! Chunked uploads as the Nextcloud/ownCloud desktop clients do them ("chunking NG"): a transfer
//! folder per upload under `<data>/system/chunks/<user>/<transfer>`, one file per chunk, and an
//! assembly step that streams the chunks, in order, into a normal upload which is then placed
//! atomically. Chunk files survive restarts; stale transfers are purged by the background job.

use super::write::Upload;
use super::{FileStore, PutOptions, ResourceInfo, StorageProvider};
use crate::CoreError;
use crate::auth::Principal;
use crate::clock::now_ns;
use hearth_types::{Name, RelPath, SpaceId};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

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
        mut up: Upload,
    ) -> Result<u64, CoreError> {
        let dir = self.existing_transfer(who, transfer)?;
        let len = up.len();
        up.flush_file()?;
        self.sync_data()?;
        up.persist_to(&dir.join(chunk.as_str()))?;
        Ok(len)
    }

    /// The chunks of a transfer: (name, size), in assembly order.
    pub fn list_chunks(
        &self,
        who: &Principal,
        transfer: &Name,
    ) -> Result<Vec<(String, u64)>, CoreError> {
        let dir = self.existing_transfer(who, transfer)?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(|e| CoreError::io("listing an upload", e))? {
            let e = e.map_err(|e| CoreError::io("listing an upload", e))?;
            let (Ok(name), Ok(meta)) = (e.file_name().into_string(), e.metadata()) else {
                continue;
            };
            if meta.is_file() {
                out.push((name, meta.len()));
            }
        }
        out.sort_by_key(|(n, _)| chunk_order(n));
        Ok(out)
    }

    /// Assembles a transfer into `dest` (MOVE .file): the chunks are streamed in order into an
    /// upload that goes through the same checks and atomic placement as a PUT. The transfer is
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
        let chunks = self.list_chunks(who, transfer)?;
        let total: u64 = chunks.iter().map(|(_, n)| n).sum();
        if let Some(want) = opts.expected_len
            && want != total
        {
            return Err(CoreError::BadRequest(format!(
                "the chunks hold {total} bytes but OC-Total-Length says {want}"
            )));
        }
        let mut up = self.begin_upload()?;
        for (name, _) in &chunks {
            let mut f = std::fs::File::open(dir.join(name))
                .map_err(|e| CoreError::io("reading a chunk", e))?;
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
        let out = self.finish_upload(who, space, dest, up, opts)?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(out)
    }

    /// Aborts a transfer (DELETE).
    pub fn abort_transfer(&self, who: &Principal, transfer: &Name) -> Result<(), CoreError> {
        let dir = self.existing_transfer(who, transfer)?;
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
