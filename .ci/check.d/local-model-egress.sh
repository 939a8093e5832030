#!/usr/bin/env bash
# Egress: `airgate solve --model local` must work inside a network namespace
# that has only loopback (`unshare -n`), and every socket it (or the model
# server, or the tests it runs) binds or connects must be loopback, as seen
# by `strace -f -e trace=connect,bind`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
cargo build -q
bin="$root/target/debug/airgate"
install="${AIRGATE_HOME:-$root/.airgate}/local-model/install.json"
[ -f "$install" ] || { echo "egress: $install missing: run scripts/setup-local-model.sh" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home/local-model" "$tmp/repo"
cp "$install" "$tmp/home/local-model/"
printf 'def add(a, b):\n    return a - b\n' > "$tmp/repo/calc.py"
printf 'from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n' > "$tmp/repo/test_calc.py"
git -C "$tmp/repo" init -q . && git -C "$tmp/repo" add . \
  && git -C "$tmp/repo" -c user.email=ci@airgate -c user.name=ci commit -qm init

export tmp bin
unshare -n bash -c '
  ip link set lo up
  cd "$tmp"
  set +e
  AIRGATE_HOME="$tmp/home" strace -f -qq -e trace=connect,bind -o "$tmp/trace" \
    "$bin" solve --repo "$tmp/repo" --task "add(2, 3) returns -1 instead of 5" \
      --test-cmd "python3 -m pytest -q -p no:cacheprovider" --model local \
      --max-steps 2 --max-attempts 1 --json --out "$tmp/run" > "$tmp/out.json" 2> "$tmp/err.txt"
  echo $? > "$tmp/rc"
'
rc="$(cat "$tmp/rc")"
if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
  echo "egress: solve --model local failed inside the loopback-only namespace (exit $rc)" >&2
  cat "$tmp/err.txt" >&2
  exit 1
fi
python3 - "$tmp/trace" "$tmp/out.json" <<'PY'
import json, re, sys
trace, out = sys.argv[1], sys.argv[2]
bad, lo_connect, lo_bind = [], 0, 0
for line in open(trace):
    m = re.search(r"(connect|bind)\(\d+, \{sa_family=(AF_INET6?)\b(.*)", line)
    if not m:
        continue  # AF_UNIX, AF_NETLINK, AF_UNSPEC and unfinished/resumed lines
    call, fam, rest = m.groups()
    if fam == "AF_INET":
        ok = 'inet_addr("127.' in rest
    else:
        ok = '"::1"' in rest or '"::ffff:127.' in rest
    if not ok:
        bad.append(line.strip())
    elif call == "connect":
        lo_connect += 1
    else:
        lo_bind += 1
outcome = json.load(open(out))["outcome"]
if bad:
    print("egress: non-loopback sockets:\n  " + "\n  ".join(bad[:20]), file=sys.stderr)
    sys.exit(1)
if lo_connect == 0 or lo_bind == 0:
    print(f"egress: expected loopback binds (server) and connects (client), saw {lo_bind}/{lo_connect}", file=sys.stderr)
    sys.exit(1)
print(f"egress: ok inside unshare -n: outcome={outcome}, {lo_bind} loopback bind(s), {lo_connect} loopback connect(s), no other address")
PY
