//! IP address ranges as administrators type them (`10.0.0.0/8`, `fd00::/8`, a single
//! address): parsed once, then asked whether an address is inside. Used by the trusted-proxy
//! list and the webhook egress allow-list, so both read ranges the same way.

use std::net::IpAddr;

/// An address range such as `10.0.0.0/8`, `::1/128` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n` or a bare address (a range of one). Host bits set below
    /// the prefix are refused: `10.0.0.1/8` is more likely a typo than a wish.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{raw:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => {
                    return Err(format!(
                        "{raw:?} has a prefix length that is not 0 to {max}"
                    ));
                }
            },
        };
        let cidr = Self { network, prefix };
        if mask(network, prefix) != bits(network) {
            return Err(format!(
                "{raw:?} has host bits set; the range starts at {}/{prefix}",
                from_bits(network, mask(network, prefix))
            ));
        }
        Ok(cidr)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        mask(ip, self.prefix) == mask(self.network, self.prefix)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `::ffff:1.2.3.4` is the IPv4 address 1.2.3.4 (dual-stack sockets report it so).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(ip: IpAddr, prefix: u8) -> u128 {
    let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = u32::from(prefix).min(width);
    let host = width - prefix;
    let keep = if host >= 128 { 0 } else { u128::MAX << host };
    bits(ip) & keep
}

fn from_bits(like: IpAddr, value: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::from(u32::try_from(value).unwrap_or(0).to_be_bytes()),
        IpAddr::V6(_) => IpAddr::from(value.to_be_bytes()),
    }
}

/// A list of ranges separated by commas or white space; empty means none.
pub fn parse_list(raw: &str) -> Result<Vec<Cidr>, String> {
    raw.split([',', ' ', '\t', '\n'])
        .filter(|p| !p.trim().is_empty())
        .map(Cidr::parse)
        .collect()
}
