//! Waiting for room in a full mailbox.
//!
//! actix's channel parks a sender that filled the mailbox, but its public
//! `send` cannot register a waker for the moment it is unparked (its own
//! request future returns `Pending` with no waker registered). So an ask that finds the
//! mailbox full registers with its slot's room signal
//! ([`ServiceEntry::room`]): every message the instance takes wakes one
//! waiter (after actix unparked the sender), and a change of the slot's
//! instance wakes them all, so an ask on a dead instance fails at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::futures::OwnedNotified;

use crate::registry::ServiceEntry;

/// One ask registered as waiting for room in a slot's mailbox; counted in
/// the slot's waiters until dropped.
pub(crate) struct RoomWaiter {
    entry: Arc<ServiceEntry>,
    slot: usize,
    signal: Option<Pin<Box<OwnedNotified>>>,
}

impl RoomWaiter {
    /// Counts a new waiter on `slot` (`None` if there is no such slot).
    pub(crate) fn new(entry: Arc<ServiceEntry>, slot: usize) -> Option<Self> {
        if !entry.room_waiter_joined(slot) {
            return None;
        }
        Some(Self {
            entry,
            slot,
            signal: None,
        })
    }

    /// Whether the waiter listens for the next signal.
    pub(crate) fn is_armed(&self) -> bool {
        self.signal.is_some()
    }

    /// Listens for the next signal. The caller then tries to send once
    /// more, so room made just before this is not missed.
    pub(crate) fn arm(&mut self) {
        if let Some(notify) = self.entry.room(self.slot) {
            let mut signal = Box::pin(notify.clone().notified_owned());
            signal.as_mut().enable();
            self.signal = Some(signal);
        }
    }

    /// The entry whose slot this waiter waits on.
    pub(crate) fn entry(&self) -> &ServiceEntry {
        &self.entry
    }

    /// Ready once signalled (then disarmed).
    pub(crate) fn poll_signal(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.signal.as_mut() {
            Some(s) => {
                std::task::ready!(s.as_mut().poll(cx));
                self.signal = None;
                Poll::Ready(())
            }
            None => Poll::Ready(()),
        }
    }
}

impl Drop for RoomWaiter {
    fn drop(&mut self) {
        self.entry.room_waiter_left(self.slot);
    }
}
