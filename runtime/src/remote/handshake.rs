//! The connection handshake: protocol version, cluster name, and a
//! challenge-response over the shared cluster secret (HMAC-SHA256 with fresh
//! nonces both ways, constant-time verification). Sans-IO: frames in, frames
//! out; the connection task does the I/O.
//!
//! ```text
//! dialer                                   listener
//!   Hello { protocols: min..=max, cluster, node_c, nc, kind } ->
//!                                          <- Challenge { node_s, ns, protocol: v }
//!   Auth { proof_c = H(k, "msa-cli" | cluster | nc | ns | min | max | v | node_c | kind) } ->
//!                                          <- Welcome { proof_s = H(k, "msa-srv" | cluster | ns | nc | min | max | v | node_s) }
//! ```
//! **The dialer proves first** (protocol 6). Whoever opens a connection is
//! the side nobody vouched for yet, so it must show that it holds the
//! secret before the listener computes anything over it: a stranger who
//! connects to a node gets a nonce and the node's name, never a MAC, and so
//! no material to test guesses of a weak secret against offline. (Up to
//! protocol 5 the listener answered `Hello` with its proof over the
//! dialer's nonce, which gave exactly that material to anyone who could
//! reach the port.) The listener proves in `Welcome`, over its own fresh
//! nonce and the dialer's, so the dialer learns it did not reach an
//! impostor. What is left: a node that dials an impostor (a seed address
//! the attacker controls) sends it a MAC over a nonce the impostor chose;
//! only mutual TLS (docs/security.md) removes that, by authenticating the
//! listener before any of this.
//!
//! Each side speaks a range of protocol versions; the listener picks the
//! highest version in both ranges (`v`), and the dialer checks that `v` is
//! one it speaks. Both proofs cover the dialer's range and `v`, so a man in
//! the middle cannot talk the two down to an older version; they also
//! cover each side's `NodeInfo` (and the dialer's `kind`), so it cannot
//! swap who a side says it is or what the connection carries.
//!
//! **Refusals reveal nothing but protocol versions.** No common version:
//! the listener refuses naming both ranges (a peer of another version must
//! learn why). Anything else (another cluster's name, a wrong secret, a
//! frame out of place) is refused with one fixed text, [`REFUSED_AUTH`]:
//! the cluster name is never sent to a peer that has not proved the secret,
//! and the listener does not answer a wrong cluster name any differently
//! from a wrong secret (it only learns which it was, for its own log, after
//! checking the proof). `kind` says whether the connection carries calls
//! (`Data`) or is a peer's membership lane (`Membership`); both are
//! authenticated alike.

use std::ops::RangeInclusive;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::frame::{ConnKind, Frame, NodeInfo, Nonce, Proof};

/// A range of wire protocol versions, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProtocolRange {
    pub(crate) min: u32,
    pub(crate) max: u32,
}

impl ProtocolRange {
    /// The highest version in both ranges, if any (an inverted range, as a
    /// broken peer might send, holds none).
    pub(crate) fn highest_common(self, other: Self) -> Option<u32> {
        let lo = self.min.max(other.min);
        let hi = self.max.min(other.max);
        (lo <= hi).then_some(hi)
    }

    pub(crate) fn contains(self, version: u32) -> bool {
        (self.min..=self.max).contains(&version)
    }

    fn range(self) -> RangeInclusive<u32> {
        self.min..=self.max
    }
}

/// The wire protocol versions this build speaks. 2 added the connection
/// kind to `Hello` (the membership lane); 3 versioned service tables
/// (`Table::version`, `TableRequest`, the version in `Ping`); 4 gave every
/// `CallError` its own wire error code and made `Hello` carry a range of
/// versions (the chosen one comes back in `Challenge`); 5 gossips
/// reachability reports beside table versions and adds reachability to the
/// cluster status (`MemberView::reachability`, `ClusterStatus::unreachable`,
/// new error codes 15 and 16); 6 makes the dialer prove first (`Challenge`
/// carries no proof, `Welcome` carries the listener's), refuses
/// unauthenticated peers without naming the cluster, and carries the
/// caller's signed token and the calling service in a call's metadata
/// (access rules checked by the serving node, error code 18
/// `PermissionDenied`); 7 adds topics (`Topics`, the subscriptions a node
/// advertises after its table, and `Publish`, one event for a node's
/// subscribers; docs/streams.md); 8 adds the live view's `LiveRequest` and
/// `LiveReply` (docs/live-view.md) and `GroupAsk`, an ask to one member of a
/// process group on another node (docs/streams.md, "Groups"); 9 adds
/// `AskBincode`, a call whose message is its bincode encoding named by wire
/// name, forwarded undecoded by a gateway (docs/grpc.md), its wire error
/// codes 20 and 21, and the join step (`Joining`, code 19; the join state
/// gossiped by membership); 10 adds `CallsDone`, the mark a node sends on a
/// duplicate connection it retired, after its last call on it (a retired
/// connection closes only once both ends sent it), and the members a node's
/// split-brain resolver downed to its gossiped join state. A node at 9
/// cannot decode 10's join state (gossip is not negotiated per
/// connection). 11 adds `PublishRun`, a run of topic events of one topic
/// and wire name in one frame, which senders write instead of `Publish`: a
/// node at 10 cannot decode it, so 11 is the oldest version spoken. 12
/// changes no frame: a data connection sends no heartbeat while its
/// membership lane carries frames to the peer, and its reader counts what
/// arrives on the lane before it closes the connection as silent
/// ([`QUIET_DATA_PROTOCOL`]); a connection at 11 pings as before.
pub(crate) const PROTOCOLS: ProtocolRange = ProtocolRange { min: 11, max: 12 };

/// The first protocol version whose data connections go quiet while the
/// membership lane carries frames (issue 12: an idle node of three).
pub(crate) const QUIET_DATA_PROTOCOL: u32 = 12;

/// The first protocol version with `LiveRequest`/`LiveReply`: every peer
/// speaks it today (`PROTOCOLS.min`); the check stays so that a range
/// widened downwards never sends a live request to a peer that cannot
/// decode it.
pub(crate) const LIVE_PROTOCOL: u32 = 8;

/// The only reason sent to a peer refused for anything but the protocol
/// version.
pub(crate) const REFUSED_AUTH: &str = "authentication failed";

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The two nodes speak no protocol version in common.
    #[error("no common protocol version: ours {ours:?}, theirs {theirs:?}")]
    NoCommonVersion {
        /// The versions this node speaks.
        ours: RangeInclusive<u32>,
        /// The versions the peer speaks (or the one it chose).
        theirs: RangeInclusive<u32>,
    },
    /// The peer belongs to another cluster (known to the listener only
    /// after the dialer's proof failed; never told to the peer).
    #[error("cluster name mismatch: ours `{ours}`, theirs `{theirs}`")]
    ClusterMismatch {
        /// Ours.
        ours: String,
        /// Theirs.
        theirs: String,
    },
    /// The peer's proof did not verify: a different cluster secret.
    #[error("authentication failed: the peer does not hold the cluster secret")]
    BadProof,
    /// The peer sent a frame that does not belong at this step.
    #[error("unexpected frame during handshake: {0}")]
    Unexpected(&'static str),
    /// The peer refused us.
    #[error("refused by peer: {0}")]
    Refused(String),
}

type HmacSha256 = Hmac<Sha256>;

/// What one side's proof covers besides the secret.
struct Transcript<'a> {
    label: &'a [u8],
    cluster: &'a str,
    /// The prover's peer's nonce, then its own.
    a: &'a Nonce,
    b: &'a Nonce,
    /// The dialer's range and the version chosen.
    versions: [u32; 3],
    /// Who the prover says it is.
    node: &'a NodeInfo,
    /// The connection kind (the dialer's proof only).
    kind: Option<ConnKind>,
}

fn put_str(mac: &mut HmacSha256, s: &str) {
    mac.update(&(s.len() as u64).to_le_bytes());
    mac.update(s.as_bytes());
}

impl Transcript<'_> {
    /// The MAC over this transcript (every variable-length field is
    /// length-prefixed, so no two transcripts share their bytes).
    fn mac(&self, secret: &[u8]) -> Option<HmacSha256> {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mut mac = HmacSha256::new_from_slice(secret).ok()?;
        mac.update(self.label);
        put_str(&mut mac, self.cluster);
        mac.update(self.a);
        mac.update(self.b);
        for v in self.versions {
            mac.update(&v.to_le_bytes());
        }
        put_str(&mut mac, &self.node.name);
        put_str(&mut mac, &self.node.addr);
        mac.update(&self.node.incarnation.to_le_bytes());
        match self.kind {
            None => mac.update(&[0]),
            Some(ConnKind::Data) => mac.update(&[1]),
            Some(ConnKind::Membership) => mac.update(&[2]),
        }
        Some(mac)
    }

    fn proof(&self, secret: &[u8]) -> Proof {
        match self.mac(secret) {
            Some(m) => m.finalize().into_bytes().into(),
            None => [0; 32],
        }
    }

    fn verify(&self, secret: &[u8], got: &Proof) -> bool {
        // Constant-time comparison.
        self.mac(secret)
            .is_some_and(|m| m.verify_slice(got).is_ok())
    }
}

/// What both sides need.
#[derive(Debug, Clone)]
pub(crate) struct HandshakeConfig {
    pub(crate) cluster: String,
    pub(crate) secret: Vec<u8>,
    pub(crate) local: NodeInfo,
    /// The protocol versions this side speaks ([`PROTOCOLS`] but in tests).
    pub(crate) protocols: ProtocolRange,
}

/// An authenticated peer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// Who the peer is.
    pub(crate) peer: NodeInfo,
    /// The protocol version both sides now speak on this connection.
    pub(crate) protocol: u32,
}

/// The next thing the connection task must do.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Send this frame and wait for the next one.
    Send(Frame),
    /// Done: send this frame (if any); the peer is authenticated.
    Done(Option<Frame>, Outcome),
}

/// What the dialer holds between its `Auth` and the listener's `Welcome`.
#[derive(Debug)]
struct Sent {
    /// The listener as it named itself, and the version it chose.
    peer: Outcome,
    /// The listener's nonce.
    nonce: Nonce,
}

/// The dialing side.
#[derive(Debug)]
pub(crate) struct Dialer {
    cfg: HandshakeConfig,
    nonce: Nonce,
    kind: ConnKind,
    /// Set once `Auth` went out.
    sent: Option<Sent>,
}

impl Dialer {
    /// Starts a handshake for a connection of `kind`; returns the `Hello`
    /// to send.
    pub(crate) fn start(cfg: HandshakeConfig, kind: ConnKind, nonce: Nonce) -> (Self, Frame) {
        let hello = Frame::Hello {
            protocols: cfg.protocols,
            cluster: cfg.cluster.clone(),
            node: cfg.local.clone(),
            nonce,
            kind,
        };
        (
            Self {
                cfg,
                nonce,
                kind,
                sent: None,
            },
            hello,
        )
    }

    /// Feeds the listener's next frame.
    pub(crate) fn on_frame(&mut self, frame: Frame) -> Result<Step, HandshakeError> {
        let c = &self.cfg;
        match (frame, &self.sent) {
            (Frame::Refused { reason }, _) => Err(HandshakeError::Refused(reason)),
            (
                Frame::Challenge {
                    node,
                    nonce,
                    protocol,
                },
                None,
            ) => {
                if !c.protocols.contains(protocol) {
                    return Err(HandshakeError::NoCommonVersion {
                        ours: c.protocols.range(),
                        theirs: protocol..=protocol,
                    });
                }
                let auth = Frame::Auth {
                    proof: Transcript {
                        label: b"msa-cli",
                        cluster: &c.cluster,
                        a: &nonce,
                        b: &self.nonce,
                        versions: [c.protocols.min, c.protocols.max, protocol],
                        node: &c.local,
                        kind: Some(self.kind),
                    }
                    .proof(&c.secret),
                };
                self.sent = Some(Sent {
                    peer: Outcome {
                        peer: node,
                        protocol,
                    },
                    nonce,
                });
                Ok(Step::Send(auth))
            }
            (Frame::Welcome { proof }, Some(sent)) => {
                let ok = Transcript {
                    label: b"msa-srv",
                    cluster: &c.cluster,
                    a: &self.nonce,
                    b: &sent.nonce,
                    versions: [c.protocols.min, c.protocols.max, sent.peer.protocol],
                    node: &sent.peer.peer,
                    kind: None,
                }
                .verify(&c.secret, &proof);
                if !ok {
                    return Err(HandshakeError::BadProof);
                }
                match self.sent.take() {
                    Some(sent) => Ok(Step::Done(None, sent.peer)),
                    None => Err(HandshakeError::Unexpected("welcome")),
                }
            }
            (f, _) => Err(HandshakeError::Unexpected(f.kind())),
        }
    }
}

/// What the listener learnt from `Hello`.
#[derive(Debug)]
struct Hello {
    nonce: Nonce,
    node: NodeInfo,
    protocols: ProtocolRange,
    protocol: u32,
    /// The cluster name the dialer claimed (checked with its proof).
    cluster: String,
}

/// The listening side.
#[derive(Debug)]
pub(crate) struct Listener {
    cfg: HandshakeConfig,
    nonce: Nonce,
    /// The dialer's nonce, identity and the version chosen, once `Hello` arrived.
    hello: Option<Hello>,
    /// What the dialer said the connection carries.
    kind: ConnKind,
}

impl Listener {
    pub(crate) fn new(cfg: HandshakeConfig, nonce: Nonce) -> Self {
        Self {
            cfg,
            nonce,
            hello: None,
            kind: ConnKind::Data,
        }
    }

    /// What the connection carries, as the dialer declared it in `Hello`
    /// (meaningful once the handshake is done).
    pub(crate) fn kind(&self) -> ConnKind {
        self.kind
    }

    /// Feeds the dialer's next frame. On an error, send
    /// [`refusal`](Self::refusal) and close.
    pub(crate) fn on_frame(&mut self, frame: Frame) -> Result<Step, HandshakeError> {
        let c = &self.cfg;
        match (frame, &self.hello) {
            (Frame::LegacyHello { protocol, .. }, None) => Err(HandshakeError::NoCommonVersion {
                ours: c.protocols.range(),
                theirs: protocol..=protocol,
            }),
            (
                Frame::Hello {
                    protocols,
                    cluster,
                    node,
                    nonce,
                    kind,
                },
                None,
            ) => {
                let Some(protocol) = c.protocols.highest_common(protocols) else {
                    return Err(HandshakeError::NoCommonVersion {
                        ours: c.protocols.range(),
                        theirs: protocols.range(),
                    });
                };
                // Whatever the cluster name: a mismatch is told apart from
                // a wrong secret only after the proof, and only in our log.
                let challenge = Frame::Challenge {
                    node: c.local.clone(),
                    nonce: self.nonce,
                    protocol,
                };
                self.hello = Some(Hello {
                    nonce,
                    node,
                    protocols,
                    protocol,
                    cluster,
                });
                self.kind = kind;
                Ok(Step::Send(challenge))
            }
            (Frame::Auth { proof }, Some(hello)) => {
                let versions = [hello.protocols.min, hello.protocols.max, hello.protocol];
                let ok = Transcript {
                    label: b"msa-cli",
                    cluster: &c.cluster,
                    a: &self.nonce,
                    b: &hello.nonce,
                    versions,
                    node: &hello.node,
                    kind: Some(self.kind),
                }
                .verify(&c.secret, &proof);
                if !ok {
                    if hello.cluster != c.cluster {
                        return Err(HandshakeError::ClusterMismatch {
                            ours: c.cluster.clone(),
                            theirs: hello.cluster.clone(),
                        });
                    }
                    return Err(HandshakeError::BadProof);
                }
                let welcome = Frame::Welcome {
                    proof: Transcript {
                        label: b"msa-srv",
                        cluster: &c.cluster,
                        a: &hello.nonce,
                        b: &self.nonce,
                        versions,
                        node: &c.local,
                        kind: None,
                    }
                    .proof(&c.secret),
                };
                let out = Outcome {
                    peer: hello.node.clone(),
                    protocol: hello.protocol,
                };
                Ok(Step::Done(Some(welcome), out))
            }
            (f, _) => Err(HandshakeError::Unexpected(f.kind())),
        }
    }

    /// The frame that tells the peer why it was refused: the protocol
    /// ranges when no version is common, [`REFUSED_AUTH`] for anything
    /// else (never the cluster name, never which check failed).
    pub(crate) fn refusal(err: &HandshakeError) -> Frame {
        let reason = match err {
            HandshakeError::NoCommonVersion { .. } => err.to_string(),
            _ => REFUSED_AUTH.to_string(),
        };
        Frame::Refused { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, cluster: &str, secret: &[u8]) -> HandshakeConfig {
        HandshakeConfig {
            cluster: cluster.into(),
            secret: secret.to_vec(),
            local: NodeInfo {
                name: name.into(),
                addr: format!("127.0.0.1:{}", name.len()),
                incarnation: 1,
            },
            protocols: PROTOCOLS,
        }
    }

    fn speaking(mut cfg: HandshakeConfig, min: u32, max: u32) -> HandshakeConfig {
        cfg.protocols = ProtocolRange { min, max };
        cfg
    }

    /// Runs a handshake between the two configs; returns both outcomes.
    fn run(
        d: HandshakeConfig,
        l: HandshakeConfig,
    ) -> (
        Result<Outcome, HandshakeError>,
        Result<Outcome, HandshakeError>,
    ) {
        let (mut dialer, hello) = Dialer::start(d, ConnKind::Data, [1; 32]);
        let mut listener = Listener::new(l, [2; 32]);
        let challenge = match listener.on_frame(hello) {
            Ok(Step::Send(f)) => f,
            Ok(_) => unreachable!(),
            Err(e) => return (Err(HandshakeError::Refused(e.to_string())), Err(e)),
        };
        let auth = match dialer.on_frame(challenge) {
            Ok(Step::Send(f)) => f,
            Ok(_) => unreachable!(),
            Err(e) => return (Err(e), Err(HandshakeError::Unexpected("closed"))),
        };
        match listener.on_frame(auth) {
            Ok(Step::Done(Some(welcome), dialer_info)) => {
                let got = match dialer.on_frame(welcome) {
                    Ok(Step::Done(None, info)) => Ok(info),
                    Ok(_) => unreachable!(),
                    Err(e) => Err(e),
                };
                (got, Ok(dialer_info))
            }
            Ok(_) => unreachable!(),
            Err(e) => (Err(HandshakeError::Refused(e.to_string())), Err(e)),
        }
    }

    #[test]
    fn same_secret_and_cluster_authenticates_both_ways() {
        let (d, l) = run(cfg("a", "c", b"s3cret"), cfg("bb", "c", b"s3cret"));
        let (d, l) = (d.unwrap(), l.unwrap());
        assert_eq!((d.peer.name.as_str(), d.protocol), ("bb", PROTOCOLS.max));
        assert_eq!((l.peer.name.as_str(), l.protocol), ("a", PROTOCOLS.max));
    }

    #[test]
    fn a_wrong_secret_is_refused_by_the_listener_before_it_proves_anything() {
        let mut listener = Listener::new(cfg("bb", "c", b"right"), [2; 32]);
        let (mut dialer, hello) = Dialer::start(cfg("a", "c", b"wrong"), ConnKind::Data, [1; 32]);
        // A stranger's hello gets the listener's name and nonce, no MAC.
        let Ok(Step::Send(challenge)) = listener.on_frame(hello) else {
            panic!("a challenge");
        };
        assert!(matches!(
            challenge,
            Frame::Challenge { ref node, nonce, protocol } if node.name == "bb" && nonce == [2; 32] && protocol == PROTOCOLS.max
        ));
        let Ok(Step::Send(auth)) = dialer.on_frame(challenge) else {
            panic!("an auth");
        };
        let err = listener.on_frame(auth).unwrap_err();
        assert_eq!(err, HandshakeError::BadProof);
        assert_eq!(
            Listener::refusal(&err),
            Frame::Refused {
                reason: REFUSED_AUTH.into()
            }
        );
    }

    #[test]
    fn a_dialer_without_the_secret_cannot_forge_auth() {
        let mut listener = Listener::new(cfg("bb", "c", b"right"), [2; 32]);
        let (_, hello) = Dialer::start(cfg("a", "c", b"guess"), ConnKind::Data, [1; 32]);
        assert!(matches!(listener.on_frame(hello), Ok(Step::Send(_))));
        let forged = Frame::Auth { proof: [0; 32] };
        assert_eq!(
            listener.on_frame(forged).unwrap_err(),
            HandshakeError::BadProof
        );
    }

    #[test]
    fn a_listener_without_the_secret_cannot_forge_welcome() {
        let (mut dialer, _) = Dialer::start(cfg("a", "c", b"right"), ConnKind::Data, [1; 32]);
        let challenge = Frame::Challenge {
            node: cfg("bb", "c", b"k").local,
            nonce: [2; 32],
            protocol: PROTOCOLS.max,
        };
        assert!(matches!(
            dialer.on_frame(challenge),
            Ok(Step::Send(Frame::Auth { .. }))
        ));
        // An impostor's welcome, made with another secret.
        let mut impostor = Listener::new(cfg("bb", "c", b"guess"), [2; 32]);
        let (_, hello) = Dialer::start(cfg("a", "c", b"guess"), ConnKind::Data, [1; 32]);
        let _ = impostor.on_frame(hello);
        let (mut own, _) = Dialer::start(cfg("a", "c", b"guess"), ConnKind::Data, [1; 32]);
        let Ok(Step::Send(auth)) = own.on_frame(Frame::Challenge {
            node: cfg("bb", "c", b"k").local,
            nonce: [2; 32],
            protocol: PROTOCOLS.max,
        }) else {
            panic!("an auth");
        };
        let Ok(Step::Done(Some(welcome), _)) = impostor.on_frame(auth) else {
            panic!("a welcome");
        };
        assert_eq!(
            dialer.on_frame(welcome).unwrap_err(),
            HandshakeError::BadProof
        );
        // A welcome before any challenge is out of place.
        let (mut early, _) = Dialer::start(cfg("a", "c", b"right"), ConnKind::Data, [1; 32]);
        assert_eq!(
            early
                .on_frame(Frame::Welcome { proof: [0; 32] })
                .unwrap_err(),
            HandshakeError::Unexpected("welcome")
        );
    }

    #[test]
    fn refusals_never_name_the_cluster() {
        // Another cluster with the same secret: the listener knows why
        // (its log) but tells the dialer nothing but "authentication failed".
        let (d, l) = run(cfg("a", "secret-shop", b"k"), cfg("bb", "prod-bank", b"k"));
        let err = l.unwrap_err();
        assert_eq!(
            err,
            HandshakeError::ClusterMismatch {
                ours: "prod-bank".into(),
                theirs: "secret-shop".into()
            }
        );
        let Frame::Refused { reason } = Listener::refusal(&err) else {
            panic!("a refusal");
        };
        assert_eq!(reason, REFUSED_AUTH);
        assert!(!reason.contains("prod-bank") && !reason.contains("secret-shop"));
        assert!(d.is_err());
        // Frames out of place and the dialer's own refusals say the same.
        for e in [
            HandshakeError::BadProof,
            HandshakeError::Unexpected("tell"),
            HandshakeError::Refused("x".into()),
        ] {
            assert_eq!(
                Listener::refusal(&e),
                Frame::Refused {
                    reason: REFUSED_AUTH.into()
                }
            );
        }
        // A dialer of another cluster gets its challenge like anyone (no
        // difference to probe for the cluster's name with).
        let mut listener = Listener::new(cfg("bb", "prod-bank", b"k"), [2; 32]);
        let (_, hello) = Dialer::start(cfg("a", "guess", b"k"), ConnKind::Data, [1; 32]);
        assert!(matches!(
            listener.on_frame(hello),
            Ok(Step::Send(Frame::Challenge { .. }))
        ));
    }

    #[test]
    fn an_old_protocol_is_refused_naming_the_versions_only() {
        // A protocol-2 peer's hello (one version number, not a range).
        let mut listener = Listener::new(cfg("bb", "c", b"k"), [2; 32]);
        let hello = Frame::LegacyHello {
            protocol: 2,
            cluster: "c".into(),
            node: cfg("a", "c", b"k").local,
            nonce: [0; 32],
            kind: ConnKind::Data,
        };
        let err = listener.on_frame(hello).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::NoCommonVersion {
                ours: PROTOCOLS.min..=PROTOCOLS.max,
                theirs: 2..=2
            }
        );
        assert!(matches!(
            Listener::refusal(&err),
            Frame::Refused { reason } if reason == "no common protocol version: ours 11..=12, theirs 2..=2"
        ));
        // A protocol-5 dialer (the listener proved first there).
        let (d, l) = run(speaking(cfg("a", "c", b"k"), 4, 5), cfg("bb", "c", b"k"));
        assert!(matches!(l, Err(HandshakeError::NoCommonVersion { .. })));
        assert!(d.is_err());
    }

    #[test]
    fn the_proofs_bind_who_each_side_is_and_what_the_connection_carries() {
        // A man in the middle renames the dialer, or turns a data
        // connection into a membership lane: the listener's check fails.
        for tamper in 0..2 {
            let (mut dialer, hello) = Dialer::start(cfg("a", "c", b"k"), ConnKind::Data, [1; 32]);
            let Frame::Hello {
                protocols,
                cluster,
                mut node,
                nonce,
                mut kind,
            } = hello
            else {
                panic!("a hello");
            };
            if tamper == 0 {
                node.name = "admin-node".into();
            } else {
                kind = ConnKind::Membership;
            }
            let mut listener = Listener::new(cfg("bb", "c", b"k"), [2; 32]);
            let Ok(Step::Send(challenge)) = listener.on_frame(Frame::Hello {
                protocols,
                cluster,
                node,
                nonce,
                kind,
            }) else {
                panic!("a challenge");
            };
            let Ok(Step::Send(auth)) = dialer.on_frame(challenge) else {
                panic!("an auth");
            };
            assert_eq!(
                listener.on_frame(auth).unwrap_err(),
                HandshakeError::BadProof
            );
        }
        // ... or renames the listener in its challenge: the dialer's check
        // of the welcome fails.
        let (mut dialer, hello) = Dialer::start(cfg("a", "c", b"k"), ConnKind::Data, [1; 32]);
        let mut listener = Listener::new(cfg("bb", "c", b"k"), [2; 32]);
        let Ok(Step::Send(Frame::Challenge {
            mut node,
            nonce,
            protocol,
        })) = listener.on_frame(hello)
        else {
            panic!("a challenge");
        };
        node.name = "other".into();
        let Ok(Step::Send(auth)) = dialer.on_frame(Frame::Challenge {
            node,
            nonce,
            protocol,
        }) else {
            panic!("an auth");
        };
        let Ok(Step::Done(Some(welcome), _)) = listener.on_frame(auth) else {
            panic!("a welcome");
        };
        assert_eq!(
            dialer.on_frame(welcome).unwrap_err(),
            HandshakeError::BadProof
        );
    }

    #[test]
    fn both_sides_settle_on_the_highest_common_version() {
        let (d, l) = run(
            speaking(cfg("a", "c", b"k"), 3, 6),
            speaking(cfg("bb", "c", b"k"), 4, 5),
        );
        assert_eq!(d.unwrap().protocol, 5);
        assert_eq!(l.unwrap().protocol, 5);
        let (d, l) = run(
            speaking(cfg("a", "c", b"k"), 4, 9),
            speaking(cfg("bb", "c", b"k"), 2, 4),
        );
        assert_eq!((d.unwrap().protocol, l.unwrap().protocol), (4, 4));
    }

    #[test]
    fn disjoint_version_ranges_are_refused_naming_both() {
        let (d, l) = run(
            speaking(cfg("a", "c", b"k"), 1, 3),
            speaking(cfg("bb", "c", b"k"), 4, 4),
        );
        let err = l.unwrap_err();
        assert_eq!(
            err,
            HandshakeError::NoCommonVersion {
                ours: 4..=4,
                theirs: 1..=3
            }
        );
        assert!(matches!(
            Listener::refusal(&err),
            Frame::Refused { reason } if reason == "no common protocol version: ours 4..=4, theirs 1..=3"
        ));
        assert!(d.is_err());
        // An inverted range holds no version.
        assert_eq!(
            ProtocolRange { min: 5, max: 4 }.highest_common(PROTOCOLS),
            None
        );
    }

    #[test]
    fn the_dialer_refuses_a_version_it_does_not_speak_or_a_downgraded_range() {
        // A listener that picks a version outside the dialer's range.
        let (mut dialer, _) =
            Dialer::start(speaking(cfg("a", "c", b"k"), 4, 4), ConnKind::Data, [1; 32]);
        let challenge = Frame::Challenge {
            node: cfg("bb", "c", b"k").local,
            nonce: [2; 32],
            protocol: 7,
        };
        assert_eq!(
            dialer.on_frame(challenge).unwrap_err(),
            HandshakeError::NoCommonVersion {
                ours: 4..=4,
                theirs: 7..=7
            }
        );
        // A man in the middle narrows the dialer's range to force an older
        // version: the dialer's proof covers the range it sent, so the
        // listener, checking it against the range it saw, rejects it.
        let (mut dialer, hello) =
            Dialer::start(speaking(cfg("a", "c", b"k"), 4, 5), ConnKind::Data, [1; 32]);
        let Frame::Hello {
            cluster,
            node,
            nonce,
            kind,
            ..
        } = hello
        else {
            panic!("a hello");
        };
        let tampered = Frame::Hello {
            protocols: ProtocolRange { min: 4, max: 4 },
            cluster,
            node,
            nonce,
            kind,
        };
        let mut listener = Listener::new(speaking(cfg("bb", "c", b"k"), 4, 5), [2; 32]);
        let Ok(Step::Send(challenge)) = listener.on_frame(tampered) else {
            panic!("a challenge");
        };
        let Ok(Step::Send(auth)) = dialer.on_frame(challenge) else {
            panic!("an auth");
        };
        assert_eq!(
            listener.on_frame(auth).unwrap_err(),
            HandshakeError::BadProof
        );
    }

    #[test]
    fn frames_out_of_order_are_refused() {
        let mut listener = Listener::new(cfg("bb", "c", b"k"), [2; 32]);
        assert_eq!(
            listener
                .on_frame(Frame::Welcome { proof: [0; 32] })
                .unwrap_err(),
            HandshakeError::Unexpected("welcome")
        );
    }

    #[test]
    fn the_listener_learns_a_membership_lane_from_hello_and_still_checks_the_secret() {
        let mut listener = Listener::new(cfg("bb", "c", b"k"), [2; 32]);
        assert_eq!(listener.kind(), ConnKind::Data);
        let (mut dialer, hello) = Dialer::start(cfg("a", "c", b"k"), ConnKind::Membership, [1; 32]);
        let Ok(Step::Send(challenge)) = listener.on_frame(hello) else {
            panic!("challenge expected");
        };
        let Ok(Step::Send(auth)) = dialer.on_frame(challenge) else {
            panic!("auth expected");
        };
        assert!(matches!(
            listener.on_frame(auth),
            Ok(Step::Done(Some(Frame::Welcome { .. }), _))
        ));
        assert_eq!(listener.kind(), ConnKind::Membership);
        // A lane with the wrong secret is refused like any connection.
        let mut listener = Listener::new(cfg("bb", "c", b"right"), [2; 32]);
        let (_, hello) = Dialer::start(cfg("a", "c", b"wrong"), ConnKind::Membership, [1; 32]);
        assert!(matches!(listener.on_frame(hello), Ok(Step::Send(_))));
        assert_eq!(
            listener
                .on_frame(Frame::Auth { proof: [0; 32] })
                .unwrap_err(),
            HandshakeError::BadProof
        );
    }
}
