//! Volumes whose data lives on the export every host of a cluster shares
//! (`--shared-from`; the volume's `labels::EXPORT` names it, and
//! `model::export` turns it into the `local` driver's options). Each
//! engine that runs a container of the cluster gets a volume of the
//! `local` driver that mounts `<export>/mcc-volumes/<volume>` (a bind of
//! a folder every host has, or an NFS mount): the same files on every
//! host, under the volume's own name and labels (so `list`, `delete` and
//! `gc` find it on each engine).
//!
//! mcc never touches the export with its own file calls: the folders are
//! made and a volume's data removed by a short-lived helper container on
//! an engine, which mounts the export's root through a volume of the same
//! driver (so an NFS export is mounted exactly as the volumes will be, and
//! mcc need not run where the folder is). `mcc-volumes` is private to
//! root (0700), each volume's folder 0755 as the engine's own volumes are;
//! the helper follows no link (a link where a folder should be is refused,
//! a link planted in a volume is removed as a link).

#[allow(unused_imports)]
use super::*;

use crate::model::export::Export;

/// Where the helper sees the export's root.
const ROOT: &str = "/mcc-export";

/// The helper's fixed script: `$1` is `make` or `remove`, the rest are
/// volume names (checked by [`check_volume_name`]). Exit 3: a link or a
/// file where a folder should be.
const SCRIPT: &str = r#"set -e
cd /mcc-export
notdir() { [ -L "$1" ] || { [ -e "$1" ] && [ ! -d "$1" ]; }; }
if notdir mcc-volumes; then
  echo "mcc-volumes is not a folder (a link?); mcc follows no link: remove it" >&2; exit 3
fi
mkdir -m 0700 mcc-volumes 2>/dev/null || true
if notdir mcc-volumes; then echo "mcc-volumes could not be made" >&2; exit 3; fi
chmod 0700 mcc-volumes
op=$1; shift
for v; do
  p=mcc-volumes/$v
  if notdir "$p"; then
    echo "$p is not a folder (a link?); mcc keeps volume $v there and follows no link: remove it" >&2
    exit 3
  fi
  case $op in
  make)
    mkdir -m 0755 "$p" 2>/dev/null || true
    if notdir "$p" || [ ! -d "$p" ]; then echo "$p could not be made" >&2; exit 3; fi ;;
  remove) rm -rf -- "$p" ;;
  esac
done
"#;

/// The export a volume's labels put its data in, if any.
pub(super) fn export_of(labels: &Labels) -> Result<Option<Export>> {
    labels
        .get(labels::EXPORT)
        .map(|l| Export::from_label(l).map_err(Error::Failed))
        .transpose()
}

/// The image a volume's labels name for the helper that makes and removes
/// its folder (the cluster's front-end image, which has `/bin/sh`).
fn helper_image(labels: &Labels) -> Option<&str> {
    labels.get(labels::EXPORT_HELPER).map(String::as_str)
}

/// The labels of a helper working for a volume with `of`: its cluster's
/// (so that `gc` finds it), role helper, and never the export's (removing
/// the helper's own volume must not remove data).
fn helper_labels(of: &Labels) -> Labels {
    let mut l: Labels = of
        .iter()
        .filter(|(k, _)| [labels::CLUSTER, labels::SCHEMA].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    l.insert(labels::ROLE.into(), labels::role::HELPER.into());
    l
}

impl DockerProvider {
    /// Makes the folders of `volumes` on `export` through this engine, with
    /// a helper of `image`; `labels` are those of the volumes.
    pub(super) async fn make_export_dirs(
        &self,
        export: &Export,
        volumes: &[&str],
        image: &str,
        labels: &Labels,
    ) -> Result<()> {
        self.export_helper(export, "make", volumes, image, labels)
            .await
            .map_err(|e| {
                Error::Failed(format!(
                    "making the folders of volume {} on the shared export {export}: {e}",
                    volumes.join(", ")
                ))
            })
    }

    /// Removes what `volume` (whose labels are `labels`) kept on `export`,
    /// through this engine.
    pub(super) async fn remove_export_data(
        &self,
        export: &Export,
        volume: &str,
        labels: &Labels,
    ) -> Result<()> {
        let stays = || {
            format!(
                "volume {volume} is gone from the engines, but its data stays in {}",
                export.volume_location(volume)
            )
        };
        let Some(image) = helper_image(labels) else {
            return Err(Error::Failed(format!(
                "{}: the volume names no image to remove it with (made by an older mcc); \
                 remove that folder by hand",
                stays()
            )));
        };
        self.export_helper(export, "remove", &[volume], image, labels)
            .await
            .map_err(|e| Error::Failed(format!("{}: {e}", stays())))
    }

    /// Runs the helper's script with `op` over `volumes`: a container of
    /// `image` with no network that mounts the export's root through a
    /// volume of its own (removed after, as the container is).
    async fn export_helper(
        &self,
        export: &Export,
        op: &str,
        volumes: &[&str],
        image: &str,
        labels: &Labels,
    ) -> Result<()> {
        for v in volumes {
            check_volume_name(v)?;
        }
        let labels = helper_labels(labels);
        let name = helper::helper_name(volumes.first().copied().unwrap_or("mcc"), "export");
        let root = format!("{name}.root");
        self.new_volume(VolumeCreateRequest {
            name: Some(root.clone()),
            labels: Some(labels.clone()),
            driver: Some("local".into()),
            driver_opts: Some(export.root_options()),
            ..Default::default()
        })
        .await?;
        let mut cmd = vec!["-c".into(), SCRIPT.into(), "mcc-export".into(), op.into()];
        cmd.extend(volumes.iter().map(|v| v.to_string()));
        let spec = ContainerSpec {
            name,
            image: image.into(),
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: Some(cmd),
            user: Some("0".into()),
            labels,
            no_network: true,
            mounts: vec![Mount::Volume {
                name: root.clone(),
                target: ROOT.into(),
                labels: Labels::new(),
                read_only: false,
            }],
            ..Default::default()
        };
        let ran = self.run_helper(&spec).await.map_err(|e| match e {
            // the export could not be mounted: say where and what
            Error::Engine { message, .. } if message.contains("mount") => Error::Failed(format!(
                "the engine at {} cannot mount it ({message}); every host of the cluster must \
                 be able to: for NFS, the server exports it to the host and the host has an \
                 NFS client",
                self.host
            )),
            e => e,
        });
        let removed = self.remove_engine_volume(&root).await;
        ran?;
        removed.map(drop)
    }

    /// Makes sure every volume on the export that `spec` mounts exists on
    /// this engine, its folder made (through a helper of the spec's image,
    /// which this engine has) before the engine first mounts it.
    pub(super) async fn ensure_export_volumes(&self, spec: &ContainerSpec) -> Result<()> {
        let mut missing: Vec<(&str, Export, &Labels)> = Vec::new();
        for m in &spec.mounts {
            let Mount::Volume { name, labels, .. } = m else {
                continue;
            };
            let Some(export) = export_of(labels)? else {
                continue;
            };
            if self.volume(name).await?.is_none() {
                missing.push((name, export, labels));
            }
        }
        let Some((_, export, labels)) = missing.first() else {
            return Ok(());
        };
        // one export per cluster: one helper makes every folder
        if let Some((v, other, _)) = missing.iter().find(|(_, e, _)| e != export) {
            return Err(Error::Failed(format!(
                "volume {v} is on the export {other}, not {export} as the others of {}",
                spec.name
            )));
        }
        let names: Vec<&str> = missing.iter().map(|(n, _, _)| *n).collect();
        self.make_export_dirs(export, &names, &spec.image, labels)
            .await?;
        for (name, export, labels) in &missing {
            self.export_volume(name, export, labels).await?;
        }
        Ok(())
    }

    /// The engine's volume `name` that mounts its folder of `export`.
    pub(super) async fn export_volume(
        &self,
        name: &str,
        export: &Export,
        labels: &Labels,
    ) -> Result<VolumeInfo> {
        self.new_volume(VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            driver: Some("local".into()),
            driver_opts: Some(export.volume_options(name)),
            ..Default::default()
        })
        .await
    }

    /// Creates volume `name` on `export` (its folder first), the helper's
    /// image named by its labels.
    pub(super) async fn create_export_volume(
        &self,
        name: &str,
        export: &Export,
        labels: &Labels,
    ) -> Result<VolumeInfo> {
        let image = helper_image(labels).ok_or_else(|| {
            Error::Failed(format!(
                "volume {name} on {export}: no image to make its folder with (label {})",
                labels::EXPORT_HELPER
            ))
        })?;
        self.make_export_dirs(export, &[name], image, labels)
            .await?;
        self.export_volume(name, export, labels).await
    }
}

/// A volume's name as one path component of mcc's own making.
fn check_volume_name(volume: &str) -> Result<()> {
    let ok = !volume.is_empty()
        && !volume.starts_with('.')
        && !volume.starts_with('-')
        && volume
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "volume name '{volume}' cannot be a folder of the shared export"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_become_folders_of_the_export() {
        check_volume_name("mcc-lab.home").unwrap();
        for bad in ["../x", "a/b", ".x", "", "-rf", "a b", "x\n"] {
            assert!(check_volume_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_helper_carries_its_cluster_and_never_the_export() {
        let of = Labels::from([
            (labels::CLUSTER.to_string(), "lab".to_string()),
            (labels::SCHEMA.to_string(), "3".to_string()),
            (labels::ROLE.to_string(), "data".to_string()),
            (labels::EXPORT.to_string(), "/srv/mcc".to_string()),
            (labels::EXPORT_HELPER.to_string(), "img".to_string()),
        ]);
        let l = helper_labels(&of);
        assert_eq!(l.len(), 3, "{l:?}");
        assert_eq!(l[labels::ROLE], labels::role::HELPER);
        assert_eq!(l[labels::CLUSTER], "lab");
    }
}
