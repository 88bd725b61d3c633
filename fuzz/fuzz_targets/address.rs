//! Address plans from arbitrary subnets, gateways and fixed addresses:
//! every address a plan hands out is in its subnet, and one that is the
//! gateway's or another node's is refused by the plan's own check.
#![no_main]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use mcc_core::model::{AddressPlan, Ipv4Cidr, NodeId};

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let addr = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    let Ok(subnet) = Ipv4Cidr::new(addr, data[4] % 33) else {
        return;
    };
    let gateway = (data[5] & 1 == 1).then(|| subnet.nth(u64::from(data[5] >> 1)).unwrap_or(addr));
    let mut fixed = BTreeMap::new();
    for chunk in data[6..].chunks(5) {
        if chunk.len() < 5 {
            break;
        }
        let node = if chunk[0] == 0 {
            NodeId::FRONTEND
        } else {
            NodeId::worker(u32::from(chunk[0]))
        };
        fixed.insert(node, Ipv4Addr::new(chunk[1], chunk[2], chunk[3], chunk[4]));
    }
    let Ok(plan) = AddressPlan::with_choices(subnet, gateway, &fixed) else {
        return;
    };
    let nodes: Vec<NodeId> = std::iter::once(NodeId::FRONTEND)
        .chain((1..=40).map(NodeId::worker))
        .collect();
    let mut seen = BTreeMap::new();
    for n in &nodes {
        if let Some(ip) = plan.ip(*n) {
            assert!(subnet.contains(ip), "{n} got {ip} outside {subnet}");
            // a node's default address may be a gateway the user chose:
            // the plan must then refuse that node
            if ip == plan.gateway {
                assert!(plan.check_unique(&[*n]).is_err(), "{n} may take the gateway {ip}");
            }
            if let Some(other) = seen.insert(ip, *n) {
                // the plan may give one address twice only if check_unique refuses it
                assert!(plan.check_unique(&[other, *n]).is_err(), "{other} and {n} share {ip}");
            }
        }
    }
});
