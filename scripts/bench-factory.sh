#!/usr/bin/env bash
# Factory throughput and corpus I/O benchmarks (issue 7).
#
# 1. `airgate factory run` against a mock OpenAI-compatible server with a
#    fixed latency L per call and the instant sandbox (nothing runs, so the
#    model is the only cost), with N = 1, 2, 4, 8 workers. Prints model
#    steps/s against the ideal N/L. Target: >= 0.9 x ideal.
# 2. Writing and reading 100k synthetic corpus rows with airgate vs pyarrow
#    doing the same (same schema, zstd level 3, 16384-row groups).
#    Target: within 1.5x of pyarrow.
#
# Usage: scripts/bench-factory.sh [LATENCY_MS=200] [ROWS=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
latency_ms=${1:-200}
rows=${2:-100000}
steps=10            # model calls per episode (9 tool calls + submit)
per_worker=4        # episodes per worker
cargo build --release --quiet --bin airgate
airgate="$PWD/target/release/airgate"
work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# --- mock model server --------------------------------------------------
cat > "$work/mock.py" <<'PY'
import json, socket, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
latency, steps = float(sys.argv[1]) / 1000.0, int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if n == 0:
            name, args = "str_replace", {"path": "fix.txt", "old_str": "", "new_str": "fixed\n"}
        elif n < steps - 1:
            name, args = "ls", {"path": "."}
        else:
            name, args = "submit", {}
        time.sleep(latency)
        reply = {"id": "x", "object": "chat.completion", "model": "mock",
                 "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                     "role": "assistant", "content": "",
                     "tool_calls": [{"id": f"call_{n}", "type": "function",
                                     "function": {"name": name, "arguments": json.dumps(args)}}]}}],
                 "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}
        data = json.dumps(reply).encode()
        # Headers and body in one write, with TCP_NODELAY (as vLLM, Ollama and
        # llama.cpp servers do): two writes under Nagle would stall every
        # other reply for the client's 40 ms delayed ACK and bill it to airgate.
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        self.wfile.write(head + data)
        self.wfile.flush()
ThreadingHTTPServer.daemon_threads = True
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
python3 "$work/mock.py" "$latency_ms" "$steps" > "$work/port" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

# A public synthetic dataset and its allowlist.
python3 - "$work" 64 <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/bench.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"repo": "airgate/bench", "instance_id": f"airgate__bench-{i}",
            "base_commit": "0" * 40, "problem_statement": f"bench issue {i}",
            "FAIL_TO_PASS": [], "PASS_TO_PASS": []}) + "\n")
with open(f"{work}/sources.toml", "w") as f:
    f.write('[[source]]\nrepo = "airgate/*"\nlicense = "LicenseRef-airgate-fixtures"\n'
            '[[dataset]]\nname = "bench"\npath = "bench.jsonl"\n')
PY

echo "factory: mock model L=${latency_ms} ms/call, instant sandbox, ${steps} calls/episode, ${per_worker} episodes/worker"
printf "%8s %10s %12s %12s %8s\n" workers episodes "steps/s" "ideal N/L" ratio
for n in 1 2 4 8; do
  episodes=$((n * per_worker))
  ids=$(seq 0 $((episodes - 1)) | sed 's/^/airgate__bench-/' | tr '\n' ' ')
  # shellcheck disable=SC2086
  summary=$("$airgate" factory run --sandbox instant --sources "$work/sources.toml" \
      --dataset "$work/bench.jsonl" --teacher "openai:mock@http://127.0.0.1:$port/v1" \
      --out "$work/corpus-$n" --workers "$n" --max-steps 30 --json --instance-ids $ids)
  python3 - "$summary" "$n" "$latency_ms" "$episodes" <<'PY'
import json, sys
s, n, lat, eps = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
assert s["kept"] == eps, s
rate = s["model_calls"] / s["wall_s"]
ideal = n / (lat / 1000.0)
print(f"{n:8d} {eps:10d} {rate:12.2f} {ideal:12.2f} {rate / ideal:8.3f}")
PY
done

# --- corpus I/O: airgate vs pyarrow ----------------------------------------
ours=$("$airgate" corpus bench-io --rows "$rows" --dir "$work/io")
python3 - "$work" "$rows" "$ours" <<'PY'
import json, sys, time, glob
import pyarrow as pa, pyarrow.parquet as pq
work, n, ours = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
tools = json.dumps([{"type": "function", "function": {"name": "submit", "parameters": {"type": "object", "properties": {}}}}], separators=(",", ":"))
filler = "x" * 1200
t0 = time.perf_counter()
cols = {k: [] for k in ["trajectory_id", "instance_id", "patch", "messages"]}
for i in range(n):
    cols["instance_id"].append(f"bench__repo-{i % 1000}")
    cols["patch"].append(f"diff --git a/f.py b/f.py\n--- a/f.py\n+++ b/f.py\n@@ -1 +1 @@\n-a\n+b{i}\n")
    cols["messages"].append(json.dumps([
        {"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": f"Fix issue {i}. {filler}"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "submit", "arguments": "{}"}}]},
        {"role": "tool", "content": "submitted", "tool_call_id": "call_1"}], separators=(",", ":")))
    cols["trajectory_id"].append("%064x" % i)
build_s = time.perf_counter() - t0
rep = lambda v: [v] * n
table = pa.table({
    "trajectory_id": pa.array(cols["trajectory_id"]), "instance_id": pa.array(cols["instance_id"]),
    "dataset": rep("bench"), "repo": rep("bench/repo"), "base_commit": rep("0123456789abcdef" * 2 + "01234567"),
    "model": rep("bench-model"), "resolved": pa.array(rep(True)), "attempts": pa.array(rep(1), pa.int32()),
    "steps": pa.array(rep(7), pa.int32()), "prompt_tokens": pa.array(rep(12345), pa.int64()),
    "completion_tokens": pa.array(rep(678), pa.int64()), "wall_s": pa.array(rep(42.5)),
    "patch": pa.array(cols["patch"]), "patch_sha256": rep("0" * 64), "messages": pa.array(cols["messages"]),
    "tools": rep(tools), "provenance": rep("public"), "license": rep("MIT"),
    "created_at": pa.array(rep(1_700_000_000_000_000), pa.timestamp("us", tz="UTC")),
    "engine_version": rep("0.1.0"), "sample": pa.array(rep(0), pa.int32()),
    "verified_by": rep("bench"), "cost_usd": pa.array(rep(0.0)),
})
import os
t0 = time.perf_counter()
# A durable write, as airgate's is: the file is fsynced before it counts.
with open(f"{work}/pyarrow.parquet", "wb") as f:
    pq.write_table(table, f, compression="zstd", compression_level=3, row_group_size=16384)
    f.flush()
    os.fsync(f.fileno())
write_s = time.perf_counter() - t0
t0 = time.perf_counter()
back = pq.read_table(f"{work}/pyarrow.parquet").to_pylist()
read_s = time.perf_counter() - t0
assert len(back) == n
print(f"\ncorpus I/O, {n} rows (zstd-3, 16384-row groups):")
print(f"{'':22s} {'airgate':>9s} {'pyarrow':>9s} {'ratio':>7s}")
print(f"{'write (encode+fsync)':22s} {ours['write_s']:9.2f} {write_s:9.2f} {ours['write_s'] / write_s:7.2f}")
print(f"{'  of which encode+fsync':22s} {ours['encode_fsync_s']:9.2f} {write_s:9.2f} {ours['encode_fsync_s'] / write_s:7.2f}")
print(f"{'  of which insert':22s} {ours['insert_s']:9.2f}")
print(f"{'read (to row objects)':22s} {ours['read_s']:9.2f} {read_s:9.2f} {ours['read_s'] / read_s:7.2f}")
print("both writes fsync the file; airgate's also validates each row, keeps the dedup keys, hashes the segment")
print("and publishes the manifest (fsync + rename); pyarrow's excludes building its table from Python lists")
PY
