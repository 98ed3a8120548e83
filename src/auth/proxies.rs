//! Which client a request comes from when Hindsight runs behind reverse proxies: CIDR ranges
//! of trusted proxies (`HINDSIGHT_TRUSTED_PROXIES`) and the right-most untrusted hop of
//! `X-Forwarded-For` / `Forwarded`. Pure text in, addresses out.

use std::net::IpAddr;

use crate::net::{Cidr, canonical};

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// A comma- or space-separated list of ranges; empty means no proxy is trusted.
    pub fn parse(raw: &str) -> Result<Self, String> {
        crate::net::parse_list(raw).map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client of a request that reached us from `peer`: the peer itself unless it is a
    /// trusted proxy; then the right-most hop of the forwarding chain that is not a trusted
    /// proxy (everything left of it may be made up by the client). `Forwarded` (RFC 7239) wins
    /// over `X-Forwarded-For` when both are present. A malformed hop ends the walk at the last
    /// trusted address, so garbage cannot make the client look like someone else.
    pub fn client(&self, peer: IpAddr, forwarded: &[&str], x_forwarded_for: &[&str]) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<Option<IpAddr>> = if forwarded.iter().any(|v| !v.trim().is_empty()) {
            forwarded
                .iter()
                .flat_map(|v| v.split(','))
                .map(forwarded_for)
                .collect()
        } else {
            x_forwarded_for
                .iter()
                .flat_map(|v| v.split(','))
                .map(|h| parse_hop(h.trim()))
                .collect()
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            let Some(ip) = hop else {
                return client;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// The `for=` of one `Forwarded` element (`for=192.0.2.1;proto=https`,
/// `for="[2001:db8::1]:443"`); `None` when missing, obfuscated or unparsable.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        parse_hop(v.trim().trim_matches('"'))
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:567`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ranges_parse_and_contain() {
        let net = Cidr::parse("10.0.0.0/8").expect("valid");
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.2.3")),
            "v4-mapped v6 is the v4 address"
        );
        let one = Cidr::parse("192.0.2.7").expect("a bare address");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6 = Cidr::parse("2001:db8::/32").expect("valid");
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all = Cidr::parse("0.0.0.0/0").expect("valid");
        assert!(all.contains(ip("203.0.113.9")));
        assert!(Cidr::parse("::/0").expect("valid").contains(ip("::1")));
        assert_eq!(net.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        for (raw, says) in [
            ("10.0.0.0/33", "prefix length"),
            ("10.0.0.0/-1", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.1/8", "host bits"),
            ("proxy.internal", "not an IP address"),
            ("::1/129", "prefix length"),
            ("10.0.0.0/", "prefix length"),
        ] {
            let err = Cidr::parse(raw).expect_err(raw);
            assert!(err.contains(says), "{raw}: {err}");
        }
        let list = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1 ::1").expect("list");
        assert!(list.trusts(ip("127.0.0.1")) && list.trusts(ip("::1")));
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/8,nonsense").is_err());
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_peers() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("list");
        // A client talking to us directly cannot claim another address.
        assert_eq!(
            proxies.client(ip("203.0.113.5"), &[], &["198.51.100.1"]),
            ip("203.0.113.5")
        );
        // Through the proxy: the address the proxy saw.
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &[], &["198.51.100.1"]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("list");
        // The client forged the left-most entry; our proxies appended the rest.
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &[], &["1.1.1.1, 198.51.100.7", "10.0.0.9"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            proxies.client(
                ip("10.0.0.2"),
                &["for=1.1.1.1, for=\"[2001:db8::7]:443\";proto=https, for=10.0.0.9"],
                &["9.9.9.9"]
            ),
            ip("2001:db8::7"),
            "Forwarded wins over X-Forwarded-For"
        );
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &[], &["198.51.100.7:4711"]),
            ip("198.51.100.7")
        );
        // Only proxies in the chain: the left-most of them.
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &[], &["10.0.0.3"]),
            ip("10.0.0.3")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &[], &["198.51.100.7, junk"]),
            ip("10.0.0.2")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &["for=_hidden"], &[]),
            ip("10.0.0.2")
        );
        // No header at all: the proxy itself.
        assert_eq!(proxies.client(ip("10.0.0.2"), &[], &[]), ip("10.0.0.2"));
    }
}
