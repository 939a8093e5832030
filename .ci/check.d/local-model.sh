#!/usr/bin/env bash
# `airgate solve --model local` end to end against the real SmolLM2-135M
# (tests/model_local.rs, module `model_local` of the `all` test binary): the loop runs, the trajectory is saved under
# runs/ci-local-model/, the outcome is honest (usually gate_held) and the
# server it started is stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$PWD/runs/ci-local-model"
rm -rf "$out"
AIRGATE_LOCAL_MODEL=1 AIRGATE_LOCAL_OUT="$out" \
  cargo test --test all model_local:: -- --ignored --nocapture
test -s "$out/trajectory.json" || { echo "local-model: no trajectory saved in $out" >&2; exit 1; }
python3 - "$out/trajectory.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
a = t["attempts"][0]
calls = [e for e in a["events"] if e["type"] == "model_call"]
print(f"local-model: outcome={t['outcome']} model={a['model']} model_calls={len(calls)} "
      f"tokens={t['usage']['prompt_tokens']}+{t['usage']['completion_tokens']} trajectory={sys.argv[1]}")
PY
