#!/usr/bin/env bash
# `make e2e`: the whole system on this machine, no AWS account, no registry pull.
#
#   scripts/ci/e2e.sh            # as root; about 8 to 9 minutes on 2 cores from scratch
#
# Phases (each one timed; the summary is printed at the end, also on failure):
#   1. podman, buildah, runc, debootstrap from the machine's apt sources;
#   2. a Debian bookworm base image (debootstrap from the host's apt mirror, podman import);
#   3. both worker images (workers/Dockerfile) FROM that base image, tagged localhost/...:e2e;
#   4. tests/e2e/test_e2e_batch_containers.py: podman's Docker API service and a moto server
#      (127.0.0.1) whose Batch runs the images; the Terraform module applied against moto; the
#      launcher (`--executor batch`, follow mode) on a 3-FOV demo in moto's S3, once with the
#      ISS recipe (merged result == the local executor's) and once with a recipe that fails
#      on one FOV (reported with its log lines, non-zero exit);
#   5. teardown (trap, also on failure or Ctrl-C): stop the service and moto by PID, remove
#      every image and container of the e2e storage, delete E2E_STATE.
#
# Env: E2E_STATE (default build/e2e-containers: podman storage, sockets, logs; several GB),
#      E2E_KEEP=1 keeps the state (images) for a faster re-run, PYTHON (default .venv/bin/python),
#      PYTEST_ARGS (extra pytest arguments).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
state=${E2E_STATE:-$repo/build/e2e-containers}
mkdir -p "$state"
state=$(cd "$state" && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
base_image=localhost/starfish-batch-base:bookworm
prefix=localhost/starfish-batch-
tag=e2e
timings=$(mktemp "${TMPDIR:-/tmp}/e2e-timings.XXXXXX")
t_all=$(date +%s)

if [[ $(id -u) -ne 0 ]]; then
    echo "e2e.sh: needs root (apt-get, debootstrap, rootful podman with vfs and runc)" >&2
    exit 1
fi
if [[ ! -x $python ]]; then
    echo "e2e.sh: $python missing: run \`make venv\` first" >&2
    exit 1
fi

summary() {
    echo "e2e.sh: phase timings (s):" >&2
    column -t -s $'\t' "$timings" | sed 's/^/  /' >&2 || cat "$timings" >&2
    echo "  total: $(($(date +%s) - t_all)) s" >&2
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # The test's own phases (a part of the pytest phase), indented below it.
    if [[ -f $timings.pytest ]]; then
        cat "$timings.pytest" >>"$timings"
    fi
    local t
    t=$(date +%s)
    if [[ ${E2E_KEEP:-0} == 1 ]]; then
        # Still stop what runs (by PID files); keep images and storage.
        if [[ -f $state/moto.pid ]]; then
            kill -TERM "$(cat "$state/moto.pid")" 2>/dev/null || true
            rm -f "$state/moto.pid"
        fi
        scripts/containers/podman_service.sh stop "$state" || true
        echo "e2e.sh: E2E_KEEP=1: kept $state" >&2
    else
        scripts/containers/teardown.sh "$state" || rc=1
    fi
    printf 'teardown\t%s\n' "$(($(date +%s) - t))" >>"$timings"
    summary
    rm -f "$timings" "$timings.pytest"
    if ((rc == 0)); then echo "e2e.sh: PASSED" >&2; else echo "e2e.sh: FAILED (exit $rc)" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase() { # phase NAME COMMAND...
    local name=$1 t
    t=$(date +%s)
    shift
    echo "=== e2e.sh: $name" >&2
    "$@"
    printf '%s\t%s\n' "$name" "$(($(date +%s) - t))" >>"$timings"
}

phase "install podman" scripts/containers/install_podman.sh
scripts/containers/podman_env.sh "$state" >"$state/env.sh"
# shellcheck disable=SC1091
. "$state/env.sh"
phase "base image (debootstrap)" scripts/containers/build_base_image.sh "$base_image"
phase "worker images" env CONTAINER_ENGINE=podman IMAGE_TAG="$tag" IMAGE_PREFIX="$prefix" \
    BASE_IMAGE="$base_image" BUILD_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    scripts/containers/build_images.sh
podman image ls --filter reference="${prefix}*" >&2

# shellcheck disable=SC2086 # PYTEST_ARGS is meant to be split
# The test writes its own phases (service start, apply, runs, checks) to $timings.pytest.
phase "pytest (stack + terraform + runs + checks)" env E2E_BUILD=0 E2E_STATE="$state" \
    E2E_TIMINGS="$timings.pytest" "$python" -m pytest -m e2e -s -q -p no:cacheprovider -ra \
    tests/e2e/test_e2e_batch_containers.py tests/e2e/test_e2e_packed.py ${PYTEST_ARGS:-}
