#!/usr/bin/env bash
# Build both worker images from workers/Dockerfile (targets process-fov and merge-batch-job).
#
#   scripts/containers/build_images.sh [TARGET...]      # default: process-fov merge-batch-job
#
# Env (the Makefile passes its variables through):
#   CONTAINER_ENGINE  docker (default) or podman
#   IMAGE_TAG         default latest
#   IMAGE_PREFIX      default starfish-batch-  -> starfish-batch-process-fov:TAG, ...
#   BASE_IMAGE        default: the Dockerfile's own (python:3.11-slim-bookworm)
#   BUILD_CA_BUNDLE   path of a CA bundle INSIDE the base image; passed as PIP_CERT,
#                     SSL_CERT_FILE and REQUESTS_CA_BUNDLE build args (only when set)
#   PIP_INDEX_URL / PIP_EXTRA_INDEX_URL   passed as build args only when BUILD_PIP_INDEX=1
#                     (the host's may be file:// paths that do not exist in the build)
#   BUILD_ARGS        extra arguments for `$CONTAINER_ENGINE build`
# Prints each image's build time on stderr, then each image's size (scripts/containers/image_sizes.py).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
engine=${CONTAINER_ENGINE:-docker}
tag=${IMAGE_TAG:-latest}
prefix=${IMAGE_PREFIX:-starfish-batch-}
targets=("$@")
((${#targets[@]})) || targets=(process-fov merge-batch-job)

args=(build -f "$repo/workers/Dockerfile")
[[ -n ${BASE_IMAGE:-} ]] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
if [[ -n ${BUILD_CA_BUNDLE:-} ]]; then
    args+=(--build-arg "PIP_CERT=$BUILD_CA_BUNDLE" --build-arg "SSL_CERT_FILE=$BUILD_CA_BUNDLE"
        --build-arg "REQUESTS_CA_BUNDLE=$BUILD_CA_BUNDLE")
fi
if [[ ${BUILD_PIP_INDEX:-0} == 1 ]]; then
    [[ -n ${PIP_INDEX_URL:-} ]] && args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
    [[ -n ${PIP_EXTRA_INDEX_URL:-} ]] && args+=(--build-arg "PIP_EXTRA_INDEX_URL=$PIP_EXTRA_INDEX_URL")
fi
# podman/buildah default to the OCI format, which drops HEALTHCHECK; ECR and Batch take both,
# but keep what the Dockerfile says.
[[ $(basename "$engine") == podman* ]] && args+=(--format docker)
# shellcheck disable=SC2206 # BUILD_ARGS is meant to be split
[[ -n ${BUILD_ARGS:-} ]] && args+=(${BUILD_ARGS})

built=()
for target in "${targets[@]}"; do
    start=$(date +%s)
    echo "+ $engine ${args[*]} --target $target -t $prefix$target:$tag $repo/workers" >&2
    "$engine" "${args[@]}" --target "$target" -t "$prefix$target:$tag" "$repo/workers"
    echo "build_images.sh: $prefix$target:$tag built in $(($(date +%s) - start)) s" >&2
    built+=("$prefix$target:$tag")
done
# Each image's size, uncompressed and as compressed layers (what a registry stores, Fargate pulls).
python3 "$repo/scripts/containers/image_sizes.py" --engine "$engine" "${built[@]}" \
    || echo "build_images.sh: image sizes not measured" >&2
