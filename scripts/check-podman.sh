#!/usr/bin/env bash
# The container backend on Podman (issue 14, item 4): eval on the mini
# instances, solve --sandbox docker, and the hardening tests, against
# `podman system service` (AIRGATE_ENGINE=podman; scripts/podman-setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -S /run/podman/podman.sock ]; then
    echo "podman: no /run/podman/podman.sock (run scripts/podman-setup.sh)" >&2
    exit 1
fi
export AIRGATE_ENGINE=podman
cargo nextest run --no-fail-fast --test all \
    -E 'test(=docker_eval::gold_wrong_and_broken_patches) | test(=docker_eval::missing_image_is_a_named_infrastructure_failure) | test(=docker_solve::solve_in_docker_reaches_verified_and_touches_only_the_workspace) | test(/^docker_hardening::/)'
