# shellcheck shell=bash
# Helpers shared by scripts/private-engine and scripts/hosts: dockerds in
# network namespaces of their own (ENGINE-FACTS.md, "Several hosts on one
# machine"). Sourced, never run; the caller sets PROG (its name in
# messages) and `set -euo pipefail`.

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    log "$*"
    exit 1
}

# --- a lock that is a directory ---------------------------------------------
# take_dir_lock DIR: flock on DIR itself, held on fd 9 until the script
# exits (children that outlive it must be started with `9<&-`). Whoever
# removes DIR when its last user goes does so under the lock, so a waiter
# checks that what it locked is still the directory at that path.

take_dir_lock() {
    local dir=$1
    while :; do
        mkdir -p "$dir"
        exec 9<"$dir"
        flock 9
        if [ -d "$dir" ] &&
            [ "$(stat -c '%d:%i' "$dir")" = "$(stat -L -c '%d:%i' /proc/self/fd/9)" ]; then
            return 0
        fi
        exec 9<&-
    done
}

# --- IPv4 arithmetic ----------------------------------------------------------

# (Results in REPLY, not on stdout: these run for every route at every
# sync, and a $(…) costs a fork.)

ip2int() {
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    REPLY=$(((a << 24) | (b << 16) | (c << 8) | d))
}

is_cidr() {
    [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(/([0-9]{1,2}))?$ ]] || return 1
    local i
    for i in 1 2 3 4; do
        [ "${BASH_REMATCH[$i]}" -le 255 ] || return 1
    done
    [ -z "${BASH_REMATCH[6]}" ] || [ "${BASH_REMATCH[6]}" -le 32 ]
}

mask_of() {
    if [ "$1" -eq 0 ]; then REPLY=0; else REPLY=$(((0xFFFFFFFF << (32 - $1)) & 0xFFFFFFFF)); fi
}

# The network of a CIDR (an address alone is a /32), as "a.b.c.d/p".
canonical() {
    local p=32 n
    [[ $1 == */* ]] && p=${1#*/}
    ip2int "${1%/*}"
    n=$REPLY
    mask_of "$p"
    n=$((n & REPLY))
    REPLY="$(((n >> 24) & 255)).$(((n >> 16) & 255)).$(((n >> 8) & 255)).$((n & 255))/$p"
}

overlaps() {
    local a b p
    ip2int "${1%/*}"
    a=$REPLY
    ip2int "${2%/*}"
    b=$REPLY
    p=$((${1#*/} < ${2#*/} ? ${1#*/} : ${2#*/}))
    mask_of "$p"
    [ $((a & REPLY)) -eq $((b & REPLY)) ]
}

# host_prefixes [DEV PROTO]: every IPv4 prefix the host's namespace routes
# or holds, but the default routes and (with arguments) the routes of
# interface DEV with protocol PROTO: "prefix<TAB>what" lines.
host_prefixes() {
    local ours=${1:-} proto=${2:-} line dst f
    while read -r line; do
        [ -n "$line" ] || continue
        read -r -a f <<<"$line"
        dst=${f[0]}
        case $dst in
        unicast | local | broadcast | multicast | anycast | blackhole | unreachable | prohibit | throw | nat)
            dst=${f[1]:-}
            ;;
        esac
        [ "$dst" != default ] || continue
        is_cidr "$dst" || continue
        if [ -n "$ours" ] && [[ " $line " == *" dev $ours "* ]] && [[ " $line " == *" proto $proto "* ]]; then
            continue
        fi
        canonical "$dst"
        printf '%s\t%s\n' "$REPLY" "route '$line'"
    done < <(ip -4 -o route show table all)
    while read -r _ dev _ addr _; do
        is_cidr "$addr" || continue
        canonical "$addr"
        printf '%s\t%s\n' "$REPLY" "address $addr of $dev"
    done < <(ip -4 -o addr show)
}

# --- processes ----------------------------------------------------------------

ns_id() { stat -L -c '%d:%i' "$1" 2>/dev/null; }

# Seconds since $1 (an $EPOCHREALTIME), to a tenth.
since() {
    local us=$((${EPOCHREALTIME/./} - ${1/./}))
    printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

# Whether a process runs; a zombie does not (its parent may be an init that
# reaps late).
alive() {
    local stat
    [ -n "${1:-}" ] && read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

wait_gone() {
    local pid=$1 tenths=$2
    while alive "$pid" && [ "$tenths" -gt 0 ]; do
        sleep 0.1
        tenths=$((tenths - 1))
    done
    ! alive "$pid"
}

# netns_cgroup_pids NETNS_PATH CGROUP: pids of the processes in that network
# namespace (dockerd, containerd, the shims, docker-proxy, host-network
# containers) and in cgroup CGROUP of any hierarchy (every container's
# processes, whatever their namespace).
netns_cgroup_pids() {
    local netns_path=$1 cgroup=$2 p a comm args=() procs
    for p in /proc/[0-9]*; do
        # builtins only: this runs over every process, several times a stop
        if [ -e "$netns_path" ] && [ "$p/ns/net" -ef "$netns_path" ]; then
            echo "${p#/proc/}"
            continue
        fi
        # shims of a containerd outside the namespace (a system one, when
        # /run/containerd/containerd.sock exists) name our containerd namespace
        read -r comm 2>/dev/null <"$p/comm" || continue
        [[ $comm == containerd-shim* ]] || continue
        mapfile -d '' -t args 2>/dev/null <"$p/cmdline" || continue
        for a in "${args[@]}"; do
            if [ "$a" = "$cgroup" ]; then
                echo "${p#/proc/}"
                break
            fi
        done
    done
    for procs in /sys/fs/cgroup/*/"$cgroup"; do
        [ -d "$procs" ] || continue
        find "$procs" -name cgroup.procs -exec cat {} + 2>/dev/null || true
    done
}

# mounts_under DIR...: mount points at or under any DIR, deepest first
# (mountinfo escapes spaces and such as \0NN).
mounts_under() {
    local mp d
    while read -r _ _ _ _ mp _; do
        mp=$(printf '%b' "${mp//\\/\\0}")
        for d in "$@"; do
            case $mp in "$d" | "$d"/*)
                echo "$mp"
                break
                ;;
            esac
        done
    done </proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}
