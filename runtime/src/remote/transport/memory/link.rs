//! The rules of directed links between hosts: which are cut, and the
//! latency each adds. Sans-IO: plain ordered data (no lock, no clock, no
//! tokio), so iterating it is deterministic. [`MemoryNetwork`] keeps one
//! per network (hosts are names) and the deterministic simulation one per
//! world (hosts are node indices); both apply a [`Link`] to each direction
//! of a connection ([`PipeCore::set_link`]).
//!
//! [`MemoryNetwork`]: super::MemoryNetwork
//! [`PipeCore::set_link`]: super::pipe::PipeCore::set_link

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The rules of one direction of a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Link {
    /// Bytes are held (not delivered) until the cut heals.
    pub(crate) cut: bool,
    /// Added to the delivery time of every byte written.
    pub(crate) latency: Duration,
}

/// The rules of every directed link `(from, to)` between hosts `H`; a
/// link with no rule passes at once.
#[derive(Debug, Clone)]
pub(crate) struct LinkRules<H> {
    /// Directed links whose bytes are held.
    pub(crate) cut: BTreeSet<(H, H)>,
    /// Directed links with added latency (never zero).
    latency: BTreeMap<(H, H), Duration>,
}

impl<H> Default for LinkRules<H> {
    fn default() -> Self {
        Self {
            cut: BTreeSet::new(),
            latency: BTreeMap::new(),
        }
    }
}

impl<H: Ord + Clone> LinkRules<H> {
    /// The rules of `from → to`.
    pub(crate) fn link(&self, from: &H, to: &H) -> Link {
        let key = (from.clone(), to.clone());
        Link {
            cut: self.cut.contains(&key),
            latency: self.latency.get(&key).copied().unwrap_or_default(),
        }
    }

    /// Whether `from → to` delivers (is not cut).
    pub(crate) fn passes(&self, from: &H, to: &H) -> bool {
        !self.cut.contains(&(from.clone(), to.clone()))
    }

    /// Whether a new connection between `a` and `b` fails: a cut either
    /// way stops a handshake, which needs both directions.
    pub(crate) fn dial_blocked(&self, a: &H, b: &H) -> bool {
        !self.passes(a, b) || !self.passes(b, a)
    }

    /// The added latency of a round trip `a → b → a`.
    pub(crate) fn round_trip(&self, a: &H, b: &H) -> Duration {
        self.link(a, b).latency + self.link(b, a).latency
    }

    /// Cuts `from → to` only.
    pub(crate) fn cut_one_way(&mut self, from: H, to: H) {
        self.cut.insert((from, to));
    }

    /// Restores `a → b` and `b → a`.
    pub(crate) fn heal(&mut self, a: &H, b: &H) {
        self.cut.remove(&(a.clone(), b.clone()));
        self.cut.remove(&(b.clone(), a.clone()));
    }

    /// Restores every cut link (latencies stay).
    pub(crate) fn heal_all(&mut self) {
        self.cut.clear();
    }

    /// Sets the added latency of `from → to` (zero removes it).
    pub(crate) fn set_latency_one_way(&mut self, from: H, to: H, latency: Duration) {
        if latency.is_zero() {
            self.latency.remove(&(from, to));
        } else {
            self.latency.insert((from, to), latency);
        }
    }

    /// Removes every added latency (cuts stay).
    pub(crate) fn clear_latency(&mut self) {
        self.latency.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_without_rules_passes_at_once() {
        let rules = LinkRules::<u8>::default();
        assert_eq!(rules.link(&1, &2), Link::default());
        assert!(rules.passes(&1, &2));
        assert!(!rules.dial_blocked(&1, &2));
        assert_eq!(rules.round_trip(&1, &2), Duration::ZERO);
    }

    #[test]
    fn a_one_way_cut_holds_one_direction_and_blocks_dials_both_ways() {
        let mut rules = LinkRules::default();
        rules.cut_one_way(1u8, 2);
        assert!(rules.link(&1, &2).cut && !rules.link(&2, &1).cut);
        assert!(rules.dial_blocked(&1, &2) && rules.dial_blocked(&2, &1));
        assert!(!rules.dial_blocked(&1, &3), "other links are not affected");
        rules.heal(&2, &1);
        assert!(rules.passes(&1, &2) && !rules.dial_blocked(&1, &2));
    }

    #[test]
    fn latency_is_per_direction_and_survives_a_heal_all() {
        let mut rules = LinkRules::default();
        let ms = Duration::from_millis;
        rules.set_latency_one_way(1u8, 2, ms(30));
        rules.set_latency_one_way(2, 1, ms(5));
        rules.cut_one_way(1, 2);
        rules.heal_all();
        assert_eq!(
            rules.link(&1, &2),
            Link {
                cut: false,
                latency: ms(30)
            }
        );
        assert_eq!(rules.round_trip(&2, &1), ms(35));
        rules.set_latency_one_way(1, 2, Duration::ZERO);
        assert_eq!(rules.link(&1, &2).latency, Duration::ZERO);
        rules.set_latency_one_way(1, 2, ms(30));
        rules.clear_latency();
        assert_eq!(rules.round_trip(&1, &2), Duration::ZERO);
    }
}
