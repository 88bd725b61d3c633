//! Volumes whose size is enforced, for an engine on this machine: an ext4
//! file system in an image file (`/var/lib/mcc/volumes/<name>.img`, in a
//! folder only root can use), attached to a loop device that the engine's
//! `local` driver mounts (`type=ext4`, `device=/dev/loopN`; ENGINE-FACTS:
//! `o=loop` does not work, tmpfs loses data, `--storage-opt size` needs
//! xfs). Every tool is run with arguments, never through a shell.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The smallest size an ext4 file system is made with here.
pub const MIN_SIZE: u64 = 1 << 20;

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Failed(format!("{what}: {e}"))
}

/// The folder of the image files, made if missing.
pub fn dir() -> Result<PathBuf> {
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Invalid(
            "sized volumes need root (they are ext4 file systems on loop devices): run mcc as \
             root"
                .into(),
        ));
    }
    crate::cluster::lock::private_dir(Path::new("/var/lib"), &["mcc", "volumes"])
}

pub fn image_path(name: &str) -> Result<PathBuf> {
    Ok(dir()?.join(format!("{name}.img")))
}

fn run(tool: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| failed(&format!("running {tool} (is it installed?)"), e))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Makes the image file of `size` bytes with an ext4 file system in it and
/// attaches it; the loop device. Nothing is left behind on failure.
pub fn make(name: &str, size: u64) -> Result<String> {
    if size < MIN_SIZE {
        return Err(Error::Invalid(format!(
            "--size {size}: a volume needs at least 1M (1048576 bytes)"
        )));
    }
    let path = image_path(name)?;
    // a new file, never one that is there (a link, say)
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| failed(&format!("making {}", path.display()), e))?;
    let made = (|| {
        file.set_len(size)
            .map_err(|e| failed(&format!("sizing {}", path.display()), e))?;
        drop(file);
        let p = path.to_string_lossy();
        // no blocks reserved for root: the volume holds what its size says
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", "-E", "root_owner=0:0", &p],
        )?;
        run("losetup", &["--find", "--show", &p])
    })();
    match made {
        Ok(dev) if dev.starts_with("/dev/loop") => Ok(dev),
        Ok(dev) => {
            release(name);
            Err(Error::Failed(format!(
                "losetup gave '{dev}', not a loop device"
            )))
        }
        Err(e) => {
            release(name);
            Err(e)
        }
    }
}

/// The loop devices that hold `file` now.
pub fn devices_of(file: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let want = file.to_string_lossy().to_string();
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let backing = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            (name.starts_with("loop") && backing.trim() == want).then(|| format!("/dev/{name}"))
        })
        .collect()
}

/// Detaches the loop devices of a volume's file and removes it; quiet
/// about what is already gone.
pub fn release(name: &str) {
    let Ok(path) = image_path(name) else {
        return;
    };
    for dev in devices_of(&path) {
        let _ = run("losetup", &["-d", &dev]);
    }
    let _ = std::fs::remove_file(&path);
}
