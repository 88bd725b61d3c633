//! A real cluster inside: the Slurm + Open MPI example (examples/slurm) on
//! systemd nodes. `srun` reaches every worker, `mpirun` runs over ssh on
//! every worker, and a node added later takes Slurm jobs.

mod common;

use std::collections::BTreeSet;

use common::*;
use mcc_core::provider::Engine;

const SLURM_IMAGE: &str = "mcc-examples/slurm:bookworm";

fn require_slurm_image() {
    require_engine_and_images();
    let present = engine(|p| async move { p.image(SLURM_IMAGE).await });
    match present {
        Ok(Some(_)) => {}
        Ok(None) => panic!(
            "image {SLURM_IMAGE} is missing: run examples/slurm/build-image first \
             (scripts/test does; it builds offline and reuses the image)"
        ),
        Err(e) => panic!("cannot inspect image {SLURM_IMAGE}: {e}"),
    }
}

/// The set of lines a command printed on the front-end.
fn frontend_lines(c: &Cluster, cmd: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["enter", c.n(), "frontend", "--"];
    args.extend_from_slice(cmd);
    let out = mcc(&args).run().ok();
    out.stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Hostnames printed by `hostname` run with mpirun over ssh on `np` ranks,
/// placed by the example's hostfile (one slot per worker).
fn mpirun_hostnames(c: &Cluster, np: u32) -> BTreeSet<String> {
    let np = np.to_string();
    frontend_lines(
        c,
        &[
            "mpirun",
            "--allow-run-as-root",
            "--hostfile",
            "/etc/mcc-hostfile",
            "-np",
            &np,
            "hostname",
        ],
    )
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn slurm_and_mpi_reach_every_worker_and_follow_addnode() {
    require_slurm_image();
    let c = Cluster::new("slurm");
    let context = repo_root().join("examples/slurm/context");
    create(
        &c,
        &image_nodes(
            SLURM_IMAGE,
            "2",
            &[
                "--systemd",
                "--device",
                "home",
                "--context-folder",
                context.to_str().expect("utf-8 path"),
            ],
        ),
    );

    assert_eq!(
        frontend_lines(&c, &["srun", "-N", "2", "hostname"]),
        set(&["node01", "node02"]),
        "srun -N 2 must print every worker"
    );
    assert_eq!(
        mpirun_hostnames(&c, 2),
        set(&["node01", "node02"]),
        "mpirun over ssh must run on every worker"
    );

    mcc(["addnode", c.n()]).run().ok();
    assert_eq!(
        frontend_lines(&c, &["srun", "-N", "3", "hostname"]),
        set(&["node01", "node02", "node03"]),
        "the added node must take Slurm jobs"
    );
    assert_eq!(
        mpirun_hostnames(&c, 3),
        set(&["node01", "node02", "node03"]),
        "the MPI hostfile must follow the added node"
    );

    // a removed worker leaves Slurm; the others still run jobs
    mcc(["delnode", c.n(), "node02"]).run().ok();
    let sinfo = frontend_lines(&c, &["sinfo", "-h", "-N", "-o", "%N"]);
    assert_eq!(sinfo, set(&["node01", "node03"]), "sinfo after delnode");
    assert_eq!(
        frontend_lines(&c, &["srun", "-N", "2", "hostname"]),
        set(&["node01", "node03"])
    );
}
