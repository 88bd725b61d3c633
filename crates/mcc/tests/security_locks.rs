//! mcc's host lock files (issue 6): an unprivileged user cannot turn them
//! against root, and a second mcc waits for the first and says so.
//!
//! These tests run as root and act as `nobody` through `setpriv`.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use mcc_core::lock::{lock_dir, HostLock};

const NOBODY: &str = "65534";

/// Runs `argv` as `nobody` (no supplementary groups); whether it succeeded.
/// The arguments go to the program as they are, through no shell.
fn as_nobody(argv: &[&str]) -> bool {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
        ])
        .args(argv)
        .output()
        .unwrap_or_else(|e| panic!("cannot run setpriv (util-linux): {e}"));
    out.status.success()
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// `path` is a real directory of root's, mode 0700.
#[track_caller]
fn assert_root_private_dir(path: &Path) {
    let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(md.is_dir(), "{} is not a real directory", path.display());
    assert_eq!(md.uid(), 0, "owner of {}", path.display());
    assert_eq!(md.mode() & 0o7777, 0o700, "mode of {}", path.display());
}

/// What nobody tries in root's lock directory; every attempt must fail.
#[track_caller]
fn nobody_cannot_plant_anything(locks: &Path, target: &Path) {
    let mcc_dir = locks.parent().expect("the lock dir has a parent");
    let planted = locks.join("networks.lock");
    let stray = locks.join("stray.lock");
    let attempts: [&[&str]; 4] = [
        &["mkdir", &locks.join("sub").display().to_string()],
        &[
            "ln",
            "-s",
            &target.display().to_string(),
            &planted.display().to_string(),
        ],
        &["touch", &stray.display().to_string()],
        &[
            "ln",
            "-s",
            &target.display().to_string(),
            &mcc_dir.join("locks2").display().to_string(),
        ],
    ];
    for argv in attempts {
        assert!(
            !as_nobody(argv),
            "nobody could run {argv:?} in root's lock directory"
        );
    }
    assert!(!stray.exists(), "{} was made", stray.display());
    if let Ok(md) = fs::symlink_metadata(&planted) {
        assert!(
            !md.file_type().is_symlink(),
            "{} is a link",
            planted.display()
        );
    }
}

#[test]
fn a_users_link_in_the_old_shared_lock_dir_changes_no_root_file() {
    let c = Cluster::new("lock-attack");
    // the mcc under test gets a /tmp of its own (TMPDIR), as world-writable
    // and sticky as the real one, so that the old lock folder is
    // `<tmp>/mcc-locks` there and no other test run sees the planted link
    let tmp = TempDir::new("lock-attack-tmp");
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o1777)).expect("chmod 1777");
    let secret_dir = TempDir::new("lock-attack-secret");
    fs::set_permissions(secret_dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let secret = secret_dir.write("root-only", "a root secret\n", 0o600);

    // the attack of the issue: nobody makes the shared folder the old mcc
    // used and links its networks lock to a root-only file
    let old = tmp.path().join("mcc-locks");
    assert!(
        as_nobody(&["mkdir", "-m", "1777", &old.display().to_string()]),
        "nobody cannot make {}",
        old.display()
    );
    let link = old.join("networks.lock");
    assert!(
        as_nobody(&[
            "ln",
            "-s",
            &secret.display().to_string(),
            &link.display().to_string()
        ]),
        "nobody cannot make the link {}",
        link.display()
    );
    // and tries the same where root's locks are now
    let locks = Path::new("/run/mcc/locks");
    nobody_cannot_plant_anything(locks, &secret);

    let out = create_cmd(&c, &on_subnet(BUSYBOX, "1", &test_subnet(240), &[]))
        .env("TMPDIR", &tmp.arg())
        .run()
        .ok();

    assert_eq!(
        mode(&secret),
        0o600,
        "mode of the root-only file after `{}`",
        out.cmdline
    );
    assert_eq!(fs::metadata(&secret).expect("the secret").uid(), 0);
    assert_eq!(
        fs::read_to_string(&secret).expect("the secret"),
        "a root secret\n"
    );
    // the old folder is not used at all any more
    let left: Vec<String> = fs::read_dir(&old)
        .expect("the old lock folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(left, ["networks.lock"], "entries of {}", old.display());

    assert_root_private_dir(Path::new("/run/mcc"));
    assert_root_private_dir(locks);
    let lock = locks.join("networks.lock");
    let md = fs::symlink_metadata(&lock).expect("the networks lock");
    assert!(md.is_file(), "{} is not a regular file", lock.display());
    assert_eq!(md.uid(), 0, "owner of {}", lock.display());
    assert_eq!(md.mode() & 0o077, 0, "mode of {}", lock.display());
    // now that the folder surely exists, nobody still cannot use it
    nobody_cannot_plant_anything(locks, &secret);

    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after delete");
}

/// Holds the lock `name` from this test process until dropped, as another
/// mcc would.
fn hold(name: &str) -> HostLock {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(HostLock::acquire(
        name,
        "a test",
        Duration::from_secs(120),
        &|_| {},
    ))
    .unwrap_or_else(|e| panic!("the test cannot take the lock {name}: {e}"))
}

#[test]
fn a_second_mcc_waits_for_the_lock_and_says_what_for() {
    let c = Cluster::new("lock-wait");
    let dir = lock_dir().expect("root's lock dir");
    assert_eq!(dir, Path::new("/run/mcc/locks"));

    // create: the networks lock
    let held = hold("networks");
    let mut run = create_cmd(&c, &on_subnet(BUSYBOX, "1", &test_subnet(241), &[])).spawn();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(run.is_running(), "the create did not wait for the lock");
    assert_nothing_labelled(c.n(), "while the create waits for the lock");
    drop(held);
    let out = run.wait(TIMEOUT).ok();
    let want = format!(
        "waiting for another mcc to finish picking a subnet (lock {})",
        dir.join("networks.lock").display()
    );
    assert_eq!(out.stderr.matches(&want).count(), 1, "{}", out.describe());

    // addnode: the cluster's lock
    let held = hold(&format!("cluster-{}", c.n()));
    let before = labelled(c.n());
    let mut run = mcc(["addnode", c.n()]).spawn();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(run.is_running(), "addnode did not wait for the lock");
    assert_eq!(
        labelled(c.n()),
        before,
        "addnode went on while it should wait"
    );
    drop(held);
    let out = run.wait(TIMEOUT).ok();
    let want = format!(
        "waiting for another mcc to finish changing cluster '{}' (lock {})",
        c.n(),
        dir.join(format!("cluster-{}.lock", c.n())).display()
    );
    assert_eq!(out.stderr.matches(&want).count(), 1, "{}", out.describe());

    mcc(["delete", c.n()]).run().ok();
    assert_nothing_labelled(c.n(), "after delete");
    let _ = fs::remove_file(dir.join(format!("cluster-{}.lock", c.n())));
}
