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
    let list = mcc(["vpc", "list"]).run().ok();
    assert!(list.stdout.contains(&user), "{}", list.describe());
    let out = mcc(["vpc", "delete", &id, "vpc-0badc0de"]).run();
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains(&user) && out.stderr.contains("nothing deleted"),
        "{}",
        out.describe()
    );
    assert!(listed_ids("vpc").contains(&id), "a VPC in use was deleted");

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
