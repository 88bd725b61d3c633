//! Packing a context folder into a tar archive.
//!
//! A symbolic link inside the folder may point to another file or folder
//! of the folder (a shared `lib/`, say): its target is packed in its
//! place, so it works on the nodes as it does here. A link that leads
//! outside the folder is refused: mcc runs as root, and packing whatever a
//! link names would ship files the folder's owner may not read (an
//! `/etc/shadow` link in a folder another user wrote) into every node.
//! Links are resolved once, against the folder's real path; a loop of
//! links is refused too.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What a context folder holds, once checked: its real path and which
/// phases beyond the creation ones it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    pub path: PathBuf,
    pub on_change: bool,
    pub on_start: bool,
}

/// Checks a context folder given by the user: a readable directory with
/// at least one phase folder.
pub fn check_folder(dir: &Path) -> Result<Folder, Error> {
    inspect_folder(dir).map_err(Error::Invalid)
}

fn inspect_folder(dir: &Path) -> Result<Folder, String> {
    let meta = fs::metadata(dir)
        .map_err(|e| format!("context folder '{}' cannot be read: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "context folder '{}' is not a directory; give a folder holding all/, frontend/ \
             and/or workers/ with scripts",
            dir.display()
        ));
    }
    let known = ["all", "frontend", "workers", "on-change", "on-start"];
    if !known.iter().any(|k| dir.join(k).is_dir()) {
        return Err(format!(
            "context folder '{}' has none of all/, frontend/, workers/, on-start/, on-change/: put the scripts for \
             every node in all/, the front-end's in frontend/ and the workers' in workers/",
            dir.display()
        ));
    }
    let path =
        fs::canonicalize(dir).map_err(|e| format!("context folder '{}': {e}", dir.display()))?;
    Ok(Folder {
        on_change: path.join("on-change").is_dir(),
        on_start: path.join("on-start").is_dir(),
        path,
    })
}

/// Appends the folder `root` under `prefix` in the archive.
pub fn append_context(b: &mut tar::Builder<Vec<u8>>, root: &Path, prefix: &str) -> Result<()> {
    append_context_within(b, root, prefix, u64::MAX)
}

/// [`append_context`], refusing a folder whose files hold more than
/// `max_bytes` (to be sent to the daemon, which takes no more), before
/// reading the file that goes over.
pub fn append_context_within(
    b: &mut tar::Builder<Vec<u8>>,
    root: &Path,
    prefix: &str,
    max_bytes: u64,
) -> Result<()> {
    let real_root = fs::canonicalize(root).map_err(|e| {
        Error::Invalid(format!(
            "context folder '{}': {e}; give a folder that exists",
            root.display()
        ))
    })?;
    let mut packer = Packer {
        root: root.to_path_buf(),
        real_root: real_root.clone(),
        open_dirs: HashSet::new(),
        left: max_bytes,
        max_bytes,
    };
    packer.dir(b, &real_root, Path::new(prefix))
}

struct Packer {
    root: PathBuf,
    real_root: PathBuf,
    /// Real paths of the folders being packed now (a link to one of them
    /// would recurse forever).
    open_dirs: HashSet<PathBuf>,
    /// Bytes of files that may still be packed, of `max_bytes`.
    left: u64,
    max_bytes: u64,
}

impl Packer {
    fn shown(&self, real: &Path) -> String {
        match real.strip_prefix(&self.real_root) {
            Ok(rel) => self.root.join(rel).display().to_string(),
            Err(_) => real.display().to_string(),
        }
    }

    fn io(&self, path: &Path, e: std::io::Error) -> Error {
        Error::Failed(format!(
            "packing context folder '{}': {}: {e}",
            self.root.display(),
            self.shown(path)
        ))
    }

    fn dir(&mut self, b: &mut tar::Builder<Vec<u8>>, real: &Path, name: &Path) -> Result<()> {
        if !self.open_dirs.insert(real.to_path_buf()) {
            return Err(Error::Invalid(format!(
                "context folder '{}': {} is a link back into a folder that contains it; \
                 remove the link",
                self.root.display(),
                name.display()
            )));
        }
        let meta = fs::metadata(real).map_err(|e| self.io(real, e))?;
        super::append_dir(b, &name.to_string_lossy(), meta_mode(&meta, 0o755))
            .map_err(|e| self.io(real, e))?;
        let mut entries: Vec<_> = fs::read_dir(real)
            .map_err(|e| self.io(real, e))?
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| self.io(real, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let inner = name.join(entry.file_name());
            let lmeta = fs::symlink_metadata(&path).map_err(|e| self.io(&path, e))?;
            let target = if lmeta.file_type().is_symlink() {
                self.resolve_link(&path, &inner)?
            } else {
                path
            };
            let meta = fs::metadata(&target).map_err(|e| self.io(&target, e))?;
            if meta.is_dir() {
                self.dir(b, &target, &inner)?;
            } else if meta.is_file() {
                self.left = self.left.checked_sub(meta.len()).ok_or_else(|| {
                    Error::Invalid(format!(
                        "context folder '{}': more than {}, the most a context folder may hold \
                         when it is sent to mcc serve; keep big files out of it (in a shared \
                         device, or fetched by a script)",
                        self.root.display(),
                        crate::model::size::human(self.max_bytes)
                    ))
                })?;
                let data = fs::read(&target).map_err(|e| self.io(&target, e))?;
                super::append_file(b, &inner.to_string_lossy(), &data, meta_mode(&meta, 0o644))
                    .map_err(|e| self.io(&target, e))?;
            } else {
                return Err(Error::Invalid(format!(
                    "context folder '{}': {} is neither a file nor a folder (a device, socket \
                     or pipe); remove it",
                    self.root.display(),
                    inner.display()
                )));
            }
        }
        self.open_dirs.remove(real);
        Ok(())
    }

    /// The real path a link inside the folder leads to, which must be
    /// inside the folder too.
    fn resolve_link(&self, link: &Path, inner: &Path) -> Result<PathBuf> {
        let shown_target = fs::read_link(link)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        let real = fs::canonicalize(link).map_err(|e| {
            Error::Invalid(format!(
                "context folder '{}': link {} -> {shown_target} leads nowhere ({e}); fix or \
                 remove it",
                self.root.display(),
                inner.display()
            ))
        })?;
        if !real.starts_with(&self.real_root) {
            return Err(Error::Invalid(format!(
                "context folder '{}': link {} -> {shown_target} points outside the folder; mcc \
                 ships only what is inside it: copy the file in instead",
                self.root.display(),
                inner.display()
            )));
        }
        Ok(real)
    }
}

fn meta_mode(meta: &fs::Metadata, default: u32) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode == 0 {
        default
    } else {
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mcc-pack-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("ctx/all")).unwrap();
        fs::create_dir_all(d.join("ctx/lib")).unwrap();
        fs::write(d.join("ctx/lib/common.sh"), "echo common\n").unwrap();
        fs::write(d.join("secret"), "outside\n").unwrap();
        d
    }

    fn names(bytes: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in tar::Archive::new(bytes).entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            out.push((p, text));
        }
        out
    }

    fn pack(dir: &Path) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        append_context(&mut b, &dir.join("ctx"), "context")?;
        Ok(b.into_inner().unwrap())
    }

    #[test]
    fn folders_are_checked() {
        let d = scratch("check");
        let e = check_folder(&d.join("nope")).unwrap_err().to_string();
        assert!(e.contains("cannot be read"), "{e}");
        let e = check_folder(&d.join("ctx/lib/common.sh"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a directory"), "{e}");
        let e = check_folder(&d.join("ctx/lib")).unwrap_err().to_string();
        assert!(e.contains("none of all/"), "{e}");
        fs::create_dir_all(d.join("ctx/on-start")).unwrap();
        let f = check_folder(&d.join("ctx")).unwrap();
        assert!(f.on_start && !f.on_change);
        assert_eq!(f.path, fs::canonicalize(d.join("ctx")).unwrap());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn links_inside_are_packed_as_their_targets() {
        let d = scratch("inside");
        symlink("../lib/common.sh", d.join("ctx/all/10-common")).unwrap();
        symlink("lib", d.join("ctx/also-lib")).unwrap();
        let entries = names(&pack(&d).unwrap());
        assert!(entries
            .iter()
            .any(|(p, t)| p == "context/all/10-common" && t == "echo common\n"));
        assert!(entries
            .iter()
            .any(|(p, t)| p == "context/also-lib/common.sh" && t == "echo common\n"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn links_outside_are_refused() {
        let d = scratch("outside");
        symlink(d.join("secret"), d.join("ctx/all/10-steal")).unwrap();
        let e = pack(&d).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
        let text = e.to_string();
        assert!(text.contains("points outside the folder"), "{text}");
        assert!(text.contains("all/10-steal"), "{text}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn link_to_root_is_refused() {
        let d = scratch("root");
        symlink("/", d.join("ctx/rootfs")).unwrap();
        assert!(pack(&d).unwrap_err().to_string().contains("points outside"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn loops_and_dangling_links_are_refused() {
        let d = scratch("loop");
        symlink("..", d.join("ctx/lib/up")).unwrap();
        let e = pack(&d).unwrap_err().to_string();
        assert!(e.contains("link back into a folder"), "{e}");
        fs::remove_file(d.join("ctx/lib/up")).unwrap();
        symlink("nothing-here", d.join("ctx/all/10-gone")).unwrap();
        let e = pack(&d).unwrap_err().to_string();
        assert!(e.contains("leads nowhere"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
