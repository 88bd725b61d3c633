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
    crate::lock::private_dir(Path::new("/var/lib"), &["mcc", "volumes"])
}

pub fn image_path(name: &str) -> Result<PathBuf> {
    Ok(dir()?.join(format!("{name}.img")))
}

/// The marker that a container has used the volume (`<name>.used`, beside
/// its image, so only root can make it): an ephemeral volume goes once it
/// has been used and has no container left, never before its first.
fn used_path(name: &str) -> Result<PathBuf> {
    Ok(dir()?.join(format!("{name}.used")))
}

/// Marks volume `name` as used by a container (again: no change).
pub fn mark_used(name: &str) -> Result<()> {
    let path = used_path(name)?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map(drop)
        .map_err(|e| {
            failed(
                &format!("marking volume {name} used ({})", path.display()),
                e,
            )
        })
}

/// Whether a container has used volume `name` (its marker is a file).
pub fn was_used(name: &str) -> Result<bool> {
    let path = used_path(name)?;
    match std::fs::symlink_metadata(&path) {
        Ok(md) => Ok(md.file_type().is_file()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(failed(&format!("reading {}", path.display()), e)),
    }
}

/// The file a loop device reads, as the kernel says (`None`: no such
/// device or none attached; a file removed since ends in " (deleted)").
fn backing_file(device: &str) -> Option<String> {
    let dev = device.strip_prefix("/dev/")?;
    if !dev.starts_with("loop") || dev.contains('/') || dev.contains("..") {
        return None;
    }
    let text = std::fs::read_to_string(Path::new("/sys/block").join(dev).join("loop/backing_file"))
        .ok()?;
    Some(text.trim_end_matches('\n').to_string())
}

/// Checks that volume `name`'s image file is mcc's: a regular file, not a
/// link, owned by root, written by no one else, with one name.
fn check_image(name: &str, path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(format!(
                "volume {name}: its image file {} is gone, and its data with it; delete the \
                 volume (mcc volume delete {name})",
                path.display()
            )),
            _ => failed(
                &format!(
                    "volume {name}: opening its image file {} (it must be a file, not a link)",
                    path.display()
                ),
                e,
            ),
        })?;
    let md = file
        .metadata()
        .map_err(|e| failed(&format!("reading {}", path.display()), e))?;
    let euid = rustix::process::geteuid().as_raw();
    if !md.file_type().is_file()
        || (md.uid() != 0 && md.uid() != euid)
        || md.mode() & 0o022 != 0
        || md.nlink() != 1
    {
        return Err(Error::Failed(format!(
            "volume {name}: {} is not the image file mcc made (a regular file of root's, \
             written by no one else, with one name); mcc will not attach it: look at what \
             replaced it, or delete the volume (mcc volume delete {name})",
            path.display()
        )));
    }
    Ok(())
}

/// Makes sure a loop device holds volume `name`'s image file, for a
/// volume whose engine record names `device` (a host restart detaches
/// every loop device, and the number may hold another file since).
/// `None` when `device` holds it; else the device that holds it now: one
/// already attached to the file, or a new one.
pub fn reattach(name: &str, device: Option<&str>) -> Result<Option<String>> {
    let path = image_path(name)?;
    check_image(name, &path)?;
    let want = path.to_string_lossy().to_string();
    if device.and_then(backing_file).as_deref() == Some(want.as_str()) {
        return Ok(None);
    }
    if let Some(dev) = devices_of(&path).into_iter().next() {
        return Ok(Some(dev));
    }
    attach(&want).map(Some)
}

/// Gives the root folder of volume `name`'s file system, on loop device
/// `device`, to `uid:gid`: for a fresh volume first mounted for a
/// `--user`, so that user can write it. Done on the unmounted file system
/// by inode number (debugfs on inode 2), so no path, and no link a
/// container could have made, is followed; the device is held
/// exclusively meanwhile, so the engine cannot mount it half-way (and a
/// device mounted already is refused).
pub fn own_root(name: &str, device: &str, uid: u32, gid: u32) -> Result<()> {
    let path = image_path(name)?;
    check_image(name, &path)?;
    if backing_file(device).as_deref() != Some(path.to_string_lossy().as_ref()) {
        return Err(Error::Failed(format!(
            "volume {name}: {device} does not hold its image file; mcc will not change it"
        )));
    }
    let _exclusive = OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::EXCL | rustix::fs::OFlags::NOFOLLOW).bits() as i32)
        .open(device)
        .map_err(|e| {
            failed(
                &format!("volume {name}: holding {device} to give its root folder to {uid}:{gid} (is it mounted?)"),
                e,
            )
        })?;
    for (field, id) in [("uid", uid), ("gid", gid)] {
        run(
            "debugfs",
            &[
                "-w",
                "-R",
                &format!("set_inode_field <2> {field} {id}"),
                device,
            ],
        )?;
    }
    // debugfs says little when it fails: read the owner back
    let stat = run("debugfs", &["-R", "stat <2>", device])?;
    let want = format!("User: {uid:>5}   Group: {gid:>5}");
    let got = stat
        .lines()
        .find(|l| l.trim_start().starts_with("User:"))
        .unwrap_or("");
    let owner: Vec<&str> = got.split_whitespace().collect();
    if owner.get(1) != Some(&uid.to_string().as_str())
        || owner.get(3) != Some(&gid.to_string().as_str())
    {
        return Err(Error::Failed(format!(
            "volume {name}: its root folder should now be {want}, but debugfs says '{}'",
            got.trim()
        )));
    }
    Ok(())
}

/// Attaches `file` to a free loop device; the device.
fn attach(file: &str) -> Result<String> {
    let dev = run("losetup", &["--find", "--show", file])?;
    if !dev.starts_with("/dev/loop") {
        return Err(Error::Failed(format!(
            "losetup gave '{dev}', not a loop device"
        )));
    }
    Ok(dev)
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
    // a marker of an earlier volume of this name is not this one's
    let _ = std::fs::remove_file(used_path(name)?);
    // a new file, never one that is there (a link, say)
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| failed(&format!("making {}", path.display()), e))?;
    let made = (|| {
        let p = path.to_string_lossy();
        // The file system's own journal, inode tables and group
        // descriptors take some 15% of a small one (a 64M file held 53
        // MiB), and the kernel keeps 2% of the blocks (at most 4096) from
        // data for its own metadata: the file is made larger until what
        // data can take is what the user asked for. No blocks reserved
        // for root either. The overhead grows a little with the file, so
        // this converges in two or three rounds.
        let mut file_size = size;
        for _ in 0..6 {
            file.set_len(file_size)
                .map_err(|e| failed(&format!("sizing {}", path.display()), e))?;
            run(
                "mkfs.ext4",
                &["-q", "-F", "-m", "0", "-E", "root_owner=0:0", &p],
            )?;
            let (free, total, block) = blocks(&p)?;
            let want = size + (total / 50).min(4096) * block + slack(size);
            if free * block >= want {
                drop(file);
                return attach(&p);
            }
            file_size += (want - free * block).div_ceil(64 << 10) << 16;
        }
        Err(Error::Failed(format!(
            "making volume {name}: a file system of {file_size} bytes still has less than \
             {size} bytes free"
        )))
    })();
    if made.is_err() {
        release(name);
    }
    made
}

/// What a file needs beyond its bytes as data (its extent blocks), kept
/// free on top of the size asked: 1/512 of it, at least 64 KiB.
fn slack(size: u64) -> u64 {
    (size / 512).max(64 << 10)
}

/// The free blocks, all blocks and the block size of the ext4 file
/// system of `image`, as its superblock says (`dumpe2fs -h`).
fn blocks(image: &str) -> Result<(u64, u64, u64)> {
    let text = run("dumpe2fs", &["-h", image])?;
    let field = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    match (
        field("Free blocks:"),
        field("Block count:"),
        field("Block size:"),
    ) {
        (Some(free), Some(total), Some(bs)) => Ok((free, total, bs)),
        _ => Err(Error::Failed(format!(
            "dumpe2fs -h {image} did not say the free blocks, block count and block size"
        ))),
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
            let dev = format!("/dev/{}", e.file_name().to_string_lossy());
            (backing_file(&dev)? == want).then_some(dev)
        })
        .collect()
}

/// Detaches the loop devices of a volume's file and removes it and its
/// marker; quiet about what is already gone (no device after a host
/// restart, say).
pub fn release(name: &str) {
    let Ok(path) = image_path(name) else {
        return;
    };
    for dev in devices_of(&path) {
        let _ = run("losetup", &["-d", &dev]);
    }
    let _ = std::fs::remove_file(&path);
    if let Ok(used) = used_path(name) {
        let _ = std::fs::remove_file(used);
    }
}
