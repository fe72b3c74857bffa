//! `msa node --seed NAME:PORT` with `MSA_DISCOVERY_DNS_SERVER` and
//! `--discovery-interval`: the real binary resolves its seed name at a DNS
//! server the test runs (UDP on 127.0.0.1:0, answers built with
//! hickory-proto) and joins the node behind it.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::support::*;

const SECRET: &str = "discovery-cli-secret";

/// Answers `name`'s A queries with `ip` (TTL 0) until dropped; anything
/// else gets an empty answer (AAAA) or NXDOMAIN (other names).
struct DnsServer {
    addr: String,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl DnsServer {
    fn start(name: &str, ip: std::net::Ipv4Addr) -> DnsServer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap().to_string();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let fqdn = format!("{name}.");
        let (q, st) = (queries.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Acquire) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(req) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
                resp.metadata.authoritative = true;
                resp.metadata.recursion_desired = req.metadata.recursion_desired;
                for query in &req.queries {
                    resp.add_query(query.clone());
                    if !query.name().to_ascii().eq_ignore_ascii_case(&fqdn) {
                        resp.metadata.response_code = ResponseCode::NXDomain;
                    } else if query.query_type() == RecordType::A {
                        resp.add_answer(Record::from_rdata(
                            query.name().clone(),
                            0,
                            RData::A(A(ip)),
                        ));
                    }
                }
                if let Ok(bytes) = resp.to_vec() {
                    let _ = sock.send_to(&bytes, from);
                }
            }
        });
        DnsServer {
            addr,
            queries,
            stop,
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

#[test]
fn msa_node_joins_through_a_seed_name_resolved_at_its_dns_server() {
    // The first node on a loopback address of its own: a DNS answer is an
    // address, the port comes from the seed.
    let mut cmd = msa();
    cmd.args([
        "node",
        "--name",
        "dnscli1",
        "--listen",
        "127.0.0.7:0",
        "--arbiters",
        "1",
    ])
    .env("MSA_SECRET", SECRET);
    let one = Proc::spawn("dnscli1", cmd);
    let line = one
        .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
        .expect("dnscli1 ready");
    let r1 = Ready::parse(&line).unwrap();
    let port = r1.addr.strip_prefix("127.0.0.7:").unwrap().to_string();
    let dns = DnsServer::start("cli-nodes.msa.test", std::net::Ipv4Addr::new(127, 0, 0, 7));
    let mut cmd = msa();
    cmd.args([
        "node",
        "--name",
        "dnscli2",
        "--listen",
        "127.0.0.1:0",
        "--arbiters",
        "1",
        "--seed",
        &format!("cli-nodes.msa.test:{port}"),
        "--discovery-interval",
        "100ms",
    ])
    .env("MSA_DISCOVERY_DNS_SERVER", &dns.addr)
    .env("MSA_SECRET", SECRET);
    let two = Proc::spawn("dnscli2", cmd);
    let line = two
        .line_where(READY_WAIT, |l| l.starts_with("msa-node "))
        .expect("dnscli2 ready");
    let r2 = Ready::parse(&line).unwrap();
    let mut last = None;
    assert!(
        eventually(READY_WAIT, || {
            last = status_json(&r1.addr, SECRET);
            last.as_ref().is_some_and(|s| {
                s["members"].as_array().is_some_and(|m| {
                    m.iter().any(|m| m["addr"] == r2.addr.as_str()) && m.len() == 2
                })
            })
        }),
        "dnscli1 sees dnscli2: {last:?}"
    );
    // Re-resolved every 100 ms: the server keeps being asked.
    let seen = dns.queries.load(Ordering::SeqCst);
    assert!(seen > 0);
    assert!(
        eventually(READY_WAIT, || dns.queries.load(Ordering::SeqCst)
            >= seen + 4),
        "the name is resolved again at each interval"
    );
}
