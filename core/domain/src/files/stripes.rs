//! Per-path serialisation of the final step of writes (conditions checked, content placed,
//! record committed), striped by path hash. A guard is owned: an upload's guard travels with it
//! to the commit thread and is released there once its record is durable.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Stripes: a path hashes to one of them.
const STRIPES: usize = 64;

/// The set of stripes held right now.
#[derive(Default)]
pub(crate) struct Stripes {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    /// One bit per held stripe.
    held: u64,
    /// Threads waiting for a stripe: a release wakes them only if there are any (a `notify_all`
    /// is a system call even with nobody waiting).
    waiting: usize,
}

/// A held stripe; released on drop.
pub(crate) struct StripeGuard {
    stripes: Arc<Stripes>,
    bit: u64,
}

impl Stripes {
    /// Blocks until the stripe of `key` is free, then holds it.
    pub(crate) fn lock(self: &Arc<Self>, key: &std::path::Path) -> StripeGuard {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let bit = 1u64 << (h.finish() % STRIPES as u64);
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while st.held & bit != 0 {
            st.waiting += 1;
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
            st.waiting -= 1;
        }
        st.held |= bit;
        StripeGuard {
            stripes: self.clone(),
            bit,
        }
    }
}

impl Drop for StripeGuard {
    fn drop(&mut self) {
        let mut st = self
            .stripes
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        st.held &= !self.bit;
        if st.waiting > 0 {
            self.stripes.cv.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn one_holder_per_path_and_guards_can_move_threads() {
        let stripes = Arc::new(Stripes::default());
        let g = stripes.lock(Path::new("/a"));
        let released = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (stripes, released) = (stripes.clone(), released.clone());
            std::thread::spawn(move || {
                let _g = stripes.lock(Path::new("/a"));
                assert!(released.load(Ordering::SeqCst), "got the stripe while held");
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Released on another thread than the one that took it.
        let released2 = released.clone();
        std::thread::spawn(move || {
            released2.store(true, Ordering::SeqCst);
            drop(g);
        })
        .join()
        .unwrap();
        waiter.join().unwrap();
    }
}
