//! Where the nodes of a cluster that spans hosts run (`--hosts`); the
//! folder they share is `export`'s. Pure: which hosts exist is the
//! provider's to say.
//!
//! The front-end runs on the first host; workers go round-robin over the
//! hosts starting after it (1+3 over h1,h2,h3: frontend h1, node01 h2,
//! node02 h3, node03 h1), so a cluster's work spreads from its first
//! worker on.

use super::names::{NodeId, Role};

/// A host's or zone's name: 1 to 63 of `a-z`, `0-9` and `-`, starting with
/// a letter or digit (a DNS label, as swarm node names are).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} '{name}': use 1 to 63 of a-z, 0-9 and '-', not starting with '-', e.g. h1 \
             or zone-a"
        ))
    }
}

/// `--hosts h1,h2,…` checked: names of hosts (`mcc host list`), each once.
pub fn check_hosts(hosts: &[String]) -> Result<(), String> {
    for (i, h) in hosts.iter().enumerate() {
        check_name("--hosts: host", h)?;
        if hosts[..i].contains(h) {
            return Err(format!(
                "--hosts: host '{h}' is named twice; name each host once (workers go \
                 round-robin over them)"
            ));
        }
    }
    Ok(())
}

/// `--spread zone`: `hosts` (each with its zone) in the order that puts
/// consecutive nodes in different zones: one host of each zone in turn,
/// zones in the order their first host comes, hosts of a zone in their
/// order. A host without a zone is refused, naming it.
pub fn spread_by_zone(hosts: &[(String, Option<String>)]) -> Result<Vec<String>, String> {
    let mut zones: Vec<(String, Vec<String>)> = Vec::new();
    for (h, z) in hosts {
        let Some(z) = z else {
            return Err(format!(
                "--spread zone: host '{h}' has no zone; give it one (`mcc host remove {h}`, \
                 then `mcc host add {h} --engine URL --zone Z`) or leave it out of --hosts"
            ));
        };
        match zones.iter_mut().find(|(name, _)| name == z) {
            Some((_, members)) => members.push(h.clone()),
            None => zones.push((z.clone(), vec![h.clone()])),
        }
    }
    if zones.is_empty() {
        return Err(
            "--spread zone: no host is listed; add them with `mcc host add NAME --engine URL \
             --zone Z`"
                .into(),
        );
    }
    let longest = zones.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
    Ok((0..longest)
        .flat_map(|i| zones.iter().filter_map(move |(_, m)| m.get(i).cloned()))
        .collect())
}

/// The host `node` runs on among `hosts`; `None` when the cluster is on
/// one engine (no hosts).
pub fn host_of(hosts: &[String], node: NodeId) -> Option<&str> {
    if hosts.is_empty() {
        return None;
    }
    let i = match node.role {
        Role::Frontend => 0,
        Role::Worker => node.index as usize % hosts.len(),
    };
    Some(hosts[i].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_front_end_goes_first_and_workers_round_robin_after_it() {
        let h = hosts(&["h1", "h2", "h3"]);
        let placed: Vec<&str> = std::iter::once(NodeId::FRONTEND)
            .chain((1..=5).map(NodeId::worker))
            .map(|n| host_of(&h, n).unwrap())
            .collect();
        assert_eq!(placed, ["h1", "h2", "h3", "h1", "h2", "h3"]);
        assert_eq!(host_of(&hosts(&["only"]), NodeId::worker(7)), Some("only"));
        assert_eq!(host_of(&[], NodeId::worker(1)), None);
    }

    #[test]
    fn a_spread_over_zones_alternates_them() {
        let h = |n: &str, z: &str| (n.to_string(), Some(z.to_string()));
        let order =
            spread_by_zone(&[h("h1", "a"), h("h2", "a"), h("h3", "b"), h("h4", "c")]).unwrap();
        assert_eq!(order, ["h1", "h3", "h4", "h2"]);
        let e = spread_by_zone(&[h("h1", "a"), ("h2".into(), None)]).unwrap_err();
        assert!(e.contains("'h2' has no zone"), "{e}");
        assert!(spread_by_zone(&[]).is_err());
    }

    #[test]
    fn hosts_are_names_each_given_once() {
        check_hosts(&hosts(&["h1", "zone-a-2"])).unwrap();
        let e = check_hosts(&hosts(&["h1", "h1"])).unwrap_err();
        assert!(e.contains("'h1' is named twice"), "{e}");
        for bad in ["H1", "-h", "", "a b", "h1;rm"] {
            let e = check_hosts(&hosts(&[bad])).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }
}
