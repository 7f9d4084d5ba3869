#!/usr/bin/env bash
# Build the local base image for the worker Dockerfiles without any registry pull:
# debootstrap a minimal Debian bookworm with python3 + venv + CA certificates, copy the host
# CA bundle in, and `podman import` it.
#
#   eval "$(scripts/containers/podman_env.sh STATE_DIR)"
#   scripts/containers/build_base_image.sh [IMAGE]      # default localhost/starfish-batch-base:bookworm
#
# Env: MIRROR (default: this machine's apt source for bookworm, see apt_mirror.sh),
#      HOST_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt), FORCE=1 to rebuild.
# Needs root (debootstrap) and CONTAINERS_CONF / CONTAINERS_STORAGE_CONF from podman_env.sh.
#
# The result behaves like python:3.11-slim-bookworm for workers/Dockerfile: python is
# /usr/bin/python3 (3.11), `python3 -m venv` works offline (ensurepip), there is no pip on
# PATH, and /etc/ssl/certs/ca-certificates.crt is the host's bundle (so builds can pass
# --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt when the host's PyPI route needs it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=${1:-localhost/starfish-batch-base:bookworm}
ca_bundle=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
: "${CONTAINERS_STORAGE_CONF:?run: eval \"\$(scripts/containers/podman_env.sh STATE_DIR)\" first}"

if [[ ${FORCE:-0} != 1 ]] && podman image exists "$image"; then
    echo "build_base_image.sh: $image exists (FORCE=1 to rebuild)" >&2
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "build_base_image.sh: debootstrap needs root" >&2
    exit 1
fi
mirror=${MIRROR:-$("$here/apt_mirror.sh" bookworm)}
start=$(date +%s)
# Next to the vfs storage (same filesystem, and cleaned with it), not in /tmp.
work_parent=$(dirname "$CONTAINERS_STORAGE_CONF")/tmp
mkdir -p "$work_parent"
rootfs=$(mktemp -d "$work_parent/rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

echo "build_base_image.sh: debootstrap bookworm from the host's apt mirror" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"
# mktemp -d made the root 0700: as the image's / it would lock every non-root user out
# ("exec: sh: executable file not found in $PATH" for USER 10001).
chmod 0755 "$rootfs"
install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
# Smaller: no apt lists or package cache, docs or man pages. (apt itself stays usable after
# an `apt-get update`.)
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/log/*.log

tar -C "$rootfs" --numeric-owner -cf - . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/usr/bin/python3"]' \
    --message "debootstrap --variant=minbase bookworm + python3 python3-venv ca-certificates" \
    - "$image" >/dev/null
echo "build_base_image.sh: $image built in $(($(date +%s) - start)) s" >&2
podman image ls "$image"
