#!/bin/sh
# Runs a cluster's context scripts on this node. Written by mcc into
# /opt/mcc/bin/run-context and started by mcc as:
#   sh /opt/mcc/bin/run-context PHASE...    (PHASE: all, frontend, workers, on-change)
# Scripts of each phase run in name order (byte order), executable ones
# directly and the others with sh, from the context folder, with their
# output appended to /opt/mcc/logs/$MCC_NODE.log. The first failing script
# stops the run: its name, exit code and last lines are printed for mcc.
LC_ALL=C
export LC_ALL
logs=/opt/mcc/logs
log="$logs/$MCC_NODE.log"
mkdir -p "$logs"
cd /opt/mcc/context || exit 0
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
            printf 'mcc-context-failed\t%s\t%s\n' "$script" "$rc"
            tail -n 20 "$out"
            rm -f "$out"
            exit "$rc"
        fi
        rm -f "$out"
    done
done
exit 0
