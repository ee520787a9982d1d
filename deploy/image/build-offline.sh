#!/usr/bin/env bash
# Builds the rsrs image on a machine with a Docker engine but no image registry:
#   1. debootstrap a minimal Debian bookworm rootfs and `docker import` it as debian:bookworm-slim
#      (skipped if that image exists);
#   2. build rsrs with the host's cargo;
#   3. docker build the runtime image around that binary (Dockerfile.prebuilt).
# Usage: deploy/image/build-offline.sh [TAG]   (default rsrs:latest; needs root for debootstrap)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TAG=${1:-rsrs:latest}
BASE=debian:bookworm-slim
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }
    rootfs=$(mktemp -d)
    echo "build-offline: debootstrap $BASE into $rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - "$BASE" >/dev/null
    rm -rf "$rootfs"
fi
(cd "$ROOT" && cargo build --release --bin rsrs)
strip_tool=$(command -v strip || true)
ctx=$(mktemp -d)
cp "$ROOT/target/release/rsrs" "$ROOT/deploy/image/Dockerfile.prebuilt" "$ROOT/deploy/image/rootfs.sh" "$ctx/"
# Debug info is for profiling on the build machine; the image does not need it.
[ -n "$strip_tool" ] && "$strip_tool" --strip-debug "$ctx/rsrs"
cp "$ROOT/etc/init.d/srs" "$ctx/srs"
cp -r "$ROOT/deploy/image/conf" "$ctx/conf"
cp "$ROOT/crates/rsrs-server/assets/index.html" "$ctx/"
docker build -q -f "$ctx/Dockerfile.prebuilt" -t "$TAG" "$ctx" >/dev/null
rm -rf "$ctx"
echo "build-offline: built $TAG ($(docker image inspect "$TAG" --format '{{.Size}}' | awk '{printf "%.1f MB", $1/1e6}'))"
