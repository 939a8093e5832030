#!/usr/bin/env bash
# Docker images for tests/docker_*.rs (issue 6): the registry-free base image
# (debootstrap, ~3 min the first time) and the airgate-mini instance images.
# Idempotent: both steps skip when their images exist.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! docker info >/dev/null 2>&1; then
    echo "10-docker-images: no docker daemon; tests/docker_*.rs will fail loudly" >&2
    exit 0
fi
"$root/scripts/build-base-image.sh"
"$root/tests/fixtures/docker_mini/build.sh"
