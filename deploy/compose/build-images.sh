#!/usr/bin/env bash
# Builds every image the compose topologies use, on a machine with a Docker engine but no image
# registry: rsrs (deploy/image/build-offline.sh, which also makes the Debian base by debootstrap),
# then the demo publisher (Debian's ffmpeg) and an nginx stand-in on that base. Debian's package
# mirror must be reachable from `docker build`.
# Usage: deploy/compose/build-images.sh [TAG]   (default latest)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TAG=${1:-latest}
bash "$ROOT/deploy/image/build-offline.sh" "rsrs:$TAG"
docker build -q -f "$ROOT/deploy/image/Dockerfile.publisher" -t "rsrs-publisher:$TAG" "$ROOT/deploy/image" >/dev/null
echo "build-images: built rsrs-publisher:$TAG"
docker build -q -t "rsrs-nginx:$TAG" "$ROOT/deploy/compose/hls-nginx/nginx" >/dev/null
echo "build-images: built rsrs-nginx:$TAG"
