#!/usr/bin/env bash
# Python readers for .ci/check.d/corpus.sh: the corpus must load in the real
# tools ML engineers use (pyarrow, pandas, Hugging Face datasets).
set -euo pipefail
if python3 -c 'import pyarrow, pandas, datasets' 2>/dev/null; then
  exit 0
fi
python3 -m pip install -q --disable-pip-version-check pyarrow pandas datasets
