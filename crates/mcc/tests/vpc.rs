//! `mcc vpc` (the CC seed's `cc vpc`): create prints an ID, overlapping or
//! bad CIDRs are refused with nothing made, delete fails deleting nothing
//! while any is in use, and succeeds for IDs that are gone.

mod common;

use common::*;

#[test]
fn vpcs_follow_the_seeds_create_list_delete_semantics() {
    require_engine_and_images();
    let name = format!("it-vpc-{}", std::process::id());
    let cidr = test_subnet(242);
    let out = mcc(["vpc", "create", "--cidr", &cidr, "--name", &name])
        .run()
        .ok();
    let id = out.stdout.trim().to_string();
    let _guard = Made::vpc(&id);
    assert!(
        id.starts_with("vpc-") && id.len() == 12,
        "{}",
        out.describe()
    );
    let labels = docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{json .Labels}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
        &id,
    ]);
    assert!(
        labels.contains(&format!("\"mcc.vpc\":\"{id}\"")) && labels.contains(&cidr),
        "{labels}"
    );

    // bad input: refused with exit 2, nothing made
    let before = listed_ids("vpc");
    for (cidr, name, says) in [
        (cidr.as_str(), "other", "overlaps"),
        ("10.0.0.0/33", "other", "--cidr"),
        ("not-a-cidr", "other", "--cidr"),
        ("10.251.0.0/24", name.as_str(), "exists"),
        ("10.251.0.0/24", "Bad_Name", "--name"),
    ] {
        let out = mcc(["vpc", "create", "--cidr", cidr, "--name", name]).run();
        assert_ne!(out.code(), 0, "{}", out.describe());
        assert!(out.stderr.contains(says), "{}", out.describe());
    }
    assert_eq!(listed_ids("vpc"), before, "a refused create made a VPC");

    // in use: delete fails and deletes nothing, naming the user
    let user = format!("it-vpc-user-{}", std::process::id());
    let _c = ContainerGuard(user.clone());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &user,
        "--network",
        &id,
        BUSYBOX,
        "sleep",
        "600",
    ]);
    // a `run --attach --rm` leaves nothing on it once it exits (the
    // README's VPC example); a detached `run` stays and holds it
    let mark = format!("vpc-rm-{}", std::process::id());
    let out = mcc([
        "run",
        "--image",
        BUSYBOX,
        "--vpc",
        &id,
        "--attach",
        "--rm",
        "--",
        "sh",
        "-c",
        "echo passing through; exit 3",
        &mark,
    ])
    .run();
    let mut made = Made::default();
    made.containers = run_containers(&mark);
    assert_eq!(out.code(), 3, "{}", out.describe());
    assert!(out.stdout.contains("passing through"), "{}", out.describe());
    assert_eq!(made.containers, Vec::<String>::new(), "--rm kept it");
    let held = mcc([
        "run", "--image", BUSYBOX, "--vpc", &id, "--", "sleep", "600",
    ])
    .run()
    .ok();
    let held = held.stdout.trim().to_string();
    made.containers.push(held.clone());
    let list = mcc(["vpc", "list"]).run().ok();
    assert!(list.stdout.contains(&user), "{}", list.describe());
    let users_line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_default()
        .to_string();
    let run_names: Vec<&str> = users_line
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| w.starts_with("mcc-run-"))
        .collect();
    assert_eq!(
        run_names.len(),
        1,
        "the --rm one is listed still: {users_line}"
    );
    let out = mcc(["vpc", "delete", &id, "vpc-0badc0de"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains(&user) && out.stderr.contains("nothing deleted"),
        "{}",
        out.describe()
    );
    assert!(listed_ids("vpc").contains(&id), "a VPC in use was deleted");
    // the refusal gives the exact commands that free it: the one for mcc's
    // container is run as printed, by the name the listing shows
    let rm = format!("mcc rm {}", run_names[0]);
    assert!(out.stderr.contains(&rm), "no `{rm}`: {}", out.describe());
    assert!(
        out.stderr.contains(&format!("docker rm -f {user}")),
        "{}",
        out.describe()
    );
    let out = mcc(rm.split_whitespace().skip(1)).run().ok();
    assert!(out.stdout.contains(&held[..12]), "{}", out.describe());

    // free: deleted, with a missing ID beside it; and again, still fine
    docker_ok(&["rm", "-f", &user]);
    let out = mcc(["vpc", "delete", &id, "vpc-0badc0de"]).run().ok();
    assert!(
        out.stdout.contains(&format!("deleted {id}")),
        "{}",
        out.describe()
    );
    assert!(!listed_ids("vpc").contains(&id));
    mcc(["vpc", "delete", &id]).run().ok();
    let out = mcc(["vpc", "delete", "not-an-id"]).run();
    assert_eq!(out.code(), 2, "{}", out.describe());
}
