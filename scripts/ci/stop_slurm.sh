#!/usr/bin/env bash
# Stop the one-node Slurm that scripts/ci/start_slurm.sh started in DIR: slurmd, slurmctld and
# munged, each by the PID in its PID file (TERM, then KILL after 10 s). DIR itself is kept.
#
#   scripts/ci/stop_slurm.sh DIR
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
stop=$(dirname "$0")/../containers/stop_pidfile.sh
for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    "$stop" "$pidfile"
done
