#!/usr/bin/env bash
# Screenshot a search report (graph_nas.report --html) in headless Chromium,
# to check what a reader's browser shows.
#
#   bash benchmarks/screenshot_report.sh runs/toy/report.html /tmp/report.png [1200,2000]
#
# Needs Chromium from the system packages (Debian: apt-get install -y
# chromium). Runs at the lowest CPU priority. Exits non-zero when Chromium
# is missing or writes no PNG.
set -euo pipefail
html=${1:?usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]}
out=${2:?usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]}
size=${3:-1200,2000}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "error: no chromium on PATH (apt-get install -y chromium)" >&2
  exit 2
fi
[ -f "$html" ] || { echo "error: no such file: $html" >&2; exit 2; }
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
nice -n 19 "$browser" --headless --no-sandbox --disable-gpu \
  --disable-background-networking --disable-component-update --disable-sync \
  --no-first-run --hide-scrollbars --user-data-dir="$profile" \
  --screenshot="$out" --window-size="$size" "file://$abs" >/dev/null 2>&1 || true
if [ ! -s "$out" ]; then
  echo "error: chromium wrote no screenshot to $out" >&2
  exit 1
fi
echo "wrote $out"
