#!/usr/bin/env bash
# Closing figures of docs/models.md:
#  1. tokens/s of the local model (SmolLM2-135M on llama.cpp) through our
#     OpenAI client vs a direct curl of the same request body to the same
#     server (ratio = our overhead); runs alternate so machine load hits
#     both sides alike, and both must generate the same number of tokens;
#  2. harness overhead per step of `airgate solve` against a 0 ms mock server
#     (three runs of 40 steps).
# Needs scripts/setup-local-model.sh first. Usage: scripts/bench-model.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
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

# Release build: the figures are for the binary users run, not a debug build.
cargo test -q --release --test all --no-run 2>/dev/null
AIRGATE_BENCH_URL="$url" AIRGATE_BENCH_RUNS="$runs" AIRGATE_BENCH_MAX_TOKENS="$max_tokens" \
  cargo test -q --release --test all model_bench::client_tokens_per_second -- --ignored --nocapture 2>/dev/null \
  | grep '^BENCH'
for _ in 1 2 3; do
  cargo test -q --release --test all model_bench::harness_overhead_per_step -- --ignored --nocapture 2>/dev/null | grep '^BENCH' || true
done
