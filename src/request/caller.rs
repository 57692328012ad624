//! Who is calling: the peer's address, or behind a trusted proxy the address `X-Forwarded-For`
//! gives (`allow ip`, `wf serve --trusted-proxy`).

use http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// Most `X-Forwarded-For` hops looked at; a longer chain is not trusted.
const MAX_HOPS: usize = 64;

/// The peer's address, as the server saw it (a request extension; absent in `wf test`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub IpAddr);

/// The caller's address. From a trusted proxy, `X-Forwarded-For` is read from the right: the first
/// address that is not itself a trusted proxy is the caller. `None` when the header is present but
/// cannot be trusted (garbage, or more than 64 hops).
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    // IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are their IPv4 address.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().ok()?;
        for hop in text.split(',') {
            if hops.len() == MAX_HOPS {
                return None;
            }
            hops.push(hop.trim());
        }
    }
    let mut caller = peer;
    for hop in hops.iter().rev() {
        caller = parse_hop(hop)?;
        if !is_trusted(&caller) {
            return Some(caller);
        }
    }
    Some(caller)
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:443`, `192.0.2.1:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        let trusted = vec!["10.0.0.0/8".parse::<IpNet>().unwrap()];
        let h = xff("198.51.100.7, 10.0.0.2");
        assert_eq!(client_ip(proxy, &h, &trusted), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(
            client_ip(outsider, &h, &trusted),
            Some(outsider),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), Some(proxy));
        assert_eq!(client_ip(proxy, &xff("garbage"), &trusted), None);
        assert_eq!(
            client_ip(proxy, &xff("[2001:db8::1]:443"), &trusted),
            Some("2001:db8::1".parse().unwrap())
        );
        // IPv4-mapped addresses are their IPv4 address, as the peer and as a hop.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_ip(mapped, &h, &trusted), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(
            client_ip(proxy, &xff("::ffff:198.51.100.7"), &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
        let long = vec!["198.51.100.7"; 1000].join(",");
        assert_eq!(client_ip(proxy, &xff(&long), &trusted), None);
    }
}
