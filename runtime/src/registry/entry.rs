//! One service's registry entry: its instance slots and counters.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwapOption, Guard};

use crate::message::mix64;
use crate::stats::ServiceStats;

mod slot_room;

use slot_room::SlotRoom;

/// Identifies one running copy of a service on a node: its slot (stable
/// across restarts, which is what keyed routing hashes) and its incarnation
/// (bumped at every restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId {
    /// The slot, `0..instances`.
    pub slot: usize,
    /// How many times this slot was started before (0 for the first start).
    pub incarnation: u64,
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.slot, self.incarnation)
    }
}

/// Lifecycle of a service as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceState {
    /// Its instances are being started.
    Starting,
    /// Running (some instances may be restarting).
    Running,
    /// Its supervisor gave up after exceeding its restart intensity.
    Failed,
    /// Stopped (node shutdown, or a temporary service that ended).
    Stopped,
}

impl ServiceState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Starting,
            1 => Self::Running,
            2 => Self::Failed,
            _ => Self::Stopped,
        }
    }
    fn as_u8(self) -> u8 {
        match self {
            Self::Starting => 0,
            Self::Running => 1,
            Self::Failed => 2,
            Self::Stopped => 3,
        }
    }
}

/// One live instance, as callers see it.
pub(crate) struct Instance {
    pub(crate) id: InstanceId,
    /// The instance's actix channel sender (`AddressSender<ServiceActor<S>>`),
    /// type-erased; the per-type send functions downcast it. Boxed, not
    /// shared: a calling thread's sender cache holds a clone of its own
    /// from its second call on, so nothing needs the box beyond this
    /// record (a 32-byte chunk where an `Arc` took 48: 16 bytes less per
    /// instance, issue 12's spawn memory).
    pub(crate) sender: Box<dyn Any + Send + Sync>,
    /// Messages queued to this instance (asks, tells); with the slot's
    /// handled counter it gives the mailbox depth.
    pub(crate) sent: AtomicU64,
    /// The slot's handled counter when this instance started.
    pub(crate) handled_base: u64,
    /// Whether `sent` is kept (the node tracks mailbox depth).
    pub(crate) track: bool,
    /// The id of the node arbiter it runs on (`lifecycle/home.rs`), 0 when
    /// it runs on a local node's thread.
    pub(crate) arbiter: u32,
    /// The mailbox capacity (`ServiceSpec::mailbox_capacity`).
    pub(crate) capacity: usize,
    /// The messages of the batches of remote tells queued to it (made at
    /// the first batch). A `OnceBox`, one word: a `OnceLock` is two, and
    /// this record is allocated for every instance (issue 12's spawn
    /// memory: 80 bytes instead of 96 in a 96-byte chunk, not 112).
    batch: once_cell::race::OnceBox<Arc<super::BatchRoom>>,
}

impl Instance {
    /// An instance around an erased sender, counting from the slot's
    /// current handled count.
    pub(crate) fn new(
        id: InstanceId,
        sender: Box<dyn Any + Send + Sync>,
        handled_base: u64,
        track: bool,
    ) -> Self {
        Self {
            id,
            sender,
            sent: AtomicU64::new(0),
            handled_base,
            track,
            arbiter: 0,
            capacity: 16,
            batch: once_cell::race::OnceBox::new(),
        }
    }

    /// The same instance with a mailbox of `capacity` messages.
    pub(crate) fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Where the batches of remote tells queued to this instance are
    /// counted.
    #[inline]
    pub(crate) fn batch_room(&self) -> &Arc<super::BatchRoom> {
        self.batch.get_or_init(|| Box::new(Arc::default()))
    }

    /// Counts `n` messages queued to this instance at once.
    #[inline]
    pub(crate) fn count_sent_n(&self, n: u64) {
        if self.track {
            self.sent.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The instance, placed on the node arbiter `arbiter`.
    pub(crate) fn on_arbiter(mut self, arbiter: u32) -> Self {
        self.arbiter = arbiter;
        self
    }

    /// Counts one message queued to this instance (when the node tracks
    /// mailbox depth; otherwise a plain branch).
    #[inline]
    pub(crate) fn count_sent(&self) {
        if self.track {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance").field("id", &self.id).finish()
    }
}

/// What a caller needs to know about a message type a service handles.
#[derive(Clone)]
pub(crate) struct MessageType {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) wire_name: Option<&'static str>,
    /// How the message crosses nodes (for `handles` / `handles_keyed`).
    pub(crate) wire: Option<crate::message::wire_codec::WireCodec>,
    /// How a local instance serves it for other nodes and JSON callers
    /// (the service layer's `ServeFns`), type-erased: the registry sits
    /// below the layers that serve.
    pub(crate) serve: Option<Arc<dyn Any + Send + Sync>>,
    /// Extracts the routing key of a keyed message (given as `&dyn Any`).
    pub(crate) key: Option<fn(&dyn Any) -> u64>,
    /// The local send functions (`SendFns<M>`), type-erased.
    pub(crate) send: Option<Arc<dyn Any + Send + Sync>>,
    /// Who may send it (`None`: open), checked by the serving instance.
    pub(crate) access: Option<Arc<crate::access::Rule>>,
}

/// The connection a remote instance is reached over, as the registry sees
/// it: the registry sits below remoting, whose `Peer` implements this.
pub(crate) trait PeerLink: Send + Sync + fmt::Debug {
    /// The name of the node at the other end.
    fn node_name(&self) -> &str;
    /// The link as `Any`, for remoting to get its own type back.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// An instance of this service on another node.
#[derive(Debug)]
pub(crate) struct RemoteInstance {
    pub(crate) peer: Arc<dyn PeerLink>,
    pub(crate) slot: usize,
    pub(crate) incarnation: u64,
    pub(crate) messages: Arc<[String]>,
}

impl RemoteInstance {
    pub(crate) fn handles(&self, wire: &str) -> bool {
        self.messages.iter().any(|m| m == wire)
    }
}

impl ServiceEntry {
    /// Whether node `node` runs an instance of this service (as its
    /// service table says).
    pub(crate) fn hosted_by(&self, node: &str) -> bool {
        self.remote
            .load()
            .iter()
            .any(|r| r.peer.node_name() == node)
    }

    /// The access rule of the message type at `index` (`None`: open).
    #[inline]
    pub(crate) fn rule(&self, index: usize) -> Option<&Arc<crate::access::Rule>> {
        self.types.get(index).and_then(|t| t.access.as_ref())
    }
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageType")
            .field("type_name", &self.type_name)
            .field("wire_name", &self.wire_name)
            .finish()
    }
}

/// A service's entry in the registry.
pub(crate) struct ServiceEntry {
    name: Arc<str>,
    pub(crate) types: Box<[MessageType]>,
    pub(crate) keyed_routing: bool,
    /// Mixed into keyed scores: rendezvous weights are per (node, slot).
    salt: u64,
    /// Process-unique id, the key of the per-thread slot cache.
    id: u64,
    /// Bumped whenever a slot changes; a cached instance is valid only for
    /// the generation it was read at.
    generation: AtomicU64,
    slots: Box<[ArcSwapOption<Instance>]>,
    /// Slots in use (`0..active`), which round-robin and keyed routing
    /// choose among: the service's scale (`Node::scale`), at most
    /// `slots.len()` (its `max_instances`).
    active: AtomicUsize,
    /// The service's supervisor, type-erased (the registry sits below
    /// supervision): how `Node::scale` and friends reach it by name.
    control: parking_lot::Mutex<Option<Arc<dyn Any + Send + Sync>>>,
    incarnations: Box<[AtomicU64]>,
    /// Per slot: messages handled (or dropped as expired). Only the slot's
    /// running instance writes its counter, so it counts with a plain load
    /// and store, not a locked read-modify-write.
    slot_handled: Box<[AtomicU64]>,
    /// Per slot: the asks waiting for mailbox room, and their signal.
    slot_rooms: Box<[SlotRoom]>,
    /// Asks waiting for room in any slot (the sum of the slots' waiters):
    /// what a message taken reads, on a line every instance shares, before
    /// it looks at its own slot's waiters.
    room_waiters: AtomicUsize,
    rr: AtomicUsize,
    remote: arc_swap::ArcSwap<Vec<Arc<RemoteInstance>>>,
    remote_rr: AtomicUsize,
    /// Why calls must take the general path ([`SLOW_KEYED`] and friends),
    /// kept as one byte: the local fast path reads it on every call, and
    /// `has_remote`/`is_replaced` read their bit of it. Each reason is a bit
    /// set and cleared on its own, so two writers cannot undo each other.
    slow_path: AtomicU8,
    /// Serialises writers of `remote` (tables from several connections, on
    /// several threads, may update one entry at once: a read-modify-write
    /// without it could lose one node's instances).
    remote_writer: parking_lot::Mutex<()>,
    state: AtomicU8,
    /// The supervision tree it was spawned in (`root` when unset), for
    /// `SpawnError::DuplicateService`.
    owner: std::sync::OnceLock<Arc<str>>,
    /// Its start failed and its tree is gone: a new spawn may take the name.
    vacated: std::sync::atomic::AtomicBool,
    /// Callers on a node arbiter prefer the instances on their own arbiter
    /// (`ServiceSpec::prefer_local`).
    prefer_local: std::sync::atomic::AtomicBool,
    pub(crate) stats: ServiceStats,
}

impl fmt::Debug for ServiceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceEntry")
            .field("name", &self.name)
            .field("slots", &self.slots.len())
            .field("state", &self.state())
            .finish()
    }
}

pub(crate) type InstanceGuard = Guard<Option<Arc<Instance>>>;

impl ServiceEntry {
    pub(crate) fn new(
        name: Arc<str>,
        types: Box<[MessageType]>,
        keyed_routing: bool,
        slots: usize,
        node: &str,
    ) -> Self {
        Self {
            name,
            types,
            keyed_routing,
            salt: crate::message::key_hash(node.as_bytes()),
            id: NEXT_ENTRY_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            slots: (0..slots).map(|_| ArcSwapOption::empty()).collect(),
            active: AtomicUsize::new(slots),
            control: parking_lot::Mutex::new(None),
            incarnations: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            slot_handled: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            slot_rooms: (0..slots).map(|_| SlotRoom::default()).collect(),
            room_waiters: AtomicUsize::new(0),
            rr: AtomicUsize::new(0),
            remote: arc_swap::ArcSwap::from_pointee(Vec::new()),
            remote_rr: AtomicUsize::new(0),
            slow_path: AtomicU8::new(if keyed_routing { SLOW_KEYED } else { 0 }),
            remote_writer: parking_lot::Mutex::new(()),
            state: AtomicU8::new(ServiceState::Starting.as_u8()),
            owner: std::sync::OnceLock::new(),
            vacated: std::sync::atomic::AtomicBool::new(false),
            prefer_local: std::sync::atomic::AtomicBool::new(false),
            stats: ServiceStats::default(),
        }
    }

    /// Makes callers on a node arbiter prefer the instances on their own
    /// arbiter (set once, before the entry is registered).
    pub(crate) fn set_prefer_local(&self, on: bool) {
        self.prefer_local.store(on, Ordering::Relaxed);
    }

    /// Whether callers on a node arbiter prefer instances on their own.
    #[inline]
    pub(crate) fn prefers_local(&self) -> bool {
        self.prefer_local.load(Ordering::Relaxed)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    pub(crate) fn state(&self) -> ServiceState {
        ServiceState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, s: ServiceState) {
        self.state.store(s.as_u8(), Ordering::Release);
    }

    pub(crate) fn live_instances(&self) -> Vec<InstanceId> {
        self.slots
            .iter()
            .filter_map(|s| s.load().as_ref().map(|i| i.id))
            .collect()
    }

    /// Records the supervision tree the service is spawned in.
    pub(crate) fn set_owner(&self, tree: &str) {
        let _ = self.owner.set(Arc::from(tree));
    }

    /// The supervision tree the service runs in (`root` at the top level).
    pub(crate) fn owner(&self) -> &str {
        self.owner.get().map_or("root", |o| o)
    }

    /// How many slots are in use (the service's current scale).
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Sets the service's scale (at most its slot count): routing chooses
    /// among slots `0..n` from now on (callers' caches are invalidated).
    pub(crate) fn set_active(&self, n: usize) {
        self.active
            .store(n.min(self.slots.len()), Ordering::Release);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// How many instance slots the service has (its `max_instances`).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Records the service's supervisor (type-erased).
    pub(crate) fn set_control(&self, control: Arc<dyn Any + Send + Sync>) {
        *self.control.lock() = Some(control);
    }

    /// The service's supervisor as recorded by [`Self::set_control`].
    pub(crate) fn control(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.control.lock().clone()
    }

    /// Messages handled (or dropped as expired) in `slot` so far.
    pub(crate) fn handled(&self, slot: usize) -> u64 {
        self.slot_handled
            .get(slot)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Messages queued but not yet taken by the live instances (a snapshot:
    /// senders and instances move on while it is read).
    ///
    /// The queued count is read before the taken count, so the figure never
    /// exceeds the depth at the moment of the first read: read the other way
    /// round, a reader descheduled between the two loads counted every
    /// message sent and taken meanwhile as still queued (flow_control's test
    /// once saw 283 against a mailbox that held at most 257).
    pub(crate) fn mailbox_depth(&self) -> u64 {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| {
                let i = s.load_full().filter(|i| i.track)?;
                let sent = i.sent.load(Ordering::Acquire);
                let taken = self.handled(slot).saturating_sub(i.handled_base);
                Some(sent.saturating_sub(taken))
            })
            .sum()
    }

    /// Counts one message taken from the mailbox of the instance in `slot`
    /// (handled, or dropped because its deadline had passed).
    #[inline]
    pub(crate) fn count_message(&self, slot: usize) {
        if let Some(c) = self.slot_handled.get(slot) {
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            // Taking a message made room (actix unparked the sender before
            // handing it over): one waiting ask may try again. A waiter
            // counts itself in its slot before the entry's sum
            // (`room_waiter_joined`), so a nonzero slot count is seen here
            // once the sum is.
            if self.room_waiters.load(Ordering::SeqCst) != 0 {
                self.notify_room(slot);
            }
        }
    }

    /// The service's counters.
    pub(crate) fn stats_snapshot(&self) -> crate::stats::StatsSnapshot {
        let mut s = self.stats.snapshot();
        let taken: u64 = self
            .slot_handled
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        // Expired and refused messages are counted as taken, but were never
        // handled.
        let refused = self.stats.denied_taken.load(Ordering::Relaxed);
        s.messages = taken.saturating_sub(s.expired).saturating_sub(refused);
        s.mailbox_depth = self.mailbox_depth();
        s
    }

    /// The incarnation for the next start of `slot` (0 for the first start).
    pub(crate) fn next_incarnation(&self, slot: usize) -> u64 {
        self.incarnations
            .get(slot)
            .map_or(0, |c| c.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn set_slot(&self, slot: usize, instance: Option<Arc<Instance>>) {
        if let Some(s) = self.slots.get(slot) {
            s.store(instance);
            self.generation.fetch_add(1, Ordering::Release);
            self.wake_room_waiters(slot);
        }
    }

    /// Whether `slot` still holds `instance` (not replaced, not cleared).
    pub(crate) fn slot_holds(&self, slot: usize, instance: &Arc<Instance>) -> bool {
        self.slots
            .get(slot)
            .is_some_and(|s| s.load().as_ref().is_some_and(|i| Arc::ptr_eq(i, instance)))
    }

    /// Clears `slot` only if it still holds `id` (a late death notice must not
    /// remove the instance that replaced it).
    pub(crate) fn clear_slot_if(&self, slot: usize, id: InstanceId) -> bool {
        let Some(s) = self.slots.get(slot) else {
            return false;
        };
        let cur = s.load();
        if cur.as_ref().is_some_and(|i| i.id == id) {
            s.compare_and_swap(&*cur, None);
            self.generation.fetch_add(1, Ordering::Release);
            self.wake_room_waiters(slot);
            true
        } else {
            false
        }
    }

    /// The slot the next round-robin call goes to (live or not).
    #[inline]
    pub(crate) fn next_slot(&self) -> usize {
        let n = self.active.load(Ordering::Relaxed);
        if n <= 1 {
            0
        } else {
            self.rr.fetch_add(1, Ordering::Relaxed) % n
        }
    }

    /// How many instance slots the service uses now (for the callers'
    /// sender caches, which round-robin per thread; a change of scale bumps
    /// the generation, so a cached way never outlives it).
    #[inline]
    pub(crate) fn slot_count(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// This entry's id, unique in the process (a key of the callers'
    /// per-thread sender caches).
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Bumped at every change of any slot: a sender cached at an older
    /// generation may be stale.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The instance in `slot` now (one `arc-swap` load).
    pub(crate) fn load_slot(&self, slot: usize) -> Option<Arc<Instance>> {
        self.slots.get(slot)?.load_full()
    }

    /// Index of the message type in [`Self::types`].
    #[inline]
    pub(crate) fn type_index(&self, t: TypeId) -> Option<usize> {
        self.types.iter().position(|m| m.type_id == t)
    }

    /// Round-robin over live slots.
    #[inline]
    pub(crate) fn pick_round_robin(&self) -> Option<InstanceGuard> {
        let n = self.active.load(Ordering::Relaxed).min(self.slots.len());
        if n == 0 {
            return None;
        }
        let start = if n == 1 {
            0
        } else {
            self.rr.fetch_add(1, Ordering::Relaxed) % n
        };
        for i in 0..n {
            let g = self.slots[(start + i) % n].load();
            if g.is_some() {
                return Some(g);
            }
        }
        None
    }

    /// Rendezvous (highest random weight) hashing over live slots: every caller
    /// that sees the same instances picks the same one for a key.
    pub(crate) fn pick_keyed(&self, key: u64) -> Option<InstanceGuard> {
        self.pick_keyed_scored(key).map(|(_, g)| g)
    }

    /// The local winner for `key` and its weight (to compare with remote ones).
    pub(crate) fn pick_keyed_scored(&self, key: u64) -> Option<(u64, InstanceGuard)> {
        let mut best: Option<(u64, InstanceGuard)> = None;
        let active = self.active.load(Ordering::Relaxed);
        for (slot, s) in self.slots.iter().enumerate().take(active) {
            let g = s.load();
            if g.is_none() {
                continue;
            }
            let score = rendezvous_score(key ^ self.salt, slot);
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, g));
            }
        }
        best
    }

    /// The rendezvous weight of a remote instance for `key`.
    pub(crate) fn remote_score(key: u64, r: &RemoteInstance) -> u64 {
        rendezvous_score(
            key ^ crate::message::key_hash(r.peer.node_name().as_bytes()),
            r.slot,
        )
    }

    /// Replaces the instances `node` has of this service; returns the slots
    /// (added, removed).
    pub(crate) fn set_remote(
        &self,
        node: &str,
        now: Vec<Arc<RemoteInstance>>,
    ) -> (Vec<usize>, Vec<usize>) {
        let _writer = self.remote_writer.lock();
        let cur = self.remote.load();
        let before: Vec<(usize, u64)> = cur
            .iter()
            .filter(|r| r.peer.node_name() == node)
            .map(|r| (r.slot, r.incarnation))
            .collect();
        let after: Vec<(usize, u64)> = now.iter().map(|r| (r.slot, r.incarnation)).collect();
        let mut next: Vec<Arc<RemoteInstance>> = cur
            .iter()
            .filter(|r| r.peer.node_name() != node)
            .cloned()
            .collect();
        next.extend(now);
        next.sort_by(|a, b| (a.peer.node_name(), a.slot).cmp(&(b.peer.node_name(), b.slot)));
        self.set_slow(SLOW_REMOTE, !next.is_empty());
        self.remote.store(Arc::new(next));
        let added = after
            .iter()
            .filter(|s| !before.contains(s))
            .map(|s| s.0)
            .collect();
        let removed = before
            .iter()
            .filter(|s| !after.contains(s))
            .map(|s| s.0)
            .collect();
        (added, removed)
    }

    /// Whether any remote instance exists.
    #[inline]
    /// Wire names the remote instances handle (with repeats).
    pub(crate) fn remote_message_names(&self) -> Vec<String> {
        self.remote
            .load()
            .iter()
            .flat_map(|r| r.messages.iter().cloned())
            .collect()
    }

    pub(crate) fn has_remote(&self) -> bool {
        self.slow_path.load(Ordering::Relaxed) & SLOW_REMOTE != 0
    }

    /// Whether calls must take the general path: keyed routing, remote
    /// instances, a replaced entry, or a node shutting down.
    #[inline]
    pub(crate) fn needs_slow_path(&self) -> bool {
        self.slow_path.load(Ordering::Relaxed) != 0
    }

    /// Sets or clears one reason for the general path.
    fn set_slow(&self, reason: u8, on: bool) {
        if on {
            self.slow_path.fetch_or(reason, Ordering::AcqRel);
        } else {
            self.slow_path.fetch_and(!reason, Ordering::AcqRel);
        }
    }

    /// Sends every later call down the general path, which refuses it: the
    /// node is shutting down.
    pub(crate) fn close(&self) {
        self.set_slow(SLOW_CLOSED, true);
    }

    /// Whether a local spawn replaced this (remote-only) entry.
    #[inline]
    pub(crate) fn is_replaced(&self) -> bool {
        self.slow_path.load(Ordering::Relaxed) & SLOW_REPLACED != 0
    }

    /// Marks the entry free for a new local spawn: its start failed and
    /// nothing runs or will run for it (it stays readable until replaced).
    pub(crate) fn vacate(&self) {
        self.vacated.store(true, Ordering::Release);
    }

    /// Whether a new local spawn may take this entry's name: it only
    /// mirrors other nodes, or its own start failed.
    pub(crate) fn is_replaceable(&self) -> bool {
        self.is_remote_only() || self.vacated.load(Ordering::Acquire)
    }

    /// Whether this entry only mirrors other nodes' instances.
    pub(crate) fn is_remote_only(&self) -> bool {
        self.types.is_empty() && self.slots.is_empty()
    }

    /// Takes over `old`'s remote instances and marks `old` replaced.
    pub(crate) fn inherit(&self, old: &ServiceEntry) {
        // Always `old` then `self`; `set_remote` takes one lock only.
        let _old = old.remote_writer.lock();
        let _new = self.remote_writer.lock();
        let r = old.remote.load_full();
        self.set_slow(SLOW_REMOTE, !r.is_empty());
        self.remote.store(r);
        old.set_slow(SLOW_REPLACED, true);
    }

    /// Remote instances, for views.
    pub(crate) fn remote_instances(&self) -> Vec<(String, usize)> {
        self.remote
            .load()
            .iter()
            .map(|r| (r.peer.node_name().to_string(), r.slot))
            .collect()
    }

    /// A remote instance that handles `wire`: round-robin, or by rendezvous
    /// hashing of `key` over (node, slot).
    pub(crate) fn pick_remote(&self, wire: &str, key: Option<u64>) -> Option<Arc<RemoteInstance>> {
        let all = self.remote.load();
        let candidates = || all.iter().filter(|r| r.handles(wire));
        match key {
            Some(k) => candidates()
                .max_by_key(|r| Self::remote_score(k, r))
                .cloned(),
            None => {
                // No list is collected: a call per message must not allocate.
                let n = candidates().count();
                if n == 0 {
                    return None;
                }
                let i = self.remote_rr.fetch_add(1, Ordering::Relaxed) % n;
                candidates().nth(i).cloned()
            }
        }
    }

    /// Every live instance, for broadcasts.
    pub(crate) fn all_live(&self) -> Vec<Arc<Instance>> {
        self.slots.iter().filter_map(|s| s.load_full()).collect()
    }
}

static NEXT_ENTRY_ID: AtomicU64 = AtomicU64::new(1);

/// A reason for the general path: keyed routing.
const SLOW_KEYED: u8 = 1;
/// A reason for the general path: remote instances.
const SLOW_REMOTE: u8 = 2;
/// A reason for the general path: a local spawn replaced this entry.
const SLOW_REPLACED: u8 = 4;
/// A reason for the general path: the node is shutting down.
const SLOW_CLOSED: u8 = 8;

/// The rendezvous weight of `slot` for `key`.
pub(crate) fn rendezvous_score(key: u64, slot: usize) -> u64 {
    mix64(key ^ mix64(slot as u64 ^ 0x9e37_79b9_7f4a_7c15))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slots: usize) -> ServiceEntry {
        ServiceEntry::new(Arc::from("s"), Box::new([]), true, slots, "node")
    }

    fn inst(slot: usize) -> Arc<Instance> {
        Arc::new(Instance::new(
            InstanceId {
                slot,
                incarnation: 0,
            },
            Box::new(()),
            0,
            false,
        ))
    }

    /// One `Instance` per running instance (issue 12: ≤ 1.5 KiB per
    /// supervised actor): with its `Arc` counts it fits a 96-byte malloc
    /// chunk (it took 112 with a two-word `OnceLock`); and its batch room is
    /// still made once.
    #[test]
    fn an_instance_record_stays_small() {
        let size = std::mem::size_of::<Instance>();
        assert!(size <= 72, "Instance grew to {size} bytes");
        let i = inst(0);
        assert!(Arc::ptr_eq(i.batch_room(), i.batch_room()));
    }

    #[test]
    fn round_robin_skips_dead_slots() {
        let e = entry(3);
        e.set_slot(0, Some(inst(0)));
        e.set_slot(2, Some(inst(2)));
        let picks: Vec<usize> = (0..6)
            .map(|_| e.pick_round_robin().unwrap().as_ref().unwrap().id.slot)
            .collect();
        assert!(picks.iter().all(|s| *s != 1));
        assert!(picks.contains(&0) && picks.contains(&2));
    }

    #[test]
    fn keyed_pick_is_stable_and_moves_only_keys_of_dead_slot() {
        let e = entry(4);
        for s in 0..4 {
            e.set_slot(s, Some(inst(s)));
        }
        let before: Vec<usize> = (0..200u64)
            .map(|k| e.pick_keyed(k).unwrap().as_ref().unwrap().id.slot)
            .collect();
        let again: Vec<usize> = (0..200u64)
            .map(|k| e.pick_keyed(k).unwrap().as_ref().unwrap().id.slot)
            .collect();
        assert_eq!(before, again);
        for s in 0..4 {
            assert!(before.contains(&s), "keys spread over every slot");
        }
        e.set_slot(1, None);
        for (k, old) in before.iter().enumerate() {
            let now = e.pick_keyed(k as u64).unwrap().as_ref().unwrap().id.slot;
            if *old != 1 {
                assert_eq!(now, *old, "a key not on the dead slot stays put");
            } else {
                assert_ne!(now, 1);
            }
        }
    }

    #[test]
    fn clear_slot_if_ignores_a_replaced_instance() {
        let e = entry(1);
        e.set_slot(0, Some(inst(0)));
        let newer = InstanceId {
            slot: 0,
            incarnation: 1,
        };
        assert!(!e.clear_slot_if(0, newer));
        assert!(e.clear_slot_if(0, inst(0).id));
        assert!(e.pick_round_robin().is_none());
    }

    /// A connection to `node` that carries nothing.
    #[derive(Debug)]
    struct FakeLink(String);

    impl PeerLink for FakeLink {
        fn node_name(&self) -> &str {
            &self.0
        }
        fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
            self
        }
    }

    fn remote(node: &str, slot: usize) -> Arc<RemoteInstance> {
        Arc::new(RemoteInstance {
            peer: Arc::new(FakeLink(node.into())),
            slot,
            incarnation: 1,
            messages: Arc::from(Vec::<String>::new()),
        })
    }

    #[test]
    fn tables_of_two_nodes_applied_at_once_lose_neither() {
        // Two connections' threads update one entry at the same time, over
        // and over: neither may undo the other's write, so each finds its
        // own node's instance after every write, and both are there at the end.
        let e = Arc::new(ServiceEntry::new(
            Arc::from("s"),
            Box::new([]),
            false,
            0,
            "me",
        ));
        assert!(!e.needs_slow_path());
        let start = Arc::new(std::sync::Barrier::new(2));
        let writers: Vec<_> = ["b", "c"]
            .into_iter()
            .map(|node| {
                let (e, start) = (e.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let mut lost = 0;
                    for round in 0..20_000 {
                        e.set_remote(node, vec![remote(node, round % 3)]);
                        // Only this thread removes this node's instances.
                        if !e.remote.load().iter().any(|r| r.peer.node_name() == node) {
                            lost += 1;
                        }
                    }
                    lost
                })
            })
            .collect();
        for w in writers {
            assert_eq!(w.join().unwrap(), 0, "a concurrent table dropped instances");
        }
        let mut nodes: Vec<String> = e
            .remote
            .load()
            .iter()
            .map(|r| r.peer.node_name().to_string())
            .collect();
        nodes.sort();
        assert_eq!(nodes, ["b", "c"]);
        assert!(
            e.needs_slow_path(),
            "remote instances take the general path"
        );
        e.set_remote("b", Vec::new());
        e.set_remote("c", Vec::new());
        assert!(!e.needs_slow_path());
    }
}
