//! Entry points of the fuzz targets (`fuzz/`, run with cargo-fuzz; see
//! docs/security.md, "Before authentication: bounds"). Not a public API:
//! each function takes arbitrary bytes, drives one sans-IO piece of the
//! wire protocol with them, and panics only when a property is broken. The
//! runtime's unit tests replay every committed corpus and crash input
//! through the same functions, so `cargo test` keeps them fixed.

use crate::remote::frame::{
    encode_into, ConnKind, Frame, FrameDecoder, Incoming, NodeInfo, DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_HANDSHAKE_FRAME_BYTES,
};
use crate::remote::handshake::{Dialer, HandshakeConfig, Listener, Step, PROTOCOLS};

/// The cluster name the handshake target's sides use; no refusal may
/// contain it.
const CLUSTER: &str = "fuzz-cluster-name";

/// Feeds `data` to a [`FrameDecoder`] the way a connection does.
///
/// `data[0]` picks the chunk size the bytes arrive in (1 to 64, or all at
/// once), `data[1]` the bound (the handshake's when even) and the reader
/// (`next_incoming` or `next_frame` when its high bit is set); the rest is
/// the stream. Properties: no panic; no frame over the bound; every frame
/// decoded whole encodes and decodes back to itself; the decoder's buffer
/// never holds more than the bound plus one chunk beyond what it decoded.
pub fn frame_decoder(data: &[u8]) {
    let [mode, limit, stream @ ..] = data else {
        return;
    };
    let chunk = match mode % 65 {
        0 => stream.len().max(1),
        n => usize::from(n),
    };
    let max = if limit % 2 == 0 {
        DEFAULT_MAX_HANDSHAKE_FRAME_BYTES
    } else {
        DEFAULT_MAX_FRAME_BYTES
    };
    let incoming = limit & 0x80 != 0;
    let mut dec = FrameDecoder::new(max);
    for part in stream.chunks(chunk) {
        dec.push(part);
        loop {
            let before = dec.consumed();
            let got = if incoming {
                match dec.next_incoming() {
                    Ok(Some(Incoming::Frame(f))) => Some(Some(f)),
                    Ok(Some(Incoming::Publish(p))) => Some(Some(Frame::Publish {
                        topic: p.topic.to_string(),
                        message: p.message.to_string(),
                        payload: p.payload.to_vec(),
                        plain: p.plain,
                        members: p.members,
                    })),
                    Ok(Some(Incoming::PublishRun(run))) => Some(Some(Frame::PublishRun {
                        topic: run.topic.to_string(),
                        message: run.message.to_string(),
                        events: run
                            .events
                            .into_iter()
                            .map(|e| crate::remote::frame::RunEvent {
                                payload: e.payload.to_vec(),
                                plain: e.plain,
                                members: e.members,
                            })
                            .collect(),
                    })),
                    Ok(Some(_)) => Some(None),
                    Ok(None) => None,
                    Err(_) => return,
                }
            } else {
                match dec.next_frame() {
                    Ok(Some(f)) => Some(Some(f)),
                    Ok(None) => None,
                    Err(_) => return,
                }
            };
            let Some(frame) = got else { break };
            let len = dec.consumed() - before;
            assert!(len >= 4 && len - 4 <= max as u64, "a frame over the bound");
            if let Some(f) = frame {
                round_trip(&f);
            }
        }
    }
}

/// A decoded frame encodes and decodes back to itself.
fn round_trip(f: &Frame) {
    let mut bytes = Vec::new();
    if encode_into(f, usize::MAX, &mut bytes).is_err() {
        // Only a frame over u32::MAX bytes: not from a bounded decoder.
        panic!("a decoded frame does not encode: {f:?}");
    }
    let mut dec = FrameDecoder::new(usize::MAX);
    dec.push(&bytes);
    match dec.next_frame() {
        Ok(Some(back)) => assert_eq!(&back, f, "a frame changed through its encoding"),
        other => panic!("an encoded frame does not decode: {other:?}"),
    }
}

fn config(secret: &[u8], name: &str) -> HandshakeConfig {
    HandshakeConfig {
        cluster: CLUSTER.into(),
        secret: secret.to_vec(),
        local: NodeInfo {
            name: name.into(),
            addr: "127.0.0.1:7".into(),
            incarnation: 1,
        },
        protocols: PROTOCOLS,
    }
}

/// The secret the handshake target's sides hold (seed inputs are made
/// with it, so the fuzzer starts from handshakes that complete).
pub const HANDSHAKE_SECRET: &[u8] = b"fuzz-secret";

/// The nonce of the handshake target's listener; its dialer's is `[1; 32]`.
pub const LISTENER_NONCE: [u8; 32] = [2; 32];

/// Feeds the frames in `data[1..]` (decoded under the handshake bound) to
/// a handshake side: the listener when `data[0]` is even, else a dialer of
/// a data connection (a membership lane when `data[0] & 2`).
///
/// Two copies of the side run on the same frames, one holding
/// [`HANDSHAKE_SECRET`], one another secret. Properties: no panic; the two
/// never both complete (a proof depends on the secret); the one without
/// the secret never completes; a refusal never names the cluster; a
/// listener that completes names the peer its `Hello` announced.
pub fn handshake(data: &[u8]) {
    handshake_completes(data);
}

/// [`handshake`], saying whether the side holding the secret completed.
fn handshake_completes(data: &[u8]) -> bool {
    let [role, stream @ ..] = data else {
        return false;
    };
    let kind = if role & 2 == 0 {
        ConnKind::Data
    } else {
        ConnKind::Membership
    };
    let mut dec = FrameDecoder::new(DEFAULT_MAX_HANDSHAKE_FRAME_BYTES);
    dec.push(stream);
    let mut frames = Vec::new();
    while let Ok(Some(f)) = dec.next_frame() {
        frames.push(f);
    }
    if role % 2 == 0 {
        let mut sides = [
            Listener::new(config(HANDSHAKE_SECRET, "listener"), LISTENER_NONCE),
            Listener::new(config(b"another secret", "listener"), LISTENER_NONCE),
        ];
        let done = sides.each_mut().map(|side| {
            let mut hello = None;
            for f in frames.iter().cloned() {
                if let Frame::Hello { node, .. } = &f {
                    hello.get_or_insert(node.clone());
                }
                match side.on_frame(f) {
                    Ok(Step::Send(_)) => {}
                    Ok(Step::Done(_, out)) => {
                        assert_eq!(Some(&out.peer), hello.as_ref(), "the peer is who it said");
                        return true;
                    }
                    Err(e) => {
                        let Frame::Refused { reason } = Listener::refusal(&e) else {
                            panic!("a refusal is a Refused frame");
                        };
                        assert!(!reason.contains(CLUSTER), "a refusal named the cluster");
                        return false;
                    }
                }
            }
            false
        });
        assert!(!done[1], "completed without the secret");
        done[0]
    } else {
        let mut sides = [HANDSHAKE_SECRET, b"another secret"]
            .map(|secret| Dialer::start(config(secret, "dialer"), kind, [1; 32]).0);
        let done = sides.each_mut().map(|side| {
            for f in frames.iter().cloned() {
                match side.on_frame(f) {
                    Ok(Step::Send(_)) => {}
                    Ok(Step::Done(..)) => return true,
                    Err(_) => return false,
                }
            }
            false
        });
        assert!(!done[1], "completed without the secret");
        done[0]
    }
}

/// Seed inputs: for [`frame_decoder`], frames of every kind the node meets
/// first; for [`handshake`], the frames of complete handshakes (both roles,
/// both kinds) and an old-protocol hello. Written to `fuzz/corpus/` by
/// `cargo test -p msa-runtime --lib fuzzing -- --ignored`.
pub fn seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let enc = |frames: &[Frame]| {
        let mut out = Vec::new();
        for f in frames {
            let _ = encode_into(f, DEFAULT_MAX_FRAME_BYTES, &mut out);
        }
        out
    };
    let mut decoder = Vec::new();
    let mut hs = Vec::new();
    for kind in [ConnKind::Data, ConnKind::Membership] {
        let (mut dialer, hello) = Dialer::start(config(HANDSHAKE_SECRET, "dialer"), kind, [1; 32]);
        let mut listener = Listener::new(config(HANDSHAKE_SECRET, "listener"), LISTENER_NONCE);
        let Ok(Step::Send(challenge)) = listener.on_frame(hello.clone()) else {
            continue;
        };
        let Ok(Step::Send(auth)) = dialer.on_frame(challenge.clone()) else {
            continue;
        };
        let Ok(Step::Done(Some(welcome), _)) = listener.on_frame(auth.clone()) else {
            continue;
        };
        let role = if kind == ConnKind::Data { 0u8 } else { 2 };
        let mut l = vec![role];
        l.extend(enc(&[hello.clone(), auth.clone()]));
        hs.push(l);
        // The dialer's frames only verify against its own nonce and the
        // listener's: replaying the listener's answers completes it.
        let mut d = vec![role | 1];
        d.extend(enc(&[challenge.clone(), welcome.clone()]));
        hs.push(d);
        for (i, f) in [hello, challenge, auth, welcome].into_iter().enumerate() {
            let mut s = vec![0, i as u8 * 2];
            s.extend(enc(&[f]));
            decoder.push(s);
        }
    }
    let samples = [
        Frame::Ping { id: 1, table: 2 },
        Frame::Refused {
            reason: "authentication failed".into(),
        },
        Frame::Tell {
            route: crate::remote::frame::Route::Once {
                service: "s".into(),
                message: "m".into(),
            },
            meta: Default::default(),
            payload: vec![1, 2, 3],
        },
        Frame::Ask {
            id: 9,
            route: crate::remote::frame::Route::Id(3),
            meta: crate::remote::frame::WireMeta {
                subject: Some("alice".into()),
                roles: vec!["admin".into()],
                trace: Some((7, 8)),
                timeout_ms: Some(100),
                token: Some("a.b.c".into()),
                service: Some("orders".into()),
            },
            payload: vec![4; 16],
        },
        Frame::Reply {
            id: 9,
            payload: vec![5; 8],
        },
        Frame::TableRequest,
        Frame::CallsDone,
        Frame::Topics {
            topics: vec![crate::registry::TopicAd {
                topic: "orders.events".into(),
                plain: true,
                groups: vec![("billing".into(), vec![3, 4])],
            }],
        },
        Frame::Publish {
            topic: "orders.events".into(),
            message: "shop.OrderPlaced".into(),
            payload: vec![6; 8],
            plain: true,
            members: vec![3],
        },
        Frame::PublishRun {
            topic: "orders.events".into(),
            message: "shop.OrderPlaced".into(),
            events: vec![
                crate::remote::frame::RunEvent {
                    payload: vec![7; 8],
                    plain: true,
                    members: vec![],
                },
                crate::remote::frame::RunEvent {
                    payload: vec![8; 3],
                    plain: false,
                    members: vec![3, 4],
                },
            ],
        },
    ];
    for (i, f) in samples.into_iter().enumerate() {
        let mut s = vec![(i * 7) as u8, 1 | 0x80];
        s.extend(enc(&[f]));
        decoder.push(s);
    }
    let legacy = Frame::LegacyHello {
        protocol: 2,
        cluster: CLUSTER.into(),
        node: config(HANDSHAKE_SECRET, "old").local,
        nonce: [0; 32],
        kind: ConnKind::Data,
    };
    let mut l = vec![0];
    l.extend(enc(&[legacy]));
    hs.push(l);
    (decoder, hs)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    /// Every file under `fuzz/corpus/<target>` and `fuzz/artifacts/<target>`.
    fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for dir in ["corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.is_file() {
                    let bytes = std::fs::read(&p).unwrap();
                    out.push((p, bytes));
                }
            }
        }
        out
    }

    fn replay(target: &str, f: fn(&[u8])) {
        let inputs = inputs(target);
        assert!(
            inputs.len() >= 4,
            "the committed corpus of {target} is missing ({} inputs)",
            inputs.len()
        );
        for (path, bytes) in inputs {
            if std::panic::catch_unwind(|| f(&bytes)).is_err() {
                panic!("{} fails {target}", path.display());
            }
        }
    }

    #[test]
    fn the_frame_decoder_corpus_and_crashes_replay_clean() {
        replay("frame_decoder", super::frame_decoder);
    }

    #[test]
    fn the_handshake_corpus_and_crashes_replay_clean() {
        replay("handshake", super::handshake);
    }

    #[test]
    fn the_seed_handshakes_complete_with_the_secret_only() {
        let (decoder, hs) = super::seeds();
        assert!(decoder.len() >= 8 && hs.len() == 5);
        for s in decoder.iter().chain(&hs) {
            super::frame_decoder(s);
            super::handshake(s);
        }
        // Both roles, both kinds complete; the old hello does not.
        let done: Vec<bool> = hs.iter().map(|s| super::handshake_completes(s)).collect();
        assert_eq!(done, [true, true, true, true, false]);
    }

    /// Writes the seed corpus (run with `--ignored` after a wire change).
    #[test]
    #[ignore]
    fn write_seed_corpus() {
        let (decoder, hs) = super::seeds();
        for (target, seeds) in [("frame_decoder", decoder), ("handshake", hs)] {
            let dir = fuzz_dir().join("corpus").join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
            }
        }
    }
}
