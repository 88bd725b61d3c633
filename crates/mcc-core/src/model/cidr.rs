//! IPv4 networks in CIDR notation: parsing, containment, overlap, host arithmetic.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network such as `10.0.0.0/24`. The address is always the network
/// address (host bits zero), so two values compare equal when they name the
/// same network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// A network from an address and a prefix length; host bits must be zero.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, String> {
        if prefix > 32 {
            return Err(format!("prefix length /{prefix} is larger than 32"));
        }
        let raw = u32::from(addr);
        let net = raw & mask(prefix);
        if net != raw {
            return Err(format!(
                "{addr}/{prefix} has host bits set; the network is {}/{prefix}",
                Ipv4Addr::from(net)
            ));
        }
        Ok(Self {
            network: net,
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Number of addresses in the network, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network | !mask(self.prefix))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == self.network
    }

    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        let p = self.prefix.min(other.prefix);
        self.network & mask(p) == other.network & mask(p)
    }

    /// The address `offset` places after the network address, if inside.
    pub fn nth(&self, offset: u64) -> Option<Ipv4Addr> {
        if offset >= self.size() {
            return None;
        }
        Some(Ipv4Addr::from(self.network + offset as u32))
    }

    /// Offset of `addr` from the network address, if inside.
    pub fn offset_of(&self, addr: Ipv4Addr) -> Option<u64> {
        self.contains(addr)
            .then(|| u64::from(u32::from(addr) - self.network))
    }

    /// The `index`-th subnet of length `prefix` inside this network.
    pub fn subnet(&self, prefix: u8, index: u64) -> Option<Ipv4Cidr> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        if index >= count {
            return None;
        }
        let step = 1u64 << (32 - u32::from(prefix));
        Some(Ipv4Cidr {
            network: self.network + (index * step) as u32,
            prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' has no prefix length; write it like 10.10.0.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("'{addr}' in '{s}' is not an IPv4 address"))?;
        let prefix: u8 =
            prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| {
                format!("'{prefix}' in '{s}' is not a prefix length from 0 to 32")
            })?;
        Ipv4Cidr::new(addr, prefix)
    }
}

impl serde::Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(c("10.1.0.0/16").to_string(), "10.1.0.0/16");
        assert_eq!(c("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(
            c("192.168.1.0/24").broadcast(),
            Ipv4Addr::new(192, 168, 1, 255)
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "10.0.0.0",
            "10.0.0/24",
            "10.0.0.0/33",
            "10.0.0.1/24",
            "x/8",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad} should not parse");
        }
        let err = "10.0.0.1/24".parse::<Ipv4Cidr>().unwrap_err();
        assert!(err.contains("10.0.0.0/24"), "{err}");
    }

    #[test]
    fn overlap_and_containment() {
        assert!(c("10.0.0.0/8").overlaps(&c("10.20.0.0/16")));
        assert!(c("10.20.0.0/16").overlaps(&c("10.0.0.0/8")));
        assert!(!c("10.0.0.0/24").overlaps(&c("10.0.1.0/24")));
        assert!(c("10.0.0.0/24").contains(Ipv4Addr::new(10, 0, 0, 255)));
        assert!(!c("10.0.0.0/24").contains(Ipv4Addr::new(10, 0, 1, 0)));
    }

    #[test]
    fn subnets_and_offsets() {
        let n = c("172.16.0.0/12");
        assert_eq!(n.subnet(20, 1), Some(c("172.16.16.0/20")));
        assert_eq!(n.subnet(20, 256), None);
        assert_eq!(n.subnet(8, 0), None);
        assert_eq!(c("10.0.0.0/24").nth(2), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(c("10.0.0.0/24").nth(256), None);
        assert_eq!(
            c("10.0.0.0/24").offset_of(Ipv4Addr::new(10, 0, 0, 9)),
            Some(9)
        );
    }
}
