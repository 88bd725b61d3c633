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

/// Ranges no network of nodes can use, whatever the user means: the host
/// would route its own loopback, "this network", link-local (the cloud
/// metadata address among it), multicast or reserved and broadcast
/// addresses onto a bridge (the engine lets it: 127.0.0.1/24 scope global).
const UNUSABLE: [(&str, &str); 5] = [
    ("0.0.0.0/8", "\"this network\" (0.0.0.0/8)"),
    ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
    ("169.254.0.0/16", "link-local (169.254.0.0/16)"),
    ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
    ("240.0.0.0/4", "reserved and broadcast (240.0.0.0/4)"),
];

/// Ranges that are nobody's on the internet: private (RFC 1918), shared
/// (RFC 6598), benchmarking (RFC 2544) and documentation (RFC 5737).
const NOT_PUBLIC: [&str; 8] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
];

impl Ipv4Cidr {
    /// Whether nodes may have this network: never when it overlaps a
    /// range of [`UNUSABLE`]; when it is public (not inside a range of
    /// [`NOT_PUBLIC`]) only if `allow_public` says the user means it (its
    /// route would hide those addresses of the internet from the host).
    /// `flag` names the value in the error, `allow_flag` how to allow it.
    pub fn check_usable(
        &self,
        flag: &str,
        allow_public: bool,
        allow_flag: &str,
    ) -> Result<(), String> {
        for (range, what) in UNUSABLE {
            let r: Ipv4Cidr = range.parse().expect("a valid range");
            if r.overlaps(self) {
                return Err(format!(
                    "{flag} {self} overlaps {what}, which no network of nodes can use; give \
                     a private block such as 10.10.0.0/24"
                ));
            }
        }
        let private = NOT_PUBLIC.iter().any(|r| {
            let r: Ipv4Cidr = r.parse().expect("a valid range");
            r.prefix <= self.prefix && r.overlaps(self)
        });
        if !private && !allow_public {
            return Err(format!(
                "{flag} {self} is not a private block: this host would route those internet \
                 addresses to the nodes; give a private block such as 10.10.0.0/24 (10/8, \
                 172.16/12, 192.168/16), or add {allow_flag} if you mean it"
            ));
        }
        Ok(())
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

    #[test]
    fn special_ranges_are_refused_and_public_ones_need_the_flag() {
        let usable = |s: &str, allow: bool| c(s).check_usable("--subnet", allow, "--allow-public");
        for bad in [
            "127.0.0.0/24",
            "127.0.0.0/8",
            "0.0.0.0/0",
            "0.0.0.0/24",
            "224.0.0.0/24",
            "239.1.0.0/16",
            "240.0.0.0/24",
            "255.255.255.0/24",
            "169.254.0.0/24",
            "96.0.0.0/3",
        ] {
            let e = usable(bad, true).unwrap_err();
            assert!(e.contains(bad) && e.contains("no network of nodes"), "{e}");
        }
        for ok in [
            "10.0.0.0/8",
            "10.42.0.0/24",
            "172.16.0.0/12",
            "172.31.255.0/24",
            "192.168.1.0/24",
            "100.64.0.0/16",
            "198.18.0.0/24",
            "192.0.2.0/24",
        ] {
            assert_eq!(usable(ok, false), Ok(()), "{ok}");
        }
        for public in [
            "8.8.8.0/24",
            "172.32.0.0/24",
            "11.0.0.0/16",
            "192.169.0.0/24",
            "172.0.0.0/8",
        ] {
            let e = usable(public, false).unwrap_err();
            assert!(
                e.contains("not a private block") && e.contains("--allow-public"),
                "{e}"
            );
            assert_eq!(usable(public, true), Ok(()), "{public}");
        }
    }

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
