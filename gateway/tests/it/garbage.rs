//! The gateway never panics and keeps serving, whatever arrives: a few
//! hundred requests with random methods, paths (percent-escapes, NULs,
//! invalid UTF-8, long segments), tokens, content types and bodies, sent as
//! raw bytes so that no client library tidies them up first.

use std::time::Duration;

use crate::support::*;
use msa_gateway::{AuthConfig, PolicyRule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// splitmix64: a fixed seed gives the same requests on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() % (max as u64 + 1)) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const SECRET: &str = "garbage-secret";

fn request(rng: &mut Rng, good_token: &str) -> Vec<u8> {
    let method = *rng.pick(&[
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW",
    ]);
    let segments: &[&[u8]] = &[
        b"v1",
        b"calc",
        b"calc.Add",
        b"calc.Nope",
        b"nope",
        b"healthz",
        b"metrics",
        b"cluster",
        b"%ff%fe",
        b"%00",
        b"..",
        b"{id}",
        b"\xc3\x28",
        b"\xe2\x82\xac",
        b"a%2Fb",
        b"",
    ];
    let mut path = Vec::new();
    if rng.next().is_multiple_of(2) {
        // A well-formed call shape, so the app's own checks run too.
        path.extend_from_slice(b"/v1/");
        path.extend_from_slice(rng.pick(&["calc", "nope", "%ff"]).as_bytes());
        path.push(b'/');
        path.extend_from_slice(rng.pick(&["calc.Add", "calc.Nope", "x"]).as_bytes());
    } else {
        for _ in 0..(rng.next() % 5) {
            path.extend_from_slice(b"/");
            if rng.next().is_multiple_of(20) {
                path.extend(std::iter::repeat_n(b'x', 5000));
            } else {
                let seg: &[u8] = rng.pick::<&[u8]>(segments);
                path.extend_from_slice(seg);
            }
        }
        if path.is_empty() {
            path.push(b'/');
        }
    }
    let token = match rng.next() % 5 {
        0 => None,
        1 => Some(good_token.as_bytes().to_vec()),
        2 => Some(b"a.b.c".to_vec()),
        3 => Some(rng.bytes(64).iter().map(|b| b'A' + b % 26).collect()),
        _ => {
            // A good token with one byte flipped.
            let mut t = good_token.as_bytes().to_vec();
            let i = (rng.next() as usize) % t.len();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            Some(t)
        }
    };
    let body: Vec<u8> = match rng.next() % 4 {
        0 => br#"{"a":1,"b":2}"#.to_vec(),
        1 => br#"{"a":"x"}"#.to_vec(),
        2 => rng.bytes(300),
        _ => Vec::new(),
    };
    let mut r = Vec::new();
    r.extend_from_slice(method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(&path);
    r.extend_from_slice(b" HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n");
    if let Some(t) = token {
        r.extend_from_slice(b"authorization: Bearer ");
        r.extend_from_slice(&t);
        r.extend_from_slice(b"\r\n");
    }
    let ct = *rng.pick(&[
        "application/json",
        "text/plain",
        "",
        "application/json; charset=latin1",
    ]);
    if !ct.is_empty() {
        r.extend_from_slice(format!("content-type: {ct}\r\n").as_bytes());
    }
    r.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    r.extend_from_slice(&body);
    r
}

/// Sends raw bytes, returns the status code of the answer (None: the
/// connection closed without one).
async fn raw(addr: std::net::SocketAddr, req: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("an answer within 10 s, never a hang")
        .ok()?;
    let line = out.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    line.split(' ').nth(1)?.parse().ok()
}

#[actix_rt::test]
async fn random_requests_get_answers_and_the_gateway_keeps_serving() {
    let mut cfg = config();
    cfg.auth = Some(AuthConfig::hs256(SECRET));
    cfg.policy = vec![PolicyRule {
        service: "calc".into(),
        message: "*".into(),
        roles: vec!["user".into()],
    }];
    let f = Fixture::start(cfg).await;
    let token =
        msa_gateway::hs256_token(SECRET, "fuzz", &["user"], Duration::from_secs(600)).unwrap();
    let addr = f.gateway.local_addr();
    let mut rng = Rng(0x5eed);
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..400 {
        let req = request(&mut rng, &token);
        if let Some(status) = raw(addr, &req).await {
            assert!((100..=599).contains(&status), "{status}");
            *seen.entry(status).or_insert(0u32) += 1;
        }
    }
    // The mix reached the app's own answers, not only the HTTP parser's.
    for status in [400, 401, 403, 404, 405] {
        assert!(seen.contains_key(&status), "no {status} in {seen:?}");
    }
    // Still serving, and right.
    assert_eq!(f.send("GET", "/healthz", None, "").await.status, 200);
    let r = f
        .send(
            "POST",
            "/v1/calc/calc.Add",
            Some(&token),
            r#"{"a":2,"b":3}"#,
        )
        .await;
    assert_eq!((r.status, r.json.clone()), (200, serde_json::json!(5)));
    f.stop().await;
}
