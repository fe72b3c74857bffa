//! The batch room of an instance: how many messages the batches of remote
//! tells queued to it hold (`service/batch.rs`), kept within its mailbox
//! capacity.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Messages in the batches queued to one instance and not yet handled.
#[derive(Debug, Default)]
pub(crate) struct BatchRoom {
    queued: AtomicUsize,
}

impl BatchRoom {
    /// Reserves room for up to `want` messages within `capacity`: how many
    /// were reserved (0 when the batches queued fill it).
    pub(crate) fn reserve(&self, want: usize, capacity: usize) -> usize {
        let mut cur = self.queued.load(Ordering::Acquire);
        loop {
            let room = capacity.saturating_sub(cur).min(want);
            if room == 0 {
                return 0;
            }
            match self.queued.compare_exchange_weak(
                cur,
                cur + room,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return room,
                Err(now) => cur = now,
            }
        }
    }

    /// Gives back `n` reserved messages.
    pub(crate) fn release(&self, n: usize) {
        if n > 0 {
            self.queued.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Messages reserved or queued in batches now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}
