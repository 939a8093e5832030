#!/usr/bin/env bash
# Cross-check: `airgate swebench grade` and the official swebench==5.0.2 grader
# produce byte-identical report.json files for all 116 dev logs (58 wrapped in
# 5.x markers, 58 raw pre-3.0). Agreement must be total; no timing here.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x target/debug/airgate ] || cargo build --quiet --bin airgate
AIRGATE_BIN="$PWD/target/debug/airgate" scripts/bench-grade.sh --no-timing --rounds 1
