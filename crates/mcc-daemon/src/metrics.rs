//! `GET /metrics` in Prometheus' text format: the clusters and their
//! nodes, the containers made by `mcc run` (state, CPU, memory, network,
//! block I/O), the API's requests by route and status with their latency,
//! operations. Resource use comes from one engine stats stream per
//! running container, opened at the first scrape that finds it and
//! closed when it stops.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use mcc_core::cluster::vpc::VPC_LABEL;
use mcc_core::cluster::ClusterView;
use mcc_core::provider::{ContainerInfo, ContainerState, Provider, StatsSample};

/// One resource-use series: name, Prometheus type, help, and how to read
/// it from a sample.
type UsageSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&StatsSample) -> f64,
);

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

struct NodeStats {
    sample: Arc<Mutex<Option<StatsSample>>>,
    task: tokio::task::AbortHandle,
}

/// One route's requests: (method, status) → latencies.
type RouteStats = HashMap<(axum::http::Method, u16), Histogram>;

#[derive(Default)]
pub struct Metrics {
    /// route → (method, status) → latencies; keyed so that counting a
    /// request allocates nothing once its route was seen.
    requests: Mutex<HashMap<String, RouteStats>>,
    /// Node container → its stats stream.
    nodes: Mutex<HashMap<String, NodeStats>>,
}

/// The middleware that counts requests by route.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let start = Instant::now();
    let res = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    let route = route
        .as_ref()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let mut map = m.requests.lock().unwrap_or_else(|p| p.into_inner());
    if !map.contains_key(route) {
        map.insert(route.to_string(), HashMap::new());
    }
    let h = map
        .get_mut(route)
        .expect("inserted above")
        .entry((method, res.status().as_u16()))
        .or_default();
    h.count += 1;
    h.sum += secs;
    if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
        h.counts[i] += 1;
    }
    res
}

/// A label value, escaped as the text format asks.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Opens stats streams for running containers (nodes and `run`
    /// containers) not yet followed, closes those of containers gone or
    /// stopped.
    fn follow(&self, provider: &Arc<dyn Provider>, running: &[&str]) {
        let running: HashMap<&str, ()> = running.iter().map(|c| (*c, ())).collect();
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes.retain(|c, s| {
            let keep = running.contains_key(c.as_str()) && !s.task.is_finished();
            if !keep {
                s.task.abort();
            }
            keep
        });
        for c in running.keys() {
            if nodes.contains_key(*c) {
                continue;
            }
            let sample = Arc::new(Mutex::new(None));
            let slot = sample.clone();
            let mut stream = provider.stats(c);
            let task = tokio::spawn(async move {
                while let Some(Ok(s)) = stream.next().await {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
                }
            })
            .abort_handle();
            nodes.insert(c.to_string(), NodeStats { sample, task });
        }
    }

    pub fn render(
        &self,
        provider: &Arc<dyn Provider>,
        clusters: &[ClusterView],
        runs: &[ContainerInfo],
        operations_running: usize,
        counters: &[(String, u64)],
    ) -> String {
        let running: Vec<&str> = clusters
            .iter()
            .flat_map(|c| c.nodes.iter())
            .filter(|n| n.state == "running")
            .map(|n| n.container.as_str())
            .chain(
                runs.iter()
                    .filter(|r| r.state == ContainerState::Running)
                    .map(|r| r.id.as_str()),
            )
            .collect();
        self.follow(provider, &running);
        let mut o = String::with_capacity(4096);
        o.push_str(
            "# HELP mcc_cluster_info A cluster and its status.\n# TYPE mcc_cluster_info gauge\n",
        );
        for c in clusters {
            let _ = writeln!(
                o,
                "mcc_cluster_info{{cluster=\"{}\",status=\"{}\"}} 1",
                esc(&c.name),
                c.status.as_str()
            );
        }
        o.push_str("# HELP mcc_cluster_nodes Nodes of a cluster, and how many run.\n# TYPE mcc_cluster_nodes gauge\n");
        for c in clusters {
            let _ = writeln!(
                o,
                "mcc_cluster_nodes{{cluster=\"{}\",state=\"all\"}} {}\nmcc_cluster_nodes{{cluster=\"{}\",state=\"running\"}} {}",
                esc(&c.name),
                c.nodes.len(),
                esc(&c.name),
                c.running
            );
        }
        o.push_str(
            "# HELP mcc_node_up Whether a node's container runs.\n# TYPE mcc_node_up gauge\n",
        );
        for c in clusters {
            for n in &c.nodes {
                let _ = writeln!(
                    o,
                    "mcc_node_up{{cluster=\"{}\",node=\"{}\",role=\"{}\",state=\"{}\"}} {}",
                    esc(&c.name),
                    esc(&n.name),
                    esc(&n.role),
                    esc(&n.state),
                    u8::from(n.state == "running")
                );
            }
        }
        o.push_str("# HELP mcc_container_up Whether a container made by `mcc run` runs.\n# TYPE mcc_container_up gauge\n");
        for r in runs {
            let _ = writeln!(
                o,
                "mcc_container_up{{id=\"{}\",image=\"{}\",vpc=\"{}\",state=\"{}\"}} {}",
                short(&r.id),
                esc(&r.image),
                esc(r.labels.get(VPC_LABEL).map(String::as_str).unwrap_or("")),
                r.state.as_str(),
                u8::from(r.state == ContainerState::Running)
            );
        }
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let sample = |container: &str| {
            let s = nodes.get(container)?;
            s.sample.lock().unwrap_or_else(|p| p.into_inner()).clone()
        };
        let node_samples: Vec<(String, StatsSample)> = clusters
            .iter()
            .flat_map(|c| c.nodes.iter().map(move |n| (c, n)))
            .filter_map(|(c, n)| {
                let s = sample(&n.container)?;
                Some((
                    format!("cluster=\"{}\",node=\"{}\"", esc(&c.name), esc(&n.name)),
                    s,
                ))
            })
            .collect();
        let run_samples: Vec<(String, StatsSample)> = runs
            .iter()
            .filter_map(|r| Some((format!("id=\"{}\"", short(&r.id)), sample(&r.id)?)))
            .collect();
        drop(nodes);
        write_usage(&mut o, "mcc_node", "node", &node_samples);
        write_usage(&mut o, "mcc_container", "container", &run_samples);
        o.push_str("# HELP mcc_operations_running Operations running now.\n# TYPE mcc_operations_running gauge\n");
        let _ = writeln!(o, "mcc_operations_running {operations_running}");
        o.push_str("# HELP mcc_operations_total Operations ended, by kind and outcome.\n# TYPE mcc_operations_total counter\n");
        for (name, v) in counters {
            if let Some((kind, state)) = name
                .strip_prefix("operations.")
                .and_then(|r| r.split_once('.'))
            {
                let _ = writeln!(
                    o,
                    "mcc_operations_total{{kind=\"{}\",state=\"{}\"}} {v}",
                    esc(kind),
                    esc(state)
                );
            }
        }
        let by_route = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let requests: HashMap<(String, String, u16), &Histogram> = by_route
            .iter()
            .flat_map(|(route, m)| {
                m.iter().map(move |((method, status), h)| {
                    ((method.to_string(), route.clone(), *status), h)
                })
            })
            .collect();
        let mut keys: Vec<&(String, String, u16)> = requests.keys().collect();
        keys.sort();
        o.push_str("# HELP mcc_http_requests_total API requests by method, route and status.\n# TYPE mcc_http_requests_total counter\n");
        for k in &keys {
            let _ = writeln!(
                o,
                "mcc_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}",
                k.0,
                esc(&k.1),
                k.2,
                requests[*k].count
            );
        }
        o.push_str("# HELP mcc_http_request_duration_seconds How long API requests took.\n# TYPE mcc_http_request_duration_seconds histogram\n");
        for k in &keys {
            let h = requests[*k];
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{}\"",
                k.0,
                esc(&k.1),
                k.2
            );
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    o,
                    "mcc_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                o,
                "mcc_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 mcc_http_request_duration_seconds_sum{{{labels}}} {}\n\
                 mcc_http_request_duration_seconds_count{{{labels}}} {}",
                h.count, h.sum, h.count
            );
        }
        o
    }
}

/// A container ID as `mcc run` prints it.
fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// The resource-use series of `what` (nodes or `run` containers), each
/// sample under its labels.
fn write_usage(o: &mut String, prefix: &str, what: &str, samples: &[(String, StatsSample)]) {
    let series: [UsageSeries; 7] = [
        ("cpu_seconds_total", "counter", "CPU time used", |s| {
            s.cpu_ns as f64 / 1e9
        }),
        ("memory_bytes", "gauge", "Memory used", |s| {
            s.memory_bytes as f64
        }),
        (
            "memory_limit_bytes",
            "gauge",
            "Memory limit (the host's memory if none)",
            |s| s.memory_limit_bytes as f64,
        ),
        (
            "network_receive_bytes_total",
            "counter",
            "Bytes received",
            |s| s.rx_bytes as f64,
        ),
        (
            "network_transmit_bytes_total",
            "counter",
            "Bytes sent",
            |s| s.tx_bytes as f64,
        ),
        (
            "block_read_bytes_total",
            "counter",
            "Bytes read from block devices",
            |s| s.blk_read_bytes as f64,
        ),
        (
            "block_write_bytes_total",
            "counter",
            "Bytes written to block devices",
            |s| s.blk_write_bytes as f64,
        ),
    ];
    for (name, kind, help, f) in series {
        let _ = writeln!(
            o,
            "# HELP {prefix}_{name} {help}, by {what}.\n# TYPE {prefix}_{name} {kind}"
        );
        for (labels, s) in samples {
            let _ = writeln!(o, "{prefix}_{name}{{{labels}}} {}", f(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
