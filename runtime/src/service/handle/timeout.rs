//! The deadline of an ask: no tokio timer per call, a registration with
//! the node's deadline sweeper (`crate::deadline`) while the ask waits.

use std::task::{Context, Poll};
use std::time::Duration;

use super::ServiceRef;
use crate::deadline::{Deadlines, Ticket, TicketStatus};
use crate::error::CallError;

impl ServiceRef {
    /// A pending ask: time out if the deadline passed, else make sure the
    /// sweeper will wake it at the deadline.
    #[inline]
    pub(super) fn pending_or_timeout<T>(
        &self,
        ticket: &mut TicketGuard<'_>,
        deadline_ms: &mut u64,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, CallError>> {
        // First wait (the common case): register, unless already late.
        if ticket.ticket.is_none() {
            // The deadline was taken from the coarse clock, which lags real
            // time by up to a sweep (more on a loaded machine); it must be
            // pushed back by that lag so that the ask never times out early.
            let clock = ticket.deadlines.clock();
            let coarse = clock.now_ms();
            if coarse >= *deadline_ms {
                return Poll::Ready(Err(self.timed_out(timeout)));
            }
            // On a thread with its own wheel, the wheel's next sweep does
            // that: no real clock read on a same-thread ask's path
            // (docs/BENCHMARKS.md, "The local ask without a clock read").
            if let Some(t) = ticket
                .deadlines
                .register_coarse(*deadline_ms, coarse, cx.waker())
            {
                ticket.ticket = Some(t);
                ticket.settle_from = Some(coarse);
                return Poll::Pending;
            }
            // Elsewhere only an ask that waits pays for reading the real clock.
            // (Late by the real clock means late by the coarse one once
            // pushed back: the check above is the only one needed.)
            let real = clock.real_ms();
            *deadline_ms = deadline_ms.saturating_add(real.saturating_sub(coarse));
            ticket.ticket = Some(ticket.deadlines.register(*deadline_ms, cx.waker()));
            return Poll::Pending;
        }
        self.pending_again(ticket, deadline_ms, timeout, cx)
    }

    /// A later wait: timed out if the sweeper fired the registration or the
    /// deadline passed; else the registration follows the task's waker (a
    /// lost one, after the future moved threads, is made again).
    #[cold]
    fn pending_again<T>(
        &self,
        ticket: &mut TicketGuard<'_>,
        deadline_ms: &mut u64,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, CallError>> {
        let deadlines = ticket.deadlines;
        if let Some(from) = ticket.settle_from.take() {
            // A deadline left for the wheel to correct: this future's own
            // copy is corrected here (now is later than the registration,
            // so it errs late, never early).
            let real = deadlines.clock().real_ms();
            *deadline_ms = deadline_ms.saturating_add(real.saturating_sub(from));
        }
        let deadline_ms = *deadline_ms;
        let status = ticket.ticket.map(|t| deadlines.status(t));
        if status == Some(TicketStatus::Lost) {
            ticket.ticket = None;
        }
        if status == Some(TicketStatus::Fired) || deadlines.clock().now_ms() >= deadline_ms {
            ticket.cancel();
            return Poll::Ready(Err(self.timed_out(timeout)));
        }
        match ticket.ticket {
            Some(t) => deadlines.update(t, cx.waker()),
            None => ticket.ticket = Some(deadlines.register(deadline_ms, cx.waker())),
        }
        Poll::Pending
    }
}

/// Cancels a deadline registration when the ask completes or is dropped.
pub(super) struct TicketGuard<'a> {
    pub(super) deadlines: &'a Deadlines,
    pub(super) ticket: Option<Ticket>,
    /// The coarse time at which `ticket` was registered with a deadline
    /// its thread's wheel corrects ([`Deadlines::register_coarse`]);
    /// `None` when the deadline needs no correction.
    pub(super) settle_from: Option<u64>,
}

impl<'a> TicketGuard<'a> {
    /// No registration yet.
    #[inline]
    pub(super) fn new(deadlines: &'a Deadlines) -> Self {
        Self {
            deadlines,
            ticket: None,
            settle_from: None,
        }
    }

    #[inline]
    pub(super) fn cancel(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.deadlines.cancel(t);
        }
    }
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.deadlines.cancel(t);
        }
    }
}
