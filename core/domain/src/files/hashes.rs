//! The checksums of uploaded content (SHA-1, MD5, Adler-32, as oCIS stores them), computed while
//! the bytes arrive: clients compare them (rclone MD5, the desktop clients SHA-1) and send them
//! (`OC-Checksum`, `Upload-Checksum`). A resumable upload keeps its [`Hashes`] between requests,
//! so completing it does not read the whole file back.

use crate::CoreError;
use hearth_store::Checksums;
use sha1::Digest;

/// Uploads larger than this hash MD5 on a helper thread.
pub(crate) const MD5_HELPER_AFTER: u64 = 4 << 20;
/// Data is handed to the MD5 helper in batches of at least this many bytes (few wake-ups).
const MD5_BATCH: usize = 512 << 10;
/// Batches queued for the MD5 helper at most (bounds memory: about 2 MiB).
const MD5_QUEUE: usize = 4;

/// The running hashes of some content, and its length so far.
pub struct Hashes {
    sha1: sha1::Sha1,
    md5: Md5,
    adler: adler2::Adler32,
    len: u64,
}

impl Default for Hashes {
    fn default() -> Self {
        Self {
            sha1: sha1::Sha1::new(),
            md5: Md5::new(),
            adler: adler2::Adler32::new(),
            len: 0,
        }
    }
}

impl Hashes {
    /// Hashes a received buffer (large contents share it with the MD5 helper: no copy).
    pub(crate) fn update(&mut self, data: bytes::Bytes) -> Result<(), CoreError> {
        self.sha1.update(&data);
        self.adler.write_slice(&data);
        self.len += data.len() as u64;
        self.md5.update(data, self.len)
    }

    /// Hashes borrowed bytes (copied only if the MD5 helper runs).
    pub(crate) fn update_slice(&mut self, data: &[u8]) -> Result<(), CoreError> {
        if let Md5::Inline(m) = &mut self.md5 {
            m.update(data);
            self.sha1.update(data);
            self.adler.write_slice(data);
            self.len += data.len() as u64;
            if self.len >= MD5_HELPER_AFTER {
                self.md5.start_helper();
            }
            return Ok(());
        }
        self.update(bytes::Bytes::copy_from_slice(data))
    }

    /// Bytes hashed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Waits for the MD5 helper (if any) to catch up, so that the state can be read or kept.
    pub(crate) fn settle(&mut self) -> Result<(), CoreError> {
        let md5 = std::mem::replace(&mut self.md5, Md5::new());
        self.md5 = Md5::Inline(md5.finish()?);
        Ok(())
    }

    /// A copy of the state so far (settles first).
    pub(crate) fn snapshot(&mut self) -> Result<Self, CoreError> {
        self.settle()?;
        let md5 = match &self.md5 {
            Md5::Inline(m) => m.clone(),
            Md5::Helper { .. } => return Err(helper_failed()),
        };
        Ok(Self {
            sha1: self.sha1.clone(),
            md5: Md5::Inline(md5),
            adler: self.adler,
            len: self.len,
        })
    }

    /// The checksums of everything hashed so far (settles first).
    pub(crate) fn checksums(&mut self) -> Result<Checksums, CoreError> {
        self.settle()?;
        let md5 = match &self.md5 {
            Md5::Inline(m) => hex::encode(m.clone().finalize()),
            Md5::Helper { .. } => return Err(helper_failed()),
        };
        Ok(Checksums {
            sha1: Some(hex::encode(self.sha1.clone().finalize())),
            md5: Some(md5),
            adler32: Some(format!("{:08x}", self.adler.checksum())),
        })
    }
}

/// MD5, by far the slowest of the three hashes (about 590 MB/s against SHA-1's 2 GB/s with the
/// SHA extensions and Adler-32's 10 GB/s, single core): inline for small contents; for large ones
/// a helper thread hashes the received buffers (shared, not copied) in parallel with SHA-1,
/// Adler-32 and the file writes.
enum Md5 {
    Inline(md5::Md5),
    Helper {
        batch: Vec<bytes::Bytes>,
        batch_len: usize,
        tx: std::sync::mpsc::SyncSender<Vec<bytes::Bytes>>,
        done: std::thread::JoinHandle<md5::Md5>,
    },
}

impl Md5 {
    fn new() -> Self {
        Self::Inline(md5::Md5::new())
    }

    /// Hashes `data`; `total` is the content's length including it.
    fn update(&mut self, data: bytes::Bytes, total: u64) -> Result<(), CoreError> {
        match self {
            Self::Inline(m) => {
                m.update(&data);
                if total >= MD5_HELPER_AFTER {
                    self.start_helper();
                }
                Ok(())
            }
            Self::Helper {
                batch,
                batch_len,
                tx,
                ..
            } => {
                *batch_len += data.len();
                batch.push(data);
                if *batch_len >= MD5_BATCH {
                    *batch_len = 0;
                    tx.send(std::mem::take(batch))
                        .map_err(|_| helper_failed())?;
                }
                Ok(())
            }
        }
    }

    /// Moves an inline state to a helper thread (stays inline if no thread can be started).
    fn start_helper(&mut self) {
        let Self::Inline(m) = self else { return };
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<bytes::Bytes>>(MD5_QUEUE);
        let mut state = m.clone();
        let spawned = std::thread::Builder::new()
            .name("hearth-md5".into())
            .spawn(move || {
                for batch in rx {
                    for b in batch {
                        state.update(&b);
                    }
                }
                state
            });
        if let Ok(done) = spawned {
            *self = Self::Helper {
                batch: Vec::new(),
                batch_len: 0,
                tx,
                done,
            };
        }
    }

    /// The state after everything handed over so far (waits for the helper).
    fn finish(self) -> Result<md5::Md5, CoreError> {
        match self {
            Self::Inline(m) => Ok(m),
            Self::Helper {
                batch, tx, done, ..
            } => {
                if !batch.is_empty() {
                    tx.send(batch).map_err(|_| helper_failed())?;
                }
                drop(tx);
                done.join().map_err(|_| helper_failed())
            }
        }
    }
}

fn helper_failed() -> CoreError {
    CoreError::Internal("the MD5 hashing thread failed".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn content() -> Vec<u8> {
        (0..(MD5_HELPER_AFTER as usize * 3 / 2 + 12_345))
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 13) as u8))
            .collect()
    }

    #[test]
    fn md5_on_the_helper_thread_matches_inline() {
        let data = content();
        let mut h = Hashes::default();
        for piece in data.chunks(100_000) {
            h.update(bytes::Bytes::copy_from_slice(piece)).unwrap();
        }
        assert!(
            matches!(h.md5, Md5::Helper { .. }),
            "a large content uses the helper"
        );
        assert_eq!(h.checksums().unwrap(), crate::testing::checksums_of(&data));
        assert_eq!(h.len(), data.len() as u64);
    }

    #[test]
    fn kept_between_requests_with_snapshots_and_slices() {
        let data = content();
        let (first, rest) = data.split_at(MD5_HELPER_AFTER as usize + 7);
        let mut h = Hashes::default();
        for piece in first.chunks(65_536) {
            h.update_slice(piece).unwrap();
        }
        // A request ends: its state is kept; the next one goes on from a copy of it.
        let mut next = h.snapshot().unwrap();
        for piece in rest.chunks(1 << 20) {
            next.update(bytes::Bytes::copy_from_slice(piece)).unwrap();
        }
        assert_eq!(
            next.checksums().unwrap(),
            crate::testing::checksums_of(&data)
        );
        // The copy taken before is untouched by what came after.
        assert_eq!(h.checksums().unwrap(), crate::testing::checksums_of(first));
    }
}
