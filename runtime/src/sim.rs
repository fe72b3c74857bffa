//! A deterministic simulation of a whole cluster (3 to 7 nodes in one
//! thread, simulated time, one seed).
//!
//! The full runtime (actix arbiters, tokio timers, threads) cannot run under
//! simulated time, so the simulation drives the runtime's **real** protocol
//! pieces, sans-IO, with explicit time and a seeded generator:
//!
//! * real: membership ([`Membership`](crate::remote::membership), foca with
//!   msa's timing, rejoin ticks, table-version and reachability gossip), the
//!   reachability judge, the frame codec and the stream decoder, the
//!   in-memory transport's link rules and pipes (`remote/transport/memory/`:
//!   every frame's encoded bytes are written to its connection's pipe,
//!   delayed by the link's latency, held by a cut and released in order by
//!   the heal, and read in pieces of a seeded size into the receiver's
//!   decoder, so a frame may arrive split), the handshake (the runtime's
//!   sans-IO `Dialer` and `Listener`, with the cluster secret and nonces
//!   from the seed: a dial opens the pipes at once and `Hello`,
//!   `Challenge`, `Auth`, `Welcome` cross them like any frame, so a cut
//!   holds a handshake and a heal releases it; each end is connected when
//!   its own state machine is done; the dialer gives up after the connect
//!   timeout, 3 s, the listener after the handshake timeout, 5 s; a refusal
//!   is read by the dialer), a connection's close as the pipes have it (an
//!   end that closes, or crashes, shuts its writing pipe: the other end
//!   reads what it held, then the end of the stream, not across a cut; a
//!   reset empties both pipes and each end reads the end at its next
//!   delivery), the wire errors and their conversion to
//!   [`CallError`](crate::CallError), `ClusterStatus`'s definition of
//!   agreement;
//! * modelled: which frames are dropped (whole membership frames, decided
//!   before the write), a dial of a node that does not run (refused one
//!   round trip later), the remoting driver's reactions (dial a member it
//!   must reach, announce on connect, close a connection silent for 3 s or
//!   whose member is declared down, ping every 500 ms, fetch a newer table;
//!   of two connections to one peer, both ends keep the one dialed by the
//!   lower index instead of the runtime's retirement with `CallsDone`, and
//!   a node does not dial a peer whose `Hello` it is answering), the
//!   registry's routing (the tables held from peers this node reaches;
//!   keyed calls by the key's hash) and the services (a call is handled
//!   where it lands).
//!
//! Faults, picked by the seed: crashes (state lost) and restarts (a new
//! incarnation), symmetric partitions, one-way cuts, partial cuts, heals,
//! per-link delays, dropped whole frames, connection resets, and service
//! table changes; the scenario ends with a heal of everything.
//!
//! Invariants, checked after every step ([`Violation`]): every ask ends by
//! its deadline, with a reply or a typed error; no ask ends twice; no
//! message is handled twice; a node never lists an older incarnation of a
//! member alive after it saw a newer one; after the final heal every node's
//! view agrees with the truth within 15 s of simulated time.
//!
//! Nothing on the simulated path reads the wall clock (the `Instant` the
//! reachability judge takes is a fixed base plus simulated time) or
//! iterates a hash map, so a seed replays with the same event log.
//!
//! # Examples
//! ```
//! use msa_runtime::sim::{run, SimConfig};
//! let report = run(&SimConfig::new(7)).unwrap();
//! assert!(report.violations.is_empty(), "seed {}: {:?}", report.seed, report.violations);
//! assert_eq!(run(&SimConfig::new(7)).unwrap().digest, report.digest);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

mod calls;
mod check;
mod connection;
mod net;
mod node;
mod rng;
mod sbr;
mod scenario;
mod wire;
mod world;

pub use check::Violation;

/// A test-only fault in the simulated nodes, proving the checker checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Sabotage {
    /// None: the nodes behave.
    #[default]
    None,
    /// A caller keeps an answered ask open, so its deadline ends it again.
    AnswerTwice,
    /// A caller sends every remote call twice.
    SendTwice,
    /// The nodes run no split-brain resolver, but the ownership invariant
    /// is checked as if they did.
    NoResolver,
    /// The nodes skip the join step: every node is up at start and counts
    /// every member (as before the join step).
    NoJoinStep,
    /// The last node holds another cluster secret: every handshake with it
    /// is refused.
    WrongSecret,
}

/// The fault schedule of a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Script {
    /// Faults picked by the seed, and the finale (the default).
    #[default]
    Random,
    /// One partial cut, n0 ⇄ n2 (n1 reaches both), from the end of the
    /// warm-up until the final heal; no other fault, no finale. The
    /// ownership invariant is checked under it too.
    PartialCut,
}

/// One simulation's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: everything follows from it.
    pub seed: u64,
    /// The number of nodes (3 to 7); `None`: picked by the seed.
    pub nodes: Option<usize>,
    /// How long faults are injected (after a 5 s warm-up).
    pub fault_phase: Duration,
    /// After the final heal, the views must agree within this (15 s).
    pub heal_bound: Duration,
    /// The split-brain policy of every node (`None`: no resolver). The
    /// default is keep-majority with a 5 s `stable_after`.
    pub split_brain: Option<crate::remote::split_brain::SplitBrainConfig>,
    pub(crate) sabotage: Sabotage,
    pub(crate) script: Script,
}

impl SimConfig {
    /// The default scenario for `seed`: 3 to 7 nodes, 32 s of faults (the
    /// last 20 s a finale), a 15 s convergence bound, the split-brain
    /// resolver on (keep-majority).
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            nodes: None,
            fault_phase: Duration::from_secs(32),
            heal_bound: Duration::from_secs(15),
            split_brain: Some(crate::remote::split_brain::SplitBrainConfig::default()),
            sabotage: Sabotage::None,
            script: Script::Random,
        }
    }

    /// The same with `n` nodes.
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = Some(n);
        self
    }
}

/// What a simulation did and found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimReport {
    /// The seed (replay with `msa sim --seed`).
    pub seed: u64,
    /// The number of nodes.
    pub nodes: usize,
    /// Broken invariants (empty: the run passed).
    pub violations: Vec<Violation>,
    /// A digest of the whole event log (equal for equal runs).
    pub digest: u64,
    /// The event log, one line per event: time, node, what happened.
    pub log: Vec<String>,
    /// Events processed.
    pub events: usize,
    /// Faults injected.
    pub faults: usize,
    /// How long the views took to agree after the final heal.
    pub heal_time: Option<Duration>,
    /// Asks by outcome (`Reply`, `Timeout`, `NodeDown`, ...).
    pub asks: BTreeMap<String, usize>,
    /// The simulated time the run covered.
    pub simulated: Duration,
}

impl SimReport {
    /// Whether no invariant broke.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The cluster size is outside 3 to 7.
    #[error("a simulated cluster has 3 to 7 nodes, not {nodes}")]
    Nodes {
        /// The size asked for.
        nodes: usize,
    },
}

/// Runs one simulation.
///
/// # Errors
/// [`SimError::Nodes`] for a cluster size outside 3 to 7.
pub fn run(cfg: &SimConfig) -> Result<SimReport, SimError> {
    let n = match cfg.nodes {
        Some(n) if !(3..=7).contains(&n) => return Err(SimError::Nodes { nodes: n }),
        Some(n) => n,
        None => 3 + (rng::Rng::new(cfg.seed).below(5) as usize),
    };
    let mut w = world::World::new(cfg.clone(), n);
    w.run();
    if w.heal_time.is_none() && w.checker.violations.is_empty() {
        w.checker.violations.push(Violation::NotConverged {
            bound: cfg.heal_bound,
            why: "the run ended before the views were compared".into(),
        });
    }
    Ok(SimReport {
        seed: cfg.seed,
        nodes: n,
        violations: std::mem::take(&mut w.checker.violations),
        digest: w.log.digest,
        log: std::mem::take(&mut w.log.lines),
        events: w.events,
        faults: w.faults,
        heal_time: w.heal_time,
        asks: w.checker.outcomes(),
        simulated: w.now,
    })
}

#[cfg(test)]
mod connection_tests;
#[cfg(test)]
mod tests;
