#!/usr/bin/env bash
# Writes the real-result seeds of the summary_json and metrics_hlog fuzz
# targets: two-second runs of fuzz/seeds/tiny.toml against the built-in
# target (loopback, in-process), once whole and once as segment 1 of 2.
# segment-summary.json is the summary metrics_hlog reads its logs beside.
#   BIN=target/debug/stampede bash fuzz/seeds/real-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-../target/debug/stampede}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$BIN" run seeds/tiny.toml --quiet --out "$out/whole"
"$BIN" run seeds/tiny.toml --quiet --segment 1/2 --out "$out/segment"
whole=$(echo "$out"/whole/*/)
segment=$(echo "$out"/segment/*/)
mkdir -p corpus/summary_json corpus/metrics_hlog
cp "$whole/summary.json" corpus/summary_json/seed-whole
cp "$segment/summary.json" corpus/summary_json/seed-segment
cp "$segment/summary.json" seeds/segment-summary.json
cp "$whole/metrics.hlog" corpus/metrics_hlog/seed-whole
cp "$segment/metrics.hlog" corpus/metrics_hlog/seed-segment
wc -c corpus/summary_json/seed-* corpus/metrics_hlog/seed-*
