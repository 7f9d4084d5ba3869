#!/usr/bin/env bash
# Undo everything the e2e container setup made under STATE_DIR: stop the podman API service
# and a moto server recorded there (by their PID files), remove all containers and images of
# that storage, and delete STATE_DIR. The host's own podman storage is never touched.
#
#   scripts/containers/teardown.sh STATE_DIR
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
[[ -d $1 ]] || { echo "teardown.sh: $1 does not exist, nothing to do" >&2; exit 0; }
state=$(cd "$1" && pwd)
if [[ ! -f $state/storage.conf ]]; then
    echo "teardown.sh: $state has no storage.conf: not a podman_env.sh state dir, refusing" >&2
    exit 1
fi
"$here/stop_pidfile.sh" "$state/moto.pid"
"$here/podman_service.sh" stop "$state"
eval "$("$here/podman_env.sh" "$state")"
if command -v podman >/dev/null 2>&1; then
    podman rm --all --force >/dev/null 2>&1 || true
    podman rmi --all --force >/dev/null 2>&1 || true
    podman volume prune --force >/dev/null 2>&1 || true
fi
# vfs layers may contain read-only directories: make them writable before removing.
chmod -R u+w "$state" 2>/dev/null || true
rm -rf "$state"
echo "teardown.sh: removed $state" >&2
