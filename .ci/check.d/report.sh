#!/usr/bin/env bash
# The comparison report renders in headless Chromium: a fresh report built
# from the fixture suite, and every committed report in reports/.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x target/debug/airgate ] || cargo build --quiet --bin airgate
scripts/check-report.sh
for page in reports/*.html; do
  [ -e "$page" ] || continue
  echo "report: checking $page"
  scripts/check-report.sh "$page"
done
