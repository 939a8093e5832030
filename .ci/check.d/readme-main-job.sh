#!/usr/bin/env bash
# The README's main-job command, as written (first set-up command, after
# the setup script that .ci/setup.d already ran), with the default file
# locations: no AIRGATE_HOME, run from the repository root. Two limits are
# appended so that CI does not wait on 5 x 30 steps of a 135M model; the
# outcome must be one of the three, honestly reported, with a trajectory.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset AIRGATE_HOME
line="$(grep -m1 '^scripts/setup-local-model.sh && cargo run --release -- solve ' README.md)" \
  || { echo "readme-main-job: README has no main-job command" >&2; exit 1; }
cmd="${line#scripts/setup-local-model.sh && }"
# The debug binary CI already built stands in for `cargo run --release --`.
cmd="${cmd/cargo run --release --/cargo run -q --}"
out="$PWD/runs/ci-readme-main-job"
rm -rf "$out" "$out.json"
mkdir -p "$(dirname "$out")"
set +e
eval "$cmd --max-attempts 1 --max-steps 3 --json --out \"$out\"" > "$out.json"
code=$?
set -e
python3 - "$out.json" "$code" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
code = int(sys.argv[2])
want = {"verified": 0, "already_passing": 0, "gate_held": 1}
assert j["outcome"] in want, j
assert code == want[j["outcome"]], (code, j)
assert j["outcome"] != "verified" or j["patch"], j
t = json.load(open(j["trajectory"]))
assert t["attempts"] and t["attempts"][0]["model"].startswith("local"), t["attempts"][:1]
print(f"readme-main-job: outcome={j['outcome']} exit={code} steps={j['steps']} trajectory={j['trajectory']}")
PY
