//! The CC seed's container-cloud verbs: `mcc vpc`, `mcc volume`, `mcc run`,
//! `status`, `rm` and `metrics`. Each parses its arguments, calls the
//! [`Backend`] (the local engine or the daemon) and prints.

use mcc_api::{
    ContainerMetrics, ContainerStatus, IdDeleteReport, RunSpec, VolumeRequest, VolumeView,
    VpcRequest, VpcView,
};
use mcc_core::model::size::human;
use mcc_core::Result;

use crate::backend::Backend;
use crate::cli::{Output, RunArgs, VolumeCommand, VpcCommand};
use crate::out::print_list;
use crate::out::say;
use crate::table;

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

pub async fn vpc(cmd: VpcCommand, b: &Backend) -> Result<u8> {
    match cmd {
        VpcCommand::Create {
            cidr,
            name,
            allow_public_cidr,
        } => {
            let req = VpcRequest {
                name,
                cidr,
                allow_public_cidr,
            };
            say!("{}", b.vpc_create(&req).await?);
            Ok(0)
        }
        VpcCommand::List { output } => {
            print_vpcs(output, &b.vpcs().await?);
            Ok(0)
        }
        VpcCommand::Delete { ids } => Ok(say_deleted(&b.vpc_delete(&ids).await?, "VPC")),
    }
}

fn print_vpcs(output: Output, list: &[VpcView]) {
    print_list(output, list, &["ID", "NAME", "CIDR", "USED BY"], |v| {
        vec![
            v.id.clone(),
            v.name.clone(),
            v.cidr.clone(),
            table::list_cell(&v.containers),
        ]
    });
}

pub async fn volume(cmd: VolumeCommand, b: &Backend) -> Result<u8> {
    match cmd {
        VolumeCommand::Create {
            size,
            persistent,
            name,
        } => {
            let req = VolumeRequest {
                name,
                size,
                persistent,
            };
            say!("{}", b.volume_create(&req).await?);
            Ok(0)
        }
        VolumeCommand::List { output } => {
            print_volumes(output, &b.volumes().await?);
            Ok(0)
        }
        VolumeCommand::Delete { ids } => Ok(say_deleted(&b.volume_delete(&ids).await?, "volume")),
    }
}

fn print_volumes(output: Output, list: &[VolumeView]) {
    print_list(
        output,
        list,
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
}

pub async fn run(args: RunArgs, b: &Backend) -> Result<u8> {
    let (attach, rm) = (args.attach, args.rm);
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
    let id = b.run(&spec).await?;
    if !attach {
        say!("{id}");
        return Ok(0);
    }
    let code = b.follow_run(&id).await?;
    if rm {
        if code == DETACHED {
            eprintln!(
                "mcc: not removed (--rm), as it goes on: `mcc rm {}` when done",
                &id[..12]
            );
        } else {
            // quiet: the output is the command's; a failure is said
            let r = b.rm(std::slice::from_ref(&id)).await?;
            for v in &r.volumes_removed {
                eprintln!("mcc: removed ephemeral volume {v} with the container (--rm)");
            }
        }
    }
    Ok(code)
}

/// What [`crate::enter`]'s follow returns when Ctrl-C detached.
const DETACHED: u8 = 130;

fn mib(b: Option<i64>) -> String {
    b.map(|b| human(b as u64)).unwrap_or_else(|| "-".into())
}

pub async fn status(ids: &[String], output: Output, b: &Backend) -> Result<u8> {
    let mut found: Vec<ContainerStatus> = if ids.is_empty() {
        b.statuses().await?
    } else {
        Vec::new()
    };
    let mut missing = false;
    for id in ids {
        match b.status(id).await? {
            Some(s) => found.push(s),
            None => {
                eprintln!("{id}: no such container");
                missing = true;
            }
        }
    }
    print_statuses(output, &found);
    Ok(u8::from(missing))
}

fn print_statuses(output: Output, found: &[ContainerStatus]) {
    print_list(
        output,
        found,
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
}

pub async fn rm(ids: &[String], b: &Backend) -> Result<u8> {
    let r = b.rm(ids).await?;
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

pub async fn metrics(ids: &[String], output: Output, b: &Backend) -> Result<u8> {
    let m = b.metrics(ids).await?;
    for id in &m.missing {
        eprintln!("{id}: no such container");
    }
    print_metrics(output, &m.found);
    Ok(u8::from(m.found.len() < ids.len()))
}

fn print_metrics(output: Output, list: &[ContainerMetrics]) {
    print_list(
        output,
        list,
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
}
