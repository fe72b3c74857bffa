//! Frames on the simulated network: encoded with the runtime's real frame
//! codec, carried as bytes, decoded by the receiver's real frame decoder,
//! and handled as the remoting layer handles them (membership, heartbeats,
//! service tables, calls).

use crate::message::codec;
use crate::remote::frame::{encode_into, Frame, Route};
use crate::remote::wire_error::{CallSite, WireError};
use crate::CallError;

use super::net::Sent;
use super::world::{Ev, World};
use super::Sabotage;

impl World {
    /// Node `i` sends `frame` on `conn`.
    pub(crate) fn send(&mut self, i: usize, conn: u64, frame: &Frame) {
        let mut bytes = Vec::new();
        if let Err(e) = encode_into(frame, crate::remote::DEFAULT_MAX_FRAME_BYTES, &mut bytes) {
            self.note(&Self::name(i), format_args!("encode failed: {e}"));
            return;
        }
        let jitter = std::time::Duration::from_micros(self.rng.below(2_000));
        let roll = self.rng.unit();
        let to = self.net.conns.get(&conn).map(|c| c.other(i).node);
        // Only membership messages may be lost alone: a data frame is lost
        // only with its connection (see the module docs).
        let droppable = matches!(frame, Frame::Membership { .. });
        match (
            self.net.send(conn, i, self.now, jitter, roll, droppable),
            to,
        ) {
            (Sent::At(at), Some(to)) => self.at(at, Ev::Deliver { conn, to, bytes }),
            (Sent::Held, Some(to)) => self
                .net
                .held
                .entry((i, to))
                .or_default()
                .push((conn, bytes)),
            (Sent::Lost(why), to) => {
                let to = to.map(Self::name).unwrap_or_default();
                self.note(
                    &Self::name(i),
                    format_args!("{} to {to} lost: {why}", frame.kind()),
                );
            }
            (Sent::At(_) | Sent::Held, None) => {}
        }
    }

    /// Frames held on links no longer cut go on, in order.
    pub(crate) fn release_held(&mut self) {
        for (from, to, conn, bytes) in self.net.releasable() {
            if let Some(at) = self.net.release(conn, from, self.now) {
                self.at(at, Ev::Deliver { conn, to, bytes });
            }
        }
    }

    /// Bytes arrive at `to` on `conn`: decoded, then handled frame by frame.
    pub(crate) fn deliver(&mut self, conn: u64, to: usize, bytes: Vec<u8>) {
        let Some(c) = self.net.conns.get_mut(&conn) else {
            return;
        };
        let dir = usize::from(c.a.node == to);
        let (me, from) = if dir == 0 { (c.b, c.a) } else { (c.a, c.b) };
        let decoder = &mut c.decoders[dir];
        decoder.push(&bytes);
        let mut frames = Vec::new();
        let mut bad = None;
        loop {
            match decoder.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    bad = Some(e.to_string());
                    break;
                }
            }
        }
        if self.live(me).is_none() {
            return;
        }
        for f in frames {
            self.frame(to, from.node, conn, f);
        }
        if let Some(e) = bad {
            self.note(&Self::name(to), format_args!("bad frame: {e}"));
            self.close_conn(conn, "bad frame");
        }
    }

    /// Node `i` handles `frame` from `from` on `conn`.
    fn frame(&mut self, i: usize, from: usize, conn: u64, frame: Frame) {
        let now = self.now;
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let downed = n.self_downed();
        let Some(p) = n.peers.get_mut(&from).filter(|p| p.conn == conn) else {
            return;
        };
        p.heard = now;
        match frame {
            Frame::Membership { payload } => {
                let e = n.membership.data(&payload);
                self.apply(i, e);
            }
            Frame::Ping { id, table } => {
                let fetch = p.want_table(table);
                self.send(i, conn, &Frame::Pong { id });
                if fetch {
                    self.send(i, conn, &Frame::TableRequest);
                }
            }
            Frame::TableRequest => {
                let f = Frame::Table {
                    version: n.version,
                    services: n.services.clone(),
                    members: Vec::new(),
                };
                self.send(i, conn, &f);
            }
            Frame::Table {
                version, services, ..
            } if !downed && p.table.as_ref().is_none_or(|t| t.0 < version) => {
                let names = services.iter().map(|s| s.name.clone()).collect();
                let (peer, inc) = (p.info.name.clone(), p.info.incarnation);
                p.table = Some((version, services));
                n.reach.record_services(&peer, inc, names);
                self.note(
                    &Self::name(i),
                    format_args!("table of {peer} ({inc}) version {version}"),
                );
            }
            Frame::Ask {
                id, route, payload, ..
            } => self.serve(i, conn, Some(id), route, &payload),
            Frame::Tell { route, payload, .. } => self.serve(i, conn, None, route, &payload),
            Frame::Reply { id, .. } => self.resolve(i, id, Ok(())),
            Frame::Error { id, error } => {
                let e = n.pending.get(&id).map(|p| {
                    error.into_call_error(&CallSite {
                        service: &p.service,
                        message: "sim.Op",
                        node: &p.node,
                        timeout: p.timeout,
                    })
                });
                if let Some(e) = e {
                    self.resolve(i, id, Err(e));
                }
            }
            _ => {}
        }
    }

    /// Node `i` serves a call (an ask when `id` is set).
    fn serve(&mut self, i: usize, conn: u64, id: Option<u64>, route: Route, payload: &[u8]) {
        let service = match route {
            Route::Once { service, .. } | Route::Named { service, .. } => service,
            _ => String::new(),
        };
        let Ok(msg) = codec::decode::<u64>(payload) else {
            self.note(&Self::name(i), format_args!("undecodable call"));
            return;
        };
        let Some(n) = self.nodes[i].as_ref() else {
            return;
        };
        let downed = !n.serving();
        let runs = !downed && n.services.iter().any(|s| s.name == service);
        if runs {
            self.checker.handled(msg, &Self::name(i), self.now);
        }
        let Some(id) = id else { return };
        let reply = if downed {
            // A downed or joining node refuses calls (`CallError::Downed`
            // or `Joining` in the runtime; its caller here sees `NodeDown`).
            Frame::Error {
                id,
                error: WireError::ShuttingDown,
            }
        } else if runs {
            Frame::Reply {
                id,
                payload: payload.to_vec(),
            }
        } else {
            Frame::Error {
                id,
                error: WireError::NoInstance,
            }
        };
        self.send(i, conn, &reply);
    }

    /// Node `i`'s ask `id` ends with `outcome` (ignored if it ended before:
    /// a late reply).
    pub(crate) fn resolve(&mut self, i: usize, id: u64, outcome: Result<(), CallError>) {
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let p = if self.sabotage == Sabotage::AnswerTwice {
            // Test only: the ask is left open, so its deadline ends it again.
            n.pending.get(&id).map(|p| p.msg)
        } else {
            n.pending.remove(&id).map(|p| p.msg)
        };
        let text = match &outcome {
            Ok(()) => "Reply".to_string(),
            Err(e) => format!("{e:?}"),
        };
        match p {
            Some(msg) => {
                self.note(&Self::name(i), format_args!("ask {msg} ended: {text}"));
                self.checker.ask_ended(msg, self.now, text);
            }
            None => self.note(
                &Self::name(i),
                format_args!("late answer to call {id} ignored: {text}"),
            ),
        }
    }

    /// Closes `conn`; both ends drop the peer and fail its asks with
    /// `NodeDown`.
    pub(crate) fn close_conn(&mut self, conn: u64, why: &str) {
        let Some((a, b)) = self.net.close(conn) else {
            return;
        };
        self.note(
            &Self::name(a.node),
            format_args!("connection {conn} to {} closed: {why}", Self::name(b.node)),
        );
        for (me, other) in [(a, b), (b, a)] {
            let Some(n) = self.live(me) else { continue };
            if n.peers.get(&other.node).is_some_and(|p| p.conn == conn) {
                n.peers.remove(&other.node);
            }
            let failed: Vec<u64> = n
                .pending
                .iter()
                .filter(|(_, p)| p.conn == conn)
                .map(|(id, _)| *id)
                .collect();
            for id in failed {
                let node = Self::name(other.node);
                self.resolve(me.node, id, Err(CallError::NodeDown { node }));
            }
        }
    }
}
