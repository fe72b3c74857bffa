use super::io::{read_raw, write_raw};
use super::*;
use crate::prelude::*;
use crate::remote::frame::{encode_into, ConnKind, FrameDecoder, WireError};
use crate::remote::handshake::{Dialer, Listener as HsListener, Step};
use crate::remote::transport::BoxStream;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};

mod access;
mod groups;
mod hostile;
mod inbound;
mod joining;
mod live;
mod quiet;
mod retire;
mod retire_groups;
mod split_brain;
mod stall;
use super::super::frame::Route;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, actix::Message, Serialize, Deserialize)]
#[rtype(result = "u64")]
struct Double(u64);
impl RemoteMessage for Double {
    const NAME: &'static str = "wire-test.Double";
}
struct Doubler;
impl Service for Doubler {}
impl Handler<Double> for Doubler {
    fn handle(&mut self, m: Double, _: &mut ServiceContext<'_, Self>) -> Reply<Self, u64> {
        Reply::ready(m.0 * 2)
    }
}

const SECRET: &[u8] = b"wire-secret";
const MAX: usize = super::super::frame::DEFAULT_MAX_FRAME_BYTES;

/// A raw peer: handshakes as a member, then speaks frames by hand.
struct RawPeer {
    rd: ReadHalf<BoxStream>,
    wr: WriteHalf<BoxStream>,
    dec: FrameDecoder,
    buf: Vec<u8>,
}

impl RawPeer {
    async fn connect(addr: &str) -> Self {
        Self::open(addr, ConnKind::Data, SECRET).await.unwrap()
    }

    /// Handshakes as member `raw` for a connection of `kind`.
    async fn open(addr: &str, kind: ConnKind, secret: &[u8]) -> Result<Self, String> {
        let s: BoxStream = Box::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        Self::over(s, kind, secret).await
    }

    /// Handshakes as member `raw` on `s`.
    async fn over(s: BoxStream, kind: ConnKind, secret: &[u8]) -> Result<Self, String> {
        Self::speaking(s, kind, secret, PROTOCOLS).await
    }

    /// Handshakes as member `raw` on `s`, speaking `protocols`.
    async fn speaking(
        s: BoxStream,
        kind: ConnKind,
        secret: &[u8],
        protocols: crate::remote::handshake::ProtocolRange,
    ) -> Result<Self, String> {
        let (mut rd, mut wr) = tokio::io::split(s);
        let mut dec = FrameDecoder::new(super::super::frame::DEFAULT_MAX_FRAME_BYTES);
        let mut buf = vec![0u8; 64 * 1024];
        let cfg = HandshakeConfig {
            cluster: "msa".into(),
            secret: secret.to_vec(),
            local: NodeInfo {
                name: "raw".into(),
                addr: "127.0.0.1:9".into(),
                incarnation: 1,
            },
            protocols,
        };
        let (mut hs, hello) = Dialer::start(cfg, kind, [3; 32]);
        write_raw(&mut wr, &hello, MAX)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let f = read_raw(&mut rd, &mut dec, &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            match hs.on_frame(f).map_err(|e| e.to_string())? {
                Step::Send(f) => {
                    write_raw(&mut wr, &f, MAX)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Step::Done(..) => break,
            }
        }
        Ok(Self { rd, wr, dec, buf })
    }

    /// The next frame, or why the connection ended (bounded wait).
    async fn next(&mut self) -> Result<Frame, String> {
        tokio::time::timeout(
            Duration::from_secs(10),
            read_raw(&mut self.rd, &mut self.dec, &mut self.buf),
        )
        .await
        .expect("a frame or the end within 10 s")
        .map_err(|e| e.to_string())
    }

    /// Reads until the node closes the connection; fails on a frame
    /// `allowed` rejects.
    async fn closed(&mut self, allowed: impl Fn(&Frame) -> bool) -> String {
        loop {
            match self.next().await {
                Ok(f) => assert!(allowed(&f), "unexpected {f:?}"),
                Err(reason) => return reason,
            }
        }
    }

    async fn ask(&mut self, id: u64, service: &str, message: &str, payload: Vec<u8>) -> Frame {
        let route = Route::Once {
            service: service.into(),
            message: message.into(),
        };
        self.ask_by(id, route, payload).await
    }

    async fn ask_by(&mut self, id: u64, route: Route, payload: Vec<u8>) -> Frame {
        let f = Frame::Ask {
            id,
            route,
            meta: super::super::frame::WireMeta::default(),
            payload,
        };
        write_raw(&mut self.wr, &f, MAX).await.unwrap();
        loop {
            match read_raw(&mut self.rd, &mut self.dec, &mut self.buf)
                .await
                .unwrap()
            {
                f @ (Frame::Reply { .. } | Frame::Error { .. }) => return f,
                _ => continue, // tables, membership, pings
            }
        }
    }
}

async fn node() -> (Node, String) {
    node_with(|b| b).await
}

/// The test node (`wire`, one arbiter, loopback, serving `doubler`), its
/// builder adjusted by `adjust`, and its address.
async fn node_with(
    adjust: impl FnOnce(crate::node::NodeBuilder) -> crate::node::NodeBuilder,
) -> (Node, String) {
    let node = adjust(
        Node::builder()
            .name("wire")
            .arbiters(1)
            .listen("127.0.0.1:0".parse().unwrap())
            .secret(SECRET),
    )
    .start()
    .unwrap();
    node.spawn(ServiceSpec::new("doubler", || Doubler).handles::<Double>())
        .await
        .unwrap();
    let addr = node.remote_addr().unwrap();
    (node, addr)
}

#[tokio::test]
async fn bad_calls_on_the_wire_get_typed_errors_and_the_connection_lives_on() {
    let (node, addr) = node().await;
    let mut p = RawPeer::connect(&addr).await;
    let ok = crate::codec::encode(&Double(21)).unwrap();
    assert_eq!(
        p.ask(1, "doubler", "wire-test.Double", ok.clone()).await,
        Frame::Reply {
            id: 1,
            payload: crate::codec::encode(&42u64).unwrap()
        }
    );
    assert_eq!(
        p.ask(2, "nope", "wire-test.Double", ok.clone()).await,
        Frame::Error {
            id: 2,
            error: WireError::UnknownService
        }
    );
    assert_eq!(
        p.ask(3, "doubler", "wire-test.Unknown", ok.clone()).await,
        Frame::Error {
            id: 3,
            error: WireError::UnhandledMessage {
                message: "wire-test.Unknown".into()
            }
        }
    );
    assert!(matches!(
        p.ask(4, "doubler", "wire-test.Double", vec![0xff; 11])
            .await,
        Frame::Error {
            id: 4,
            error: WireError::Codec { .. }
        }
    ));
    // The same connection still serves.
    assert!(matches!(
        p.ask(5, "doubler", "wire-test.Double", ok).await,
        Frame::Reply { id: 5, .. }
    ));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn calls_named_once_are_served_by_id_and_a_bad_id_closes_the_connection() {
    let (node, addr) = node().await;
    let mut p = RawPeer::connect(&addr).await;
    let ok = |n: u64| crate::codec::encode(&Double(n)).unwrap();
    let named = Route::Named {
        id: 7,
        service: "doubler".into(),
        message: Double::NAME.into(),
    };
    let reply = |id, n: u64| Frame::Reply {
        id,
        payload: crate::codec::encode(&(n * 2)).unwrap(),
    };
    assert_eq!(p.ask_by(1, named, ok(1)).await, reply(1, 1));
    for i in 2..50 {
        assert_eq!(p.ask_by(i, Route::Id(7), ok(i)).await, reply(i, i));
    }
    // A route to an unknown service is bound all the same: its calls fail.
    let nowhere = Route::Named {
        id: 8,
        service: "nope".into(),
        message: Double::NAME.into(),
    };
    assert_eq!(
        p.ask_by(60, nowhere, ok(1)).await,
        Frame::Error {
            id: 60,
            error: WireError::UnknownService
        }
    );
    assert_eq!(
        p.ask_by(61, Route::Id(8), ok(1)).await,
        Frame::Error {
            id: 61,
            error: WireError::UnknownService
        }
    );
    // An id never named: a protocol error, counted; the connection closes.
    let before = node.remote_stats().route_errors;
    p.send(Frame::Ask {
        id: 62,
        route: Route::Id(9),
        meta: super::super::frame::WireMeta::default(),
        payload: ok(1),
    })
    .await;
    p.closed(|f| !matches!(f, Frame::Reply { .. } | Frame::Error { .. }))
        .await;
    assert_eq!(node.remote_stats().route_errors, before + 1);
    // An id beyond the limit, on a new connection.
    let mut p = RawPeer::connect(&addr).await;
    p.send(Frame::Tell {
        route: Route::Named {
            id: super::super::routes::MAX_ROUTES as u32,
            service: "doubler".into(),
            message: Double::NAME.into(),
        },
        meta: super::super::frame::WireMeta::default(),
        payload: ok(1),
    })
    .await;
    p.closed(|f| !matches!(f, Frame::Reply { .. } | Frame::Error { .. }))
        .await;
    assert_eq!(node.remote_stats().route_errors, before + 2);
    // A new connection starts a fresh table: id 7 is unknown there...
    let mut p = RawPeer::connect(&addr).await;
    let again = Route::Named {
        id: 7,
        service: "doubler".into(),
        message: Double::NAME.into(),
    };
    // ...and may be named again.
    assert_eq!(p.ask_by(1, again, ok(3)).await, reply(1, 3));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

impl RawPeer {
    async fn send(&mut self, f: Frame) {
        write_raw(&mut self.wr, &f, MAX).await.unwrap();
    }

    /// Skips frames until `pick` takes one.
    async fn until<T>(&mut self, mut pick: impl FnMut(Frame) -> Option<T>) -> T {
        loop {
            if let Some(t) = pick(self.next().await.unwrap()) {
                return t;
            }
        }
    }
}

fn table_of(f: Frame) -> Option<(u64, Vec<String>)> {
    match f {
        Frame::Table {
            version, services, ..
        } => Some((version, services.into_iter().map(|s| s.name).collect())),
        _ => None,
    }
}

#[tokio::test]
async fn newer_table_versions_are_fetched_and_stale_tables_ignored() {
    let (node, addr) = node().await;
    let mut watch = node.watch();
    let mut p = RawPeer::connect(&addr).await;
    // The node hands its table to a new connection at once.
    let (v1, names) = p.until(table_of).await;
    assert_eq!(names, ["doubler"]);

    // A registry change: the node's pings name a newer version (the
    // gossip would too), and a request fetches the new table.
    node.spawn(ServiceSpec::new("second", || Doubler).handles::<Double>())
        .await
        .unwrap();
    p.until(|f| matches!(f, Frame::Ping { table, .. } if table > v1).then_some(()))
        .await;
    p.send(Frame::TableRequest).await;
    let (v2, mut names) = p.until(table_of).await;
    names.sort();
    assert!(v2 > v1);
    assert_eq!(names, ["doubler", "second"]);

    // The other way round: a peer whose ping names a version the node
    // does not hold is asked for its table, once.
    p.send(Frame::Ping { id: 0, table: 5 }).await;
    p.until(|f| matches!(f, Frame::TableRequest).then_some(()))
        .await;
    let ad = |slots: Vec<(u32, u64)>| super::super::frame::ServiceAd {
        name: "far".into(),
        slots,
        messages: vec![Double::NAME.into()],
        keyed: false,
    };
    p.send(Frame::Table {
        version: 5,
        services: vec![ad(vec![(0, 1)])],
        members: Vec::new(),
    })
    .await;
    // A stale table (older version) is ignored; a newer one applies.
    p.send(Frame::Table {
        version: 3,
        services: Vec::new(),
        members: Vec::new(),
    })
    .await;
    p.send(Frame::Table {
        version: 6,
        services: vec![ad(vec![(0, 1), (1, 1)])],
        members: Vec::new(),
    })
    .await;
    let mut events = Vec::new();
    while !events.iter().any(|e| {
        matches!(e, crate::RegistryEvent::RemoteAdded { service, slot: 1, .. } if service == "far")
    }) {
        events.push(tokio::time::timeout(Duration::from_secs(10), watch.next()).await.unwrap().unwrap());
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, crate::RegistryEvent::RemoteRemoved { .. })),
        "the stale table was applied: {events:?}"
    );
    assert_eq!(
        node.remote_instances("far"),
        [("raw".to_string(), 0), ("raw".to_string(), 1)]
    );
    // Pings naming a version already held ask for nothing.
    p.send(Frame::Ping { id: 0, table: 6 }).await;
    p.send(Frame::Ping { id: 7, table: 6 }).await;
    p.until(|f| match f {
        Frame::TableRequest => panic!("asked again for a table it holds"),
        Frame::Pong { id: 7 } => Some(()),
        _ => None,
    })
    .await;
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn oversized_or_truncated_frames_close_only_that_connection() {
    let (node, addr) = node().await;
    // A 4 GiB length prefix after the handshake.
    let mut bad = RawPeer::connect(&addr).await;
    bad.wr.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    bad.wr.flush().await.unwrap();
    // The node closes the connection: reads end in an error (EOF).
    let closed = async {
        loop {
            if let Err(e) = read_raw(&mut bad.rd, &mut bad.dec, &mut bad.buf).await {
                return e;
            }
        }
    };
    let reason = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .unwrap();
    assert!(!reason.to_string().is_empty());
    let t0 = std::time::Instant::now();
    while node.remote_stats().malformed_frames == 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "counted");
        tokio::task::yield_now().await;
    }
    // A truncated frame, then the peer goes away.
    let mut cut = RawPeer::connect(&addr).await;
    cut.wr.write_all(&[0, 0, 1, 0, 1, 2, 3]).await.unwrap();
    drop(cut);
    // Everyone else is still served.
    let mut good = RawPeer::connect(&addr).await;
    let ok = crate::codec::encode(&Double(4)).unwrap();
    assert!(matches!(
        good.ask(1, "doubler", "wire-test.Double", ok).await,
        Frame::Reply { .. }
    ));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_membership_lane_carries_only_membership_and_lives_with_its_data_connection() {
    let (node, addr) = node().await;
    // A lane from a member without a data connection is closed at once.
    let mut orphan = RawPeer::open(&addr, ConnKind::Membership, SECRET)
        .await
        .unwrap();
    orphan.closed(|_| false).await;
    // With a data connection, the lane is bound to it: the node pings on it.
    let mut data = RawPeer::connect(&addr).await;
    let mut lane = RawPeer::open(&addr, ConnKind::Membership, SECRET)
        .await
        .unwrap();
    loop {
        match lane.next().await.unwrap() {
            Frame::Ping { .. } => break,
            Frame::Membership { .. } => continue,
            f => panic!("only membership and pings on a lane, got {f:?}"),
        }
    }
    // Membership from the lane is accepted (foca ignores what it cannot read).
    let junk = Frame::Membership {
        payload: vec![1, 2, 3],
    };
    write_raw(&mut lane.wr, &junk, MAX).await.unwrap();
    // A call on the lane is a protocol violation: that lane closes...
    let ask = Frame::Ask {
        id: 1,
        route: Route::Once {
            service: "doubler".into(),
            message: "wire-test.Double".into(),
        },
        meta: super::super::frame::WireMeta::default(),
        payload: crate::codec::encode(&Double(1)).unwrap(),
    };
    write_raw(&mut lane.wr, &ask, MAX).await.unwrap();
    lane.closed(|f| matches!(f, Frame::Ping { .. } | Frame::Membership { .. }))
        .await;
    // ...and the data connection serves on.
    let ok = crate::codec::encode(&Double(5)).unwrap();
    assert!(matches!(
        data.ask(2, "doubler", "wire-test.Double", ok).await,
        Frame::Reply { id: 2, .. }
    ));
    // A new lane closes when its data connection goes.
    let mut lane = RawPeer::open(&addr, ConnKind::Membership, SECRET)
        .await
        .unwrap();
    assert!(matches!(lane.next().await, Ok(Frame::Ping { .. })));
    drop(data);
    lane.closed(|f| matches!(f, Frame::Ping { .. } | Frame::Membership { .. }))
        .await;
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_lane_with_a_wrong_secret_or_an_old_protocol_is_refused() {
    let (node, addr) = node().await;
    let before = node.remote_stats().handshake_failures;
    let r = RawPeer::open(&addr, ConnKind::Membership, b"not-the-secret").await;
    assert!(r.is_err_and(|e| e.contains("authentication failed")));
    // A `Hello` of the previous protocol (2: tables without versions) is
    // refused with a reason.
    let s: BoxStream = Box::new(tokio::net::TcpStream::connect(&addr).await.unwrap());
    let (rd, mut wr) = tokio::io::split(s);
    let hello = Frame::LegacyHello {
        protocol: 2,
        cluster: "msa".into(),
        node: NodeInfo {
            name: "old".into(),
            addr: "127.0.0.1:9".into(),
            incarnation: 1,
        },
        nonce: [1; 32],
        kind: ConnKind::Data,
    };
    write_raw(&mut wr, &hello, MAX).await.unwrap();
    let mut raw = RawPeer {
        rd,
        wr,
        dec: FrameDecoder::new(MAX),
        buf: vec![0; 1024],
    };
    match raw.next().await.unwrap() {
        Frame::Refused { reason } => assert!(
            reason.contains("protocol") && reason.contains("2..=2"),
            "{reason}"
        ),
        f => panic!("expected a refusal, got {f:?}"),
    }
    let t0 = std::time::Instant::now();
    while node.remote_stats().handshake_failures < before + 2 {
        assert!(t0.elapsed() < Duration::from_secs(5), "both counted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Accepts one connection on `l` and handshakes as member `raw` at
/// `addr`; returns it and the kind its dialer declared.
async fn accept_raw(l: &tokio::net::TcpListener, addr: &str) -> (RawPeer, ConnKind) {
    let (s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
        .await
        .expect("a connection within 10 s")
        .unwrap();
    let s: BoxStream = Box::new(s);
    let (rd, wr) = tokio::io::split(s);
    let mut raw = RawPeer {
        rd,
        wr,
        dec: FrameDecoder::new(MAX),
        buf: vec![0; 64 * 1024],
    };
    let cfg = HandshakeConfig {
        cluster: "msa".into(),
        secret: SECRET.to_vec(),
        local: NodeInfo {
            name: "raw".into(),
            addr: addr.into(),
            incarnation: 1,
        },
        protocols: PROTOCOLS,
    };
    let mut hs = HsListener::new(cfg, [4; 32]);
    loop {
        let f = raw.next().await.unwrap();
        match hs.on_frame(f).unwrap() {
            Step::Send(f) => write_raw(&mut raw.wr, &f, MAX).await.unwrap(),
            Step::Done(f, _) => {
                if let Some(f) = f {
                    write_raw(&mut raw.wr, &f, MAX).await.unwrap();
                }
                return (raw, hs.kind());
            }
        };
    }
}

#[tokio::test]
async fn the_dialer_opens_the_lane_and_redials_it_while_the_data_connection_lives() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_addr = l.local_addr().unwrap().to_string();
    let node = Node::builder()
        .name("wire")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .secret(SECRET)
        .seed(raw_addr.clone())
        .start()
        .unwrap();
    let (data, kind) = accept_raw(&l, &raw_addr).await;
    assert_eq!(kind, ConnKind::Data);
    let (lane, kind) = accept_raw(&l, &raw_addr).await;
    assert_eq!(kind, ConnKind::Membership, "the dialer also opens the lane");
    // The lane drops while the data connection lives: it is dialed again.
    drop(lane);
    let (mut lane, kind) = accept_raw(&l, &raw_addr).await;
    assert_eq!(kind, ConnKind::Membership);
    assert!(matches!(
        lane.next().await,
        Ok(Frame::Ping { .. } | Frame::Membership { .. })
    ));
    // The data connection goes: so does its lane.
    drop(data);
    lane.closed(|f| matches!(f, Frame::Ping { .. } | Frame::Membership { .. }))
        .await;
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
