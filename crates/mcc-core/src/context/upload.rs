//! A context folder sent over the network: packed by the client from a
//! folder it checked, unpacked by the daemon into a folder of its own.
//!
//! The archive is untrusted on the daemon's side: only plain folders and
//! regular files under plain relative names are taken (no links, devices,
//! `..` or absolute paths), within a size limit, into a fresh folder.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::pack::{append_context_within, check_folder};
use crate::error::{Error, Result};

/// The most an uploaded context folder may hold, unpacked.
pub const MAX_UPLOAD: u64 = 64 << 20;

/// The largest archive a client sends: [`MAX_UPLOAD`] of files and their
/// tar headers. Base64 in its JSON, it stays within the daemon's limit on
/// a create's body (96 MiB).
pub const MAX_ARCHIVE: usize = 70 << 20;

/// The folder `dir`, checked as `create` checks it, as a tar archive
/// whose entries are relative to the folder. A folder holding more than
/// [`MAX_UPLOAD`] is refused as it is packed (before it fills the
/// memory), naming the limit.
pub fn pack_folder(dir: &Path) -> Result<Vec<u8>> {
    let folder = check_folder(dir)?;
    let mut b = tar::Builder::new(Vec::new());
    append_context_within(&mut b, &folder.path, ".", MAX_UPLOAD)?;
    let tar = b
        .into_inner()
        .map_err(|e| Error::Failed(format!("packing context folder: {e}")))?;
    if tar.len() > MAX_ARCHIVE {
        return Err(Error::Invalid(format!(
            "context folder '{}': its archive is over {} MiB (many small files); send fewer \
             files",
            dir.display(),
            MAX_ARCHIVE >> 20
        )));
    }
    Ok(tar)
}

/// Unpacks an uploaded archive into `dest`, a new empty folder.
pub fn unpack_folder(archive: &[u8], dest: &Path) -> Result<()> {
    let bad = |why: String| Error::Invalid(format!("context archive: {why}"));
    let mut total = 0u64;
    let mut a = tar::Archive::new(archive);
    for entry in a.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let raw = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let rel = plain_relative(&raw).ok_or_else(|| {
            bad(format!(
                "entry '{}' is not a plain relative path",
                raw.display()
            ))
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&rel);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(|e| bad(format!("{}: {e}", rel.display())))?;
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "entry '{}' is a {kind:?}; only folders and regular files are taken",
                rel.display()
            )));
        }
        total += entry.size();
        if total > MAX_UPLOAD {
            return Err(bad(format!(
                "more than {} MiB; keep big files out of the context folder",
                MAX_UPLOAD >> 20
            )));
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| bad(format!("{}: {e}", rel.display())))?;
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
        // create_new with O_NOFOLLOW: nothing in dest is replaced or followed
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .mode(mode)
            .open(&target)
            .map_err(|e| bad(format!("{}: {e}", rel.display())))?;
        let mut limited = (&mut entry).take(MAX_UPLOAD);
        std::io::copy(&mut limited, &mut file)
            .map_err(|e| bad(format!("{}: {e}", rel.display())))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))
            .map_err(|e| bad(format!("{}: {e}", rel.display())))?;
    }
    Ok(())
}

/// `p` when it is made only of normal components (`./` allowed).
fn plain_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            // set_path refuses "..": write the name bytes directly
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn round_trip_keeps_scripts_executable() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("all")).unwrap();
        let script = src.path().join("all/10-hello");
        fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let tar = pack_folder(src.path()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack_folder(&tar, dest.path()).unwrap();
        let got = dest.path().join("all/10-hello");
        assert_eq!(fs::read_to_string(&got).unwrap(), "#!/bin/sh\necho hi\n");
        assert_eq!(
            fs::metadata(&got).unwrap().permissions().mode() & 0o777,
            0o755
        );
        check_folder(dest.path()).unwrap();
    }

    #[test]
    fn hostile_archives_are_refused() {
        use tar::EntryType::*;
        let cases: Vec<Vec<u8>> = vec![
            archive(&[("../escape", Regular, b"x", None)]),
            archive(&[("/etc/passwd", Regular, b"x", None)]),
            archive(&[("all/link", Symlink, b"", Some("/etc/shadow"))]),
            archive(&[("all/hard", Link, b"", Some("/etc/shadow"))]),
            archive(&[("all/dev", Char, b"", None)]),
            // a file then a second entry of the same name: never overwritten
            archive(&[
                ("all/x", Regular, b"1", None),
                ("all/x", Regular, b"2", None),
            ]),
        ];
        for (i, tar) in cases.iter().enumerate() {
            let dest = tempfile::tempdir().unwrap();
            let err = unpack_folder(tar, dest.path()).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "case {i}: {err}");
            assert!(!dest.path().parent().unwrap().join("escape").exists());
        }
    }
}
