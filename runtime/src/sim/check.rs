//! The invariants, checked after every step of a simulation. The checker
//! sees only what the simulated nodes did (asks started and ended, messages
//! handled, each node's membership view); it is fed by the world and can be
//! fed a hand-made trace (its unit tests do, to prove it catches each
//! violation).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A broken invariant, with the simulated time it was seen at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// An ask was still open past its deadline.
    #[error("at {now:?}: ask {ask} still open past its deadline {deadline:?}")]
    AskOverran {
        /// The ask (its message id).
        ask: u64,
        /// Its deadline.
        deadline: Duration,
        /// When the checker saw it open.
        now: Duration,
    },
    /// An ask ended twice (two replies, or a reply and an error).
    #[error("at {at:?}: ask {ask} answered twice ({first}, then {second})")]
    AnsweredTwice {
        /// The ask.
        ask: u64,
        /// When it ended the second time.
        at: Duration,
        /// Its first outcome.
        first: String,
        /// Its second outcome.
        second: String,
    },
    /// A message (tell or ask) was handled twice.
    #[error("at {at:?}: message {message} handled a second time, by {node}")]
    HandledTwice {
        /// The message id.
        message: u64,
        /// The node that handled it again.
        node: String,
        /// When.
        at: Duration,
    },
    /// A node's view listed an older incarnation of a member alive after it
    /// had seen a newer one.
    #[error("at {at:?}: {observer} sees {subject} alive at incarnation {listed} after seeing incarnation {seen}")]
    OldIncarnation {
        /// The node whose view it is.
        observer: String,
        /// The member.
        subject: String,
        /// The incarnation listed now.
        listed: u64,
        /// The newest incarnation the observer had seen.
        seen: u64,
        /// When.
        at: Duration,
    },
    /// After the last heal the views did not agree within the bound.
    #[error("views still disagree {bound:?} after the last heal: {why}")]
    NotConverged {
        /// The bound.
        bound: Duration,
        /// The first difference found.
        why: String,
    },
    /// With the split-brain policy on, a key had two owners past
    /// `stable_after`.
    #[error("at {at:?}: key {key} has two owners: {owners:?}")]
    TwoOwners {
        /// The key.
        key: String,
        /// The nodes that each believe they own it.
        owners: Vec<String>,
        /// When.
        at: Duration,
    },
}

#[derive(Debug)]
struct Ask {
    deadline: Duration,
    outcome: Option<String>,
}

/// Checks the invariants as the trace unfolds.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    asks: BTreeMap<u64, Ask>,
    /// Open asks by deadline.
    open: BTreeSet<(Duration, u64)>,
    handled: BTreeSet<u64>,
    /// (observer, observer's incarnation, subject) → newest incarnation seen.
    seen: BTreeMap<(String, u64, String), u64>,
    pub(crate) violations: Vec<Violation>,
}

impl Checker {
    /// An ask was sent (or tried) at some time, due by `deadline`.
    pub(crate) fn ask_started(&mut self, ask: u64, deadline: Duration) {
        self.asks.insert(
            ask,
            Ask {
                deadline,
                outcome: None,
            },
        );
        self.open.insert((deadline, ask));
    }

    /// An ask ended at `at` with `outcome` (a reply or a typed error, as
    /// text); also used when its caller crashed (the ask ends with it).
    pub(crate) fn ask_ended(&mut self, ask: u64, at: Duration, outcome: String) {
        let Some(a) = self.asks.get_mut(&ask) else {
            return;
        };
        match &a.outcome {
            Some(first) => self.violations.push(Violation::AnsweredTwice {
                ask,
                at,
                first: first.clone(),
                second: outcome,
            }),
            None => {
                self.open.remove(&(a.deadline, ask));
                a.outcome = Some(outcome);
            }
        }
    }

    /// `node` handled message `message` (a tell or an ask) at `at`.
    pub(crate) fn handled(&mut self, message: u64, node: &str, at: Duration) {
        if !self.handled.insert(message) {
            self.violations.push(Violation::HandledTwice {
                message,
                node: node.to_string(),
                at,
            });
        }
    }

    /// `observer` (at incarnation `incarnation`) lists these members as
    /// alive or suspect: (name, incarnation).
    pub(crate) fn view(
        &mut self,
        observer: &str,
        incarnation: u64,
        live: &[(String, u64)],
        at: Duration,
    ) {
        for (subject, listed) in live {
            let key = (observer.to_string(), incarnation, subject.clone());
            let seen = self.seen.entry(key).or_insert(*listed);
            if *listed < *seen {
                self.violations.push(Violation::OldIncarnation {
                    observer: observer.to_string(),
                    subject: subject.clone(),
                    listed: *listed,
                    seen: *seen,
                    at,
                });
            } else {
                *seen = *listed;
            }
        }
    }

    /// After a step at `now`: every open ask must still be within its
    /// deadline (one that is not is reported once).
    pub(crate) fn after_step(&mut self, now: Duration) {
        while let Some(&(deadline, ask)) = self.open.first() {
            if deadline >= now {
                break;
            }
            self.open.pop_first();
            self.violations
                .push(Violation::AskOverran { ask, deadline, now });
        }
    }

    /// How many asks ended with each outcome's kind (the text up to its
    /// first space), sorted.
    pub(crate) fn outcomes(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for a in self.asks.values() {
            let kind = a
                .outcome
                .as_deref()
                .map(|o| o.split(' ').next().unwrap_or(o).to_string())
                .unwrap_or_else(|| "open".to_string());
            *m.entry(kind).or_insert(0) += 1;
        }
        m
    }
}
