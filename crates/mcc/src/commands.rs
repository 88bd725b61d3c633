//! One function per command: call the library, print the result.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::CommandFactory;
use mcc_core::cluster::{
    ClusterView, CreateOptions, DeleteReport, GcAction, GcReport, OutputLine, Removal, Reporter,
    Target,
};
use mcc_core::model::flags::CreateFlags;
use mcc_core::model::{ClusterName, ClusterSpec, NodeId, SpecInput};
use mcc_core::{Error, Result};

use mcc_api::{Event, NewToken, TokenInfo, TokenRequest};
use reqwest::Method;

use crate::backend::Backend;
use crate::cli::{Cli, Command, CreateArgs, Output, RemoteArgs, ServeArgs, TokenCommand};
use crate::out::{self, count, json, print_list, say, say_raw};
use crate::progress::Progress;
use crate::remote::{self, body, Client, Endpoint};
use crate::table;

/// Runs a command and returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    match dispatch(cli.command, cli.remote.resolve()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcc: error: {e}");
            e.exit_code() as u8
        }
    }
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

/// What a delete or gc removed, counted.
fn removed(r: &DeleteReport) -> String {
    format!(
        "{}, {}, {}",
        count(r.containers.len(), "container"),
        count(r.networks.len(), "network"),
        count(r.volumes.len(), "volume")
    )
}

/// The daemon to go through, when one is given.
fn remote_client(r: &RemoteArgs) -> Result<Option<Client>> {
    let Some(url) = &r.endpoint_url else {
        return Ok(None);
    };
    Client::new(Endpoint {
        url: url.clone(),
        token: r.access_token.clone().unwrap_or_default(),
        secret: r.secret_key.clone().unwrap_or_default(),
    })
    .map(Some)
}

/// For commands that need a daemon: the one given, else the local
/// daemon's credentials file.
fn daemon_client(r: &RemoteArgs) -> Result<Client> {
    match remote_client(r)? {
        Some(c) => Ok(c),
        None => Client::new(remote::read_credentials(
            &mcc_daemon::state_dir::default_dir().join("credentials"),
        )?),
    }
}

/// Runs a verb: on the daemon when one is given, else on the engine.
async fn dispatch(command: Command, remote_args: RemoteArgs) -> Result<u8> {
    let remote = match &command {
        // these reach the daemon in their own way
        Command::Serve(_)
        | Command::Token(_)
        | Command::Service(_)
        | Command::Api { .. }
        | Command::Events { .. }
        | Command::Completions { .. } => None,
        _ => remote_client(&remote_args)?,
    };
    let b = Backend::new(remote);
    match command {
        Command::Create(args) => create(*args, &b).await,
        Command::Serve(args) => serve(args).await,
        Command::Token(t) => token(t, &daemon_client(&remote_args)?).await,
        Command::Service(s) => crate::service::service(s, &daemon_client(&remote_args)?).await,
        Command::Vpc(v) => crate::cloud::vpc(v, &b).await,
        Command::Host(h) => crate::host::host(h, &b).await,
        Command::Run(r) => crate::cloud::run(r, &b).await,
        Command::Status { ids, output } => crate::cloud::status(&ids, output, &b).await,
        Command::Rm { ids } => crate::cloud::rm(&ids, &b).await,
        Command::LocalRemote(crate::cli::LocalRemoteCommand::Serve {
            container_id,
            container_port,
            bind,
        }) => crate::forward::serve(&container_id, container_port, &bind, &b).await,
        Command::Metrics { ids, output } => crate::cloud::metrics(&ids, output, &b).await,
        Command::Volume(v) => crate::cloud::volume(v, &b).await,
        Command::Api { method, path, data } => {
            api(&daemon_client(&remote_args)?, &method, &path, data).await
        }
        Command::Events {
            since,
            no_follow,
            output,
        } => events(&daemon_client(&remote_args)?, since, !no_follow, output).await,
        Command::List { output } => list(&b, output).await,
        Command::Inspect { cluster, output } => inspect(&b, &cluster, output).await,
        Command::Addnode {
            cluster,
            count,
            host,
            timeout,
            output,
        } => addnode(&b, &cluster, count, host.as_deref(), timeout, output).await,
        Command::Recreate {
            cluster,
            nodes,
            host,
            timeout,
        } => recreate(&b, &cluster, &nodes, host.as_deref(), timeout).await,
        Command::Delnode {
            cluster,
            nodes,
            count,
            keep_state,
        } => delnode(&b, &cluster, &nodes, count, keep_state).await,
        Command::Delete {
            clusters,
            keep_volumes,
        } => delete(&b, &clusters, keep_volumes).await,
        Command::Enter {
            cluster,
            node,
            command,
        } => enter(&b, &cluster, node.as_deref(), command).await,
        Command::Exec {
            cluster,
            on,
            command,
        } => exec(&b, &cluster, &on, &command).await,
        Command::Start { cluster } => start(&b, &cluster).await,
        Command::Stop { cluster } => stop(&b, &cluster).await,
        Command::Logs { cluster, node } => logs(&b, &cluster, node.as_deref()).await,
        Command::Gc {
            clusters,
            volumes,
            output,
        } => gc(&b, &clusters, volumes, output).await,
        Command::Completions { shell } => {
            let mut cmd = crate::cli::Cli::command();
            clap_complete::generate(shell, &mut cmd, "mcc", &mut std::io::stdout());
            Ok(0)
        }
    }
}

async fn list(b: &Backend, output: Output) -> Result<u8> {
    let list = b.list().await?;
    match output {
        Output::Json => json(&list),
        Output::Text if list.is_empty() => {
            eprintln!("no clusters; create one with `mcc create --image IMAGE --nodes N`")
        }
        Output::Text => say_raw!("{}", list_table(&list)),
    }
    Ok(0)
}

async fn inspect(b: &Backend, cluster: &str, output: Output) -> Result<u8> {
    let view = b.inspect(&cluster_name(cluster)?).await?;
    match output {
        Output::Json => json(&view),
        Output::Text => print_view(&view),
    }
    Ok(0)
}

async fn addnode(
    b: &Backend,
    cluster: &str,
    count: u32,
    host: Option<&str>,
    timeout: std::time::Duration,
    output: Output,
) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let added = b.add_nodes(&name, count, host, timeout).await?;
    match output {
        Output::Json => json(&added),
        Output::Text => {
            let names: Vec<String> = added.iter().map(|n| n.name.clone()).collect();
            say!("added {} to cluster {name}", names.join(", "));
        }
    }
    Ok(0)
}

async fn recreate(
    b: &Backend,
    cluster: &str,
    nodes: &[String],
    host: Option<&str>,
    timeout: std::time::Duration,
) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let nodes: Vec<NodeId> = nodes.iter().map(|n| node_name(n)).collect::<Result<_>>()?;
    print_view(&b.recreate(&name, &nodes, host, timeout).await?);
    Ok(0)
}

async fn delnode(
    b: &Backend,
    cluster: &str,
    nodes: &[String],
    count: Option<u32>,
    keep_state: bool,
) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let removal = match count {
        Some(k) => Removal::Count(k),
        None => Removal::Nodes(nodes.iter().map(|n| node_name(n)).collect::<Result<_>>()?),
    };
    let view = b.remove_nodes(&name, &removal, keep_state).await?;
    say!(
        "cluster {name} now has {}",
        out::count(view.workers, "worker")
    );
    Ok(0)
}

/// Deletes each cluster named, going on past a failure (exit 1 then).
async fn delete(b: &Backend, names: &[String], keep_volumes: bool) -> Result<u8> {
    let names: Vec<ClusterName> = names
        .iter()
        .map(|n| cluster_name(n))
        .collect::<Result<_>>()?;
    let mut failed = false;
    for name in names {
        match b.delete(&name, keep_volumes).await {
            Ok(r) if !r.existed => say!("cluster {name} does not exist; nothing to delete"),
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

async fn enter(b: &Backend, cluster: &str, node: Option<&str>, command: Vec<String>) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let node = node.map(node_name).transpose()?.unwrap_or(NodeId::FRONTEND);
    b.enter(&name, node, command).await
}

async fn start(b: &Backend, cluster: &str) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let view = b.start(&name).await?;
    say!(
        "cluster {name}: {} of {} nodes running",
        view.running,
        view.nodes.len()
    );
    Ok(0)
}

async fn stop(b: &Backend, cluster: &str) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let view = b.stop(&name).await?;
    say!("cluster {name}: stopped ({} nodes)", view.nodes.len());
    Ok(0)
}

async fn logs(b: &Backend, cluster: &str, node: Option<&str>) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let node = node.map(node_name).transpose()?;
    let logs = b.logs(&name, node).await?;
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

async fn gc(b: &Backend, clusters: &[String], volumes: bool, output: Output) -> Result<u8> {
    let only: Vec<ClusterName> = clusters
        .iter()
        .map(|c| cluster_name(c))
        .collect::<Result<_>>()?;
    let report = b.gc(&only, volumes).await?;
    let failed = report.failures.len() + report.volume_failures.len();
    let code = if failed == 0 { 0 } else { 1 };
    if output == Output::Json {
        json(&report);
        return Ok(code);
    }
    print_gc(&report, failed);
    Ok(code)
}

/// A gc report as text.
fn print_gc(report: &GcReport, failed: usize) {
    if report.actions.is_empty() && report.volumes_removed.is_empty() && failed == 0 {
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
    if !report.volumes_removed.is_empty() {
        say!(
            "removed ephemeral volumes whose last container is gone: {}",
            report.volumes_removed.join(", ")
        );
    }
    for f in &report.failures {
        eprintln!("mcc: error: gc of cluster {}: {}", f.name, f.error);
    }
    for f in &report.volume_failures {
        eprintln!("mcc: error: gc of volume {}: {}", f.name, f.error);
    }
    if !report.kept_volumes.is_empty() {
        say!(
            "kept volumes of deleted clusters (remove with `mcc gc --volumes`): {}",
            report.kept_volumes.join(", ")
        );
    }
    if !report.failures.is_empty() {
        eprintln!(
            "mcc: {} of the clusters could not be collected; the others were",
            report.failures.len()
        );
    }
}

async fn create(args: CreateArgs, b: &Backend) -> Result<u8> {
    let (output, enter_cluster) = (args.output, args.enter_cluster);
    let opts = CreateOptions {
        keep_on_failure: args.keep_on_failure,
        timeout: args.timeout,
    };
    let (input, spec) = create_input(args)?;
    let progress = Arc::new(Progress::new());
    if spec.name_generated {
        progress.note(&format!("cluster name: {}", spec.name));
    }
    let started = std::time::Instant::now();
    let starting = |via: Option<&str>| {
        let what = format!(
            "Creating cluster {} (front-end + {})",
            spec.name,
            count(spec.nodes as usize, "worker")
        );
        match via {
            Some(url) => eprintln!("{what} through {url}"),
            None => eprintln!("{what}"),
        }
    };
    let view = b
        .create(&spec, input, &opts, progress.clone(), starting)
        .await?;
    print_created(&view, started, output);
    if enter_cluster {
        return b.enter(&spec.name, NodeId::FRONTEND, Vec::new()).await;
    }
    Ok(0)
}

/// The cluster a create asks for: the cluster file's fields overridden
/// by the flags, and that checked. Checked here whether the create goes
/// through a daemon or not: bad input is refused before anything is sent
/// or made, with the same message.
fn create_input(args: CreateArgs) -> Result<(SpecInput, ClusterSpec)> {
    let file = match &args.file {
        Some(path) => mcc_core::input::read_cluster_file(path).map_err(Error::Invalid)?,
        None => SpecInput::default(),
    };
    let input = file
        .overridden_by(create_flags(args).into_input().map_err(Error::Invalid)?)
        .map_err(Error::Invalid)?;
    let spec = input.clone().validate().map_err(Error::Invalid)?;
    Ok((input, spec))
}

/// The flags of `create` that describe the cluster.
fn create_flags(args: CreateArgs) -> CreateFlags {
    CreateFlags {
        name: args.name,
        image: args.image,
        front_end_image: args.front_end_image,
        working_node_image: args.working_node_image,
        nodes: args.nodes,
        context_folder: args.context_folder,
        devices: args.devices,
        subnet: args.subnet,
        allow_public_subnet: args.allow_public_subnet,
        vpc: args.vpc,
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
        docker_workers: args.docker_workers,
        privileged: args.privileged,
        env: args.env,
        hosts: args.hosts,
        shared_from: args.shared_from,
        spread: args.spread,
    }
}

/// A made cluster: its view, and in text how long it took and what to
/// try next.
fn print_created(view: &ClusterView, started: std::time::Instant, output: Output) {
    match output {
        Output::Json => json(view),
        Output::Text => {
            eprintln!(
                "Cluster {} is ready in {:.1}s. Try: mcc enter {}   ·   mcc exec {} -- hostname",
                view.name,
                started.elapsed().as_secs_f64(),
                view.name,
                view.name
            );
            print_view(view);
        }
    }
}

/// Writes one line of a node's output; a reader that has gone (`mcc exec
/// … | head`) drops the rest rather than making mcc panic.
fn print_line(node: &str, stderr: bool, text: &str, width: usize) {
    use std::io::Write;
    let line = format!("{node:width$} | {text}\n");
    let _ = if stderr {
        std::io::stderr().lock().write_all(line.as_bytes())
    } else {
        std::io::stdout().lock().write_all(line.as_bytes())
    };
}

async fn exec(b: &Backend, cluster: &str, on: &str, command: &[String]) -> Result<u8> {
    let name = cluster_name(cluster)?;
    let target: Target = on.parse().map_err(Error::Invalid)?;
    let width = match &target {
        Target::Nodes(n) => n.iter().map(|n| n.hostname().len()).max().unwrap_or(8),
        _ => 8,
    };
    let print = move |l: OutputLine<'_>| print_line(l.node, l.stderr, l.text, width);
    let report = b.exec(&name, on, &target, command, &print).await?;
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

async fn serve(args: ServeArgs) -> Result<u8> {
    let opts = mcc_daemon::ServeOptions {
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        state_dir: args
            .state_dir
            .unwrap_or_else(mcc_daemon::state_dir::default_dir),
        rate_limit: args.rate_limit,
        public_metrics: args.public_metrics,
        log_format: args.log_format,
        grace: std::time::Duration::from_secs(120),
        limits: mcc_daemon::listen::Limits {
            max: args.max_connections as usize,
            per_peer: args.max_connections_per_address as usize,
            ..Default::default()
        },
        cluster: match args.cluster {
            Some(c) => Some(
                c.parse::<ClusterName>()
                    .map_err(|e| Error::Invalid(format!("--cluster: {e}")))?
                    .to_string(),
            ),
            None => None,
        },
    };
    mcc_daemon::serve(opts).await.map_err(|e| match e {
        mcc_daemon::DaemonError::Core(e) => e,
        e => Error::Failed(e.to_string()),
    })?;
    Ok(0)
}

async fn token(cmd: TokenCommand, client: &Client) -> Result<u8> {
    match cmd {
        TokenCommand::Create {
            name,
            read_only,
            output,
        } => {
            let req = TokenRequest {
                name: Some(name),
                read_only,
            };
            let t: NewToken = client
                .call(Method::POST, "/api/v1/tokens", Some(&body(&req)))
                .await?;
            match output {
                Output::Json => json(&t),
                Output::Text => {
                    say!("MCC_ENDPOINT_URL={}", client.endpoint.url);
                    say!("MCC_ACCESS_TOKEN={}", t.info.token);
                    say!("MCC_SECRET_KEY={}", t.secret_key);
                    eprintln!(
                        "token {} ({}{}) created; the secret key is not shown again",
                        t.info.token,
                        t.info.name,
                        if t.info.read_only { ", read-only" } else { "" }
                    );
                }
            }
            Ok(0)
        }
        TokenCommand::List { output } => {
            let list: Vec<TokenInfo> = client.call(Method::GET, "/api/v1/tokens", None).await?;
            print_list(
                output,
                &list,
                &["TOKEN", "NAME", "ACCESS", "CREATED"],
                |t| {
                    vec![
                        t.token.clone(),
                        t.name.clone(),
                        if t.read_only {
                            "read-only"
                        } else {
                            "read-write"
                        }
                        .into(),
                        age(Some(t.created)),
                    ]
                },
            );
            Ok(0)
        }
        TokenCommand::Revoke { tokens } => {
            let mut failed = false;
            for t in tokens {
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    eprintln!("mcc: error: '{t}' is not a token (they look like mcc_0123…)");
                    failed = true;
                    continue;
                }
                let res = client
                    .send(Method::DELETE, &format!("/api/v1/tokens/{t}"), Vec::new())
                    .await?;
                let status = res.status().as_u16();
                if status < 300 {
                    say!("revoked token {t}");
                } else {
                    let bytes = res.bytes().await.unwrap_or_default();
                    eprintln!(
                        "mcc: error: {}",
                        remote::answer_error(&client.endpoint.url, status, &bytes)
                    );
                    failed = true;
                }
            }
            Ok(u8::from(failed))
        }
    }
}

async fn api(client: &Client, method: &str, path: &str, data: Option<String>) -> Result<u8> {
    let method = method.to_ascii_uppercase();
    let m = match method.as_str() {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        "HEAD" => Method::HEAD,
        _ => {
            return Err(Error::Invalid(format!(
                "'{method}' is not a method; use GET, POST, PUT, PATCH, DELETE or HEAD"
            )))
        }
    };
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(Error::Invalid(format!(
            "'{path}' is not a path; give it from the root, e.g. /api/v1/clusters"
        )));
    }
    let body = match data.as_deref() {
        None => Vec::new(),
        Some("@-") => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                .map_err(|e| Error::Failed(format!("reading standard input: {e}")))?;
            b
        }
        Some(d) if d.starts_with('@') => {
            std::fs::read(&d[1..]).map_err(|e| Error::Invalid(format!("--data {d}: {e}")))?
        }
        Some(d) => d.as_bytes().to_vec(),
    };
    let res = client.send(m, path, body).await?;
    let status = res.status();
    let mut stream = res.bytes_stream();
    let mut last = b'\n';
    {
        use futures_util::StreamExt;
        use std::io::Write;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Failed(format!("reading the answer: {e}")))?;
            if let Some(b) = chunk.last() {
                last = *b;
            }
            let mut out = std::io::stdout().lock();
            if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
                return Ok(0);
            }
        }
        if last != b'\n' {
            let _ = std::io::stdout().lock().write_all(b"\n");
        }
    }
    if status.is_client_error() || status.is_server_error() {
        eprintln!(
            "mcc: {} (HTTP {})",
            status.canonical_reason().unwrap_or("error"),
            status.as_u16()
        );
        return Ok(1);
    }
    Ok(0)
}

/// Seconds since the epoch as an RFC 3339 UTC time.
fn utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

async fn events(client: &Client, since: Option<u64>, follow: bool, output: Output) -> Result<u8> {
    let mut path = format!("/api/v1/events?follow={follow}");
    if let Some(s) = since {
        path.push_str(&format!("&since={s}"));
    }
    client
        .lines::<Event>(Method::GET, &path, None, |e| {
            match output {
                Output::Json => say!("{}", serde_json::to_string(&e).expect("serializable")),
                Output::Text => {
                    let about = match (&e.cluster, &e.node) {
                        (Some(c), Some(n)) => format!(" {c}/{n}"),
                        (Some(c), None) => format!(" {c}"),
                        _ => String::new(),
                    };
                    say!(
                        "{} #{} {}{about}: {}",
                        utc(e.time),
                        e.seq,
                        e.kind,
                        e.message
                    );
                }
            }
            Ok(())
        })
        .await?;
    Ok(0)
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
                match (&c.subnet, &c.vpc) {
                    (Some(s), Some(vpc)) => format!("{s} ({vpc})"),
                    (Some(s), None) => s.clone(),
                    (None, _) => "-".into(),
                },
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
        "cluster {}  status {}  network {}{} {}  devices {}",
        v.name,
        v.status.as_str(),
        v.network,
        if v.vpc.is_some() { " (VPC)" } else { "" },
        v.subnet.as_deref().unwrap_or("-"),
        table::list_cell(&v.devices)
    );
    if !v.hosts.is_empty() {
        say!("hosts {}", v.hosts.join(","));
    }
    if let Some(problem) = &v.problem {
        say!("problem: {problem}");
    }
    if let Some(why) = &v.privileged_reason {
        say!("nodes run privileged: {why}");
    } else if v.privileged {
        say!("nodes run privileged (--privileged)");
    }
    // a HOST column for a cluster over several hosts
    let spans = !v.hosts.is_empty();
    let rows: Vec<Vec<String>> = v
        .nodes
        .iter()
        .map(|n| {
            let mut row = vec![
                n.name.clone(),
                n.role.clone(),
                n.container.clone(),
                n.hostname.clone(),
                n.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                n.state.clone(),
                n.image.clone(),
            ];
            if spans {
                row.push(n.host.clone().unwrap_or_else(|| "-".into()));
                row.push(n.zone.clone().unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect();
    let mut heads = vec![
        "NODE",
        "ROLE",
        "CONTAINER",
        "HOSTNAME",
        "IP",
        "STATE",
        "IMAGE",
    ];
    if spans {
        heads.extend(["HOST", "ZONE"]);
    }
    say_raw!("{}", table::render(&heads, &rows));
    if !v.persisted.is_empty() {
        say!("--persist volumes, each on its node's host:");
        let rows: Vec<Vec<String>> = v
            .persisted
            .iter()
            .map(|p| {
                vec![
                    p.node.clone(),
                    p.path.clone(),
                    p.volume.clone(),
                    p.host.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        say_raw!(
            "{}",
            table::render(&["NODE", "PATH", "VOLUME", "HOST"], &rows)
        );
    }
}
