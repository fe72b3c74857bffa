//! The counters of one node's topics ([`crate::TopicStats`]).
//!
//! The two that every local publish bumps (published, delivered) are kept
//! per thread: each thread that counts holds its own [`Tally`] for the hub,
//! written by that thread alone with a plain load and store (no locked
//! read-modify-write on the publish path: on one thread of a local node
//! those cost about as much as the rest of a publish beyond its tell), and
//! a reader sums the tallies. The tally of a thread that ended is folded
//! into `ended` when the next thread registers one. The rare counters
//! (lagged, dropped, undecodable, refused) are plain shared atomics.
//! Measured against one relaxed `fetch_add` per counter (two per
//! publish): a local publish to one subscriber made 0.93× a tell's rate
//! with the tallies and 0.87× with the `fetch_add`s (medians of 8
//! alternated runs; docs/BENCHMARKS.md, "A local publish reads its routes
//! from its thread's cache").

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;

/// One thread's counts for one hub: only that thread writes them.
#[derive(Debug, Default)]
struct Tally {
    published: AtomicU64,
    delivered: AtomicU64,
}

impl Tally {
    /// Adds to the counts; the owning thread only (a load and a store).
    #[inline]
    fn add_owned(&self, published: u64, delivered: u64) {
        let p = self.published.load(Relaxed).wrapping_add(published);
        self.published.store(p, Relaxed);
        let d = self.delivered.load(Relaxed).wrapping_add(delivered);
        self.delivered.store(d, Relaxed);
    }

    /// Adds to the counts from any thread.
    fn add_shared(&self, published: u64, delivered: u64) {
        self.published.fetch_add(published, Relaxed);
        self.delivered.fetch_add(delivered, Relaxed);
    }
}

/// Ids of counters, so that a thread's tally names its hub (an address
/// could be reused by a later hub).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's tallies, by counters id, the one used last first.
    static TALLIES: RefCell<Vec<(u64, Arc<Tally>)>> = const { RefCell::new(Vec::new()) };
}

/// Counters of the topics of one node.
#[derive(Debug)]
pub(crate) struct TopicCounters {
    id: u64,
    /// Every live thread's tally for this hub (and those of ended threads
    /// not folded in yet).
    tallies: Mutex<Vec<Arc<Tally>>>,
    /// Counts of the threads that ended, and those made while a thread's
    /// tallies were unavailable (during its exit).
    ended: Tally,
    /// Events a local subscriber missed (its queue or mailbox was full).
    pub(crate) lagged: AtomicU64,
    /// Copies to another node refused (its connection was full or down).
    pub(crate) remote_dropped: AtomicU64,
    /// Events from another node that did not decode here.
    pub(crate) undecodable: AtomicU64,
    /// `Topics` frames from other nodes refused: a malformed group
    /// membership (`registry::check_group_ads`).
    pub(crate) refused_ads: AtomicU64,
}

impl Default for TopicCounters {
    fn default() -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Relaxed),
            tallies: Mutex::default(),
            ended: Tally::default(),
            lagged: AtomicU64::new(0),
            remote_dropped: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            refused_ads: AtomicU64::new(0),
        }
    }
}

impl TopicCounters {
    /// Counts `published` events published on this node and `delivered`
    /// handed to a subscriber on this node.
    #[inline]
    pub(crate) fn add(&self, published: u64, delivered: u64) {
        let counted = TALLIES
            .try_with(|t| {
                let Ok(mut t) = t.try_borrow_mut() else {
                    return false;
                };
                match t.first() {
                    Some((id, tally)) if *id == self.id => tally.add_owned(published, delivered),
                    _ => self.add_new(&mut t, published, delivered),
                }
                true
            })
            .unwrap_or(false);
        if !counted {
            self.ended.add_shared(published, delivered);
        }
    }

    /// Counts one event handed to a subscriber on this node.
    #[inline]
    pub(crate) fn delivered(&self, n: u64) {
        self.add(0, n);
    }

    /// [`add`](Self::add) when this hub's tally is not the thread's first:
    /// moves it first, registering a new one if the thread has none.
    #[cold]
    #[inline(never)]
    fn add_new(&self, t: &mut Vec<(u64, Arc<Tally>)>, published: u64, delivered: u64) {
        let i = match t.iter().position(|(id, _)| *id == self.id) {
            Some(i) => i,
            None => {
                // The tallies of hubs that are gone (this thread holds the
                // last reference) are forgotten.
                t.retain(|(_, tally)| Arc::strong_count(tally) > 1);
                let tally = Arc::new(Tally::default());
                self.register(tally.clone());
                t.push((self.id, tally));
                t.len() - 1
            }
        };
        t.swap(0, i);
        t[0].1.add_owned(published, delivered);
    }

    /// Adds a thread's tally, folding in those of threads that ended.
    fn register(&self, tally: Arc<Tally>) {
        let mut all = self.tallies.lock();
        all.retain_mut(|t| match Arc::get_mut(t) {
            Some(ended) => {
                self.ended
                    .add_shared(*ended.published.get_mut(), *ended.delivered.get_mut());
                false
            }
            None => true,
        });
        all.push(tally);
    }

    fn sum(&self, count: impl Fn(&Tally) -> &AtomicU64) -> u64 {
        let all = self.tallies.lock();
        all.iter().fold(count(&self.ended).load(Relaxed), |sum, t| {
            sum.wrapping_add(count(t).load(Relaxed))
        })
    }

    /// Events published on this node.
    pub(crate) fn published_total(&self) -> u64 {
        self.sum(|t| &t.published)
    }

    /// Events handed to a subscriber on this node.
    pub(crate) fn delivered_total(&self) -> u64 {
        self.sum(|t| &t.delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_every_thread_are_summed_and_survive_it() {
        let c = Arc::new(TopicCounters::default());
        c.add(1, 2);
        let other = Arc::new(TopicCounters::default());
        other.add(10, 10);
        c.delivered(1);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(1, 3);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a counting thread panicked");
        }
        assert_eq!(c.published_total(), 4001);
        assert_eq!(c.delivered_total(), 12_003);
        // A new thread's tally folds in those of the threads that ended.
        let c2 = c.clone();
        std::thread::spawn(move || c2.add(1, 1))
            .join()
            .expect("a counting thread panicked");
        assert!(c.tallies.lock().len() <= 2, "ended threads' tallies folded");
        assert_eq!(c.published_total(), 4002);
        assert_eq!(c.delivered_total(), 12_004);
        assert_eq!((other.published_total(), other.delivered_total()), (10, 10));
    }

    #[test]
    fn a_gone_hub_s_tally_is_forgotten_by_the_thread() {
        let gone = TopicCounters::default();
        let gone_id = gone.id;
        gone.add(1, 1);
        drop(gone);
        let c = TopicCounters::default();
        c.add(1, 0);
        TALLIES.with(|t| {
            let t = t.borrow();
            assert!(t.iter().all(|(id, _)| *id != gone_id));
            assert_eq!(t.first().map(|(id, _)| *id), Some(c.id));
        });
        assert_eq!(c.published_total(), 1);
    }
}
