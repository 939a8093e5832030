#!/usr/bin/env bash
# Podman (issue 14, item 4): Debian's podman 4.3 serving the Docker-compatible
# API at /run/podman/podman.sock, with the fixture images loaded into its own
# storage. On these hosts it needs runc (crun refuses the hybrid cgroup layout)
# and the cgroupfs manager; airgate sets nofile/nproc ulimits itself.
# Idempotent: skips what is already there.
set -euo pipefail
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc >/dev/null
fi
mkdir -p /etc/containers /run/podman
if ! grep -qs 'airgate' /etc/containers/containers.conf; then
    cat > /etc/containers/containers.conf <<'CONF'
# written by airgate scripts/podman-setup.sh
[containers]
cgroupns = "private"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi
if [ ! -S /run/podman/podman.sock ]; then
    nohup podman system service --time=0 unix:///run/podman/podman.sock \
        >/tmp/podman-service.log 2>&1 &
    for _ in $(seq 50); do [ -S /run/podman/podman.sock ] && break; sleep 0.2; done
fi
images=(airgate/base:latest airgate/mini:latest)
for id in airgate__mini-1 airgate__mini-2 airgate__mini-3 airgate__noop-1; do
    images+=("sweb.eval.x86_64.$id:latest")
done
missing=()
for img in "${images[@]}"; do
    podman image exists "$img" || missing+=("$img")
done
if [ ${#missing[@]} -gt 0 ] && docker info >/dev/null 2>&1; then
    docker save "${missing[@]}" | podman load -q
fi
