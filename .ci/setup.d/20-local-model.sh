#!/usr/bin/env bash
# The embedded `local` model (SmolLM2-135M-Instruct on llama.cpp via the
# xllamacpp wheel) into ./.airgate/local-model/, plus the tools of the egress
# check (strace, unshare, ip). Idempotent and non-interactive.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v strace >/dev/null || need+=(strace)
command -v unshare >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
scripts/setup-local-model.sh
