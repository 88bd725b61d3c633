//! Volumes whose data lives in a folder every host of a cluster shares
//! (a cluster over several hosts: the volume's `labels::EXPORT` names the
//! folder). Each engine gets a volume of the `local` driver that binds
//! `<export>/mcc-volumes/<volume>`: the same path, so the same files, on
//! every host, under the volume's own name and labels (so `list`, `delete`
//! and `gc` find it on each engine). The folder is made here before an
//! engine mounts it: `mcc-volumes` private to root (0700, no link), each
//! volume's folder 0755 as the engine's own volumes are.

#[allow(unused_imports)]
use super::*;

use crate::model::placement::{volume_dir, EXPORT_SUBDIR};

/// The shared folder a volume's labels put its data in, if any.
pub(super) fn export_of(labels: &Labels) -> Option<&str> {
    labels.get(labels::EXPORT).map(String::as_str)
}

/// The folder of `volume` under `export`, made if missing (no link
/// followed); its path.
pub(super) fn prepare(export: &str, volume: &str) -> Result<String> {
    check_volume_name(volume)?;
    let base =
        crate::lock::private_dir(std::path::Path::new(export), &[EXPORT_SUBDIR]).map_err(|e| {
            Error::Invalid(format!(
                "the shared folder {export} (--shared-from) cannot hold the cluster's volumes: \
                 {e}"
            ))
        })?;
    let dir = base.join(volume);
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::Failed(format!(
                "making {} for volume {volume}: {e}",
                dir.display()
            )))
        }
    }
    let md = std::fs::symlink_metadata(&dir)
        .map_err(|e| Error::Failed(format!("{}: {e}", dir.display())))?;
    if !md.file_type().is_dir() {
        return Err(Error::Failed(format!(
            "{} is not a folder (a link?); mcc keeps volume {volume} there and follows no \
             link: remove it",
            dir.display()
        )));
    }
    Ok(volume_dir(export, volume))
}

/// The `local` driver's options that bind `dir`.
pub(super) fn driver_options(dir: &str) -> HashMap<String, String> {
    HashMap::from([
        ("type".to_string(), "none".to_string()),
        ("o".to_string(), "bind".to_string()),
        ("device".to_string(), dir.to_string()),
    ])
}

/// Removes what `volume` kept under `export` (once its engines' volumes
/// are gone); nothing when it is gone already. Links in it are removed,
/// never followed.
pub(super) fn remove_data(export: &str, volume: &str) -> Result<()> {
    check_volume_name(volume)?;
    let dir = std::path::PathBuf::from(volume_dir(export, volume));
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Failed(format!("{}: {e}", dir.display()))),
        Ok(md) if !md.file_type().is_dir() => {
            return Err(Error::Failed(format!(
                "{} is not a folder; left alone",
                dir.display()
            )))
        }
        Ok(_) => {}
    }
    // std's remove_dir_all opens each folder without following links
    // (and removes a link as a link)
    std::fs::remove_dir_all(&dir)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| Error::Failed(format!("removing {}: {e}", dir.display())))
}

/// A volume's name as one path component of mcc's own making.
fn check_volume_name(volume: &str) -> Result<()> {
    let ok = !volume.is_empty()
        && !volume.starts_with('.')
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
    fn a_volume_is_a_folder_of_the_export_and_its_removal_follows_no_link() {
        let root = std::env::temp_dir().join(format!("mcc-export-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let export = root.to_str().unwrap().to_string();
        let dir = prepare(&export, "lab-home").unwrap();
        assert_eq!(dir, format!("{export}/mcc-volumes/lab-home"));
        // a link planted in the volume (as a node could) to a folder
        // outside it: removal takes the link, not what it points to
        let outside = root.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, format!("{dir}/link")).unwrap();
        remove_data(&export, "lab-home").unwrap();
        assert!(!std::path::Path::new(&dir).exists());
        assert!(outside.join("keep").exists());
        remove_data(&export, "lab-home").unwrap();
        for bad in ["../x", "a/b", ".x", ""] {
            assert!(prepare(&export, bad).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
