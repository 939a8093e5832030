#!/usr/bin/env bash
# The graded suite holds up: every task in tasks/ validates; `reference`
# scores 100%; a script that stubs out every test file scores 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x target/debug/airgate ] || cargo build --quiet --bin airgate
airgate="$PWD/target/debug/airgate"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$airgate" tiers validate --tasks tasks
tasks=$("$airgate" tiers list --tasks tasks | awk '$1 == "total" { print $NF }')
echo "tiers: $tasks tasks"

# One run, all policies in parallel: reference must pass everything, the
# cheats nothing.
"$airgate" tiers run --tasks tasks --max-attempts 1 --out "$work/run" \
  --model reference --model "script:tests/fixtures/tiers_tamper/tamper.jsonl" \
  --model "script:tests/fixtures/tiers_cheat/cheat.jsonl" \
  --model "script:tests/fixtures/tiers_cheat/answer_lookup.jsonl"
python3 - "$work/run/results.jsonl" "$tasks" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tasks = int(sys.argv[2])
ref = [r for r in rows if r["model"] == "reference"]
bad = []
if len(ref) != tasks or not all(r["passed"] for r in ref):
    bad.append(f"reference passed {sum(r['passed'] for r in ref)} of {len(ref)}; expected {tasks} of {tasks}")
for model in sorted({r["model"] for r in rows} - {"reference"}):
    cheat = [r for r in rows if r["model"] == model]
    if len(cheat) != tasks or any(r["passed"] for r in cheat):
        won = [r["task"] for r in cheat if r["passed"]]
        bad.append(f"{model} passed {len(won)} of {len(cheat)}; expected 0 of {tasks}: {won}")
for b in bad:
    print("tiers: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
echo "tiers: ok: reference $tasks/$tasks; tamper, generic cheat and answer lookup 0/$tasks"
