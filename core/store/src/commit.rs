//! Group commit: write transactions commit with `Durability::None`, then one leader makes all
//! of them durable with a single `Durability::Immediate` commit while the others wait for it.

use crate::StoreError;
use redb::{Database, Durability};
use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    /// Sequence number of the newest non-durable commit.
    committed: u64,
    /// Everything up to this sequence number is on disk.
    durable: u64,
    /// A leader is flushing right now.
    flushing: bool,
}

impl GroupCommit {
    pub(crate) fn note_commit(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.committed += 1;
    }

    /// Blocks until every commit noted so far is durable.
    pub(crate) fn wait_durable(&self, db: &Database) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let target = s.committed;
        loop {
            if s.durable >= target {
                return Ok(());
            }
            if !s.flushing {
                break;
            }
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        // Become the leader for everything committed so far.
        s.flushing = true;
        let upto = s.committed;
        drop(s);
        let result = flush(db);
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.flushing = false;
        if result.is_ok() {
            s.durable = s.durable.max(upto);
        }
        self.cv.notify_all();
        result
    }
}

fn flush(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.commit()?;
    Ok(())
}
