//! Starting an actor so that its supervisor learns how it ended.
//!
//! actix's own `Supervisor` restarts only after `ctx.stop()`, never after a
//! panic, and keeps the old state. msa instead owns the actor's context
//! future: it builds the actor with the factory on the target thread, runs
//! the future under `catch_unwind` (and an abort switch for kills), lets the
//! context's drop run `stopping`/`stopped`, and only then tells the
//! supervisor, with the reason.

use std::panic::{catch_unwind, AssertUnwindSafe};

use actix::dev::channel::AddressReceiver;
use actix::{Actor, Addr, ArbiterHandle, Context};
use futures_util::future::{AbortRegistration, Abortable};
use futures_util::FutureExt;

use super::exit::{panic_message, ExitReason};
use super::supervisor::{ChildExited, ChildReady, Supervisor};

/// Where an actor runs.
#[derive(Debug, Clone)]
pub(crate) enum Placement {
    /// On this arbiter's thread.
    Arbiter(ArbiterHandle),
    /// On the current thread's `LocalSet` (the caller is on it).
    Local,
}

/// Tells a supervisor that child `child` (run `generation`) exited.
#[derive(Debug, Clone)]
pub(crate) struct ExitNotice {
    pub(crate) sup: Addr<Supervisor>,
    pub(crate) child: usize,
    pub(crate) generation: u64,
}

impl ExitNotice {
    pub(crate) fn send(self, reason: ExitReason) {
        self.sup.do_send(ChildExited {
            child: self.child,
            generation: self.generation,
            reason,
        });
    }
}

/// Tells a supervisor that child `child` (run `generation`) is up.
#[derive(Debug, Clone)]
pub(crate) struct ReadyNotice {
    pub(crate) sup: Option<Addr<Supervisor>>,
    pub(crate) child: usize,
    pub(crate) generation: u64,
}

impl ReadyNotice {
    pub(crate) fn notify(&self) {
        if let Some(sup) = &self.sup {
            sup.do_send(ChildReady {
                child: self.child,
                generation: self.generation,
            });
        }
    }
}

/// Runs `make()` on `placement`'s thread and the actor it returns on that
/// thread's event loop; reports the exit to `on_exit`. Returns `false` if the
/// arbiter is gone (the exit is then reported at once).
pub(crate) fn launch<A, F>(
    placement: &Placement,
    make: F,
    rx: AddressReceiver<A>,
    abort: AbortRegistration,
    on_exit: Option<ExitNotice>,
) -> bool
where
    A: Actor<Context = Context<A>>,
    F: FnOnce() -> A + Send + 'static,
{
    let job = move || run(make, rx, abort, on_exit);
    match placement {
        Placement::Local => {
            job();
            true
        }
        Placement::Arbiter(h) => h.spawn_fn(job),
    }
}

fn run<A, F>(make: F, rx: AddressReceiver<A>, abort: AbortRegistration, on_exit: Option<ExitNotice>)
where
    A: Actor<Context = Context<A>>,
    F: FnOnce() -> A,
{
    let actor = match catch_unwind(AssertUnwindSafe(make)) {
        Ok(a) => a,
        Err(payload) => {
            let reason = ExitReason::StartFailed(panic_message(&*payload));
            match on_exit {
                Some(n) => n.send(reason),
                None => tracing::error!(%reason, "a parentless actor failed to start"),
            }
            return;
        }
    };
    let fut = Context::with_receiver(rx).into_future(actor);
    actix_rt::spawn(async move {
        let mut fut = Abortable::new(fut, abort);
        let outcome = AssertUnwindSafe(&mut fut).catch_unwind().await;
        let reason = match outcome {
            Ok(Ok(())) => ExitReason::Stopped,
            Ok(Err(_aborted)) => ExitReason::Killed,
            Err(payload) => ExitReason::Panicked(panic_message(&*payload)),
        };
        // Dropping an unfinished context runs `stopping`/`stopped` and closes the
        // mailbox, failing what was queued; a panic there must not lose the notice.
        if catch_unwind(AssertUnwindSafe(move || drop(fut))).is_err() {
            tracing::warn!("an actor panicked in stopping/stopped after it exited");
        }
        match on_exit {
            Some(n) => n.send(reason),
            None => tracing::debug!(%reason, "a parentless actor exited"),
        }
    });
}
