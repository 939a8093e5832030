#!/usr/bin/env bash
# The container backend on Podman (issue 14, item 4): the container tests
# (eval, solve --sandbox docker, the sandbox and hardening tests, validate,
# image bundles), `factory run --sandbox docker` and `images build` from
# mirrors, against
# `podman system service` (AIRGATE_ENGINE=podman; scripts/podman-setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
sock=/run/podman/podman.sock
if ! podman --remote --url "unix://$sock" version >/dev/null 2>&1; then
    echo "podman: nothing answers on $sock (run scripts/podman-setup.sh)" >&2
    exit 1
fi
export AIRGATE_ENGINE=podman
# The default socket, whatever DOCKER_HOST says for Docker.
unset DOCKER_HOST
status=0
cargo nextest run --no-fail-fast --test-threads "${AIRGATE_TEST_THREADS:-4}" --test all \
    -E 'test(/^docker_eval::/) | test(/^docker_solve::/) | test(/^docker_sandbox::/)
        | test(/^docker_hardening::/) | test(/^docker_validate::/)
        | test(=factory_e2e::docker_only_the_solvers_rows_land)' || status=$?
# The bundle tests tag and remove images with the podman CLI. Podman 4.3
# loses tags when two processes tag/untag at once (reproduced with two
# `podman tag`/`podman rmi` loops: 2 of 20 tags gone), so they run alone,
# one at a time. So does the image build from mirrors (build → validate →
# eval → factory run with the corpus row's image digest), which builds
# images under fixed names.
cargo nextest run --no-fail-fast --test-threads 1 --test all \
    -E 'test(/^docker_images::/) | test(=images_build::build_validate_eval_from_mirrors)' || status=$?
exit "$status"
