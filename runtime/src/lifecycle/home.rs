//! Which node arbiter the current thread is: the key of locality-aware
//! routing (`ServiceSpec::prefer_local`).
//!
//! Every arbiter a node starts gets a process-unique id (never 0) and sets
//! it in its thread's [`current`] before it runs anything; an instance
//! records the id of the arbiter it was placed on. A caller whose
//! [`current`] matches an instance's id runs on that instance's thread, so
//! an ask to it never crosses threads. Threads that are no node's arbiter
//! (and the thread of a local node) read 0.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static HOME: Cell<u32> = const { Cell::new(0) };
}

/// A fresh arbiter id (process-unique, never 0).
pub(crate) fn new_arbiter_id() -> u32 {
    loop {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// Marks the calling thread as the arbiter `id`.
pub(crate) fn set_current(id: u32) {
    HOME.with(|h| h.set(id));
}

/// The calling thread's arbiter id, 0 when it is no node's arbiter.
#[inline]
pub(crate) fn current() -> u32 {
    HOME.try_with(Cell::get).unwrap_or(0)
}
