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
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where `mcc serve` is, for commands that go through it. Without an
/// endpoint, commands work on the local engine.
#[derive(Args, Debug, Default)]
pub struct RemoteArgs {
    /// Send commands to this mcc daemon, e.g. http://127.0.0.1:5000
    #[arg(
        long,
        global = true,
        env = "MCC_ENDPOINT_URL",
        value_name = "URL",
        alias = "cc-endpoint-url",
        help_heading = "Daemon"
    )]
    pub endpoint_url: Option<String>,
    /// Access token for the daemon
    #[arg(
        long,
        global = true,
        env = "MCC_ACCESS_TOKEN",
        value_name = "TOKEN",
        alias = "cc-access-token",
        hide_env_values = true,
        help_heading = "Daemon"
    )]
    pub access_token: Option<String>,
    /// Secret key that signs requests to the daemon
    #[arg(
        long,
        global = true,
        env = "MCC_SECRET_KEY",
        value_name = "KEY",
        alias = "cc-secret-key",
        hide_env_values = true,
        help_heading = "Daemon"
    )]
    pub secret_key: Option<String>,
}

impl RemoteArgs {
    /// The endpoint, with the seed's CC_* variables as fallbacks.
    pub fn resolve(self) -> RemoteArgs {
        let or_env = |v: Option<String>, var: &str| {
            v.filter(|s| !s.is_empty())
                .or_else(|| std::env::var(var).ok().filter(|s| !s.is_empty()))
        };
        RemoteArgs {
            endpoint_url: or_env(self.endpoint_url, "CC_ENDPOINT_URL"),
            access_token: or_env(self.access_token, "CC_ACCESS_TOKEN"),
            secret_key: or_env(self.secret_key, "CC_SECRET_KEY"),
        }
    }
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
        mcc create --name web --image debian:bookworm --nodes 2 --vpc vpc-1a2b3c4d\n  \
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
    #[command(
        after_help = "Examples:\n  mcc addnode lab\n  mcc addnode lab --count 4\n  mcc addnode lab --host h3"
    )]
    Addnode {
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        cluster: String,
        /// How many workers to add
        #[arg(long, short = 'c', default_value_t = 1)]
        count: u32,
        /// The host they run on (a cluster made with --hosts); default: the
        /// next hosts round-robin
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
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
        /// Make them on this host (a cluster made with --hosts; e.g. one whose
        /// host was lost); default: each where it runs
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
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
                            gc goes on with the others and exits 1 at the end. With no cluster \
                            named, gc also removes the ephemeral volumes whose last container \
                            went without `mcc rm` (one no container has used yet stays)."
    )]
    Gc {
        /// Only these clusters (default: every cluster, and ephemeral volumes left unused)
        #[arg(add = ArgValueCompleter::new(crate::complete::clusters))]
        clusters: Vec<String>,
        /// Also remove data volumes kept from deleted clusters
        #[arg(long)]
        volumes: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Run the daemon: the authenticated REST API over everything mcc does
    #[command(after_help = "Examples:\n  mcc serve\n  \
        mcc serve --listen 0.0.0.0:5443 --tls-cert cert.pem --tls-key key.pem\n  \
        . /var/lib/mcc/credentials && export MCC_ENDPOINT_URL MCC_ACCESS_TOKEN MCC_SECRET_KEY\n  \
        mcc list                 # now through the daemon\n\n\
        On first start the daemon makes an admin token and writes it, with its secret key and\n\
        the URL, to STATE_DIR/credentials (mode 0600) as lines a shell can source.")]
    Serve(ServeArgs),
    /// Manage the daemon's access tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Private networks with a CIDR of yours, for containers (the CC seed's `cc vpc`)
    #[command(subcommand)]
    Vpc(VpcCommand),
    /// The hosts a cluster may span: engines of one Docker swarm, with zones
    #[command(subcommand)]
    Host(HostCommand),
    /// Run a command in a container of its own, with limits (the CC seed's `cc run`); prints its ID
    #[command(
        after_help = "Examples:\n  mcc run --image busybox --memory 64M --cpu 512 -- sleep 1d\n  \
        mcc run --image busybox --vpc vpc-1a2b3c4d --volume vol-5e6f7a8b:/data --user nobody \
        --env MODE=test --dir /data --attach -- sh -c 'id; pwd; echo $MODE'\n  \
        mcc run --image busybox --attach --rm -- echo hi     # nothing left once it exits\n\n\
        With --attach the command's output is streamed and mcc exits with its exit code; with\n\
        --rm too, the container is removed then (Ctrl-C detaches and keeps it)."
    )]
    Run(RunArgs),
    /// Show containers made by `mcc run`: state, exit code, image, VPC, IP, limits, volumes
    Status {
        /// None: every container made by `mcc run`
        #[arg(value_name = "ID")]
        ids: Vec<String>,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Resource use of containers made by `mcc run`: CPU, memory against its limit, network, block I/O
    Metrics {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove containers made by `mcc run` (their ephemeral volumes go with the last user)
    Rm {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Forward a local TCP address to a container's port (the CC seed's `cc local-remote`)
    #[command(name = "local-remote", subcommand)]
    LocalRemote(LocalRemoteCommand),
    /// Volumes of a given size, ext4, enforced (the CC seed's `cc volume`)
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Run services with replicas on the Docker workers of a cluster (through the daemon)
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Send one signed request to the daemon and print the answer
    #[command(after_help = "Examples:\n  mcc api GET /api/v1/clusters\n  \
        mcc api POST /api/v1/clusters --data '{\"name\":\"lab\",\"image\":\"debian:bookworm\",\"nodes\":2}'\n  \
        mcc api GET '/api/v1/operations/OP?follow=true'\n  mcc api GET /metrics\n\n\
        Exits 1 when the daemon answers 4xx or 5xx. Without --endpoint-url, the credentials\n\
        file of a local `mcc serve` is used.")]
    Api {
        /// GET, POST, PUT, PATCH or DELETE
        method: String,
        /// Path and query, e.g. /api/v1/clusters
        path: String,
        /// Request body (JSON); @FILE reads a file, @- standard input
        #[arg(long, short = 'd', value_name = "JSON")]
        data: Option<String>,
    },
    /// Print what happens on the daemon, as it happens
    #[command(
        after_help = "Examples:\n  mcc events\n  mcc events --since 0 --no-follow\n  \
        mcc events --output json"
    )]
    Events {
        /// Start after this event number (default: the last 100)
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
        /// Print the past events and stop
        #[arg(long)]
        no_follow: bool,
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

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (repeatable)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5000")]
    pub listen: Vec<std::net::SocketAddr>,
    /// TLS certificate chain (PEM); with --tls-key, the daemon speaks HTTPS
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where the daemon keeps its database, key and credentials
    /// [default: /var/lib/mcc for root, else ~/.local/share/mcc]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Requests per second allowed per token: more wait their turn, up to
    /// 2 s, beyond that get 429 with Retry-After
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: u32,
    /// Connections open at once; when full, the oldest idle connection no
    /// signed request has used is closed to make room
    #[arg(long, value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Connections from one address that no signed request has used yet
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,
    /// Serve /metrics without authentication
    #[arg(long)]
    pub public_metrics: bool,
    /// Log lines as text or json (on stderr; MCC_LOG=debug for more)
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// The cluster MyCluster's routes answer for (/api/v1/service, /stats,
    /// /state); default: the only one
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum HostCommand {
    /// Add an engine as a host: it makes the swarm (the first host), joins
    /// it as a manager, or is adopted with the swarm it is in already
    #[command(after_help = "Examples:\n  \
        mcc host add h1 --engine unix:///var/run/docker.sock --zone a\n  \
        mcc host add h2 --engine tcp://10.0.0.2:2376 --tls-ca ca.pem --tls-cert cert.pem \
        --tls-key key.pem --zone b\n\n\
        The list is a file of yours (MCC_HOSTS_FILE, or ~/.config/mcc/hosts.json); zones are\n\
        the swarm's node labels (mcc.zone). Nothing changes when a check fails.")]
    Add {
        /// 1 to 63 of a-z, 0-9 and '-'
        name: String,
        /// unix:///path/to/docker.sock, or tcp://HOST:PORT with --tls-*
        #[arg(long, value_name = "URL")]
        engine: String,
        /// Its availability zone (a swarm node label)
        #[arg(long, value_name = "ZONE")]
        zone: Option<String>,
        /// The authority that signed the engine's certificate (tcp://)
        #[arg(long, value_name = "PEM", requires_all = ["tls_cert", "tls_key"])]
        tls_ca: Option<PathBuf>,
        /// mcc's client certificate for the engine (tcp://)
        #[arg(long, value_name = "PEM", requires_all = ["tls_ca", "tls_key"])]
        tls_cert: Option<PathBuf>,
        /// Its key (tcp://)
        #[arg(long, value_name = "PEM", requires_all = ["tls_ca", "tls_cert"])]
        tls_key: Option<PathBuf>,
        /// The address the other hosts reach this one at (the engine picks
        /// when it has one interface)
        #[arg(long, value_name = "ADDR")]
        advertise_addr: Option<String>,
    },
    /// List the hosts: engine version, reachable, swarm role, zone, clusters
    #[command(alias = "ls")]
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove a host (refused while it runs nodes of a cluster)
    #[command(
        alias = "rm",
        after_help = "Examples:\n  mcc host remove h2\n  \
                      mcc host remove h3 --lost     # h3 is gone: take it out of the swarm\n  \
                      mcc recreate lab node02 --host h1   # then bring its nodes back elsewhere"
    )]
    Remove {
        name: String,
        /// The host is gone for good (its engine does not answer): take it
        /// out of the swarm through another host, whoever put it there, so
        /// that its nodes' addresses are free for `mcc recreate … --host`
        #[arg(long)]
        lost: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum VpcCommand {
    /// Make a VPC; prints its ID
    #[command(
        after_help = "Examples:\n  mcc vpc create --cidr 10.10.0.0/24 --name blue\n\n\
        A CIDR that overlaps a network of the engine or a route of this host is refused."
    )]
    Create {
        /// A private block (loopback, link-local, multicast and reserved
        /// ranges are never taken)
        #[arg(long, value_name = "CIDR")]
        cidr: String,
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Take a --cidr that is not a private block: this host then routes
        /// those internet addresses to the VPC
        #[arg(long)]
        allow_public_cidr: bool,
    },
    /// List the VPCs and what uses them
    #[command(alias = "ls")]
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete VPCs: none if any is in use; IDs that do not exist are fine
    #[command(alias = "rm")]
    Delete {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum LocalRemoteCommand {
    /// Forward connections to BIND on to the container's port, until Ctrl-C
    #[command(
        after_help = "Examples:\n  mcc local-remote serve --container-id 3f2a9c1d0b7e \
        --container-port 80 --bind 127.0.0.1:8080"
    )]
    Serve {
        #[arg(long, value_name = "ID")]
        container_id: String,
        #[arg(long, value_name = "PORT")]
        container_port: u16,
        /// Local address to listen on, ADDR:PORT
        #[arg(long, value_name = "ADDR:PORT")]
        bind: String,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// VPC to join (its ID)
    #[arg(long, value_name = "ID")]
    pub vpc: Option<String>,
    /// Volume to mount, ID:PATH (repeatable)
    #[arg(long = "volume", value_name = "ID:PATH")]
    pub volumes: Vec<String>,
    /// Memory limit: bytes, or 64M, 1G
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// CPU shares (1024 is one CPU's worth under contention)
    #[arg(long, value_name = "SHARES")]
    pub cpu: Option<i64>,
    /// Size of the container's own disk (needs a storage driver with quotas)
    #[arg(long, value_name = "BYTES")]
    pub disk: Option<String>,
    /// User to run the command as (name or UID[:GID])
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Environment variable NAME=VALUE (repeatable)
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Directory to run the command in
    #[arg(long, value_name = "DIR")]
    pub dir: Option<String>,
    /// Stream the command's output and exit with its exit code
    #[arg(long, short = 'a')]
    pub attach: bool,
    /// With --attach: remove the container (and an ephemeral volume it was
    /// the last to use) once it exits and its exit code is known
    #[arg(long, requires = "attach")]
    pub rm: bool,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Make a volume; prints its ID
    #[command(
        after_help = "Examples:\n  mcc volume create --size 1G --persistent --name data\n  \
        mcc volume create --size 64M --name scratch\n\n\
        An ext4 file system of that size: writing past it fails with \"No space left on device\".\n\
        Needs root and the engine on this machine (the file system is a loop device here)."
    )]
    Create {
        /// Bytes, or with a suffix: 64M, 1G (K/M/G/T are powers of 1024)
        #[arg(long, value_name = "SIZE")]
        size: String,
        /// Keep it when no container uses it any more
        #[arg(long)]
        persistent: bool,
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// List the volumes and what uses them
    #[command(alias = "ls")]
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete volumes: none if any is in use; IDs that do not exist are fine
    #[command(alias = "rm")]
    Delete {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Define a service: its replicas start on the workers with the fewest, and move
    /// when a worker dies; waits until they run
    #[command(
        after_help = "Examples:\n  mcc service create web --cluster lab --image nginx:1.27 \
        --replicas 3 --port 80\n  mcc service create ticker --cluster lab --image busybox \
        --replicas 2 -- sh -c 'while :; do date; sleep 1; done'\n\n\
        The image is taken from this host's engine when it has it (no registry needed), else\n\
        pulled by the workers. The cluster must have been made with --docker-workers."
    )]
    Create {
        /// Service name: lowercase letters, digits and '-', starting with a letter
        name: String,
        #[arg(long, short = 'c', value_name = "CLUSTER")]
        cluster: String,
        #[arg(long, value_name = "IMAGE")]
        image: String,
        #[arg(long, value_name = "N", default_value_t = 1)]
        replicas: u32,
        /// Environment variable K=V of every replica (repeatable)
        #[arg(long = "env", short = 'e', value_name = "K=V")]
        env: Vec<String>,
        /// TCP port of each replica, published on a free port of its worker (repeatable)
        #[arg(long = "port", short = 'p', value_name = "PORT")]
        ports: Vec<u16>,
        /// Answer at once instead of waiting for the replicas to run
        #[arg(long, short = 'd')]
        detach: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        /// The replicas' command, instead of the image's
        #[arg(last = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// List a cluster's services
    #[command(alias = "ls")]
    List {
        #[arg(long, short = 'c', value_name = "CLUSTER")]
        cluster: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a service and where its replicas run
    #[command(alias = "inspect")]
    Show {
        name: String,
        #[arg(long, short = 'c', value_name = "CLUSTER")]
        cluster: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Change how many replicas run; waits until they do
    Scale {
        name: String,
        #[arg(long, value_name = "N")]
        replicas: u32,
        #[arg(long, short = 'c', value_name = "CLUSTER")]
        cluster: String,
        #[arg(long, short = 'd')]
        detach: bool,
    },
    /// Delete services and their replicas
    #[command(alias = "rm")]
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long, short = 'c', value_name = "CLUSTER")]
        cluster: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token; its secret key is printed once
    #[command(
        after_help = "Examples:\n  mcc token create --name ci\n  mcc token create --name grafana --read-only"
    )]
    Create {
        /// A name to know it by
        #[arg(long, default_value = "token")]
        name: String,
        /// The token may only read (GET)
        #[arg(long)]
        read_only: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// List the tokens (never their secrets)
    #[command(alias = "ls")]
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Revoke tokens: requests signed with them fail from now on
    Revoke {
        #[arg(required = true)]
        tokens: Vec<String>,
    },
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
    /// Subnet of the cluster network, e.g. 10.42.0.0/24 (default: a free
    /// one); a private block (loopback, link-local, multicast and reserved
    /// ranges are never taken)
    #[arg(long, value_name = "CIDR", help_heading = "Addressing")]
    pub subnet: Option<String>,
    /// Take a --subnet that is not a private block: this host then routes
    /// those internet addresses to the nodes
    #[arg(long, requires = "subnet", help_heading = "Addressing")]
    pub allow_public_subnet: bool,
    /// Create the cluster into this VPC (`mcc vpc create`): the nodes join its
    /// network and subnet, at addresses no container there holds
    #[arg(long, value_name = "VPC_ID", help_heading = "Addressing")]
    pub vpc: Option<String>,
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
    /// Keep PATH in a volume of each node, across recreation (repeatable), e.g. /var;
    /// on several hosts the volume stays on its node's host
    #[arg(long, value_name = "PATH", help_heading = "Nodes")]
    pub persist: Vec<String>,
    /// Every worker runs its own Docker engine, reachable from every node as
    /// tcp://nodeXX:2375 with the cluster's TLS certificates (`docker -H node01 ps`);
    /// the worker image must contain dockerd
    #[arg(long, help_heading = "Nodes")]
    pub docker_workers: bool,
    /// Spread the nodes over these hosts (`mcc host list`): the front-end on
    /// the first, workers round-robin after it, on an overlay network of the
    /// swarm; needs --shared-from
    #[arg(
        long,
        value_name = "HOST,…",
        value_delimiter = ',',
        help_heading = "Hosts"
    )]
    pub hosts: Vec<String>,
    /// With --hosts: where the cluster's files and shared folders live.
    /// nfs://SERVER/PATH[?OPT,…]: an NFS export that each host's engine
    /// mounts (volumes of the local driver, type nfs); file:///PATH: a
    /// folder every host has at that path (a cluster filesystem). mcc makes
    /// mcc-volumes/ in it through the engines
    #[arg(long, value_name = "URL", help_heading = "Hosts")]
    pub shared_from: Option<String>,
    /// `zone`: spread the nodes over the hosts' zones (of --hosts, or every
    /// listed host), consecutive nodes in different zones; needs --shared-from
    #[arg(long, value_name = "zone", help_heading = "Hosts")]
    pub spread: Option<String>,
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
