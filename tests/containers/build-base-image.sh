#!/usr/bin/env bash
# Builds a stand-in for python:3.11-slim-bookworm from Debian packages, because no image
# registry is reachable here. The result is imported into podman/buildah's vfs storage as
# IMAGE. The root filesystem tarball is kept under CACHE_DIR so a machine that lost its
# container storage re-imports in seconds instead of running debootstrap again (~3 min).
#
# usage: build-base-image.sh [IMAGE]      env: CACHE_DIR (default /var/tmp/llm-healthcheck)
set -euo pipefail

IMAGE="${1:-localhost/debian-python:bookworm}"
CACHE_DIR="${CACHE_DIR:-/var/tmp/llm-healthcheck}"
SUITE=bookworm
TARBALL="$CACHE_DIR/debian-python-$SUITE.tar"
STORAGE=(--storage-driver vfs)

if podman "${STORAGE[@]}" image exists "$IMAGE"; then
  echo "base image $IMAGE already present"
  exit 0
fi

mkdir -p "$CACHE_DIR"
if [[ ! -s "$TARBALL" ]]; then
  rootfs="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  # mktemp makes the directory 0700; it becomes the image's "/", which every user must traverse.
  chmod 0755 "$rootfs"
  # Remove the half-built tree whatever happens, after unmounting what debootstrap may have left
  # mounted inside it (an interrupted run leaves /proc mounted); never leave a partial tarball.
  _cleanup() {
    grep -o " $rootfs/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf --one-file-system "$rootfs" "$TARBALL.partial"
  }
  trap _cleanup EXIT
  echo "debootstrap $SUITE into $rootfs (takes a few minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" >"$CACHE_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  # Package lists and caches only add weight to every image built on top.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$TARBALL.partial" .
  mv "$TARBALL.partial" "$TARBALL"
fi

podman "${STORAGE[@]}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  "$TARBALL" "$IMAGE" >/dev/null
echo "imported $IMAGE from $TARBALL"
