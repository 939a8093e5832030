#!/usr/bin/env bash
# Validates the graded tier tasks (tasks/<tier>/<id>/) the way `airgate tiers
# validate` does, as an independent cross-check written in shell:
#   1. task.toml has only the known fields, a valid tier and a statement;
#   2. the solution patch touches no protected (test) file, and the repo has
#      at least one protected file unless the check is the test_cmd itself;
#   3. the test command FAILS on a fresh copy of repo/ as shipped;
#   4. it PASSES on a fresh copy with `git apply solution.patch`.
# Prints one row per task and exits 1 when any task is invalid.
#
# Usage: scripts/check-tasks.sh [TASKS_DIR] [ID_FILTER]
#   TASKS_DIR  defaults to tasks/ next to this script's parent
#   ID_FILTER  only check tasks whose id contains this string
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tasks_dir=$(cd "${1:-$root/tasks}" && pwd) || { echo "check-tasks: no such directory ${1:-}" >&2; exit 2; }
filter=${2:-}
keep_logs=${KEEP_LOGS:-}

for tool in python3 git timeout; do
  command -v "$tool" >/dev/null || { echo "check-tasks: '$tool' is not installed" >&2; exit 3; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Reads task.toml and prints shell assignments; mirrors src/tiers/task.rs
# (deny_unknown_fields) and gate::detect_test_command / DEFAULT_PROTECTED.
meta() {
  python3 - "$1" <<'PY'
import fnmatch, json, os, re, shlex, sys, tomllib
task_dir = sys.argv[1]
repo = os.path.join(task_dir, "repo")
errors = []
try:
    with open(os.path.join(task_dir, "task.toml"), "rb") as f:
        t = tomllib.load(f)
except Exception as e:  # noqa: BLE001
    t = {}
    errors.append(f"task.toml: {e}")
known = {"id", "tier", "language", "statement", "test_cmd", "timeout_s", "protected", "allow_paths", "targets"}
unknown = sorted(set(t) - known)
if unknown:
    errors.append(f"unknown fields {unknown}")
for key in ("id", "tier", "language", "statement"):
    if not str(t.get(key, "")).strip():
        errors.append(f"missing {key}")
if t.get("tier") not in ("easy", "medium", "hard"):
    errors.append(f"bad tier {t.get('tier')!r}")
if t.get("tier") and os.path.basename(os.path.dirname(task_dir)) != t.get("tier"):
    errors.append("tier does not match its directory")
if t.get("id") and os.path.basename(task_dir) != t.get("id"):
    errors.append("id does not match its directory")

cmd = t.get("test_cmd")
if not cmd:
    if os.path.isfile(os.path.join(repo, "Cargo.toml")):
        cmd = "cargo test"
    elif os.path.isfile(os.path.join(repo, "go.mod")):
        cmd = "go test ./..."
    elif os.path.isfile(os.path.join(repo, "package.json")):
        cmd = "npm test"
    elif any(os.path.isfile(os.path.join(repo, f)) for f in ("pytest.ini", "conftest.py")):
        cmd = "python -m pytest -q"
    else:
        errors.append("no test_cmd and none detectable")
        cmd = "false"

default_protected = ["tests/**", "test/**", "__tests__/**", "test_*.py", "*_test.py",
                     "conftest.py", "*_test.go", "*.test.js", "*.spec.js", "*.test.ts", "*.spec.ts"]
globs = t.get("protected", default_protected)

def protected(path):
    for g in globs:
        if "/" not in g:
            if fnmatch.fnmatchcase(os.path.basename(path), g):
                return True
        elif g.endswith("/**"):
            if path.startswith(g[:-3] + "/"):
                return True
        elif fnmatch.fnmatchcase(path, g):
            return True
    return False

files = []
for d, _, names in os.walk(repo):
    for n in names:
        files.append(os.path.relpath(os.path.join(d, n), repo))
if globs and not any(protected(f) for f in files):
    errors.append("no file in repo/ matches the protected globs")
try:
    patch = open(os.path.join(task_dir, "solution.patch")).read()
except OSError:
    patch = ""
    errors.append("missing solution.patch")
for m in re.finditer(r"^\+\+\+ b/(.+)$", patch, re.M):
    if protected(m.group(1)):
        errors.append(f"solution.patch edits protected {m.group(1)}")

print(f"id={shlex.quote(str(t.get('id', os.path.basename(task_dir))))}")
print(f"tier={shlex.quote(str(t.get('tier', '?')))}")
print(f"lang={shlex.quote(str(t.get('language', '?')))}")
print(f"cmd={shlex.quote(cmd)}")
print(f"tmo={int(t.get('timeout_s') or 120)}")
print(f"meta_err={shlex.quote('; '.join(errors))}")
PY
}

run_tests() { # dir cmd timeout log -> exit status of the test command
  (cd "$1" && timeout -k 5 "$3" bash -c "$2") >"$4" 2>&1
}

printf '%-8s %-30s %-10s %-8s %-8s %s\n' TIER ID LANGUAGE SHIPPED PATCHED RESULT
bad=0 total=0
for task in "$tasks_dir"/{easy,medium,hard}/*/; do
  task=${task%/}
  [ -f "$task/task.toml" ] || continue
  case "$(basename "$task")" in *"$filter"*) ;; *) continue ;; esac
  total=$((total + 1))
  eval "$(meta "$task")"
  shipped=- patched=- reason=$meta_err
  t0=$SECONDS
  if [ -z "$reason" ]; then
    before="$work/$id.before" after="$work/$id.after"
    cp -r "$task/repo" "$before" && cp -r "$task/repo" "$after"
    if run_tests "$before" "$cmd" "$tmo" "$work/$id.before.log"; then
      shipped=pass reason="tests pass on the shipped repo"
    else
      shipped=fail
    fi
    if ! (cd "$after" && git apply --whitespace=nowarn "$task/solution.patch") >"$work/$id.apply.log" 2>&1; then
      patched=noapply reason="${reason:+$reason; }solution.patch does not apply: $(head -c 200 "$work/$id.apply.log")"
    elif run_tests "$after" "$cmd" "$tmo" "$work/$id.after.log"; then
      patched=pass
    else
      patched=fail reason="${reason:+$reason; }tests fail with solution.patch (tail: $(tail -n 3 "$work/$id.after.log" | tr '\n' ' ' | head -c 300))"
    fi
    rm -rf "$before" "$after"
  fi
  if [ -z "$reason" ]; then
    result="ok ($((SECONDS - t0))s)"
  else
    result="INVALID: $reason" bad=$((bad + 1))
  fi
  printf '%-8s %-30s %-10s %-8s %-8s %s\n' "$tier" "$id" "$lang" "$shipped" "$patched" "$result"
  if [ -n "$keep_logs" ]; then mkdir -p "$keep_logs" && cp "$work/$id".*.log "$keep_logs/" 2>/dev/null; fi
done

echo "checked $total task(s), $bad invalid"
[ "$total" -gt 0 ] || { echo "no tasks found under $tasks_dir" >&2; exit 1; }
[ "$bad" -eq 0 ]
