#!/bin/sh
# Runs a cluster's context scripts on this node. Written by mcc into
# /opt/mcc/bin/run-context. Two ways in:
#   sh /opt/mcc/bin/run-context PHASE...   started by mcc (exec), PHASE one of
#                                          all, frontend, workers, on-change
#   sh /opt/mcc/bin/run-context --boot     started by the node's own first
#                                          process when mcc keeps it alive: the
#                                          creation phases of its role and
#                                          on-start, once per container (marker
#                                          /.mcc-context-done)
#   sh /opt/mcc/bin/run-context --restart  started by that process at every
#                                          later start (mcc start, an engine
#                                          restart): the on-start phase; the
#                                          outcome goes to runs/$MCC_NODE.start
# Scripts of each phase run in name order (byte order), executable ones
# directly and the others with sh, from the context folder, with their
# output appended to /var/log/mcc/context.log on this node. The first
# failing script stops the run: its name, exit code and last lines are
# printed for mcc. With MCC_RUN set, the outcome is also written to
# /opt/mcc/shared/.mcc/runs/$MCC_NODE ("$MCC_RUN ok" or "$MCC_RUN failed"),
# which is how workers started with MCC_WAIT_FRONTEND wait for the
# front-end's scripts of the same run. /opt/mcc itself is read-only here.
LC_ALL=C
export LC_ALL
# The log is this node's own (other nodes could plant links in a shared
# folder and make this root write through them).
logs=/var/log/mcc
log="$logs/context.log"
umask 022
mkdir -p "$logs"
state=/opt/mcc/shared/.mcc/runs
# The run outcomes are on the volume every node writes: a link there (left
# by a node's root) is replaced by the folder it should be, and files are
# written by rename, which replaces a link instead of writing through it.
for d in /opt/mcc/shared/.mcc "$state"; do
    if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then rm -f "$d"; fi
    mkdir -p "$d"
done

# put FILE TEXT: FILE (in the shared folder) holds TEXT, written whole.
put() {
    tmp=$(mktemp "$state/.put.XXXXXX") || return 0
    printf '%s\n' "$2" >"$tmp" && mv -f "$tmp" "$1"
    rm -f "$tmp"
    return 0
}

outcome() {
    [ -n "${MCC_RUN:-}" ] && put "$state/$MCC_NODE" "$MCC_RUN $1"
    return 0
}

boot=
restart=
if [ "${1:-}" = --restart ]; then
    MCC_NODES=$(cat /opt/mcc/nodes 2>/dev/null)
    export MCC_NODES
    MCC_RUN=
    set -- on-start
    restart=1
    # Each report carries the start's number, one more than the last
    # report's: mcc waits for a number above the one it saw before.
    last=$([ -f "$state/$MCC_NODE.start" ] && [ ! -L "$state/$MCC_NODE.start" ] &&
        head -c 64 "$state/$MCC_NODE.start" | head -n 1)
    last=${last%% *}
    case $last in '' | *[!0-9]*) last=0 ;; esac
    start_no=$((last + 1))
fi
if [ "${1:-}" = --boot ]; then
    boot=1
    [ -e /.mcc-context-done ] && exit 0
    MCC_NODES=$(cat /opt/mcc/nodes 2>/dev/null)
    export MCC_NODES
    if [ "$MCC_ROLE" = frontend ]; then set -- all frontend on-start; else set -- all workers on-start; fi
    if [ -n "${MCC_WAIT_FRONTEND:-}" ]; then
        while :; do
            front=$([ -f "$state/frontend" ] && [ ! -L "$state/frontend" ] &&
                head -c 200 "$state/frontend" 2>/dev/null)
            [ "${front%% *}" = "$MCC_RUN" ] && break
            sleep 0.1
        done
        if [ "${front#* }" != ok ]; then
            printf 'mcc-context-skipped\n'
            exit 1
        fi
    fi
fi

cd /opt/mcc/context || { outcome ok; exit 0; }
for phase in "$@"; do
    [ -d "$phase" ] || continue
    for script in "$phase"/*; do
        [ -f "$script" ] || continue
        out="$logs/current"
        printf '==> %s %s (%s)\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$script" "$MCC_ROLE" >>"$log"
        if [ -x "$script" ]; then
            "./$script" >"$out" 2>&1 </dev/null
        else
            sh "./$script" >"$out" 2>&1 </dev/null
        fi
        rc=$?
        cat "$out" >>"$log"
        if [ "$rc" -ne 0 ]; then
            printf '<== exit code %s\n' "$rc" >>"$log"
            outcome failed
            [ -n "$restart" ] && put "$state/$MCC_NODE.start" "$(printf '%s failed\t%s\t%s' "$start_no" "$script" "$rc")"
            printf 'mcc-context-failed\t%s\t%s\n' "$script" "$rc"
            tail -n 20 "$out"
            rm -f "$out"
            printf 'mcc-context-end\n'
            exit "$rc"
        fi
        rm -f "$out"
    done
done
[ -n "$boot" ] && : >/.mcc-context-done
[ -n "$restart" ] && put "$state/$MCC_NODE.start" "$start_no ok"
outcome ok
printf 'mcc-context-ok\n'
exit 0
