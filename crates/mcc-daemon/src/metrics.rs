//! `GET /metrics` in Prometheus' text format: the clusters and their
//! nodes (state, CPU, memory, network), the API's requests by route and
//! status with their latency, operations. A node's resource use comes
//! from one engine stats stream per running node, opened at the first
//! scrape that finds the node and closed when it stops.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use mcc_core::cluster::ClusterView;
use mcc_core::provider::{Provider, StatsSample};

/// One per-node series: name, Prometheus type, help, and how to read it from a sample.
type NodeSeries = (
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
    /// Opens stats streams for running nodes not yet followed, closes
    /// those of nodes gone or stopped.
    fn follow_nodes(&self, provider: &Arc<dyn Provider>, clusters: &[ClusterView]) {
        let running: HashMap<&str, ()> = clusters
            .iter()
            .flat_map(|c| c.nodes.iter())
            .filter(|n| n.state == "running")
            .map(|n| (n.container.as_str(), ()))
            .collect();
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
        operations_running: usize,
        counters: &[(String, u64)],
    ) -> String {
        self.follow_nodes(provider, clusters);
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
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let samples: Vec<(String, String, StatsSample)> = clusters
            .iter()
            .flat_map(|c| c.nodes.iter().map(move |n| (c, n)))
            .filter_map(|(c, n)| {
                let s = nodes.get(&n.container)?;
                let s = s.sample.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
                Some((esc(&c.name), esc(&n.name), s))
            })
            .collect();
        drop(nodes);
        let series: [NodeSeries; 5] = [
            (
                "mcc_node_cpu_seconds_total",
                "counter",
                "CPU time the node used.",
                |s| s.cpu_ns as f64 / 1e9,
            ),
            (
                "mcc_node_memory_bytes",
                "gauge",
                "Memory the node uses.",
                |s| s.memory_bytes as f64,
            ),
            (
                "mcc_node_memory_limit_bytes",
                "gauge",
                "The node's memory limit (the host's memory if none).",
                |s| s.memory_limit_bytes as f64,
            ),
            (
                "mcc_node_network_receive_bytes_total",
                "counter",
                "Bytes the node received.",
                |s| s.rx_bytes as f64,
            ),
            (
                "mcc_node_network_transmit_bytes_total",
                "counter",
                "Bytes the node sent.",
                |s| s.tx_bytes as f64,
            ),
        ];
        for (name, kind, help, f) in series {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (c, n, s) in &samples {
                let _ = writeln!(o, "{name}{{cluster=\"{c}\",node=\"{n}\"}} {}", f(s));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
