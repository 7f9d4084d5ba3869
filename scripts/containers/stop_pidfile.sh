#!/usr/bin/env bash
# Stop the process whose PID is in PIDFILE (TERM, then KILL after 10 s) and remove PIDFILE.
# Does nothing when PIDFILE does not exist.
#
#   scripts/containers/stop_pidfile.sh PIDFILE
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 PIDFILE" >&2
    exit 2
fi
pidfile=$1
[[ -f $pidfile ]] || exit 0
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
fi
rm -f "$pidfile"
