//! The CC seed's container-cloud verbs: `mcc vpc` (and, later, volumes and
//! containers), on the local engine or through the daemon.

use std::sync::Arc;

use mcc_core::cluster::volume::{VolumeDeleteReport, VolumeView};
use mcc_core::cluster::vpc::{VpcDeleteReport, VpcView};
use mcc_core::model::size::human;
use mcc_core::Result;
use reqwest::Method;
use serde_json::json;

use crate::cli::{Output, VolumeCommand, VpcCommand};
use crate::commands::{connect, json, Notes};
use crate::out::{say, say_raw};
use crate::remote::Client;
use crate::table;

pub async fn vpc(cmd: VpcCommand, remote: Option<&Client>) -> Result<u8> {
    match cmd {
        VpcCommand::Create { cidr, name } => {
            let id: String = match remote {
                Some(c) => {
                    let v: VpcView = c
                        .call(
                            Method::POST,
                            "/api/v1/vpcs",
                            Some(&json!({"name": name, "cidr": cidr})),
                        )
                        .await?;
                    v.id
                }
                None => {
                    connect(Arc::new(Notes))
                        .await?
                        .vpc_create(&name, &cidr)
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
            match output {
                Output::Json => json(&list),
                Output::Text => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|v| {
                            vec![
                                v.id.clone(),
                                v.name.clone(),
                                v.cidr.clone(),
                                if v.containers.is_empty() {
                                    "-".into()
                                } else {
                                    v.containers.join(",")
                                },
                            ]
                        })
                        .collect();
                    say_raw!(
                        "{}",
                        table::render(&["ID", "NAME", "CIDR", "USED BY"], &rows)
                    );
                }
            }
            Ok(0)
        }
        VpcCommand::Delete { ids } => {
            let r: VpcDeleteReport = match remote {
                Some(c) => {
                    c.call(
                        Method::POST,
                        "/api/v1/vpcs/delete",
                        Some(&json!({ "ids": ids })),
                    )
                    .await?
                }
                None => connect(Arc::new(Notes)).await?.vpc_delete(&ids).await?,
            };
            for id in &r.deleted {
                say!("deleted {id}");
            }
            for id in &r.missing {
                eprintln!("{id}: no such VPC (never made, or deleted already)");
            }
            Ok(0)
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
                            Some(&json!({"name": name, "size": size, "persistent": persistent})),
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
            match output {
                Output::Json => json(&list),
                Output::Text => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|v| {
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
                                if v.containers.is_empty() {
                                    "-".into()
                                } else {
                                    v.containers.join(",")
                                },
                            ]
                        })
                        .collect();
                    say_raw!(
                        "{}",
                        table::render(&["ID", "NAME", "SIZE", "KIND", "USED BY"], &rows)
                    );
                }
            }
            Ok(0)
        }
        VolumeCommand::Delete { ids } => {
            let r: VolumeDeleteReport = match remote {
                Some(c) => {
                    c.call(
                        Method::POST,
                        "/api/v1/volumes/delete",
                        Some(&json!({ "ids": ids })),
                    )
                    .await?
                }
                None => connect(Arc::new(Notes)).await?.volume_delete(&ids).await?,
            };
            for id in &r.deleted {
                say!("deleted {id}");
            }
            for id in &r.missing {
                eprintln!("{id}: no such volume (never made, or deleted already)");
            }
            Ok(0)
        }
    }
}
