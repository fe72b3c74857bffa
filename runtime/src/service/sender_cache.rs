//! The calling thread's cache of instances: the local fast path's way from
//! a registry entry to an instance's mailbox.
//!
//! A local call on a round-robin service looks up (entry, message type)
//! here, then the next slot in that way's row (round-robin per calling
//! thread; a new way starts where the service's shared counter stands, so
//! threads start apart). A hit, valid while the entry's generation is
//! unchanged, costs no atomic read-modify-write: one downcast of the cached
//! row (to a `Row<M>`), an index, and the message type's send function on
//! the instance's own sender. A miss reads the slot (`arc-swap`) and keeps
//! the instance's `Arc` in the row; a way taken by another (entry, type) is
//! replaced whole.
//!
//! One way holds every slot of a service, so round-robin over many
//! instances stays a hit (issue 12: keyed by slot too, the 32 ways thrashed
//! beyond 32 instances and tells lost 55–65 % of their throughput).
//!
//! A row is typed by the service behind the erasure ([`CachedRow`], made
//! by the message type's [`SendFns`]), so a slot can hold the instance's
//! actix sender by value: a tell reads the channel's pointer from the row,
//! in slot order, as a loop over a `Vec<Addr>` does, and not from the
//! instance's own sender allocation (over 10,000 instances that read was a
//! cache miss on nearly every tell; issue 12). A thread's first call to an
//! instance caches its `Arc` (32 bytes a slot, nothing allocated); the
//! second gives the slot its own sender clone (two small allocations, about
//! 0.1 KiB), so an instance called once from a thread (one message to each
//! of many, a check after spawning) costs no clone. The cache lives in the
//! thread, not in the instance, so an instance costs no memory per message
//! type. Only tells go through the clone (`do_send`, which ignores the
//! mailbox's capacity whatever sender it is on); asks go through the
//! instance's own sender, as the general path does, since each actix
//! sender clone may put one message past a bounded mailbox's capacity when
//! it parks.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use actix::dev::channel::AddressSender;
use actix::prelude::SendError;
use actix::Message;

use super::actor::{Envelope, Handler, ServiceActor, TellEnvelope};
use super::send::{ask, sender, untell, ReplyRx, SendFns, SendTo};
use super::Service;
use crate::registry::{Instance, ServiceEntry};

/// Ways of the direct-mapped cache (a power of two).
const WAYS: usize = 32;

/// One cached row: one entry's instances for one message type.
struct Way {
    entry: u64,
    generation: u64,
    /// The slot this thread calls next (round-robin per thread: no shared
    /// counter on a hit; a new way starts where the service's shared
    /// counter stands, so threads start apart).
    next: usize,
    /// The slots whose instance runs on this thread's arbiter, for a
    /// service that prefers local instances (`ServiceSpec::prefer_local`);
    /// empty otherwise, or when none does (then: round-robin over all).
    home: Box<[usize]>,
    /// The position in `home` this thread calls next.
    home_next: usize,
    /// The `Box<dyn CachedRow<M>>` of the message type the way was
    /// filled for.
    senders: Box<dyn Any>,
}

impl Way {
    /// The slot to call next: round-robin over `home` when it is not
    /// empty, else over every slot.
    #[inline(always)]
    fn next_slot(&mut self, slot_count: usize) -> usize {
        if self.home.is_empty() {
            let slot = self.next;
            self.next += 1;
            if self.next >= slot_count {
                self.next = 0;
            }
            slot
        } else {
            let i = if self.home_next < self.home.len() {
                self.home_next
            } else {
                0
            };
            self.home_next = i + 1;
            self.home[i]
        }
    }
}

/// The slots of `entry` whose instance runs on the calling thread's node
/// arbiter, when the service prefers local instances and the thread is an
/// arbiter; otherwise none. Reads every slot once per generation (a cold
/// path).
#[cold]
#[inline(never)]
fn home_slots(entry: &ServiceEntry) -> Box<[usize]> {
    if !entry.prefers_local() {
        return Box::new([]);
    }
    let me = crate::lifecycle::home::current();
    if me == 0 {
        return Box::new([]);
    }
    (0..entry.slot_count())
        .filter(|&slot| entry.load_slot(slot).is_some_and(|i| i.arbiter == me))
        .collect()
}

/// One way's row: the instances of one service called so far for one
/// message type, indexed by slot, typed by the service behind the erasure.
pub(crate) trait CachedRow<M>: 'static
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// The instance in `slot`, to call now: cached on this thread's first
    /// call to it, given its own sender on the second. `None` when the
    /// slot is empty.
    fn select(&mut self, entry: &ServiceEntry, slot: usize) -> Option<&dyn SendTo<M>>;

    /// A tell to the instance in `slot`: [`select`](Self::select) and its
    /// `tell` in one call. The envelope back when the slot is empty or the
    /// instance is gone.
    fn tell_at(
        &mut self,
        entry: &ServiceEntry,
        slot: usize,
        env: Envelope<M>,
    ) -> Result<(), Envelope<M>>;
}

/// A new row for service `S` and message type `M` (a [`SendFns`] entry).
pub(crate) fn typed_row<S, M>() -> Box<dyn CachedRow<M>>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    Box::new(TypedRow::<S, M> {
        track: false,
        current: 0,
        slots: Vec::new(),
        msg: PhantomData,
    })
}

/// [`CachedRow`] of service `S`.
struct TypedRow<S: Service, M> {
    /// Whether the node counts what is sent to its instances (a setting of
    /// the node, the same for every instance: kept once here).
    track: bool,
    /// The slot [`select`](CachedRow::select) chose last.
    current: usize,
    slots: Vec<Option<TypedSlot<S>>>,
    msg: PhantomData<fn(M)>,
}

/// One cached instance.
struct TypedSlot<S: Service> {
    instance: Arc<Instance>,
    /// This thread's own sender to the instance, from its second call on.
    tx: Option<AddressSender<ServiceActor<S>>>,
}

impl<S, M> TypedRow<S, M>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// The slot `select` chose.
    #[inline(always)]
    fn chosen(&self) -> Option<&TypedSlot<S>> {
        self.slots.get(self.current)?.as_ref()
    }

    /// A tell to the instance in `slot` (cached), through its own sender
    /// once promoted. The envelope back when the slot is empty or the
    /// instance is gone.
    #[inline(always)]
    fn tell_slot(&self, slot: usize, env: Envelope<M>) -> Result<(), Envelope<M>> {
        let Some(Some(slot)) = self.slots.get(slot) else {
            return Err(env);
        };
        let sent = match &slot.tx {
            Some(tx) => tx.do_send(TellEnvelope(env)).map_err(untell),
            // The first call, or a sender of another type (never: the
            // row is made by the entry's own send functions).
            None => match sender::<S>(&*slot.instance.sender) {
                Some(tx) => tx.do_send(TellEnvelope(env)).map_err(untell),
                None => Err(SendError::Closed(env)),
            },
        };
        match sent {
            Ok(()) => {
                if self.track {
                    slot.instance.count_sent();
                }
                Ok(())
            }
            Err(SendError::Full(env) | SendError::Closed(env)) => Err(env),
        }
    }

    /// A miss: caches the instance in `slot` (and whether the node counts
    /// what is sent to it, the same for all its instances).
    #[cold]
    #[inline(never)]
    fn fill(&mut self, entry: &ServiceEntry, slot: usize) -> Option<()> {
        let instance = entry.load_slot(slot)?;
        #[cfg(test)]
        MISSES.with(|m| m.set(m.get() + 1));
        self.track = instance.track;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        *self.slots.get_mut(slot)? = Some(TypedSlot { instance, tx: None });
        Some(())
    }
}

impl<S: Service> TypedSlot<S> {
    /// The second call: the slot gets its own sender.
    #[cold]
    #[inline(never)]
    fn promote(&mut self) {
        self.tx = sender::<S>(&*self.instance.sender).cloned();
        #[cfg(test)]
        PROMOTIONS.with(|m| m.set(m.get() + 1));
    }
}

impl<S, M> CachedRow<M> for TypedRow<S, M>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    #[inline]
    fn select(&mut self, entry: &ServiceEntry, slot: usize) -> Option<&dyn SendTo<M>> {
        match self.slots.get_mut(slot) {
            Some(Some(s)) => {
                if s.tx.is_none() {
                    s.promote();
                }
            }
            _ => self.fill(entry, slot)?,
        }
        self.current = slot;
        Some(self)
    }

    #[inline]
    fn tell_at(
        &mut self,
        entry: &ServiceEntry,
        slot: usize,
        env: Envelope<M>,
    ) -> Result<(), Envelope<M>> {
        let promoted = matches!(self.slots.get(slot), Some(Some(s)) if s.tx.is_some());
        if !promoted && self.select(entry, slot).is_none() {
            return Err(env);
        }
        self.tell_slot(slot, env)
    }
}

impl<S, M> SendTo<M> for TypedRow<S, M>
where
    S: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    #[inline]
    fn ask(&self, env: Envelope<M>) -> Result<ReplyRx<M>, SendError<Envelope<M>>> {
        match self.chosen() {
            Some(slot) => ask::<S, M>(&slot.instance, env),
            None => Err(SendError::Closed(env)),
        }
    }

    fn instance(&self) -> Option<&Arc<Instance>> {
        self.chosen().map(|slot| &slot.instance)
    }
}

#[cfg(test)]
thread_local! {
    /// Senders this thread had to fetch (misses), for tests.
    static MISSES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Slots this thread gave their own sender, for tests.
    static PROMOTIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

thread_local! {
    static SENDERS: RefCell<[Option<Way>; WAYS]> =
        const { RefCell::new([const { None }; WAYS]) };
}

/// The bits `TypeId` hashes (a constant once inlined), so that two message
/// types sent to one instance do not share a way.
#[inline(always)]
fn type_bits<M: 'static>() -> u64 {
    struct Bits(u64);
    impl Hasher for Bits {
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(b);
            }
        }
        fn write_u64(&mut self, v: u64) {
            self.0 ^= v;
        }
        fn finish(&self) -> u64 {
            self.0
        }
    }
    let mut h = Bits(0);
    TypeId::of::<M>().hash(&mut h);
    h.finish()
}

/// Runs `f` with the sender for `M` of the instance in the entry's next
/// round-robin slot. `f` gets `arg` (the message) and gives it back if it
/// cannot send it; `Err(Some(arg))` also when the slot is empty, the service
/// does not handle `M` locally, or the cache is unavailable, so the caller
/// can take the general path with it.
#[inline(always)]
pub(crate) fn with_sender<M, T, R>(
    entry: &ServiceEntry,
    arg: T,
    f: impl FnOnce(&dyn SendTo<M>, T) -> Result<R, T>,
) -> Result<R, Option<T>>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    let mut arg = Some(arg);
    let done = with_row::<M, _>(entry, |row, slot| {
        let to = row.select(entry, slot)?;
        Some(f(to, arg.take()?))
    });
    match done {
        Some(Ok(r)) => Ok(r),
        Some(Err(a)) => Err(Some(a)),
        None => Err(arg),
    }
}

/// A tell to the instance in the entry's next round-robin slot: what
/// [`with_sender`] and the slot's `tell` do, in one call on the row (the
/// local tell's hot path). `Err(Some(env))` when the caller must take the
/// general path with it.
#[inline(always)]
pub(crate) fn tell_cached<M>(
    entry: &ServiceEntry,
    env: Envelope<M>,
) -> Result<(), Option<Envelope<M>>>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    let mut env = Some(env);
    match with_row::<M, _>(entry, |row, slot| {
        Some(row.tell_at(entry, slot, env.take()?))
    }) {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(Some(e)),
        None => Err(env),
    }
}

/// Runs `g` on the calling thread's row of `entry` for `M` and the slot to
/// call next (filling the way on a miss); `None` when the cache is
/// unavailable or the service does not handle `M` locally.
#[inline(always)]
fn with_row<M, R>(
    entry: &ServiceEntry,
    g: impl FnOnce(&mut dyn CachedRow<M>, usize) -> Option<R>,
) -> Option<R>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    let generation = entry.generation();
    let id = entry.id();
    let key = (id ^ type_bits::<M>()) as usize % WAYS;
    SENDERS
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let way = &mut cache[key];
            if let Some(w) = way {
                if w.entry == id && w.generation == generation {
                    let slot = w.next_slot(entry.slot_count());
                    if let Some(row) = w.senders.downcast_mut::<Box<dyn CachedRow<M>>>() {
                        return g(&mut **row, slot);
                    }
                }
            }
            let fns = send_fns::<M>(entry)?;
            let home = home_slots(entry);
            let shared_slot = entry.next_slot();
            let n = entry.slot_count();
            let (slot, home_next) = match home.first() {
                Some(&first) => (first, 1),
                None => (shared_slot, 0),
            };
            let row = way
                .insert(Way {
                    entry: id,
                    generation,
                    next: if shared_slot + 1 >= n {
                        0
                    } else {
                        shared_slot + 1
                    },
                    home,
                    home_next,
                    senders: Box::new((fns.row)()),
                })
                .senders
                .downcast_mut::<Box<dyn CachedRow<M>>>()?;
            g(&mut **row, slot)
        })
        .ok()
        .flatten()
}

/// The message type's send functions on this entry's service type.
#[cold]
#[inline(never)]
fn send_fns<M>(entry: &ServiceEntry) -> Option<SendFns<M>>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    let index = entry.type_index(TypeId::of::<M>())?;
    entry
        .types
        .get(index)?
        .send
        .as_deref()?
        .downcast_ref::<SendFns<M>>()
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(actix::Message)]
    #[rtype(result = "()")]
    struct A;
    #[derive(actix::Message)]
    #[rtype(result = "()")]
    struct B;

    #[derive(Default)]
    struct Sink(u64);
    impl crate::Service for Sink {}
    impl crate::Handler<A> for Sink {
        fn handle(
            &mut self,
            _: A,
            _: &mut crate::ServiceContext<'_, Self>,
        ) -> crate::Reply<Self, ()> {
            self.0 += 1;
            crate::Reply::ready(())
        }
    }

    /// A local node running `instances` of a `Sink` service named `name`.
    async fn sinks(name: &str, instances: usize) -> (crate::Node, crate::ServiceRef) {
        let node = crate::Node::builder()
            .name(name)
            .start_local()
            .expect("a local node");
        let svc = node
            .spawn(
                crate::ServiceSpec::new(name, Sink::default)
                    .handles_local::<A>()
                    .instances(instances),
            )
            .await
            .expect("spawned");
        (node, svc)
    }

    /// Round-robin over more instances than the cache has ways: every
    /// instance's sender is fetched once, then every tell hits (keyed by
    /// slot, the ways thrashed and nearly every tell missed).
    #[test]
    fn round_robin_over_many_instances_hits_after_one_pass() {
        for instances in [1usize, 100, 1000] {
            actix_rt::System::new().block_on(async move {
                let (node, svc) = sinks("rr", instances).await;
                let before = MISSES.with(std::cell::Cell::get);
                let tells = 5 * instances as u64 + 7;
                for _ in 0..tells {
                    svc.tell(A).expect("told");
                }
                let misses = MISSES.with(std::cell::Cell::get) - before;
                assert!(
                    misses <= instances as u64,
                    "{instances} instances: {misses} misses in {tells} tells"
                );
                node.shutdown(std::time::Duration::from_secs(5))
                    .await
                    .expect("shut down");
            });
        }
    }

    /// A thread's first call to an instance caches it without a sender
    /// clone; the second gives the slot its own sender, once.
    #[test]
    fn a_slot_gets_its_own_sender_on_its_second_call_only() {
        actix_rt::System::new().block_on(async move {
            let instances = 50usize;
            let (node, svc) = sinks("promote", instances).await;
            let promotions = || PROMOTIONS.with(std::cell::Cell::get);
            let before = promotions();
            for _ in 0..instances {
                svc.tell(A).expect("told");
            }
            assert_eq!(promotions() - before, 0, "one call each: no clone");
            for _ in 0..3 * instances {
                svc.tell(A).expect("told");
            }
            assert_eq!(
                promotions() - before,
                instances as u64,
                "every instance called again: one clone each, once"
            );
            node.shutdown(std::time::Duration::from_secs(5))
                .await
                .expect("shut down");
        });
    }

    /// A cached slot is the instance's `Arc` and an optional sender in 32
    /// bytes (no tag word: both use their pointers' niches), the cost per
    /// instance a thread has called.
    #[test]
    fn a_cached_slot_is_four_words() {
        assert_eq!(std::mem::size_of::<Option<TypedSlot<Sink>>>(), 32);
    }

    #[test]
    fn message_types_hash_apart() {
        assert_ne!(type_bits::<A>(), type_bits::<B>());
        assert_eq!(type_bits::<A>(), type_bits::<A>());
    }
}
