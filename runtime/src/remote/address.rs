//! The address a node advertises: what other nodes dial, as opposed to
//! what it binds (`listen`).
//!
//! A node bound to an unspecified address (`0.0.0.0`, `::`) listens on
//! every interface, but nobody can dial `0.0.0.0`: such a node must be
//! told what to advertise, and is refused at start otherwise
//! ([`NodeError::UnroutableListen`]). An advertise port of 0 means "the
//! port the listener got", so `listen = 0.0.0.0:0` with `advertise =
//! 10.1.2.3:0` advertises `10.1.2.3:<bound port>`.

use std::net::IpAddr;

use crate::error::NodeError;

/// Splits `host:port` (`[v6]:port` for IPv6) into the host, without
/// brackets, and the port.
pub(crate) fn split_host_port(addr: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| "expected [ipv6]:port".to_string())?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{host}` is not an IPv6 address"));
        }
        (host, port)
    } else {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| "expected host:port".to_string())?;
        if host.contains(':') {
            return Err("write an IPv6 address in brackets: [addr]:port".into());
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("`{port}` is not a port number"))?;
    Ok((host, port))
}

/// Joins a host (an IPv6 one gets brackets) and a port.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn is_unspecified(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// Refuses to listen on an unspecified address without an advertise
/// address (checked before binding).
pub(crate) fn check_listen(listen: &str, advertise: Option<&str>) -> Result<(), NodeError> {
    let unspecified = split_host_port(listen).is_ok_and(|(h, _)| is_unspecified(h));
    if unspecified && advertise.is_none() {
        return Err(NodeError::UnroutableListen {
            addr: listen.to_string(),
        });
    }
    Ok(())
}

/// The address to advertise for a listener bound at `bound`: `advertise`
/// (its port 0 replaced by the bound port) when given, else `bound`.
///
/// # Errors
/// [`NodeError::BadAdvertise`] for an advertise address that is not
/// `host:port` or whose host is unspecified; [`NodeError::UnroutableListen`]
/// when `bound` is unspecified and nothing is advertised.
pub(crate) fn advertised(bound: &str, advertise: Option<&str>) -> Result<String, NodeError> {
    let Some(adv) = advertise else {
        check_listen(bound, None)?;
        return Ok(bound.to_string());
    };
    let bad = |reason: String| NodeError::BadAdvertise {
        addr: adv.to_string(),
        reason,
    };
    let (host, port) = split_host_port(adv).map_err(bad)?;
    if is_unspecified(host) {
        return Err(bad("an unspecified address cannot be dialed; advertise \
                        the address other nodes reach this one at"
            .into()));
    }
    let port = if port == 0 {
        match split_host_port(bound) {
            Ok((_, p)) => p,
            Err(e) => return Err(bad(format!("the bound address {bound} has no port: {e}"))),
        }
    } else {
        port
    };
    Ok(join_host_port(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_address_is_advertised_without_advertise() {
        assert_eq!(
            advertised("127.0.0.1:7000", None).unwrap(),
            "127.0.0.1:7000"
        );
        assert_eq!(advertised("[::1]:7000", None).unwrap(), "[::1]:7000");
        assert_eq!(
            advertised("a:1", None).unwrap(),
            "a:1",
            "memory network names pass"
        );
    }

    #[test]
    fn unspecified_listen_without_advertise_is_refused() {
        for addr in ["0.0.0.0:7006", "[::]:7006"] {
            assert_eq!(
                advertised(addr, None),
                Err(NodeError::UnroutableListen { addr: addr.into() })
            );
            assert!(check_listen(addr, None).is_err());
            assert!(check_listen(addr, Some("10.0.0.1:0")).is_ok());
        }
    }

    #[test]
    fn advertise_port_zero_takes_the_bound_port() {
        assert_eq!(
            advertised("0.0.0.0:41234", Some("10.1.2.3:0")).unwrap(),
            "10.1.2.3:41234"
        );
        assert_eq!(
            advertised("[::]:41234", Some("[fd00::2]:0")).unwrap(),
            "[fd00::2]:41234"
        );
        assert_eq!(
            advertised("0.0.0.0:41234", Some("node1.svc:7000")).unwrap(),
            "node1.svc:7000",
            "an explicit port and a name are kept"
        );
    }

    #[test]
    fn bad_advertise_addresses_are_refused_with_a_reason() {
        for adv in [
            "0.0.0.0:7000",
            "[::]:0",
            "10.0.0.1",
            "::1:7000",
            "[::1:7000",
            "[nothex]:1",
            ":7000",
            "host:99999",
        ] {
            match advertised("127.0.0.1:7000", Some(adv)) {
                Err(NodeError::BadAdvertise { addr, reason }) => {
                    assert_eq!(addr, adv);
                    assert!(!reason.is_empty());
                }
                other => panic!("{adv}: {other:?}"),
            }
        }
    }

    #[test]
    fn split_and_join_round_trip() {
        assert_eq!(split_host_port("[::1]:80").unwrap(), ("::1", 80));
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
        assert_eq!(
            split_host_port("msa-nodes.default.svc:7000").unwrap(),
            ("msa-nodes.default.svc", 7000)
        );
    }
}
