#!/usr/bin/env bash
# Write podman configuration for this machine into STATE_DIR and print `export` lines for it.
#
#   eval "$(scripts/containers/podman_env.sh STATE_DIR)"
#
# STATE_DIR gets containers.conf, storage.conf, storage/ (vfs graphroot), run/ (runroot),
# tmp/, and later podman.sock / podman.pid (podman_service.sh). Nothing outside STATE_DIR is
# touched, so the host's own podman/docker setup (if any) is left alone.
#
# Why these settings (tried on this machine):
#   - crun cannot set rlimits here, and the default ulimits podman asks for fail: use runc and
#     explicit, modest default_ulimits;
#   - the host has hybrid cgroups without systemd as PID 1: cgroup_manager = "cgroupfs";
#   - storage driver vfs works everywhere (no overlay/fuse needed), but copies every layer:
#     budget several GB under STATE_DIR.
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
mkdir -p "$1"
state=$(cd "$1" && pwd)
mkdir -p "$state/storage" "$state/run" "$state/tmp"
cat >"$state/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = "$state/tmp"
CONF
cat >"$state/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$state/storage"
runroot = "$state/run"
CONF
cat <<ENV
export CONTAINERS_CONF='$state/containers.conf'
export CONTAINERS_STORAGE_CONF='$state/storage.conf'
export DOCKER_HOST='unix://$state/podman.sock'
ENV
