//! `GET /metrics` in the OpenMetrics text format, encoded by
//! prometheus-client: the clusters and their nodes, the containers made by
//! `mcc run` (state, CPU, memory, network, block I/O), the API's requests
//! by route and status with their latency, operations. Resource use comes
//! from one engine stats stream per running container, opened at the first
//! scrape that finds it and closed when it stops.
//!
//! Two registries make one exposition. The API's own series (requests and
//! their latency) are typed families registered once and updated by the
//! middleware. What the engine and the store say at the time of a scrape
//! (clusters, nodes, containers, their usage, operations) is read by the
//! handler with async calls, so it is collected into a [`Scrape`] first and
//! encoded by prometheus-client's [`Collector`] from a registry made for
//! that scrape: `Collector::encode` is synchronous and takes no argument,
//! and these values are not ours to count (an engine's CPU counter is
//! restated, not incremented), which is what the `Const*` metrics are for.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use mcc_core::cluster::vpc::VPC_LABEL;
use mcc_core::cluster::ClusterView;
use mcc_core::provider::{ContainerInfo, ContainerState, Engine, StatsSample};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    text, DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Writes a label value escaped as the text format asks: prometheus-client
/// writes label values as it is given them, and a name, an image or a
/// label read from the engine must not close its quote and forge a series.
fn escaped(w: &mut LabelValueEncoder, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '\\' => w.write_str("\\\\")?,
            '"' => w.write_str("\\\"")?,
            '\n' => w.write_str("\\n")?,
            c => w.write_char(c)?,
        }
    }
    Ok(())
}

/// A label value from a cluster, a node, a container or the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Text(String);

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.to_string())
    }
}

impl EncodeLabelValue for Text {
    fn encode(&self, w: &mut LabelValueEncoder) -> fmt::Result {
        escaped(w, &self.0)
    }
}

/// The route a request matched, as the router declares it
/// (`/api/v1/clusters/{name}`), or `unmatched`. A clone shares the
/// router's string: counting a request allocates nothing once its series
/// exists.
#[derive(Clone, Debug)]
struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0
            .as_ref()
            .map(MatchedPath::as_str)
            .unwrap_or("unmatched")
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, w: &mut LabelValueEncoder) -> fmt::Result {
        escaped(w, self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct HttpMethod(Method);

impl EncodeLabelValue for HttpMethod {
    fn encode(&self, w: &mut LabelValueEncoder) -> fmt::Result {
        escaped(w, self.0.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: HttpMethod,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, EncodeLabelSet)]
struct ClusterLabels {
    cluster: Text,
    status: Text,
}

#[derive(Clone, Debug, EncodeLabelSet)]
struct ClusterNodesLabels {
    cluster: Text,
    state: Text,
}

#[derive(Clone, Debug, EncodeLabelSet)]
struct NodeUpLabels {
    cluster: Text,
    node: Text,
    role: Text,
    state: Text,
}

#[derive(Clone, Debug, EncodeLabelSet)]
struct ContainerUpLabels {
    id: Text,
    image: Text,
    vpc: Text,
    state: Text,
}

#[derive(Clone, Debug, EncodeLabelSet)]
struct NodeLabels {
    cluster: Text,
    node: Text,
}

#[derive(Clone, Debug, EncodeLabelSet)]
struct ContainerLabels {
    id: Text,
}

#[derive(Clone, Debug, EncodeLabelSet)]
struct OperationLabels {
    kind: Text,
    state: Text,
}

struct NodeStats {
    sample: Arc<Mutex<Option<StatsSample>>>,
    task: tokio::task::AbortHandle,
}

pub struct Metrics {
    /// The API's own series, registered once.
    api: Registry,
    /// `mcc_http_requests_total`.
    requests: Family<RequestLabels, Counter>,
    /// `mcc_http_request_duration_seconds`.
    durations: Family<RequestLabels, Histogram>,
    /// Node container → its stats stream.
    nodes: Mutex<HashMap<String, NodeStats>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Family<RequestLabels, Histogram> =
            Family::new_with_constructor(|| Histogram::new(BUCKETS));
        let mut api = Registry::default();
        // prometheus-client adds `_total` to a counter's samples and a
        // period to the help
        api.register(
            "mcc_http_requests",
            "API requests by method, route and status",
            requests.clone(),
        );
        api.register(
            "mcc_http_request_duration_seconds",
            "How long API requests took",
            durations.clone(),
        );
        Metrics {
            api,
            requests,
            durations,
            nodes: Mutex::default(),
        }
    }
}

/// The middleware that counts requests by route.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = Route(req.extensions().get::<MatchedPath>().cloned());
    let method = HttpMethod(req.method().clone());
    let start = Instant::now();
    let res = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    let labels = RequestLabels {
        method,
        route,
        status: res.status().as_u16(),
    };
    m.requests.get_or_create(&labels).inc();
    m.durations.get_or_create(&labels).observe(secs);
    res
}

/// What one scrape found, as series under their labels.
#[derive(Debug, Default)]
struct Scrape {
    cluster_info: Vec<(ClusterLabels, i64)>,
    cluster_nodes: Vec<(ClusterNodesLabels, usize)>,
    node_up: Vec<(NodeUpLabels, i64)>,
    container_up: Vec<(ContainerUpLabels, i64)>,
    node_usage: Vec<(NodeLabels, StatsSample)>,
    container_usage: Vec<(ContainerLabels, StatsSample)>,
    operations_running: usize,
    operations: Vec<(OperationLabels, u64)>,
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let gauge = |v: &i64| ConstGauge::new(*v);
        family(
            &mut e,
            "mcc_cluster_info",
            "A cluster and its status.",
            &self.cluster_info,
            gauge,
        )?;
        family(
            &mut e,
            "mcc_cluster_nodes",
            "Nodes of a cluster, and how many run.",
            &self.cluster_nodes,
            |v| ConstGauge::new(*v),
        )?;
        family(
            &mut e,
            "mcc_node_up",
            "Whether a node's container runs.",
            &self.node_up,
            gauge,
        )?;
        family(
            &mut e,
            "mcc_container_up",
            "Whether a container made by `mcc run` runs.",
            &self.container_up,
            gauge,
        )?;
        usage(&mut e, "mcc_node", "node", &self.node_usage)?;
        usage(&mut e, "mcc_container", "container", &self.container_usage)?;
        let running = ConstGauge::new(self.operations_running);
        running.encode(e.encode_descriptor(
            "mcc_operations_running",
            "Operations running now.",
            None,
            running.metric_type(),
        )?)?;
        // a counter's name without `_total`: the encoder adds it
        family(
            &mut e,
            "mcc_operations",
            "Operations ended, by kind and outcome.",
            &self.operations,
            |v| ConstCounter::new(*v),
        )
    }
}

/// One family: its descriptor, then each series under its labels.
fn family<L: EncodeLabelSet, V, M: EncodeMetric + TypedMetric>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(L, V)],
    metric: impl Fn(&V) -> M,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, M::TYPE)?;
    for (labels, v) in series {
        metric(v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

/// One resource-use series: its name after the prefix, its help, and how
/// to read it from a sample.
type UsageSeries = (&'static str, &'static str, fn(&StatsSample) -> u64);

/// The resource-use families of `what` (nodes or `run` containers), each
/// sample under its labels: `{prefix}_cpu_seconds_total`,
/// `_memory_bytes`, `_memory_limit_bytes`,
/// `_network_{receive,transmit}_bytes_total`,
/// `_block_{read,write}_bytes_total`.
fn usage<L: EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    prefix: &str,
    what: &str,
    samples: &[(L, StatsSample)],
) -> fmt::Result {
    let counters: [UsageSeries; 4] = [
        ("network_receive_bytes", "Bytes received", |s| s.rx_bytes),
        ("network_transmit_bytes", "Bytes sent", |s| s.tx_bytes),
        ("block_read_bytes", "Bytes read from block devices", |s| {
            s.blk_read_bytes
        }),
        ("block_write_bytes", "Bytes written to block devices", |s| {
            s.blk_write_bytes
        }),
    ];
    let gauges: [UsageSeries; 2] = [
        ("memory_bytes", "Memory used", |s| s.memory_bytes),
        (
            "memory_limit_bytes",
            "Memory limit (the host's memory if none)",
            |s| s.memory_limit_bytes,
        ),
    ];
    family(
        e,
        &format!("{prefix}_cpu_seconds"),
        &format!("CPU time used, by {what}."),
        samples,
        |s| ConstCounter::new(s.cpu_ns as f64 / 1e9),
    )?;
    for (name, help, f) in gauges {
        family(
            e,
            &format!("{prefix}_{name}"),
            &format!("{help}, by {what}."),
            samples,
            |s| ConstGauge::new(f(s)),
        )?;
    }
    for (name, help, f) in counters {
        family(
            e,
            &format!("{prefix}_{name}"),
            &format!("{help}, by {what}."),
            samples,
            |s| ConstCounter::new(f(s)),
        )?;
    }
    Ok(())
}

impl Metrics {
    /// Opens stats streams for running containers (nodes and `run`
    /// containers) not yet followed, closes those of containers gone or
    /// stopped.
    fn follow(&self, provider: &Arc<dyn Engine>, running: &[&str]) {
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
        provider: &Arc<dyn Engine>,
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
        let scrape = self.scrape(clusters, runs, operations_running, counters);
        self.encode(scrape)
    }

    /// The series of one scrape, with the latest sample of each followed
    /// container.
    fn scrape(
        &self,
        clusters: &[ClusterView],
        runs: &[ContainerInfo],
        operations_running: usize,
        counters: &[(String, u64)],
    ) -> Scrape {
        let mut s = Scrape {
            operations_running,
            ..Scrape::default()
        };
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let sample = |container: &str| {
            let s = nodes.get(container)?;
            s.sample.lock().unwrap_or_else(|p| p.into_inner()).clone()
        };
        for c in clusters {
            let cluster = Text::from(c.name.as_str());
            s.cluster_info.push((
                ClusterLabels {
                    cluster: cluster.clone(),
                    status: c.status.as_str().into(),
                },
                1,
            ));
            for (state, n) in [("all", c.nodes.len()), ("running", c.running)] {
                let labels = ClusterNodesLabels {
                    cluster: cluster.clone(),
                    state: state.into(),
                };
                s.cluster_nodes.push((labels, n));
            }
            for n in &c.nodes {
                let labels = NodeUpLabels {
                    cluster: cluster.clone(),
                    node: n.name.as_str().into(),
                    role: n.role.as_str().into(),
                    state: n.state.as_str().into(),
                };
                s.node_up.push((labels, i64::from(n.state == "running")));
                if let Some(sample) = sample(&n.container) {
                    let labels = NodeLabels {
                        cluster: cluster.clone(),
                        node: n.name.as_str().into(),
                    };
                    s.node_usage.push((labels, sample));
                }
            }
        }
        for r in runs {
            let id = Text::from(short(&r.id));
            let labels = ContainerUpLabels {
                id: id.clone(),
                image: r.image.as_str().into(),
                vpc: r
                    .labels
                    .get(VPC_LABEL)
                    .map(String::as_str)
                    .unwrap_or("")
                    .into(),
                state: r.state.as_str().into(),
            };
            let up = i64::from(r.state == ContainerState::Running);
            s.container_up.push((labels, up));
            if let Some(sample) = sample(&r.id) {
                s.container_usage.push((ContainerLabels { id }, sample));
            }
        }
        drop(nodes);
        for (name, v) in counters {
            if let Some((kind, state)) = name
                .strip_prefix("operations.")
                .and_then(|r| r.split_once('.'))
            {
                let labels = OperationLabels {
                    kind: kind.into(),
                    state: state.into(),
                };
                s.operations.push((labels, *v));
            }
        }
        s
    }

    /// One exposition: the scrape's families, then the API's, then `# EOF`.
    fn encode(&self, scrape: Scrape) -> String {
        let mut per_scrape = Registry::default();
        per_scrape.register_collector(Box::new(scrape));
        let mut o = String::with_capacity(4096);
        let written = text::encode_registry(&mut o, &per_scrape)
            .and_then(|()| text::encode_registry(&mut o, &self.api))
            .and_then(|()| text::encode_eof(&mut o));
        // a String takes every write and our label values only write:
        // an error here is a bug of the encoder, not worth a failed scrape
        if written.is_err() {
            tracing::error!("encoding /metrics failed; the exposition is cut short");
        }
        o
    }
}

/// A container ID as `mcc run` prints it.
fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    fn sample() -> StatsSample {
        StatsSample {
            cpu_ns: 1_500_000_000,
            memory_bytes: 1 << 20,
            memory_limit_bytes: 48 << 20,
            rx_bytes: 10,
            tx_bytes: 20,
            blk_read_bytes: 30,
            blk_write_bytes: 40,
            ..StatsSample::default()
        }
    }

    #[test]
    fn scrape_series_keep_their_names_labels_and_help() {
        let m = Metrics::default();
        let counters = [
            ("operations.create.succeeded".to_string(), 3),
            ("requests.ignored".to_string(), 9),
        ];
        let mut s = m.scrape(&[], &[], 2, &counters);
        s.cluster_info.push((
            ClusterLabels {
                cluster: "c1".into(),
                status: "running".into(),
            },
            1,
        ));
        s.node_usage.push((
            NodeLabels {
                cluster: "c1".into(),
                node: "node01".into(),
            },
            sample(),
        ));
        s.container_usage.push((
            ContainerLabels {
                id: "0123456789ab".into(),
            },
            sample(),
        ));
        let o = m.encode(s);
        for line in [
            "# HELP mcc_cluster_info A cluster and its status.",
            "# TYPE mcc_cluster_info gauge",
            "mcc_cluster_info{cluster=\"c1\",status=\"running\"} 1",
            "# TYPE mcc_node_cpu_seconds counter",
            "# HELP mcc_node_cpu_seconds CPU time used, by node.",
            "mcc_node_cpu_seconds_total{cluster=\"c1\",node=\"node01\"} 1.5",
            "mcc_node_memory_bytes{cluster=\"c1\",node=\"node01\"} 1048576",
            "mcc_node_memory_limit_bytes{cluster=\"c1\",node=\"node01\"} 50331648",
            "mcc_node_network_receive_bytes_total{cluster=\"c1\",node=\"node01\"} 10",
            "mcc_node_network_transmit_bytes_total{cluster=\"c1\",node=\"node01\"} 20",
            "mcc_node_block_read_bytes_total{cluster=\"c1\",node=\"node01\"} 30",
            "mcc_node_block_write_bytes_total{cluster=\"c1\",node=\"node01\"} 40",
            "# HELP mcc_container_memory_limit_bytes Memory limit (the host's memory if none), by container.",
            "mcc_container_memory_limit_bytes{id=\"0123456789ab\"} 50331648",
            "mcc_container_cpu_seconds_total{id=\"0123456789ab\"} 1.5",
            "mcc_operations_running 2",
            "# HELP mcc_operations Operations ended, by kind and outcome.",
            "mcc_operations_total{kind=\"create\",state=\"succeeded\"} 3",
        ] {
            assert!(o.lines().any(|l| l == line), "no line {line:?} in:\n{o}");
        }
        assert!(!o.contains("ignored"), "{o}");
        assert!(o.ends_with("# EOF\n"), "{o}");
        assert_eq!(o.matches("# EOF").count(), 1, "{o}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        let mut s = Scrape::default();
        s.cluster_info.push((
            ClusterLabels {
                cluster: "a\"b\\c\nd".into(),
                status: "running".into(),
            },
            1,
        ));
        let o = m.encode(s);
        assert!(
            o.contains("mcc_cluster_info{cluster=\"a\\\"b\\\\c\\nd\",status=\"running\"} 1\n"),
            "{o}"
        );
    }

    #[tokio::test]
    async fn requests_are_counted_by_method_route_and_status() {
        let m = Arc::new(Metrics::default());
        let app = axum::Router::new()
            .route(
                "/api/v1/clusters/{name}",
                get(|| async { axum::http::StatusCode::ACCEPTED }),
            )
            .layer(axum::middleware::from_fn_with_state(m.clone(), track));
        for _ in 0..2 {
            let req = Request::get("/api/v1/clusters/c1")
                .body(axum::body::Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 202);
        }
        let o = m.encode(Scrape::default());
        let labels = "method=\"GET\",route=\"/api/v1/clusters/{name}\",status=\"202\"";
        for line in [
            "# HELP mcc_http_requests API requests by method, route and status.".to_string(),
            "# TYPE mcc_http_requests counter".to_string(),
            format!("mcc_http_requests_total{{{labels}}} 2"),
            "# TYPE mcc_http_request_duration_seconds histogram".to_string(),
            format!("mcc_http_request_duration_seconds_count{{{labels}}} 2"),
            // prometheus-client writes a bucket's `le` before the family's labels
            format!("mcc_http_request_duration_seconds_bucket{{le=\"+Inf\",{labels}}} 2"),
            format!("mcc_http_request_duration_seconds_bucket{{le=\"5.0\",{labels}}} 2"),
        ] {
            assert!(o.lines().any(|l| l == line), "no line {line:?} in:\n{o}");
        }
    }
}
