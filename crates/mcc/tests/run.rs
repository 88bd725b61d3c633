//! `mcc run`, `mcc status`, `mcc metrics`, `mcc rm` (the CC seed's verbs):
//! every flag visible inside the container, limits in status, exit codes
//! through --attach, a limit the engine cannot enforce refused, bad input
//! refused with nothing made, ephemeral volumes gone with their last user.
//! One test: the checks that nothing was made count every run container.

mod common;

use common::*;

#[test]
fn run_applies_every_flag_status_shows_them_and_rm_cleans_up() {
    require_engine_and_images();
    let pid = std::process::id();
    let mut made = Made::default();
    run_refuses_bad_input_and_unenforceable_limits_making_nothing();
    let cidr = test_subnet(244);
    let vpc = mcc([
        "vpc",
        "create",
        "--cidr",
        &cidr,
        "--name",
        &format!("it-run-{pid}"),
    ])
    .run()
    .ok()
    .stdout
    .trim()
    .to_string();
    made.vpcs.push(vpc.clone());
    let keep = mcc([
        "volume",
        "create",
        "--size",
        "4M",
        "--persistent",
        "--name",
        &format!("it-run-keep-{pid}"),
    ])
    .run()
    .ok()
    .stdout
    .trim()
    .to_string();
    let eph = mcc([
        "volume",
        "create",
        "--size",
        "4M",
        "--name",
        &format!("it-run-eph-{pid}"),
    ])
    .run()
    .ok()
    .stdout
    .trim()
    .to_string();
    made.volumes.extend([keep.clone(), eph.clone()]);

    // every flag, seen from inside; --attach streams and passes the exit code
    let flags_mark = format!("mark-flags-{pid}");
    let script = format!(
        "id -u; pwd; echo \"mode=$MODE\"; \
        cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
        cat /sys/fs/cgroup/cpu.weight 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.shares; \
        ip -4 -o addr show eth0; mount | grep -c ' /keep \\| /eph '; \
        touch /keep/mine /eph/mine && echo volumes=writable; exit 7; : {flags_mark}"
    );
    let out = mcc([
        "run",
        "--image",
        BUSYBOX,
        "--vpc",
        &vpc,
        "--volume",
        &format!("{keep}:/keep"),
        "--volume",
        &format!("{eph}:/eph"),
        "--memory",
        "64M",
        "--cpu",
        "512",
        "--user",
        "nobody",
        "--env",
        "MODE=test",
        "--dir",
        "/tmp",
        "--attach",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .run();
    assert_eq!(out.code(), 7, "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "65534", "user: {}", out.describe());
    assert_eq!(lines[1], "/tmp", "dir: {}", out.describe());
    assert_eq!(lines[2], "mode=test", "env: {}", out.describe());
    assert_eq!(
        lines[3],
        (64u64 << 20).to_string(),
        "memory: {}",
        out.describe()
    );
    assert_eq!(lines[4], "512", "cpu shares: {}", out.describe());
    let prefix = cidr.rsplit_once('.').unwrap().0;
    assert!(
        lines[5].contains(&format!("inet {prefix}.")),
        "vpc address: {}",
        out.describe()
    );
    assert_eq!(lines[6], "2", "volumes mounted: {}", out.describe());
    // fresh volumes mounted for --user belong to that user (the README's
    // `--user nobody --dir /data`)
    assert_eq!(
        lines.get(7).copied(),
        Some("volumes=writable"),
        "--user nobody cannot write its fresh volumes: {}",
        out.describe()
    );
    let new = run_containers(&flags_mark);
    assert_eq!(new.len(), 1, "{new:?}");
    let id = new[0].clone();
    made.containers.push(id.clone());

    // status: state, exit code, image, VPC, IP, limits, volumes, times
    let out = mcc(["status", &id, "--output", "json"]).run().ok();
    let s: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let s = &s[0];
    assert_eq!(s["state"], "exited", "{s:#}");
    assert_eq!(s["exit_code"], 7, "{s:#}");
    assert_eq!(s["image"], BUSYBOX, "{s:#}");
    assert_eq!(s["labels"]["mcc.vpc"], vpc.as_str(), "{s:#}");
    assert_eq!(s["memory"], 64 << 20, "{s:#}");
    assert_eq!(s["cpu_shares"], 512, "{s:#}");
    assert_eq!(s["user"], "nobody", "{s:#}");
    assert_eq!(s["workdir"], "/tmp", "{s:#}");
    assert_eq!(s["volumes"].as_array().unwrap().len(), 2, "{s:#}");
    assert!(
        s["started"].is_string() && s["finished"].is_string(),
        "{s:#}"
    );
    let table = mcc(["status", &id]).run().ok();
    assert!(
        table.stdout.contains("64 MiB") && table.stdout.contains(&vpc),
        "{}",
        table.describe()
    );

    // the container is named as the listings show it: its name (`vpc
    // list`, `volume list`), its full ID, or a unique start of its ID
    let full = s["id"].as_str().unwrap().to_string();
    let name = s["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("mcc-run-"), "{s:#}");
    let others: Vec<String> = run_containers("")
        .into_iter()
        .filter(|o| *o != id)
        .collect();
    let short = (4..12)
        .map(|n| id[..n].to_string())
        .find(|p| !others.iter().any(|o| o.starts_with(p)))
        .unwrap();
    for given in [&name, &full, &short] {
        let out = mcc(["status", given, "--output", "json"]).run().ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v[0]["id"], full.as_str(), "{given}: {}", out.describe());
    }

    // a volume used once is no longer fresh: another --user finds it as
    // the data's owner left it (and --rm leaves no container behind)
    let out = mcc([
        "run",
        "--image",
        BUSYBOX,
        "--volume",
        &format!("{keep}:/keep"),
        "--user",
        "4321",
        "--attach",
        "--rm",
        "--",
        "stat",
        "-c",
        "%u:%g",
        "/keep",
    ])
    .run();
    assert_eq!(out.code(), 0, "{}", out.describe());
    assert_eq!(out.stdout.trim(), "65534:65534", "{}", out.describe());

    // the VPC and the volumes are in use while the container is there
    let out = mcc(["vpc", "delete", &vpc]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());

    // rm: the ephemeral volume goes with its last user, the persistent one stays
    let out = mcc(["rm", &name]).run().ok();
    assert!(
        out.stdout.contains(&format!("removed {id}")),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout
            .contains(&format!("removed ephemeral volume {eph}")),
        "{}",
        out.describe()
    );
    let vols = mcc(["volume", "list"]).run().ok().stdout;
    assert!(vols.contains(&keep) && !vols.contains(&eph), "{vols}");
    assert!(run_containers(&flags_mark).is_empty());
    mcc(["rm", &id]).run().ok();
    mcc(["vpc", "delete", &vpc]).run().ok();

    // metrics move under load: a busy loop shows CPU, the limit shows
    let busy = mcc([
        "run",
        "--image",
        BUSYBOX,
        "--memory",
        "32M",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ])
    .run()
    .ok()
    .stdout
    .trim()
    .to_string();
    let idle = mcc(["run", "--image", BUSYBOX, "--", "sleep", "600"])
        .run()
        .ok()
        .stdout
        .trim()
        .to_string();
    made.containers.extend([busy.clone(), idle.clone()]);
    let out = mcc(["metrics", &busy, &idle, "--output", "json"])
        .run()
        .ok();
    let m: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let (b, i) = (&m[0], &m[1]);
    assert!(b["cpu_percent"].as_f64().unwrap() > 20.0, "busy: {m:#}");
    assert!(i["cpu_percent"].as_f64().unwrap() < 10.0, "idle: {m:#}");
    assert_eq!(b["memory_limit_bytes"], 32 << 20, "{m:#}");
    assert!(b["memory_bytes"].as_u64().unwrap() > 0, "{m:#}");
    let table = mcc(["metrics", &busy]).run().ok();
    assert!(table.stdout.contains("32 MiB"), "{}", table.describe());
    mcc(["rm", &busy, &idle]).run().ok();
}

/// Called first by the test above, so no container of its own is about.
fn run_refuses_bad_input_and_unenforceable_limits_making_nothing() {
    let mark = format!("refused-{}", std::process::id());
    for (args, says) in [
        (vec!["--disk", "1G"], "--disk"),
        (vec!["--vpc", "vpc-nope"], "VPC ID"),
        (vec!["--vpc", "vpc-0badc0de"], "no such VPC"),
        (vec!["--volume", "vol-0badc0de"], "ID:PATH"),
        (vec!["--volume", "vol-0badc0de:/data"], "no such volume"),
        (vec!["--volume", "vol-0badc0de:data"], "absolute"),
        (vec!["--memory", "lots"], "--memory"),
        (vec!["--memory", "1K"], "6M"),
        (vec!["--cpu", "1"], "--cpu"),
        (vec!["--env", "NOEQUALS"], "--env"),
        (vec!["--dir", "tmp"], "--dir"),
        (vec!["--user", "a b"], "--user"),
    ] {
        let mut a = vec!["run", "--image", BUSYBOX];
        a.extend(args.iter());
        a.extend(["--", "true", mark.as_str()]);
        let out = mcc(a.clone()).run();
        assert_ne!(out.code(), 0, "{}", out.describe());
        assert!(out.stderr.contains(says), "{:?}: {}", a, out.describe());
    }
    let out = mcc([
        "run",
        "--image",
        "mcc-test/no-such-image:1",
        "--",
        "true",
        &mark,
    ])
    .run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    // one its registry says it does not have: bad input, exit 2
    let image = format!("{}/mcc-test/no-such-image:1", registry::empty_registry());
    let out = mcc(["run", "--image", &image, "--", "true", &mark]).run();
    assert_eq!(out.code(), 2, "{}", out.describe());
    assert!(
        out.stderr.contains(&image) && out.stderr.contains("docker load"),
        "{}",
        out.describe()
    );
    // a command the image does not have: bad input (2, 422 through the
    // daemon), not an engine fault, and the container it was to run goes
    let missing = format!("no-such-command-{mark}");
    let out = mcc(["run", "--image", BUSYBOX, "--", &missing]).run();
    assert_eq!(out.code(), 2, "{}", out.describe());
    assert!(
        out.stderr.contains(&missing) && out.stderr.contains("give a command the image has"),
        "{}",
        out.describe()
    );
    assert_eq!(
        run_containers(&mark),
        Vec::<String>::new(),
        "a refused run left a container"
    );
    // a name of that form that no container of `run` has: not there (1);
    // what cannot be a container's name or ID: bad input (2)
    let out = mcc(["status", "not-a-container"]).run();
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains("no such container"),
        "{}",
        out.describe()
    );
    let out = mcc(["status", "not/a container"]).run();
    assert_eq!(out.code(), 2, "{}", out.describe());
}
