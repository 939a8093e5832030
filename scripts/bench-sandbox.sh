#!/usr/bin/env bash
# Local sandbox overhead (issue 12): one `run` step (`true`, and
# `python3 -c pass`) through BwrapSandbox against the unconfined
# LocalSandbox (`--sandbox none`), interleaved, in a release build, with the
# built-in configs/sandbox.toml. Prints, per command, the mean wall time of
# each, the overhead in ms and the ratio. Target: overhead < 10 ms per step.
#
# Usage: scripts/bench-sandbox.sh [REPS]   (default 200)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export BENCH_REPS=${1:-200}
cd "$root"
command -v bwrap >/dev/null || { echo "bwrap is not installed (apt-get install bubblewrap)" >&2; exit 2; }
cargo test --release --quiet --lib sandbox::bwrap::tests::bench_step_overhead \
    -- --ignored --nocapture --test-threads=1 2>&1 | grep '^BENCH'
