//! `mcc volume` (the CC seed's `cc volume`): ext4 volumes whose size is
//! enforced (writing past it fails inside the container with "No space
//! left on device"), whose data outlives the containers, and whose delete
//! fails deleting nothing while any is in use and succeeds for IDs gone.

mod common;

use common::*;

/// Removes a volume and its image file when the test ends, however it ends.
struct VolumeGuard(String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let _ = mcc(["volume", "delete", &self.0]).local().run();
    }
}

fn volume_ids() -> Vec<String> {
    let out = mcc(["volume", "list", "--output", "json"]).run().ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

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
    let _guard = VolumeGuard(id.clone());
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

    // bad input: refused, nothing made
    let before = volume_ids();
    for (size, n, says) in [
        ("0", "other", "--size"),
        ("12Q", "other", "--size"),
        ("-5", "other", "--size"),
        ("512K", "other", "at least 1M"),
        ("8M", name.as_str(), "exists"),
        ("8M", "Bad_Name", "--name"),
    ] {
        let out = mcc(["volume", "create", "--size", size, "--name", n]).run();
        assert_ne!(out.code(), 0, "{}", out.describe());
        assert!(out.stderr.contains(says), "{}", out.describe());
    }
    assert_eq!(volume_ids(), before, "a refused create made a volume");

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
    assert!(volume_ids().contains(&id));

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
    assert!(!volume_ids().contains(&id));
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
