//! Where outgoing webhooks may connect. A destination URL is the admin's to type, so without a
//! check it reaches anything the server can: loopback services, the private network, a cloud
//! metadata address. Every delivery resolves the host itself and connects only to addresses
//! that are public or inside an allowed range (`HINDSIGHT_WEBHOOK_ALLOW_PRIVATE`), so a name
//! that resolves somewhere else later (DNS rebinding) is checked again at that moment.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

pub use crate::net::Cidr;
use crate::net::canonical;

/// A comma-separated list of ranges; empty means none.
pub fn parse_ranges(raw: &str) -> Result<Vec<Cidr>, String> {
    crate::net::parse_list(raw)
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// Whether `ip` is an ordinary public address: not loopback, private (RFC 1918), shared
/// (CGNAT, 100.64/10), link-local (169.254/16, where cloud metadata lives; fe80::/10),
/// unique-local (fc00::/7), unspecified, multicast, broadcast, documentation, benchmarking or
/// otherwise reserved. IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged
/// by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const NOT_PUBLIC: [([u8; 4], u32); 16] = [
        ([0, 0, 0, 0], 8),       // "this network", unspecified
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, cloud metadata
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation
        ([203, 0, 113, 0], 24),  // documentation
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, broadcast
        ([255, 255, 255, 255], 32),
    ];
    !NOT_PUBLIC
        .iter()
        .any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let within = |net: u128, prefix: u32| {
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits & mask == net & mask
    };
    let embedded_v4 = |shift: u32| {
        let low = u32::try_from((bits >> shift) & 0xffff_ffff).unwrap_or(0);
        Ipv4Addr::from(low)
    };
    if within(0x0064_ff9b << 96, 96) {
        return is_public_v4(embedded_v4(0)); // NAT64
    }
    if within(0x2002 << 112, 16) {
        return is_public_v4(embedded_v4(80)); // 6to4
    }
    const NOT_PUBLIC: [(u128, u32); 9] = [
        (0, 96),                      // unspecified, loopback, IPv4-compatible
        (0x0100 << 112, 64),          // discard-only
        (0x2001 << 112, 23),          // IETF protocol assignments (Teredo and more)
        (0x2001_0db8 << 96, 32),      // documentation
        (0xfc00 << 112, 7),           // unique local
        (0xfe80 << 112, 10),          // link-local
        (0xfec0 << 112, 10),          // site-local (deprecated)
        (0xff00 << 112, 8),           // multicast
        (0x0064_ff9b_0001 << 80, 48), // local-use NAT64
    ];
    !NOT_PUBLIC.iter().any(|(net, prefix)| within(*net, *prefix))
}

/// Which addresses deliveries may connect to.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    /// Non-public ranges the admin allows (an on-premises chat server, say).
    pub allow_private: Vec<Cidr>,
}

impl Egress {
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow_private.iter().any(|r| r.contains(ip))
    }

    /// An HTTP agent for one delivery: resolves through [`Checked`], follows no redirects,
    /// ignores proxy settings from the environment (the proxy would connect for us, unchecked)
    /// and treats every status as an answer. `blocked` is set when the host only resolved to
    /// addresses that are not permitted.
    pub fn agent(&self, timeout: std::time::Duration, blocked: Arc<AtomicBool>) -> ureq::Agent {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .build();
        ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            Checked {
                egress: self.clone(),
                blocked,
            },
        )
    }
}

/// The system resolver, keeping only permitted addresses: the connection goes to an address
/// this check saw, never to a second lookup's answer.
#[derive(Debug)]
struct Checked {
    egress: Egress,
    blocked: Arc<AtomicBool>,
}

impl Resolver for Checked {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let all = DefaultResolver::default().resolve(uri, config, timeout)?;
        let mut kept = self.empty();
        for addr in all.iter().filter(|a| self.egress.permits(a.ip())) {
            kept.push(*addr);
        }
        if kept.is_empty() {
            self.blocked.store(true, Ordering::Relaxed);
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "destination resolves only to addresses that are not allowed",
            )));
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn local_private_and_reserved_addresses_are_not_public() {
        for addr in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.2.10",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
        ] {
            assert!(!is_public(ip(addr)), "{addr} must not count as public");
        }
    }

    #[test]
    fn ordinary_internet_addresses_are_public() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(addr)), "{addr} is public");
        }
    }

    #[test]
    fn allowed_ranges_let_named_private_addresses_through() {
        let egress = Egress {
            allow_private: parse_ranges("10.20.0.0/16, fd00::/8, 127.0.0.1").expect("valid"),
        };
        assert!(egress.permits(ip("10.20.3.4")));
        assert!(!egress.permits(ip("10.21.0.1")));
        assert!(egress.permits(ip("fd00::5")));
        assert!(egress.permits(ip("127.0.0.1")));
        assert!(egress.permits(ip("::ffff:127.0.0.1")));
        assert!(!egress.permits(ip("127.0.0.2")));
        assert!(egress.permits(ip("8.8.8.8")));
        assert!(Egress::default().permits(ip("8.8.8.8")));
        assert!(!Egress::default().permits(ip("169.254.169.254")));
    }

    #[test]
    fn bad_ranges_are_named() {
        assert!(parse_ranges("10.0.0.0/33").is_err());
        assert!(parse_ranges("fd00::/129").is_err());
        assert!(parse_ranges("intranet").is_err());
        assert_eq!(parse_ranges(" , ").expect("empty is fine"), Vec::new());
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("127.0.0.1"))
        );
    }
}
