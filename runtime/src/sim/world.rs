//! The world: one event queue ordered by (simulated time, sequence number),
//! the nodes, the network, the checker and the event log. Everything on the
//! simulated path is ordered (BTreeMap, Vec) and driven by the seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use foca::Timer;

use super::check::Checker;
use super::net::{End, Net};
use super::node::SimNode;
use super::rng::Rng;
use super::{Sabotage, SimConfig};
use crate::remote::membership::Member;

/// A node's periodic duties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Heartbeats on every connection, and silent connections closed.
    Heartbeat,
    /// The reachability judgement.
    Judge,
    /// Membership's rejoin announcements.
    Rejoin,
    /// Dialing the seed while not connected to it.
    Seed,
}

/// What happens at a point of simulated time.
#[derive(Debug)]
pub(crate) enum Ev {
    /// Bytes are readable at `to` on `conn` (the pipe's readable time).
    Deliver { conn: u64, to: usize },
    /// A dial from `from` to `to` is refused (nobody listens).
    DialRefused { from: End, to: usize },
    /// The handshake of `conn` at the end `at` reaches its bound.
    ShakeTimeout { at: End, conn: u64 },
    /// A timer foca asked for.
    Timer { at: End, timer: Timer<Member> },
    /// A periodic duty.
    Tick { at: End, tick: Tick },
    /// An ask's deadline.
    AskDeadline { at: End, id: u64 },
    /// The workload issues a call.
    Workload,
    /// The fault schedule acts.
    Fault,
    /// A crashed node restarts (if still down at this incarnation).
    Restart { node: usize, crashed: u64 },
    /// The last faults before the heal: a partition long enough for
    /// members to be declared down, and a crash.
    Finale,
    /// The ownership invariant is looked at.
    Owners,
    /// The finale's partition starts.
    FinalePartition,
    /// The final heal.
    Heal,
    /// Convergence is looked at.
    Converge,
}

impl Ev {
    /// What the digest records of an event: its kind and target.
    fn code(&self) -> [u8; 9] {
        let (kind, target) = match self {
            Ev::Deliver { conn, to } => (0, *conn ^ ((*to as u64) << 32)),
            Ev::DialRefused { from, to } => (1, (from.node * 8 + to) as u64),
            Ev::ShakeTimeout { at, conn } => (13, *conn ^ ((at.node as u64) << 32)),
            Ev::Timer { at, .. } => (2, at.node as u64),
            Ev::Tick { at, tick } => (3, at.node as u64 * 8 + *tick as u64),
            Ev::AskDeadline { id, .. } => (4, *id),
            Ev::Workload => (5, 0),
            Ev::Fault => (6, 0),
            Ev::Restart { node, .. } => (7, *node as u64),
            Ev::Heal => (8, 0),
            Ev::Finale => (10, 0),
            Ev::Owners => (11, 0),
            Ev::FinalePartition => (12, 0),
            Ev::Converge => (9, 0),
        };
        let mut out = [kind; 9];
        out[1..].copy_from_slice(&target.to_le_bytes());
        out
    }
}

struct Entry {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed: the heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The event log: every line goes into the digest; lines are kept too.
#[derive(Debug)]
pub(crate) struct Log {
    /// FNV-1a over every line and every event's time and kind (frames
    /// delivered, timers, ticks: more than the lines record).
    pub(crate) digest: u64,
    pub(crate) lines: Vec<String>,
    pub(crate) count: usize,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            digest: 0xcbf2_9ce4_8422_2325,
            lines: Vec::new(),
            count: 0,
        }
    }
}

impl Log {
    fn mix(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.digest ^= u64::from(*b);
            self.digest = self.digest.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn push(&mut self, line: String) {
        self.mix(line.as_bytes());
        self.mix(b"\n");
        self.count += 1;
        self.lines.push(line);
    }
}

/// The phase of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Faults are injected.
    Faults,
    /// The finale's partition holds; no other fault.
    Finale,
    /// Everything healed at `at`; waiting for the views to agree.
    Healing { at: Duration },
    /// The views agreed (or the bound passed); asks drain.
    Draining,
}

/// The whole simulated cluster.
pub(crate) struct World {
    pub(crate) cfg: SimConfig,
    pub(crate) now: Duration,
    /// The `Instant` that simulated time zero stands for (the reachability
    /// judge takes `Instant`s; only differences matter).
    pub(crate) base: Instant,
    queue: BinaryHeap<Entry>,
    seq: u64,
    pub(crate) rng: Rng,
    /// Each node, `None` while crashed.
    pub(crate) nodes: Vec<Option<SimNode>>,
    /// Each node's current (or last) incarnation.
    pub(crate) incarnations: Vec<u64>,
    /// The services each node runs (stable across restarts).
    pub(crate) services: Vec<Vec<String>>,
    pub(crate) net: Net,
    pub(crate) checker: Checker,
    pub(crate) log: Log,
    pub(crate) phase: Phase,
    pub(crate) next_msg: u64,
    pub(crate) faults: usize,
    pub(crate) heal_time: Option<Duration>,
    pub(crate) events: usize,
    pub(crate) sabotage: Sabotage,
    /// When the run stops (set once the views agreed or the bound passed:
    /// the longest ask deadline later).
    pub(crate) end: Option<Duration>,
    /// The last change of the network or of the nodes (for the ownership
    /// invariant).
    pub(crate) changed: Duration,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// How long before the final heal the finale starts.
pub(crate) const FINALE: Duration = Duration::from_secs(20);

/// How long the cluster settles, healed, before the finale's partition.
pub(crate) const FINALE_SETTLE: Duration = Duration::from_secs(6);

/// How often the ownership invariant is looked at.
pub(crate) const OWNERS_EVERY: Duration = Duration::from_millis(50);

/// The warm-up before the first fault.
pub(crate) const WARM_UP: Duration = Duration::from_secs(5);

impl World {
    /// A world of `n` nodes for `cfg`.
    pub(crate) fn new(cfg: SimConfig, n: usize) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let services = super::scenario::services(&mut rng, n);
        let sabotage = cfg.sabotage;
        Self {
            cfg,
            now: Duration::ZERO,
            base: Instant::now(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            nodes: (0..n).map(|_| None).collect(),
            incarnations: vec![0; n],
            services,
            net: Net::default(),
            checker: Checker::default(),
            log: Log::default(),
            phase: Phase::Faults,
            next_msg: 0,
            faults: 0,
            heal_time: None,
            events: 0,
            sabotage,
            end: None,
            changed: Duration::ZERO,
        }
    }

    /// Schedules `ev` at `at` (never before now).
    pub(crate) fn at(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Entry {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    /// Schedules `ev` after `after`.
    pub(crate) fn after(&mut self, after: Duration, ev: Ev) {
        self.at(self.now + after, ev);
    }

    /// Appends a line to the event log.
    pub(crate) fn note(&mut self, node: &str, what: std::fmt::Arguments<'_>) {
        let t = self.now.as_micros();
        self.log.push(format!(
            "{:>5}.{:06} {node:<3} {what}",
            t / 1_000_000,
            t % 1_000_000
        ));
    }

    /// The node `end` names, if it runs at that incarnation.
    pub(crate) fn live(&mut self, end: End) -> Option<&mut SimNode> {
        self.nodes
            .get_mut(end.node)?
            .as_mut()
            .filter(|n| n.info.incarnation == end.incarnation)
    }

    /// The name of node `i`.
    pub(crate) fn name(i: usize) -> String {
        format!("n{i}")
    }

    /// The index of the node named `name`.
    pub(crate) fn index(name: &str) -> Option<usize> {
        name.strip_prefix('n')?.parse().ok()
    }

    /// Runs the scenario to its end.
    pub(crate) fn run(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
        self.at(WARM_UP, Ev::Fault);
        self.at(Duration::from_millis(100), Ev::Workload);
        let heal = WARM_UP + self.cfg.fault_phase;
        self.at(heal.saturating_sub(FINALE), Ev::Finale);
        self.at(heal, Ev::Heal);
        self.at(OWNERS_EVERY, Ev::Owners);
        while let Some(e) = self.queue.pop() {
            if self.end.is_some_and(|end| e.at > end) {
                break;
            }
            self.step(e);
        }
    }

    /// Processes every event due by `until`, then stands at `until` (tests
    /// drive a world of their own so).
    #[cfg(test)]
    pub(crate) fn run_until(&mut self, until: Duration) {
        while self.queue.peek().is_some_and(|e| e.at <= until) {
            if let Some(e) = self.queue.pop() {
                self.step(e);
            }
        }
        self.now = until;
    }

    /// Processes one event, then checks the invariants.
    fn step(&mut self, e: Entry) {
        self.now = e.at;
        self.events += 1;
        self.log.mix(&e.at.as_nanos().to_le_bytes());
        self.log.mix(&e.ev.code());
        let touched = self.dispatch(e.ev);
        if let Some(i) = touched {
            self.check_view(i);
        }
        self.checker.after_step(self.now);
    }

    fn dispatch(&mut self, ev: Ev) -> Option<usize> {
        match ev {
            Ev::Deliver { conn, to } => {
                self.deliver(conn, to);
                Some(to)
            }
            Ev::DialRefused { from, to } => {
                self.dial_refused(from, to);
                Some(from.node)
            }
            Ev::ShakeTimeout { at, conn } => {
                self.shake_timeout(at, conn);
                Some(at.node)
            }
            Ev::Timer { at, timer } => {
                let e = self.live(at)?.membership.timer(timer);
                self.apply(at.node, e);
                Some(at.node)
            }
            Ev::Tick { at, tick } => {
                self.live(at)?;
                self.tick(at, tick);
                Some(at.node)
            }
            Ev::AskDeadline { at, id } => {
                self.ask_deadline(at, id);
                Some(at.node)
            }
            Ev::Workload => {
                self.workload();
                None
            }
            Ev::Fault => {
                self.fault();
                None
            }
            Ev::Restart { node, crashed } => {
                if self.nodes[node].is_none() && self.incarnations[node] == crashed {
                    self.start(node);
                }
                Some(node)
            }
            Ev::Heal => {
                self.heal();
                None
            }
            Ev::Finale => {
                self.finale();
                None
            }
            Ev::FinalePartition => {
                self.finale_partition();
                None
            }
            Ev::Owners => {
                self.check_owners();
                if self.phase != Phase::Draining {
                    self.after(OWNERS_EVERY, Ev::Owners);
                }
                None
            }
            Ev::Converge => {
                self.converge();
                None
            }
        }
    }

    /// Reports `i`'s view to the checker (members alive or suspect).
    fn check_view(&mut self, i: usize) {
        let Some(n) = self.nodes[i].as_ref() else {
            return;
        };
        let live: Vec<(String, u64)> = n
            .membership
            .view()
            .into_iter()
            .filter(|(_, s)| *s != "down")
            .map(|(info, _)| (info.name, info.incarnation))
            .collect();
        let (name, inc) = (n.info.name.clone(), n.info.incarnation);
        self.checker.view(&name, inc, &live, self.now);
    }
}
