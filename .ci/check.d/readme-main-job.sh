#!/usr/bin/env bash
# The README's main-job command, as written (first set-up command, after
# the setup script that .ci/setup.d already ran), with the default file
# locations: no AIRGATE_HOME, run from the repository root, with no limits
# added: the `local` preset's own [run] budget (configs/models/local.toml)
# must end it within 3 minutes. The outcome must be one of the three,
# honestly reported, with a trajectory; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset AIRGATE_HOME
line="$(grep -m1 '^scripts/setup-local-model.sh && cargo run --release -- solve ' README.md)" \
  || { echo "readme-main-job: README has no main-job command" >&2; exit 1; }
cmd="${line#scripts/setup-local-model.sh && }"
# The debug binary CI already built stands in for `cargo run --release --`.
cmd="${cmd/cargo run --release --/cargo run -q --}"
out="$PWD/runs/ci-readme-main-job"
rm -rf "$out" "$out.json" "$out.stderr"
mkdir -p "$(dirname "$out")"
# Build first, so the 3-minute bound times the run, not the compiler.
cargo build -q
set +e
start=$(date +%s)
eval "$cmd --json --out \"$out\"" > "$out.json" 2> "$out.stderr"
code=$?
wall=$(( $(date +%s) - start ))
set -e
if (( wall > 180 )); then
  echo "readme-main-job: took ${wall}s, over the 3-minute bound of the local preset" >&2
  exit 1
fi
grep -q '^baseline: tests ' "$out.stderr" \
  || { echo "readme-main-job: no progress lines on stderr" >&2; cat "$out.stderr" >&2; exit 1; }
echo "readme-main-job: ${wall}s wall"
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
assert all(a.get("ended") for a in t["attempts"]), [a.get("ended") for a in t["attempts"]]
print(f"readme-main-job: outcome={j['outcome']} exit={code} steps={j['steps']} ended={j['ended']} budget={j['budget']} trajectory={j['trajectory']}")
PY
