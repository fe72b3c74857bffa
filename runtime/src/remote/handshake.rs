//! The connection handshake: protocol version, cluster name, and a
//! challenge-response over the shared cluster secret (HMAC-SHA256 with fresh
//! nonces both ways, constant-time verification). Sans-IO: frames in, frames
//! out; the connection task does the I/O.
//!
//! ```text
//! dialer                                   listener
//!   Hello { protocols: min..=max, cluster, node, nc, kind } ->
//!                                          <- Challenge { node, ns, protocol: v,
//!                                               proof_s = H(k, "msa-srv" | cluster | nc | ns | min | max | v) }
//!   Auth { proof_c = H(k, "msa-cli" | cluster | ns | nc | v) } ->
//!                                          <- Welcome
//! ```
//! Each side speaks a range of protocol versions; the listener picks the
//! highest version in both ranges (`v`), and the dialer checks that `v` is
//! one it speaks. The proofs cover the dialer's range and `v`, so a
//! man in the middle cannot talk the two down to an older version. No
//! common version: the listener refuses, naming both ranges. Either side
//! refuses with a reason (`Refused`) and closes. `kind` says whether the
//! connection carries calls (`Data`) or is a peer's membership lane
//! (`Membership`); both are authenticated alike.

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
/// new error codes 15 and 16); 6 carries the caller's signed token and
/// the calling service in a call's metadata (access rules checked by the
/// serving node, error code 18 `PermissionDenied`).
pub(crate) const PROTOCOLS: ProtocolRange = ProtocolRange { min: 6, max: 6 };

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
    /// The peer belongs to another cluster.
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

/// The MAC over one side's view of the handshake; `versions` binds the
/// negotiated protocol into it.
fn mac(
    secret: &[u8],
    label: &[u8],
    cluster: &str,
    a: &Nonce,
    b: &Nonce,
    versions: &[u32],
) -> Option<HmacSha256> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(label);
    mac.update(&(cluster.len() as u64).to_le_bytes());
    mac.update(cluster.as_bytes());
    mac.update(a);
    mac.update(b);
    for v in versions {
        mac.update(&v.to_le_bytes());
    }
    Some(mac)
}

fn proof(
    secret: &[u8],
    label: &[u8],
    cluster: &str,
    a: &Nonce,
    b: &Nonce,
    versions: &[u32],
) -> Proof {
    match mac(secret, label, cluster, a, b, versions) {
        Some(m) => m.finalize().into_bytes().into(),
        None => [0; 32],
    }
}

fn verify(
    secret: &[u8],
    label: &[u8],
    cluster: &str,
    a: &Nonce,
    b: &Nonce,
    versions: &[u32],
    got: &Proof,
) -> bool {
    // Constant-time comparison.
    mac(secret, label, cluster, a, b, versions).is_some_and(|m| m.verify_slice(got).is_ok())
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

/// The dialing side.
#[derive(Debug)]
pub(crate) struct Dialer {
    cfg: HandshakeConfig,
    nonce: Nonce,
    /// The listener and the version it chose, once `Challenge` verified.
    peer: Option<Outcome>,
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
                peer: None,
            },
            hello,
        )
    }

    /// Feeds the listener's next frame.
    pub(crate) fn on_frame(&mut self, frame: Frame) -> Result<Step, HandshakeError> {
        match (frame, self.peer.is_some()) {
            (Frame::Refused { reason }, _) => Err(HandshakeError::Refused(reason)),
            (
                Frame::Challenge {
                    node,
                    nonce,
                    proof: p,
                    protocol,
                },
                false,
            ) => {
                let c = &self.cfg;
                if !c.protocols.contains(protocol) {
                    return Err(HandshakeError::NoCommonVersion {
                        ours: c.protocols.range(),
                        theirs: protocol..=protocol,
                    });
                }
                let offered = [c.protocols.min, c.protocols.max, protocol];
                if !verify(
                    &c.secret,
                    b"msa-srv",
                    &c.cluster,
                    &self.nonce,
                    &nonce,
                    &offered,
                    &p,
                ) {
                    return Err(HandshakeError::BadProof);
                }
                let auth = Frame::Auth {
                    proof: proof(
                        &c.secret,
                        b"msa-cli",
                        &c.cluster,
                        &nonce,
                        &self.nonce,
                        &[protocol],
                    ),
                };
                self.peer = Some(Outcome {
                    peer: node,
                    protocol,
                });
                Ok(Step::Send(auth))
            }
            (Frame::Welcome, true) => match self.peer.take() {
                Some(out) => Ok(Step::Done(None, out)),
                None => Err(HandshakeError::Unexpected("welcome")),
            },
            (f, _) => Err(HandshakeError::Unexpected(f.kind())),
        }
    }
}

/// What the listener learnt from `Hello`.
#[derive(Debug)]
struct Hello {
    nonce: Nonce,
    node: NodeInfo,
    protocol: u32,
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
                if cluster != c.cluster {
                    return Err(HandshakeError::ClusterMismatch {
                        ours: c.cluster.clone(),
                        theirs: cluster,
                    });
                }
                let offered = [protocols.min, protocols.max, protocol];
                let challenge = Frame::Challenge {
                    node: c.local.clone(),
                    nonce: self.nonce,
                    proof: proof(
                        &c.secret,
                        b"msa-srv",
                        &c.cluster,
                        &nonce,
                        &self.nonce,
                        &offered,
                    ),
                    protocol,
                };
                self.hello = Some(Hello {
                    nonce,
                    node,
                    protocol,
                });
                self.kind = kind;
                Ok(Step::Send(challenge))
            }
            (Frame::Auth { proof: p }, Some(hello)) => {
                let versions = [hello.protocol];
                if !verify(
                    &c.secret,
                    b"msa-cli",
                    &c.cluster,
                    &self.nonce,
                    &hello.nonce,
                    &versions,
                    &p,
                ) {
                    return Err(HandshakeError::BadProof);
                }
                let out = Outcome {
                    peer: hello.node.clone(),
                    protocol: hello.protocol,
                };
                Ok(Step::Done(Some(Frame::Welcome), out))
            }
            (f, _) => Err(HandshakeError::Unexpected(f.kind())),
        }
    }

    /// The frame that tells the dialer why it was refused.
    pub(crate) fn refusal(err: &HandshakeError) -> Frame {
        Frame::Refused {
            reason: err.to_string(),
        }
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
    fn a_wrong_secret_is_refused_by_the_dialer_first() {
        let (d, _) = run(cfg("a", "c", b"right"), cfg("bb", "c", b"wrong"));
        assert_eq!(d.unwrap_err(), HandshakeError::BadProof);
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
    fn another_cluster_or_an_old_protocol_is_refused_with_a_reason() {
        let (_, l) = run(cfg("a", "one", b"k"), cfg("bb", "two", b"k"));
        assert!(matches!(l, Err(HandshakeError::ClusterMismatch { .. })));
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
            Frame::Refused { reason } if reason == "no common protocol version: ours 6..=6, theirs 2..=2"
        ));
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
            proof: [0; 32],
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
        // version: the listener's proof covers the range it saw, so the
        // dialer rejects it.
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
        assert_eq!(
            dialer.on_frame(challenge).unwrap_err(),
            HandshakeError::BadProof
        );
    }

    #[test]
    fn frames_out_of_order_are_refused() {
        let mut listener = Listener::new(cfg("bb", "c", b"k"), [2; 32]);
        assert_eq!(
            listener.on_frame(Frame::Welcome).unwrap_err(),
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
            Ok(Step::Done(Some(Frame::Welcome), _))
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
