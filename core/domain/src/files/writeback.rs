//! Early writeback of large uploads: while a large file is still arriving, a helper thread makes
//! what has been written so far durable (`fdatasync`) every [`EVERY`] bytes. The disk writes then
//! overlap with receiving, the final `fdatasync` before the commit only has the last stretch to
//! write, and one upload never holds more than about two stretches of dirty pages (which would
//! otherwise throttle every other writer on the machine).

use crate::CoreError;
use std::fs::File;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes received between two background syncs.
pub(super) const EVERY: u64 = 64 << 20;

/// The helper thread of one upload.
pub(super) struct Writeback {
    kick: Option<SyncSender<()>>,
    done: JoinHandle<std::io::Result<()>>,
}

impl Writeback {
    /// A helper syncing `file` (through its own descriptor of the same open file) when kicked;
    /// `None` when no thread can be started (the final sync then does all the work).
    pub(super) fn start(file: &File) -> Option<Self> {
        let file = file.try_clone().ok()?;
        let (kick, kicked) = sync_channel::<()>(1);
        let done = std::thread::Builder::new()
            .name("hearth-writeback".into())
            .spawn(move || {
                for () in kicked {
                    rustix::fs::fdatasync(&file)?;
                }
                Ok(())
            })
            .ok()?;
        Some(Self {
            kick: Some(kick),
            done,
        })
    }

    /// Asks for a sync of everything written so far; folds into one already asked for.
    pub(super) fn kick(&self) {
        if let Some(k) = &self.kick {
            let _ = k.try_send(());
        }
    }

    /// Waits for the sync under way. Its error fails the upload: the kernel reports a writeback
    /// error once per open file, so the upload's own final `fdatasync` would not see it again.
    pub(super) fn finish(mut self) -> Result<(), CoreError> {
        drop(self.kick.take());
        match self.done.join() {
            Ok(r) => r.map_err(|e| CoreError::io("writing an upload", e)),
            Err(_) => Err(CoreError::Internal(
                "the upload writeback thread failed".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn kicks_sync_in_the_background_and_finish_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::create(dir.path().join("up")).unwrap();
        let w = Writeback::start(&f).unwrap();
        for _ in 0..20 {
            f.write_all(&[1u8; 4096]).unwrap();
            w.kick();
        }
        w.finish().unwrap();
    }
}
