//! One test suite for every [`Transport`]: each check is a generic async
//! function over a [`Harness`], run against TCP and the memory network by
//! [`suite!`] below (the idea of chitchat's transport test suite).
//! Checks of what only the memory network can do (cut, heal, latency,
//! reset) are in `memory/tests.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BoxStream, Listener, MemoryNetwork, TcpTransport, Transport};

/// Bound on every wait in these checks (they pass in milliseconds).
const BOUND: Duration = Duration::from_secs(10);

/// Makes endpoints of one network for a check.
pub(super) trait Harness {
    /// A transport for a node on `host`, and the address it binds to get a
    /// free port.
    fn endpoint(&self, host: &str) -> (Arc<dyn Transport>, String);
    /// An address nothing listens on.
    fn unused_addr(&self) -> String;
}

/// TCP on loopback.
pub(super) struct Tcp;

impl Harness for Tcp {
    fn endpoint(&self, _host: &str) -> (Arc<dyn Transport>, String) {
        (Arc::new(TcpTransport), "127.0.0.1:0".into())
    }

    fn unused_addr(&self) -> String {
        // A port that was free a moment ago: refused at once on loopback.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }
}

/// The in-memory network.
pub(super) struct Memory(pub(super) MemoryNetwork);

impl Harness for Memory {
    fn endpoint(&self, host: &str) -> (Arc<dyn Transport>, String) {
        (Arc::new(self.0.endpoint(host)), format!("{host}:0"))
    }

    fn unused_addr(&self) -> String {
        "nobody:1".into()
    }
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} within {BOUND:?}"))
}

/// Connects `t` to `l` and accepts: (dialer's end, listener's end, the
/// dialer's address as the listener saw it).
pub(super) async fn pair(
    t: &dyn Transport,
    l: &mut Box<dyn Listener>,
) -> (BoxStream, BoxStream, String) {
    let dial = t.connect(l.local_addr());
    let (out, accepted) = bounded("connect and accept", async {
        tokio::join!(dial, l.accept())
    })
    .await;
    let (inn, from) = accepted.unwrap();
    (out.unwrap(), inn, from)
}

pub(super) async fn read_n(s: &mut BoxStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    bounded("bytes", s.read_exact(&mut buf)).await.unwrap();
    buf
}

pub(super) async fn bytes_flow_both_ways(h: &impl Harness) {
    let (ta, _) = h.endpoint("a");
    let (tb, bind) = h.endpoint("b");
    let mut l = tb.bind(&bind).unwrap();
    let (mut out, mut inn, from) = pair(&*ta, &mut l).await;
    assert!(!from.is_empty(), "the dialer's address is reported");
    out.write_all(b"ping").await.unwrap();
    assert_eq!(read_n(&mut inn, 4).await, b"ping");
    inn.write_all(b"pong!").await.unwrap();
    assert_eq!(read_n(&mut out, 5).await, b"pong!");
    // More than one pipe's worth, while the other side reads.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let expect = big.clone();
    let writer = tokio::spawn(async move {
        out.write_all(&big).await.unwrap();
        out
    });
    assert_eq!(read_n(&mut inn, expect.len()).await, expect);
    bounded("the writer", writer).await.unwrap();
}

pub(super) async fn port_zero_reports_a_unique_real_address(h: &impl Harness) {
    let (t, bind) = h.endpoint("a");
    let l1 = t.bind(&bind).unwrap();
    let l2 = t.bind(&bind).unwrap();
    let (a1, a2) = (l1.local_addr(), l2.local_addr());
    assert_ne!(a1, a2);
    for a in [&a1, &a2] {
        assert!(!a.ends_with(":0"), "{a} is the real port");
        assert!(t.is_local(a), "{a} is local");
    }
    let e = t.bind(&a1).err().expect("a bound address is in use");
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    // The reported address is the one to dial.
    let (tc, _) = h.endpoint("c");
    let mut l1 = l1;
    let (mut out, mut inn, _) = pair(&*tc, &mut l1).await;
    out.write_all(b"x").await.unwrap();
    assert_eq!(read_n(&mut inn, 1).await, b"x");
}

pub(super) async fn connecting_to_nothing_fails_promptly(h: &impl Harness) {
    let (t, _) = h.endpoint("a");
    let r = tokio::time::timeout(Duration::from_secs(2), t.connect(h.unused_addr())).await;
    assert!(matches!(r, Ok(Err(_))), "refused, not hanging");
}

pub(super) async fn a_dropped_listener_refuses_new_connections(h: &impl Harness) {
    let (ta, _) = h.endpoint("a");
    let (tb, bind) = h.endpoint("b");
    let l = tb.bind(&bind).unwrap();
    let addr = l.local_addr();
    drop(l);
    let r = tokio::time::timeout(Duration::from_secs(2), ta.connect(addr)).await;
    assert!(matches!(r, Ok(Err(_))), "refused, not hanging");
}

pub(super) async fn many_concurrent_connections_each_get_their_own_bytes(h: &impl Harness) {
    const N: u32 = 64;
    let (tb, bind) = h.endpoint("b");
    let mut l = tb.bind(&bind).unwrap();
    let addr = l.local_addr();
    // The listener echoes each connection's four bytes back, doubled.
    let server = tokio::spawn(async move {
        for _ in 0..N {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut b = [0u8; 4];
                s.read_exact(&mut b).await.unwrap();
                let n = u32::from_le_bytes(b) * 2;
                s.write_all(&n.to_le_bytes()).await.unwrap();
                // Hold the stream until the dialer has read.
                let _ = s.read(&mut b).await;
            });
        }
    });
    let mut dials = Vec::new();
    for i in 0..N {
        let (t, _) = h.endpoint(&format!("c{i}"));
        let addr = addr.clone();
        dials.push(tokio::spawn(async move {
            let mut s = t.connect(addr).await.unwrap();
            s.write_all(&i.to_le_bytes()).await.unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.unwrap();
            assert_eq!(u32::from_le_bytes(b), i * 2);
        }));
    }
    for d in dials {
        bounded("every connection", d).await.unwrap();
    }
    bounded("the server", server).await.unwrap();
}

pub(super) async fn a_dropped_stream_gives_eof_to_the_other_side(h: &impl Harness) {
    let (ta, _) = h.endpoint("a");
    let (tb, bind) = h.endpoint("b");
    let mut l = tb.bind(&bind).unwrap();
    // Dialer goes: the listener's end reads what was sent, then EOF.
    let (mut out, mut inn, _) = pair(&*ta, &mut l).await;
    out.write_all(b"last").await.unwrap();
    drop(out);
    assert_eq!(read_n(&mut inn, 4).await, b"last");
    let mut b = [0u8; 1];
    assert_eq!(bounded("EOF", inn.read(&mut b)).await.unwrap(), 0);
    // Listener's end goes: the dialer reads EOF.
    let (mut out, inn, _) = pair(&*ta, &mut l).await;
    drop(inn);
    assert_eq!(bounded("EOF", out.read(&mut b)).await.unwrap(), 0);
    // A shutdown (half close) is an EOF too, and the other way still works.
    let (mut out, mut inn, _) = pair(&*ta, &mut l).await;
    out.shutdown().await.unwrap();
    assert_eq!(bounded("EOF", inn.read(&mut b)).await.unwrap(), 0);
    inn.write_all(b"y").await.unwrap();
    assert_eq!(read_n(&mut out, 1).await, b"y");
}

/// Runs each named check against TCP and the memory network.
macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        mod tcp {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(&super::Tcp).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(&super::Memory(super::MemoryNetwork::new())).await;
                }
            )*
        }
    };
}

suite!(
    bytes_flow_both_ways,
    port_zero_reports_a_unique_real_address,
    connecting_to_nothing_fails_promptly,
    a_dropped_listener_refuses_new_connections,
    many_concurrent_connections_each_get_their_own_bytes,
    a_dropped_stream_gives_eof_to_the_other_side,
);
