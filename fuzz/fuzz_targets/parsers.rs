//! The small parsers: cluster and node names, CIDRs, durations. What
//! parses must print back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcc_core::model::duration::parse_duration;
use mcc_core::model::{ClusterName, Ipv4Cidr, NodeId};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = s.parse::<ClusterName>() {
        assert_eq!(name.as_str(), s);
        let again: ClusterName = name.to_string().parse().expect("a name re-parses");
        assert_eq!(again.as_str(), s);
        // every object name made from it is a valid engine name
        for n in [name.network(), name.meta_container(), name.container(NodeId::worker(999))] {
            assert!(n.len() <= 128 && !n.contains('/'), "{n}");
        }
    }
    if let Some(node) = NodeId::parse_hostname(s) {
        assert_eq!(NodeId::parse_hostname(&node.hostname()), Some(node));
    }
    if let Ok(cidr) = s.parse::<Ipv4Cidr>() {
        let again: Ipv4Cidr = cidr.to_string().parse().expect("a CIDR re-parses");
        assert_eq!(again, cidr);
        assert!(cidr.contains(cidr.network()));
    }
    if let Ok(d) = parse_duration(s) {
        assert!(d.as_secs() > 0 && d.as_secs() <= 7 * 24 * 3600);
    }
});
