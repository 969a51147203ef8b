//! Which addresses are which: public (reachable from the internet), loopback, relayed, or
//! this device's own. Plain rules on addresses, kept apart so they can be read and tested
//! on their own.

use std::net::IpAddr;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;

use crate::node::EventLoop;

/// Whether an address goes through a relay.
pub(crate) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// Whether an address is on the loopback interface.
pub(crate) fn is_loopback(addr: &Multiaddr) -> bool {
    ip_of(addr).is_some_and(|ip| ip.is_loopback())
}

/// The IP address an address starts with, if any.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Whether an IP address is globally routable (the rules of `IpAddr::is_global`, which is not
/// stable yet: private, loopback, link-local, shared, documentation and reserved ranges are
/// not).
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            !(ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_documentation()
                || a == 0
                || (a == 100 && (b & 0xc0) == 64)
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b & 0xfe) == 18)
                || a >= 240)
        }
        IpAddr::V6(ip) => {
            let s = ip.segments();
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || ip.to_ipv4_mapped().is_some())
        }
    }
}

/// Whether an IP address can be reached from the internet: a global address, or one in
/// `public_ranges` (simulated internets). The UPnP port mapper uses it for the router's
/// address too.
pub(crate) fn is_public_ip(ip: IpAddr, public_ranges: &[ipnet::IpNet]) -> bool {
    is_global(ip) || public_ranges.iter().any(|r| r.contains(&ip))
}

impl EventLoop {
    /// Whether `addr` can be reached from the internet: a global address, or one in the
    /// configured public ranges. Relayed addresses count when the relay's address does.
    pub(crate) fn is_public_address(&self, addr: &Multiaddr) -> bool {
        let Some(ip) = ip_of(addr) else {
            return false;
        };
        is_public_ip(ip, &self.config.public_ranges)
    }

    /// Whether `addr` (with or without a trailing `/p2p/…`) is one this device listens on:
    /// dialing it would reach this device itself (e.g. another device's loopback address
    /// on the same port).
    pub(crate) fn is_own_address(&self, addr: &Multiaddr) -> bool {
        let mut bare = addr.clone();
        if matches!(bare.iter().last(), Some(Protocol::P2p(_))) {
            bare.pop();
        }
        self.listen_addrs.contains(&bare)
    }

    /// Whether a connection runs over loopback (both ends on this machine).
    pub(crate) fn connection_is_loopback(&self, connection: ConnectionId) -> bool {
        self.reach
            .connections
            .get(&connection)
            .is_some_and(|c| is_loopback(&c.address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_and_private_ranges_are_not_global() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "203.0.113.5",
            "198.51.100.7",
            "192.0.2.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "2001:db8::1",
            "fd00::1",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "2a00:1450::1", "81.2.69.142"] {
            assert!(is_global(ip.parse().unwrap()), "{ip}");
        }
    }
}
