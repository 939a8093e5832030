#!/usr/bin/env bash
# Closing figures of docs/models.md:
#  1. tokens/s of the local model (SmolLM2-135M on llama.cpp) through our
#     OpenAI client vs a direct curl of the same request body to the same
#     server (ratio = our overhead); runs are interleaved so machine load
#     hits both sides alike;
#  2. harness overhead per step of `airgate solve` against a 0 ms mock server.
# Needs scripts/setup-local-model.sh first. Usage: scripts/bench-model.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
max_tokens="${AIRGATE_BENCH_MAX_TOKENS:-128}"
install="${AIRGATE_HOME:-$PWD/.airgate}/local-model/install.json"
[ -f "$install" ] || { echo "bench-model: $install missing: run scripts/setup-local-model.sh" >&2; exit 1; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$install" "$1"; }
py="$(field python)"; gguf="$(field gguf)"; serve="$(field serve_py)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
tmp="$(mktemp -d)"
"$py" "$serve" --model "$gguf" --port "$port" --ctx 8192 > "$tmp/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
url="http://127.0.0.1:$port/v1"
echo "bench-model: server on $url, $runs interleaved runs, max_tokens $max_tokens, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

cargo test -q --test model_bench --no-run 2>/dev/null
client() {
  AIRGATE_BENCH_URL="$url" AIRGATE_BENCH_RUNS=1 AIRGATE_BENCH_MAX_TOKENS="$max_tokens" \
  AIRGATE_BENCH_BODY="$tmp/body.json" \
    cargo test -q --test model_bench client_tokens_per_second -- --ignored --nocapture 2>/dev/null \
    | sed -n 's/^BENCH client_tokens_per_s \([0-9.]*\).*/\1/p'
}
curl_rate() {
  local t
  t="$(curl -s -o "$tmp/resp.json" -w '%{time_total}' -H 'content-type: application/json' \
        --data-binary @"$tmp/body.json" "$url/chat/completions")"
  python3 -c 'import json,sys; u=json.load(open(sys.argv[1]))["usage"]; print("%.2f" % (u["completion_tokens"] / float(sys.argv[2])))' "$tmp/resp.json" "$t"
}
client_rates=(); curl_rates=()
client >/dev/null   # warm-up (writes body.json)
curl_rate >/dev/null
for i in $(seq 1 "$runs"); do
  client_rates+=("$(client)")
  curl_rates+=("$(curl_rate)")
done
python3 - "${client_rates[*]}" "${curl_rates[*]}" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]
k = [float(x) for x in sys.argv[2].split()]
mc, mk = statistics.median(c), statistics.median(k)
print(f"client tokens/s (median): {mc:.2f}   runs {c}")
print(f"curl   tokens/s (median): {mk:.2f}   runs {k}")
print(f"ratio client/curl: {mc / mk:.3f}  (our overhead: {100 * (1 - mc / mk):+.1f}%)")
PY
cargo test -q --test model_bench harness_overhead_per_step -- --ignored --nocapture 2>/dev/null | grep '^BENCH' || true
