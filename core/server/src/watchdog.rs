//! The `store` service: supervision of the threads that live inside the core rather than in a
//! service task, today the upload commit threads (`hearth_store::Committer`). They cannot be
//! awaited like a task, so this service checks on them every [`CHECK_EVERY`] and fails when
//! they have stopped; the supervisor then logs it, restarts the service (which starts new
//! threads) with backoff, and reports `Degraded` if it keeps happening.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the threads are checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Threads the core runs on its own.
pub(crate) trait CoreThreads: Send + Sync + 'static {
    /// Whether they all run.
    fn running(&self) -> bool;
    /// Starts new ones in place of stopped ones; `Ok(true)` if it did (blocking).
    fn revive(&self) -> Result<bool, String>;
}

impl CoreThreads for hearth_domain::FileStore {
    fn running(&self) -> bool {
        self.uploads_running()
    }

    fn revive(&self) -> Result<bool, String> {
        self.revive_uploads().map_err(|e| e.to_string())
    }
}

/// The service body: revive what stopped before this run, then watch until cancelled.
pub(crate) async fn watch(
    threads: Arc<dyn CoreThreads>,
    cancel: CancellationToken,
) -> Result<(), String> {
    let t = threads.clone();
    match tokio::task::spawn_blocking(move || t.revive()).await {
        Ok(Ok(true)) => tracing::warn!("started new upload commit threads"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => return Err(format!("starting the upload commit threads: {e}")),
        Err(e) => return Err(e.to_string()),
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if !threads.running() {
            return Err(
                "the upload commit threads stopped; uploads fail until they are restarted".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::supervisor::{Status, supervise_for_test};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Threads that die `deaths` times, each time some checks after being (re)started.
    struct Flaky {
        alive: AtomicBool,
        revived: AtomicUsize,
        checks: AtomicUsize,
        deaths: usize,
    }

    impl CoreThreads for Flaky {
        fn running(&self) -> bool {
            let n = self.checks.fetch_add(1, Ordering::SeqCst);
            if n % 3 == 2 && self.revived.load(Ordering::SeqCst) < self.deaths {
                self.alive.store(false, Ordering::SeqCst);
            }
            self.alive.load(Ordering::SeqCst)
        }
        fn revive(&self) -> Result<bool, String> {
            if self.alive.swap(true, Ordering::SeqCst) {
                return Ok(false);
            }
            self.revived.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        }
    }

    fn flaky(deaths: usize) -> Arc<Flaky> {
        Arc::new(Flaky {
            alive: AtomicBool::new(true),
            revived: AtomicUsize::new(0),
            checks: AtomicUsize::new(0),
            deaths,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn stopped_threads_are_restarted_and_the_server_keeps_running() {
        let threads = flaky(2);
        let (status, task, cancel) = supervise_for_test("store", {
            let t = threads.clone();
            move |cancel| {
                let t: Arc<dyn CoreThreads> = t.clone();
                Box::pin(watch(t, cancel))
            }
        });
        while threads.revived.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(threads.alive.load(Ordering::SeqCst), "revived and running");
        assert_eq!(
            *status.borrow(),
            Status::Running,
            "two deaths are not degraded"
        );
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn threads_that_keep_stopping_degrade_the_server() {
        let threads = flaky(usize::MAX);
        let (mut status, task, cancel) = supervise_for_test("store", {
            let t = threads.clone();
            move |cancel| {
                let t: Arc<dyn CoreThreads> = t.clone();
                Box::pin(watch(t, cancel))
            }
        });
        let degraded = status
            .wait_for(|s| matches!(s, Status::Degraded { .. }))
            .await
            .unwrap()
            .clone();
        match degraded {
            Status::Degraded { service, error } => {
                assert_eq!(service, "store");
                assert!(error.contains("upload commit threads stopped"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        cancel.cancel();
        task.await.unwrap();
    }
}
