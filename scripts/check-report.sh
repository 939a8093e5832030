#!/usr/bin/env bash
# Renders an `airgate report` page in headless Chromium and checks that it
# really draws: the DOM holds the four inline SVG charts with their bars, the
# page loads nothing from outside, and a screenshot contains the bar colours
# (non-blank pixels in the chart area).
#
# Usage: scripts/check-report.sh [REPORT.html]
#   CHARTS="id ..." names the charts the page must draw (default: the
#   tiers report's four; the corpus report passes its own).
#   Without an argument, builds a fresh report from `reference` and tamper
#   runs over tests/fixtures/tiers_suite and checks that.
# Env: AIRGATE (binary; default target/debug/airgate, built if missing),
#      CHROMIUM (default: chromium), KEEP=1 keeps the work directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
chromium="${CHROMIUM:-chromium}"
if ! command -v "$chromium" >/dev/null 2>&1; then
  echo "check-report: $chromium not found; install it with: apt-get install -y chromium" >&2
  exit 3
fi
work="$(mktemp -d)"
if [[ "${KEEP:-0}" != 1 ]]; then trap 'rm -rf "$work"' EXIT; else echo "check-report: work directory $work" >&2; fi

report="${1:-}"
if [[ -z "$report" ]]; then
  airgate="${AIRGATE:-$here/target/debug/airgate}"
  [[ -x "$airgate" ]] || cargo build --quiet --bin airgate
  "$airgate" tiers run --tasks tests/fixtures/tiers_suite --model reference --out "$work/ref" >/dev/null
  "$airgate" tiers run --tasks tests/fixtures/tiers_suite --max-attempts 1 \
    --model "script:tests/fixtures/tiers_tamper/tamper.jsonl" --out "$work/tamper" >/dev/null
  "$airgate" report "$work/ref" "$work/tamper" --out "$work/report.html" >/dev/null
  report="$work/report.html"
fi
[[ -f "$report" ]] || { echo "check-report: no such file: $report" >&2; exit 2; }
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"

flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars
       --no-first-run --no-default-browser-check --user-data-dir="$work/profile")

# 1. The DOM as Chromium parsed it.
"$chromium" "${flags[@]}" --dump-dom "$url" > "$work/dom.html" 2>"$work/chromium-dom.log"
# 2. A screenshot of the top of the page (scores and charts).
"$chromium" "${flags[@]}" --window-size=1280,1400 --screenshot="$work/shot.png" "$url" \
  >"$work/chromium-shot.log" 2>&1
[[ -s "$work/shot.png" ]] || { echo "check-report: chromium wrote no screenshot" >&2; cat "$work/chromium-shot.log" >&2; exit 1; }

python3 - "$work/dom.html" "$work/shot.png" "$report" <<'PY'
import re, struct, sys, zlib

dom_path, png_path, report_path = sys.argv[1:4]
dom = open(dom_path, encoding="utf-8").read()
page = open(report_path, encoding="utf-8").read()
fail = []

charts = re.findall(r'<svg class="chart" id="([^"]+)"', dom)
import os
wanted = os.environ.get("CHARTS", "chart-pass-tier chart-pass-language chart-steps chart-tokens").split()
for want in wanted:
    if want not in charts:
        fail.append(f"chart {want} missing from the rendered DOM (found {charts})")
bars = re.findall(r'<rect class="bar"[^>]*height="([0-9.]+)"[^>]*fill="(#[0-9a-f]{6})"', dom)
tall = [b for b in bars if float(b[0]) > 0]
if not tall:
    fail.append(f"no bar with a non-zero height ({len(bars)} bars)")
for bad in ["<script", "<link", 'src="http', 'href="http', "@import", "url("]:
    if bad in page:
        fail.append(f"page is not self-contained: contains {bad!r}")

# Decode the PNG (8-bit RGB/RGBA, the only kinds Chromium writes).
data = open(png_path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, width, height, ctype = 8, b"", 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert depth == 8 and ctype in (2, 6), f"unexpected PNG format depth={depth} type={ctype}"
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
bpp = 4 if ctype == 6 else 3
raw = zlib.decompress(idat)
stride = width * bpp
rows, prev, i = [], bytearray(stride), 0
for _ in range(height):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line))
    prev = line

colours = sorted({fill for _, fill in tall})
counts = {}
for fill in colours:
    rgb = bytes(int(fill[k:k + 2], 16) for k in (1, 3, 5))
    counts[fill] = sum(
        1 for row in rows for x in range(0, stride, bpp) if row[x:x + 3] == rgb
    )
nonwhite = sum(1 for row in rows for x in range(0, stride, bpp) if row[x:x + 3] != b"\xff\xff\xff")
for fill, n in counts.items():
    if n < 300:
        fail.append(f"bars of colour {fill} barely visible in the screenshot ({n} pixels)")
if fail:
    print("check-report: FAILED", file=sys.stderr)
    for f in fail:
        print("  " + f, file=sys.stderr)
    sys.exit(1)
print(f"check-report: ok: {len(charts)} charts, {len(tall)} bars drawn; "
      f"screenshot {width}x{height}, {nonwhite} non-white pixels, bar pixels {counts}")
PY
