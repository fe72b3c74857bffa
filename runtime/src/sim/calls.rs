//! The workload: tells and asks from random live nodes to the services,
//! routed as a node routes them (its own instances and the tables it holds
//! from peers it reaches; keyed by the key's hash), each ask with a deadline.

use std::time::Duration;

use crate::message::codec;
use crate::remote::frame::{Frame, Route, WireMeta};
use crate::CallError;

use super::net::End;
use super::node::Pending;
use super::world::{Ev, Phase, World};
use super::Sabotage;

/// The services a call picks from ("extra" comes and goes with table changes).
/// The longest deadline an ask gets.
pub(crate) const MAX_ASK_TIMEOUT: Duration = Duration::from_secs(3);

const SERVICES: [&str; 4] = ["echo", "kv", "solo", "extra"];

impl World {
    /// Issues one call and schedules the next (until the scenario drains).
    pub(crate) fn workload(&mut self) {
        if self.phase == Phase::Draining {
            return;
        }
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect();
        if !live.is_empty() {
            let from = live[self.rng.index(live.len())];
            let service = SERVICES[self.rng.index(SERVICES.len())];
            let key = (service == "kv").then(|| self.rng.below(super::sbr::KEYS));
            let ask = self.rng.chance(0.7);
            let timeout =
                Duration::from_millis(self.rng.range(500, MAX_ASK_TIMEOUT.as_millis() as u64));
            self.call(from, service, key, ask.then_some(timeout));
        }
        let next = Duration::from_millis(self.rng.range(10, 60));
        self.after(next, Ev::Workload);
    }

    /// Node `i` calls `service`: an ask with `timeout`, or a tell.
    pub(crate) fn call(
        &mut self,
        i: usize,
        service: &str,
        key: Option<u64>,
        timeout: Option<Duration>,
    ) {
        self.next_msg += 1;
        let msg = self.next_msg;
        let Some(n) = self.nodes[i].as_ref() else {
            return;
        };
        if let Some(t) = timeout {
            self.checker.ask_started(msg, self.now + t);
        }
        let candidates = self.candidates(i, service);
        let name = Self::name(i);
        let kind = if timeout.is_some() { "ask" } else { "tell" };
        if candidates.is_empty() {
            let e = match n.reach.unreachable_host(service) {
                // A downed node's calls fail at once (`CallError::Downed`
                // in the runtime).
                _ if !n.serving() => CallError::NodeDown { node: name.clone() },
                Some(node) => CallError::Unreachable { node },
                None => CallError::NoInstance {
                    service: service.to_string(),
                },
            };
            self.note(&name, format_args!("{kind} {msg} to {service}: {e:?}"));
            if timeout.is_some() {
                self.checker.ask_ended(msg, self.now, format!("{e:?}"));
            }
            return;
        }
        let target = match key.and_then(|k| self.owner(i, k)) {
            Some(owner) => owner,
            None => candidates[self.rng.index(candidates.len())],
        };
        self.note(
            &name,
            format_args!("{kind} {msg} to {service} on {}", Self::name(target)),
        );
        if target == i {
            self.checker.handled(msg, &name, self.now);
            if timeout.is_some() {
                self.checker.ask_ended(msg, self.now, "Reply".into());
            }
            return;
        }
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let Some(conn) = n.peers.get(&target).map(|p| p.conn) else {
            return;
        };
        let route = Route::Once {
            service: service.to_string(),
            message: "sim.Op".into(),
        };
        let payload = codec::encode(&msg).unwrap_or_default();
        let frame = match timeout {
            Some(timeout) => {
                n.next_id += 1;
                let id = n.next_id;
                n.pending.insert(
                    id,
                    Pending {
                        msg,
                        conn,
                        service: service.to_string(),
                        node: Self::name(target),
                        timeout,
                    },
                );
                let at = n.end(i);
                self.after(timeout, Ev::AskDeadline { at, id });
                Frame::Ask {
                    id,
                    route,
                    meta: WireMeta {
                        timeout_ms: Some(timeout.as_millis() as u64),
                        ..WireMeta::default()
                    },
                    payload,
                }
            }
            None => Frame::Tell {
                route,
                meta: WireMeta::default(),
                payload,
            },
        };
        self.send(i, conn, &frame);
        if self.sabotage == Sabotage::SendTwice {
            // Test only: a retry bug sends the call a second time.
            self.send(i, conn, &frame);
        }
    }

    /// The nodes node `i` routes `service` to, sorted: itself if it runs
    /// it, and the peers it reaches whose tables list it (none while the
    /// split-brain resolver downed it, or while it is joining).
    pub(crate) fn candidates(&self, i: usize, service: &str) -> Vec<usize> {
        let Some(n) = self.nodes[i].as_ref() else {
            return Vec::new();
        };
        if !n.serving() {
            return Vec::new();
        }
        let mut candidates: Vec<usize> = n
            .peers
            .iter()
            .filter(|(_, p)| !n.reach.is_unreachable(&p.info.name))
            .filter(|(_, p)| {
                p.table
                    .as_ref()
                    .is_some_and(|t| t.1.iter().any(|s| s.name == service))
            })
            .map(|(j, _)| *j)
            .collect();
        if n.services.iter().any(|s| s.name == service) {
            candidates.push(i);
            candidates.sort_unstable();
        }
        candidates
    }

    /// The owner of key `k` of `kv` as node `i` routes it.
    pub(crate) fn owner(&self, i: usize, k: u64) -> Option<usize> {
        let c = self.candidates(i, "kv");
        if c.is_empty() {
            return None;
        }
        let h = crate::key_hash(&k.to_le_bytes());
        Some(c[(h % c.len() as u64) as usize])
    }

    /// An ask's deadline: it ends with `Timeout` if still open.
    pub(crate) fn ask_deadline(&mut self, at: End, id: u64) {
        let Some(n) = self.live(at) else { return };
        let Some(p) = n.pending.get(&id) else { return };
        let e = CallError::Timeout {
            service: p.service.clone(),
            after: p.timeout,
        };
        self.resolve(at.node, id, Err(e));
    }
}
