//! The cluster view: served to clients, and fetched from a node as a client.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{ReadHalf, WriteHalf};

use super::io::{read_raw, write_raw};
use super::{nonce, ConnectionError, Remoting};
use crate::remote::frame::{ConnKind, Frame, FrameDecoder, NodeInfo};
use crate::remote::handshake::{Dialer, HandshakeConfig, Step, PROTOCOLS};
use crate::remote::operator::FaultRequest;
use crate::remote::transport::{BoxStream, Transport};

impl Remoting {
    /// This node's view of the cluster.
    pub(crate) fn status(&self) -> crate::remote::status::ClusterStatus {
        use crate::remote::status::{MemberView, ServiceView};
        // A node downed by its split-brain resolver reads `down` itself.
        let (status, state) = if self.is_closing() {
            ("left", "leaving")
        } else if self.is_self_downed() {
            ("down", "down")
        } else if self.is_joining() {
            // Not admitted yet (the join step, `join_driver.rs`).
            ("alive", "joining")
        } else {
            ("alive", "up")
        };
        let mut members: Vec<MemberView> = vec![MemberView {
            name: self.local.name.clone(),
            addr: self.local.addr.clone(),
            status: status.into(),
            incarnation: self.local.incarnation,
            table_version: self.table_version.load(Ordering::Acquire),
            reachability: "reachable".into(),
            state: state.into(),
        }];
        let connected = self.peers();
        // A copy: the view's lock is not held while other locks are taken.
        let view = self.view.lock().clone();
        for (info, status) in view.iter() {
            if info.name != self.local.name && !members.iter().any(|m| m.name == info.name) {
                members.push(MemberView {
                    name: info.name.clone(),
                    addr: info.addr.clone(),
                    status: (*status).into(),
                    incarnation: info.incarnation,
                    table_version: self.held_table_version(&info.name),
                    reachability: self.reachability_word(&info.name),
                    state: self.state_of(info, status).into(),
                });
            }
        }
        // Connected peers foca has not reported yet are alive.
        for info in connected {
            if !members.iter().any(|m| m.name == info.name) {
                members.push(MemberView {
                    name: info.name.clone(),
                    addr: info.addr.clone(),
                    status: "alive".into(),
                    incarnation: info.incarnation,
                    table_version: self.held_table_version(&info.name),
                    reachability: self.reachability_word(&info.name),
                    state: self.state_of(&info, "alive").into(),
                });
            }
        }
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let services = self
            .node
            .upgrade()
            .map(|n| {
                n.registry()
                    .names()
                    .into_iter()
                    .filter_map(|name| {
                        let e = n.registry().get(&name)?;
                        let mut nodes: Vec<String> =
                            e.remote_instances().into_iter().map(|(n, _)| n).collect();
                        if !e.live_instances().is_empty() {
                            nodes.push(self.local.name.clone());
                        }
                        nodes.sort();
                        nodes.dedup();
                        (!nodes.is_empty()).then_some(ServiceView { name, nodes })
                    })
                    .collect()
            })
            .unwrap_or_default();
        crate::remote::status::ClusterStatus {
            members,
            services,
            unreachable: self.unreachable_pairs(),
        }
    }

    /// A member's state (issue 10 item 2, as Akka names them) from its
    /// membership `status`, the join state it gossiped and what this node
    /// knows of its connection: `exiting` once it said it leaves,
    /// `joining` while it gossips that it is joining (or, not heard yet,
    /// until its service table is here), `up` after; `removed` once it
    /// left gracefully, `down` when failure detection declared it down or
    /// it gossips that its split-brain resolver downed it.
    fn state_of(&self, info: &NodeInfo, status: &str) -> &'static str {
        use crate::remote::join::JoinPhase;
        let gone = (info.name.clone(), info.incarnation);
        let phase = self.join_phase_of(&info.name, info.incarnation);
        match status {
            "down" | "left" if self.removed.lock().contains(&gone) => "removed",
            "down" | "left" => "down",
            _ => match self.peer(&info.name) {
                Some(p) if p.is_leaving() => "exiting",
                _ if phase == Some(JoinPhase::Joining) => "joining",
                // Downed by its own split-brain resolver: back alive in
                // membership at once (a renewed identity), down until it
                // rejoins.
                _ if phase == Some(JoinPhase::Down) => "down",
                _ if phase.is_some() && !self.removed.lock().contains(&gone) => "up",
                Some(p) if p.has_applied_table() => "up",
                _ if self.removed.lock().contains(&gone) => "removed",
                _ if !self.reachable(&info.name) => "up",
                _ => "joining",
            },
        }
    }

    /// Remembers that `info` left gracefully (its state is `removed`).
    pub(super) fn mark_removed(&self, info: &NodeInfo) {
        let mut removed = self.removed.lock();
        removed.insert((info.name.clone(), info.incarnation));
        // Bounded: the oldest are forgotten first (by name, then incarnation).
        while removed.len() > 1024 {
            removed.pop_first();
        }
    }

    fn reachability_word(&self, name: &str) -> String {
        if self.reachable(name) {
            "reachable"
        } else {
            "unreachable"
        }
        .into()
    }

    /// The version of `name`'s service table this node holds (0: none).
    fn held_table_version(&self, name: &str) -> u64 {
        self.peer(name).map_or(0, |p| p.table_version())
    }

    /// Serves a client connection (no membership, no tables): status
    /// requests and calls.
    pub(super) async fn serve_client(
        self: Arc<Self>,
        info: NodeInfo,
        mut rd: ReadHalf<BoxStream>,
        mut wr: WriteHalf<BoxStream>,
        mut dec: FrameDecoder,
    ) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let frame = match tokio::time::timeout(
                self.cfg.dead_after * 10,
                self.read_frame(&mut rd, &mut dec, &mut buf),
            )
            .await
            {
                Ok(Ok(f)) => f,
                _ => break,
            };
            let reply = match frame {
                Frame::StatusRequest => Frame::Status {
                    status: self.status(),
                },
                Frame::Ping { id, .. } => Frame::Pong { id },
                Frame::Fault { request } => {
                    let abort = request == FaultRequest::Abort;
                    let outcome = self.fault(&request);
                    if abort && outcome.is_ok() {
                        tracing::warn!(client = %info.name, "aborting the process on an operator's request");
                        let reply = Frame::FaultReply { outcome };
                        let write = self.write_frame(&mut wr, &reply);
                        let _ = tokio::time::timeout(self.cfg.peer_stall_timeout, write).await;
                        std::process::abort();
                    }
                    if request.leaves(&self.local.name) && outcome.is_ok() {
                        // Answer first, then leave (this connection ends too).
                        let reply = Frame::FaultReply { outcome };
                        let write = self.write_frame(&mut wr, &reply);
                        let _ = tokio::time::timeout(self.cfg.peer_stall_timeout, write).await;
                        self.close();
                        break;
                    }
                    Frame::FaultReply { outcome }
                }
                Frame::Services { request } => Frame::ServicesReply {
                    outcome: self.operate_services(request).await,
                },
                other => {
                    tracing::debug!(client = %info.name, kind = other.kind(), "client frame not served");
                    break;
                }
            };
            // A client that stops reading is let go after the stall timeout.
            let write = self.write_frame(&mut wr, &reply);
            if !matches!(
                tokio::time::timeout(self.cfg.peer_stall_timeout, write).await,
                Ok(Ok(()))
            ) {
                break;
            }
        }
    }
}

/// Connects to `seed` as a client, authenticates, asks for the cluster view.
pub(crate) async fn fetch_status(
    transport: &dyn Transport,
    seed: &str,
    cluster: &str,
    secret: &[u8],
    timeout: Duration,
) -> Result<crate::remote::status::ClusterStatus, crate::remote::status::StatusError> {
    client_exchange(
        transport,
        seed,
        cluster,
        secret,
        timeout,
        Frame::StatusRequest,
        |f| match f {
            Frame::Status { status } => Some(status),
            _ => None,
        },
    )
    .await
}

/// Connects to `seed` as a client, authenticates, sends `request` and
/// returns the first answer `pick` accepts (other frames are skipped).
pub(crate) async fn client_exchange<T>(
    transport: &dyn Transport,
    seed: &str,
    cluster: &str,
    secret: &[u8],
    timeout: Duration,
    request: Frame,
    pick: impl Fn(Frame) -> Option<T>,
) -> Result<T, crate::remote::status::StatusError> {
    use crate::remote::status::StatusError;
    let addr = seed.to_string();
    let work = async {
        let stream = transport
            .connect(addr.clone())
            .await
            .map_err(|e| StatusError::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let cfg = HandshakeConfig {
            cluster: cluster.to_string(),
            secret: secret.to_vec(),
            local: NodeInfo {
                name: format!("msa-client-{}", std::process::id()),
                addr: String::new(),
                incarnation: 0,
            },
            protocols: PROTOCOLS,
        };
        let proto = |e: ConnectionError| StatusError::Protocol {
            addr: addr.clone(),
            reason: e.to_string(),
        };
        let hs_err = |reason: String| StatusError::Handshake {
            addr: addr.clone(),
            reason,
        };
        let max = crate::remote::frame::DEFAULT_MAX_FRAME_BYTES;
        // Handshake frames are small whoever sends them (the node may not
        // be who we think it is until its proof verified).
        let mut dec = FrameDecoder::new(crate::remote::frame::DEFAULT_MAX_HANDSHAKE_FRAME_BYTES);
        let mut buf = vec![0u8; 64 * 1024];
        let (mut hs, hello) = Dialer::start(cfg, ConnKind::Data, nonce());
        write_raw(&mut wr, &hello, max).await.map_err(proto)?;
        loop {
            let f = read_raw(&mut rd, &mut dec, &mut buf).await.map_err(proto)?;
            match hs.on_frame(f) {
                Ok(Step::Send(f)) => {
                    write_raw(&mut wr, &f, max).await.map_err(proto)?;
                }
                Ok(Step::Done(..)) => break,
                Err(e) => return Err(hs_err(e.to_string())),
            }
        }
        super::connect::authenticated(&mut dec, max);
        write_raw(&mut wr, &request, max).await.map_err(proto)?;
        loop {
            // A node may greet with membership or tables first; skip them.
            let f = read_raw(&mut rd, &mut dec, &mut buf).await.map_err(proto)?;
            if let Some(answer) = pick(f) {
                return Ok(answer);
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| StatusError::Protocol {
            addr: seed.to_string(),
            reason: format!("no answer within {timeout:?}"),
        })?
}
