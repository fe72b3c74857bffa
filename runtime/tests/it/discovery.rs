//! Discovery: seeds from DNS names, re-resolved every interval, against a
//! real resolver talking to a small authoritative DNS server the test runs
//! in-process (UDP on 127.0.0.1:0, answers built with hickory-proto); and a
//! dead seed that says so at warn.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use msa_runtime::remote::discovery::{Discovery, DnsSeeds};
use msa_runtime::Node;
use parking_lot::Mutex;

use crate::support::log_capture::LogCapture;
use crate::support::*;

const SECRET: &[u8] = b"discovery-secret";

/// An authoritative DNS server for one name: its A and AAAA records are the
/// addresses in `answer` (TTL 0, so every lookup reaches the server), any
/// other name is NXDOMAIN, and so is the name while `answer` is empty.
struct DnsServer {
    addr: SocketAddr,
    answer: Arc<Mutex<Vec<IpAddr>>>,
    queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    async fn start(name: &str, answer: Vec<IpAddr>) -> Self {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer));
        let queries = Arc::new(AtomicUsize::new(0));
        let fqdn = format!("{}.", name.trim_end_matches('.')).to_ascii_lowercase();
        let (ans, q) = (answer.clone(), queries.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(req) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                let reply = answer_for(&req, &fqdn, &ans.lock());
                if let Ok(bytes) = reply.to_vec() {
                    let _ = sock.send_to(&bytes, from).await;
                }
            }
        });
        Self {
            addr,
            answer,
            queries,
            task,
        }
    }

    fn set(&self, ips: Vec<IpAddr>) {
        *self.answer.lock() = ips;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer_for(req: &Message, fqdn: &str, ips: &[IpAddr]) -> Message {
    let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
    resp.metadata.message_type = MessageType::Response;
    resp.metadata.authoritative = true;
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    for query in &req.queries {
        resp.add_query(query.clone());
        let name = query.name().to_ascii().to_ascii_lowercase();
        if name != fqdn || ips.is_empty() {
            resp.metadata.response_code = ResponseCode::NXDomain;
            continue;
        }
        for ip in ips {
            let rdata = match (query.query_type(), ip) {
                (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
                (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                _ => continue,
            };
            resp.add_answer(Record::from_rdata(query.name().clone(), 0, rdata));
        }
    }
    resp
}

/// A node on `ip:port` (a loopback address of its own: DNS gives addresses,
/// and a seed name's port is the same for all of them).
fn node_at(name: &str, ip: &str, port: u16) -> Node {
    Node::builder()
        .name(name)
        .arbiters(1)
        .secret(SECRET)
        .listen_on(format!("{ip}:{port}"))
        .start()
        .unwrap()
}

fn peer_names(n: &Node) -> Vec<String> {
    let mut v: Vec<String> = n.peers().into_iter().map(|p| p.name).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_seeded_by_a_dns_name_joins_every_address_and_finds_new_ones() {
    // Two nodes that do not know each other, on 127.0.0.2 and 127.0.0.3
    // with one port between them.
    let a = node_at("dns-a", "127.0.0.2", 0);
    let port: u16 = a
        .remote_addr()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    let b = node_at("dns-b", "127.0.0.3", port);
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let dns = DnsServer::start("msa-nodes.msa.test", vec![ip("127.0.0.2"), ip("127.0.0.3")]).await;
    // The third node knows only the name.
    let c = Node::builder()
        .name("dns-c")
        .arbiters(1)
        .secret(SECRET)
        .listen("127.0.0.1:0".parse().unwrap())
        .seed(format!("msa-nodes.msa.test:{port}"))
        .dns_server(dns.addr)
        .discovery_interval(Duration::from_millis(200))
        .start()
        .unwrap();
    eventually("c to join both nodes behind the name", WAIT, || async {
        peer_names(&c) == ["dns-a", "dns-b"]
    })
    .await;
    // Through c, a and b now know each other too.
    eventually("a full mesh of three", WAIT, || async {
        peer_names(&a) == ["dns-b", "dns-c"] && peer_names(&b) == ["dns-a", "dns-c"]
    })
    .await;
    // A fourth node appears behind the name: found at the next round.
    let d = node_at("dns-d", "127.0.0.4", port);
    assert!(peer_names(&d).is_empty(), "d knows no one by itself");
    let before = dns.queries.load(Ordering::SeqCst);
    dns.set(vec![ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.4")]);
    eventually("c to discover d by re-resolving the name", WAIT, || async {
        peer_names(&c).contains(&"dns-d".to_string())
    })
    .await;
    assert!(
        dns.queries.load(Ordering::SeqCst) > before,
        "the name was resolved again"
    );
    eventually("d in everyone's view", WAIT, || async {
        [&a, &b, &c].iter().all(|n| peer_names(n).len() == 3)
    })
    .await;
    // b goes away and leaves the answer: c stops dialing its address.
    let b_addr = b.remote_addr().unwrap();
    let logs = LogCapture::keyed("addr", b_addr.clone(), tracing::Level::INFO);
    b.shutdown(GRACE).await.unwrap();
    dns.set(vec![ip("127.0.0.2"), ip("127.0.0.4")]);
    eventually("c to stop dialing b's address", WAIT, || async {
        logs.text()
            .contains("seed no longer discovered; stopped dialing it")
    })
    .await;
    eventually("c to see a and d only", WAIT, || async {
        peer_names(&c) == ["dns-a", "dns-d"]
    })
    .await;
    for n in [d, c, a] {
        n.shutdown(GRACE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_seeds_resolve_a_and_aaaa_and_keep_the_last_answer_when_the_name_fails() {
    let dns = DnsServer::start(
        "both.msa.test",
        vec![
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
    )
    .await;
    let seeds = DnsSeeds::new(
        ["both.msa.test:7000", "127.0.0.9:7001", "[::1]:7002"],
        Some(dns.addr),
    );
    let want = [
        "127.0.0.5:7000",
        "[::1]:7000",
        "127.0.0.9:7001",
        "[::1]:7002",
    ];
    assert_eq!(seeds.seeds().await.unwrap(), want);
    // The name stops resolving (NXDOMAIN): its last addresses are kept.
    dns.set(Vec::new());
    let before = dns.queries.load(Ordering::SeqCst);
    assert_eq!(seeds.seeds().await.unwrap(), want);
    assert!(dns.queries.load(Ordering::SeqCst) > before, "asked again");
    // A name never resolved is kept as given (the transport's resolver may
    // know it when it dials), and the rest still come.
    let unknown = DnsSeeds::new(["nowhere.msa.test:7000", "127.0.0.9:7001"], Some(dns.addr));
    assert_eq!(
        unknown.seeds().await.unwrap(),
        ["nowhere.msa.test:7000", "127.0.0.9:7001"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_seed_is_logged_at_warn_with_backoff() {
    // A port nothing listens on any more.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let logs = LogCapture::keyed("addr", dead.clone(), tracing::Level::WARN);
    let n = Node::builder()
        .name("dead-seed")
        .arbiters(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .seed(dead.clone())
        .start()
        .unwrap();
    // Warned at the 1st, 2nd and 4th failure in a row, not the 3rd.
    eventually("the 4th failed dial to be logged at warn", WAIT, || async {
        logs.text().contains("attempts=4")
    })
    .await;
    let text = logs.text();
    assert!(text.contains("seed unreachable"), "{text}");
    assert!(text.contains("attempts=1"), "{text}");
    assert!(text.contains("attempts=2"), "{text}");
    assert!(
        !text.contains("attempts=3"),
        "the 3rd is only at debug: {text}"
    );
    assert!(text.contains("retry_in="), "{text}");
    n.shutdown(GRACE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_its_own_seed_name_does_not_dial_itself() {
    // A headless Service lists every pod, the one asking too. The port is
    // known before the node starts, as in a pod spec.
    let port = std::net::TcpListener::bind("127.0.0.6:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dns = DnsServer::start("self.msa.test", vec!["127.0.0.6".parse().unwrap()]).await;
    let n = Node::builder()
        .name("dns-self")
        .arbiters(1)
        .secret(SECRET)
        .listen_on(format!("127.0.0.6:{port}"))
        .seed(format!("self.msa.test:{port}"))
        .dns_server(dns.addr)
        .discovery_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    eventually("three discovery rounds", WAIT, || async {
        dns.queries.load(Ordering::SeqCst) >= 6
    })
    .await;
    let stats = n.remote_stats();
    assert!(n.peers().is_empty(), "{:?}", n.peers());
    assert_eq!(stats.handshake_failures, 0);
    assert_eq!(
        (stats.bytes_in, stats.bytes_out),
        (0, 0),
        "it never dialed itself"
    );
    n.shutdown(GRACE).await.unwrap();
}
