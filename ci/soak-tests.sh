#!/usr/bin/env bash
# The suite's stability proof: the whole test suite, N times in a row, in a
# clean clone of this repository's HEAD, while a spinning process pinned to
# one core keeps that core busy (the load a shared CI machine adds).
#
#   bash ci/soak-tests.sh [N]          # default N = 10
#
# First `bash .ci/run` in the clone (installs node/npm, Chromium and the
# Python hdrhistogram venv; fmt, clippy, one suite run, the self gate), then N
# runs of the suite (`cargo test --locked -- --include-ignored`, as CI runs
# it, with --no-fail-fast so every binary's tally counts), each logged
# under the clone's target/soak/. Prints one line a run and the tally; exits non-zero when any run failed. Everything it starts stops
# with it (the spinner is killed on exit). Tests only talk to loopback.
set -euo pipefail
runs=${1:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/stampede-soak.XXXXXX)
echo "soak: cloning $(git -C "$repo" rev-parse --short HEAD) into $work"
git clone --quiet --no-hardlinks "$repo" "$work/stampede"
cd "$work/stampede"
logs=target/soak
mkdir -p "$logs"

spinner=""
cleanup() {
    if [ -n "$spinner" ]; then
        kill "$spinner" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

echo "soak: setup: bash .ci/run (log: $work/stampede/$logs/ci-run.log)"
if ! CI=true bash .ci/run >"$logs/ci-run.log" 2>&1; then
    echo "soak: .ci/run failed in the clean clone; its log's tail:" >&2
    tail -40 "$logs/ci-run.log" >&2
    exit 1
fi

cores=$(nproc)
busy=$((cores - 1))
echo "soak: a spinning process pinned to core $busy of $cores"
taskset -c "$busy" bash -c 'while :; do :; done' &
spinner=$!

failed_runs=0
for i in $(seq 1 "$runs"); do
    log="$logs/run-$i.log"
    start=$(date +%s)
    if CI=true cargo test --locked --no-fail-fast -- --include-ignored >"$log" 2>&1; then
        verdict=pass
    else
        verdict=FAIL
        failed_runs=$((failed_runs + 1))
    fi
    secs=$(($(date +%s) - start))
    # Sum libtest's closing lines over every test binary of the run.
    totals=$(grep -E '^test result: ' "$log" | awk '
        { for (i = 1; i <= NF; i++) { v = $i; sub(/;/, "", $(i + 1));
            if ($(i + 1) == "passed") p += v; if ($(i + 1) == "failed") f += v;
            if ($(i + 1) == "ignored") g += v } }
        END { printf "%d passed, %d failed, %d ignored", p, f, g }')
    echo "soak: run $i/$runs: $verdict in ${secs}s ($totals)"
    if [ "$verdict" = FAIL ]; then
        grep -E '^    [a-z_:]+$|^test .* FAILED$|panicked at' "$log" | head -20 | sed 's/^/soak:   /'
    fi
done
echo "soak: $((runs - failed_runs)) of $runs runs passed, $failed_runs failed (logs: $work/stampede/$logs)"
[ "$failed_runs" -eq 0 ]
