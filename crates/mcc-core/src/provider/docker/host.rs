//! Facts about the engine's host that change how nodes are made (its
//! cgroup version), and this machine's routes.

#[allow(unused_imports)]
use super::*;

/// Facts about the engine's host that change how nodes are made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct HostFacts {
    /// The host uses the unified cgroup hierarchy (cgroup v2).
    pub(super) cgroup_v2: bool,
}

/// IPv4 routes of this machine, from `/proc/net/route`; the engine's own
/// bridges are left out (its network list covers them), and so is the
/// default route (it covers everything).
pub(super) fn routes_of(table: &str) -> Vec<Ipv4Cidr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, mask) = (f.first()?, f.get(1)?, f.get(7)?);
            if iface.starts_with("docker") || iface.starts_with("br-") {
                return None;
            }
            let dest = u32::from_str_radix(dest, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(mask, 16).ok()?.swap_bytes();
            if mask == 0 {
                return None;
            }
            Ipv4Cidr::new(dest.into(), mask.count_ones() as u8).ok()
        })
        .collect()
}

/// This machine's network interfaces, by name; `None` without
/// `/sys/class/net`.
pub(super) fn interfaces() -> Option<Vec<String>> {
    let dir = std::fs::read_dir("/sys/class/net").ok()?;
    Some(
        dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
    )
}

impl DockerProvider {
    pub(super) async fn facts(&self) -> Result<HostFacts> {
        self.facts
            .get_or_try_init(|| async {
                let info = self
                    .docker
                    .info()
                    .await
                    .map_err(map_err("reading engine info"))?;
                Ok(HostFacts {
                    cgroup_v2: info.cgroup_version == Some(SystemInfoCgroupVersionEnum::_2),
                })
            })
            .await
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_skip_default_and_engine_bridges() {
        let table =
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = routes_of(table);
        assert_eq!(routes, vec!["10.0.0.0/16".parse::<Ipv4Cidr>().unwrap()]);
    }
}
