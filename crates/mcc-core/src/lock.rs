//! Advisory locks between mcc processes on one host.
//!
//! The engine has no transaction spanning "list the networks, pick a free
//! subnet, create the network", nor "read the members, add node07, write
//! the hosts file". Two mcc processes doing either at once would pick the
//! same subnet or the same node number. A lock file per purpose serializes
//! them; it is released when the guard drops or the process dies (the
//! kernel drops the file lock). Processes on other hosts sharing a remote
//! engine are not covered: for them the engine's own refusals (overlapping
//! pool, name conflict) remain, and rollbacks only touch what their own
//! process made. With hosts listed (a swarm), each lock is also taken in
//! the swarm's store (`provider/docker/lease.rs`), which every machine sees.
//!
//! mcc often runs as root, so its lock files are a way in if anyone else
//! can name them. They used to live in a world-writable `/tmp/mcc-locks`
//! and were opened following links and made mode 0666: a user's link
//! `networks.lock -> /etc/shadow` had root make that file writable by all.
//! Hence:
//!
//! - The lock directory is one that only its owner can create entries in:
//!   `/run/mcc/locks` for root, `$XDG_RUNTIME_DIR/mcc/locks` for other
//!   users, or `$MCC_LOCK_DIR`. mcc makes it mode 0700; found already
//!   there, it must be a real directory (not a link) owned by the
//!   effective user and not writable by group or others, and every folder
//!   above it must be owned by root or that user and not writable by
//!   others (unless sticky, as /tmp): otherwise someone else could swap
//!   its entries. mcc refuses such a directory rather than repair it.
//! - A lock file is opened with `O_NOFOLLOW` (a link there is refused,
//!   never followed, also a dangling one, which `O_CREAT` would otherwise
//!   create), made mode 0600, then checked on the open descriptor: a
//!   regular file of the effective user, with one name and writable by no
//!   one else. Nothing is ever chmod'ed.
//! - A lock that cannot be taken safely is an error that says why, never
//!   a silent "go on unlocked".
//!
//! Users other than root thus have locks of their own: their mcc runs do
//! not serialize with root's (or each other's) through these files, only
//! through the engine's refusals, as for other hosts.

use std::ffi::OsString;
use std::fs::{DirBuilder, File, Metadata, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::OFlags;

use crate::error::{Error, Result};

/// How long [`HostLock::acquire`] waits for another mcc by default.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The variable that chooses another lock directory.
pub const LOCK_DIR_ENV: &str = "MCC_LOCK_DIR";

/// Waiting longer than this is reported through `on_wait`.
const WAIT_NOTICE: Duration = Duration::from_secs(1);

/// How often a waiting [`HostLock::acquire`] tries again.
const POLL: Duration = Duration::from_millis(25);

/// Holds a lock until dropped.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
    path: PathBuf,
}

impl HostLock {
    /// Waits for the lock named `name` (at most `timeout`). `what`
    /// describes what its holder does, for messages ("picking a subnet",
    /// "changing cluster 'lab'"). After a second of waiting, `on_wait` is
    /// called once with a message saying what it waits for.
    pub async fn acquire(
        name: &str,
        what: &str,
        timeout: Duration,
        on_wait: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<HostLock> {
        acquire_in(&lock_dir()?, name, what, timeout, on_wait).await
    }

    /// Takes the lock named `name` if it is free; `Ok(None)` when another
    /// process holds it.
    pub fn try_acquire(name: &str, what: &str) -> Result<Option<HostLock>> {
        try_acquire_in(&lock_dir()?, name, what)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The directory of this user's lock files, made if missing and checked
/// to be writable by this user alone (see the module's documentation).
pub fn lock_dir() -> Result<PathBuf> {
    resolve_lock_dir(
        std::env::var_os(LOCK_DIR_ENV),
        std::env::var_os("XDG_RUNTIME_DIR"),
        euid(),
    )
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn failed(path: &Path, cause: impl std::fmt::Display) -> Error {
    Error::Failed(format!(
        "cannot use {} for mcc's own files: {cause}",
        path.display()
    ))
}

/// Where the lock directory is for `euid`, given `$MCC_LOCK_DIR` and
/// `$XDG_RUNTIME_DIR`: a trusted base folder and the folders to make below it.
fn resolve_lock_dir(over: Option<OsString>, xdg: Option<OsString>, euid: u32) -> Result<PathBuf> {
    let over = over.filter(|v| !v.is_empty()).map(PathBuf::from);
    let xdg = xdg.filter(|v| !v.is_empty()).map(PathBuf::from);
    let (base, below): (PathBuf, Vec<OsString>) = if let Some(dir) = over {
        let source = format!("{LOCK_DIR_ENV}={}", dir.display());
        match (dir.is_absolute(), dir.parent(), dir.file_name()) {
            (true, Some(parent), Some(last)) => (parent.to_path_buf(), vec![last.to_os_string()]),
            _ => {
                return Err(Error::Failed(format!(
                    "{source}: not a usable place for mcc's lock files; set it to the absolute \
                     path of a folder only you can write to (mcc makes it, mode 0700), or unset \
                     it"
                )))
            }
        }
    } else if euid == 0 {
        (PathBuf::from("/run"), vec!["mcc".into(), "locks".into()])
    } else if let Some(x) = xdg.filter(|x| x.is_absolute()) {
        (x, vec!["mcc".into(), "locks".into()])
    } else {
        return Err(Error::Failed(format!(
            "no place for mcc's lock files: XDG_RUNTIME_DIR is not set (a login session sets \
             it to /run/user/{euid}); set it, or set {LOCK_DIR_ENV} to a folder only you can \
             write to"
        )));
    };
    private_dir_of(&base, &below, euid)
}

/// The text of `path` when it is a private file of this user: opened
/// without following a link, a regular file this user owns, with no group
/// or other permission bits. `Ok(None)`: there is no such file;
/// `Err(why)`: it is there and not trusted, or cannot be read.
pub fn read_private_file(path: &Path) -> std::result::Result<Option<String>, String> {
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let m = f.metadata().map_err(|e| e.to_string())?;
    if !m.is_file() || m.uid() != euid() || m.mode() & 0o077 != 0 {
        return Err(format!(
            "not a private file of this user (mode {:o}, uid {}); not trusted",
            m.mode() & 0o777,
            m.uid()
        ));
    }
    let mut text = String::new();
    io::Read::read_to_string(&mut f, &mut text).map_err(|e| e.to_string())?;
    Ok(Some(text))
}

/// `base/below…`, each folder below `base` made 0700 if missing; `base`
/// and what is above it belong to root or this user and cannot be written
/// by others (unless sticky), and each folder made is this user's alone
/// and no link. For files of mcc's that no one else may swap.
pub fn private_dir(base: &Path, below: &[&str]) -> Result<PathBuf> {
    let below: Vec<OsString> = below.iter().map(OsString::from).collect();
    private_dir_of(base, &below, euid())
}

fn private_dir_of(base: &Path, below: &[OsString], euid: u32) -> Result<PathBuf> {
    let base = base
        .canonicalize()
        .map_err(|e| failed(base, format_args!("{e}")))?;
    check_ancestors(&base, euid)?;
    let mut dir = base;
    for part in below {
        dir.push(part);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(&dir, format_args!("cannot make it: {e}"))),
        }
        check_private_dir(&dir, euid)?;
    }
    Ok(dir)
}

/// `dir` (without links) and every folder above it are owned by root or
/// `euid`, and none can be written by others unless it is sticky.
fn check_ancestors(dir: &Path, euid: u32) -> Result<()> {
    for a in dir.ancestors() {
        let md = std::fs::symlink_metadata(a).map_err(|e| failed(dir, format_args!("{e}")))?;
        let (uid, mode) = (md.uid(), md.mode());
        if uid != 0 && uid != euid {
            return Err(failed(
                dir,
                format_args!(
                    "{} belongs to uid {uid}, who could replace what is below it; choose a \
                     folder that belongs to you or root (set {LOCK_DIR_ENV})",
                    a.display()
                ),
            ));
        }
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(failed(
                dir,
                format_args!(
                    "{} can be written by others (mode {:o}) and is not sticky, so they could \
                     replace what is below it; run `chmod go-w {}` or choose another folder \
                     (set {LOCK_DIR_ENV})",
                    a.display(),
                    mode & 0o7777,
                    a.display()
                ),
            ));
        }
    }
    Ok(())
}

/// `dir` is a real directory of `euid` that no one else can write to.
fn check_private_dir(dir: &Path, euid: u32) -> Result<()> {
    let md = std::fs::symlink_metadata(dir).map_err(|e| failed(dir, format_args!("{e}")))?;
    let shown = dir.display();
    if md.file_type().is_symlink() {
        return Err(failed(
            dir,
            format_args!(
                "it is a symbolic link, and mcc follows none for its locks; if mcc's own \
                 folder was replaced by it, remove it (`rm {shown}`) and run again, or set \
                 {LOCK_DIR_ENV} to a real folder"
            ),
        ));
    }
    if !md.is_dir() {
        return Err(failed(
            dir,
            format_args!(
                "it is not a directory; if it is a stray file, remove it (`rm {shown}`) and \
                 run again, or set {LOCK_DIR_ENV} to a folder"
            ),
        ));
    }
    if md.uid() != euid {
        return Err(failed(
            dir,
            format_args!(
                "it belongs to uid {}, not to you (uid {euid}), so its owner could swap the \
                 lock files; if it is a folder only for mcc's locks, remove it \
                 (`rm -r {shown}`) and run again, or set {LOCK_DIR_ENV} to a folder of yours",
                md.uid()
            ),
        ));
    }
    if md.mode() & 0o022 != 0 {
        return Err(failed(
            dir,
            format_args!(
                "others can make entries in it (mode {:o}); if it is a folder only for mcc's \
                 locks, check what it holds and run `chmod 700 {shown}`, or set \
                 {LOCK_DIR_ENV} to a folder only you can write to",
                md.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Lock names become file names: letters, digits, '.', '_', '-', not
/// starting with '.' (no '/', no "..").
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "'{name}' is not a valid lock name (letters, digits, '.', '_' and '-' only)"
        )))
    }
}

/// Opens (or makes) the lock file `name` in `dir` without following a
/// link, and checks it is this user's alone.
fn open_lock(dir: &Path, name: &str, what: &str, euid: u32) -> Result<(File, PathBuf)> {
    check_name(name)?;
    let path = dir.join(format!("{name}.lock"));
    let refuse = |cause: String| {
        Error::Failed(format!(
            "cannot take the lock {} (for {what}): {cause}",
            path.display()
        ))
    };
    // O_NONBLOCK: a FIFO there must not hang the open (fstat refuses it)
    let flags = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(flags.bits() as i32)
        .open(&path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                refuse(format!(
                    "it is a symbolic link, and mcc follows none for its locks; remove it \
                     (`rm {}`) and find out who made it",
                    path.display()
                ))
            } else {
                refuse(e.to_string())
            }
        })?;
    let md: Metadata = file.metadata().map_err(|e| refuse(e.to_string()))?;
    let problem = if !md.is_file() {
        Some("it is not a regular file".to_string())
    } else if md.uid() != euid {
        Some(format!(
            "it belongs to uid {}, not to you (uid {euid})",
            md.uid()
        ))
    } else if md.mode() & 0o022 != 0 {
        Some(format!(
            "others can write to it (mode {:o})",
            md.mode() & 0o7777
        ))
    } else if md.nlink() != 1 {
        Some(format!("it has {} names (hard links)", md.nlink()))
    } else {
        None
    };
    match problem {
        Some(p) => Err(refuse(format!(
            "{p}; mcc changes nothing there: remove it (`rm {}`) and find out who made it",
            path.display()
        ))),
        None => Ok((file, path)),
    }
}

/// Whether the lock on `file` was taken.
fn try_lock(file: &File, path: &Path, what: &str) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(Error::Failed(format!(
            "cannot take the lock {} (for {what}): {e}",
            path.display()
        ))),
    }
}

fn try_acquire_in(dir: &Path, name: &str, what: &str) -> Result<Option<HostLock>> {
    let (file, path) = open_lock(dir, name, what, euid())?;
    Ok(try_lock(&file, &path, what)?.then_some(HostLock { _file: file, path }))
}

async fn acquire_in(
    dir: &Path,
    name: &str,
    what: &str,
    timeout: Duration,
    on_wait: &(dyn Fn(&str) + Send + Sync),
) -> Result<HostLock> {
    let (file, path) = open_lock(dir, name, what, euid())?;
    let started = Instant::now();
    let mut told = false;
    loop {
        if try_lock(&file, &path, what)? {
            return Ok(HostLock { _file: file, path });
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(Error::Failed(format!(
                "gave up after {} waiting for another mcc to finish {what} (lock {}); if that \
                 mcc is stuck, `fuser -v {}` shows the process holding the lock, and ending \
                 it releases the lock",
                human(timeout),
                path.display(),
                path.display()
            )));
        }
        if !told && waited >= WAIT_NOTICE {
            on_wait(&format!(
                "waiting for another mcc to finish {what} (lock {})",
                path.display()
            ));
            told = true;
        }
        tokio::time::sleep(POLL.min(timeout - waited)).await;
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// A private folder `<tmp>/mcc-lock-test-<tag>-<pid>`, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p =
                std::env::temp_dir().join(format!("mcc-lock-test-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .expect("a scratch folder");
            Scratch(p)
        }

        /// The lock directory `<scratch>/locks`, as `$MCC_LOCK_DIR` would give it.
        fn locks(&self) -> PathBuf {
            resolve_lock_dir(Some(self.0.join("locks").into()), None, euid()).expect("lock dir")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn chmod(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    fn quiet(_: &str) {}

    fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.expect_err("an error").to_string()
    }

    #[tokio::test]
    async fn one_holder_at_a_time() {
        let s = Scratch::new("one");
        let dir = Arc::new(s.locks());
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (dir, inside, peak) = (dir.clone(), inside.clone(), peak.clone());
                tokio::spawn(async move {
                    let _g = acquire_in(&dir, "networks", "testing", LOCK_TIMEOUT, &quiet)
                        .await
                        .expect("the lock");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn made_private_and_held_until_dropped() {
        let s = Scratch::new("private");
        let dir = s.locks();
        assert_eq!(mode(&dir), 0o700);
        let held = try_acquire_in(&dir, "cluster-lab", "testing")
            .unwrap()
            .expect("a free lock");
        assert_eq!(held.path(), dir.join("cluster-lab.lock"));
        assert_eq!(mode(held.path()) & 0o077, 0, "lock file mode");
        assert!(try_acquire_in(&dir, "cluster-lab", "testing")
            .unwrap()
            .is_none());
        drop(held);
        assert!(try_acquire_in(&dir, "cluster-lab", "testing")
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_link_at_the_lock_path_is_refused_and_its_target_untouched() {
        let s = Scratch::new("link");
        let dir = s.locks();
        let target = s.0.join("secret");
        std::fs::write(&target, "root only\n").unwrap();
        chmod(&target, 0o600);
        let link = dir.join("networks.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = err_text(try_acquire_in(&dir, "networks", "testing"));
        assert!(
            e.contains(&link.display().to_string()) && e.contains("symbolic link"),
            "{e}"
        );
        assert_eq!(mode(&target), 0o600);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root only\n");
        // the waiting form too
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(acquire_in(
            &dir,
            "networks",
            "testing",
            LOCK_TIMEOUT,
            &quiet,
        ));
        assert!(err_text(r).contains("symbolic link"));
        assert_eq!(mode(&target), 0o600);

        // a dangling link: O_CREAT must not make its target
        let absent = s.0.join("absent");
        std::os::unix::fs::symlink(&absent, dir.join("dangling.lock")).unwrap();
        err_text(try_acquire_in(&dir, "dangling", "testing"));
        assert!(
            std::fs::symlink_metadata(&absent).is_err(),
            "target was made"
        );
    }

    #[test]
    fn a_lock_file_others_can_write_is_refused_and_left_as_it_is() {
        let s = Scratch::new("wfile");
        let dir = s.locks();
        let f = dir.join("networks.lock");
        std::fs::write(&f, "").unwrap();
        chmod(&f, 0o666);
        let e = err_text(try_acquire_in(&dir, "networks", "testing"));
        assert!(
            e.contains("others can write") && e.contains("networks.lock"),
            "{e}"
        );
        assert_eq!(mode(&f), 0o666, "mcc must chmod nothing");
        // a hard link of some other file
        std::fs::remove_file(&f).unwrap();
        let other = s.0.join("other");
        std::fs::write(&other, "x").unwrap();
        chmod(&other, 0o600);
        std::fs::hard_link(&other, &f).unwrap();
        assert!(err_text(try_acquire_in(&dir, "networks", "testing")).contains("names"));
    }

    #[test]
    fn a_lock_dir_others_can_write_is_refused() {
        for m in [0o777, 0o1777, 0o720, 0o702] {
            let s = Scratch::new("wdir");
            let locks = s.0.join("locks");
            DirBuilder::new().mode(0o700).create(&locks).unwrap();
            chmod(&locks, m);
            let e = err_text(resolve_lock_dir(Some(locks.clone().into()), None, euid()));
            assert!(
                e.contains(&locks.display().to_string()) && e.contains("chmod 700"),
                "{m:o}: {e}"
            );
            assert_eq!(mode(&locks), m, "mcc must chmod nothing");
        }
    }

    #[test]
    fn a_lock_dir_of_another_user_is_refused() {
        let s = Scratch::new("odir");
        let locks = s.0.join("locks");
        DirBuilder::new().mode(0o700).create(&locks).unwrap();
        // as root the folder is given away; otherwise mcc is told it is
        // someone else (its parent is then refused first, as it should be)
        let me = if euid() == 0 {
            std::os::unix::fs::chown(&locks, Some(65534), Some(65534)).unwrap();
            0
        } else {
            euid() + 1
        };
        let e = err_text(resolve_lock_dir(Some(locks.clone().into()), None, me));
        assert!(e.contains(&locks.display().to_string()), "{e}");
        if me == 0 {
            assert!(e.contains("belongs to uid 65534"), "{e}");
        }
    }

    #[test]
    fn a_linked_lock_dir_or_a_writable_parent_is_refused() {
        let s = Scratch::new("ldir");
        let real = s.0.join("real");
        DirBuilder::new().mode(0o700).create(&real).unwrap();
        let locks = s.0.join("locks");
        std::os::unix::fs::symlink(&real, &locks).unwrap();
        let e = err_text(resolve_lock_dir(Some(locks.into()), None, euid()));
        assert!(e.contains("symbolic link"), "{e}");

        chmod(&s.0, 0o777);
        let e = err_text(resolve_lock_dir(
            Some(s.0.join("fresh").into()),
            None,
            euid(),
        ));
        assert!(e.contains("can be written by others"), "{e}");
        assert!(!s.0.join("fresh").exists(), "made a folder under it");
    }

    #[test]
    fn where_the_lock_dir_is() {
        let e = err_text(resolve_lock_dir(None, None, 4242));
        assert!(
            e.contains("XDG_RUNTIME_DIR") && e.contains(LOCK_DIR_ENV),
            "{e}"
        );
        let e = err_text(resolve_lock_dir(Some("relative/locks".into()), None, 0));
        assert!(e.contains("absolute"), "{e}");
        let s = Scratch::new("xdg");
        let dir = resolve_lock_dir(None, Some(s.0.clone().into()), euid()).unwrap();
        if euid() == 0 {
            // root's locks are under /run whatever the session says
            assert_eq!(dir, Path::new("/run/mcc/locks"));
        } else {
            assert_eq!(dir, s.0.canonicalize().unwrap().join("mcc/locks"));
            assert_eq!(mode(&s.0.join("mcc")), 0o700);
        }
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn lock_names_are_single_file_names() {
        let s = Scratch::new("names");
        let dir = s.locks();
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "x\0y"] {
            let e = err_text(try_acquire_in(&dir, bad, "testing"));
            assert!(e.contains("not a valid lock name"), "{bad:?}: {e}");
        }
        assert!(try_acquire_in(&dir, "cluster-it-lab-1", "testing")
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn a_waiter_says_what_it_waits_for_then_gives_up() {
        let s = Scratch::new("wait");
        let dir = s.locks();
        let _held = try_acquire_in(&dir, "cluster-lab", "testing")
            .unwrap()
            .unwrap();
        let said: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
        let started = Instant::now();
        let log = said.clone();
        let on_wait = move |m: &str| log.lock().unwrap().push((started.elapsed(), m.to_string()));
        let r = acquire_in(
            &dir,
            "cluster-lab",
            "changing cluster 'lab'",
            Duration::from_millis(1600),
            &on_wait,
        )
        .await;
        let took = started.elapsed();
        let e = err_text(r);
        let path = dir.join("cluster-lab.lock").display().to_string();
        assert!(
            e.contains("gave up") && e.contains(&path) && e.contains("changing cluster 'lab'"),
            "{e}"
        );
        assert!(
            took >= Duration::from_millis(1600),
            "gave up after {took:?}"
        );
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "{said:?}");
        let (at, msg) = &said[0];
        assert!(
            *at >= WAIT_NOTICE && *at < Duration::from_millis(1500),
            "{at:?}"
        );
        assert_eq!(
            msg,
            &format!("waiting for another mcc to finish changing cluster 'lab' (lock {path})")
        );
    }

    #[tokio::test]
    async fn a_short_wait_is_silent_and_gets_the_lock() {
        let s = Scratch::new("short");
        let dir = s.locks();
        let held = try_acquire_in(&dir, "networks", "testing")
            .unwrap()
            .unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(held);
        });
        let calls = AtomicUsize::new(0);
        let on_wait = |_: &str| {
            calls.fetch_add(1, Ordering::SeqCst);
        };
        let started = Instant::now();
        acquire_in(
            &dir,
            "networks",
            "testing",
            Duration::from_secs(5),
            &on_wait,
        )
        .await
        .expect("the lock once released");
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}
