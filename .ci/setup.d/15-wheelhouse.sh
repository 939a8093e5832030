#!/usr/bin/env bash
# The wheelhouse tests/images_build.rs builds SWE-bench images from (issue
# 14): pip, setuptools and wheel (every env needs them), pytest and one
# small pinned dependency, for CPython 3.11 on x86-64. Downloaded once from
# PyPI into .airgate/wheelhouse; the build itself then runs with no network.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/.airgate/wheelhouse"
stamp="$dir/.complete-v1"
[ -e "$stamp" ] && exit 0
mkdir -p "$dir"
python3 -m pip download -q --disable-pip-version-check \
  --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
  --implementation cp -d "$dir" \
  pip==24.2 setuptools==75.1.0 wheel==0.44.0 pytest==8.3.3 six==1.16.0
touch "$stamp"
echo "15-wheelhouse: $(ls "$dir" | wc -l) files in $dir"
