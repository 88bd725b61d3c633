//! One function per command: call the library, print the result.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::CommandFactory;
use mcc_core::cluster::{
    ClusterView, Clusters, CreateOptions, DeleteReport, GcAction, OutputLine, Removal, Reporter,
    Silent, Target,
};
use mcc_core::model::flags::CreateFlags;
use mcc_core::model::{ClusterName, NodeId, SpecInput};
use mcc_core::provider::DockerProvider;
use mcc_core::{Error, Result};
use tokio_util::sync::CancellationToken;

use crate::cli::{Command, CreateArgs, Output};
use crate::out::{self, count, say, say_raw};
use crate::progress::Progress;
use crate::table;

/// Runs a command and returns the process exit code.
pub async fn run(command: Command) -> u8 {
    match dispatch(command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcc: error: {e}");
            e.exit_code() as u8
        }
    }
}

async fn connect(reporter: Arc<dyn Reporter>) -> Result<Clusters> {
    let provider = DockerProvider::connect().await?;
    Ok(Clusters::new(Arc::new(provider), reporter))
}

fn cluster_name(s: &str) -> Result<ClusterName> {
    s.parse().map_err(Error::Invalid)
}

fn node_name(s: &str) -> Result<NodeId> {
    NodeId::parse_hostname(s).ok_or_else(|| {
        Error::Invalid(format!(
            "'{s}' is not a node name; nodes are frontend, node01, node02, …"
        ))
    })
}

fn json<T: serde::Serialize>(value: &T) {
    say!(
        "{}",
        serde_json::to_string_pretty(value).expect("serializable")
    );
}

/// What a delete or gc removed, counted.
fn removed(r: &DeleteReport) -> String {
    format!(
        "{}, {}, {}",
        count(r.containers.len(), "container"),
        count(r.networks.len(), "network"),
        count(r.volumes.len(), "volume")
    )
}

/// A reporter that shows only notes (warnings), for commands whose
/// output is their result.
struct Notes;

impl Reporter for Notes {
    fn begin(&self, _: &str, _: usize) {}
    fn advance(&self, _: &str) {}
    fn end(&self, _: bool) {}
    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}

/// A token cancelled by the first Ctrl-C; a second one quits at once.
/// The message goes through the progress display, so that a spinner
/// does not draw over it or leave a frame behind.
fn interrupt_token(progress: Arc<Progress>) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            progress.note(
                "mcc: interrupted: cleaning up (Ctrl-C again quits at once; `mcc gc` removes \
                 what is left)",
            );
            t.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                progress.clear();
                std::process::exit(130);
            }
        }
    });
    token
}

async fn dispatch(command: Command) -> Result<u8> {
    match command {
        Command::Create(args) => create(*args).await,
        Command::List { output } => {
            let clusters = connect(Arc::new(Notes)).await?;
            let list = clusters.list().await?;
            match output {
                Output::Json => json(&list),
                Output::Text if list.is_empty() => {
                    eprintln!("no clusters; create one with `mcc create --image IMAGE --nodes N`")
                }
                Output::Text => say_raw!("{}", list_table(&list)),
            }
            Ok(0)
        }
        Command::Inspect { cluster, output } => {
            let name = cluster_name(&cluster)?;
            let view = connect(Arc::new(Silent)).await?.inspect(&name).await?;
            match output {
                Output::Json => json(&view),
                Output::Text => print_view(&view),
            }
            Ok(0)
        }
        Command::Addnode {
            cluster,
            count,
            timeout,
            output,
        } => {
            let name = cluster_name(&cluster)?;
            let progress = Arc::new(Progress::new());
            let clusters = connect(progress.clone()).await?;
            let added = clusters
                .add_nodes(&name, count, timeout, &interrupt_token(progress))
                .await?;
            match output {
                Output::Json => json(&added),
                Output::Text => {
                    let names: Vec<String> = added.iter().map(|n| n.name.clone()).collect();
                    say!("added {} to cluster {name}", names.join(", "));
                }
            }
            Ok(0)
        }
        Command::Recreate {
            cluster,
            nodes,
            timeout,
        } => {
            let name = cluster_name(&cluster)?;
            let nodes: Vec<NodeId> = nodes.iter().map(|n| node_name(n)).collect::<Result<_>>()?;
            let progress = Arc::new(Progress::new());
            let clusters = connect(progress.clone()).await?;
            let view = clusters
                .recreate(&name, &nodes, timeout, &interrupt_token(progress))
                .await?;
            print_view(&view);
            Ok(0)
        }
        Command::Delnode {
            cluster,
            nodes,
            count,
            keep_state,
        } => {
            let name = cluster_name(&cluster)?;
            let removal = match count {
                Some(k) => Removal::Count(k),
                None => Removal::Nodes(nodes.iter().map(|n| node_name(n)).collect::<Result<_>>()?),
            };
            let clusters = connect(Arc::new(Progress::new())).await?;
            let view = clusters.remove_nodes(&name, &removal, keep_state).await?;
            say!(
                "cluster {name} now has {}",
                out::count(view.workers, "worker")
            );
            Ok(0)
        }
        Command::Delete {
            clusters: names,
            keep_volumes,
        } => {
            let names: Vec<ClusterName> = names
                .iter()
                .map(|n| cluster_name(n))
                .collect::<Result<_>>()?;
            let clusters = connect(Arc::new(Silent)).await?;
            let mut failed = false;
            for name in names {
                match clusters.delete(&name, keep_volumes).await {
                    Ok(r) if !r.existed => {
                        say!("cluster {name} does not exist; nothing to delete")
                    }
                    Ok(r) => {
                        say!("deleted cluster {name}: {}", removed(&r));
                        if !r.kept_volumes.is_empty() {
                            say!("  kept volumes: {}", r.kept_volumes.join(", "));
                        }
                    }
                    Err(e) => {
                        eprintln!("mcc: error: {e}");
                        failed = true;
                    }
                }
            }
            Ok(u8::from(failed))
        }
        Command::Enter {
            cluster,
            node,
            command,
        } => {
            let name = cluster_name(&cluster)?;
            let node = node
                .as_deref()
                .map(node_name)
                .transpose()?
                .unwrap_or(NodeId::FRONTEND);
            let clusters = connect(Arc::new(Silent)).await?;
            crate::enter::enter(&clusters, &name, node, command).await
        }
        Command::Exec {
            cluster,
            on,
            command,
        } => exec(&cluster, &on, &command).await,
        Command::Start { cluster } => {
            let name = cluster_name(&cluster)?;
            let view = connect(Arc::new(Progress::new()))
                .await?
                .start(&name)
                .await?;
            say!(
                "cluster {name}: {} of {} nodes running",
                view.running,
                view.nodes.len()
            );
            Ok(0)
        }
        Command::Stop { cluster } => {
            let name = cluster_name(&cluster)?;
            let view = connect(Arc::new(Progress::new()))
                .await?
                .stop(&name)
                .await?;
            say!("cluster {name}: stopped ({} nodes)", view.nodes.len());
            Ok(0)
        }
        Command::Logs { cluster, node } => {
            let name = cluster_name(&cluster)?;
            let node = node.as_deref().map(node_name).transpose()?;
            let logs = connect(Arc::new(Silent)).await?.logs(&name, node).await?;
            if logs.is_empty() {
                eprintln!("no context logs for {name} (was it created with --context-folder?)");
            }
            let several = logs.len() > 1 || node.is_none();
            for (host, text) in logs {
                if several {
                    say!("===== {host} =====");
                }
                say_raw!("{text}");
            }
            Ok(0)
        }
        Command::Gc {
            clusters,
            volumes,
            output,
        } => {
            let only: Vec<ClusterName> = clusters
                .iter()
                .map(|c| cluster_name(c))
                .collect::<Result<_>>()?;
            let report = connect(Arc::new(Notes)).await?.gc(&only, volumes).await?;
            let code = if report.failures.is_empty() { 0 } else { 1 };
            if output == Output::Json {
                json(&report);
                return Ok(code);
            }
            if report.actions.is_empty() && report.failures.is_empty() {
                say!("nothing to collect");
            }
            for a in &report.actions {
                match a {
                    GcAction::Removed(r) => {
                        say!("removed leftovers of cluster {}: {}", r.name, removed(r))
                    }
                    GcAction::RemovedNodes { name, nodes } => say!(
                        "removed nodes of cluster {name} that a killed addnode or delnode left \
                         behind: {}",
                        nodes.join(", ")
                    ),
                    GcAction::InProgress { name } => {
                        say!("left cluster {name} alone: an mcc process is still creating it")
                    }
                    GcAction::Busy { name } => {
                        say!("left cluster {name} alone: another mcc is changing it now")
                    }
                    GcAction::Unknown { name, reason } => {
                        say!("left cluster {name} alone: {reason}")
                    }
                }
            }
            for f in &report.failures {
                eprintln!("mcc: error: gc of cluster {}: {}", f.name, f.error);
            }
            if !report.kept_volumes.is_empty() {
                say!(
                    "kept volumes of deleted clusters (remove with `mcc gc --volumes`): {}",
                    report.kept_volumes.join(", ")
                );
            }
            if code != 0 {
                eprintln!(
                    "mcc: {} of the clusters could not be collected; the others were",
                    report.failures.len()
                );
            }
            Ok(code)
        }
        Command::Completions { shell } => {
            let mut cmd = crate::cli::Cli::command();
            clap_complete::generate(shell, &mut cmd, "mcc", &mut std::io::stdout());
            Ok(0)
        }
    }
}

async fn create(args: CreateArgs) -> Result<u8> {
    let file = match &args.file {
        Some(path) => mcc_core::input::read_cluster_file(path).map_err(Error::Invalid)?,
        None => SpecInput::default(),
    };
    let flags = CreateFlags {
        name: args.name,
        image: args.image,
        front_end_image: args.front_end_image,
        working_node_image: args.working_node_image,
        nodes: args.nodes,
        context_folder: args.context_folder,
        devices: args.devices,
        subnet: args.subnet,
        gateway: args.gateway,
        ips: args.ips,
        domain: args.domain,
        dns: args.dns,
        dns_search: args.dns_search,
        add_hosts: args.add_hosts,
        network_driver: args.network_driver,
        parent: args.parent,
        systemd: args.systemd,
        mount_modules: args.mount_modules,
        persist: args.persist,
        privileged: args.privileged,
        env: args.env,
    };
    let spec = flags.resolve(file).map_err(Error::Invalid)?;
    let progress = Arc::new(Progress::new());
    let clusters = connect(progress.clone()).await?;
    if spec.name_generated {
        progress.note(&format!("cluster name: {}", spec.name));
    }
    eprintln!(
        "Creating cluster {} (front-end + {})",
        spec.name,
        count(spec.nodes as usize, "worker")
    );
    let opts = CreateOptions {
        keep_on_failure: args.keep_on_failure,
        timeout: args.timeout,
    };
    let started = std::time::Instant::now();
    let view = clusters
        .create(&spec, &opts, &interrupt_token(progress.clone()))
        .await?;
    match args.output {
        Output::Json => json(&view),
        Output::Text => {
            eprintln!(
                "Cluster {} is ready in {:.1}s. Try: mcc enter {}   ·   mcc exec {} -- hostname",
                view.name,
                started.elapsed().as_secs_f64(),
                view.name,
                view.name
            );
            print_view(&view);
        }
    }
    if args.enter_cluster {
        return crate::enter::enter(&clusters, &spec.name, NodeId::FRONTEND, Vec::new()).await;
    }
    Ok(0)
}

async fn exec(cluster: &str, on: &str, command: &[String]) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let target: Target = on.parse().map_err(Error::Invalid)?;
    let clusters = connect(Arc::new(Silent)).await?;
    let width = match &target {
        Target::Nodes(n) => n.iter().map(|n| n.hostname().len()).max().unwrap_or(8),
        _ => 8,
    };
    // Written without println!, which panics when the reader has gone
    // (`mcc exec … | head`); output past that point is dropped.
    let print = move |l: OutputLine<'_>| {
        use std::io::Write;
        let line = format!("{:width$} | {}\n", l.node, l.text);
        let _ = if l.stderr {
            std::io::stderr().lock().write_all(line.as_bytes())
        } else {
            std::io::stdout().lock().write_all(line.as_bytes())
        };
    };
    let report = clusters.exec(&name, &target, command, &print).await?;
    let failed = report.failed();
    if failed.is_empty() {
        if report.results.len() > 1 {
            eprintln!("ok on {} nodes", report.results.len());
        }
        return Ok(0);
    }
    let what: Vec<String> = failed
        .iter()
        .map(|(n, r)| match r {
            Ok(code) => format!("{n} (exit {code})"),
            Err(e) => format!("{n} ({e})"),
        })
        .collect();
    eprintln!(
        "failed on {} of {} nodes: {}",
        failed.len(),
        report.results.len(),
        what.join(", ")
    );
    Ok(1)
}

fn age(created: Option<u64>) -> String {
    let Some(c) = created else { return "-".into() };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(c);
    let s = now.saturating_sub(c);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

fn list_table(list: &[ClusterView]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.status.as_str().to_string(),
                format!("1+{}", c.workers),
                format!("{}/{}", c.running, c.nodes.len()),
                c.subnet.clone().unwrap_or_else(|| "-".into()),
                c.worker_image.clone().unwrap_or_else(|| "-".into()),
                age(c.created),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME", "STATUS", "NODES", "RUNNING", "SUBNET", "IMAGE", "CREATED",
        ],
        &rows,
    )
}

fn print_view(v: &ClusterView) {
    say!(
        "cluster {}  status {}  network {} {}  devices {}",
        v.name,
        v.status.as_str(),
        v.network,
        v.subnet.as_deref().unwrap_or("-"),
        if v.devices.is_empty() {
            "-".to_string()
        } else {
            v.devices.join(",")
        }
    );
    if let Some(problem) = &v.problem {
        say!("problem: {problem}");
    }
    if let Some(why) = &v.privileged_reason {
        say!("nodes run privileged: {why}");
    } else if v.privileged {
        say!("nodes run privileged (--privileged)");
    }
    let rows: Vec<Vec<String>> = v
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                n.role.clone(),
                n.container.clone(),
                n.hostname.clone(),
                n.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                n.state.clone(),
                n.image.clone(),
            ]
        })
        .collect();
    say_raw!(
        "{}",
        table::render(
            &[
                "NODE",
                "ROLE",
                "CONTAINER",
                "HOSTNAME",
                "IP",
                "STATE",
                "IMAGE"
            ],
            &rows
        )
    );
}
