# Helpers for the Slurm example's scripts; sourced, not run (mcc runs only
# all/, frontend/, workers/ and on-change/).
# shellcheck shell=sh

die() {
    echo "slurm example on ${MCC_NODE:-$(hostname)}: $*" >&2
    exit 1
}

warn() {
    echo "slurm example on ${MCC_NODE:-$(hostname)}: warning: $*" >&2
}

say() {
    echo "${MCC_NODE:-$(hostname)}: $*"
}

need_env() {
    for _var in "$@"; do
        eval "_val=\${$_var:-}"
        # shellcheck disable=SC2154  # set by eval
        [ -n "$_val" ] || die "$_var is not set (run this script through mcc)"
    done
}

# The nodes run systemd as PID 1 (mcc create --systemd); every daemon here is
# a systemd unit.
need_systemd() {
    if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null 2>&1; then
        die "systemd is not PID 1 here; create the cluster with --systemd and the image mcc-examples/slurm:bookworm (examples/slurm/build-image)"
    fi
}

# The workers, one a line, each once, in a stable order: every node must
# write the same slurm.conf whatever order MCC_NODES has.
workers() {
    # shellcheck disable=SC2086  # split on purpose
    printf '%s\n' ${MCC_NODES:-} | awk 'NF && !seen[$0]++' | sort -V
}

# update_file DEST MODE < content: replace DEST by the content if it differs.
# Status 0 if DEST changed, 1 if it already had that content. Written aside
# and renamed, so a reader never sees half a file.
update_file() {
    _dest=$1
    _tmp="$1.mcc-new.$$"
    cat >"$_tmp" || { rm -f "$_tmp"; die "cannot write $_tmp"; }
    if [ -f "$_dest" ] && cmp -s "$_tmp" "$_dest"; then
        rm -f "$_tmp"
        return 1
    fi
    chmod "$2" "$_tmp"
    mv -f "$_tmp" "$_dest" || die "cannot replace $_dest"
    return 0
}

# --- ssh (adapted from examples/ssh) -----------------------------------------

# Where the front-end leaves the cluster's key for the other nodes.
KEY_DIR="${MCC_SHARED:-/nonexistent}/ssh"

# Copy the cluster key from $KEY_DIR into /root/.ssh and authorize it.
install_cluster_key() {
    if [ ! -s "$KEY_DIR/id_ed25519" ] || [ ! -s "$KEY_DIR/id_ed25519.pub" ]; then
        die "no cluster key in $KEY_DIR"
    fi
    (
        umask 077
        mkdir -p /root/.ssh
        chmod 700 /root/.ssh
        # Through a temporary file and rename: /root may be shared by nodes.
        tmp="/root/.ssh/.mcc.${MCC_NODE:-node}.$$"
        cp "$KEY_DIR/id_ed25519" "$tmp" && mv -f "$tmp" /root/.ssh/id_ed25519
        cp "$KEY_DIR/id_ed25519.pub" "$tmp" && mv -f "$tmp" /root/.ssh/id_ed25519.pub
        chmod 600 /root/.ssh/id_ed25519
        chmod 644 /root/.ssh/id_ed25519.pub
        pub=$(cat "$KEY_DIR/id_ed25519.pub")
        touch /root/.ssh/authorized_keys
        grep -qxF "$pub" /root/.ssh/authorized_keys ||
            printf '%s\n' "$pub" >>/root/.ssh/authorized_keys
        chmod 600 /root/.ssh/authorized_keys
    )
}

# Client side: accept the cluster's host keys without asking. Nodes make new
# host keys when they are recreated, so no known_hosts is kept (no "host key
# changed" failures); LogLevel ERROR hides the "Permanently added" warning.
# Rewritten by on-change/ so that added nodes are covered too (mpirun reaches
# the workers over ssh).
write_ssh_client_config() {
    mkdir -p /etc/ssh/ssh_config.d
    _hosts=$({ printf '%s\n' "$MCC_FRONTEND"; workers; } | awk 'NF && !seen[$0]++' | paste -sd ' ' -)
    update_file /etc/ssh/ssh_config.d/mcc.conf 0644 <<CONF || true
# Written by mcc's slurm example for cluster ${MCC_CLUSTER:-?}; rewritten when nodes change.
Host $_hosts
    User root
    IdentityFile /root/.ssh/id_ed25519
    StrictHostKeyChecking accept-new
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    BatchMode yes
CONF
}

# --- munge -------------------------------------------------------------------

MUNGE_SHARED_KEY="${MCC_SHARED:-/nonexistent}/munge.key"

# Install the cluster's munge key (made by the front-end) and (re)start munge
# if the key changed or munge is not running.
install_munge_key() {
    [ -s "$MUNGE_SHARED_KEY" ] || die "no munge key at $MUNGE_SHARED_KEY"
    id munge >/dev/null 2>&1 || die "no munge user: is munge installed (use mcc-examples/slurm:bookworm)?"
    mkdir -p /etc/munge
    chown munge:munge /etc/munge
    chmod 0700 /etc/munge
    _changed=0
    if ! cmp -s "$MUNGE_SHARED_KEY" /etc/munge/munge.key 2>/dev/null; then
        _tmp=/etc/munge/.munge.key.$$
        cp "$MUNGE_SHARED_KEY" "$_tmp"
        chown munge:munge "$_tmp"
        chmod 0400 "$_tmp"
        mv -f "$_tmp" /etc/munge/munge.key
        _changed=1
    fi
    systemctl enable --quiet munge.service 2>/dev/null || true
    if [ "$_changed" = 1 ] || ! systemctl is-active --quiet munge.service; then
        systemctl restart munge.service || die "munge did not start (journalctl -u munge)"
        say "munge (re)started with the cluster key"
    else
        say "munge already running with the cluster key"
    fi
    munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munge does not work here (journalctl -u munge)"
}

# --- Slurm -------------------------------------------------------------------

SLURM_CONF=/etc/slurm/slurm.conf

# A Slurm cluster name: lower case letters, digits, '-' and '_'.
cluster_name() {
    _name=$(printf '%s' "${MCC_CLUSTER:-mcc}" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9_-' '_')
    printf '%s\n' "${_name:-mcc}"
}

# slurm.conf for the front-end and the current workers. Every node computes
# the same file (CPUs: this node's nproc; all nodes share one host), so
# slurmctld sees no configuration mismatch.
slurm_conf() {
    _cpus=$(nproc)
    cat <<CONF
# Written by mcc's slurm example for cluster ${MCC_CLUSTER:-?} from MCC_NODES;
# rewritten on every node whenever nodes are added or removed (on-change/).
# Local edits are lost.
ClusterName=$(cluster_name)
SlurmctldHost=${MCC_FRONTEND}
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No cgroups: the nodes are containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# No mail in a container (slurmctld logs an error when MailProg is missing).
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# A node that was down (e.g. recreated) comes back when its slurmd registers.
ReturnToService=2
# Take CPUs from this file, not from what slurmd detects in its container.
SlurmdParameters=config_overrides
# Containers may not raise resource limits to the submitter's.
PropagateResourceLimits=NONE
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
SlurmdTimeout=120
InactiveLimit=0
KillWait=30
MinJobAge=300
Waittime=0
CONF
    _list=$(workers | paste -sd , -)
    if [ -n "$_list" ]; then
        workers | while read -r _w; do
            printf 'NodeName=%s CPUs=%s State=UNKNOWN\n' "$_w" "$_cpus"
        done
        printf 'PartitionName=main Nodes=%s Default=YES MaxTime=INFINITE State=UP\n' "$_list"
    else
        echo "# No workers yet."
    fi
}

# Write slurm.conf; status 0 if it changed.
write_slurm_conf() {
    mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
    chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm
    slurm_conf | update_file "$SLURM_CONF" 0644
}

# Wait until slurmctld answers (at most $1 seconds).
wait_slurmctld() {
    _i=0
    while ! scontrol ping 2>/dev/null | grep -q 'is UP'; do
        _i=$((_i + 1))
        [ "$_i" -le "$(($1 * 2))" ] || return 1
        sleep 0.5
    done
}

# Wait until every worker is registered and usable (at most $1 seconds).
# Status 1 on time-out; the workers still missing are printed.
wait_workers() {
    _i=0
    while :; do
        _missing=$(workers | while read -r _w; do
            sinfo -h -N -r -t idle,alloc,mix,comp -n "$_w" -o %N 2>/dev/null | grep -qx "$_w" ||
                printf '%s ' "$_w"
        done)
        [ -n "$_missing" ] || return 0
        _i=$((_i + 1))
        if [ "$_i" -gt "$(($1 * 2))" ]; then
            printf '%s\n' "$_missing"
            return 1
        fi
        sleep 0.5
    done
}

# --- Open MPI ----------------------------------------------------------------

HOSTFILE=/etc/mcc-hostfile
MCA_CONF=/etc/openmpi/openmpi-mca-params.conf

# The workers with their slots, for mpirun --hostfile.
write_hostfile() {
    _cpus=$(nproc)
    {
        echo "# Written by mcc's slurm example: the workers of cluster ${MCC_CLUSTER:-?}; rewritten when nodes change."
        workers | while read -r _w; do
            printf '%s slots=%s\n' "$_w" "$_cpus"
        done
    } | update_file "$HOSTFILE" 0644 || true
}

# The network interface that carries this node's cluster address.
cluster_interface() {
    _addr=$(getent ahostsv4 "$MCC_NODE" 2>/dev/null | awk '{ print $1; exit }')
    _if=""
    if [ -n "$_addr" ]; then
        _if=$(ip -o -4 addr show | awk -v a="$_addr" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')
    fi
    if [ -z "$_if" ]; then
        _if=$(ip -o -4 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
    fi
    printf '%s\n' "${_if:-eth0}"
}

# Our block in Open MPI's system-wide MCA parameters (Debian's own lines are
# kept): launch over ssh, use the cluster's interface, and place processes
# round-robin over the workers (mpirun -np <workers> runs one on each).
write_mca_params() {
    [ -f "$MCA_CONF" ] || return 0
    _if=$(cluster_interface)
    {
        sed '/^# BEGIN mcc slurm example/,/^# END mcc slurm example/d' "$MCA_CONF"
        cat <<CONF
# BEGIN mcc slurm example (rewritten by its scripts)
plm_rsh_agent = ssh
oob_tcp_if_include = $_if
btl_tcp_if_include = $_if
rmaps_base_mapping_policy = node
# END mcc slurm example
CONF
    } | update_file "$MCA_CONF" 0644 || true
}

# Everything that depends on the list of nodes, except the daemons.
# Status 0 if slurm.conf changed.
write_cluster_files() {
    write_ssh_client_config
    write_hostfile
    write_mca_params
    write_slurm_conf
}
