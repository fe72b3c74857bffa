//! Which process of this host listens at an address: the socket's inode
//! from `/proc/net/tcp{,6}`, then the process holding it from
//! `/proc/<pid>/fd` (readable for this user's processes only).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The pid of the process on this host (in this network namespace, and
/// owned by this user) that listens at `addr`; `None` if there is none.
pub(crate) fn listening_at(addr: &str) -> Option<u32> {
    let sa = addr.to_socket_addrs().ok()?.next()?;
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, sa));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if wanted.iter().any(|w| link.as_os_str() == w.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Inodes of the listening sockets bound to `sa` (or to the wildcard
/// address on its port) in one `/proc/net/tcp*` table.
fn listening_inodes(table: &str, sa: SocketAddr) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (f.get(1)?, f.get(3)?, f.get(9)?);
            if *state != "0A" {
                return None; // not LISTEN
            }
            let (ip, port) = local.split_once(':')?;
            if u16::from_str_radix(port, 16).ok()? != sa.port() {
                return None;
            }
            let ip = parse_ip(ip)?;
            (ip == sa.ip() || ip.is_unspecified())
                .then(|| inode.parse().ok())
                .flatten()
        })
        .collect()
}

/// An address as the kernel prints it: 32-bit words in hex, each in host
/// (little-endian here) byte order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_by_its_listener_and_nobody_on_a_closed_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        assert_eq!(listening_at(&addr), Some(std::process::id()));
        drop(l);
        assert_eq!(listening_at(&addr), None);
        assert_eq!(listening_at("not an address"), None);
    }

    #[test]
    fn kernel_addresses_parse() {
        assert_eq!(parse_ip("0100007F"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip("00000000"), Some("0.0.0.0".parse().unwrap()));
        assert_eq!(
            parse_ip("00000000000000000000000001000000"),
            Some("::1".parse().unwrap())
        );
        assert_eq!(parse_ip("zz"), None);
    }
}
