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

# What Podman holds before the run; cleanup removes only what the run added:
# containers, and image tags (tests tag, build and load under their own
# names) but the fixtures', which stay loaded for the next run.
before_ctrs=$(mktemp)
before_tags=$(mktemp)
snapshot() {
    command -v podman >/dev/null || return 0
    podman ps -aq --no-trunc | sort > "$1"
    podman images --format '{{.Repository}}:{{.Tag}}' | { grep -v '<none>' || true; } | sort -u > "$2"
}
snapshot "$before_ctrs" "$before_tags"
fixtures='^localhost/(airgate/base|airgate/mini|sweb\.eval\.x86_64\.airgate__(mini-[123]|noop-1)):latest$'
cleanup() {
    if command -v podman >/dev/null; then
        local now_ctrs now_tags
        now_ctrs=$(mktemp)
        now_tags=$(mktemp)
        snapshot "$now_ctrs" "$now_tags"
        comm -13 "$before_ctrs" "$now_ctrs" | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
        comm -13 "$before_tags" "$now_tags" | grep -Ev "$fixtures" |
            xargs -r podman rmi >/dev/null 2>&1 || true
        rm -f "$now_ctrs" "$now_tags"
    fi
    rm -f "$before_ctrs" "$before_tags"
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
