#!/usr/bin/env bash
# The container tests on Podman as well as Docker (issue 14, item 4):
# scripts/podman-setup.sh (podman + runc from Debian, the API service, the
# fixture images copied from Docker), then scripts/check-podman.sh. Leaves
# nothing behind that a later check could trip on: the containers and test
# images of the run are removed, and a service this check started is stopped
# (one that was already running is left running).
set -euo pipefail
cd "$(dirname "$0")/../.."
pidfile=/run/podman/airgate-service.pid
started=1
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    started=0
elif command -v podman >/dev/null &&
    podman --remote --url unix:///run/podman/podman.sock version >/dev/null 2>&1; then
    started=0
fi

# What Podman holds before the run; cleanup removes only what the run added
# (the fixture images stay loaded for the next run).
before_ctrs=$(mktemp)
before_imgs=$(mktemp)
snapshot() {
    command -v podman >/dev/null || return 0
    podman ps -aq --no-trunc | sort > "$1"
    podman images -q --no-trunc | sed 's/^sha256://' | sort -u > "$2"
}
snapshot "$before_ctrs" "$before_imgs"
cleanup() {
    if command -v podman >/dev/null; then
        local now_ctrs now_imgs
        now_ctrs=$(mktemp)
        now_imgs=$(mktemp)
        snapshot "$now_ctrs" "$now_imgs"
        comm -13 "$before_ctrs" "$now_ctrs" | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
        keep=$(for img in airgate/base airgate/mini sweb.eval.x86_64.airgate__mini-{1,2,3} \
            sweb.eval.x86_64.airgate__noop-1; do
            podman image inspect --format '{{.Id}}' "$img:latest" 2>/dev/null || true
        done)
        comm -13 "$before_imgs" "$now_imgs" | grep -vxF -e "${keep:-none}" -e '' |
            xargs -r podman rmi -f >/dev/null 2>&1 || true
        rm -f "$now_ctrs" "$now_imgs"
    fi
    rm -f "$before_ctrs" "$before_imgs"
    if [ "$started" = 1 ]; then
        scripts/podman-setup.sh --stop
    fi
}
trap cleanup EXIT

start=$(date +%s)
scripts/podman-setup.sh
echo "podman: setup $(( $(date +%s) - start ))s ($(podman --version))"
scripts/check-podman.sh
echo "podman: ok in $(( $(date +%s) - start ))s"
