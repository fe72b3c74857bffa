//! The connection handshake: protocol version, cluster name, and a
//! challenge-response over the shared cluster secret (HMAC-SHA256 with fresh
//! nonces both ways, constant-time verification). Sans-IO: frames in, frames
//! out; the connection task does the I/O.
//!
//! ```text
//! dialer                                   listener
//!   Hello { protocol, cluster, node, nc, kind } ->
//!                                          <- Challenge { node, ns, proof_s = H(k, "srv" | cluster | nc | ns) }
//!   Auth { proof_c = H(k, "cli" | cluster | ns | nc) } ->
//!                                          <- Welcome
//! ```
//! Either side refuses with a reason (`Refused`) and closes. `kind` says
//! whether the connection carries calls (`Data`) or is a peer's membership
//! lane (`Membership`); both are authenticated alike.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::frame::{ConnKind, Frame, NodeInfo, Nonce, Proof};

/// The wire protocol version; peers must speak the same one. 2 added the
/// connection kind to `Hello` (the membership lane); 3 versioned service
/// tables (`Table::version`, `TableRequest`, the version in `Ping`); 4 gave
/// every `CallError` its own wire error code.
pub(crate) const PROTOCOL_VERSION: u32 = 4;

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer speaks another protocol version.
    #[error("incompatible protocol version: ours {ours}, theirs {theirs}")]
    ProtocolVersion {
        /// Ours.
        ours: u32,
        /// Theirs.
        theirs: u32,
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

fn proof(secret: &[u8], label: &[u8], cluster: &str, a: &Nonce, b: &Nonce) -> Proof {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(label);
    mac.update(&(cluster.len() as u64).to_le_bytes());
    mac.update(cluster.as_bytes());
    mac.update(a);
    mac.update(b);
    mac.finalize().into_bytes().into()
}

fn verify(secret: &[u8], label: &[u8], cluster: &str, a: &Nonce, b: &Nonce, got: &Proof) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(label);
    mac.update(&(cluster.len() as u64).to_le_bytes());
    mac.update(cluster.as_bytes());
    mac.update(a);
    mac.update(b);
    // Constant-time comparison.
    mac.verify_slice(got).is_ok()
}

/// What both sides need.
#[derive(Debug, Clone)]
pub(crate) struct HandshakeConfig {
    pub(crate) cluster: String,
    pub(crate) secret: Vec<u8>,
    pub(crate) local: NodeInfo,
}

/// The next thing the connection task must do.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Send this frame and wait for the next one.
    Send(Frame),
    /// Done: send this frame (if any); the peer is authenticated.
    Done(Option<Frame>, NodeInfo),
}

/// The dialing side.
#[derive(Debug)]
pub(crate) struct Dialer {
    cfg: HandshakeConfig,
    nonce: Nonce,
    peer: Option<NodeInfo>,
}

impl Dialer {
    /// Starts a handshake for a connection of `kind`; returns the `Hello`
    /// to send.
    pub(crate) fn start(cfg: HandshakeConfig, kind: ConnKind, nonce: Nonce) -> (Self, Frame) {
        let hello = Frame::Hello {
            protocol: PROTOCOL_VERSION,
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
                },
                false,
            ) => {
                let c = &self.cfg;
                if !verify(&c.secret, b"msa-srv", &c.cluster, &self.nonce, &nonce, &p) {
                    return Err(HandshakeError::BadProof);
                }
                let auth = Frame::Auth {
                    proof: proof(&c.secret, b"msa-cli", &c.cluster, &nonce, &self.nonce),
                };
                self.peer = Some(node);
                Ok(Step::Send(auth))
            }
            (Frame::Welcome, true) => match self.peer.take() {
                Some(peer) => Ok(Step::Done(None, peer)),
                None => Err(HandshakeError::Unexpected("welcome")),
            },
            (f, _) => Err(HandshakeError::Unexpected(f.kind())),
        }
    }
}

/// The listening side.
#[derive(Debug)]
pub(crate) struct Listener {
    cfg: HandshakeConfig,
    nonce: Nonce,
    /// The dialer's nonce and identity, once `Hello` arrived.
    hello: Option<(Nonce, NodeInfo)>,
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
            (
                Frame::Hello {
                    protocol,
                    cluster,
                    node,
                    nonce,
                    kind,
                },
                None,
            ) => {
                if protocol != PROTOCOL_VERSION {
                    return Err(HandshakeError::ProtocolVersion {
                        ours: PROTOCOL_VERSION,
                        theirs: protocol,
                    });
                }
                if cluster != c.cluster {
                    return Err(HandshakeError::ClusterMismatch {
                        ours: c.cluster.clone(),
                        theirs: cluster,
                    });
                }
                let challenge = Frame::Challenge {
                    node: c.local.clone(),
                    nonce: self.nonce,
                    proof: proof(&c.secret, b"msa-srv", &c.cluster, &nonce, &self.nonce),
                };
                self.hello = Some((nonce, node));
                self.kind = kind;
                Ok(Step::Send(challenge))
            }
            (Frame::Auth { proof: p }, Some((theirs, node))) => {
                if !verify(&c.secret, b"msa-cli", &c.cluster, &self.nonce, theirs, &p) {
                    return Err(HandshakeError::BadProof);
                }
                Ok(Step::Done(Some(Frame::Welcome), node.clone()))
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
        }
    }

    /// Runs a handshake between the two configs; returns both outcomes.
    fn run(
        d: HandshakeConfig,
        l: HandshakeConfig,
    ) -> (
        Result<NodeInfo, HandshakeError>,
        Result<NodeInfo, HandshakeError>,
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
        assert_eq!(d.unwrap().name, "bb");
        assert_eq!(l.unwrap().name, "a");
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
    fn another_cluster_or_protocol_is_refused_with_a_reason() {
        let (_, l) = run(cfg("a", "one", b"k"), cfg("bb", "two", b"k"));
        assert!(matches!(l, Err(HandshakeError::ClusterMismatch { .. })));
        let mut listener = Listener::new(cfg("bb", "c", b"k"), [2; 32]);
        let hello = Frame::Hello {
            protocol: 99,
            cluster: "c".into(),
            node: cfg("a", "c", b"k").local,
            nonce: [0; 32],
            kind: ConnKind::Data,
        };
        let err = listener.on_frame(hello).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::ProtocolVersion {
                ours: PROTOCOL_VERSION,
                theirs: 99
            }
        );
        assert!(
            matches!(Listener::refusal(&err), Frame::Refused { reason } if reason.contains("99"))
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
