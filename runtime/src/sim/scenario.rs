//! The scenario: which services run where, the faults the seed schedules,
//! the final heal, and the convergence check after it.

use std::time::Duration;

use crate::remote::membership::TableVersion;
use crate::remote::{ClusterStatus, MemberView};

use super::calls::MAX_ASK_TIMEOUT;
use super::check::Violation;
use super::node::table;
use super::rng::Rng;
use super::world::{Ev, Phase, World, FINALE_SETTLE};

/// The services of each of `n` nodes: `echo` everywhere, `kv` (keyed) on
/// at least two, `solo` on exactly one.
pub(crate) fn services(rng: &mut Rng, n: usize) -> Vec<Vec<String>> {
    let solo = rng.index(n);
    let kv_a = rng.index(n);
    let kv_b = (kv_a + 1 + rng.index(n - 1)) % n;
    (0..n)
        .map(|i| {
            let mut v = vec!["echo".to_string()];
            if i == kv_a || i == kv_b || rng.chance(0.3) {
                v.push("kv".into());
            }
            if i == solo {
                v.push("solo".into());
            }
            v
        })
        .collect()
}

impl World {
    /// One fault, picked by the seed; the next one is scheduled.
    pub(crate) fn fault(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        if self.cfg.script == super::Script::PartialCut {
            self.changed = self.now;
            self.net.cut(0, 2);
            self.note("net", format_args!("partial cut n0 <-> n2"));
            return;
        }
        let n = self.nodes.len();
        let a = self.rng.index(n);
        let b = (a + 1 + self.rng.index(n - 1)) % n;
        let kind = self.rng.below(11);
        self.faults += 1;
        if kind != 9 {
            self.changed = self.now;
        }
        match kind {
            0 | 1 => {
                let down = self.nodes.iter().filter(|x| x.is_none()).count();
                if self.nodes[a].is_some() && down < n / 2 {
                    let crashed = self.incarnations[a];
                    self.crash(a);
                    let back = Duration::from_millis(self.rng.range(1_000, 10_000));
                    self.after(back, Ev::Restart { node: a, crashed });
                }
            }
            2 => self.partition(),
            3 => {
                self.net.cut_one_way(a, b);
                self.note("net", format_args!("one-way cut n{a} -> n{b}"));
            }
            4 => {
                self.net.cut(a, b);
                self.note("net", format_args!("partial cut n{a} <-> n{b}"));
            }
            5 => {
                let held = self.net.heal_cuts(self.now);
                self.note("net", format_args!("cuts healed"));
                self.wake_all(held);
            }
            6 => {
                let d = Duration::from_millis(self.rng.range(20, 1_500));
                self.net.set_delay(a, b, d);
                self.note("net", format_args!("delay n{a} -> n{b} {d:?}"));
            }
            7 => {
                let p = self.rng.range(5, 50) as f64 / 100.0;
                self.net.set_drop(a, b, p);
                self.note("net", format_args!("drop n{a} -> n{b} {p}"));
            }
            8 => {
                let conns: Vec<u64> = self.net.conns.keys().copied().collect();
                if !conns.is_empty() {
                    let c = conns[self.rng.index(conns.len())];
                    self.note("net", format_args!("reset connection {c}"));
                    let wakes = self.net.reset(c, self.now);
                    self.wake_all(wakes);
                }
            }
            9 => self.change_table(a),
            _ => {
                self.net.clear_faults();
                self.note("net", format_args!("delays and drops cleared"));
            }
        }
        let next = Duration::from_millis(self.rng.range(300, 3_000));
        self.after(next, Ev::Fault);
    }

    /// A symmetric partition into two sides picked by the seed.
    fn partition(&mut self) {
        let n = self.nodes.len();
        let mask = 1 + self.rng.below((1u64 << n) - 2);
        let side = |i: usize| mask & (1 << i) != 0;
        for i in 0..n {
            for j in 0..n {
                if side(i) != side(j) {
                    self.net.cut_one_way(i, j);
                }
            }
        }
        self.note("net", format_args!("partition {mask:#b}"));
    }

    /// The finale (for most seeds): everything heals and, for half of
    /// those seeds, the cluster settles for `FINALE_SETTLE` (no other
    /// fault), then a clean partition
    /// that outlasts failure detection and `stable_after`, with a crash for
    /// half of the seeds; both end only at the final heal.
    ///
    /// For the other half of those seeds the partition comes at once, as
    /// the crashed nodes restart: a node restarts into a partition (the
    /// case the join step exists for, docs/RELIABILITY.md).
    pub(crate) fn finale(&mut self) {
        if self.cfg.script != super::Script::Random || self.rng.chance(0.25) {
            return;
        }
        self.phase = Phase::Finale;
        self.changed = self.now;
        let held = self.net.heal(self.now);
        self.wake_all(held);
        let at_once = self.rng.chance(0.5);
        if at_once {
            self.note("net", format_args!("finale: healed, partitions at once"));
        } else {
            self.note("net", format_args!("finale: healed, settling"));
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_none() {
                self.start(i);
            }
        }
        if at_once {
            self.finale_partition();
        } else {
            self.after(FINALE_SETTLE, Ev::FinalePartition);
        }
    }

    /// The finale's partition (and crash).
    pub(crate) fn finale_partition(&mut self) {
        self.changed = self.now;
        self.partition();
        let a = self.rng.index(self.nodes.len());
        if self.rng.chance(0.5) {
            self.crash(a);
        }
    }

    /// Node `i` changes its service table (the `extra` service comes or
    /// goes) and gossips the new version.
    pub(crate) fn change_table(&mut self, i: usize) {
        let names = self.services[i].clone();
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let extra = !n.services.iter().any(|s| s.name == "extra");
        n.version += 1;
        n.services = table(&names, extra, n.info.incarnation);
        let v = TableVersion {
            node: n.info.name.clone(),
            incarnation: n.info.incarnation,
            version: n.version,
        };
        let version = n.version;
        let e = n.membership.publish_table(v);
        self.note(
            &Self::name(i),
            format_args!("table version {version} (extra: {extra})"),
        );
        self.apply(i, e);
    }

    /// The final heal: every cut, delay and drop ends, every crashed node
    /// restarts; convergence is watched from now on.
    pub(crate) fn heal(&mut self) {
        let held = self.net.heal(self.now);
        self.changed = self.now;
        self.note("net", format_args!("final heal"));
        self.wake_all(held);
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_none() {
                self.start(i);
            }
        }
        self.phase = Phase::Healing { at: self.now };
        self.after(Duration::from_millis(100), Ev::Converge);
    }

    /// Whether the views agree (within the bound after the heal).
    pub(crate) fn converge(&mut self) {
        let Phase::Healing { at } = self.phase else {
            return;
        };
        let why = self.disagreement();
        let took = self.now - at;
        match why {
            None => {
                self.heal_time = Some(took);
                self.note("sim", format_args!("views agree {took:?} after the heal"));
                self.drain();
            }
            Some(why) if took >= self.cfg.heal_bound => {
                self.checker.violations.push(Violation::NotConverged {
                    bound: self.cfg.heal_bound,
                    why,
                });
                self.drain();
            }
            Some(_) => self.after(Duration::from_millis(100), Ev::Converge),
        }
    }

    /// No more calls; the run ends once every open ask's deadline passed.
    fn drain(&mut self) {
        self.phase = Phase::Draining;
        self.end = Some(self.now + MAX_ASK_TIMEOUT + Duration::from_millis(1));
    }

    /// The first difference between a node's view and the truth (every
    /// node alive at its current incarnation, with its current table
    /// version), compared as `ClusterStatus::disagreement` compares views.
    pub(crate) fn disagreement(&self) -> Option<String> {
        let member =
            |name: String, incarnation: u64, status: &str, table_version: u64| MemberView {
                addr: String::new(),
                name,
                status: status.to_string(),
                incarnation,
                table_version,
                reachability: "reachable".into(),
                state: "up".into(),
            };
        let truth = ClusterStatus {
            members: self
                .nodes
                .iter()
                .flatten()
                .map(|n| member(n.info.name.clone(), n.info.incarnation, "alive", n.version))
                .collect(),
            ..ClusterStatus::default()
        };
        if truth.members.len() != self.nodes.len() {
            return Some("a node is down".into());
        }
        if let Some(n) = self
            .nodes
            .iter()
            .flatten()
            .find(|n| !n.join.is_up() && !n.self_downed())
        {
            return Some(format!("{}: still joining", n.info.name));
        }
        for n in self.nodes.iter().flatten() {
            let mut view = ClusterStatus::default();
            view.members.push(member(
                n.info.name.clone(),
                n.info.incarnation,
                "alive",
                n.version,
            ));
            for (info, status) in n.membership.view() {
                let table = Self::index(&info.name)
                    .and_then(|j| n.peers.get(&j))
                    .filter(|p| p.info.incarnation == info.incarnation)
                    .and_then(|p| p.table.as_ref())
                    .map_or(0, |t| t.0);
                view.members
                    .push(member(info.name, info.incarnation, status, table));
            }
            if let Some(d) = truth.disagreement(&view) {
                return Some(format!("{}: {d}", n.info.name));
            }
        }
        None
    }
}
