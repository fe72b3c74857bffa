//! Frames on the simulated network: encoded with the runtime's real frame
//! codec, carried as bytes, decoded by the receiver's real frame decoder,
//! and handled as the remoting layer handles them (membership, heartbeats,
//! service tables, calls).

use crate::message::codec;
use crate::remote::frame::{encode_into, Frame, Route};
use crate::remote::wire_error::{CallSite, WireError};
use crate::CallError;

use super::net::{Sent, Wake};
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
        // Only membership messages may be lost alone: a data frame is lost
        // only with its connection (see the module docs).
        let droppable = matches!(frame, Frame::Membership { .. });
        let sent = self
            .net
            .send(conn, i, self.now, (jitter, roll), droppable, &bytes);
        let lost = match sent {
            Sent::Deliver(w) => return self.wake(w),
            Sent::Queued => return,
            Sent::Lost(why) => why,
            Sent::Full => "the pipe is full",
        };
        let to = self
            .net
            .conns
            .get(&conn)
            .map(|c| Self::name(c.other(i).node));
        self.note(
            &Self::name(i),
            format_args!(
                "{} to {} lost: {lost}",
                frame.kind(),
                to.unwrap_or_default()
            ),
        );
        if sent == Sent::Full {
            // A writer blocked on a full pipe: the runtime's connection
            // would stall and be closed as silent; here it closes now.
            self.close_conn(conn, i, "pipe full");
        }
    }

    /// Schedules the delivery `w`.
    pub(crate) fn wake(&mut self, w: Wake) {
        let Wake { conn, to, at } = w;
        self.at(at, Ev::Deliver { conn, to });
    }

    /// Schedules the deliveries a heal made due (what a cut held goes on,
    /// in order).
    pub(crate) fn wake_all(&mut self, wakes: Vec<Wake>) {
        for w in wakes {
            self.wake(w);
        }
    }

    /// Bytes (or the end of the stream) are readable at `to` on `conn`: it
    /// reads them, decodes them, and handles them frame by frame (its
    /// handshake's first); at the end of the stream it closes its end.
    pub(crate) fn deliver(&mut self, conn: u64, to: usize) {
        let Some(r) = self.net.receive(conn, to, self.now) else {
            return;
        };
        if let Some(w) = r.next {
            self.wake(w);
        }
        if self.live(r.me).is_none() {
            return;
        }
        for f in r.frames {
            self.frame(to, r.from.node, conn, f);
        }
        if let Some(e) = r.bad {
            self.note(&Self::name(to), format_args!("bad frame: {e}"));
            self.close_conn(conn, to, "bad frame");
        }
        if r.eof {
            self.close_conn(conn, to, "end of stream");
        }
    }

    /// Node `i` handles `frame` from `from` on `conn`.
    fn frame(&mut self, i: usize, from: usize, conn: u64, frame: Frame) {
        let now = self.now;
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        if n.shakes.contains_key(&conn) {
            return self.shake(i, from, conn, frame);
        }
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

    /// Node `me` closes its end of `conn` (a dropped stream): it forgets
    /// the connection at once (its handshake, or its peer, whose asks end
    /// with `NodeDown`); the other end reads what the pipe holds, then the
    /// end of the stream, at its own time.
    pub(crate) fn close_conn(&mut self, conn: u64, me: usize, why: &str) {
        let Some((end, other, wake)) = self.net.close(conn, me, self.now) else {
            return;
        };
        if let Some(w) = wake {
            self.wake(w);
        }
        self.note(
            &Self::name(me),
            format_args!(
                "connection {conn} to {} closed: {why}",
                Self::name(other.node)
            ),
        );
        let Some(n) = self.live(end) else { return };
        if let Some(super::connection::Shake::Dialing { to, .. }) = n.shakes.remove(&conn) {
            n.dialing.remove(&to);
        }
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
            self.resolve(me, id, Err(CallError::NodeDown { node }));
        }
    }
}
