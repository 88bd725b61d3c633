//! `mcc host`: the hosts a cluster may span, kept in the user's hosts file
//! (mcc-core's `hosts`) or by the daemon (`MCC_ENDPOINT_URL`), printed here.

use mcc_core::hosts::{AddHost, HostView};
use mcc_core::provider::swarm::TlsFiles;
use mcc_core::Result;

use crate::backend::Backend;
use crate::cli::HostCommand;
use crate::out::{print_list, say};

/// A host's clusters as a table cell: `lab(3),web(1)`, `-` for none.
fn clusters_cell(v: &HostView) -> String {
    if v.clusters.is_empty() {
        return "-".into();
    }
    v.clusters
        .iter()
        .map(|(c, n)| format!("{c}({n})"))
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn host(cmd: HostCommand, b: &Backend) -> Result<u8> {
    match cmd {
        HostCommand::Add {
            name,
            engine,
            zone,
            tls_ca,
            tls_cert,
            tls_key,
            advertise_addr,
        } => {
            let tls = match (tls_ca, tls_cert, tls_key) {
                (Some(ca), Some(cert), Some(key)) => Some(TlsFiles { ca, cert, key }),
                _ => None,
            };
            let v = b
                .host_add(&AddHost {
                    name,
                    engine,
                    zone,
                    tls,
                    advertise: advertise_addr,
                })
                .await?;
            say!(
                "host {} added: Docker {}, swarm {}{}",
                v.name,
                v.version.as_deref().unwrap_or("?"),
                v.swarm,
                v.zone
                    .as_deref()
                    .map(|z| format!(", zone {z}"))
                    .unwrap_or_default()
            );
            Ok(0)
        }
        HostCommand::List { output } => {
            let list = b.host_list().await?;
            print_list(
                output,
                &list,
                &[
                    "NAME",
                    "ENGINE",
                    "ZONE",
                    "REACHABLE",
                    "VERSION",
                    "SWARM",
                    "CLUSTERS",
                ],
                |v| {
                    vec![
                        v.name.clone(),
                        v.engine.clone(),
                        v.zone.clone().unwrap_or_else(|| "-".into()),
                        if v.reachable { "yes" } else { "no" }.into(),
                        v.version.clone().unwrap_or_else(|| "-".into()),
                        v.swarm.clone(),
                        clusters_cell(v),
                    ]
                },
            );
            for v in &list {
                if let Some(p) = &v.problem {
                    eprintln!("{}: {p}", v.name);
                }
            }
            Ok(u8::from(
                list.iter().any(|v| !v.reachable || v.swarm == "down"),
            ))
        }
        HostCommand::Remove { name, lost } => {
            b.host_remove(&name, lost).await?;
            say!("host {name} removed");
            Ok(0)
        }
    }
}
