//! `mcc volume` (the CC seed's `cc volume`): ext4 volumes whose size is
//! enforced (writing past it fails inside the container with "No space
//! left on device"), whose data outlives the containers, and whose delete
//! fails deleting nothing while any is in use and succeeds for IDs gone.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn volumes_enforce_their_size_keep_data_and_delete_with_the_seeds_semantics() {
    require_engine_and_images();
    let pid = std::process::id();
    let name = format!("it-vol-{pid}");
    let out = mcc([
        "volume",
        "create",
        "--size",
        "8M",
        "--persistent",
        "--name",
        &name,
    ])
    .run()
    .ok();
    let id = out.stdout.trim().to_string();
    let _guard = Made::volume(&id);
    assert!(
        id.starts_with("vol-") && id.len() == 12,
        "{}",
        out.describe()
    );
    let image = format!("/var/lib/mcc/volumes/{id}.img");
    assert!(
        std::path::Path::new(&image).exists(),
        "no image file {image}"
    );

    // bad input: refused, nothing made (other tests make volumes
    // meanwhile: only the names tried here count)
    let other = format!("it-vol-other-{pid}");
    let named = |n: &str| -> usize {
        let out = mcc(["volume", "list", "--output", "json"]).run().ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|x| x["name"] == n)
            .count()
    };
    for (size, n, says) in [
        ("0", other.as_str(), "--size"),
        ("12Q", other.as_str(), "--size"),
        ("-5", other.as_str(), "--size"),
        ("512K", other.as_str(), "at least 1M"),
        ("8M", name.as_str(), "exists"),
        ("8M", "Bad_Name", "--name"),
    ] {
        let out = mcc(["volume", "create", "--size", size, "--name", n]).run();
        assert_ne!(out.code(), 0, "{}", out.describe());
        assert!(out.stderr.contains(says), "{}", out.describe());
    }
    assert_eq!(
        (named(&other), named(&name), named("Bad_Name")),
        (0, 1, 0),
        "a refused create made a volume"
    );

    // the size holds: 4 MiB fit, 16 MiB more do not
    let writer = format!("it-vol-writer-{pid}");
    let _w = ContainerGuard(writer.clone());
    let out = docker(&[
        "run",
        "--name",
        &writer,
        "-v",
        &format!("{id}:/data"),
        BUSYBOX,
        "sh",
        "-c",
        "dd if=/dev/zero of=/data/fits bs=1M count=4 && echo kept > /data/note && \
         dd if=/dev/zero of=/data/big bs=1M count=16; echo exit=$?; df -k /data | tail -1",
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("No space left on device"), "{text}");
    assert!(text.contains("exit=1"), "{text}");

    // in use (by a stopped container too): delete fails, deleting nothing
    let out = mcc(["volume", "delete", &id, "vol-0badc0de"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains(&writer) && out.stderr.contains("nothing deleted"),
        "{}",
        out.describe()
    );
    assert!(listed_ids("volume").contains(&id));

    // the data outlives the container
    docker_ok(&["rm", "-f", &writer]);
    let reader = format!("it-vol-reader-{pid}");
    let _r = ContainerGuard(reader.clone());
    let got = docker_ok(&[
        "run",
        "--rm",
        "--name",
        &reader,
        "-v",
        &format!("{id}:/data"),
        BUSYBOX,
        "cat",
        "/data/note",
    ]);
    assert_eq!(got.trim(), "kept");

    // free: deleted with its file and loop device; again, still fine
    let out = mcc(["volume", "delete", &id, "vol-0badc0de"]).run().ok();
    assert!(
        out.stdout.contains(&format!("deleted {id}")),
        "{}",
        out.describe()
    );
    assert!(!listed_ids("volume").contains(&id));
    assert!(
        !std::path::Path::new(&image).exists(),
        "the image file outlived the volume"
    );
    let loops = std::process::Command::new("losetup")
        .args(["-j", &image])
        .output()
        .unwrap();
    assert!(
        loops.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&loops.stdout)
    );
    mcc(["volume", "delete", &id]).run().ok();
    let out = mcc(["volume", "delete", "not-an-id"]).run();
    assert_eq!(out.code(), 2, "{}", out.describe());
}

// ---------------------------------------------------------------------------
// life: host restarts, daemon restarts, ephemeral volumes left by any means

/// Makes a volume; its ID, deleted (with its image file) when the guard goes.
/// A volume holds what was asked: a 64M one takes 64 MiB of data before
/// "No space left on device" (not 53, as when the file system's journal
/// and tables came out of it), and not much more. Tolerance: 256 KiB
/// under (a file's own extent blocks), 2 MiB over.
#[test]
fn a_volume_holds_the_size_asked_for() {
    require_engine_and_images();
    let name = format!("it-vol-full-{}", std::process::id());
    let out = mcc(["volume", "create", "--size", "64M", "--name", &name])
        .run()
        .ok();
    let id = out.stdout.trim().to_string();
    let _made = Made::volume(&id);
    assert!(id.starts_with("vol-"), "{}", out.describe());
    let filler = format!("it-vol-filler-{}", std::process::id());
    let _f = ContainerGuard(filler.clone());
    let got = docker_ok(&[
        "run",
        "--name",
        &filler,
        "-v",
        &format!("{id}:/data"),
        BUSYBOX,
        "sh",
        "-c",
        "dd if=/dev/zero of=/data/fill bs=64k 2>/dev/null; sync; stat -c %s /data/fill",
    ]);
    let written: u64 = got.trim().parse().unwrap_or_else(|_| panic!("{got}"));
    let asked = 64u64 << 20;
    println!("written before ENOSPC: {written} bytes of {asked} asked");
    assert!(
        written >= asked - (256 << 10),
        "a 64M volume took only {} MiB",
        written >> 20
    );
    assert!(
        written <= asked + (2 << 20),
        "a 64M volume took {} MiB: its size is not enforced",
        written >> 20
    );
}

fn make_volume(name: &str, persistent: bool, through: Option<&Daemon>) -> (String, Made) {
    let mut args = vec!["volume", "create", "--size", "8M", "--name", name];
    if persistent {
        args.push("--persistent");
    }
    let cmd = match through {
        Some(d) => d.mcc(&args),
        None => mcc(&args),
    };
    let id = cmd.run().ok().stdout.trim().to_string();
    assert!(id.starts_with("vol-"), "volume create printed '{id}'");
    (id.clone(), Made::volume(&id))
}

/// The loop device the engine's record of volume `id` names.
fn recorded_device(id: &str) -> String {
    docker_ok(&[
        "volume",
        "inspect",
        "--format",
        "{{index .Options \"device\"}}",
        id,
    ])
    .trim()
    .to_string()
}

/// The file a loop device reads now, as the kernel says; empty when none.
fn backing_file(device: &str) -> String {
    let name = device.trim_start_matches("/dev/");
    std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn losetup(args: &[&str]) -> std::process::Output {
    std::process::Command::new("losetup")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run losetup {args:?}: {e}"))
}

/// A loop device the test attached itself, detached when the test ends.
struct LoopGuard(String);

impl Drop for LoopGuard {
    fn drop(&mut self) {
        for dev in String::from_utf8_lossy(&losetup(&["-j", &self.0]).stdout)
            .lines()
            .filter_map(|l| l.split(':').next())
        {
            let _ = losetup(&["-d", dev]);
        }
    }
}

/// `mcc run --attach` of a busybox command with `volumes` mounted: its
/// output (the run must exit 0). The container is removed.
fn run_with(volumes: &[String], script: &str, through: Option<&Daemon>) -> String {
    let mut args = vec!["run".to_string(), "--image".into(), BUSYBOX.into()];
    for v in volumes {
        args.extend(["--volume".to_string(), v.clone()]);
    }
    args.extend(["--attach", "--", "sh", "-c", script].map(String::from));
    let cmd = match through {
        Some(d) => d.mcc(&args),
        None => mcc(&args),
    };
    let out = cmd.run().ok();
    let ids = run_containers(script);
    for id in &ids {
        let rm = match through {
            Some(d) => d.mcc(["rm", id]),
            None => mcc(["rm", id]),
        };
        rm.run().ok();
    }
    out.stdout
}

#[test]
fn a_persistent_volume_comes_back_after_a_host_restart_and_never_on_another_device() {
    require_engine_and_images();
    let pid = std::process::id();
    let (id, _guard) = make_volume(&format!("it-vol-boot-{pid}"), true, None);
    let image = format!("/var/lib/mcc/volumes/{id}.img");
    let note = format!("boot-{pid}");
    run_with(
        &[format!("{id}:/data")],
        &format!("echo {note} > /data/note # {note}-write"),
        None,
    );

    // a host restart, as the volume sees it: its loop device is gone
    let first = recorded_device(&id);
    assert_eq!(backing_file(&first), image, "{id} on {first}");
    let out = losetup(&["-d", &first]);
    assert!(out.status.success(), "losetup -d {first}: {out:?}");
    wait_until(Duration::from_secs(10), "the loop device to let go", || {
        backing_file(&first).is_empty()
    });

    // and its number now holds another file system, with a file of its own
    let scratch = TempDir::new(&format!("vol-boot-{pid}"));
    scratch.write("content/note", "impostor\n", 0o644);
    let other = scratch.path().join("other.img");
    let other_s = other.to_string_lossy().to_string();
    std::fs::File::create(&other)
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    let mkfs = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(scratch.path().join("content"))
        .arg(&other)
        .output()
        .unwrap();
    assert!(mkfs.status.success(), "mkfs.ext4: {mkfs:?}");
    let _other_loop = LoopGuard(other_s.clone());
    let grabbed = losetup(&[&first, &other_s]);
    // another process may have taken the number first: then it holds
    // some other file, or none; either way not the volume's
    eprintln!(
        "{first} now holds {:?} ({})",
        backing_file(&first),
        if grabbed.status.success() {
            "this test's impostor"
        } else {
            "taken by someone else"
        }
    );

    // the next run finds the data on a device that holds the volume's file
    let got = run_with(
        &[format!("{id}:/data")],
        &format!("cat /data/note # {note}-read"),
        None,
    );
    assert_eq!(got.trim(), note, "read back after the restart");
    let now = recorded_device(&id);
    assert_eq!(backing_file(&now), image, "{id} is recorded on {now}");
    if grabbed.status.success() {
        assert_ne!(now, first);
        assert_eq!(backing_file(&first), other_s, "the impostor was let be");
    }
    assert!(
        listed_ids("volume").contains(&id),
        "the volume is listed after it moved devices"
    );

    // delete works with its device gone too
    let out = losetup(&["-d", &now]);
    assert!(out.status.success(), "losetup -d {now}: {out:?}");
    let out = mcc(["volume", "delete", &id]).run().ok();
    assert!(
        out.stdout.contains(&format!("deleted {id}")),
        "{}",
        out.describe()
    );
    assert!(
        !std::path::Path::new(&image).exists(),
        "{image} outlived it"
    );
    assert!(
        !std::path::Path::new(&format!("/var/lib/mcc/volumes/{id}.used")).exists(),
        "its used marker outlived it"
    );
}

/// `mcc gc` of every cluster, as JSON: exit 1 only says that some cluster
/// (another's, on a shared engine) could not be collected.
fn gc() -> serde_json::Value {
    let out = mcc(["gc", "--output", "json"]).run();
    assert!([0, 1].contains(&out.code()), "{}", out.describe());
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()))
}

/// Keeps this binary's daemon (whose start looks at every ephemeral
/// volume) away from the test that proves `mcc gc` does it.
static ONE_REAPER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn an_ephemeral_volume_goes_with_its_last_container_however_that_went() {
    require_engine_and_images();
    let _one = ONE_REAPER.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    let (eph, _g1) = make_volume(&format!("it-vol-eph-{pid}"), false, None);
    let (fresh, _g2) = make_volume(&format!("it-vol-fresh-{pid}"), false, None);
    let (keep, _g3) = make_volume(&format!("it-vol-keep-{pid}"), true, None);

    // a gc leaves volumes no container has used yet, and persistent ones
    let report = gc();
    let removed = report["volumes_removed"].as_array().unwrap();
    for v in [&eph, &fresh, &keep] {
        assert!(!removed.contains(&v.as_str().into()), "{report:#}");
        assert!(
            listed_ids("volume").contains(v),
            "{v} went unused: {report:#}"
        );
    }

    // used by a run container and by one mcc did not make
    let marker = format!("eph-{pid}");
    let id = mcc([
        "run",
        "--image",
        BUSYBOX,
        "--volume",
        &format!("{eph}:/e"),
        "--volume",
        &format!("{keep}:/k"),
        "--",
        "sh",
        "-c",
        &format!("sleep 600 # {marker}"),
    ])
    .run()
    .ok()
    .stdout
    .trim()
    .to_string();
    let _c = ContainerGuard(id.clone());
    let other = format!("it-vol-other-{pid}");
    let _o = ContainerGuard(other.clone());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &other,
        "-v",
        &format!("{eph}:/e"),
        BUSYBOX,
        "sleep",
        "600",
    ]);

    // rm of the run container: the other still uses it, so it stays
    let out = mcc(["rm", &id]).run().ok();
    assert!(!out.stdout.contains(&eph), "{}", out.describe());
    assert!(listed_ids("volume").contains(&eph), "gone while in use");

    // the last user removed behind mcc's back (no label a watcher
    // follows): gc finds the volume used and left, and removes it
    docker_ok(&["rm", "-f", &other]);
    let report = gc();
    let removed = report["volumes_removed"].as_array().unwrap();
    assert!(removed.contains(&eph.as_str().into()), "{report:#}");
    let list = listed_ids("volume");
    assert!(!list.contains(&eph), "{list:?}");
    assert!(list.contains(&fresh) && list.contains(&keep), "{list:?}");
    assert!(
        !std::path::Path::new(&format!("/var/lib/mcc/volumes/{eph}.img")).exists(),
        "its image file outlived it"
    );
    if !remote_mode() {
        let text = mcc(["gc"]).run();
        assert!([0, 1].contains(&text.code()), "{}", text.describe());
        assert!(!text.stdout.contains(&eph), "{}", text.describe());
    }
}

#[test]
fn a_daemon_removes_ephemeral_volumes_left_unused_and_keeps_the_rest_across_its_restart() {
    let _one = ONE_REAPER.lock().unwrap_or_else(|p| p.into_inner());
    let mut d = Daemon::start("vol-life");
    let pid = std::process::id();
    let (eph, _g1) = make_volume(&format!("it-vol-deph-{pid}"), false, Some(&d));
    let (fresh, _g2) = make_volume(&format!("it-vol-dfresh-{pid}"), false, Some(&d));
    let (keep, _g3) = make_volume(&format!("it-vol-dkeep-{pid}"), true, Some(&d));
    let note = format!("daemon-{pid}");
    let marker = format!("dlife-{pid}");
    let id = d
        .mcc([
            "run",
            "--image",
            BUSYBOX,
            "--volume",
            &format!("{eph}:/e"),
            "--volume",
            &format!("{keep}:/k"),
            "--",
            "sh",
            "-c",
            &format!("echo {note} > /k/note; sleep 600 # {marker}"),
        ])
        .run()
        .ok()
        .stdout
        .trim()
        .to_string();
    let _c = ContainerGuard(id.clone());
    wait_until(Duration::from_secs(30), "the note to be written", || {
        docker(&["exec", &id, "cat", "/k/note"]).stdout == format!("{note}\n").as_bytes()
    });

    // removed behind mcc's back: the daemon sees it and removes the volume
    docker_ok(&["rm", "-f", &id]);
    wait_until(
        Duration::from_secs(30),
        "the daemon to remove the ephemeral volume",
        || !listed_ids("volume").contains(&eph),
    );
    // Every daemon on this host watches (scripts/test-remote's, another
    // test's): the first to take the volumes lock removes it, and only it
    // says so.
    let said = format!("volume {eph} removed");
    std::thread::sleep(Duration::from_millis(500));
    if !d.log().contains(&said) {
        eprintln!("note: another daemon on this host removed {eph} first");
    }

    // restarted, the daemon keeps the persistent volume, its data and the
    // ephemeral volume no container has used
    let status = d.terminate(Duration::from_secs(60));
    assert!(status.success(), "mcc serve exited {status}:\n{}", d.log());
    d.spawn();
    let listed = d.mcc(["volume", "list", "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["id"].as_str())
        .collect();
    assert!(ids.contains(&keep.as_str()), "{v:#}");
    assert!(ids.contains(&fresh.as_str()), "{v:#}");
    let got = run_with(
        &[format!("{keep}:/k")],
        &format!("cat /k/note # {marker}-read"),
        Some(&d),
    );
    assert_eq!(got.trim(), note, "the data after the daemon's restart");
    // the daemon's first look after its start left them too
    std::thread::sleep(Duration::from_secs(1));
    let list = listed_ids("volume");
    assert!(list.contains(&keep) && list.contains(&fresh), "{list:?}");
}
