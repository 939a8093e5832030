#!/usr/bin/env bash
# Docker eval benchmarks (issue 6), in one run:
#  1. per-instance overhead of `airgate swebench eval` on a no-op instance
#     (create, copy in, apply, exec, collect, grade, remove) against the
#     floor `docker run --rm IMG true`; target ratio <= 1.25;
#  2. throughput with 1, 2 and 4 workers on real (pytest) instances;
#     target: 2 workers >= 1.6x the throughput of 1.
#
# Usage: scripts/bench-docker.sh [N]   (N instances per measurement, default 12)
# Needs the airgate-mini images (tests/fixtures/docker_mini/build.sh) and a
# release build (built here if missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-12}
IMG=airgate/mini:latest
BIN="$root/target/release/airgate"
[[ -x "$BIN" ]] || (cd "$root" && cargo build --release --quiet)
"$root/tests/fixtures/docker_mini/build.sh" >/dev/null

work=$(mktemp -d /tmp/airgate-bench.XXXXXX)
cleanup() {
    docker images --format '{{.Repository}}:{{.Tag}}' | grep '^sweb.eval.x86_64.bench' \
        | xargs -r docker rmi >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# Datasets of N copies: no-op rows, and the three real mini rows cycled.
python3 - "$root/datasets/airgate-mini.jsonl" "$N" <<'EOF'
import json, sys
rows = {json.loads(l)["instance_id"]: json.loads(l) for l in open(sys.argv[1])}
n = int(sys.argv[2])
with open("noop.jsonl", "w") as f:
    for i in range(n):
        r = dict(rows["airgate__noop-1"], instance_id=f"bench__noop-{i}")
        f.write(json.dumps(r) + "\n")
with open("real.jsonl", "w") as f:
    for i in range(n):
        src = rows[f"airgate__mini-{i % 3 + 1}"]
        f.write(json.dumps(dict(src, instance_id=f"bench__real-{i}")) + "\n")
EOF
for i in $(seq 0 $((N - 1))); do
    docker tag "$IMG" "sweb.eval.x86_64.bench__noop-$i:latest"
    docker tag "$IMG" "sweb.eval.x86_64.bench__real-$i:latest"
done

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# Warm-up (page cache, daemon).
docker run --rm --network none "$IMG" true
"$BIN" swebench eval --dataset noop.jsonl --predictions gold --run-id warm \
    --instance-ids bench__noop-0 --max-workers 1 >/dev/null 2>&1

t0=$(now)
for _ in $(seq 1 "$N"); do docker run --rm --network none "$IMG" true; done
t1=$(now)
floor=$(elapsed "$t0" "$t1")

t0=$(now)
"$BIN" swebench eval --dataset noop.jsonl --predictions gold --run-id noop \
    --max-workers 1 >/dev/null 2>&1
t1=$(now)
ours=$(elapsed "$t0" "$t1")
grep -q "\"resolved_instances\": $N," gold.noop.json \
    || { echo "no-op eval did not resolve all $N:" >&2; cat gold.noop.json >&2; exit 1; }

declare -A tput
for w in 1 2 4; do
    t0=$(now)
    "$BIN" swebench eval --dataset real.jsonl --predictions gold --run-id "real-w$w" \
        --max-workers "$w" >/dev/null 2>&1
    t1=$(now)
    grep -q "\"resolved_instances\": $N," "gold.real-w$w.json" \
        || { echo "real eval with $w workers did not resolve all $N:" >&2; cat "gold.real-w$w.json" >&2; exit 1; }
    tput[$w]=$(python3 -c "print(f'{$N / ($t1 - $t0):.3f}')")
done

python3 - "$N" "$floor" "$ours" "${tput[1]}" "${tput[2]}" "${tput[4]}" <<'EOF'
import sys
n, floor, ours, t1, t2, t4 = int(sys.argv[1]), *map(float, sys.argv[2:])
per_floor, per_ours = floor / n, ours / n
ratio = per_ours / per_floor
print(f"instances per measurement: {n} (2-core machine, docker {''})".replace(", docker )", ")"))
print(f"floor `docker run --rm IMG true`: {per_floor*1000:.0f} ms/instance")
print(f"airgate eval, no-op instance:   {per_ours*1000:.0f} ms/instance (whole CLI run / {n})")
print(f"overhead ratio: {ratio:.2f}x (target <= 1.25)  {'OK' if ratio <= 1.25 else 'MISSED'}")
print(f"throughput, real instances: 1 worker {t1:.2f}/s, 2 workers {t2:.2f}/s, 4 workers {t4:.2f}/s")
print(f"scaling: 2w/1w = {t2/t1:.2f}x (target >= 1.6)  {'OK' if t2/t1 >= 1.6 else 'MISSED'}; 4w/1w = {t4/t1:.2f}x")
EOF
