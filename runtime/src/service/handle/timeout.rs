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
            // time by up to a sweep (more on a loaded machine); push it back
            // by that lag so that the ask never times out early. Only an ask
            // that waits pays for reading the real clock.
            let clock = ticket.deadlines.clock();
            let coarse = clock.now_ms();
            let real = clock.real_ms();
            *deadline_ms = deadline_ms.saturating_add(real.saturating_sub(coarse));
            if real >= *deadline_ms {
                return Poll::Ready(Err(self.timed_out(timeout)));
            }
            ticket.ticket = Some(ticket.deadlines.register(*deadline_ms, cx.waker()));
            return Poll::Pending;
        }
        self.pending_again(ticket, *deadline_ms, timeout, cx)
    }

    /// A later wait: timed out if the sweeper fired the registration or the
    /// deadline passed; else the registration follows the task's waker (a
    /// lost one, after the future moved threads, is made again).
    #[cold]
    fn pending_again<T>(
        &self,
        ticket: &mut TicketGuard<'_>,
        deadline_ms: u64,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, CallError>> {
        let deadlines = ticket.deadlines;
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
}

impl TicketGuard<'_> {
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
