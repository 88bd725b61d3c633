//! Address plans: which subnet a cluster uses and which address each node gets.
//!
//! Every node has a static address derived from its index: the gateway takes
//! the first host address, the front-end the second, worker `i` the
//! `(2 + i)`-th. The last quarter of the subnet is left to the engine for
//! dynamic addresses (containers a user attaches by hand), so they never
//! collide with a node added later.
//!
//! A cluster made into a VPC shares its subnet with containers that were
//! there first: its front-end then starts at the first address of a free
//! run of them ([`AddressPlan::free_run`]) and the workers follow it, still
//! one address per index, so that a node keeps its address for good.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::cidr::Ipv4Cidr;
use super::names::{NodeId, Role};

const FIRST_NODE_OFFSET: u64 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPlan {
    pub subnet: Ipv4Cidr,
    pub gateway: Ipv4Addr,
    /// Range the engine hands dynamic addresses from, if the subnet is
    /// large enough to spare one.
    pub ip_range: Option<Ipv4Cidr>,
    /// Addresses chosen by the user for some nodes.
    pub fixed: BTreeMap<NodeId, Ipv4Addr>,
    /// Offset of the front-end's address in the subnet; worker `i` has
    /// the `(first + i)`-th.
    first: u64,
}

impl AddressPlan {
    pub fn new(subnet: Ipv4Cidr) -> Result<Self, String> {
        if subnet.prefix() > 29 {
            return Err(format!(
                "subnet {subnet} is too small for a cluster: use a /29 or larger, e.g. /24"
            ));
        }
        let gateway = subnet.nth(1).expect("a /29 has a first host");
        let ip_range = (subnet.prefix() <= 28)
            .then(|| subnet.subnet(subnet.prefix() + 2, 3))
            .flatten();
        Ok(Self {
            subnet,
            gateway,
            ip_range,
            fixed: BTreeMap::new(),
            first: FIRST_NODE_OFFSET,
        })
    }

    /// The plan with the front-end at `ip` rather than at the subnet's
    /// second address, the workers after it; `ip` must be a static address
    /// past the gateway's default one.
    pub fn starting_at(mut self, ip: Ipv4Addr) -> Result<Self, String> {
        let offset = self
            .subnet
            .offset_of(ip)
            .filter(|o| (FIRST_NODE_OFFSET..self.static_end()).contains(o))
            .ok_or_else(|| {
                format!(
                    "first node address {ip} is not a static address of {} (from .{} up to \
                     the engine's range)",
                    self.subnet, FIRST_NODE_OFFSET
                )
            })?;
        self.first = offset;
        Ok(self)
    }

    /// The first address of `count` static addresses in a row, none of
    /// them `taken` nor the gateway: where the front-end and the first
    /// `count - 1` workers of a cluster in a shared subnet (a VPC) can
    /// start. `None` when there is no such run.
    pub fn free_run(&self, count: u32, taken: &[Ipv4Addr]) -> Option<Ipv4Addr> {
        let count = u64::from(count.max(1));
        let busy = |o: u64| {
            self.subnet
                .nth(o)
                .is_none_or(|ip| ip == self.gateway || taken.contains(&ip))
        };
        let mut start = FIRST_NODE_OFFSET;
        while start + count <= self.static_end() {
            match (start..start + count).rev().find(|o| busy(*o)) {
                // no run can hold the busy address: start past it
                Some(b) => start = b + 1,
                None => return self.subnet.nth(start),
            }
        }
        None
    }

    /// A plan with the user's gateway and per-node addresses, each checked:
    /// inside the subnet, not its network or broadcast address, outside the
    /// dynamic range, and no two alike.
    pub fn with_choices(
        subnet: Ipv4Cidr,
        gateway: Option<Ipv4Addr>,
        fixed: &BTreeMap<NodeId, Ipv4Addr>,
    ) -> Result<Self, String> {
        let mut plan = Self::new(subnet)?;
        let usable = |what: &str, ip: Ipv4Addr, plan: &AddressPlan| -> Result<(), String> {
            if !subnet.contains(ip) {
                return Err(format!("{what} {ip} is outside the subnet {subnet}"));
            }
            if ip == subnet.network() || ip == subnet.broadcast() {
                return Err(format!(
                    "{what} {ip} is the network or broadcast address of {subnet}"
                ));
            }
            if let Some(r) = plan.ip_range.filter(|r| r.contains(ip)) {
                return Err(format!(
                    "{what} {ip} is in {r}, the part of {subnet} kept for addresses the engine \
                     hands out; pick one below {}",
                    r.network()
                ));
            }
            Ok(())
        };
        if let Some(gw) = gateway {
            usable("gateway", gw, &plan)?;
            plan.gateway = gw;
        }
        for (node, ip) in fixed {
            usable(&format!("address of {node}"), *ip, &plan)?;
            if *ip == plan.gateway {
                return Err(format!("address of {node} {ip} is the gateway's"));
            }
        }
        plan.fixed = fixed.clone();
        Ok(plan)
    }

    /// Checks that the given nodes all have an address and no two share
    /// one (a fixed address may be another node's default one).
    pub fn check_unique(&self, nodes: &[NodeId]) -> Result<(), String> {
        let mut seen: BTreeMap<Ipv4Addr, NodeId> = BTreeMap::new();
        for n in nodes {
            let ip = self
                .ip(*n)
                .ok_or_else(|| format!("node {n} has no address left in subnet {}", self.subnet))?;
            if ip == self.gateway {
                return Err(format!(
                    "node {n} would get {ip}, the gateway's address; give it another with an ip"
                ));
            }
            if let Some(other) = seen.insert(ip, *n) {
                return Err(format!(
                    "nodes {other} and {n} would both get address {ip}; give one of them another"
                ));
            }
        }
        Ok(())
    }

    /// Offset past the last static address.
    fn static_end(&self) -> u64 {
        match self.ip_range {
            Some(r) => self
                .subnet
                .offset_of(r.network())
                .expect("range inside subnet"),
            None => self.subnet.size() - 1,
        }
    }

    /// Largest number of workers this plan can address.
    pub fn max_workers(&self) -> u32 {
        let slots = self.static_end().saturating_sub(self.first);
        u32::try_from(slots.saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// The static address of a node, or `None` if its index does not fit.
    pub fn ip(&self, node: NodeId) -> Option<Ipv4Addr> {
        if let Some(ip) = self.fixed.get(&node) {
            return Some(*ip);
        }
        let index = match node.role {
            Role::Frontend => 0,
            Role::Worker => u64::from(node.index),
        };
        let offset = self.first + index;
        (offset < self.static_end())
            .then(|| self.subnet.nth(offset))
            .flatten()
    }

    /// Which node owns a static address by default, if any.
    pub fn node_of(&self, ip: Ipv4Addr) -> Option<NodeId> {
        let offset = self.subnet.offset_of(ip)?;
        if offset < self.first || offset >= self.static_end() {
            return None;
        }
        let index = u32::try_from(offset - self.first).ok()?;
        Some(if index == 0 {
            NodeId::FRONTEND
        } else {
            NodeId::worker(index)
        })
    }
}

/// Subnets mcc picks from when the user gives none: /20 blocks of the
/// private ranges the engine itself uses for its networks, skipping the
/// default bridge's 172.17.0.0/16.
pub fn subnet_candidates() -> impl Iterator<Item = Ipv4Cidr> {
    let b172: Ipv4Cidr = Ipv4Cidr::new(Ipv4Addr::new(172, 16, 0, 0), 12).expect("valid");
    let b192: Ipv4Cidr = Ipv4Cidr::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("valid");
    let docker0: Ipv4Cidr = Ipv4Cidr::new(Ipv4Addr::new(172, 17, 0, 0), 16).expect("valid");
    (0..256)
        .filter_map(move |i| b172.subnet(20, i))
        .chain((0..16).filter_map(move |i| b192.subnet(20, i)))
        .filter(move |c| !c.overlaps(&docker0))
}

/// First candidate subnet that overlaps none of `taken`.
pub fn pick_subnet(taken: &[Ipv4Cidr]) -> Option<Ipv4Cidr> {
    subnet_candidates().find(|c| !taken.iter().any(|t| t.overlaps(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz/artifacts/address/crash-24bb…): a gateway the
    /// user puts among the default node addresses (here .4, node02's) is
    /// handed out by `ip`; `check_unique` must refuse that node.
    #[test]
    fn a_gateway_among_node_addresses_is_refused_for_that_node() {
        let subnet: Ipv4Cidr = "10.9.0.0/24".parse().unwrap();
        let plan =
            AddressPlan::with_choices(subnet, Some(Ipv4Addr::new(10, 9, 0, 4)), &BTreeMap::new())
                .unwrap();
        assert_eq!(plan.ip(NodeId::worker(2)), Some(plan.gateway));
        assert!(plan
            .check_unique(&[NodeId::FRONTEND, NodeId::worker(1)])
            .is_ok());
        let e = plan.check_unique(&[NodeId::worker(2)]).unwrap_err();
        assert!(e.contains("gateway"), "{e}");
    }

    fn plan(s: &str) -> AddressPlan {
        AddressPlan::new(s.parse().unwrap()).unwrap()
    }

    #[test]
    fn addresses_follow_indices() {
        let p = plan("10.10.0.0/24");
        assert_eq!(p.gateway, Ipv4Addr::new(10, 10, 0, 1));
        assert_eq!(p.ip(NodeId::FRONTEND), Some(Ipv4Addr::new(10, 10, 0, 2)));
        assert_eq!(p.ip(NodeId::worker(1)), Some(Ipv4Addr::new(10, 10, 0, 3)));
        assert_eq!(p.ip_range, Some("10.10.0.192/26".parse().unwrap()));
        assert_eq!(p.max_workers(), 189);
        assert_eq!(
            p.ip(NodeId::worker(189)),
            Some(Ipv4Addr::new(10, 10, 0, 191))
        );
        assert_eq!(p.ip(NodeId::worker(190)), None);
        for n in [NodeId::FRONTEND, NodeId::worker(1), NodeId::worker(189)] {
            assert_eq!(p.node_of(p.ip(n).unwrap()), Some(n));
        }
        assert_eq!(p.node_of(p.gateway), None);
    }

    #[test]
    fn small_subnets() {
        let p = plan("10.0.0.0/29");
        assert_eq!(p.ip_range, None);
        // .0 network, .1 gateway, .2 front-end, .3-.6 workers, .7 broadcast
        assert_eq!(p.max_workers(), 4);
        assert!(AddressPlan::new("10.0.0.0/30".parse().unwrap()).is_err());
        assert_eq!(plan("10.0.0.0/28").max_workers(), 9);
    }

    #[test]
    fn user_choices_are_checked() {
        let subnet: Ipv4Cidr = "10.7.0.0/24".parse().unwrap();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let fixed = BTreeMap::from([(NodeId::worker(2), ip("10.7.0.100"))]);
        let p = AddressPlan::with_choices(subnet, Some(ip("10.7.0.254")), &fixed).unwrap_err();
        assert!(p.contains("kept for addresses the engine"), "{p}");
        let p = AddressPlan::with_choices(subnet, Some(ip("10.7.0.150")), &fixed).unwrap();
        assert_eq!(p.gateway, ip("10.7.0.150"));
        assert_eq!(p.ip(NodeId::worker(2)), Some(ip("10.7.0.100")));
        assert_eq!(p.ip(NodeId::worker(3)), Some(ip("10.7.0.5")));
        let nodes: Vec<NodeId> = std::iter::once(NodeId::FRONTEND)
            .chain((1..=3).map(NodeId::worker))
            .collect();
        p.check_unique(&nodes).unwrap();

        // node02 fixed on node05's default address
        let clash = BTreeMap::from([(NodeId::worker(2), ip("10.7.0.7"))]);
        let p = AddressPlan::with_choices(subnet, None, &clash).unwrap();
        let all: Vec<NodeId> = (1..=5).map(NodeId::worker).collect();
        let err = p.check_unique(&all).unwrap_err();
        assert!(err.contains("node02 and node05"), "{err}");

        for (bad, want) in [
            ("10.8.0.5", "outside"),
            ("10.7.0.0", "network or broadcast"),
            ("10.7.0.1", "gateway"),
        ] {
            let f = BTreeMap::from([(NodeId::FRONTEND, ip(bad))]);
            let err = AddressPlan::with_choices(subnet, None, &f).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
        // the default gateway moved: the front-end's default address is free again
        let p = AddressPlan::with_choices(subnet, Some(ip("10.7.0.2")), &BTreeMap::new()).unwrap();
        assert!(p
            .check_unique(&[NodeId::FRONTEND])
            .unwrap_err()
            .contains("gateway"));
    }

    /// In a VPC, containers already there hold some low addresses: the
    /// cluster starts past them, in a run long enough for all its nodes,
    /// and its nodes keep their addresses by index from there.
    #[test]
    fn a_shared_subnet_starts_the_nodes_past_the_addresses_held() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let p = plan("10.5.0.0/24");
        assert_eq!(p.free_run(3, &[]), Some(ip("10.5.0.2")));
        // .2 and .3 are held, and .6: three in a row first fit at .7
        let held = [ip("10.5.0.2"), ip("10.5.0.3"), ip("10.5.0.6")];
        assert_eq!(p.free_run(2, &held), Some(ip("10.5.0.4")));
        assert_eq!(p.free_run(3, &held), Some(ip("10.5.0.7")));
        let moved = p.clone().starting_at(ip("10.5.0.7")).unwrap();
        assert_eq!(moved.ip(NodeId::FRONTEND), Some(ip("10.5.0.7")));
        assert_eq!(moved.ip(NodeId::worker(2)), Some(ip("10.5.0.9")));
        assert_eq!(moved.node_of(ip("10.5.0.8")), Some(NodeId::worker(1)));
        assert_eq!(moved.node_of(ip("10.5.0.4")), None);
        assert_eq!(moved.max_workers(), p.max_workers() - 5);
        // the run stays below the engine's range, and may not be the gateway
        assert_eq!(p.free_run(191, &[]), None);
        assert_eq!(p.free_run(190, &[]), Some(ip("10.5.0.2")));
        assert_eq!(p.free_run(190, &held[..1]), None);
        let small = plan("10.6.0.0/29");
        assert_eq!(small.free_run(5, &[]), Some(ip("10.6.0.2")));
        assert_eq!(small.free_run(5, &[ip("10.6.0.6")]), None);
        for bad in ["10.5.0.1", "10.5.0.192", "10.6.0.2"] {
            assert!(p.clone().starting_at(ip(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn picks_a_free_subnet() {
        let first = pick_subnet(&[]).unwrap();
        assert_eq!(first.to_string(), "172.16.0.0/20");
        let taken = [
            "172.16.0.0/16".parse().unwrap(),
            "172.18.0.0/16".parse().unwrap(),
        ];
        assert_eq!(pick_subnet(&taken).unwrap().to_string(), "172.19.0.0/20");
        assert!(subnet_candidates().all(|c| !c.overlaps(&"172.17.0.0/16".parse().unwrap())));
        let everything: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert_eq!(pick_subnet(&[everything]), None);
    }
}
