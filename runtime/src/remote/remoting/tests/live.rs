//! The live view's frames on the wire: a peer that speaks protocol 8 gets
//! the node's report for its `LiveRequest`; one that speaks only 7 is never
//! sent one (it could not decode it).

use super::*;
use crate::remote::handshake::ProtocolRange;

async fn raw(addr: &str, protocols: ProtocolRange) -> RawPeer {
    let s: BoxStream = Box::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    RawPeer::speaking(s, ConnKind::Data, SECRET, protocols)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_live_request_is_answered_with_the_nodes_report() {
    let (node, addr) = node().await;
    let mut p = raw(&addr, PROTOCOLS).await;
    let query = serde_json::to_vec(&crate::live::LiveQuery::new().service("doubler")).unwrap();
    write_raw(&mut p.wr, &Frame::LiveRequest { id: 9, query }, MAX)
        .await
        .unwrap();
    let report = loop {
        match p.next().await.unwrap() {
            Frame::LiveReply { id: 9, report } => break report,
            _ => continue, // tables, topics, membership, pings
        }
    };
    let report: crate::live::LiveReport = serde_json::from_slice(&report).unwrap();
    assert_eq!(report.node, "wire");
    assert!(report.services.iter().any(|s| s.name == "doubler"));
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
