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
# output appended to /opt/mcc/shared/.mcc/logs/$MCC_NODE.log. The first
# failing script stops the run: its name, exit code and last lines are
# printed for mcc. With MCC_RUN set, the outcome is also written to
# /opt/mcc/shared/.mcc/runs/$MCC_NODE ("$MCC_RUN ok" or "$MCC_RUN failed"),
# which is how workers started with MCC_WAIT_FRONTEND wait for the
# front-end's scripts of the same run. /opt/mcc itself is read-only here.
LC_ALL=C
export LC_ALL
logs=/opt/mcc/shared/.mcc/logs
log="$logs/$MCC_NODE.log"
state=/opt/mcc/shared/.mcc/runs
# These are on the volume every node writes: a link there (left by a
# node's root) is replaced by the folder it should be.
for d in /opt/mcc/shared/.mcc "$logs" "$state"; do
    if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then rm -f "$d"; fi
    mkdir -p "$d"
done

outcome() {
    [ -n "${MCC_RUN:-}" ] && printf '%s %s\n' "$MCC_RUN" "$1" >"$state/$MCC_NODE"
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
    last=$(head -n 1 "$state/$MCC_NODE.start" 2>/dev/null)
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
            front=$(cat "$state/frontend" 2>/dev/null)
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
        out="$logs/.$MCC_NODE.current"
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
            [ -n "$restart" ] && printf '%s failed\t%s\t%s\n' "$start_no" "$script" "$rc" >"$state/$MCC_NODE.start"
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
[ -n "$restart" ] && printf '%s ok\n' "$start_no" >"$state/$MCC_NODE.start"
outcome ok
printf 'mcc-context-ok\n'
exit 0
