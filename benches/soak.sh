#!/usr/bin/env bash
# An hour without growth: HTTP users at 2,000 requests/s and 5,000
# Socket.IO agents with heartbeats (benches/soak.toml) for DURATION (one
# hour), against `stampede target` in its own process, started once and
# never restarted. Every SAMPLE seconds (60) the RSS (VmRSS) of the run
# process and of the target process goes into a CSV, with their open
# descriptors, the hub's connected agents (/admin/hub/stats) and the load
# average.
#
# Prints at the end:
#   - the RSS table (one row per sample);
#   - the growth of each process after the first five minutes: the highest
#     and the last sample against the first sample at or after 5 min, in %
#     (goal: ≤ LIMIT, 5 %), and the least-squares slope of those samples;
#   - the load delivered, from summary.json: requests/s achieved against
#     offered, agents registered, errors and disconnects, the generator's
#     health (lag p99, run-queue wait);
#   - the result files with their sizes, per second of run and per 1-second
#     interval (so their growth with the run's length can be read).
#
#   bash benches/soak.sh                               # one hour, a sample a minute
#   DURATION=600 bash benches/soak.sh                  # ten minutes
#   BIN=target/debug/stampede DURATION=75 SAMPLE=10 AGENTS=500 RATE=100 bash benches/soak.sh
#                      # the smoke .ci/run plays: the mechanics only, too short for the 5 % rule
#   ANALYZE=target/soak-20261201T064926Z bash benches/soak.sh
#                      # print the figures of a finished soak again (same settings)
#
# Settings: DURATION (s, 3600), SAMPLE (s, 60), AGENTS (5000), RATE
# (journeys/s, 1000; two requests each), LIMIT (growth %, 5), OUT (where
# the CSV, the logs and the result go; target/soak-<UTC time>), BIN (a
# stampede binary; default: a release build).
#
# Exits 1 when a process grew more than LIMIT (runs of at least 10 minutes
# only), when the load was not delivered (under 95 % of the offered
# requests/s, an agent not registered, errors over 0.1 %) or the run was not
# carried out (exit 2 or 3), or when a sample or result file is missing.
#
# Everything goes to 127.0.0.1, is bounded in count and time, and stops by
# itself (the trap stops the target and any run still going).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-3600}
SAMPLE=${SAMPLE:-60}
AGENTS=${AGENTS:-5000}
RATE=${RATE:-1000}
LIMIT=${LIMIT:-5}
CONNECT=20 # the first phase: agents connected at AGENTS/15 per second
[ "$DURATION" -ge 60 ] || { echo "DURATION must be at least 60 (seconds)" >&2; exit 2; }
[ "$SAMPLE" -ge 1 ] || { echo "SAMPLE must be at least 1 (second)" >&2; exit 2; }

if [ -z "${ANALYZE:-}" ]; then
  if [ -z "${BIN:-}" ]; then
    cargo build --release --locked --quiet
    BIN=${CARGO_TARGET_DIR:-target}/release/stampede
  fi
  OUT=${OUT:-target/soak-$(date -u +%Y%m%dT%H%M%SZ)}
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  CSV=$OUT/rss.csv

  pids=()
  cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
  fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

  # The target, in its own process, for the whole run.
  "$BIN" target --listen 127.0.0.1:0 --latency 1ms..3ms --hub-ping-interval 25s --hub-ping-timeout 20s \
    >"$OUT/target.log" 2>&1 &
  target_pid=$!
  pids+=("$target_pid")
  for _ in $(seq 100); do
    grep -q "listening on" "$OUT/target.log" 2>/dev/null && break
    sleep 0.1
  done
  URL=$(grep -o 'http://[0-9.:]*' "$OUT/target.log" | head -1)
  [ -n "$URL" ] || { echo "the target did not start" >&2; cat "$OUT/target.log" >&2; exit 1; }
  hub_connected() {
    curl -s --max-time 5 "$URL/admin/hub/stats" \
      | python3 -c "import json,sys; print(json.load(sys.stdin)['connected'])" 2>/dev/null || echo -1
  }

  cmd=("$BIN" run benches/soak.toml --quiet --api "$URL" --hub "$URL" --out "$OUT"
    --set "phases.connect.duration=${CONNECT}s"
    --set "phases.connect.agents.connected=$AGENTS"
    --set "phases.connect.agents.connect_rate=$(((AGENTS + 14) / 15))/s"
    --set "phases.connect.users.rate=$RATE/s"
    --set "phases.hold.duration=$((DURATION - CONNECT))s"
    --set "phases.hold.users.rate=$RATE/s")
  echo "== soak: $((2 * RATE)) requests/s ($RATE journeys/s) + $AGENTS agents, ${DURATION}s, a sample every ${SAMPLE}s"
  echo "target: $URL (pid $target_pid); results, CSV and logs: $OUT"
  echo "command: ${cmd[*]}"
  "${cmd[@]}" >"$OUT/run.log" 2>&1 &
  run_pid=$!
  pids+=("$run_pid")
  t0=$(date +%s)

  echo "elapsed_s,utc,run_rss_kib,target_rss_kib,run_fds,target_fds,hub_connected,load1" >"$CSV"
  k=1
  while kill -0 "$run_pid" 2>/dev/null; do
    # Whole seconds from the start; checks the run every second so the loop
    # ends with it.
    if [ $(($(date +%s) - t0)) -lt $((k * SAMPLE)) ]; then
      sleep 1
      continue
    fi
    kill -0 "$run_pid" 2>/dev/null || break
    row="$(($(date +%s) - t0)),$(date -u +%H:%M:%S),$(rss_kib "$run_pid"),$(rss_kib "$target_pid")"
    row="$row,$(fds "$run_pid"),$(fds "$target_pid"),$(hub_connected),$(cut -d' ' -f1 /proc/loadavg)"
    echo "$row" >>"$CSV"
    k=$((k + 1))
  done
  rc=0
  wait "$run_pid" || rc=$?
  pids=("$target_pid")
  kill -0 "$target_pid" 2>/dev/null || { echo "the target died during the run" >&2; cat "$OUT/target.log" >&2; exit 1; }
  echo "run exit code: $rc ($(tail -1 "$OUT/run.log"))"
  if [ "$rc" -ge 2 ]; then
    echo "FAILED: the run was not carried out" >&2
    cat "$OUT/run.log" >&2
    exit 1
  fi
else # only the analysis of a finished soak
  OUT=$(cd "$ANALYZE" && pwd)
  CSV=$OUT/rss.csv
fi
DIR=$(ls -d "$OUT"/soak-*/ 2>/dev/null | head -1)
[ -n "$DIR" ] || { echo "FAILED: no result directory in $OUT" >&2; exit 1; }

python3 - "$CSV" "$DIR" "$AGENTS" "$RATE" "$LIMIT" "$DURATION" <<'EOF'
import csv, json, os, sys
path, result, agents, rate, limit, duration = sys.argv[1:]
agents, rate, limit, duration = int(agents), int(rate), float(limit), int(duration)
rows = list(csv.DictReader(open(path)))
failed = []
print(f"\nRSS (KiB) every sample ({path}):")
print(f"{'elapsed':>8} {'UTC':>9} {'run RSS':>9} {'target RSS':>11} {'run fds':>8} {'target fds':>11} {'hub agents':>11} {'load1':>6}")
for r in rows:
    print(f"{r['elapsed_s']:>8} {r['utc']:>9} {r['run_rss_kib']:>9} {r['target_rss_kib']:>11} {r['run_fds']:>8} "
          f"{r['target_fds']:>11} {r['hub_connected']:>11} {r['load1']:>6}")
if len(rows) < 3:
    failed.append(f"only {len(rows)} samples")

# Growth after the first five minutes: against the first sample at or after 300 s.
late = [r for r in rows if int(r["elapsed_s"]) >= 300]
if duration >= 600 and len(late) >= 2:
    print(f"\ngrowth after 5 minutes (reference: the sample at {late[0]['elapsed_s']} s; goal <= {limit:g} %):")
    for name, key in (("run", "run_rss_kib"), ("target", "target_rss_kib")):
        ref = int(late[0][key])
        top = max(late, key=lambda r: int(r[key]))
        last = int(late[-1][key])
        g_max = (int(top[key]) - ref) * 100 / ref
        g_last = (last - ref) * 100 / ref
        ok = g_max <= limit
        # Least-squares slope over the same samples: a step (reached once)
        # and a slope (growing with time) look alike in two numbers.
        xs = [int(r["elapsed_s"]) / 60 for r in late]
        ys = [int(r[key]) for r in late]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        print(f"  {name:<6}: {ref/1024:.1f} MiB at {late[0]['elapsed_s']} s, highest {int(top[key])/1024:.1f} MiB "
              f"at {top['elapsed_s']} s ({g_max:+.2f} %), last {last/1024:.1f} MiB at {late[-1]['elapsed_s']} s "
              f"({g_last:+.2f} %), slope {slope:+.1f} KiB/min -> {'PASS' if ok else 'FAIL'}")
        if not ok:
            failed.append(f"{name} RSS grew {g_max:.2f} % after 5 minutes (limit {limit:g} %)")
else:
    print(f"\ngrowth: not judged (a run of {duration} s; the 5 % rule needs at least 10 minutes)")

s = json.load(open(os.path.join(result, "summary.json")))
def total(metric, phase=None):
    return sum((c["total"] if phase is None else c["phases"].get(phase, 0))
               for c in s["counters"] if c["metric"] == metric)
def kinds(metric):  # by kind, or "" when none
    out = {}
    for c in s["counters"]:
        if c["metric"] == metric and c["total"]:
            out[c["kind"] or "-"] = out.get(c["kind"] or "-", 0) + c["total"]
    return " " + ", ".join(f"{k} {v}" for k, v in out.items()) if out else ""
hold = next(p for p in s["phases"] if p["name"] == "hold")
hold_s = hold["end_s"] - hold["start_s"]
requests, errors = total("http.requests"), total("http.errors")
achieved = total("http.requests", "hold") / hold_s
offered = 2 * rate
registered, connects = total("hub.registrations"), total("hub.connects")
hub_errors, disconnects = total("hub.errors"), total("hub.disconnects")
rtt = [h for h in s["histograms"] if h["metric"] == "hub.message.rtt" and h["phase"] is None]
beats = sum(h["count"] for h in rtt)
print(f"\nload ({result}, exit code {s['meta']['exit_code']}, {s['meta']['duration_s']:.0f} s):")
print(f"  HTTP: {requests} requests, {achieved:,.1f}/s achieved in the hold phase of {hold_s:.0f} s "
      f"(offered {offered:,}/s, {achieved * 100 / offered:.2f} %), {errors} errors{kinds('http.errors')}")
print(f"  agents: {registered} registrations of {agents}, {connects} connects, {beats} heartbeats acked, "
      f"{hub_errors} errors{kinds('hub.errors')}, {disconnects} disconnects{kinds('hub.disconnects')}")
g = s.get("generator") or {}
f = g.get("figures") or {}
if f:
    print(f"  generator: lag p99 {f['lag_p99_us'] / 1e3:.2f} ms, CPU {f['cpu_s']:.0f} s of {f['wall_s']:.0f} s, "
          f"run-queue wait {f['run_queue_s']:.0f} s, dropped {f['dropped']}, queued peak {f['queued_peak']}; "
          f"health: {'kept up' if not g.get('causes') else '; '.join(c['kind'] + ' ' + str(c['figure']) for c in g['causes'])}")
for n in s["meta"].get("notes") or []:
    print(f"  note: {n}")
if achieved < 0.95 * offered:
    failed.append(f"{achieved:.0f} requests/s achieved, under 95 % of {offered}")
if registered < agents or connects < agents:
    failed.append(f"{registered} of {agents} agents registered")
if errors > requests / 1000:
    failed.append(f"{errors} HTTP errors (over 0.1 %)")
if hub_errors > max(1, beats) / 1000:
    failed.append(f"{hub_errors} hub errors (over 0.1 % of the heartbeats)")
# Every agent connected at every sample between the connect phase and the end.
held = [r for r in rows if 25 <= int(r["elapsed_s"]) < duration - 1]
low = min(held, key=lambda r: int(r["hub_connected"]), default=None)
if low is not None and int(low["hub_connected"]) < agents:
    failed.append(f"the hub had {low['hub_connected']} agents connected at {low['elapsed_s']} s (fewer than {agents})")

intervals = len(s["series"])
print(f"\nresult files ({result}; {s['meta']['duration_s']:.0f} s, {intervals} 1-second intervals):")
for name in sorted(os.listdir(result)):
    size = os.path.getsize(os.path.join(result, name))
    print(f"  {name:<14} {size:>12,} bytes  {size / s['meta']['duration_s']:>10,.0f} B/s  "
          f"{size / max(1, intervals):>8,.0f} B per interval")
for name in ("summary.json", "metrics.hlog", "report.html", "junit.xml", "summary.md"):
    if not os.path.exists(os.path.join(result, name)):
        failed.append(f"{name} missing")
if failed:
    print("\nFAILED: " + "; ".join(failed))
    sys.exit(1)
print("\nPASS")
EOF
