//! A cluster's members as one short label value: `frontend node01-node30
//! node32`. Runs of workers are ranges, so a cluster of thousands of
//! nodes made in one go is a few bytes, and the value stays far below
//! what an engine keeps in a label.

use super::names::{NodeId, Role};

/// Most members a label may name: more than any cluster mcc makes (worker
/// names have up to four digits), so that a hand-made label cannot make
/// a reader build millions of nodes.
pub const MAX_MEMBERS: usize = 10_000;

/// The label value of `members` (in any order, duplicates dropped).
pub fn to_label(members: &[NodeId]) -> String {
    let mut sorted = members.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |run: &mut Option<(u32, u32)>, parts: &mut Vec<String>| {
        if let Some((a, b)) = run.take() {
            parts.push(match a == b {
                true => NodeId::worker(a).hostname(),
                false => format!("{}-{}", NodeId::worker(a).hostname(), NodeId::worker(b)),
            });
        }
    };
    for n in sorted {
        match n.role {
            Role::Frontend => parts.push(n.hostname()),
            Role::Worker => match run {
                Some((a, b)) if n.index == b + 1 => run = Some((a, n.index)),
                _ => {
                    flush(&mut run, &mut parts);
                    run = Some((n.index, n.index));
                }
            },
        }
    }
    flush(&mut run, &mut parts);
    parts.join(" ")
}

/// Reads a value written by [`to_label`]; the error says what is wrong.
pub fn from_label(text: &str) -> Result<Vec<NodeId>, String> {
    let node = |s: &str| {
        NodeId::parse_hostname(s).ok_or_else(|| format!("'{s}' in the member list is not a node"))
    };
    let mut out = Vec::new();
    for part in text.split_whitespace() {
        match part.split_once('-') {
            None => out.push(node(part)?),
            Some((a, b)) => {
                let (a, b) = (node(a)?, node(b)?);
                if a.role != Role::Worker || b.role != Role::Worker || b.index < a.index {
                    return Err(format!(
                        "'{part}' in the member list is not a run of workers"
                    ));
                }
                if (b.index - a.index) as usize >= MAX_MEMBERS {
                    return Err(format!("'{part}' names more than {MAX_MEMBERS} members"));
                }
                out.extend((a.index..=b.index).map(NodeId::worker));
            }
        }
        if out.len() > MAX_MEMBERS {
            return Err(format!("the member list names more than {MAX_MEMBERS}"));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(ix: &[u32]) -> Vec<NodeId> {
        std::iter::once(NodeId::FRONTEND)
            .chain(ix.iter().map(|i| NodeId::worker(*i)))
            .collect()
    }

    #[test]
    fn runs_are_ranges_and_read_back() {
        let m = workers(&[1, 2, 3, 5, 7, 8, 100]);
        let label = to_label(&m);
        assert_eq!(label, "frontend node01-node03 node05 node07-node08 node100");
        assert_eq!(from_label(&label).unwrap(), m);
        let big = workers(&(1..=3000).collect::<Vec<_>>());
        assert_eq!(to_label(&big), "frontend node01-node3000");
        assert_eq!(from_label(&to_label(&big)).unwrap(), big);
        assert_eq!(to_label(&[]), "");
        assert_eq!(from_label("").unwrap(), vec![]);
        // order and duplicates do not matter
        let shuffled = vec![NodeId::worker(2), NodeId::FRONTEND, NodeId::worker(1)];
        assert_eq!(to_label(&shuffled), "frontend node01-node02");
    }

    #[test]
    fn garbage_and_huge_runs_are_refused() {
        for bad in [
            "evil",
            "frontend-node02",
            "node05-node02",
            "node01-node99999999",
            "node0",
            "node01-",
        ] {
            assert!(from_label(bad).is_err(), "{bad} was read");
        }
    }
}
