//! Handing a run of launches to other arbiters in batches.
//!
//! A supervisor starting many children at once (a service's `instances(n)`)
//! places them round-robin over the node's arbiters. Handed one by one,
//! each start on another arbiter is a job in that arbiter's queue and,
//! since the arbiter builds an actor faster than the supervisor launches
//! the next, usually a wake of a parked thread (an eventfd write and a
//! context switch) per actor. Inside a [`LaunchBatch`] the jobs for each
//! arbiter are queued as one job per [`LaunchBatch::SIZE`] actors, in
//! order, and the rest when the batch ends.

use std::cell::RefCell;
use std::sync::Arc;

use actix::ArbiterHandle;

use super::exit::ExitReason;
use super::launch::OnExit;

/// One launch waiting to be handed to its arbiter: the job, and whom to
/// tell if the arbiter is gone.
struct Job {
    run: Box<dyn FnOnce() + Send>,
    on_exit: Option<Arc<dyn OnExit>>,
}

/// The jobs gathered for one arbiter.
struct Pending {
    id: u32,
    arbiter: ArbiterHandle,
    jobs: Vec<Job>,
}

thread_local! {
    /// The open batch of this thread, if any.
    static BATCH: RefCell<Option<Vec<Pending>>> = const { RefCell::new(None) };
}

/// While alive, launches on this thread to other arbiters are gathered and
/// handed over in batches; dropping it hands over what is left.
#[must_use = "the batch hands its jobs over when dropped"]
pub(crate) struct LaunchBatch {
    /// Whether this guard opened the thread's batch (a nested one does
    /// nothing).
    opened: bool,
}

impl LaunchBatch {
    /// Jobs per hand-over.
    pub(crate) const SIZE: usize = 64;

    /// Opens this thread's batch (or joins the one already open).
    pub(crate) fn begin() -> Self {
        let opened = BATCH.with(|b| {
            let mut b = b.borrow_mut();
            if b.is_some() {
                false
            } else {
                *b = Some(Vec::new());
                true
            }
        });
        Self { opened }
    }
}

impl Drop for LaunchBatch {
    fn drop(&mut self) {
        if !self.opened {
            return;
        }
        let pending = BATCH.with(|b| b.borrow_mut().take()).unwrap_or_default();
        for p in pending {
            hand_over(&p.arbiter, p.jobs);
        }
    }
}

/// Whether this thread has a batch open.
pub(super) fn is_open() -> bool {
    BATCH.with(|b| b.borrow().is_some())
}

/// Adds `run` for the arbiter `id` to this thread's open batch (`on_exit`:
/// whom to tell if the arbiter is gone), handing that arbiter's jobs over
/// once there are [`LaunchBatch::SIZE`]. Hands it over at once when no
/// batch is open.
pub(super) fn gather(
    id: u32,
    arbiter: &ArbiterHandle,
    run: Box<dyn FnOnce() + Send>,
    on_exit: Option<Arc<dyn OnExit>>,
) {
    let job = Job { run, on_exit };
    let full = BATCH.with(|b| {
        let mut b = b.borrow_mut();
        let Some(pending) = b.as_mut() else {
            return Some(vec![job]);
        };
        let i = match pending.iter().position(|p| p.id == id) {
            Some(i) => i,
            None => {
                pending.push(Pending {
                    id,
                    arbiter: arbiter.clone(),
                    jobs: Vec::with_capacity(LaunchBatch::SIZE),
                });
                pending.len() - 1
            }
        };
        let p = &mut pending[i];
        p.jobs.push(job);
        (p.jobs.len() >= LaunchBatch::SIZE)
            .then(|| std::mem::replace(&mut p.jobs, Vec::with_capacity(LaunchBatch::SIZE)))
    });
    if let Some(jobs) = full {
        hand_over(arbiter, jobs);
    }
}

/// Queues `jobs` to `arbiter` as one job that runs them in order; if the
/// arbiter is gone, each launch is reported failed, as a launch on its own
/// would be.
fn hand_over(arbiter: &ArbiterHandle, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    let handed = Handed(jobs);
    // A refused job is dropped at once, so `Handed` reports its launches.
    arbiter.spawn_fn(move || handed.run());
}

/// Launches handed to an arbiter as one job. Dropped before they ran (the
/// arbiter refused the job, or dropped it unrun), it reports each launch
/// failed. This replaces a list of whom to tell kept beside
/// every batch: one allocation fewer per batch on the launching thread,
/// whose long-lived records it would have left holes among.
struct Handed(Vec<Job>);

impl Handed {
    fn run(mut self) {
        for j in std::mem::take(&mut self.0) {
            (j.run)();
        }
    }
}

impl Drop for Handed {
    fn drop(&mut self) {
        for j in self.0.drain(..) {
            match j.on_exit {
                Some(n) => n.exited(ExitReason::StartFailed("the arbiter is gone".into())),
                None => tracing::error!("a parentless actor did not start: its arbiter is gone"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix::{Actor, Arbiter, Context};
    use parking_lot::Mutex;

    use super::super::launch::{launch_with_end, KillSwitch, OnExit, Placement};
    use super::super::ExitReason;
    use super::LaunchBatch;

    struct Small;
    impl Actor for Small {
        type Context = Context<Self>;
    }

    /// Records the exits reported to it.
    #[derive(Default)]
    struct Told {
        exits: Mutex<Vec<ExitReason>>,
        kill: KillSwitch,
    }

    impl OnExit for Told {
        fn exited(&self, reason: ExitReason) {
            self.exits.lock().push(reason);
        }
        fn kill_switch(&self) -> &KillSwitch {
            &self.kill
        }
    }

    /// Launches on `placement` an actor whose factory records `i` in `built`.
    fn launch_recorded(
        placement: &Placement,
        i: usize,
        built: &Arc<Mutex<Vec<usize>>>,
        told: &Arc<Told>,
    ) -> bool {
        let built = built.clone();
        let (_tx, rx) = actix::dev::channel::channel::<Small>(16);
        launch_with_end(
            placement,
            move || {
                built.lock().push(i);
                Ok(Small)
            },
            rx,
            Some(told.clone() as Arc<dyn OnExit>),
        )
    }

    /// Inside a batch, launches to another arbiter wait until a batch is
    /// full or the batch ends, then run on that arbiter in launch order.
    #[test]
    fn a_batch_hands_its_launches_over_in_order() {
        actix::System::new().block_on(async {
            let there = Arbiter::new();
            let placement = Placement::Arbiter(there.handle(), 7);
            let built = Arc::new(Mutex::new(Vec::new()));
            let told = Arc::new(Told::default());
            let n = 2 * LaunchBatch::SIZE + 3;
            let batch = LaunchBatch::begin();
            for i in 0..LaunchBatch::SIZE - 1 {
                assert!(launch_recorded(&placement, i, &built, &told));
            }
            assert!(
                built.lock().is_empty(),
                "a launch ran before its batch was handed over"
            );
            for i in LaunchBatch::SIZE - 1..n {
                assert!(launch_recorded(&placement, i, &built, &told));
            }
            drop(batch);
            // The arbiter runs jobs in order: once this one ran, every
            // launch handed over before it has.
            let (tx, rx) = tokio::sync::oneshot::channel();
            assert!(there.spawn_fn(move || {
                let _ = tx.send(());
            }));
            rx.await.expect("the arbiter ran the marker");
            assert_eq!(*built.lock(), (0..n).collect::<Vec<_>>());
            // (Each actor stops once built: nothing holds its address.)
            assert!(!told
                .exits
                .lock()
                .iter()
                .any(|r| matches!(r, ExitReason::StartFailed(_))));
            there.stop();
            let _ = there.join();
        });
    }

    /// A batch handed to an arbiter that is gone reports each of its
    /// launches failed, as a launch on its own would have been.
    #[test]
    fn a_batch_for_a_gone_arbiter_reports_each_launch_failed() {
        actix::System::new().block_on(async {
            let there = Arbiter::new();
            let placement = Placement::Arbiter(there.handle(), 8);
            there.stop();
            let _ = there.join();
            let built = Arc::new(Mutex::new(Vec::new()));
            let told = Arc::new(Told::default());
            let batch = LaunchBatch::begin();
            for i in 0..3 {
                assert!(launch_recorded(&placement, i, &built, &told));
            }
            drop(batch);
            assert!(built.lock().is_empty());
            let exits = told.exits.lock().clone();
            assert_eq!(exits.len(), 3, "{exits:?}");
            assert!(exits
                .iter()
                .all(|r| matches!(r, ExitReason::StartFailed(m) if m.contains("arbiter is gone"))));
        });
    }
}
