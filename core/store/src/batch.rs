//! Group commit of changes that give files their names (uploads), in a two-stage pipeline of
//! rounds:
//!
//! 1. the *place* thread takes every change queued meanwhile, runs one `sync` (the file store's
//!    `syncfs`), which makes the content of these files durable, and also the names given in
//!    the previous round; then it runs each new change's file-system step (linkat/rename to the
//!    real name) and hands the round to stage 2 at once;
//! 2. the *commit* thread applies every round handed over in a single write transaction and
//!    commits it durably, while the place thread's next `sync` makes those names durable; a
//!    caller hears back once both its record and its name are durable.
//!
//! So content is durable before it takes its name, and each round costs one `syncfs` and one
//! redb commit however many uploads it carries (concurrent uploads into one folder rewrite the
//! same ancestor records, so 16 uploads cost about one commit instead of sixteen). Callers wait
//! on a receipt, blocking or `async` (a request task waits without holding a thread).
//!
//! A change that fails must not leave half its writes in its neighbours' transaction: when any
//! change in a batch fails, the batch is abandoned and every change is applied again in a
//! transaction of its own, so each caller sees exactly its own outcome.

use crate::{Store, StoreError, WriteTx};
use redb::{Database, Durability};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use tokio::sync::oneshot;

/// One queued change, with its types erased.
trait Pending<E>: Send {
    /// Runs the change's file-system step, once (later calls do nothing).
    fn prepare(&mut self) -> Result<(), E>;
    /// Applies the change and keeps its value for [`Pending::deliver`].
    fn apply(&mut self, tx: &WriteTx) -> Result<(), E>;
    /// Forgets a kept value (the transaction it came from was abandoned).
    fn reset(&mut self);
    /// Hands the outcome to the waiting caller: the kept value after `Ok`, else the error.
    fn deliver(self: Box<Self>, outcome: Result<(), E>);
}

struct Entry<S, T, E, P, F> {
    prepare: Option<P>,
    prepared: Option<S>,
    f: F,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, E>>,
}

/// Runs `f` on the commit thread: a panic fails this change instead of the whole thread.
fn guarded<R, E: From<StoreError>>(f: impl FnOnce() -> Result<R, E>) -> Result<R, E> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(StoreError::Db("a batched change panicked".into()).into()))
}

impl<S, T, E, P, F> Pending<E> for Entry<S, T, E, P, F>
where
    S: Send,
    T: Send,
    E: Send + From<StoreError>,
    P: FnOnce() -> Result<S, E> + Send,
    F: FnMut(&WriteTx, &S) -> Result<T, E> + Send,
{
    fn prepare(&mut self) -> Result<(), E> {
        if let Some(prepare) = self.prepare.take() {
            self.prepared = Some(guarded(prepare)?);
        }
        Ok(())
    }

    fn apply(&mut self, tx: &WriteTx) -> Result<(), E> {
        let Some(prepared) = &self.prepared else {
            return Err(StoreError::Db("a batched change was applied unprepared".into()).into());
        };
        let f = &mut self.f;
        self.value = Some(guarded(|| f(tx, prepared))?);
        Ok(())
    }

    fn reset(&mut self) {
        self.value = None;
    }

    fn deliver(self: Box<Self>, outcome: Result<(), E>) {
        let Entry {
            f,
            prepared,
            value,
            reply,
            ..
        } = *self;
        // What the change holds (an upload's path lock, its file) goes before its caller hears.
        drop((f, prepared));
        let result = outcome.and_then(|()| {
            value.ok_or_else(|| StoreError::Db("a batched change kept no value".into()).into())
        });
        // The caller may have gone (a dropped request): the change is committed all the same.
        let _ = reply.send(result);
    }
}

/// The outcome of a submitted change, once it is durable.
pub struct Receipt<T, E>(oneshot::Receiver<Result<T, E>>);

impl<T, E: From<StoreError>> Receipt<T, E> {
    /// Blocks the thread until the change is durable (or failed). Not on an async worker:
    /// tokio refuses (panics) there; use [`Receipt::done`].
    pub fn wait(self) -> Result<T, E> {
        self.0
            .blocking_recv()
            .unwrap_or_else(|_| Err(stopped().into()))
    }

    /// Waits without holding a thread.
    pub async fn done(self) -> Result<T, E> {
        self.0.await.unwrap_or_else(|_| Err(stopped().into()))
    }
}

fn stopped() -> StoreError {
    StoreError::Db("the commit thread stopped".into())
}

/// Changes per round at most (bounds how long one round keeps the next one waiting).
const MAX_BATCH: usize = 256;

/// A round's changes, with its number.
type Round<E> = (u64, Vec<Box<dyn Pending<E>>>);

/// How far the names given by the place thread are durable.
#[derive(Default)]
struct Names {
    state: Mutex<NamesState>,
    cv: Condvar,
}

#[derive(Default)]
struct NamesState {
    /// The names of every round below this one are durable.
    durable_below: u64,
    /// Rounds whose names the `sync` failed to make durable, and why (until stage 2 reports them).
    failed: std::collections::BTreeMap<u64, String>,
    /// The place thread has stopped: no more rounds will become durable.
    stopped: bool,
}

impl Names {
    /// Blocks until the names of every round up to `round` are durable or failed; returns the
    /// failed ones with the reason (and forgets them). If the place thread stopped first, every
    /// round not yet durable counts as failed.
    fn wait_durable(&self, round: u64) -> std::collections::BTreeMap<u64, String> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while s.durable_below <= round && !s.stopped {
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        let mut failed = std::mem::take(&mut s.failed);
        if let Some(later) = round.checked_add(1) {
            s.failed = failed.split_off(&later);
        }
        for r in s.durable_below..=round {
            failed.insert(r, stopped().to_string());
        }
        failed
    }

    fn update(&self, f: impl FnOnce(&mut NamesState)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.cv.notify_all();
    }
}

/// The place and commit threads and their queue.
pub struct Committer<E> {
    queue: Option<mpsc::Sender<Box<dyn Pending<E>>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl<E: Send + From<StoreError> + std::fmt::Display + 'static> Committer<E> {
    /// Starts the threads `name`-place and `name` for `store`; `sync` makes every write to the
    /// file system so far durable.
    pub fn start(
        store: &Store,
        name: &str,
        sync: impl Fn() -> Result<(), E> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (queue, rx) = mpsc::channel::<Box<dyn Pending<E>>>();
        let (handover, placed) = mpsc::channel::<Round<E>>();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| StoreError::Db(format!("starting the commit threads: {e}")))
        };
        let store = store.clone();
        let names = Arc::new(Names::default());
        let placer_names = names.clone();
        let threads = vec![
            spawn(
                format!("{name}-place"),
                Box::new(move || {
                    place_rounds(&rx, &sync, &handover, &placer_names);
                    placer_names.update(|s| s.stopped = true);
                }),
            )?,
            spawn(
                name.into(),
                Box::new(move || commit_rounds(store.db(), &placed, &names)),
            )?,
        ];
        Ok(Self {
            queue: Some(queue),
            threads,
        })
    }

    /// Whether both threads still run. They only stop when the committer is dropped, or if one
    /// dies of a panic outside a change (in `sync`, say); then every later change fails with
    /// "the commit thread stopped", and the owner should start a new committer.
    pub fn running(&self) -> bool {
        self.queue.is_some() && self.threads.iter().all(|t| !t.is_finished())
    }

    /// Queues a change: `prepare` (its file-system step, run once, after its content is
    /// durable) and then `f` in a write transaction shared with the other changes of its round.
    /// `f` may run twice: the second time alone, if another change of its round failed.
    pub fn submit<S, T, P, F>(&self, prepare: P, f: F) -> Receipt<T, E>
    where
        S: Send + 'static,
        T: Send + 'static,
        P: FnOnce() -> Result<S, E> + Send + 'static,
        F: FnMut(&WriteTx, &S) -> Result<T, E> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let entry = Box::new(Entry {
            prepare: Some(prepare),
            prepared: None,
            f,
            value: None,
            reply,
        });
        // A closed queue drops the entry, and with it the reply: the receipt reports it.
        if let Some(queue) = &self.queue {
            let _ = queue.send(entry);
        }
        Receipt(rx)
    }
}

impl<E> Drop for Committer<E> {
    /// Lets the threads finish what is queued, then joins them.
    fn drop(&mut self) {
        self.queue = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Moves everything already queued on `rx` into `batch` (up to [`MAX_BATCH`]).
fn drain<T>(rx: &mpsc::Receiver<T>, batch: &mut Vec<T>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
}

/// Stage 1: one `sync` per round, then the new names (see the module documentation).
fn place_rounds<E: From<StoreError> + std::fmt::Display>(
    rx: &mpsc::Receiver<Box<dyn Pending<E>>>,
    sync: &dyn Fn() -> Result<(), E>,
    handover: &mpsc::Sender<Round<E>>,
    names: &Names,
) {
    let mut round: u64 = 0;
    // Whether the last round gave names that no `sync` has covered yet.
    let mut unsynced = false;
    loop {
        let mut fresh = Vec::new();
        if !unsynced {
            match rx.recv() {
                Ok(p) => fresh.push(p),
                Err(_) => return,
            }
        }
        drain(rx, &mut fresh);
        round += 1;
        match sync() {
            Ok(()) => names.update(|s| s.durable_below = round),
            Err(e) => {
                let why = e.to_string();
                // The previous round's names may not be durable: its callers get the error.
                names.update(|s| {
                    s.failed.insert(round - 1, why.clone());
                    s.durable_below = round;
                });
                for p in fresh {
                    p.deliver(Err(StoreError::Db(why.clone()).into()));
                }
                unsynced = false;
                continue;
            }
        }
        let mut named = Vec::with_capacity(fresh.len());
        for mut p in fresh {
            match p.prepare() {
                Ok(()) => named.push(p),
                Err(e) => p.deliver(Err(e)),
            }
        }
        unsynced = !named.is_empty();
        if unsynced && let Err(mpsc::SendError((_, lost))) = handover.send((round, named)) {
            for p in lost {
                p.deliver(Err(stopped().into()));
            }
        }
    }
}

/// Stage 2: every round handed over so far in one durable transaction; each change is
/// answered once its round's names are durable too.
fn commit_rounds<E: From<StoreError>>(
    db: &Database,
    placed: &mpsc::Receiver<Round<E>>,
    names: &Names,
) {
    while let Ok(first) = placed.recv() {
        let mut rounds = vec![first];
        while let Ok(more) = placed.try_recv() {
            rounds.push(more);
        }
        let mut batch: Vec<(u64, Box<dyn Pending<E>>)> = rounds
            .into_iter()
            .flat_map(|(r, changes)| changes.into_iter().map(move |p| (r, p)))
            .collect();
        let outcomes: Vec<Result<(), E>> = match apply_together(db, &mut batch) {
            Ok(()) => batch.iter().map(|_| Ok(())).collect(),
            // A change failed: none of the batch is kept; each goes again alone and gets its
            // own outcome.
            Err(_) => batch
                .iter_mut()
                .map(|(_, p)| {
                    p.reset();
                    apply_alone(db, p.as_mut())
                })
                .collect(),
        };
        let newest = batch.last().map_or(0, |(r, _)| *r);
        let failed = names.wait_durable(newest);
        for ((round, p), outcome) in batch.into_iter().zip(outcomes) {
            let outcome = match (failed.get(&round), outcome) {
                (Some(why), Ok(())) => Err(StoreError::Db(why.clone()).into()),
                (_, o) => o,
            };
            p.deliver(outcome);
        }
    }
}

fn apply_together<E: From<StoreError>>(
    db: &Database,
    batch: &mut [(u64, Box<dyn Pending<E>>)],
) -> Result<(), E> {
    let tx = begin(db)?;
    for (_, p) in batch.iter_mut() {
        if let Err(e) = p.apply(&tx) {
            tx.into_inner().abort().map_err(StoreError::from)?;
            return Err(e);
        }
    }
    tx.into_inner().commit().map_err(StoreError::from)?;
    Ok(())
}

fn apply_alone<E: From<StoreError>>(db: &Database, p: &mut dyn Pending<E>) -> Result<(), E> {
    let tx = begin(db)?;
    if let Err(e) = p.apply(&tx) {
        tx.into_inner().abort().map_err(StoreError::from)?;
        return Err(e);
    }
    tx.into_inner().commit().map_err(StoreError::from)?;
    Ok(())
}

fn begin(db: &Database) -> Result<WriteTx, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    Ok(WriteTx::new(txn))
}
