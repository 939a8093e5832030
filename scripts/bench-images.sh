#!/usr/bin/env bash
# Image build and eval benchmarks (issue 14), in one run, on the mirror
# fixture of tests/images_build.rs (a small Python package, three instances,
# two specs):
#  1. `airgate images build` per instance: cold (env layer not built yet)
#     and with the env layer cached (a second instance on the same spec);
#     next to a plain `docker build --network none` of the same generated
#     Dockerfiles and contexts (env + instance layer), the floor for the
#     same work.
#  2. `swebench eval` wall time per instance (gold) against the official
#     swebench 5.0.2 harness on the same images and the same eval script
#     (rows carrying `image` and `eval_script`, as 5.x task rows do), when
#     the official package is installed (.ci/setup.d/40-swebench.sh).
#     Target: airgate <= 0.6x the official wall time.
#
# Usage: scripts/bench-images.sh [ROUNDS=3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
BIN="$root/target/release/airgate"
(cd "$root" && cargo build --release --quiet --bin airgate)
bash "$root/.ci/setup.d/15-wheelhouse.sh"
wheels="$root/.airgate/wheelhouse"
specs="$root/tests/fixtures/images_build/specs.toml"
export AIRGATE_SWEBENCH_SPECS="$specs"
venv=${SWEBENCH_VENV:-$root/target/swebench-venv}

work=$(mktemp -d /tmp/airgate-bench-images.XXXXXX)
cleanup() {
    docker images --format '{{.Repository}}:{{.Tag}}' \
        | grep -E '^(sweb\.eval\.x86_64\.airgate-test__calc|bench-plain)' \
        | xargs -r docker rmi -f >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
bash "$root/tests/fixtures/images_build/make_mirror.sh" "$work" >/dev/null

now() { date +%s.%N; }
build() {
    "$BIN" images build --dataset dataset.jsonl --git-mirror mirror --wheelhouse "$wheels" \
        --specs "$specs" --log-dir logs --max-workers 1 "$@" >/dev/null
}
env_of() { python3 -c "import json;r=json.load(open('logs/build.json'));print(r['instances'][0]['env_image'])"; }
rm_instances() {
    docker images --format '{{.Repository}}:{{.Tag}}' | grep '^sweb\.eval\.x86_64\.airgate-test__calc' \
        | xargs -r docker rmi -f >/dev/null 2>&1 || true
}

# Base layer once (not measured: shared by every build).
build --instance-ids airgate-test__calc-1
env=$(env_of)

cold=(); warm=(); plain=()
for r in $(seq "$rounds"); do
    rm_instances
    docker rmi -f "$env" >/dev/null 2>&1 || true
    t0=$(now); build --instance-ids airgate-test__calc-1; t1=$(now)
    cold+=("$(echo "$t1 - $t0" | bc)")
    t0=$(now); build --instance-ids airgate-test__calc-2; t1=$(now)
    warm+=("$(echo "$t1 - $t0" | bc)")
    # The floor: plain docker build of the same env and instance contexts.
    envctx="logs/env/${env%:latest}/context"
    instctx="logs/instances/sweb.eval.x86_64.airgate-test__calc-1/context"
    python3 - "$work" <<'PY'
import json, subprocess, sys
# The instance context's git bundle is removed after each build: remake it
# the same way (history up to base_commit, tags on it).
work = sys.argv[1]
row = json.loads(open(f"{work}/dataset.jsonl").readline())
tmp = f"{work}/bundle.git"
subprocess.run(["rm", "-rf", tmp], check=True)
subprocess.run(["git", "init", "-q", "--bare", tmp], check=True)
subprocess.run(["git", "-C", tmp, "fetch", "-q", f"{work}/mirror/airgate-test/calc.git",
                f"+{row['base_commit']}:refs/heads/main", "+refs/tags/v1.0:refs/tags/v1.0"], check=True)
subprocess.run(["git", "-C", tmp, "bundle", "create", "-q",
                f"{work}/logs/instances/sweb.eval.x86_64.airgate-test__calc-1/context/repo.bundle", "--all"], check=True)
PY
    sed "s#^FROM .*#FROM bench-plain-env:latest#" "$instctx/Dockerfile" > "$work/Dockerfile.inst"
    docker rmi -f "$env" bench-plain-env:latest bench-plain-inst:latest >/dev/null 2>&1 || true
    t0=$(now)
    docker build -q --network none -t bench-plain-env:latest "$envctx" >/dev/null
    docker build -q --network none -t bench-plain-inst:latest -f "$work/Dockerfile.inst" "$instctx" >/dev/null
    t1=$(now)
    plain+=("$(echo "$t1 - $t0" | bc)")
    rm -f "$instctx/repo.bundle"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
c=$(median "${cold[@]}"); w=$(median "${warm[@]}"); p=$(median "${plain[@]}")
echo "images build, per instance (median of $rounds):"
printf '  cold (env + instance layer)   %6.1f s   plain docker build of the same files %6.1f s   ratio %.2f\n' "$c" "$p" "$(echo "$c / $p" | bc -l)"
printf '  env layer cached              %6.1f s\n' "$w"

# --- eval wall time against the official harness -------------------------
build >/dev/null || true
ids=(airgate-test__calc-1 airgate-test__calc-2 airgate-test__calc-3)
if ! "$venv/bin/python" -c 'import swebench' 2>/dev/null; then
    echo "eval: the official harness is not installed ($venv); run .ci/setup.d/40-swebench.sh"
    exit 0
fi
python3 - "$BIN" <<'PY'
import json, subprocess, sys
bin_ = sys.argv[1]
rows = [json.loads(l) for l in open("dataset.jsonl")]
with open("official.jsonl", "w") as f:
    for r in rows:
        script = subprocess.run([bin_, "swebench", "eval-script", "--dataset", "dataset.jsonl",
                                 "--instance", r["instance_id"]], capture_output=True, text=True, check=True).stdout
        # The 5.x row keys make_test_spec reads (image, eval_script,
        # log_parser, eval_type).
        r = dict(r, image_name=f"sweb.eval.x86_64.{r['instance_id']}:latest",
                 image=f"sweb.eval.x86_64.{r['instance_id']}:latest", eval_script=script,
                 log_parser="parse_log_pytest", eval_type="pass_and_fail")
        f.write(json.dumps(r) + "\n")
PY
ours=(); theirs=()
for r in $(seq "$rounds"); do
    rm -rf logs/run_evaluation ./*.bench*.json
    t0=$(now)
    "$BIN" swebench eval --dataset official.jsonl --predictions gold --run-id "bench$r" --max-workers 1 >/dev/null
    t1=$(now)
    ours+=("$(echo "($t1 - $t0) / ${#ids[@]}" | bc -l)")
    rm -rf logs/run_evaluation
    t0=$(now)
    "$venv/bin/python" -m swebench.harness.run_evaluation --dataset_name "$work/official.jsonl" \
        --predictions_path gold --run_id "off$r" --max_workers 1 >"$work/official.log" 2>&1 \
        || { echo "official harness failed:"; tail -n 15 "$work/official.log"; }
    t1=$(now)
    theirs+=("$(echo "($t1 - $t0) / ${#ids[@]}" | bc -l)")
done
o=$(median "${ours[@]}"); t=$(median "${theirs[@]}")
resolved_off=$(python3 -c "import json,glob;f=sorted(glob.glob('gold.off*.json'));print(json.load(open(f[-1]))['resolved_instances'] if f else 'n/a')")
echo "swebench eval, gold, per instance (median of $rounds, 1 worker):"
printf '  airgate %6.2f s   official swebench 5.0.2 %6.2f s   ratio %.2f (target <= 0.6; official resolved %s of %d)\n' \
    "$o" "$t" "$(echo "$o / $t" | bc -l)" "$resolved_off" "${#ids[@]}"
