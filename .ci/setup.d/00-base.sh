#!/usr/bin/env bash
# Toolchains the engine's end-to-end tests and the tier tasks use.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v go >/dev/null || need+=(golang-go)
command -v node >/dev/null || need+=(nodejs)
# The red-team fixtures (tests/cheats_e2e.rs) run `npm test` and `make test` over C.
command -v npm >/dev/null || need+=(npm)
command -v make >/dev/null || need+=(make)
command -v cc >/dev/null || need+=(gcc)
command -v rg >/dev/null || need+=(ripgrep)
command -v patch >/dev/null || need+=(patch)
# The local sandbox (`--sandbox local`, the default) runs every command under bubblewrap.
command -v bwrap >/dev/null || need+=(bubblewrap)
# `solve --interactive` is tested on a real terminal (tests/interactive_tmux.rs).
command -v tmux >/dev/null || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest
# `python` is what detected test commands call.
command -v python >/dev/null || ln -sf "$(command -v python3)" /usr/local/bin/python
