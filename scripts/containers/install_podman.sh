#!/usr/bin/env bash
# Install podman, buildah, runc and debootstrap from the machine's apt sources (Debian bookworm).
# Needs root. Prints the elapsed seconds. Idempotent: skips apt when all four are present.
set -euo pipefail
start=$(date +%s)
missing=()
for tool in podman buildah runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install_podman.sh: need root to apt-get install: ${missing[*]}" >&2
        exit 1
    fi
    "$(dirname "$0")/../ci/apt_install.sh" podman buildah runc debootstrap
fi
podman --version
echo "install_podman.sh: done in $(($(date +%s) - start)) s" >&2
