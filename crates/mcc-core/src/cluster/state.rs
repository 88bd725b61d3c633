//! What mcc keeps of a cluster besides its nodes' labels.
//!
//! Since schema 3 (`model::INDEX_SCHEMA`) the cluster's **index** holds
//! what changes in its life: an empty volume (role `index`) whose labels
//! are its state and its members, so that a listing of the engine's
//! volumes tells them without reading a file. Labels cannot change, so
//! each change makes the next index (`<meta volume>.i<generation>`) and
//! then removes the ones before; a reader takes the highest generation,
//! and one cut short between the two leaves an older index that the next
//! change (or `delete`, `gc`) removes.
//! - state: empty while the cluster is made, then `ready` or `failed`
//!   when the create ended, `deleting` (or `deleting-keep-volumes`) when a
//!   delete began. A cluster with no state whose creator is gone was cut
//!   short.
//! - members: the cluster's nodes as mcc made them, also those whose
//!   container was removed behind mcc's back. Never derived from the hosts
//!   file, which carries the user's `--add-host` entries too.
//!
//! Clusters made by schema 2 kept the same as files on the meta volume
//! (`members`, and `state/<marker>` files written once each); those are
//! still read and written for them.
//!
//! The meta volume also holds `hosts`, bound onto every node's
//! `/etc/hosts`, so rewritten in place (see [`Clusters::write_hosts`]).

use super::{Clusters, Loaded};
use crate::context;
use crate::error::{Error, Result};
use crate::model::labels::role;
use crate::model::{labels, members, ClusterName, NodeId, Role, INDEX_SCHEMA, META_MOUNT};
use crate::provider::VolumeInfo;

const STATE_DIR: &str = "state";

/// How a cluster's create went, as far as the engine tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CreateState {
    Ready,
    /// Failed and kept on the user's request.
    Failed,
    /// Its creating mcc process still runs.
    InProgress,
    /// Neither finished nor running: killed half-way.
    CutShort,
    /// A delete began (and, if this is still seen later, was cut short);
    /// `keep_volumes` as it was asked.
    Deleting {
        keep_volumes: bool,
    },
}

/// A cluster's index (schema 3): the labels of its newest index volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Index {
    pub volume: String,
    pub generation: u64,
    /// The state marker; `None` while the cluster is made.
    pub marker: Option<String>,
    /// `Err` says what is wrong with the label.
    pub members: std::result::Result<Vec<NodeId>, String>,
}

impl Index {
    /// The newest index among `volumes` of the cluster whose meta volume
    /// is `meta_volume` (an index left by an earlier cluster of the name
    /// is not this one's).
    pub fn newest(volumes: &[VolumeInfo], name: &ClusterName, meta_volume: &str) -> Option<Index> {
        let prefix = format!("{meta_volume}.i");
        fn label<'a>(v: &'a VolumeInfo, k: &str) -> Option<&'a str> {
            v.labels.get(k).map(String::as_str)
        }
        volumes
            .iter()
            .filter(|v| label(v, labels::ROLE) == Some(role::INDEX))
            .filter(|v| label(v, labels::CLUSTER) == Some(name.as_str()))
            .filter(|v| v.name.starts_with(&prefix))
            .filter_map(|v| {
                let generation = v.labels.get(labels::GENERATION)?.parse().ok()?;
                Some(Index {
                    volume: v.name.clone(),
                    generation,
                    marker: v
                        .labels
                        .get(labels::STATE)
                        .filter(|m| !m.is_empty())
                        .cloned(),
                    members: members::from_label(
                        v.labels.get(labels::MEMBERS).map_or("", String::as_str),
                    ),
                })
            })
            .max_by_key(|i| i.generation)
    }

    /// The name of the index after `generation`.
    fn volume_name(meta_volume: &str, generation: u64) -> String {
        format!("{meta_volume}.i{generation}")
    }
}

/// Whether the cluster keeps its state and members in an index (made by
/// schema 3 or later) rather than in files of its meta volume.
pub(crate) fn has_index(loaded: &Loaded) -> bool {
    loaded
        .meta
        .as_ref()
        .and_then(|m| m.labels.get(labels::SCHEMA))
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|v| v >= INDEX_SCHEMA)
}

/// The markers a state directory (or a legacy `state` file) holds.
fn markers_of(tar: &[u8]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    let bad = |e: std::io::Error| Error::Failed(format!("reading the cluster's state: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.into_owned();
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file == STATE_DIR {
            // before schema 2: one file holding the state's name
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).map_err(bad)?;
            out.push(text.trim().to_string());
        } else {
            out.push(file);
        }
    }
    Ok(out)
}

/// The state the markers say, the latest step winning.
fn state_of(markers: &[String]) -> Option<CreateState> {
    let has = |m: &str| markers.iter().any(|x| x == m);
    if has("deleting-keep-volumes") {
        Some(CreateState::Deleting { keep_volumes: true })
    } else if has("deleting") {
        Some(CreateState::Deleting {
            keep_volumes: false,
        })
    } else if has("failed") {
        Some(CreateState::Failed)
    } else if markers.iter().any(|m| !m.is_empty()) {
        Some(CreateState::Ready)
    } else {
        None
    }
}

/// The `members` file's text.
pub(crate) fn members_text(members: &[NodeId]) -> String {
    let names: Vec<String> = members.iter().map(NodeId::hostname).collect();
    format!(
        "{}\n",
        serde_json::to_string(&names).expect("names serialize")
    )
}

fn parse_members(name: &ClusterName, text: &str) -> Result<Vec<NodeId>> {
    let names: Vec<String> = serde_json::from_str(text).map_err(|e| {
        Error::Failed(format!(
            "cluster '{name}': its member list ({META_MOUNT}/{}) is unreadable: {e}",
            context::MEMBERS_FILE
        ))
    })?;
    names
        .iter()
        .map(|n| {
            NodeId::parse_hostname(n).ok_or_else(|| {
                Error::Failed(format!(
                    "cluster '{name}': its member list names '{n}', which is not a node"
                ))
            })
        })
        .collect()
}

/// Pads `new` with a comment line to at least `old_len` bytes, so that a
/// write of it over the old file leaves nothing of the old content.
pub(crate) fn padded(new: &str, old_len: usize) -> String {
    let mut out = new.to_string();
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    if out.len() < old_len {
        let gap = old_len - out.len();
        if gap == 1 {
            out.push('\n');
        } else {
            out.push('#');
            out.push_str(&" ".repeat(gap - 2));
            out.push('\n');
        }
    }
    out
}

impl Clusters {
    /// Reads one file of the meta volume; `None` if it is not there.
    async fn meta_file(&self, name: &ClusterName, file: &str) -> Result<Option<Vec<u8>>> {
        self.store.read(name, &format!("{META_MOUNT}/{file}")).await
    }

    /// Writes a marker of how the cluster's life goes (`ready`, `failed`,
    /// `deleting`, `deleting-keep-volumes`).
    pub(crate) async fn mark_state(&self, name: &ClusterName, state: &str) -> Result<()> {
        let loaded = self.load(name).await?;
        let written = if has_index(&loaded) {
            // (a create that failed before its first index: the nodes it made)
            let members = match &loaded.index {
                Some(Index { members: Ok(m), .. }) => m.clone(),
                _ => loaded.nodes.iter().map(|n| n.node).collect(),
            };
            self.write_index(&loaded, Some(state), &members).await
        } else {
            self.store
                .write(
                    name,
                    &format!("{META_MOUNT}/{STATE_DIR}"),
                    context::file_archive(state, "")?,
                )
                .await
        };
        written.map_err(|e| {
            Error::Failed(format!(
                "cannot record cluster '{name}' as {state} (on {}): {e}",
                name.meta_container()
            ))
        })
    }

    /// Makes index `generation` of the cluster; returns its volume's name.
    pub(crate) async fn create_index(
        &self,
        name: &ClusterName,
        meta_volume: &str,
        generation: u64,
        marker: Option<&str>,
        members: &[NodeId],
    ) -> Result<String> {
        let volume = Index::volume_name(meta_volume, generation);
        let mut l = labels::of(name, Some(role::INDEX));
        l.insert(labels::GENERATION.into(), generation.to_string());
        l.insert(labels::STATE.into(), marker.unwrap_or_default().into());
        l.insert(labels::MEMBERS.into(), members::to_label(members));
        self.provider.create_volume(&volume, None, &l).await?;
        Ok(volume)
    }

    /// Makes the cluster's next index, with `marker` and `members`, then
    /// removes the ones before it. The caller holds the cluster (its lock,
    /// or its claim while it is made).
    pub(crate) async fn write_index(
        &self,
        loaded: &Loaded,
        marker: Option<&str>,
        members: &[NodeId],
    ) -> Result<()> {
        let record = loaded.record()?;
        let generation = loaded.index.as_ref().map_or(1, |i| i.generation + 1);
        let volume = self
            .create_index(
                &loaded.name,
                &record.meta_volume,
                generation,
                marker,
                members,
            )
            .await?;
        // Every other index of the name goes: the ones before this, and any
        // an earlier cluster of the name left. One that stays (this is cut
        // short) is older, so it is never read; the next change removes it.
        for v in loaded.index_volumes.iter().filter(|v| **v != volume) {
            self.provider.remove_volume(v).await?;
        }
        Ok(())
    }

    /// How the create of a cluster with a record container went.
    pub(crate) async fn create_state(&self, loaded: &Loaded) -> Result<CreateState> {
        let markers = if has_index(loaded) {
            loaded
                .index
                .iter()
                .filter_map(|i| i.marker.clone())
                .collect()
        } else {
            match self.meta_file(&loaded.name, STATE_DIR).await? {
                Some(tar) => markers_of(&tar)?,
                None => Vec::new(),
            }
        };
        if let Some(s) = state_of(&markers) {
            return Ok(s);
        }
        let creating = loaded
            .meta
            .as_ref()
            .and_then(|m| m.labels.get(labels::CREATOR))
            .is_some_and(|c| super::creator::alive(c));
        Ok(if creating {
            CreateState::InProgress
        } else {
            CreateState::CutShort
        })
    }

    /// The cluster's members: the nodes mcc made and has not removed,
    /// also those whose container is gone.
    pub(crate) async fn recorded_members(&self, loaded: &Loaded) -> Result<Vec<NodeId>> {
        if has_index(loaded) {
            return match &loaded.index {
                Some(Index { members: Ok(m), .. }) => Ok(m.clone()),
                Some(Index {
                    members: Err(e),
                    volume,
                    ..
                }) => Err(Error::Failed(format!(
                    "cluster '{}': its member list ({} label of volume {volume}) is \
                     unreadable: {e}",
                    loaded.name,
                    labels::MEMBERS
                ))),
                None => Err(Error::Failed(format!(
                    "cluster '{}' has no index (the volume whose labels hold its members); it \
                     was cut short: `mcc gc {}` or `mcc delete {}` removes it",
                    loaded.name, loaded.name, loaded.name
                ))),
            };
        }
        let mut members = match self.meta_file(&loaded.name, context::MEMBERS_FILE).await? {
            Some(tar) => parse_members(&loaded.name, &context::single_file_text(&tar)?)?,
            None if loaded.record.as_ref().is_some_and(|r| r.legacy_layout()) => {
                self.legacy_members(loaded).await?
            }
            None => {
                return Err(Error::Failed(format!(
                    "cluster '{}' has no member list ({META_MOUNT}/{} on {}); it was cut short: \
                     `mcc gc {}` or `mcc delete {}` removes it",
                    loaded.name,
                    context::MEMBERS_FILE,
                    loaded.name.meta_container(),
                    loaded.name,
                    loaded.name
                )))
            }
        };
        members.sort();
        members.dedup();
        Ok(members)
    }

    /// Members of a cluster made before schema 2, read from its hosts
    /// file as that version did (only to show it; such a cluster is not
    /// changed any more).
    async fn legacy_members(&self, loaded: &Loaded) -> Result<Vec<NodeId>> {
        let text = match self.meta_file(&loaded.name, "hosts").await? {
            Some(tar) => context::single_file_text(&tar)?,
            None => String::new(),
        };
        let prefix = format!("{}-", loaded.name);
        let mut members: Vec<NodeId> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.split_whitespace().skip(1))
            .filter_map(|token| NodeId::parse_hostname(token.strip_prefix(&prefix)?))
            .collect();
        members.extend(loaded.nodes.iter().map(|n| n.node));
        Ok(members)
    }

    /// The host each node of a cluster over hosts was placed on, as
    /// recorded when it was made (empty for a cluster on one engine, or
    /// one made before it was recorded).
    pub(crate) async fn placements(
        &self,
        name: &ClusterName,
    ) -> Result<std::collections::BTreeMap<NodeId, String>> {
        let Some(tar) = self.meta_file(name, context::PLACEMENTS_FILE).await? else {
            return Ok(Default::default());
        };
        let text = context::single_file_text(&tar)?;
        let by_name: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
            .map_err(|e| {
                Error::Failed(format!(
                    "cluster '{name}': its placements ({META_MOUNT}/{}) are unreadable: {e}",
                    context::PLACEMENTS_FILE
                ))
            })?;
        Ok(by_name
            .into_iter()
            .filter_map(|(n, h)| Some((NodeId::parse_hostname(&n)?, h)))
            .collect())
    }

    /// Records where `placed` nodes go (over what was recorded of others).
    pub(crate) async fn record_placements(
        &self,
        name: &ClusterName,
        placed: &[(NodeId, String)],
    ) -> Result<()> {
        let mut all = self.placements(name).await?;
        all.extend(placed.iter().cloned());
        let by_name: std::collections::BTreeMap<String, &String> =
            all.iter().map(|(n, h)| (n.hostname(), h)).collect();
        let text = serde_json::to_string(&by_name).expect("names serialize");
        self.store
            .write(
                name,
                META_MOUNT,
                context::file_archive(context::PLACEMENTS_FILE, &text)?,
            )
            .await
    }

    /// Records the cluster's members.
    pub(crate) async fn write_members(&self, name: &ClusterName, members: &[NodeId]) -> Result<()> {
        let loaded = self.load(name).await?;
        if has_index(&loaded) {
            let marker = loaded.index.as_ref().and_then(|i| i.marker.clone());
            return self.write_index(&loaded, marker.as_deref(), members).await;
        }
        self.store
            .write(
                name,
                META_MOUNT,
                context::file_archive(context::MEMBERS_FILE, &members_text(members))?,
            )
            .await
    }

    /// Rewrites the cluster's hosts file (and the workers' names) for
    /// `nodes`. Running nodes bind the file itself, so it is rewritten in
    /// place, in one write over the old content, padded so that nothing
    /// of the old remains: a reader sees the old or the new file, never
    /// an empty one. No node takes part: mcc's helper does the write.
    pub(crate) async fn write_hosts(&self, loaded: &Loaded, nodes: &[NodeId]) -> Result<()> {
        let record = loaded.record()?;
        let name = &loaded.name;
        let content = super::nodes::hosts_for(name, record, nodes)?;
        let workers: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| n.role == Role::Worker)
            .collect();
        self.store
            .write(
                name,
                META_MOUNT,
                context::file_archive("nodes", &context::nodes_file(&workers))?,
            )
            .await?;
        let old = match self.meta_file(name, "hosts").await? {
            Some(tar) => context::single_file_text(&tar)?,
            None => String::new(),
        };
        if old.trim_end() == content.trim_end() {
            return Ok(());
        }
        if loaded.nodes.iter().any(|n| n.running()) {
            let text = padded(&content, old.len());
            self.store
                .rewrite_live(name, record, "hosts", text.as_bytes())
                .await
                .map_err(|e| {
                    Error::Failed(format!("updating the hosts file of cluster '{name}': {e}"))
                })
        } else {
            // no node binds the file now; they bind the new one at start
            self.store
                .write(name, META_MOUNT, context::file_archive("hosts", &content)?)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_covers_the_old_file() {
        assert_eq!(padded("a b\n", 0), "a b\n");
        assert_eq!(padded("a b\n", 4), "a b\n");
        assert_eq!(padded("a b\n", 5), "a b\n\n");
        let p = padded("a b\n", 40);
        assert_eq!(p.len(), 40);
        assert!(p.starts_with("a b\n#"));
        assert!(p.ends_with(" \n"));
        assert_eq!(padded("x", 0), "x\n");
    }

    #[test]
    fn markers_read_as_states() {
        let s = |m: &[&str]| state_of(&m.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&[]), None);
        assert_eq!(s(&["ready"]), Some(CreateState::Ready));
        assert_eq!(s(&["failed"]), Some(CreateState::Failed));
        assert_eq!(
            s(&["ready", "deleting"]),
            Some(CreateState::Deleting {
                keep_volumes: false
            })
        );
        assert_eq!(
            s(&["ready", "deleting-keep-volumes"]),
            Some(CreateState::Deleting { keep_volumes: true })
        );
    }

    fn index_volume(name: &str, labels_: &[(&str, &str)]) -> VolumeInfo {
        VolumeInfo {
            name: name.into(),
            mountpoint: String::new(),
            labels: labels_
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            host: None,
        }
    }

    #[test]
    fn the_newest_index_of_this_cluster_is_read() {
        let name: ClusterName = "lab".parse().unwrap();
        let ix = |vol: &str, cluster: &str, gen: &str, state: &str, members: &str| {
            index_volume(
                vol,
                &[
                    (labels::CLUSTER, cluster),
                    (labels::ROLE, role::INDEX),
                    (labels::GENERATION, gen),
                    (labels::STATE, state),
                    (labels::MEMBERS, members),
                ],
            )
        };
        let volumes = vec![
            // an earlier cluster of the name left a later generation
            ix("lab-mcc.0000aaaa.i9", "lab", "9", "deleting", "frontend"),
            // a change cut short between the new index and the old one's removal
            ix("lab-mcc.1234abcd.i1", "lab", "1", "", "frontend node01"),
            ix(
                "lab-mcc.1234abcd.i2",
                "lab",
                "2",
                "ready",
                "frontend node01-node02",
            ),
            // not an index, or not this cluster's
            index_volume(
                "lab-mcc.1234abcd",
                &[(labels::CLUSTER, "lab"), (labels::ROLE, "meta")],
            ),
            ix("lab-mcc.1234abcd.i7", "other", "7", "failed", "frontend"),
            ix(
                "lab-mcc.1234abcd.i8",
                "lab",
                "not a number",
                "failed",
                "frontend",
            ),
        ];
        let got = Index::newest(&volumes, &name, "lab-mcc.1234abcd").unwrap();
        assert_eq!(got.generation, 2);
        assert_eq!(got.marker.as_deref(), Some("ready"));
        assert_eq!(
            got.members.unwrap(),
            vec![NodeId::FRONTEND, NodeId::worker(1), NodeId::worker(2)]
        );
        assert_eq!(Index::newest(&volumes, &name, "lab-mcc.ffffffff"), None);
        // while it is made: no marker; a forged member list is an error
        let made = vec![ix("lab-mcc.1234abcd.i1", "lab", "1", "", "frontend evil")];
        let got = Index::newest(&made, &name, "lab-mcc.1234abcd").unwrap();
        assert_eq!(got.marker, None);
        assert!(got.members.is_err());
    }

    #[test]
    fn members_round_trip_and_garbage_is_an_error() {
        let name: ClusterName = "lab".parse().unwrap();
        let m = vec![NodeId::FRONTEND, NodeId::worker(3)];
        assert_eq!(parse_members(&name, &members_text(&m)).unwrap(), m);
        assert!(parse_members(&name, "not json").is_err());
        assert!(parse_members(&name, r#"["frontend","lab-node05"]"#).is_err());
    }
}
