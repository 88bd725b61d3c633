//! What to do to make the replicas that run match the services defined:
//! pure, so that every case is tested without an engine.
//!
//! Each replica of a service has an index (1..=replicas). An index with no
//! copy on a healthy worker is started on the healthy worker with the
//! fewest replicas of the service (then the fewest in all, then by name);
//! a copy that stopped is restarted where it is; extra copies (a worker
//! that came back with stale ones, a scale-down, a deleted service) are
//! removed. Running replicas are never moved to balance: a worker that
//! comes back gets replicas only as new starts need.

use std::collections::BTreeMap;

use mcc_api::ServiceDef;

/// A replica as a worker's engine shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub service: String,
    pub index: u32,
    pub id: String,
    pub running: bool,
}

/// A worker, and what its engine runs (empty when it does not answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerState {
    pub name: String,
    /// Its container runs and its engine answers.
    pub healthy: bool,
    pub replicas: Vec<Replica>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Start {
        service: String,
        index: u32,
        worker: String,
    },
    /// Start again a copy that stopped, where it is.
    Restart {
        service: String,
        index: u32,
        worker: String,
        id: String,
    },
    Remove {
        service: String,
        index: u32,
        worker: String,
        id: String,
    },
}

pub fn plan(defs: &[ServiceDef], workers: &[WorkerState]) -> Vec<Action> {
    let healthy: Vec<&WorkerState> = workers.iter().filter(|w| w.healthy).collect();
    let mut actions = Vec::new();
    // replicas each healthy worker keeps, in all and per service
    let mut load: BTreeMap<&str, u32> = healthy.iter().map(|w| (w.name.as_str(), 0)).collect();
    let mut per_service: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    let remove = |r: &Replica, w: &WorkerState| Action::Remove {
        service: r.service.clone(),
        index: r.index,
        worker: w.name.clone(),
        id: r.id.clone(),
    };

    // what is kept, and what goes, of what exists
    let mut missing: Vec<(&ServiceDef, u32)> = Vec::new();
    for w in &healthy {
        for r in &w.replicas {
            if !defs.iter().any(|d| d.service == r.service) {
                actions.push(remove(r, w));
            }
        }
    }
    for def in defs {
        for w in &healthy {
            for r in w.replicas.iter().filter(|r| r.service == def.service) {
                if r.index == 0 || r.index > def.replicas {
                    actions.push(remove(r, w));
                }
            }
        }
        for index in 1..=def.replicas {
            let copies: Vec<(&WorkerState, &Replica)> = healthy
                .iter()
                .flat_map(|w| w.replicas.iter().map(move |r| (*w, r)))
                .filter(|(_, r)| r.service == def.service && r.index == index)
                .collect();
            // keep a running copy if there is one, else the first
            let Some(&(kw, kr)) = copies
                .iter()
                .find(|(_, r)| r.running)
                .or_else(|| copies.first())
            else {
                missing.push((def, index));
                continue;
            };
            *load.entry(kw.name.as_str()).or_default() += 1;
            *per_service
                .entry((def.service.as_str(), kw.name.as_str()))
                .or_default() += 1;
            if !kr.running {
                actions.push(Action::Restart {
                    service: def.service.clone(),
                    index,
                    worker: kw.name.clone(),
                    id: kr.id.clone(),
                });
            }
            for (w, r) in &copies {
                if r.id != kr.id {
                    actions.push(remove(r, w));
                }
            }
        }
    }
    // new copies, fewest-first
    for (def, index) in missing {
        let Some(worker) = healthy.iter().map(|w| w.name.as_str()).min_by_key(|w| {
            (
                per_service
                    .get(&(def.service.as_str(), *w))
                    .copied()
                    .unwrap_or(0),
                load.get(w).copied().unwrap_or(0),
                *w,
            )
        }) else {
            break; // no healthy worker: nothing can start
        };
        *load.entry(worker).or_default() += 1;
        *per_service
            .entry((def.service.as_str(), worker))
            .or_default() += 1;
        actions.push(Action::Start {
            service: def.service.clone(),
            index,
            worker: worker.to_string(),
        });
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, replicas: u32) -> ServiceDef {
        ServiceDef {
            service: name.into(),
            image: "img".into(),
            replicas,
            last_updated: 0,
            env: vec![],
            ports: vec![],
            cmd: vec![],
        }
    }

    fn worker(name: &str, healthy: bool, replicas: &[(&str, u32, bool)]) -> WorkerState {
        WorkerState {
            name: name.into(),
            healthy,
            replicas: replicas
                .iter()
                .map(|(s, i, running)| Replica {
                    service: s.to_string(),
                    index: *i,
                    id: format!("{name}-{s}-{i}"),
                    running: *running,
                })
                .collect(),
        }
    }

    fn starts(actions: &[Action]) -> Vec<(String, u32, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Start {
                    service,
                    index,
                    worker,
                } => Some((service.clone(), *index, worker.clone())),
                _ => None,
            })
            .collect()
    }

    /// Applies the actions, as the engines would.
    fn apply(workers: &mut [WorkerState], actions: &[Action]) {
        for a in actions {
            match a {
                Action::Start {
                    service,
                    index,
                    worker,
                } => {
                    let w = workers.iter_mut().find(|w| &w.name == worker).unwrap();
                    w.replicas.push(Replica {
                        service: service.clone(),
                        index: *index,
                        id: format!("{worker}-{service}-{index}-new"),
                        running: true,
                    });
                }
                Action::Restart { id, .. } => {
                    for w in workers.iter_mut() {
                        for r in &mut w.replicas {
                            if &r.id == id {
                                r.running = true;
                            }
                        }
                    }
                }
                Action::Remove { id, .. } => {
                    for w in workers.iter_mut() {
                        w.replicas.retain(|r| &r.id != id);
                    }
                }
            }
        }
    }

    #[test]
    fn replicas_spread_fewest_first() {
        let ws = vec![
            worker("node01", true, &[]),
            worker("node02", true, &[]),
            worker("node03", true, &[]),
            worker("node04", true, &[]),
        ];
        let a = plan(&[def("web", 3)], &ws);
        let s = starts(&a);
        assert_eq!(s.len(), 3);
        let mut on: Vec<&str> = s.iter().map(|(_, _, w)| w.as_str()).collect();
        on.sort();
        on.dedup();
        assert_eq!(on.len(), 3, "three workers, one each: {s:?}");
        // a second service goes first to the worker left empty
        let mut ws = ws;
        apply(&mut ws, &a);
        let b = starts(&plan(&[def("web", 3), def("db", 1)], &ws));
        assert_eq!(b, vec![("db".into(), 1, "node04".into())]);
    }

    #[test]
    fn a_dead_workers_replicas_start_elsewhere_and_nothing_moves_back() {
        let mut ws = vec![
            worker("node01", true, &[("web", 1, true)]),
            worker("node02", false, &[]),
            worker("node03", true, &[("web", 3, true)]),
        ];
        // node02 held web.2: it starts on a healthy worker
        let a = plan(&[def("web", 3)], &ws);
        assert_eq!(starts(&a).len(), 1);
        assert_eq!(starts(&a)[0].1, 2);
        assert_ne!(starts(&a)[0].2, "node02");
        apply(&mut ws, &a);
        // node02 comes back with its stale (stopped) copy: removed, and
        // nothing else moves
        ws[1] = worker("node02", true, &[("web", 2, false)]);
        let b = plan(&[def("web", 3)], &ws);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(matches!(&b[0], Action::Remove { worker, .. } if worker == "node02"));
        apply(&mut ws, &b);
        assert!(plan(&[def("web", 3)], &ws).is_empty(), "converged");
    }

    #[test]
    fn duplicates_extras_and_orphans_go_stopped_copies_restart() {
        let ws = vec![
            worker("node01", true, &[("web", 1, true), ("old", 1, true)]),
            worker("node02", true, &[("web", 1, true), ("web", 4, true)]),
            worker("node03", true, &[("web", 2, false)]),
        ];
        let a = plan(&[def("web", 2)], &ws);
        let removed: Vec<&str> = a
            .iter()
            .filter_map(|x| match x {
                Action::Remove { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert!(removed.contains(&"node01-old-1"), "orphan: {a:?}");
        assert!(removed.contains(&"node02-web-4"), "scaled away: {a:?}");
        assert!(removed.contains(&"node02-web-1"), "duplicate: {a:?}");
        assert_eq!(removed.len(), 3);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::Restart { id, .. } if id == "node03-web-2")));
        assert!(starts(&a).is_empty());
    }

    #[test]
    fn many_services_converge_after_two_workers_die() {
        let defs: Vec<ServiceDef> = (0..20).map(|i| def(&format!("s{i}"), 3)).collect();
        let mut ws: Vec<WorkerState> = (1..=4)
            .map(|i| worker(&format!("node{i:02}"), true, &[]))
            .collect();
        let a = plan(&defs, &ws);
        apply(&mut ws, &a);
        assert!(plan(&defs, &ws).is_empty());
        for w in &ws {
            assert_eq!(w.replicas.len(), 15, "{}: even spread", w.name);
        }
        ws[0].healthy = false;
        ws[0].replicas.clear();
        ws[2].healthy = false;
        ws[2].replicas.clear();
        let b = plan(&defs, &ws);
        assert_eq!(starts(&b).len(), 30);
        apply(&mut ws, &b);
        assert!(plan(&defs, &ws).is_empty());
        let total: usize = ws.iter().map(|w| w.replicas.len()).sum();
        assert_eq!(total, 60, "every replica once");
        for d in &defs {
            for i in 1..=3 {
                let n = ws
                    .iter()
                    .flat_map(|w| &w.replicas)
                    .filter(|r| r.service == d.service && r.index == i)
                    .count();
                assert_eq!(n, 1, "{} #{i}", d.service);
            }
        }
    }

    #[test]
    fn no_healthy_worker_no_action() {
        let ws = vec![worker("node01", false, &[("web", 1, true)])];
        assert!(plan(&[def("web", 2)], &ws).is_empty());
    }
}
