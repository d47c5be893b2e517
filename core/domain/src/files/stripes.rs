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
    held: Mutex<u64>,
    cv: Condvar,
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
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while *held & bit != 0 {
            held = self.cv.wait(held).unwrap_or_else(PoisonError::into_inner);
        }
        *held |= bit;
        StripeGuard {
            stripes: self.clone(),
            bit,
        }
    }
}

impl Drop for StripeGuard {
    fn drop(&mut self) {
        let mut held = self
            .stripes
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *held &= !self.bit;
        self.stripes.cv.notify_all();
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
