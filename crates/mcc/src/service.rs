//! `mcc service`: services with replicas on a cluster's Docker workers,
//! kept by the daemon (their desired state is in its store).

use std::time::{Duration, Instant};

use mcc_api::{ScaleRequest, ServiceDef, ServiceRequest, ServiceView};
use mcc_core::model::ClusterName;
use mcc_core::{Error, Result};
use reqwest::Method;

use crate::cli::{Output, ServiceCommand};
use crate::out::{json, print_list};
use crate::out::{say, say_raw};
use crate::remote::{body, Client};
use crate::table;

/// How long create and scale wait for the replicas to run.
const WAIT: Duration = Duration::from_secs(180);

fn base(cluster: &str) -> Result<String> {
    let name: ClusterName = cluster
        .parse()
        .map_err(|e: String| Error::Invalid(format!("--cluster: {e}")))?;
    Ok(format!("/api/v1/clusters/{name}/services"))
}

/// A service name as a path segment: refused here if it could not be one.
fn segment(name: &str) -> Result<&str> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Error::Invalid(format!(
            "'{name}' is not a service name; use lowercase letters, digits and '-', e.g. web"
        )));
    }
    Ok(name)
}

/// Waits until the service's replicas all run, saying how many do as
/// that changes; the last view.
async fn wait_running(client: &Client, path: &str, mut view: ServiceView) -> Result<ServiceView> {
    let start = Instant::now();
    let mut said = u32::MAX;
    loop {
        let running = view.running;
        let want = view.def.replicas;
        let extra = view.instances.len() as u32 > want;
        if running != said {
            eprintln!("{}: {running}/{want} replicas running", view.def.service);
            said = running;
        }
        if running == want && !extra {
            return Ok(view);
        }
        if start.elapsed() > WAIT {
            return Err(Error::Failed(format!(
                "service {} has {running} of {want} replicas running after {}s; `mcc events` \
                 says why",
                view.def.service,
                WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        view = client.call(Method::GET, path, None).await?;
    }
}

fn print_view(v: &ServiceView, output: Output) {
    match output {
        Output::Json => json(v),
        Output::Text => {
            say!(
                "service {}  cluster {}  image {}  replicas {}/{} running",
                v.def.service,
                v.cluster,
                v.def.image,
                v.running,
                v.def.replicas
            );
            let rows: Vec<Vec<String>> = v
                .instances
                .iter()
                .map(|r| {
                    vec![
                        format!("{}.{}", v.def.service, r.replica),
                        r.worker.clone(),
                        r.state.clone(),
                        r.container.clone(),
                        table::list_cell(&r.endpoints),
                    ]
                })
                .collect();
            say_raw!(
                "{}",
                table::render(&["REPLICA", "WORKER", "STATE", "CONTAINER", "PORTS"], &rows)
            );
        }
    }
}

pub async fn service(cmd: ServiceCommand, client: &Client) -> Result<u8> {
    match cmd {
        ServiceCommand::Create {
            name,
            cluster,
            image,
            replicas,
            env,
            ports,
            detach,
            output,
            cmd,
        } => {
            let req = ServiceRequest {
                service: name,
                image,
                replicas,
                env,
                ports,
                cmd,
            };
            create(client, &cluster, &req, detach, output).await
        }
        ServiceCommand::List { cluster, output } => list(client, &cluster, output).await,
        ServiceCommand::Show {
            name,
            cluster,
            output,
        } => {
            let path = format!("{}/{}", base(&cluster)?, segment(&name)?);
            let view: ServiceView = client.call(Method::GET, &path, None).await?;
            print_view(&view, output);
            Ok(0)
        }
        ServiceCommand::Scale {
            name,
            replicas,
            cluster,
            detach,
        } => scale(client, &cluster, &name, replicas, detach).await,
        ServiceCommand::Delete { names, cluster } => delete(client, &cluster, &names).await,
    }
}

/// Defines the service and, unless `detach`, waits for its replicas.
async fn create(
    client: &Client,
    cluster: &str,
    req: &ServiceRequest,
    detach: bool,
    output: Output,
) -> Result<u8> {
    let base = base(cluster)?;
    let view: ServiceView = client.call(Method::POST, &base, Some(&body(req))).await?;
    let view = if detach {
        view
    } else {
        let path = format!("{base}/{}", segment(&req.service)?);
        wait_running(client, &path, view).await?
    };
    print_view(&view, output);
    Ok(0)
}

async fn list(client: &Client, cluster: &str, output: Output) -> Result<u8> {
    let list: Vec<ServiceView> = client.call(Method::GET, &base(cluster)?, None).await?;
    print_list(
        output,
        &list,
        &["SERVICE", "IMAGE", "RUNNING", "WORKERS"],
        |v| {
            let mut on: Vec<&str> = v.instances.iter().map(|r| r.worker.as_str()).collect();
            on.sort();
            on.dedup();
            vec![
                v.def.service.clone(),
                v.def.image.clone(),
                format!("{}/{}", v.running, v.def.replicas),
                table::list_cell(&on),
            ]
        },
    );
    Ok(0)
}

/// Sets the service's replicas and, unless `detach`, waits for them.
async fn scale(
    client: &Client,
    cluster: &str,
    name: &str,
    replicas: u32,
    detach: bool,
) -> Result<u8> {
    let path = format!("{}/{}", base(cluster)?, segment(name)?);
    let req = ScaleRequest { replicas };
    let view: ServiceView = client.call(Method::PATCH, &path, Some(&body(&req))).await?;
    let view = if detach {
        view
    } else {
        wait_running(client, &path, view).await?
    };
    say!(
        "service {} scaled to {} replicas ({} running)",
        view.def.service,
        view.def.replicas,
        view.running
    );
    Ok(0)
}

/// Deletes each service named, going on past a failure (exit 1 then).
async fn delete(client: &Client, cluster: &str, names: &[String]) -> Result<u8> {
    let base = base(cluster)?;
    let mut failed = false;
    for n in names {
        let r: Result<ServiceDef> = match segment(n) {
            Ok(s) => {
                client
                    .call(Method::DELETE, &format!("{base}/{s}"), None)
                    .await
            }
            Err(e) => Err(e),
        };
        match r {
            Ok(d) => say!("deleted service {}", d.service),
            Err(e) => {
                eprintln!("mcc: error: {e}");
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}
