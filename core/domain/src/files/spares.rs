//! Unnamed temporary files (`O_TMPFILE`, see `staging`) created ahead of time on a helper
//! thread, so a small upload that arrived whole can be staged on the async worker that received
//! it (see [`super::FileStore::small_upload`]).
//!
//! Why: handing each small PUT to the blocking pool cost two thread switches; staged on the
//! worker, 16 parallel 4 KiB PUTs cost the server 249 µs of CPU each instead of 282 µs (means of
//! 16 runs of 4,000 on the 2-core reference VM) and ran ~4 % faster. Creating the inode is the one step of staging that may wait for the disk (ext4 searches its
//! inode bitmaps, and without a journal it skips inodes freed in the last 30 s by reading their
//! inode table blocks), so that step stays off the workers: it happens here, in batches. Writing
//! a few KiB into the page cache and the redb lookups (cached pages) are what a GET does on the
//! worker too.

use super::staging;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Files kept ready at most.
const KEEP: usize = 32;
/// The helper tops the stock up when it falls below this.
const LOW: usize = KEEP / 2;
/// After a failed creation the helper waits this long before it tries again (meanwhile uploads
/// create their own files on the blocking pool, and report the error if it persists).
const RETRY: Duration = Duration::from_secs(1);

/// A stock of unnamed files in one folder, refilled by a helper thread.
pub(crate) struct Spares {
    shared: Arc<Shared>,
    helper: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    files: Vec<File>,
    /// Somebody asked for a file: until then nothing is created (a process that never receives
    /// an upload, such as `hearth user add`, allocates no inodes for nothing).
    wanted: bool,
    stop: bool,
}

impl Spares {
    /// Starts the helper for `tmp_dir` (where `O_TMPFILE` works); `None` if no thread can start.
    pub(crate) fn start(tmp_dir: PathBuf) -> Option<Self> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let helper = std::thread::Builder::new()
            .name("hearth-spares".into())
            .spawn(move || refill(&theirs, &tmp_dir))
            .ok()?;
        Some(Self {
            shared,
            helper: Some(helper),
        })
    }

    /// A fresh unnamed file, if one is ready (never waits for the file system). The first call
    /// starts the stock.
    pub(crate) fn take(&self) -> Option<File> {
        let mut s = self.shared.lock();
        s.wanted = true;
        let file = s.files.pop();
        if s.files.len() < LOW {
            self.shared.cv.notify_one();
        }
        file
    }

    /// Files ready now.
    #[cfg(test)]
    fn ready(&self) -> usize {
        self.shared.lock().files.len()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Spares {
    /// Stops the helper; the files left close, and their inodes go with them.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_one();
        if let Some(h) = self.helper.take() {
            let _ = h.join();
        }
    }
}

/// The helper: waits until the stock is wanted and runs low, then creates files up to [`KEEP`].
fn refill(shared: &Shared, tmp_dir: &std::path::Path) {
    let mut s = shared.lock();
    loop {
        while !s.stop && (!s.wanted || s.files.len() >= LOW) {
            s = shared.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        if s.stop {
            return;
        }
        let need = KEEP - s.files.len();
        drop(s);
        let mut fresh = Vec::with_capacity(need);
        let mut failed = false;
        for _ in 0..need {
            match staging::create(tmp_dir, true) {
                Ok((file, _)) => fresh.push(file),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create spare upload files");
                    failed = true;
                    break;
                }
            }
        }
        s = shared.lock();
        s.files.append(&mut fresh);
        if failed {
            // Not again at once: wait out RETRY (or the stop).
            let (back, _) = shared
                .cv
                .wait_timeout_while(s, RETRY, |s| !s.stop)
                .unwrap_or_else(PoisonError::into_inner);
            s = back;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{KEEP, LOW, Spares};
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    fn wait_for(what: impl Fn() -> bool) {
        let start = Instant::now();
        while !what() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn the_stock_is_filled_and_topped_up_after_takes() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::start(dir.path().to_path_buf()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(spares.ready(), 0, "nothing is created before it is wanted");
        assert!(spares.take().is_none(), "the first take starts the stock");
        wait_for(|| spares.ready() == KEEP);
        let mut taken = Vec::new();
        for _ in 0..=KEEP - LOW {
            taken.push(spares.take().unwrap());
        }
        // Below the low mark: the helper fills up again.
        wait_for(|| spares.ready() == KEEP);
        // Each taken file is a fresh, empty, writable inode with no name.
        for f in &mut taken {
            assert_eq!(f.metadata().unwrap().len(), 0);
            f.write_all(b"x").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        drop(spares);
    }

    #[test]
    fn without_a_usable_folder_there_are_no_spares_and_no_spinning() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("missing");
        let spares = Spares::start(gone).unwrap();
        assert!(spares.take().is_none());
        // The helper fails to create any and waits before it tries again.
        std::thread::sleep(Duration::from_millis(20));
        assert!(spares.take().is_none());
        assert_eq!(spares.ready(), 0);
        // Dropping stops the helper while it waits out a failure.
        drop(spares);
    }
}
