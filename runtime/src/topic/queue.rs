//! A subscriber's bounded queue: the publisher pushes without waiting; a
//! full queue drops the event and the subscriber is told, at the place of
//! the gap, how many it missed.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicItem<T> {
    /// One event, in the order its publisher published it.
    Event(T),
    /// The subscriber fell behind its bound: this many events were dropped
    /// here, between the events before and after this item.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

#[derive(Debug)]
pub(crate) struct Queue<T> {
    items: Mutex<VecDeque<TopicItem<T>>>,
    /// Events held (a `Lagged` marker does not count).
    bound: usize,
    notify: Notify,
}

impl<T> Queue<T> {
    pub(crate) fn new(bound: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            bound: bound.max(1),
            notify: Notify::new(),
        }
    }

    /// Queues `item`, or counts it missed when the queue is full; `false`
    /// when it was dropped.
    pub(crate) fn push(&self, item: T) -> bool {
        let accepted = {
            let mut q = self.items.lock();
            // A `Lagged` marker is only ever the last item: nothing is
            // queued behind a gap until the subscriber has taken it.
            let gap = matches!(q.back(), Some(TopicItem::Lagged { .. }));
            if !gap && q.len() < self.bound {
                q.push_back(TopicItem::Event(item));
                true
            } else {
                match q.back_mut() {
                    Some(TopicItem::Lagged { missed }) => *missed += 1,
                    _ => q.push_back(TopicItem::Lagged { missed: 1 }),
                }
                false
            }
        };
        self.notify.notify_one();
        accepted
    }

    /// The next item without waiting.
    pub(crate) fn try_pop(&self) -> Option<TopicItem<T>> {
        self.items.lock().pop_front()
    }

    /// The next item, waiting for one.
    pub(crate) async fn pop(&self) -> TopicItem<T> {
        loop {
            if let Some(i) = self.try_pop() {
                return i;
            }
            // A push between the check and here leaves a permit: no
            // wake-up is lost.
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_reports_the_gap_where_it_happened_then_resumes() {
        let q = Queue::new(2);
        assert!(q.push(1));
        assert!(q.push(2));
        assert!(!q.push(3));
        assert!(!q.push(4));
        assert_eq!(q.try_pop(), Some(TopicItem::Event(1)));
        // Room again, but the gap is reported before anything newer.
        assert!(!q.push(5));
        assert_eq!(q.try_pop(), Some(TopicItem::Event(2)));
        assert_eq!(q.try_pop(), Some(TopicItem::Lagged { missed: 3 }));
        assert!(q.push(6));
        assert_eq!(q.try_pop(), Some(TopicItem::Event(6)));
        assert_eq!(q.try_pop(), None);
    }
}
