//! Command-line arguments. Parsing only: every command's work is in
//! `commands/`, and the logic behind it in the mcc-core library.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCompleter;

#[derive(Parser, Debug)]
#[command(
    name = "mcc",
    version,
    about = "Build, run and break clusters made of containers",
    long_about = "mcc builds virtual clusters on the Docker engine: a private network, a \
                  front-end and N worker nodes that know each other by name (frontend, node01, \
                  …), share folders such as /home, and are set up by your own scripts.",
    after_help = "Examples:\n  mcc create --name lab --image debian:bookworm --nodes 3 --device home\n  \
                  mcc exec lab -- hostname\n  mcc enter lab\n  mcc addnode lab --count 2\n  mcc delete lab\n\n\
                  The engine is reached through DOCKER_HOST, or the local socket."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable tables and messages
    #[default]
    Text,
    /// JSON on stdout (progress still goes to stderr)
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a cluster: network, front-end, workers, shared folders, context
    #[command(after_help = "Examples:\n  \
        mcc create --name lab --image debian:bookworm --nodes 3\n  \
        mcc create --name hpc --front-end-image my/fe:1 --working-node-image my/node:1 --nodes 4 \\\n      \
        --context-folder ./context --device home --device scratch:/scratch --enter-cluster\n  \
        mcc create --name hpc --image mcc-examples/slurm:bookworm --nodes 3 --systemd \\\n      \
        --persist /var --subnet 10.42.0.0/24 --ip node03=10.42.0.33 --domain hpc.test\n  \
        mcc create -f cluster.yaml --nodes 8        # flags override the file\n\n\
        Cluster file (YAML; the fields are the flags' names):\n  \
        name: lab\n  image: debian:bookworm\n  nodes: 3\n  context-folder: ./context\n  \
        devices: [home, 'scratch:/scratch']\n  subnet: 10.42.0.0/24\n  env: {MODE: test}\n  \
        systemd: true\n  persist: [/var]\n  per-node: {node03: {ip: 10.42.0.33}}\n\n\
        Context folder: all/* run on every node, then frontend/* on the front-end or workers/*\n\
        on workers, in name order; the front-end finishes before the workers start. Scripts\n\
        get MCC_CLUSTER, MCC_ROLE, MCC_NODE, MCC_NODES (workers), MCC_FRONTEND and MCC_SHARED\n\
        (a folder every node shares). Their output: `mcc logs CLUSTER`. Scripts in on-change/\n\
        run on every node after the create and whenever nodes are added, removed or recreated.")]
    Create(Box<CreateArgs>),
    /// List clusters
    #[command(
        alias = "ls",
        after_help = "Examples:\n  mcc list\n  mcc list --output json"
    )]
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a cluster's nodes: role, container, hostname, IP, state, image
    #[command(after_help = "Examples:\n  mcc inspect lab\n  mcc inspect lab --output json")]
    Inspect {
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        cluster: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Add workers to a cluster (they run the cluster's context)
    #[command(after_help = "Examples:\n  mcc addnode lab\n  mcc addnode lab --count 4")]
    Addnode {
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        cluster: String,
        /// How many workers to add
        #[arg(long, short = 'c', default_value_t = 1)]
        count: u32,
        /// Give up (and remove the new nodes) after this long, e.g. 90s, 10m
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
        timeout: Duration,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove workers from a cluster
    #[command(
        after_help = "Examples:\n  mcc delnode lab node03\n  mcc delnode lab node01 node02\n  \
                            mcc delnode lab --count 2     # the two highest-numbered"
    )]
    Delnode {
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        cluster: String,
        /// Workers to remove (node01, node02, …)
        #[arg(
            required_unless_present = "count",
            conflicts_with = "count",
            add = ArgValueCompleter::new(crate::complete::nodes)
        )]
        nodes: Vec<String>,
        /// Remove this many workers, highest-numbered first
        #[arg(long, short = 'c')]
        count: Option<u32>,
        /// Keep the nodes' --persist volumes for a later addnode
        #[arg(long)]
        keep_state: bool,
    },
    /// Make nodes again with the same name, address and persisted data
    #[command(after_help = "Examples:\n  mcc recreate lab node02\n  \
                            mcc recreate lab frontend node01\n\n\
                            Also brings back a node whose container was removed behind mcc's back.\n\
                            The node's context runs again, then the on-change hooks on every node.")]
    Recreate {
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        cluster: String,
        #[arg(required = true, add = ArgValueCompleter::new(crate::complete::nodes))]
        nodes: Vec<String>,
        /// Give up after this long, e.g. 90s, 10m
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
        timeout: Duration,
    },
    /// Delete clusters: containers, network and volumes
    #[command(
        after_help = "Examples:\n  mcc delete lab\n  mcc delete lab hpc --keep-volumes\n\n\
                            Deleting a cluster that does not exist says so and succeeds."
    )]
    Delete {
        #[arg(required = true, add = ArgValueCompleter::new(crate::complete::clusters))]
        clusters: Vec<String>,
        /// Keep the shared folders' volumes (a later cluster of the same name reuses them)
        #[arg(long)]
        keep_volumes: bool,
    },
    /// Open a shell (or run a command) on a node, the front-end by default
    #[command(after_help = "Examples:\n  mcc enter lab\n  mcc enter lab node02\n  \
                            mcc enter lab -- cat /etc/hosts")]
    Enter {
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        cluster: String,
        /// frontend (default), node01, …
        #[arg(add = ArgValueCompleter::new(crate::complete::nodes))]
        node: Option<String>,
        /// Command to run instead of a shell
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run a command on several nodes at once, each line prefixed by its node
    #[command(after_help = "Examples:\n  mcc exec lab -- hostname\n  \
                            mcc exec lab --on workers -- sh -c 'uptime'\n  \
                            mcc exec lab --on node01,node03 -- ping -c1 frontend\n\n\
                            Exits non-zero if the command failed on any node.")]
    Exec {
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        cluster: String,
        /// all, frontend, workers, or node names separated by commas
        #[arg(long, default_value = "all", add = ArgValueCompleter::new(crate::complete::targets))]
        on: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Start every node of a cluster
    #[command(after_help = "Example:\n  mcc start lab")]
    Start { cluster: String },
    /// Stop every node of a cluster (state and addresses are kept)
    #[command(after_help = "Example:\n  mcc stop lab")]
    Stop { cluster: String },
    /// Show what the context scripts printed, per node
    #[command(after_help = "Examples:\n  mcc logs lab\n  mcc logs lab node02")]
    Logs {
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        cluster: String,
        #[arg(add = ArgValueCompleter::new(crate::complete::nodes))]
        node: Option<String>,
    },
    /// Remove what interrupted creates, addnodes and deletes left behind
    #[command(
        after_help = "Examples:\n  mcc gc\n  mcc gc lab hpc     # only these clusters\n  \
                            mcc gc --volumes   # also the kept volumes of deleted clusters\n\n\
                            Healthy clusters, and creates or changes still in progress, are never \
                            touched. A cluster that cannot be collected is reported with its cure; \
                            gc goes on with the others and exits 1 at the end."
    )]
    Gc {
        /// Only these clusters (default: every cluster)
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        clusters: Vec<String>,
        /// Also remove data volumes kept from deleted clusters
        #[arg(long)]
        volumes: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  mcc completions bash > /etc/bash_completion.d/mcc\n  \
                            mcc completions zsh > \"${fpath[1]}/_mcc\"\n\n\
                            These complete commands and options. To complete cluster and node \
                            names too (read from the engine as you type), load the dynamic \
                            completion instead:\n  source <(COMPLETE=bash mcc)    # in ~/.bashrc; \
                            zsh: source <(COMPLETE=zsh mcc); fish: COMPLETE=fish mcc | source"
    )]
    Completions { shell: clap_complete::Shell },
}

fn duration(s: &str) -> Result<Duration, String> {
    mcc_core::model::duration::parse_duration(s)
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Cluster name, a DNS label (generated and printed if absent)
    #[arg(long, short)]
    pub name: Option<String>,
    /// Image of every node (the two flags below override it for one role)
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Image of the front-end (without --image, --working-node-image is needed too)
    #[arg(long, value_name = "IMAGE")]
    pub front_end_image: Option<String>,
    /// Image of the workers (without --image, --front-end-image is needed too)
    #[arg(long, value_name = "IMAGE")]
    pub working_node_image: Option<String>,
    /// Number of workers [default: 0, a front-end alone]
    #[arg(long, value_name = "N")]
    pub nodes: Option<u32>,
    /// Folder of scripts run on the nodes (all/, frontend/, workers/, on-start/, on-change/)
    #[arg(long, value_name = "DIR")]
    pub context_folder: Option<PathBuf>,
    /// Shared folder NAME[:PATH], one volume on every node; `home` is /home (repeatable)
    #[arg(long = "device", value_name = "NAME[:PATH]")]
    pub devices: Vec<String>,
    /// Subnet of the cluster network, e.g. 10.42.0.0/24 (default: a free one)
    #[arg(long, value_name = "CIDR", help_heading = "Addressing")]
    pub subnet: Option<String>,
    /// Gateway address (default: the subnet's first address)
    #[arg(long, value_name = "IP", help_heading = "Addressing")]
    pub gateway: Option<String>,
    /// Fixed address of a node, NODE=IP, e.g. node01=10.42.0.11 (repeatable)
    #[arg(long = "ip", value_name = "NODE=IP", help_heading = "Addressing")]
    pub ips: Vec<String>,
    /// DNS domain: hostnames become node01.DOMAIN (short names resolve too)
    #[arg(long, value_name = "DOMAIN", help_heading = "Addressing")]
    pub domain: Option<String>,
    /// DNS server of the nodes (repeatable)
    #[arg(long, value_name = "IP", help_heading = "Addressing")]
    pub dns: Vec<String>,
    /// DNS search domain of the nodes (repeatable)
    #[arg(long, value_name = "DOMAIN", help_heading = "Addressing")]
    pub dns_search: Vec<String>,
    /// Extra /etc/hosts entry NAME:IP on every node (repeatable)
    #[arg(long = "add-host", value_name = "NAME:IP", help_heading = "Addressing")]
    pub add_hosts: Vec<String>,
    /// Network driver: bridge (default) or macvlan (nodes on a host interface's segment)
    #[arg(long, value_name = "DRIVER", help_heading = "Addressing")]
    pub network_driver: Option<String>,
    /// Host interface of a macvlan network, e.g. eth1
    #[arg(long, value_name = "IFACE", help_heading = "Addressing")]
    pub parent: Option<String>,
    /// Run systemd as PID 1 in every node; create waits until it is running
    #[arg(long, help_heading = "Nodes")]
    pub systemd: bool,
    /// Mount the host's /lib/modules read-only in every node
    #[arg(long, help_heading = "Nodes")]
    pub mount_modules: bool,
    /// Keep PATH in a volume of each node, across recreation (repeatable), e.g. /var
    #[arg(long, value_name = "PATH", help_heading = "Nodes")]
    pub persist: Vec<String>,
    /// Run nodes privileged (the engine may refuse)
    #[arg(long)]
    pub privileged: bool,
    /// Environment variable K=V of every node (repeatable)
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Open a shell on the front-end once the cluster is ready
    #[arg(long)]
    pub enter_cluster: bool,
    /// Cluster file (YAML); flags override it
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// On failure, leave what was made in place instead of removing it
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Give up (and remove what was made) when making the nodes and running
    /// their scripts takes longer than this, e.g. 90s, 10m, 1h
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub timeout: Duration,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}
