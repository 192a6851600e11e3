//! Network values in a config: bind addresses as HAProxy writes them and CIDR networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Parses a bind address as HAProxy accepts it: `1.2.3.4:514`, `:514` (all IPv4 addresses),
/// `[::1]:514`, `::1:514`, optionally with an `ipv4@`, `ipv6@`, `udp@`, `udp4@`, `udp6@`,
/// `tcp@`, `tcp4@` or `tcp6@` prefix. A bare port (`5514`) means all IPv4 addresses.
pub fn parse_bind_addr(spec: &str) -> Result<SocketAddr, String> {
    let bad =
        || format!("bad address '{spec}': expected ADDR:PORT, :PORT, [IPv6]:PORT or a port number");
    let (family, rest) = match spec.split_once('@') {
        Some((prefix, rest)) => match prefix {
            "ipv4" | "udp" | "udp4" | "tcp" | "tcp4" => (Some(false), rest),
            "ipv6" | "udp6" | "tcp6" => (Some(true), rest),
            _ => return Err(format!("unknown address family '{prefix}@' in '{spec}'")),
        },
        None => (None, spec),
    };
    if let Ok(port) = rest.parse::<u16>() {
        return Ok(SocketAddr::new(unspecified(family == Some(true)), port));
    }
    if let Ok(addr) = SocketAddr::from_str(rest) {
        return Ok(addr);
    }
    // `::1:514` and `:514`: the port follows the last colon.
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip = if host.is_empty() {
        unspecified(family == Some(true))
    } else {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.parse::<IpAddr>().map_err(|_| bad())?
    };
    Ok(SocketAddr::new(ip, port))
}

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// An IP network, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
    /// dual-stack socket reports) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask_bits(u32::from(ip).into(), 32, self.prefix)
                    == mask_bits(u32::from(net).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_bits(u128::from(ip), 128, self.prefix)
                    == mask_bits(u128::from(net), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit number.
fn mask_bits(value: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        value >> (width - prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let bad =
            || format!("bad network '{spec}': expected e.g. 10.0.0.0/8, 192.168.1.7 or ::1/128");
        let (addr, prefix) = match spec.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (spec, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= width)
                .ok_or_else(bad)?,
            None => width,
        };
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_in_haproxy_forms() {
        let at = |s| parse_bind_addr(s).map(|a| a.to_string());
        assert_eq!(at("127.0.0.1:514").as_deref(), Ok("127.0.0.1:514"));
        assert_eq!(at(":514").as_deref(), Ok("0.0.0.0:514"));
        assert_eq!(at("5514").as_deref(), Ok("0.0.0.0:5514"));
        assert_eq!(at("ipv6@:514").as_deref(), Ok("[::]:514"));
        assert_eq!(at("udp@127.0.0.1:514").as_deref(), Ok("127.0.0.1:514"));
        assert_eq!(at("[::1]:514").as_deref(), Ok("[::1]:514"));
        assert_eq!(at("::1:514").as_deref(), Ok("[::1]:514"));
        for bad in ["", "host:514", "1.2.3.4", "1.2.3.4:99999", "unix@/x:1"] {
            assert!(parse_bind_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn networks_match_their_addresses_only() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.255.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "192.168.1.7".parse().unwrap();
        assert!(one.contains("192.168.1.7".parse().unwrap()));
        assert!(!one.contains("192.168.1.8".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x/8", "10.0.0.0/", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
