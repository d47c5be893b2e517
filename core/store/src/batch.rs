//! Group commit of whole transactions: concurrent writers queue their change, and one of them (the
//! leader) applies every queued change in a single write transaction, runs a pre-commit step
//! (the file store's `syncfs`) and commits durably once for all of them. A redb commit costs far
//! more than the few records one upload changes, and concurrent uploads into one folder rewrite
//! the same ancestor records, so 16 uploads cost about one commit instead of sixteen.
//!
//! A change that fails must not leave half its writes in its neighbours' transaction: when any
//! change in a batch fails, the batch is abandoned and every change is applied again in a
//! transaction of its own, so each caller sees exactly its own outcome.

use crate::{StoreError, WriteTx};
use redb::{Database, Durability};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// The steps a leader runs around a batch: `before_prepare` before any change's file-system
/// step (the file store's data `syncfs`: content durable before it takes its name),
/// `before_commit` after every change is applied (`syncfs` again: the new names durable).
pub struct Hooks<'a, E> {
    /// Runs once before the changes' `prepare` steps.
    pub before_prepare: &'a (dyn Fn() -> Result<(), E> + Sync),
    /// Runs once before the commit.
    pub before_commit: &'a (dyn Fn() -> Result<(), E> + Sync),
}

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
    /// Wakes the waiting caller to lead the next batch.
    fn hand_over(&self);
}

/// Where a caller waits: for its outcome, or for its turn to lead.
struct Slot<T, E> {
    state: Mutex<Turn<T, E>>,
    cv: Condvar,
}

enum Turn<T, E> {
    Waiting,
    Lead,
    Done(Result<T, E>),
}

impl<T, E> Slot<T, E> {
    fn set(&self, turn: Turn<T, E>) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = turn;
        self.cv.notify_one();
    }

    /// Blocks until the outcome is in (`Ok`) or the caller must lead (`Err`).
    fn wait(&self) -> Result<Result<T, E>, ()> {
        let mut turn = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match std::mem::replace(&mut *turn, Turn::Waiting) {
                Turn::Done(result) => return Ok(result),
                Turn::Lead => return Err(()),
                Turn::Waiting => {}
            }
            turn = self.cv.wait(turn).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct Entry<S, T, E, P, F> {
    prepare: Option<P>,
    prepared: Option<S>,
    f: F,
    value: Option<T>,
    slot: Arc<Slot<T, E>>,
}

/// Runs `f` on the leader's thread: a panic fails this change instead of stranding the batch.
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
        let Entry { value, slot, .. } = *self;
        let result = outcome.and_then(|()| {
            value.ok_or_else(|| StoreError::Db("a batched change kept no value".into()).into())
        });
        slot.set(Turn::Done(result));
    }

    fn hand_over(&self) {
        self.slot.set(Turn::Lead);
    }
}

/// The queue of changes waiting for a leader.
pub struct Batcher<E> {
    state: Mutex<State<E>>,
}

struct State<E> {
    queue: Vec<Box<dyn Pending<E>>>,
    /// A leader is applying a batch, or has been chosen to apply the next one.
    leading: bool,
}

impl<E> Default for Batcher<E> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                queue: Vec::new(),
                leading: false,
            }),
        }
    }
}

impl<E: Send + From<StoreError> + 'static> Batcher<E> {
    /// Runs `prepare` (once) and then applies `f` in a write transaction shared with concurrent
    /// callers, returning once it is durable. `f` may run twice (the second time alone) if a
    /// neighbour in its batch fails.
    pub(crate) fn run<S, T, P, F>(
        &self,
        db: &Database,
        hooks: &Hooks<'_, E>,
        prepare: P,
        f: F,
    ) -> Result<T, E>
    where
        S: Send + 'static,
        T: Send + 'static,
        P: FnOnce() -> Result<S, E> + Send + 'static,
        F: FnMut(&WriteTx, &S) -> Result<T, E> + Send + 'static,
    {
        let slot = Arc::new(Slot {
            state: Mutex::new(Turn::Waiting),
            cv: Condvar::new(),
        });
        let lead_now = {
            let mut state = self.lock();
            state.queue.push(Box::new(Entry {
                prepare: Some(prepare),
                prepared: None,
                f,
                value: None,
                slot: slot.clone(),
            }));
            !std::mem::replace(&mut state.leading, true)
        };
        // Each waiter is woken once: with its outcome, or to lead the batch its change is in.
        if !lead_now && let Ok(result) = slot.wait() {
            return result;
        }
        let batch = std::mem::take(&mut self.lock().queue);
        apply_batch(db, hooks, batch);
        {
            let mut state = self.lock();
            match state.queue.first() {
                Some(next) => next.hand_over(),
                None => state.leading = false,
            }
        }
        // Our change was in the batch we just applied.
        match slot.wait() {
            Ok(result) => result,
            Err(()) => Err(StoreError::Db("a batch leader was chosen twice".into()).into()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies a batch in one durable transaction, or each change alone if anything fails.
fn apply_batch<E: From<StoreError>>(
    db: &Database,
    hooks: &Hooks<'_, E>,
    batch: Vec<Box<dyn Pending<E>>>,
) {
    if (hooks.before_prepare)().is_err() {
        return apply_each_alone(db, hooks, batch);
    }
    let mut ready = Vec::with_capacity(batch.len());
    for mut p in batch {
        match p.prepare() {
            Ok(()) => ready.push(p),
            Err(e) => p.deliver(Err(e)),
        }
    }
    match apply_together(db, hooks, &mut ready) {
        Ok(()) => {
            for p in ready {
                p.deliver(Ok(()));
            }
        }
        Err(_) => apply_each_alone(db, hooks, ready),
    }
}

fn apply_each_alone<E: From<StoreError>>(
    db: &Database,
    hooks: &Hooks<'_, E>,
    batch: Vec<Box<dyn Pending<E>>>,
) {
    for mut p in batch {
        p.reset();
        let outcome = apply_alone(db, hooks, p.as_mut());
        p.deliver(outcome);
    }
}

fn apply_together<E: From<StoreError>>(
    db: &Database,
    hooks: &Hooks<'_, E>,
    batch: &mut [Box<dyn Pending<E>>],
) -> Result<(), E> {
    let tx = begin(db)?;
    for p in batch.iter_mut() {
        if let Err(e) = p.apply(&tx) {
            tx.into_inner().abort().map_err(StoreError::from)?;
            return Err(e);
        }
    }
    commit(tx, hooks)
}

/// One change in its own transaction, with its own hooks (each caller gets its own error).
fn apply_alone<E: From<StoreError>>(
    db: &Database,
    hooks: &Hooks<'_, E>,
    p: &mut dyn Pending<E>,
) -> Result<(), E> {
    (hooks.before_prepare)()?;
    p.prepare()?;
    let tx = begin(db)?;
    if let Err(e) = p.apply(&tx) {
        tx.into_inner().abort().map_err(StoreError::from)?;
        return Err(e);
    }
    commit(tx, hooks)
}

fn begin(db: &Database) -> Result<WriteTx, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    Ok(WriteTx::new(txn))
}

fn commit<E: From<StoreError>>(tx: WriteTx, hooks: &Hooks<'_, E>) -> Result<(), E> {
    if let Err(e) = (hooks.before_commit)() {
        tx.into_inner().abort().map_err(StoreError::from)?;
        return Err(e);
    }
    tx.into_inner().commit().map_err(StoreError::from)?;
    Ok(())
}
