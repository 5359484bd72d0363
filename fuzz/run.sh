#!/usr/bin/env bash
# Runs every fuzz target (or those in TARGETS) for RUNS executions each, one
# after the other, and prints per target the executions, exec/s and whether
# it crashed. Exit 1 when any target crashed, hung, ran out of memory or
# stopped before RUNS executions.
#
#   bash fuzz/run.sh                       # 10,000,000 executions per target
#   RUNS=5000 bash fuzz/run.sh             # the CI smoke
#   TARGETS="h1_response template" bash fuzz/run.sh
#
# Builds with cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its -Z flags; no sanitizer: the code fuzzed is safe Rust,
# where a bug is a panic, a hang or unbounded memory, which libFuzzer catches
# without one), optimised, with debug assertions and overflow checks.
# New inputs go to fuzz/corpus-work/TARGET (not committed); the committed
# seeds are read from fuzz/corpus/TARGET. A crash leaves its input in
# fuzz/artifacts/TARGET/ and the whole log in fuzz/logs/TARGET.log.
#
# Settings: RUNS (default 10000000), MAX_TIME (seconds per target, a safety
# stop; default 3600), TIMEOUT (seconds one input may take; default 10),
# RSS_LIMIT_MB (default 2048), JOBS_NICE (default 10), TARGETS.
set -euo pipefail
cd "$(dirname "$0")"

# All in one function: bash parses it whole before running it, so the
# script can be edited while a long run goes on.
main() {
    RUNS=${RUNS:-10000000}
    MAX_TIME=${MAX_TIME:-3600}
    TIMEOUT=${TIMEOUT:-10}
    RSS_LIMIT_MB=${RSS_LIMIT_MB:-2048}
    JOBS_NICE=${JOBS_NICE:-10}
    ALL="scenario_load template socketio_decode h1_response summary_json metrics_hlog"
    TARGETS=${TARGETS:-$ALL}
    TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}/fuzz
    TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

    # The largest input each target is given (bytes): a scenario file, a
    # summary of a short run, a few seconds of log.
    max_len() {
        case $1 in
            scenario_load) echo 8192 ;;
            summary_json | metrics_hlog) echo 20000 ;;
            *) echo 4096 ;;
        esac
    }

    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "error: cargo-fuzz is not installed (cargo install cargo-fuzz --version 0.13.1 --locked)" >&2
        exit 1
    fi

    echo "== building the fuzz targets (cargo fuzz build, stable toolchain)"
    build() {
        RUSTC_BOOTSTRAP=1 nice -n "$JOBS_NICE" cargo fuzz build -O --debug-assertions \
            --sanitizer none --target-dir "$TARGET_DIR" "$@"
    }
    if [ "$TARGETS" = "$ALL" ]; then
        build
    else
        for target in $TARGETS; do build "$target"; done
    fi
    bin_dir=$TARGET_DIR/$TRIPLE/release

    mkdir -p logs
    failed=0
    results=()
    for target in $TARGETS; do
        mkdir -p "corpus-work/$target" "artifacts/$target"
        log=logs/$target.log
        echo "== $target: $RUNS executions (at most ${MAX_TIME}s)"
        status=0
        nice -n "$JOBS_NICE" "$bin_dir/$target" \
            -runs="$RUNS" -max_total_time="$MAX_TIME" -timeout="$TIMEOUT" \
            -rss_limit_mb="$RSS_LIMIT_MB" -malloc_limit_mb="$RSS_LIMIT_MB" \
            -max_len="$(max_len "$target")" -dict="dict/$target.dict" \
            -artifact_prefix="artifacts/$target/" -print_final_stats=1 \
            "corpus-work/$target" "corpus/$target" >"$log" 2>&1 || status=$?
        done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
        runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
        secs=$(echo "$done_line" | sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p')
        rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -1)
        if [ "$status" -eq 0 ] && [ -n "$done_line" ] && [ "${runs:-0}" -ge "$RUNS" ]; then
            verdict="no crash"
        elif [ "$status" -eq 0 ]; then
            verdict="STOPPED EARLY (max_total_time)"
            failed=1
        else
            verdict="CRASH (exit $status; see $log and artifacts/$target/)"
            failed=1
        fi
        line=$(printf '%-16s %12s executions  %6s s  %8s exec/s  %s' \
            "$target" "${runs:-?}" "${secs:-?}" "${rate:-?}" "$verdict")
        echo "$line"
        if [ -n "$done_line" ]; then echo "   libFuzzer: $done_line"; fi
        results+=("$line")
    done

    echo "== summary"
    printf '%s\n' "${results[@]}"
    return "$failed"
}

main "$@"
exit
