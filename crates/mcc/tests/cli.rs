//! What the CLI prints for scripts and shells: JSON of create and list,
//! completions, and the engine's refusal of --privileged said plainly.

mod common;

use common::*;

/// `create --output json` prints the cluster on stdout (progress stays on
/// stderr); `list --output json` has it with its status and node count.
#[test]
fn create_and_list_speak_json() {
    let c = Cluster::new("json");
    let out = create(
        &c,
        &["--image", BUSYBOX, "--nodes", "2", "--output", "json"],
    );
    let view: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("create JSON does not parse: {e}\n{}", out.describe()));
    assert_eq!(view["name"], c.n());
    assert_eq!(view["status"], "running", "{view:#}");
    assert_eq!(view["workers"], 2, "{view:#}");
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(3), "{view:#}");

    let out = mcc(["list", "--output", "json"]).run().ok();
    let list: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("list JSON does not parse: {e}\n{}", out.describe()));
    let mine = list
        .as_array()
        .expect("a list")
        .iter()
        .find(|v| v["name"] == c.n())
        .unwrap_or_else(|| panic!("{} missing from {list:#}", c.n()));
    assert_eq!(mine["status"], "running");
    assert_eq!(mine["running"], 3);
}

/// The text table of a one-worker cluster: singular counts, a HOSTNAME
/// column with the domain, and the delete's counts.
#[test]
fn text_output_counts_and_names_hosts() {
    let c = Cluster::new("text");
    let out = create(
        &c,
        &["--image", BUSYBOX, "--nodes", "1", "--domain", "lab.test"],
    );
    assert!(
        out.stderr.contains("(front-end + 1 worker)"),
        "{}",
        out.describe()
    );
    let out = mcc(["inspect", c.n()]).run().ok();
    let header = out
        .stdout
        .lines()
        .find(|l| l.starts_with("NODE"))
        .unwrap_or("");
    assert!(header.contains("HOSTNAME"), "{}", out.describe());
    assert!(out.stdout.contains("node01.lab.test"), "{}", out.describe());
    let out = mcc(["delete", c.n()]).run().ok();
    assert!(
        out.stdout.contains("3 containers, 1 network, 2 volumes"),
        "{}",
        out.describe()
    );
}

/// A command given to exec or enter without `--` gets the corrected line;
/// `mcc help --help` is help, not an error.
#[test]
fn usage_mistakes_are_explained() {
    let out = mcc(["exec", "lab", "--on", "node01", "ls", "-l"])
        .run()
        .code_is(2);
    assert!(
        out.stderr
            .contains("put `--` before the command to run: mcc exec lab --on node01 -- ls -l"),
        "{}",
        out.describe()
    );
    let out = mcc(["enter", "lab", "node01", "cat", "/etc/hosts"])
        .run()
        .code_is(2);
    assert!(
        out.stderr
            .contains("mcc enter lab node01 -- cat /etc/hosts"),
        "{}",
        out.describe()
    );
    let out = mcc(["help", "--help"]).run().ok();
    assert!(out.stdout.contains("Usage: mcc"), "{}", out.describe());
}

/// Dynamic completion offers the engine's cluster names and a cluster's
/// node names, as the shell asks for them.
#[test]
fn dynamic_completion_names_clusters_and_nodes() {
    let c = Cluster::new("complete");
    create(&c, &image_nodes(BUSYBOX, "1", &[]));
    let complete = |words: &[&str], index: usize| -> Vec<String> {
        let mut args = vec!["--", "mcc"];
        args.extend(words);
        let out = mcc(args)
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", &index.to_string())
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_COMPLETE_SPACE", "true")
            .env("_CLAP_IFS", "\n")
            .run()
            .ok();
        out.stdout.lines().map(|l| l.trim().to_string()).collect()
    };
    let prefix = &c.n()[..c.n().len() - 2];
    let got = complete(&["inspect", prefix], 2);
    assert!(got.iter().any(|w| w == c.n()), "inspect <TAB>: {got:?}");
    let got = complete(&["enter", c.n(), "no"], 3);
    assert_eq!(got, ["node01"], "enter {} no<TAB>", c.n());
    let got = complete(&["exec", c.n(), "--on", ""], 4);
    for want in ["all", "workers", "frontend", "node01"] {
        assert!(got.iter().any(|w| w == want), "exec --on <TAB>: {got:?}");
    }
    // no engine: nothing offered, no error
    let out = mcc(["--", "mcc", "inspect", ""])
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "2")
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_IFS", "\n")
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .run()
        .ok();
    assert!(out.stderr.trim().is_empty(), "{}", out.describe());
}

/// Completion scripts name the subcommands.
#[test]
fn completions_cover_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = mcc(["completions", shell]).run().ok();
        for cmd in ["create", "addnode", "delnode", "recreate", "gc"] {
            assert!(
                out.stdout.contains(cmd),
                "{shell} completion lacks {cmd}: {}",
                out.describe()
            );
        }
    }
    mcc(["completions", "tcsh"]).run().code_is(2);
}

/// --privileged goes to the engine. Where the engine refuses it (as this
/// VM's kernel does), the error says so plainly and nothing is left;
/// where it accepts, the cluster works.
#[test]
fn privileged_is_passed_on_or_its_refusal_explained() {
    let c = Cluster::new("priv");
    let out = try_create(&c, &["--image", BUSYBOX, "--nodes", "1", "--privileged"]);
    if out.status.success() {
        // privileged: CAP_SYS_ADMIN (21) and CAP_NET_ADMIN (12) are
        // effective, which a default container never has
        let out = sh(
            &c,
            "all",
            "e=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status); \
             [ $(( 0x$e >> 21 & 1 )) = 1 ] && [ $(( 0x$e >> 12 & 1 )) = 1 ] && echo full",
        )
        .ok();
        assert_each_printed(&out, &["frontend", "node01"], "capabilities: ", |_| {
            "full\n".into()
        });
    } else {
        assert_eq!(out.code(), 1, "{}", out.describe());
        assert!(
            out.stderr.contains("refused the container's privileges")
                && out.stderr.contains("without --privileged"),
            "the refusal is not explained: {}",
            out.describe()
        );
        assert_nothing_labelled(c.n(), "after a refused --privileged create");
    }
}
