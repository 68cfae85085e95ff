//! Who the client is, at the edge: trusted proxies (a CIDR list) decide whether `X-Forwarded-For`
//! is believed, and per-address budgets aggregate IPv6 by /64 (one customer's prefix).
//!
//! The client is the right-most address of `peer, X-Forwarded-For (right to left)` that is not a
//! trusted proxy: each trusted hop vouches for the one before it, and the first untrusted one is
//! where a forged list would start. A peer that is not trusted is the client, whatever it sends.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// One network: an address and the length of its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.0.0.0/8`, `fd00::/8`, or a single address (`/32` or `/128`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an address or CIDR network"))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: bad prefix length"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`gateway.trusted_proxies`). Empty: nobody's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a list of CIDR networks or addresses; the error names the bad entry.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, String> {
        list.iter().map(|s| s.as_ref().parse()).collect::<Result<Vec<_>, _>>().map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client of a request that came from `peer` with these headers: the right-most hop not
    /// trusted. Unparsable entries end the walk at the last hop believed (a trusted proxy would
    /// not write garbage; whoever did is behind it, so the proxy's own peer stands).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    None
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, what a dual-stack socket reports) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key per-address budgets count under: an IPv4 address, or the /64 an IPv6 address is in
/// (an IPv6 customer gets at least a /64, so counting addresses would give them 2^64 budgets).
pub fn address_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{net}/64")
        }
    }
}

/// The unspecified address, for a request whose peer is unknown (tests without a socket).
pub const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.200.1.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped counts as IPv4");
        assert!(!c.contains(ip("11.0.0.1")));
        let c: Cidr = "fd00::/8".parse().unwrap();
        assert!(c.contains(ip("fd12::1")));
        assert!(!c.contains(ip("fe80::1")));
        assert!(!c.contains(ip("10.0.0.1")));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse(&["10.0.0.0/8", "nonsense"]).unwrap_err().contains("nonsense"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let h = headers(&["203.0.113.5"]);
        assert_eq!(none.client(ip("10.0.0.9"), &h), ip("10.0.0.9"), "no trusted proxy: the peer");

        let lb = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        assert_eq!(lb.client(ip("198.51.100.1"), &h), ip("198.51.100.1"), "an untrusted peer's header is ignored");
        assert_eq!(lb.client(ip("10.0.0.9"), &h), ip("203.0.113.5"), "a trusted peer vouches for its client");
        assert_eq!(lb.client(ip("10.0.0.9"), &HeaderMap::new()), ip("10.0.0.9"), "no header: the proxy itself");
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client_so_a_forged_list_is_ignored() {
        let lb = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        // The client wrote "1.1.1.1" itself; the proxy appended the address it saw.
        let forged = headers(&["1.1.1.1, 203.0.113.5"]);
        assert_eq!(lb.client(ip("10.0.0.9"), &forged), ip("203.0.113.5"));
        // Two trusted hops, the list split over two header lines.
        let chained = headers(&["1.1.1.1, 203.0.113.5", "10.1.1.1"]);
        assert_eq!(lb.client(ip("10.0.0.9"), &chained), ip("203.0.113.5"));
        // Garbage where the proxy's entry should be: the proxy's peer stands.
        let garbage = headers(&["203.0.113.5, not-an-ip"]);
        assert_eq!(lb.client(ip("10.0.0.9"), &garbage), ip("10.0.0.9"));
        // Ports are tolerated.
        assert_eq!(lb.client(ip("10.0.0.9"), &headers(&["[2001:db8::1]:443"])), ip("2001:db8::1"));
        assert_eq!(lb.client(ip("10.0.0.9"), &headers(&["203.0.113.5:1234"])), ip("203.0.113.5"));
        // Every hop trusted: the left-most is the best we know.
        assert_eq!(lb.client(ip("10.0.0.9"), &headers(&["10.2.2.2"])), ip("10.2.2.2"));
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(address_key(ip("2001:db8:1:2:ffff:1:2:3")), address_key(ip("2001:db8:1:2::9")));
        assert_ne!(address_key(ip("2001:db8:1:2::1")), address_key(ip("2001:db8:1:3::1")));
        assert_eq!(address_key(ip("203.0.113.5")), "203.0.113.5");
        assert_eq!(address_key(ip("::ffff:203.0.113.5")), "203.0.113.5", "mapped IPv4 is IPv4");
    }
}
