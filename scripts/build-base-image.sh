#!/usr/bin/env bash
# Build the registry-free base image `airgate/base:latest`:
# a Debian bookworm minbase rootfs (debootstrap) with python3, pytest, git,
# patch and ca-certificates, imported with `docker import`.
#
# Idempotent: exits early if the image already exists (set FORCE=1 to rebuild).
# Mirror: taken from AIRGATE_APT_MIRROR, else from the machine's apt sources.
set -euo pipefail

IMAGE="${AIRGATE_BASE_IMAGE:-airgate/base:latest}"
SUITE="${AIRGATE_BASE_SUITE:-bookworm}"
PACKAGES="python3,python3-pytest,git,patch,ca-certificates,procps"

if [[ "${FORCE:-0}" != "1" ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "build-base-image: $IMAGE already present, skipping"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "build-base-image: installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq debootstrap
fi

mirror="${AIRGATE_APT_MIRROR:-}"
if [[ -z "$mirror" ]]; then
    # deb822 sources first, then one-line sources; first plain debian URI wins.
    mirror=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
fi
if [[ -z "$mirror" ]]; then
    mirror=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

work=$(mktemp -d /tmp/airgate-rootfs.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

echo "build-base-image: debootstrap $SUITE from $mirror into $work/rootfs"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$mirror"

# Trim caches; keep the image small and deterministic-ish.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
mkdir -p "$work/rootfs/testbed"

echo "build-base-image: importing as $IMAGE"
tar -C "$work/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'WORKDIR /testbed' \
    --change 'CMD ["/bin/bash"]' \
    - "$IMAGE"
echo "build-base-image: done"
