#!/usr/bin/env bash
# `stampede capacity` against a server of known capacity that queues, the
# way users run it: `stampede target --concurrency L --latency S` as its own
# process, with a deep FIFO queue in which a request whose client gave up
# keeps its place, started once per setup and never restarted between
# steps. True capacity: L / S requests per second.
#
# For each setup, one after the other against the same target process:
#   - stampede as built (cool-down after a failing step, backlog re-runs);
#   - the same with `--cool-down 0s` (no cool-down: what a search without
#     one finds);
#   - the BASELINE binary, when given (e.g. a build from before issue 14).
# Printed: the capacity found, its error against L / S, the steps run (and
# how many were discarded), the cool-downs and the search's wall time.
#
#   bash benches/capacity-knee.sh
#   SETUPS="4:20:100 10:50:150" WARMUP=2s STEP=5s TIMEOUT=1s START=10 bash benches/capacity-knee.sh
#   BASELINE=/path/to/old/stampede STAMPEDE=/path/to/stampede bash benches/capacity-knee.sh
#
# A setup is L:S_ms:SLO_p95_ms. Load goes only to 127.0.0.1 and stops by
# itself (each search is bounded by its budget).
set -euo pipefail
cd "$(dirname "$0")/.."

SETUPS=${SETUPS:-"4:20:100 10:50:150"}
WARMUP=${WARMUP:-2s}
STEP=${STEP:-5s}
# The client timeout: with a short one, clients give up on queued requests
# that the server still works off after the step has ended.
TIMEOUT=${TIMEOUT:-1s}
# The first load tried (the issue's search started at 10/s, so its first
# failing step, 320/s, was far past the knee and left a deep backlog).
START=${START:-10}
BASELINE=${BASELINE:-}
STAMPEDE=${STAMPEDE:-}
if [ -z "$STAMPEDE" ]; then
  cargo build --release --quiet
  STAMPEDE=target/release/stampede
fi

work=$(mktemp -d)
target_pid=
cleanup() {
  [ -n "$target_pid" ] && kill "$target_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

rows=()
for setup in $SETUPS; do
  IFS=: read -r L S SLO <<<"$setup"
  truth=$(python3 -c "print($L * 1000 / $S)")
  start=$START
  # The target, once for the setup; its first stdout line names its URL.
  "$STAMPEDE" target --listen 127.0.0.1:0 --concurrency "$L" --latency "${S}ms" \
    --queue 100000 >"$work/target.out" 2>"$work/target.err" &
  target_pid=$!
  url=
  for _ in $(seq 100); do
    url=$(grep -o 'http://[0-9.:]*' "$work/target.out" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "the target did not start: $(cat "$work/target.err")" >&2; exit 1; }
  cat >"$work/knee.toml" <<TOML
name = "knee"
[target]
api = "$url"
[http]
timeout = "$TIMEOUT"
[capacity]
vary = "users"
start = $start
precision = "5%"
warmup = "$WARMUP"
step = "$STEP"
budget = "10m"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers?per_page=1" }]
[[phases]]
name = "p"
duration = "10s"
users = { rate = "$start/s" }
[slo]
"http.latency.p95" = "< ${SLO}ms"
TOML
  modes=("stampede" "no-cool-down")
  [ -n "$BASELINE" ] && modes+=("baseline")
  for mode in "${modes[@]}"; do
    case $mode in
      stampede) cmd=("$STAMPEDE" capacity "$work/knee.toml") ;;
      no-cool-down) cmd=("$STAMPEDE" capacity "$work/knee.toml" --cool-down 0s) ;;
      baseline) cmd=("$BASELINE" capacity "$work/knee.toml") ;;
    esac
    out="$work/out-$mode-$L-$S"
    echo "$L slots × ${S} ms (L/S = $truth/s), p95 < ${SLO} ms: $mode…" >&2
    t0=$(date +%s.%N)
    "${cmd[@]}" --quiet --out "$out" >"$work/search.log" 2>&1 || true
    t1=$(date +%s.%N)
    json=$(find "$out" -name capacity.json | head -1)
    if [ -z "$json" ]; then
      echo "no capacity.json for $mode: $(tail -5 "$work/search.log")" >&2
      continue
    fi
    rows+=("$(python3 - "$json" "$truth" "$mode" "$L" "$S" "$SLO" "$t0" "$t1" <<'PY'
import json, sys
path, truth, mode, L, S, slo, t0, t1 = sys.argv[1:]
r = json.load(open(path))
truth = float(truth)
cap = r.get("capacity")
steps = r.get("steps", [])
discarded = sum(1 for s in steps if s.get("discarded"))
cools = [s["cool_down"] for s in steps if s.get("cool_down")]
cool_s = sum(c.get("seconds", 0) for c in cools)
found = f"{cap:.1f}" if cap is not None else "none"
err = f"{(cap - truth) / truth * 100:+.1f}%" if cap is not None else "-"
print(f"{L + ' × ' + S + ' ms':<12} {truth:>7.0f} {'< ' + slo + ' ms':>9} {mode:<13} {found:>8} {err:>7} "
      f"{len(steps):>6} {discarded:>5} {len(cools):>6} {cool_s:>7.1f} {float(t1) - float(t0):>7.0f}")
PY
)")
  done
  kill "$target_pid" 2>/dev/null || true
  wait "$target_pid" 2>/dev/null || true
  target_pid=
done

echo
echo "capacity searches against 'stampede target --concurrency L --latency S --queue 100000' (its own process, never restarted); steps: $WARMUP warm-up + $STEP measured, client timeout $TIMEOUT"
printf '%-12s %7s %9s %-13s %8s %7s %6s %5s %6s %7s %7s\n' \
  setup "L/S" p95 search found error steps disc. cools cool-s wall-s
for row in "${rows[@]}"; do echo "$row"; done
