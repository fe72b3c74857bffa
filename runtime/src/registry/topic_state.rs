//! One topic's routes on a node, and the calling thread's cache of them.
//!
//! The routes are swapped whole on every change (`arc-swap`), each with a
//! version drawn from one counter of the process, so that a version names
//! one routes value of one topic. A publish reads them through the
//! calling thread's cache ([`TopicState::with_routes`]): a hit, while the
//! topic's version is the cached routes' own, costs a plain load of the
//! version and no atomic read-modify-write (an `arc-swap` load and its
//! guard cost two, about as much as the rest of a local publish beyond its
//! tell). A miss loads the routes and keeps their `Arc` in the thread's
//! way for the topic, replacing what the way held. A cached value that is
//! no longer the topic's routes is never used, but it stays in its way
//! (holding its subscribers' sinks, not their subscriptions) until the
//! thread publishes to a topic of that way again or ends: the tell's own
//! sender cache keeps instances the same way.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::topics::Routes;
use crate::message::mix64;

/// Ways of the per-thread cache (a power of two).
const WAYS: usize = 16;

/// Versions of routes, unique in the process (0 is never drawn).
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// This thread's routes, one topic per way (by the topic's way).
    static CACHE: RefCell<[Option<Arc<Routes>>; WAYS]> =
        const { RefCell::new([const { None }; WAYS]) };
}

/// One topic's routes.
#[derive(Debug)]
pub(crate) struct TopicState {
    routes: ArcSwap<Routes>,
    /// The version of `routes`, stored after them.
    version: AtomicU64,
    /// This topic's way in each thread's cache.
    way: usize,
    /// Spreads events without a key over a group's members.
    seq: AtomicU64,
}

impl Default for TopicState {
    fn default() -> Self {
        let version = next_version();
        Self {
            routes: ArcSwap::from_pointee(Routes {
                version,
                ..Routes::default()
            }),
            version: AtomicU64::new(version),
            way: (mix64(version) as usize) % WAYS,
            seq: AtomicU64::new(0),
        }
    }
}

impl TopicState {
    /// A key for an event that has none (the next of a sequence, mixed).
    pub(crate) fn next_key(&self) -> u64 {
        mix64(self.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// The routes now.
    pub(crate) fn routes(&self) -> arc_swap::Guard<Arc<Routes>> {
        self.routes.load()
    }

    /// Replaces the routes (the caller serialises replacements: the hub's
    /// lock). A thread that reads the version stored here after this
    /// returns reads these routes or later ones.
    pub(crate) fn set_routes(&self, routes: Routes) {
        let version = next_version();
        self.routes.store(Arc::new(Routes { version, ..routes }));
        self.version.store(version, Ordering::Release);
    }

    /// Runs `f` with the routes now, read through the calling thread's
    /// cache (see the module's documentation); with a plain `arc-swap`
    /// load when the cache is unavailable (a publish from within a
    /// publish, or during the thread's exit).
    #[inline]
    pub(crate) fn with_routes<R>(&self, f: impl FnOnce(&Routes) -> R) -> R {
        let version = self.version.load(Ordering::Acquire);
        let mut f = Some(f);
        let done = CACHE.try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let way = &mut cache[self.way];
            let routes = match way {
                Some(r) if r.version == version => r,
                _ => way.insert(self.routes.load_full()),
            };
            Some(f.take()?(routes))
        });
        match (done, f) {
            (Ok(Some(r)), _) => r,
            (_, Some(f)) => f(&self.routes.load()),
            (_, None) => unreachable!("the routes' closure ran but gave nothing back"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(s: &TopicState) -> u64 {
        s.with_routes(|r| r.version)
    }

    #[test]
    fn a_thread_reads_the_routes_set_after_it_cached_older_ones() {
        let s = TopicState::default();
        let first = version(&s);
        assert_eq!(first, s.routes().version);
        assert_eq!(version(&s), first, "a hit gives the same routes");
        s.set_routes(Routes::default());
        let second = s.routes().version;
        assert_ne!(second, first);
        assert_eq!(version(&s), second, "the cached routes were stale");
        // Another thread's change is seen here too.
        std::thread::scope(|t| {
            t.spawn(|| s.set_routes(Routes::default()));
        });
        assert_eq!(version(&s), s.routes().version);
        assert_ne!(version(&s), second);
    }

    #[test]
    fn topics_that_share_a_way_never_read_each_other_s_routes() {
        let states: Vec<TopicState> = (0..4 * WAYS).map(|_| TopicState::default()).collect();
        for _ in 0..2 {
            for s in &states {
                assert_eq!(version(s), s.routes().version);
            }
        }
        // A state made where a dropped one was (its versions are new).
        let old = TopicState::default();
        let old_version = version(&old);
        drop(old);
        let new = TopicState::default();
        assert_ne!(version(&new), old_version);
        assert_eq!(version(&new), new.routes().version);
    }

    #[test]
    fn a_read_within_a_read_loads_the_routes_itself() {
        let a = TopicState::default();
        let b = TopicState::default();
        let (outer, inner) = a.with_routes(|ra| (ra.version, version(&b)));
        assert_eq!(outer, a.routes().version);
        assert_eq!(inner, b.routes().version);
    }
}
