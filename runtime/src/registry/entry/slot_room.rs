//! Where the asks waiting for room in a slot's mailbox wait, and how a
//! message taken wakes one of them (the entry's side of `service/room.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::ServiceEntry;

/// Where the asks waiting for room in one slot's mailbox wait. Kept apart
/// from the slot's handled counter: every message taken writes that
/// counter, and these are read only when the entry has waiters (issue 12:
/// with both in one 32-byte record, round-robin over 10,000 instances read
/// a cold line every two messages; 8-byte counters share a line by eight).
#[derive(Debug, Default)]
pub(super) struct SlotRoom {
    /// Asks waiting for room in the mailbox (actix's channel parks a full
    /// sender without a way to wait for it, so msa keeps its own signal).
    waiters: AtomicUsize,
    /// Signalled when a message is taken, and to all when the slot changes.
    /// Made when the first ask waits (most slots never have one: 100,000
    /// instances would otherwise cost an allocation each).
    room: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
}

impl ServiceEntry {
    /// Where an ask waits for room in `slot`'s mailbox: the signal, made at
    /// the first call.
    pub(crate) fn room(&self, slot: usize) -> Option<&Arc<tokio::sync::Notify>> {
        self.slot_rooms
            .get(slot)
            .map(|c| c.room.get_or_init(Default::default))
    }

    /// Counts one more ask waiting for room in `slot` (its slot first, then
    /// the entry's sum, which every message taken reads); `false` if there
    /// is no such slot.
    pub(crate) fn room_waiter_joined(&self, slot: usize) -> bool {
        let Some(c) = self.slot_rooms.get(slot) else {
            return false;
        };
        c.waiters.fetch_add(1, Ordering::SeqCst);
        self.room_waiters.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Counts one ask fewer waiting for room in `slot`.
    pub(crate) fn room_waiter_left(&self, slot: usize) {
        if let Some(c) = self.slot_rooms.get(slot) {
            self.room_waiters.fetch_sub(1, Ordering::SeqCst);
            c.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The instance in `slot` changed: every ask waiting for room in the
    /// old one looks again (and fails if it is gone).
    pub(super) fn wake_room_waiters(&self, slot: usize) {
        if let Some(c) = self.slot_rooms.get(slot) {
            if let Some(room) = c.room.get() {
                room.notify_waiters();
            }
        }
    }

    /// Wakes one ask waiting for room in `slot`, if any waits there.
    #[cold]
    #[inline(never)]
    pub(super) fn notify_room(&self, slot: usize) {
        if let Some(c) = self.slot_rooms.get(slot) {
            if c.waiters.load(Ordering::SeqCst) != 0 {
                if let Some(room) = c.room.get() {
                    room.notify_one();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Waker};

    use super::ServiceEntry;

    /// A message taken wakes an ask waiting for room in its own slot, never
    /// one of another slot, and none once the waiter has left (the entry's
    /// sum of waiters gates the per-slot check).
    #[test]
    fn a_message_taken_wakes_a_waiter_of_its_own_slot_only() {
        let e = ServiceEntry::new(Arc::from("s"), Box::new([]), false, 2, "node");
        let room0 = e.room(0).cloned().expect("slot 0");
        let room1 = e.room(1).cloned().expect("slot 1");
        let mut cx = Context::from_waker(Waker::noop());

        assert!(e.room_waiter_joined(1));
        e.count_message(0);
        e.count_message(1);
        assert!(pin!(room1.notified()).poll(&mut cx).is_ready());
        assert!(pin!(room0.notified()).poll(&mut cx).is_pending());

        e.room_waiter_left(1);
        e.count_message(1);
        assert!(pin!(room1.notified()).poll(&mut cx).is_pending());
        assert_eq!((e.handled(0), e.handled(1)), (1, 2));
        assert!(!e.room_waiter_joined(2), "no slot 2");
    }
}
