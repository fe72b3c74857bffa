//! A node that is still joining its cluster serves no call from another
//! node: a remote ask, a forwarded JSON ask and a forwarded bincode ask
//! each get `Joining` at once (the bincode one was served before: it was
//! refused only while the node was downed).

use super::*;
use crate::remote::frame::WireMeta;

/// Reads frames until the answer to `id`.
async fn answer(p: &mut RawPeer, id: u64) -> Frame {
    loop {
        let f = p.next().await.unwrap();
        if let Frame::Error { id: i, .. } | Frame::Reply { id: i, .. } = &f {
            if *i == id {
                return f;
            }
        }
    }
}

#[tokio::test]
async fn a_joining_node_refuses_every_kind_of_call_from_another_node() {
    // A seed that refuses every dial: nobody can admit this node.
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let seed = refusing.local_addr().unwrap().to_string();
    drop(refusing);
    let (node, addr) = node_with(|b| b.seed(seed)).await;
    assert!(node.is_joining());
    let joining = WireError::from_call(&CallError::Joining {
        node: "wire".into(),
    });
    let mut p = RawPeer::connect(&addr).await;
    let payload = crate::codec::encode(&Double(21)).unwrap();
    assert_eq!(
        p.ask(1, "doubler", "wire-test.Double", payload.clone())
            .await,
        Frame::Error {
            id: 1,
            error: joining.clone()
        }
    );
    let json = Frame::AskJson {
        id: 2,
        service: "doubler".into(),
        message: "wire-test.Double".into(),
        meta: WireMeta::default(),
        body: b"21".to_vec(),
    };
    write_raw(&mut p.wr, &json, MAX).await.unwrap();
    assert_eq!(
        answer(&mut p, 2).await,
        Frame::Error {
            id: 2,
            error: joining.clone()
        }
    );
    let bincode = Frame::AskBincode {
        id: 3,
        service: "doubler".into(),
        message: "wire-test.Double".into(),
        meta: WireMeta::default(),
        body: payload,
    };
    write_raw(&mut p.wr, &bincode, MAX).await.unwrap();
    assert_eq!(
        answer(&mut p, 3).await,
        Frame::Error {
            id: 3,
            error: joining
        },
        "a joining node served a forwarded bincode ask"
    );
    assert!(
        node.is_joining(),
        "still joining: the answers were not by luck"
    );
    node.shutdown(Duration::from_secs(5)).await.unwrap();
}
