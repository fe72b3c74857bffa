//! Draining: on a graceful stop the gateway stops taking new calls (503
//! `unavailable`) while the calls in flight finish, and the stopping code
//! waits for them (bounded) before the node leaves its cluster.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Calls in flight and whether new ones are refused.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Woken when draining starts (long-lived streams end then).
    stopping: Notify,
}

/// One call in flight; dropping it ends the call.
#[derive(Debug)]
pub(crate) struct CallGuard<'a> {
    drain: &'a Drain,
}

impl Drain {
    /// Counts a new call, or refuses it (`None`) once draining.
    pub(crate) fn enter(&self) -> Option<CallGuard<'_>> {
        // Count first, then check: a `wait_idle` that set the flag after
        // this increment sees the call; one that set it before is seen here.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = CallGuard { drain: self };
        if self.draining.load(Ordering::SeqCst) {
            return None;
        }
        Some(guard)
    }

    /// Whether new calls are refused.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Refuses new calls from now on.
    pub(crate) fn start(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.stopping.notify_waiters();
    }

    /// Resolves once draining has started (a server-sent-events stream
    /// ends then, so that a graceful stop does not wait for its client).
    pub(crate) async fn stopping(&self) {
        let notified = self.stopping.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_draining() {
            return;
        }
        notified.await;
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Refuses new calls and waits until none is in flight, at most `bound`.
    /// Returns whether every call finished.
    pub(crate) async fn wait_idle(&self, bound: Duration) -> bool {
        self.start();
        let idle = async {
            loop {
                let notified = self.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(bound, idle).await.is_ok()
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.drain.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.drain.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_refuses_new_calls_and_waits_for_those_in_flight() {
        let drain = std::sync::Arc::new(Drain::default());
        let call = drain.enter();
        assert!(call.is_some() && !drain.is_draining());
        let waiter = {
            let drain = drain.clone();
            tokio::spawn(async move { drain.wait_idle(Duration::from_secs(10)).await })
        };
        until(|| drain.is_draining()).await;
        assert!(drain.enter().is_none(), "a call was taken while draining");
        assert_eq!(drain.in_flight(), 1);
        drop(call);
        assert!(
            waiter.await.unwrap(),
            "wait_idle gave up with nothing in flight"
        );
        assert_eq!(drain.in_flight(), 0);
        assert!(drain.enter().is_none(), "draining does not end");
    }

    #[tokio::test]
    async fn wait_idle_is_bounded() {
        let drain = Drain::default();
        let _stuck = drain.enter();
        assert!(!drain.wait_idle(Duration::from_millis(20)).await);
        assert_eq!(drain.in_flight(), 1);
    }

    /// Polls `f` until it holds (the flag is set by another task).
    async fn until(f: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if f() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("condition never held");
    }
}
