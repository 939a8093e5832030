#!/usr/bin/env bash
# Headless Chromium for scripts/check-report.sh (.ci/check.d/report.sh):
# the comparison report is rendered and screenshotted to prove its charts draw.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
