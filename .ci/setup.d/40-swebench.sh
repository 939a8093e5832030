#!/usr/bin/env bash
# The official SWE-bench harness (swebench==5.0.2) in a venv, for the grading
# cross-check (.ci/check.d/swebench-grade.sh, scripts/bench-grade.sh).
# Idempotent: skips when the venv already has that version.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${SWEBENCH_VENV:-target/swebench-venv}
if "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("swebench") != "5.0.2")' 2>/dev/null; then
  exit 0
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q swebench==5.0.2
