#!/usr/bin/env bash
# Local sandbox overhead (issue 12): one `run` step (`true`, and
# `python3 -c pass`) through BwrapSandbox against the unconfined
# LocalSandbox (`--sandbox none`), interleaved, in a release build, with the
# built-in configs/sandbox.toml. Prints, per command, the mean wall time of
# each, the overhead in ms and the ratio. Target: overhead < 10 ms per step.
# Then the tier suite with `reference`, bubblewrap vs none (target < 10%).
#
# Usage: scripts/bench-sandbox.sh [REPS]   (default 200)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export BENCH_REPS=${1:-200}
cd "$root"
command -v bwrap >/dev/null || { echo "bwrap is not installed (apt-get install bubblewrap)" >&2; exit 2; }
cargo test --release --quiet --lib sandbox::bwrap::tests::bench_step_overhead \
    -- --ignored --nocapture --test-threads=1 2>&1 | grep '^BENCH'

# The whole tier suite with `reference`, both ways (release build, 2 jobs):
# bubblewrap around every command and gate run vs no sandbox.
cargo build --release --quiet --bin airgate
bin="$root/target/release/airgate"
work=$(mktemp -d /tmp/airgate-bench-sandbox-XXXXXX)
trap 'rm -rf "$work"' EXIT
suite() { # SANDBOX N
    local t0 t1
    t0=$(date +%s.%N)
    "$bin" tiers run --tasks tasks --model reference --max-attempts 1 --sandbox "$1" \
        --out "$work/$1-$2" >/dev/null 2>&1
    t1=$(date +%s.%N)
    python3 -c "print(f'{$t1 - $t0:.2f}')"
}
rounds=${SUITE_ROUNDS:-2}
for i in $(seq 1 "$rounds"); do
    echo "SUITE local $(suite local "$i")"
    echo "SUITE none $(suite none "$i")"
done | tee "$work/suite"
python3 - "$work/suite" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith("SUITE")]
med = {k: statistics.median(float(r[2]) for r in rows if r[1] == k) for k in ("local", "none")}
print(f"BENCH tier suite (reference, 30 tasks): bwrap {med['local']:.1f} s, none {med['none']:.1f} s, "
      f"overhead {100 * (med['local'] / med['none'] - 1):.1f}% (target < 10%)")
PY
