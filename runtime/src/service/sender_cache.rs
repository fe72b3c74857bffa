//! The calling thread's cache of typed senders: the local fast path's way
//! from a registry entry to an instance's mailbox.
//!
//! A local call on a round-robin service looks up (entry, slot, message
//! type) here. A hit, valid while the entry's generation is unchanged, costs
//! no atomic read-modify-write: one downcast of the cached value (to a
//! [`SendTo<M>`]) and one virtual call into the instance's channel. A miss
//! reads the slot (`arc-swap`), finds the message type's send functions and
//! caches a `SendTo<M>` for that instance, replacing whatever the way held.
//! The cache lives in the thread, not in the instance, so an instance costs
//! no memory per message type.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::hash::{Hash, Hasher};

use actix::Message;

use super::send::{SendFns, SendTo};
use crate::registry::ServiceEntry;

/// Ways of the direct-mapped cache (a power of two).
const WAYS: usize = 32;

/// One cached sender.
struct Way {
    entry: u64,
    slot: usize,
    generation: u64,
    /// A `Box<dyn SendTo<M>>` for the message type the way was filled for.
    sender: Box<dyn Any>,
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
    let slot = entry.next_slot();
    let generation = entry.generation();
    let id = entry.id();
    let key = (id ^ (slot as u64).wrapping_mul(0x9e37_79b9) ^ type_bits::<M>()) as usize % WAYS;
    let mut arg = Some(arg);
    let done = SENDERS.try_with(|cache| {
        let mut cache = cache.try_borrow_mut().ok()?;
        let way = &mut cache[key];
        if let Some(w) = way {
            if w.entry == id && w.slot == slot && w.generation == generation {
                if let Some(s) = w.sender.downcast_ref::<Box<dyn SendTo<M>>>() {
                    return Some(f(&**s, arg.take()?));
                }
            }
        }
        let s = fill::<M>(way, entry, slot, generation)?;
        Some(f(s, arg.take()?))
    });
    match done {
        Ok(Some(Ok(r))) => Ok(r),
        Ok(Some(Err(a))) => Err(Some(a)),
        _ => Err(arg),
    }
}

/// A miss: caches the sender for `M` of the instance in `slot`.
#[cold]
#[inline(never)]
fn fill<'w, M>(
    way: &'w mut Option<Way>,
    entry: &ServiceEntry,
    slot: usize,
    generation: u64,
) -> Option<&'w dyn SendTo<M>>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    let index = entry.type_index(TypeId::of::<M>())?;
    let fns = entry
        .types
        .get(index)?
        .send
        .as_deref()?
        .downcast_ref::<SendFns<M>>()?;
    let instance = entry.load_slot(slot)?;
    let sender = (fns.typed)(&instance)?;
    way.insert(Way {
        entry: entry.id(),
        slot,
        generation,
        sender: Box::new(sender),
    })
    .sender
    .downcast_ref::<Box<dyn SendTo<M>>>()
    .map(|b| &**b)
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

    #[test]
    fn message_types_hash_apart() {
        assert_ne!(type_bits::<A>(), type_bits::<B>());
        assert_eq!(type_bits::<A>(), type_bits::<A>());
    }
}
