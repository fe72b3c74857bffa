//! The split-brain resolver (issue 10, item 2), sans-IO.
//!
//! When a network partition cuts a cluster in two, each side sees the other
//! unreachable and, left alone, both would keep serving as if they were the
//! cluster (keyed routing included: one key owned on both sides). As Akka's
//! Split Brain Resolver does, each node waits until the set of members it
//! cannot reach has been unchanged for `stable_after`, then applies the same
//! deterministic [`SplitBrainStrategy`] to what it sees; both sides reach
//! complementary verdicts without talking to each other:
//!
//! * the side that wins **downs the members it cannot reach**
//!   ([`SbrDecision::DownUnreachable`]);
//! * the side that loses **downs itself** ([`SbrDecision::DownSelf`]).
//!
//! [`decide`] is the pure decision over one view; [`SplitBrainResolver`] adds
//! the stable-after timer, driven by explicit time (no clock, no I/O), so a
//! simulation or a test steps it at will. The membership driver
//! (`remote/remoting/split_brain.rs`) feeds it the node's view and carries
//! out its decisions.
//!
//! # Examples
//! ```
//! use std::time::{Duration, Instant};
//! use msa_runtime::remote::split_brain::{
//!     SbrDecision, SbrMember, SplitBrainConfig, SplitBrainResolver,
//! };
//!
//! let member = |name: &str, port: u16, reachable: bool| SbrMember {
//!     name: name.into(),
//!     address: format!("127.0.0.1:{port}"),
//!     age: u64::from(port),
//!     reachable,
//! };
//! // Node "a" reaches "b" but not "c": the majority side.
//! let view = [member("a", 7001, true), member("b", 7002, true), member("c", 7003, false)];
//! let mut sbr = SplitBrainResolver::new("a", SplitBrainConfig::default());
//! let t0 = Instant::now();
//! assert_eq!(sbr.step(&view, t0), None); // the timer starts
//! assert_eq!(sbr.step(&view, t0 + Duration::from_secs(1)), None); // not stable yet
//! assert_eq!(
//!     sbr.step(&view, t0 + Duration::from_secs(5)),
//!     Some(SbrDecision::DownUnreachable(vec!["c".into()]))
//! );
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The default time a partition must be stable before the resolver acts.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(5);

/// Which side of a partition survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SplitBrainStrategy {
    /// The side with more members survives; on a tie, the side holding the
    /// member with the lowest address (the default).
    #[default]
    KeepMajority,
    /// A side with at least `quorum_size` members survives; a side below it
    /// downs itself (both sides, if both are below). Set `quorum_size` above
    /// half the cluster's size, or both sides of a split may survive.
    StaticQuorum {
        /// The least number of members a side needs to survive.
        quorum_size: usize,
    },
    /// The side holding the oldest member (lowest age, then lowest address)
    /// survives, unless the oldest is alone and the other side has two
    /// members or more: then the oldest downs itself and the others survive
    /// (Akka's `down-if-alone`, see [`decide`]).
    KeepOldest,
    /// No split-brain resolution: members stay unreachable until they come
    /// back or an operator downs them (`msa cluster down`).
    Off,
}

impl SplitBrainStrategy {
    /// The strategy named `name` (`keep-majority`, `static-quorum`,
    /// `keep-oldest` or `off`); `static-quorum` needs `quorum_size`, which
    /// may also be written into the name (`static-quorum:3`).
    ///
    /// # Errors
    /// [`SplitBrainConfigError`] for an unknown name, a static quorum
    /// without a size (or of size 0, or a size that is not a number), or a
    /// size given to another strategy.
    ///
    /// # Examples
    /// ```
    /// use msa_runtime::remote::split_brain::SplitBrainStrategy;
    /// assert_eq!(
    ///     SplitBrainStrategy::parse("static-quorum", Some(2)),
    ///     Ok(SplitBrainStrategy::StaticQuorum { quorum_size: 2 })
    /// );
    /// assert!(SplitBrainStrategy::parse("keep-everyone", None).is_err());
    /// ```
    pub fn parse(name: &str, quorum_size: Option<usize>) -> Result<Self, SplitBrainConfigError> {
        let name = name.trim();
        let (base, inline) = match name.split_once(':') {
            Some((b, n)) => {
                let n = n.trim().parse::<usize>().map_err(|_| {
                    SplitBrainConfigError::BadQuorumSize {
                        given: n.trim().to_string(),
                    }
                })?;
                (b.trim(), Some(n))
            }
            None => (name, None),
        };
        let size = match (inline, quorum_size) {
            (Some(a), Some(b)) if a != b => {
                return Err(SplitBrainConfigError::BadQuorumSize {
                    given: format!("{a} and {b}"),
                })
            }
            (a, b) => a.or(b),
        };
        let strategy = match base {
            "keep-majority" => Self::KeepMajority,
            "keep-oldest" => Self::KeepOldest,
            "off" => Self::Off,
            "static-quorum" => match size {
                None => return Err(SplitBrainConfigError::MissingQuorumSize),
                Some(0) => return Err(SplitBrainConfigError::BadQuorumSize { given: "0".into() }),
                Some(quorum_size) => return Ok(Self::StaticQuorum { quorum_size }),
            },
            other => {
                return Err(SplitBrainConfigError::UnknownStrategy {
                    given: other.to_string(),
                })
            }
        };
        if size.is_some() {
            return Err(SplitBrainConfigError::QuorumSizeWithoutStaticQuorum {
                strategy: base.to_string(),
            });
        }
        Ok(strategy)
    }

    /// The strategy's configuration name (`keep-majority`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::KeepMajority => "keep-majority",
            Self::StaticQuorum { .. } => "static-quorum",
            Self::KeepOldest => "keep-oldest",
            Self::Off => "off",
        }
    }
}

impl FromStr for SplitBrainStrategy {
    type Err = SplitBrainConfigError;

    /// As [`SplitBrainStrategy::parse`] without a separate quorum size.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, None)
    }
}

impl std::fmt::Display for SplitBrainStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StaticQuorum { quorum_size } => write!(f, "static-quorum:{quorum_size}"),
            other => f.write_str(other.name()),
        }
    }
}

/// A node's split-brain policy: the strategy, and how long the set of
/// unreachable members must stay unchanged before it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitBrainConfig {
    /// Which side survives.
    pub strategy: SplitBrainStrategy,
    /// How long a partition must be stable (the unreachable set unchanged)
    /// before the strategy is applied. Default 5 s. In serde forms, a
    /// number of milliseconds (`stable_after_ms`).
    #[serde(rename = "stable_after_ms", with = "millis")]
    pub stable_after: Duration,
}

/// `Duration` as whole milliseconds in serde forms.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Default for SplitBrainConfig {
    fn default() -> Self {
        Self {
            strategy: SplitBrainStrategy::KeepMajority,
            stable_after: DEFAULT_STABLE_AFTER,
        }
    }
}

impl SplitBrainConfig {
    /// A policy, checked.
    ///
    /// # Errors
    /// [`SplitBrainConfigError::ZeroStableAfter`] for a zero `stable_after`
    /// (a decision on a partition not seen stable at all), and a static
    /// quorum of size 0.
    pub fn new(
        strategy: SplitBrainStrategy,
        stable_after: Duration,
    ) -> Result<Self, SplitBrainConfigError> {
        let c = Self {
            strategy,
            stable_after,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks the policy (as [`new`](Self::new)).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn validate(&self) -> Result<(), SplitBrainConfigError> {
        if self.stable_after.is_zero() {
            return Err(SplitBrainConfigError::ZeroStableAfter);
        }
        if self.strategy == (SplitBrainStrategy::StaticQuorum { quorum_size: 0 }) {
            return Err(SplitBrainConfigError::BadQuorumSize { given: "0".into() });
        }
        Ok(())
    }
}

/// Why a split-brain policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitBrainConfigError {
    /// A strategy name that is not one of the four.
    #[error("unknown split-brain strategy {given:?} (expected keep-majority, static-quorum, keep-oldest or off)")]
    UnknownStrategy {
        /// The name given.
        given: String,
    },
    /// `static-quorum` without a quorum size.
    #[error("split-brain strategy static-quorum needs a quorum size (split_brain.quorum_size, or static-quorum:N)")]
    MissingQuorumSize,
    /// A quorum size that is not a positive number (or two that differ).
    #[error("bad split-brain quorum size {given:?}: a positive number expected")]
    BadQuorumSize {
        /// What was given.
        given: String,
    },
    /// A quorum size given to a strategy other than `static-quorum`.
    #[error("a quorum size applies to static-quorum only, not {strategy}")]
    QuorumSizeWithoutStaticQuorum {
        /// The strategy named.
        strategy: String,
    },
    /// A zero `stable_after`.
    #[error("split_brain.stable_after must be above zero")]
    ZeroStableAfter,
}

/// One member as the deciding node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SbrMember {
    /// Its node name.
    pub name: String,
    /// Its remoting address (`host:port`, or any name on the memory
    /// network): the tie-breaker.
    pub address: String,
    /// Its age ordering value: lower is older (msa uses the incarnation,
    /// the node's start time).
    pub age: u64,
    /// Whether the deciding node reaches it (the deciding node itself:
    /// `true`).
    pub reachable: bool,
}

/// What a node does after a partition was stable for `stable_after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SbrDecision {
    /// This node's side lost: it downs itself.
    DownSelf,
    /// This node's side won: the named members (those it cannot reach,
    /// sorted) are downed.
    DownUnreachable(Vec<String>),
    /// Nothing to do (no member unreachable, or the strategy is `off`).
    NoAction,
}

/// A total, deterministic order of addresses that every node computes the
/// same: socket addresses by (ip, port), then any other name as a string.
fn address_order(a: &str, b: &str) -> Ordering {
    match (a.parse::<SocketAddr>(), b.parse::<SocketAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// The member first in `address_order`, then by name.
fn lowest_address<'a>(members: impl Iterator<Item = &'a SbrMember>) -> Option<&'a SbrMember> {
    members.min_by(|x, y| address_order(&x.address, &y.address).then_with(|| x.name.cmp(&y.name)))
}

/// The decision of `me` over `members` (which include `me`) under
/// `strategy`. The side of `me` is `me` and every member it reaches; the
/// other side is every member it does not reach.
///
/// * No member unreachable, the strategy `off`, or `me` not among
///   `members`: [`SbrDecision::NoAction`].
/// * **keep-majority**: the larger side survives; on a tie, the side that
///   holds the member with the lowest address (socket addresses compared as
///   addresses, `127.0.0.1:9` before `127.0.0.1:10`; other names as text).
/// * **static-quorum**: a side with at least `quorum_size` members survives
///   and downs the other; a side below the quorum downs itself.
/// * **keep-oldest**: the side holding the oldest member (lowest `age`,
///   ties by address) survives, except when the oldest is alone on its
///   side and the other side has two members or more: then the oldest's
///   side downs itself (Akka's `down-if-alone`, so one node cut off cannot
///   take the whole cluster down). In a 1 | 1 split the oldest is kept
///   (Akka downs it there: we keep it so a two-node cluster keeps its
///   oldest node, the stated intent of the strategy).
///
/// # Examples
/// ```
/// use msa_runtime::remote::split_brain::{decide, SbrDecision, SbrMember, SplitBrainStrategy};
/// let m = |name: &str, reachable| SbrMember {
///     name: name.into(), address: format!("{name}:1"), age: 1, reachable,
/// };
/// let view = [m("a", true), m("b", false), m("c", false)];
/// assert_eq!(decide(&SplitBrainStrategy::KeepMajority, "a", &view), SbrDecision::DownSelf);
/// ```
pub fn decide(strategy: &SplitBrainStrategy, me: &str, members: &[SbrMember]) -> SbrDecision {
    if !members.iter().any(|m| m.name == me) || *strategy == SplitBrainStrategy::Off {
        return SbrDecision::NoAction;
    }
    let ours = || members.iter().filter(|m| m.reachable || m.name == me);
    let theirs = || members.iter().filter(|m| !m.reachable && m.name != me);
    let mut unreachable: Vec<String> = theirs().map(|m| m.name.clone()).collect();
    if unreachable.is_empty() {
        return SbrDecision::NoAction;
    }
    unreachable.sort();
    unreachable.dedup();
    let (n_ours, n_theirs) = (ours().count(), theirs().count());
    let keep = match strategy {
        SplitBrainStrategy::KeepMajority => match n_ours.cmp(&n_theirs) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => {
                lowest_address(members.iter()).is_some_and(|m| m.reachable || m.name == me)
            }
        },
        SplitBrainStrategy::StaticQuorum { quorum_size } => n_ours >= *quorum_size,
        SplitBrainStrategy::KeepOldest => {
            let oldest = members.iter().min_by(|x, y| {
                x.age
                    .cmp(&y.age)
                    .then_with(|| address_order(&x.address, &y.address))
                    .then_with(|| x.name.cmp(&y.name))
            });
            let oldest_ours = oldest.is_some_and(|m| m.reachable || m.name == me);
            let (oldest_side, other_side) = if oldest_ours {
                (n_ours, n_theirs)
            } else {
                (n_theirs, n_ours)
            };
            let down_if_alone = oldest_side == 1 && other_side >= 2;
            oldest_ours != down_if_alone
        }
        SplitBrainStrategy::Off => return SbrDecision::NoAction,
    };
    if keep {
        SbrDecision::DownUnreachable(unreachable)
    } else {
        SbrDecision::DownSelf
    }
}

/// The members `me` finds **indirectly connected** (as Akka's SBR does):
/// those that are both an observer and a subject of an unreachable pair
/// (`[observer, subject]`, as every node gossips them: `ClusterStatus`'s
/// `unreachable`), a cycle in the unreachability graph. A partial cut
/// (A ⇄ C cut, B reaches both) gives A → C and C → A: A and C are
/// indirectly connected (SWIM keeps both alive through B), B is not. A
/// clean partition or a crash gives none: each side only hears its own
/// side's observations.
///
/// Only pairs between `members` count, and only those `me` observed itself
/// or heard from an observer it reaches: an unreachable observer's report
/// may be stale (nothing newer crosses a partition). So every node that
/// holds the same pairs and reaches the same observers finds the same set.
///
/// # Examples
/// ```
/// use msa_runtime::remote::split_brain::{indirectly_connected, SbrMember};
/// let m = |name: &str| SbrMember {
///     name: name.into(), address: format!("{name}:1"), age: 1, reachable: true,
/// };
/// let view = [m("a"), m("b"), m("c")];
/// let pairs = [["a".to_string(), "c".to_string()], ["c".to_string(), "a".to_string()]];
/// let ic = indirectly_connected("b", &view, &pairs);
/// assert_eq!(ic.into_iter().collect::<Vec<_>>(), ["a", "c"]);
/// ```
pub fn indirectly_connected(
    me: &str,
    members: &[SbrMember],
    pairs: &[[String; 2]],
) -> BTreeSet<String> {
    let member = |n: &str| members.iter().find(|m| m.name == n);
    let usable = |[o, s]: &&[String; 2]| {
        o != s
            && member(s).is_some()
            && (o == me || member(o).is_some_and(|m| m.reachable && m.name != me))
    };
    let used: Vec<&[String; 2]> = pairs.iter().filter(usable).collect();
    let observers: BTreeSet<&String> = used.iter().map(|p| &p[0]).collect();
    used.iter()
        .map(|p| &p[1])
        .filter(|s| observers.contains(s))
        .cloned()
        .collect()
}

/// [`decide`] with the unreachable pairs of the whole cluster: when some
/// members are [`indirectly_connected`], they are downed and the strategy
/// decides for the rest (Akka's `DownIndirectlyConnected`).
///
/// * `me` indirectly connected: [`SbrDecision::DownSelf`].
/// * Otherwise [`SbrDecision::DownUnreachable`] of the indirectly connected
///   members (reachable or not), with what [`decide`] gives over the
///   others (the indirectly connected left out): its unreachable members
///   too, or [`SbrDecision::DownSelf`] if this side loses there.
/// * None indirectly connected: as [`decide`].
///
/// Every node that holds the same pairs and view decides the same: the
/// nodes of the cut down themselves, the others down them.
///
/// # Examples
/// ```
/// use msa_runtime::remote::split_brain::{
///     decide_with_pairs, SbrDecision, SbrMember, SplitBrainStrategy,
/// };
/// let m = |name: &str| SbrMember {
///     name: name.into(), address: format!("{name}:1"), age: 1, reachable: true,
/// };
/// let view = [m("a"), m("b"), m("c")];
/// let pairs = [["a".to_string(), "c".to_string()], ["c".to_string(), "a".to_string()]];
/// let s = SplitBrainStrategy::KeepMajority;
/// assert_eq!(decide_with_pairs(&s, "a", &view, &pairs), SbrDecision::DownSelf);
/// assert_eq!(
///     decide_with_pairs(&s, "b", &view, &pairs),
///     SbrDecision::DownUnreachable(vec!["a".into(), "c".into()])
/// );
/// ```
pub fn decide_with_pairs(
    strategy: &SplitBrainStrategy,
    me: &str,
    members: &[SbrMember],
    pairs: &[[String; 2]],
) -> SbrDecision {
    if !members.iter().any(|m| m.name == me) || *strategy == SplitBrainStrategy::Off {
        return SbrDecision::NoAction;
    }
    let ic = indirectly_connected(me, members, pairs);
    if ic.is_empty() {
        return decide(strategy, me, members);
    }
    if ic.contains(me) {
        return SbrDecision::DownSelf;
    }
    let rest: Vec<SbrMember> = members
        .iter()
        .filter(|m| !ic.contains(&m.name))
        .cloned()
        .collect();
    let mut down: BTreeSet<String> = ic;
    match decide(strategy, me, &rest) {
        SbrDecision::DownSelf => return SbrDecision::DownSelf,
        SbrDecision::DownUnreachable(more) => down.extend(more),
        SbrDecision::NoAction => {}
    }
    SbrDecision::DownUnreachable(down.into_iter().collect())
}

/// [`decide`] behind the stable-after timer: acts only once the set of
/// unreachable members has stayed the same for `stable_after`; a new
/// unreachable member, or one reachable again, restarts the timer (one
/// that leaves the view does not). The members it downed count as
/// unreachable until confirmed gone ([`confirm`](Self::confirm)). Driven
/// by explicit time.
#[derive(Debug, Clone)]
pub struct SplitBrainResolver {
    me: String,
    config: SplitBrainConfig,
    /// The unreachable set last seen, and since when.
    unreachable: BTreeSet<String>,
    /// The indirectly connected members last seen (same timer).
    indirect: BTreeSet<String>,
    since: Option<Instant>,
    /// Whether the current set was already decided on.
    decided: bool,
    /// Members downed by a decision of this resolver: until confirmed gone
    /// ([`confirm`](Self::confirm)) they count as unreachable members of
    /// the other side (as Akka counts the members of the last converged
    /// state). A view gone stale (a partition that began less than the
    /// judge's bound before the decision) must not leave a minority
    /// serving alone (seed 103801 of `msa sim`). Each with when it was
    /// downed: it expires two `stable_after` periods later.
    unconfirmed: BTreeMap<String, (SbrMember, Instant)>,
    /// Since when this side has lost over every view stepped (`DownSelf`
    /// over each): it downs itself `stable_after` after, even if the view
    /// changed meanwhile.
    losing_since: Option<Instant>,
}

impl SplitBrainResolver {
    /// A resolver for the node named `me`.
    pub fn new(me: &str, config: SplitBrainConfig) -> Self {
        Self {
            me: me.to_string(),
            config,
            unreachable: BTreeSet::new(),
            indirect: BTreeSet::new(),
            since: None,
            decided: false,
            unconfirmed: BTreeMap::new(),
            losing_since: None,
        }
    }

    /// The policy.
    pub fn config(&self) -> &SplitBrainConfig {
        &self.config
    }

    /// Takes the view at `now` (`view` includes this node): the decision
    /// when the unreachable set has just been stable for `stable_after`,
    /// once per stable set; `None` otherwise (also when there is nothing
    /// unreachable, or the strategy is `off`). A decision of
    /// [`SbrDecision::NoAction`] is never returned.
    pub fn step(&mut self, view: &[SbrMember], now: Instant) -> Option<SbrDecision> {
        self.step_with_pairs(view, &[], now)
    }

    /// As [`step`](Self::step), with the unreachable pairs of the whole
    /// cluster (`[observer, subject]`): the timer runs while no member
    /// becomes unreachable, none is reachable again and none becomes
    /// [`indirectly_connected`] (a member that leaves the view, or stops
    /// being indirectly connected, does not restart it), and the decision
    /// is [`decide_with_pairs`]'s. A partial
    /// cut (nobody unreachable from here, two members that cannot reach
    /// each other) is then resolved too: its two ends are downed.
    ///
    /// The members a decision downs are **unconfirmed** (the ends of a
    /// partial cut, say: each is downed, and counted for neither side, so
    /// the survivors may be a minority): absent from later views, they
    /// are added as unreachable members, so this side decides again on
    /// them (and downs itself, if they outnumber it) unless the driver
    /// [`confirm`](Self::confirm)s that they know they were downed. A
    /// decision taken on a view already stale (a partition that began
    /// within the judge's bound before it: this side still saw the ends
    /// reachable) cannot then leave a minority serving alone while the
    /// others, who never heard of it, down it as the majority.
    pub fn step_with_pairs(
        &mut self,
        view: &[SbrMember],
        pairs: &[[String; 2]],
        now: Instant,
    ) -> Option<SbrDecision> {
        let with = self.with_unconfirmed(view, now);
        let view = &with[..];
        let set: BTreeSet<String> = view
            .iter()
            .filter(|m| !m.reachable && m.name != self.me)
            .map(|m| m.name.clone())
            .collect();
        let indirect = indirectly_connected(&self.me, view, pairs);
        // A member newly indirectly connected restarts the timer; one that
        // no longer is (downed by its own resolver, gone from the view, its
        // stale report expired) does not: the sides it leaves are the ones
        // already stable, and restarting there would push the decision of
        // a clean partition past `stable_after` each time a stale report
        // expires (seed 100902: a 3 | 3 partition decided 10.8 s late).
        let grew = !indirect.is_subset(&self.indirect);
        // Likewise a member that leaves the unreachable set by leaving the
        // view (an unconfirmed down expired, a graceful leaver removed)
        // does not restart it; one that is back reachable, or a new
        // unreachable member, does. Seed 104745: a lone node's timer
        // restarted when its unconfirmed downs of an earlier partition
        // expired, 6 s into the finale's, and it downed itself 11 s after
        // the cut, long after the majority had downed it.
        let back = self
            .unreachable
            .iter()
            .any(|n| view.iter().any(|m| m.name == *n && m.reachable));
        if !set.is_subset(&self.unreachable) || back || grew || self.since.is_none() {
            self.since = Some(now);
            self.decided = false;
        }
        self.unreachable = set;
        self.indirect = indirect;
        let nothing = self.unreachable.is_empty() && self.indirect.is_empty();
        // This side loses over this view: since when it has lost over
        // every view, whatever changed between them. A node that has lost
        // for `stable_after` downs itself even if its view kept changing
        // meanwhile (downing itself never gives a key a second owner): a
        // member of its own side that flickers (foca downs it and takes it
        // back), or one more member of the other side suspected, restarted
        // the timer while the other side, stable, downed this one (seeds
        // 100844 and 102154 of `msa sim`: the minority downed itself 10 s
        // and 8.7 s after the cut).
        let losing = !nothing
            && decide_with_pairs(&self.config.strategy, &self.me, view, pairs)
                == SbrDecision::DownSelf;
        if !losing {
            self.losing_since = None;
        } else if self.losing_since.is_none() {
            self.losing_since = Some(now);
        }
        let lost_long = self
            .losing_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.config.stable_after);
        if lost_long && !self.decided {
            self.decided = true;
            return Some(SbrDecision::DownSelf);
        }
        if nothing || self.decided {
            return None;
        }
        let since = self.since?;
        if now.saturating_duration_since(since) < self.config.stable_after {
            return None;
        }
        self.decided = true;
        match decide_with_pairs(&self.config.strategy, &self.me, view, pairs) {
            SbrDecision::NoAction => None,
            SbrDecision::DownUnreachable(names) => {
                for m in view.iter().filter(|m| names.contains(&m.name)) {
                    let gone = SbrMember {
                        reachable: false,
                        ..m.clone()
                    };
                    self.unconfirmed.insert(m.name.clone(), (gone, now));
                }
                Some(SbrDecision::DownUnreachable(names))
            }
            d => Some(d),
        }
    }

    /// `view` with the unconfirmed downs added as unreachable members.
    ///
    /// Unconfirmed downs that the view lists again are back (counted by
    /// the driver again): forgotten. And one downed two `stable_after`
    /// periods ago no longer counts (a member that crashed for good never
    /// confirms): a decider whose view was stale has downed itself by then
    /// (its timer restarted at its own decision), and sequential crashes
    /// must not leave the survivors counting the dead against themselves
    /// forever.
    fn with_unconfirmed(&mut self, view: &[SbrMember], now: Instant) -> Vec<SbrMember> {
        let expiry = self.config.stable_after * 2;
        self.unconfirmed.retain(|name, (_, at)| {
            !view.iter().any(|m| m.name == *name) && now.saturating_duration_since(*at) < expiry
        });
        let mut with = view.to_vec();
        with.extend(self.unconfirmed.values().map(|(m, _)| m.clone()));
        with
    }

    /// Whether this node, which downed itself, may come back at `now` over
    /// `view` (every member it sees, joining ones included) and `pairs`:
    ///
    /// * some other member is reachable, and this node has **heard from
    ///   every member it finds reachable, and every member its judge finds
    ///   silent** (`silent`), since it downed itself, on its own
    ///   connections (`heard_since_down`). Its view alone can make a cut
    ///   that lasts look healed: when the far end of a partial cut downs
    ///   itself and renews its identity, membership holds it down for a
    ///   moment, the judge stops observing it, and the view is a clean
    ///   2 | 1 that this side wins; or membership shows the far end alive
    ///   through a third node while its gossiped report misses a pair;
    /// * and [`decide_with_pairs`] over that view, **with the members this
    ///   resolver downed and that are not confirmed gone** (counted as the
    ///   other side, as in [`step_with_pairs`](Self::step_with_pairs)),
    ///   would not down it again: a node that downed itself against them
    ///   must not be back inside the partition as soon as they are out of
    ///   its view.
    ///
    /// The driver passes in `silent` the members its judge still remembers
    /// silent (it forgets a member some time after it dropped out of the
    /// observations, so one that crashed for good stops holding this node
    /// down).
    pub fn may_rejoin(
        &mut self,
        view: &[SbrMember],
        pairs: &[[String; 2]],
        silent: &BTreeSet<String>,
        heard_since_down: &BTreeSet<String>,
        now: Instant,
    ) -> bool {
        let with = self.with_unconfirmed(view, now);
        let me = &self.me;
        let someone = with.iter().any(|m| m.reachable && m.name != *me);
        let waited_for = with
            .iter()
            .filter(|m| m.reachable && m.name != *me)
            .map(|m| &m.name)
            .chain(silent.iter().filter(|n| *n != me));
        let all_heard = waited_for.into_iter().all(|n| heard_since_down.contains(n));
        someone
            && all_heard
            && decide_with_pairs(&self.config.strategy, me, &with, pairs) != SbrDecision::DownSelf
    }

    /// The members this resolver downed and not yet confirmed gone (name,
    /// and `age`: the incarnation downed), sorted by name.
    pub fn unconfirmed(&self) -> Vec<(String, u64)> {
        self.unconfirmed
            .values()
            .map(|(m, _)| (m.name.clone(), m.age))
            .collect()
    }

    /// `name` is known to know it was downed (its gossiped state shows it
    /// downed itself or joining again in a later round, or it restarted):
    /// it no longer counts.
    pub fn confirm(&mut self, name: &str) {
        self.unconfirmed.remove(name);
    }

    /// How long the current unreachable set has been stable at `now`
    /// (zero when nothing is unreachable or indirectly connected).
    pub fn stable_for(&self, now: Instant) -> Duration {
        match self.since {
            Some(s) if !self.unreachable.is_empty() || !self.indirect.is_empty() => {
                now.saturating_duration_since(s)
            }
            _ => Duration::ZERO,
        }
    }

    /// Forgets the current set (after this node rejoined the cluster): the
    /// next step starts a new timer.
    pub fn reset(&mut self) {
        self.unconfirmed.clear();
        self.unreachable.clear();
        self.indirect.clear();
        self.since = None;
        self.decided = false;
        self.losing_since = None;
    }
}

mod counting;
pub(crate) use counting::counts_reachable;

#[cfg(test)]
mod tests;
