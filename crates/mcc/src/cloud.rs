//! The CC seed's container-cloud verbs: `mcc vpc` (and, later, volumes and
//! containers), on the local engine or through the daemon.

use std::sync::Arc;

use mcc_api::{
    ContainerMetrics, ContainerStatus, IdDeleteReport, RmReport, RunSpec, VolumeRequest,
    VolumeView, VpcDeleteRequest, VpcRequest, VpcView,
};
use mcc_core::model::size::human;
use mcc_core::Result;
use reqwest::Method;

use crate::cli::{Output, RunArgs, VolumeCommand, VpcCommand};
use crate::local::{connect, Notes};
use crate::out::print_list;
use crate::out::say;
use crate::remote::{body, Client};
use crate::table;

/// The body of the routes that take a list of IDs.
fn ids_body(ids: &[String]) -> serde_json::Value {
    body(&VpcDeleteRequest { ids: ids.to_vec() })
}

/// Prints what an all-or-nothing delete did; the exit code (0).
fn say_deleted(r: &IdDeleteReport, what: &str) -> u8 {
    for id in &r.deleted {
        say!("deleted {id}");
    }
    for id in &r.missing {
        eprintln!("{id}: no such {what} (never made, or deleted already)");
    }
    0
}

pub async fn vpc(cmd: VpcCommand, remote: Option<&Client>) -> Result<u8> {
    match cmd {
        VpcCommand::Create {
            cidr,
            name,
            allow_public_cidr,
        } => {
            let id: String = match remote {
                Some(c) => {
                    let v: VpcView = c
                        .call(
                            Method::POST,
                            "/api/v1/vpcs",
                            Some(&body(&VpcRequest {
                                name,
                                cidr,
                                allow_public_cidr,
                            })),
                        )
                        .await?;
                    v.id
                }
                None => {
                    connect(Arc::new(Notes))
                        .await?
                        .vpc_create(&name, &cidr, allow_public_cidr)
                        .await?
                }
            };
            say!("{id}");
            Ok(0)
        }
        VpcCommand::List { output } => {
            let list: Vec<VpcView> = match remote {
                Some(c) => c.call(Method::GET, "/api/v1/vpcs", None).await?,
                None => connect(Arc::new(Notes)).await?.vpcs().await?,
            };
            print_list(output, &list, &["ID", "NAME", "CIDR", "USED BY"], |v| {
                vec![
                    v.id.clone(),
                    v.name.clone(),
                    v.cidr.clone(),
                    table::list_cell(&v.containers),
                ]
            });
            Ok(0)
        }
        VpcCommand::Delete { ids } => {
            let r: IdDeleteReport = match remote {
                Some(c) => {
                    c.call(Method::POST, "/api/v1/vpcs/delete", Some(&ids_body(&ids)))
                        .await?
                }
                None => connect(Arc::new(Notes)).await?.vpc_delete(&ids).await?,
            };
            Ok(say_deleted(&r, "VPC"))
        }
    }
}

pub async fn volume(cmd: VolumeCommand, remote: Option<&Client>) -> Result<u8> {
    match cmd {
        VolumeCommand::Create {
            size,
            persistent,
            name,
        } => {
            let id: String = match remote {
                Some(c) => {
                    let v: VolumeView = c
                        .call(
                            Method::POST,
                            "/api/v1/volumes",
                            Some(&body(&VolumeRequest {
                                name,
                                size,
                                persistent,
                            })),
                        )
                        .await?;
                    v.id
                }
                None => {
                    connect(Arc::new(Notes))
                        .await?
                        .volume_create(&name, &size, persistent)
                        .await?
                }
            };
            say!("{id}");
            Ok(0)
        }
        VolumeCommand::List { output } => {
            let list: Vec<VolumeView> = match remote {
                Some(c) => c.call(Method::GET, "/api/v1/volumes", None).await?,
                None => connect(Arc::new(Notes)).await?.volume_list().await?,
            };
            print_list(
                output,
                &list,
                &["ID", "NAME", "SIZE", "KIND", "USED BY"],
                |v| {
                    vec![
                        v.id.clone(),
                        v.name.clone(),
                        human(v.size),
                        if v.persistent {
                            "persistent"
                        } else {
                            "ephemeral"
                        }
                        .into(),
                        table::list_cell(&v.containers),
                    ]
                },
            );
            Ok(0)
        }
        VolumeCommand::Delete { ids } => {
            let r: IdDeleteReport = match remote {
                Some(c) => {
                    c.call(
                        Method::POST,
                        "/api/v1/volumes/delete",
                        Some(&ids_body(&ids)),
                    )
                    .await?
                }
                None => connect(Arc::new(Notes)).await?.volume_delete(&ids).await?,
            };
            Ok(say_deleted(&r, "volume"))
        }
    }
}

pub async fn run(args: RunArgs, remote: Option<&Client>) -> Result<u8> {
    let spec = RunSpec {
        image: args.image,
        vpc: args.vpc,
        volumes: args.volumes,
        memory: args.memory,
        cpu: args.cpu,
        disk: args.disk,
        user: args.user,
        env: args.env,
        dir: args.dir,
        cmd: args.cmd,
    };
    let (id, code) = match remote {
        Some(c) => {
            let s: ContainerStatus = c
                .call(Method::POST, "/api/v1/containers", Some(&body(&spec)))
                .await?;
            if !args.attach {
                say!("{}", s.id);
                return Ok(0);
            }
            let code = crate::enter::follow_run_remote(c, &s.id).await?;
            (s.id, code)
        }
        None => {
            let clusters = connect(Arc::new(Notes)).await?;
            let id = clusters.run(&spec).await?;
            if !args.attach {
                say!("{id}");
                return Ok(0);
            }
            let code = crate::enter::follow_run(&clusters, &id).await?;
            (id, code)
        }
    };
    if args.rm {
        if code == DETACHED {
            eprintln!(
                "mcc: not removed (--rm), as it goes on: `mcc rm {}` when done",
                &id[..12]
            );
        } else {
            // quiet: the output is the command's; a failure is said
            let r = remove(std::slice::from_ref(&id), remote).await?;
            for v in &r.volumes_removed {
                eprintln!("mcc: removed ephemeral volume {v} with the container (--rm)");
            }
        }
    }
    Ok(code)
}

/// What [`crate::enter`]'s follow returns when Ctrl-C detached.
const DETACHED: u8 = 130;

async fn remove(ids: &[String], remote: Option<&Client>) -> Result<RmReport> {
    match remote {
        Some(c) => {
            c.call(
                Method::POST,
                "/api/v1/containers/delete",
                Some(&ids_body(ids)),
            )
            .await
        }
        None => connect(Arc::new(Notes)).await?.rm(ids).await,
    }
}

fn mib(b: Option<i64>) -> String {
    b.map(|b| human(b as u64)).unwrap_or_else(|| "-".into())
}

pub async fn status(ids: &[String], output: Output, remote: Option<&Client>) -> Result<u8> {
    let mut found: Vec<ContainerStatus> = Vec::new();
    let mut missing = false;
    let local = match remote {
        Some(_) => None,
        None => Some(connect(Arc::new(Notes)).await?),
    };
    if ids.is_empty() {
        found = match (remote, &local) {
            (Some(c), _) => c.call(Method::GET, "/api/v1/containers", None).await?,
            (None, Some(l)) => l.run_statuses().await?,
            (None, None) => unreachable!("connected above"),
        };
    }
    for id in ids {
        let s: Option<ContainerStatus> = match (remote, &local) {
            (Some(c), _) => {
                let all: Vec<ContainerStatus> = c
                    .call(
                        Method::POST,
                        "/api/v1/containers/status",
                        Some(&ids_body(std::slice::from_ref(id))),
                    )
                    .await?;
                all.into_iter().next()
            }
            (None, Some(l)) => l.run_status(id).await?,
            (None, None) => unreachable!("connected above"),
        };
        match s {
            Some(s) => found.push(s),
            None => {
                eprintln!("{id}: no such container");
                missing = true;
            }
        }
    }
    print_list(
        output,
        &found,
        &[
            "ID", "STATE", "EXIT", "IMAGE", "VPC", "IP", "MEMORY", "CPU", "VOLUMES", "STARTED",
            "FINISHED",
        ],
        |s| {
            vec![
                s.id[..12.min(s.id.len())].to_string(),
                s.state.clone(),
                s.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                s.image.clone(),
                s.labels
                    .get(mcc_core::model::labels::VPC)
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
                s.ips.values().cloned().collect::<Vec<_>>().join(","),
                mib(s.memory),
                s.cpu_shares
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                table::list_cell(&s.volumes),
                s.started.clone().unwrap_or_else(|| "-".into()),
                s.finished.clone().unwrap_or_else(|| "-".into()),
            ]
        },
    );
    Ok(u8::from(missing))
}

pub async fn rm(ids: &[String], remote: Option<&Client>) -> Result<u8> {
    let r = remove(ids, remote).await?;
    for id in &r.removed {
        say!("removed {id}");
    }
    for v in &r.volumes_removed {
        say!("removed ephemeral volume {v}");
    }
    for id in &r.missing {
        eprintln!("{id}: no such container");
    }
    Ok(0)
}

pub async fn metrics(ids: &[String], output: Output, remote: Option<&Client>) -> Result<u8> {
    let list: Vec<ContainerMetrics> = match remote {
        Some(c) => {
            c.call(
                Method::POST,
                "/api/v1/containers/metrics",
                Some(&ids_body(ids)),
            )
            .await?
        }
        None => {
            let clusters = connect(Arc::new(Notes)).await?;
            let all =
                futures_util::future::join_all(ids.iter().map(|id| clusters.run_metrics(id))).await;
            let mut out = Vec::new();
            for (id, m) in ids.iter().zip(all) {
                match m? {
                    Some(m) => out.push(m),
                    None => eprintln!("{id}: no such container"),
                }
            }
            out
        }
    };
    print_list(
        output,
        &list,
        &[
            "ID",
            "STATE",
            "CPU",
            "MEMORY / LIMIT",
            "NET RX / TX",
            "BLOCK R / W",
        ],
        |m| {
            vec![
                m.id.clone(),
                m.state.clone(),
                format!("{:.1}%", m.cpu_percent),
                format!(
                    "{} / {}",
                    human(m.memory_bytes),
                    human(m.memory_limit_bytes)
                ),
                format!("{} / {}", human(m.rx_bytes), human(m.tx_bytes)),
                format!("{} / {}", human(m.blk_read_bytes), human(m.blk_write_bytes)),
            ]
        },
    );
    Ok(u8::from(list.len() < ids.len()))
}
