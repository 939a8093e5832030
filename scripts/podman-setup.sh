#!/usr/bin/env bash
# Podman (issue 14, item 4): Debian's podman 4.3 serving the Docker-compatible
# API at /run/podman/podman.sock, with the fixture images loaded into its own
# storage. On these hosts it needs runc (crun refuses the hybrid cgroup layout)
# and the cgroupfs manager (no systemd); airgate sets nofile/nproc ulimits and
# asks for a private cgroup namespace per container itself (libpod API).
#
# Idempotent: installs, configures, starts and loads only what is missing or
# stale. A service it starts records its pid in $PIDFILE, so
# `scripts/podman-setup.sh --stop` stops exactly that one (never a service
# someone else runs, e.g. systemd's podman.socket).
set -euo pipefail
SOCK=/run/podman/podman.sock
PIDFILE=/run/podman/airgate-service.pid
CONF=/etc/containers/containers.conf.d/airgate.conf

ours_running() {
    [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

stop_ours() {
    ours_running || { rm -f "$PIDFILE"; return 0; }
    local pid
    pid=$(cat "$PIDFILE")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$PIDFILE" "$SOCK"
    echo "podman-setup: stopped the API service (pid $pid)"
}

if [ "${1:-}" = "--stop" ]; then
    stop_ours
    exit 0
fi

# 1. Packages (a fresh Debian 12 has neither, and maybe no package lists).
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
fi

# 2. Engine settings, as a drop-in (never overwrites the admin's
# containers.conf). An earlier version of this script wrote the main file:
# remove that one, it is ours.
mkdir -p /etc/containers/containers.conf.d /run/podman
if head -n1 /etc/containers/containers.conf 2>/dev/null | grep -q '^# written by airgate'; then
    rm -f /etc/containers/containers.conf
fi
want='# written by airgate scripts/podman-setup.sh
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
changed=0
if [ "$(cat "$CONF" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" > "$CONF"
    changed=1
fi

# 3. The API service. It reads containers.conf when it starts: restart ours
# after a change. A socket nobody answers on is stale.
alive() { podman --remote --url "unix://$SOCK" version >/dev/null 2>&1; }
if [ "$changed" = 1 ] && ours_running; then
    stop_ours
fi
if ! alive; then
    if [ -e "$SOCK" ] && ! ours_running; then
        rm -f "$SOCK"
    fi
    stop_ours
    # From /run/podman: on an OOM kill conmon leaves an empty `oom` file in
    # the working directory it inherits, which would otherwise be the
    # caller's checkout.
    (cd /run/podman && exec nohup podman system service --time=0 "unix://$SOCK" \
        >/tmp/podman-service.log 2>&1) &
    echo $! > "$PIDFILE"
    for _ in $(seq 100); do alive && break; sleep 0.1; done
    if ! alive; then
        echo "podman-setup: the API service did not come up; /tmp/podman-service.log:" >&2
        tail -n 20 /tmp/podman-service.log >&2 || true
        exit 1
    fi
    echo "podman-setup: API service up at $SOCK (pid $(cat "$PIDFILE"))"
fi

# 4. The fixture images, from Docker's storage: loaded when missing or when
# Docker's copy is a different image (rebuilt since).
images=(airgate/base:latest airgate/mini:latest)
for id in airgate__mini-1 airgate__mini-2 airgate__mini-3 airgate__noop-1; do
    images+=("sweb.eval.x86_64.$id:latest")
done
if ! docker info >/dev/null 2>&1; then
    echo "podman-setup: no docker daemon to load the fixture images from" >&2
    exit 1
fi
stale=()
for img in "${images[@]}"; do
    want_id=$(docker image inspect --format '{{.Id}}' "$img" 2>/dev/null | sed 's/^sha256://') || {
        echo "podman-setup: $img is not in Docker (run .ci/setup.d/10-docker-images.sh)" >&2
        exit 1
    }
    have_id=$(podman image inspect --format '{{.Id}}' "$img" 2>/dev/null || true)
    [ "$want_id" = "$have_id" ] || stale+=("$img")
done
if [ ${#stale[@]} -gt 0 ]; then
    docker save "${stale[@]}" | podman load -q
fi
