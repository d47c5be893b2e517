//! Group sync: many writers wait for one expensive sync (an fsync, a durable redb commit) that a
//! single leader performs for all of them. The store uses it for group commit (transactions
//! commit with `Durability::None`, then one `Durability::Immediate` commit makes them all
//! durable); the file store uses it to share `syncfs` between concurrent uploads.

use crate::StoreError;
use redb::{Database, Durability};
use std::sync::{Condvar, Mutex, PoisonError};

/// A leader-based group sync.
#[derive(Default)]
pub struct GroupSync {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    /// Sequence number of the newest change that needs syncing.
    noted: u64,
    /// Everything up to this sequence number is synced.
    synced: u64,
    /// A leader is syncing right now.
    syncing: bool,
}

impl GroupSync {
    /// Records a change that the next sync must cover.
    pub fn note(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.noted += 1;
    }

    /// Blocks until every change noted so far is synced. If no sync covering them is running,
    /// this caller becomes the leader and runs `sync` once for everyone waiting.
    pub fn wait<E>(&self, sync: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let target = s.noted;
        loop {
            if s.synced >= target {
                return Ok(());
            }
            if !s.syncing {
                break;
            }
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.syncing = true;
        let upto = s.noted;
        drop(s);
        let result = sync();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.syncing = false;
        if result.is_ok() {
            s.synced = s.synced.max(upto);
        }
        self.cv.notify_all();
        result
    }
}

/// Makes every earlier `Durability::None` commit durable.
pub(crate) fn flush(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::GroupSync;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_waiters_share_syncs() {
        let g = GroupSync::default();
        let syncs = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..50 {
                        g.note();
                        g.wait(|| -> Result<(), ()> {
                            syncs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            Ok(())
                        })
                        .unwrap();
                    }
                });
            }
        });
        let n = syncs.load(Ordering::SeqCst);
        assert!(n > 0 && n < 16 * 50, "{n} syncs for 800 waits");
    }
}
