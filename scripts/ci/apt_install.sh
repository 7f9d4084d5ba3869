#!/usr/bin/env bash
# Install Debian packages from the machine's apt sources, one caller at a time.
#
#   scripts/ci/apt_install.sh PACKAGE...       (root)
#
# The one apt path of the test and e2e setup (install_chromium.sh, start_slurm.sh,
# install_podman.sh). Two `make test` (or a `make test` and a `make e2e`) on one machine both
# reach for apt at their start, and apt allows one at a time: the second failed with "Could not
# get lock /var/lib/apt/lists/lock". Callers here queue on one flock (STARFISH_BATCH_APT_LOCK),
# then install only what is still missing (the first may have installed it); any other apt
# user is waited for (DPkg::Lock::Timeout).
set -euo pipefail
if (($# == 0)); then
    echo "usage: $0 PACKAGE..." >&2
    exit 2
fi
lock=${STARFISH_BATCH_APT_LOCK:-/var/lock/starfish-batch-apt.lock}
wait_seconds=${STARFISH_BATCH_APT_WAIT:-900}

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q "install ok installed"; }

exec 9>"$lock"
if ! flock -w "$wait_seconds" 9; then
    echo "apt_install.sh: another install held $lock for $wait_seconds s: gave up on $*" >&2
    exit 1
fi
todo=()
for package in "$@"; do
    installed "$package" || todo+=("$package")
done
if ((${#todo[@]} == 0)); then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout="$wait_seconds" update -q
apt-get -o DPkg::Lock::Timeout="$wait_seconds" install -y -q "${todo[@]}"
