#!/usr/bin/env bash
# Build and try the CPU image where no image registry is reachable (Debian packages and PyPI are).
# A Debian bookworm rootfs made with debootstrap, with Debian's Python 3.11, stands in for
# python:3.11-slim-bookworm; buildah builds docker/Dockerfile.cpu on it with chroot isolation
# (no daemon, no OCI runtime). Needs root, debootstrap and buildah (apt-get install debootstrap buildah).
#
#   BUILD_VOLUMES        space-separated buildah -v specs for the RUN steps (e.g. a pip.conf, a CA bundle)
#   PIP_EXTRA_INDEX_URL  overrides the Dockerfile's torch index (download.pytorch.org) when it is unreachable
#   DEBIAN_MIRROR        default http://deb.debian.org/debian
#   IMAGE                default localhost/autovc-onnx-tf:cpu
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=localhost/stand-in/python:3.11-slim-bookworm
IMAGE=${IMAGE:-localhost/autovc-onnx-tf:cpu}

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase bookworm "$work/rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
    chroot "$work/rootfs" /bin/sh -c 'apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            ca-certificates python3 python3-venv python-is-python3 \
        && apt-get clean && rm -rf /var/lib/apt/lists/*'
    rm "$work/rootfs/etc/resolv.conf"
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    container=$(buildah from scratch)
    buildah add "$container" "$work/rootfs.tar" /
    buildah commit --rm "$container" "$BASE"
fi

args=(--isolation chroot --network host --layers --build-arg "BASE_IMAGE=$BASE")
for volume in ${BUILD_VOLUMES:-}; do
    args+=(-v "$volume")
done
if [[ -n ${PIP_EXTRA_INDEX_URL:-} ]]; then
    args+=(--build-arg "PIP_EXTRA_INDEX_URL=$PIP_EXTRA_INDEX_URL")
fi
buildah bud "${args[@]}" -f "$ROOT/docker/Dockerfile.cpu" -t "$IMAGE" "$ROOT"
