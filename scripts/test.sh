#!/usr/bin/env bash
# The test command of the README: installs what the tests need (idempotent),
# then runs the whole test suite. CI runs exactly this, plus lint and the
# cross-checks in .ci/check.d/.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in .ci/setup.d/*.sh; do
  [ -e "$step" ] || continue
  echo "== setup: $step"
  bash "$step"
done
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast --test-threads "${AIRGATE_TEST_THREADS:-4}"
  cargo test --doc
else
  cargo test
fi
