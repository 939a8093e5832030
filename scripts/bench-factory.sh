#!/usr/bin/env bash
# Factory throughput and corpus I/O benchmarks (issue 7).
#
# 1. `airgate factory run` against a mock OpenAI-compatible server with a
#    fixed latency L per call and the instant sandbox (nothing runs, so the
#    model is the only cost), with N = 1, 2, 4, 8 workers. Prints model
#    steps/s against the ideal N/L. Target: >= 0.9 x ideal.
# 2. Writing and reading 100k synthetic corpus rows with airgate vs pyarrow
#    doing the same (the same rows and schema, zstd level 3, 16384-row
#    groups, fsync): rows in memory -> durable file, and back to row
#    objects, with every provenance column (issue 15). Target: within 1.5x
#    of pyarrow.
# 3. `airgate corpus select` on the 100k-row corpus (no flags, one row per
#    instance, a per-repo cap, seeded): read, select, write.
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
# Both sides write the same rows: the pyarrow side loads the rows airgate
# wrote (random sha256 ids and all) before its clock starts. Best of three
# runs each, as the machine is shared.
io_runs=3
ours=()
for i in $(seq 1 $io_runs); do
  ours+=("$("$airgate" corpus bench-io --rows "$rows" --dir "$work/io-$i")")
done
python3 - "$work" "$rows" "${ours[@]}" <<'PY'
import glob, json, os, sys, time
import pyarrow as pa, pyarrow.parquet as pq
work, n, ours = sys.argv[1], int(sys.argv[2]), [json.loads(a) for a in sys.argv[3:]]
best = lambda k: min(o[k] for o in ours)
table = pq.read_table(sorted(glob.glob(f"{work}/io-1/part-*.parquet")))
assert table.num_rows == n
schema = table.schema
columns = {name: table.column(name).to_pylist() for name in schema.names}
build_s, write_s, read_s = [], [], []
for _ in range(3):
    t0 = time.perf_counter()
    # The rows as Python data -> an Arrow table: pyarrow's side of what
    # airgate's insert does (airgate's also validates and dedups each row).
    built = pa.table({k: pa.array(v, type=schema.field(k).type) for k, v in columns.items()},
                     schema=schema)
    t1 = time.perf_counter()
    # A durable write, as airgate's is: the file is fsynced before it counts.
    with open(f"{work}/pyarrow.parquet", "wb") as f:
        pq.write_table(built, f, compression="zstd", compression_level=3, row_group_size=16384)
        f.flush()
        os.fsync(f.fileno())
    t2 = time.perf_counter()
    build_s.append(t1 - t0)
    write_s.append(t2 - t1)
    del built
    t0 = time.perf_counter()
    back = pq.read_table(f"{work}/pyarrow.parquet").to_pylist()
    read_s.append(time.perf_counter() - t0)
    assert len(back) == n
    del back
rows_py = min(b + w for b, w in zip(build_s, write_s))
print(f"\ncorpus I/O, {n} rows (zstd-3, 16384-row groups), best of 3 each:")
print(f"{'':38s} {'airgate':>8s} {'pyarrow':>8s} {'ratio':>6s}")
print(f"{'rows -> durable file (target <= 1.5x)':38s} {best('write_s'):8.3f} {rows_py:8.3f} {best('write_s') / rows_py:6.2f}")
print(f"{'  vs pyarrow writing a built table':38s} {best('write_s'):8.3f} {min(write_s):8.3f} {best('write_s') / min(write_s):6.2f}")
print(f"{'file -> row objects':38s} {best('read_s'):8.3f} {min(read_s):8.3f} {best('read_s') / min(read_s):6.2f}")
print("airgate's write: validate each row, keep the dedup keys, encode and compress (while the next rows")
print("arrive), fsync the segment, publish the manifest (fsync + rename). pyarrow's: build the table from")
print("the rows as Python column lists, write, fsync. The second line leaves out pyarrow's table build.")
PY

# --- corpus select on the same 100k rows -----------------------------------
sel=()
for i in $(seq 1 $io_runs); do
  sel+=("$("$airgate" corpus select "$work/io-1" --out "$work/sel-$i" --no-flags \
      --one-per-instance --per-repo-cap 500 --seed "$i" --json)")
done
python3 - "${sel[@]}" <<'PY'
import json, sys
runs = [json.loads(a) for a in sys.argv[1:]]
best = min(r["wall_s"] for r in runs)
r = runs[0]
steps = ", ".join(f"{k} {n}" for k, n in r["steps"])
print(f"\ncorpus select, {r['input_rows']} rows -> {r['output_rows']} "
      f"(--no-flags --one-per-instance --per-repo-cap 500 --seed): best of {len(runs)} {best:.3f} s "
      f"(steps: {steps})")
PY
