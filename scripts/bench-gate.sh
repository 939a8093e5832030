#!/usr/bin/env bash
# The cost of judging every patch on a fresh pristine copy in a fresh
# sandbox (issue 13), in one run: the shipped tier suite with `reference`,
# run by the binary before the gate rebuild and by this checkout's, both in
# release builds, alternating, ROUNDS times each. Prints each run's wall
# time and the share of episode time spent in test runs, then the ratio of
# median wall times (target: at most 1.3).
#
# Usage: scripts/bench-gate.sh [BEFORE_REV] (default: 05de797, the last
# commit before the rebuild). ROUNDS=N (default 3). SANDBOX=local|none
# (default local for this checkout; the old binary had no sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-05de797}
rounds=${ROUNDS:-3}
sandbox=${SANDBOX:-local}
work=$(mktemp -d /tmp/airgate-bench-gate-XXXXXX)
trap 'git worktree remove --force "$work/before" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "== building the binary at $rev (release; dependencies shared with target/)"
git worktree add -q --detach "$work/before" "$rev"
CARGO_TARGET_DIR="$PWD/target" cargo build --quiet --release --manifest-path "$work/before/Cargo.toml" --bin airgate
mkdir -p target/bench
cp target/release/airgate target/bench/airgate-before
echo "== building this checkout (release)"
cargo build --quiet --release --bin airgate
cp target/release/airgate target/bench/airgate-after

run() { # NAME BIN TASKS EXTRA...
    local name=$1 bin=$2 tasks=$3
    shift 3
    local out="$work/$name-$RANDOM"
    local t0 t1
    t0=$(date +%s.%N)
    "$bin" tiers run --tasks "$tasks" --model reference --max-attempts 1 --out "$out" "$@" >"$out.log" 2>&1 ||
        { echo "bench-gate: $name run failed:" >&2; tail -5 "$out.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    local share
    share=$(grep -o 'test runs [0-9.]* s ([0-9]*%)' "$out.log" | head -1 || true)
    local wall
    wall=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
    echo "$name $wall ${share:-?}" | tee -a "$work/times"
}

for i in $(seq 1 "$rounds"); do
    # Each binary runs the suite as it shipped (the old one refuses the
    # new task keys).
    run before target/bench/airgate-before "$work/before/tasks"
    run after target/bench/airgate-after tasks --sandbox "$sandbox"
done

python3 - "$work/times" <<'PY'
import statistics, sys
rows = [l.split(None, 2) for l in open(sys.argv[1]) if l.strip()]
med = {}
for name in ("before", "after"):
    walls = [float(r[1]) for r in rows if r[0] == name]
    med[name] = statistics.median(walls)
    print(f"{name:>6}: median wall {med[name]:.1f} s over {len(walls)} runs")
ratio = med["after"] / med["before"]
print(f"ratio after/before: {ratio:.2f} (target <= 1.3)")
PY
