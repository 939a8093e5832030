#!/usr/bin/env bash
# Times airgate's `search` tool against ripgrep on a large generated tree, and
# prints the per-step harness overhead of read_file / search / str_replace.
#
# Usage: scripts/bench-search.sh [--regen] [--runs N]
#   TREE=/tmp/airgate-bench-tree   where the tree is generated (kept between runs)
#
# The tree: >= 3,000 source files (~50 MB) in a git repo, plus ~5 MB under
# .gitignore'd directories (build/, node_modules/) and a few binary files.
# Both tools search the same tree for the same patterns; wall time is the
# median of N process runs each, interleaved (page cache warm), so process
# start-up is counted for both.
set -euo pipefail

TREE=${TREE:-/tmp/airgate-bench-tree}
RUNS=7
REGEN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --regen) REGEN=1 ;;
    --runs) RUNS=$2; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.."

if ! command -v rg >/dev/null 2>&1; then
  echo "ripgrep not found; installing it with apt-get" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y ripgrep; else sudo apt-get install -y ripgrep; fi
fi

if [ "$REGEN" = 1 ] || [ ! -f "$TREE/.bench-complete" ]; then
  rm -rf "$TREE"
  echo "generating $TREE ..." >&2
  python3 - "$TREE" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(42)
words = ("account balance transfer debit credit ledger amount user session request response "
         "handler parse render config value index cache token buffer stream record entry").split()
def line():
    k = rnd.random()
    a, b, c = rnd.choice(words), rnd.choice(words), rnd.choice(words)
    if k < 0.002:
        return f"    def process_{a}_handler(self, {b}):  # needle_token {rnd.randint(0, 999)}\n"
    if k < 0.2:
        return f"def {a}_{b}({c}, n={rnd.randint(0, 9999)}):\n"
    if k < 0.5:
        return f"    {a}_{b} = {c}.get('{rnd.choice(words)}', {rnd.randint(0, 99999)})\n"
    if k < 0.7:
        return f"    # {a} {b} {c} {' '.join(rnd.choice(words) for _ in range(6))}\n"
    return f"    return {a}({b}, {c}) + {rnd.randint(0, 1 << 20)}\n"
def write(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out, n = [], 0
    while n < size:
        l = line(); out.append(l); n += len(l)
    with open(path, "w") as f:
        f.write("".join(out))
files = 0
for d in range(64):
    for i in range(52):
        ext = ("py", "rs", "js", "go")[i % 4]
        write(f"{root}/src/pkg{d:02}/mod{d:02}/file{i:03}.{ext}", rnd.randint(8_000, 24_000))
        files += 1
for i in range(200):
    write(f"{root}/build/gen{i:03}.py", 15_000)
for i in range(150):
    write(f"{root}/node_modules/dep{i:03}/index.js", 15_000)
for i in range(20):
    with open(f"{root}/src/pkg00/blob{i:02}.bin", "wb") as f:
        f.write(b"\x00\x01needle_token\x00" * 5000)
with open(f"{root}/.gitignore", "w") as f:
    f.write("build/\nnode_modules/\n")
print(f"{files} tracked source files", file=sys.stderr)
PY
  (cd "$TREE" && git init -q && git add -A && git -c user.email=b@b -c user.name=bench commit -qm tree)
  touch "$TREE/.bench-complete"
fi
echo "tree: $TREE ($(cd "$TREE" && git ls-files | wc -l) tracked files, $(du -sh --exclude=.git "$TREE" | cut -f1) on disk incl. ignored)" >&2

echo "building the bench binary (release) ..." >&2
BIN=$(cargo bench --bench tools --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    try: m = json.loads(l)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "tools" and m.get("executable"):
        print(m["executable"])')
[ -x "$BIN" ] || { echo "could not build benches/tools.rs (run: cargo bench --bench tools --no-run)" >&2; exit 1; }

now_ns() { date +%s%N; }
# time_us CMD...: wall time of one run in microseconds.
time_us() {
  local t0 t1
  t0=$(now_ns); "$@" >/dev/null 2>&1 || true; t1=$(now_ns)
  echo $(( (t1 - t0) / 1000 ))
}
median_ms() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{printf "%.1f", a[int((NR+1)/2)]/1000}'; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (other work on the machine skews both tools alike: runs are interleaved)" >&2
printf '%-34s %10s %10s %7s %9s %9s\n' pattern "rg_ms" "ours_ms" ratio rg_hits our_hits
for PAT in 'needle_token' 'def process_[a-z]+_handler\(self' 'ledger_(debit|credit) = ' 'zz_no_such_thing_zz'; do
  RG=(rg -n -- "$PAT" "$TREE")
  OURS=("$BIN" --tree "$TREE" --pattern "$PAT" --search-once)
  time_us "${RG[@]}" >/dev/null; time_us "${OURS[@]}" >/dev/null   # warm-up
  RG_T=(); OUR_T=()
  for _ in $(seq "$RUNS"); do
    RG_T+=( "$(time_us "${RG[@]}")" )
    OUR_T+=( "$(time_us "${OURS[@]}")" )
  done
  RG_MS=$(median_ms "${RG_T[@]}")
  OUR_MS=$(median_ms "${OUR_T[@]}")
  RG_HITS=$( { rg -c -- "$PAT" "$TREE" 2>/dev/null || true; } | awk -F: '{s+=$NF} END{print s+0}')
  OUR_HITS=$("${OURS[@]}")
  RATIO=$(awk -v a="$OUR_MS" -v b="$RG_MS" 'BEGIN{printf "%.2f", a/b}')
  printf '%-34s %10s %10s %7s %9s %9s\n' "$PAT" "$RG_MS" "$OUR_MS" "${RATIO}x" "$RG_HITS" "$OUR_HITS"
  if [ "$RG_HITS" != "$OUR_HITS" ]; then
    echo "MISMATCH: rg found $RG_HITS matching lines, airgate $OUR_HITS" >&2
    exit 1
  fi
done

echo
echo "per-step harness overhead (in process, through tools::dispatch, median of 15):"
"$BIN" --tree "$TREE" --pattern 'def process_[a-z]+_handler\(self' \
  --file src/pkg31/mod31/file017.rs --runs 15
(cd "$TREE" && git diff --quiet) || { echo "bench left the tree modified" >&2; exit 1; }
