#!/usr/bin/env bash
# A large fleet on one machine: AGENTS Socket.IO agents (50,000 by default)
# with heartbeats, held for HOLD seconds (300), the client split over
# several processes (`stampede run --processes P`) and the built-in hub
# served by several worker processes on one port (`stampede target
# --processes T`), because one process may hold at most 20,000 descriptors
# here. The agents' connections come from several loopback source
# addresses (~28,000 ports each), divided among the client processes.
#
# Prints, from the merged result and /proc:
#   - agents registered, errors and disconnects (the goal: 0 and 0);
#   - client memory per agent: the sum of the client processes' RSS in the
#     middle of the hold, minus the same in a run of BASE agents over as
#     many processes, over (AGENTS − BASE) (goal ≤ 10 KiB);
#   - the storm connect rate: AGENTS / the slowest connect of the storm
#     (all agents started at once; goal ≥ 10,000/s);
#   - client CPU per heartbeat: CPU of every client process over a window
#     of the hold / heartbeats acked in exactly the seconds of that window
#     (from the merged per-second series), and the hub's alongside.
#
#   bash benches/hub-fleet.sh                          # 50,000 agents, 5 minutes
#   AGENTS=100000 HOLD=60 bash benches/hub-fleet.sh    # push it
#   AGENTS=100000 HOLD=60 CONNECT_RATE=2500 bash benches/hub-fleet.sh   # connected at 2,500/s, not all at once
#   AGENTS=20000 HOLD=30 BASE=0 bash benches/hub-fleet.sh   # quick look, no memory baseline
#   BIN=target/debug/stampede AGENTS=3000 PER_PROCESS=1000 STORM=5 HOLD=20 BASE=0 bash benches/hub-fleet.sh
#                      # the smoke .ci/run plays: 3 client processes, 3 hub workers, debug build
#
# Exits 1 unless every agent registered once with 0 errors and 0
# disconnects and the merged result passed.
#
# Everything goes to 127.0.0.0/8, is bounded in count and time, and stops
# by itself (the trap stops the hub and any run still going).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${AGENTS:-50000}
HOLD=${HOLD:-300}
STORM=${STORM:-20}
BASE=${BASE:-1000}
HEARTBEAT=${HEARTBEAT:-10s}
# "max": every agent at once (a storm); or a rate such as 2500 (agents/s),
# with the first phase long enough for it.
CONNECT_RATE=${CONNECT_RATE:-max}
if [ "$CONNECT_RATE" != "max" ]; then
  STORM=$(( N / CONNECT_RATE + 10 ))
  RATE_TEXT="\"$CONNECT_RATE/s\""
else
  RATE_TEXT='"max"'
fi
PER_PROCESS=${PER_PROCESS:-15000}
P=${PROCESSES:-$(((N + PER_PROCESS - 1) / PER_PROCESS))}
T=${TARGET_PROCESSES:-$(((N + PER_PROCESS - 1) / PER_PROCESS))}
SOURCES=${SOURCES:-$(((N + 19999) / 20000 + 1))}
[ "$HOLD" -ge 20 ] || { echo "HOLD must be at least 20 (seconds)" >&2; exit 2; }

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/stampede
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

tick_hz=$(getconf CLK_TCK)
descendants() { # every process below $1
  local kids
  kids=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
  for k in $kids; do echo "$k"; descendants "$k"; done
}
tree_rss_kb() { # RSS of $1 and its descendants
  local total=0 p
  for p in "$1" $(descendants "$1"); do
    total=$((total + $(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)))
  done
  echo "$total"
}
tree_cpu_ticks() {
  local total=0 p
  for p in "$1" $(descendants "$1"); do
    total=$((total + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
  done
  echo "$total"
}

"$BIN" target --listen 127.0.0.1:0 --processes "$T" --hub-ping-interval 25s --hub-ping-timeout 20s \
  >"$work/hub.log" 2>&1 &
hub_pid=$!
pids+=("$hub_pid")
for _ in $(seq 300); do
  grep -q "listening on" "$work/hub.log" 2>/dev/null && break
  sleep 0.1
done
HUB=$(grep -o 'http://[0-9.:]*' "$work/hub.log" | head -1)
[ -n "$HUB" ] || { echo "the hub did not start" >&2; cat "$work/hub.log" >&2; exit 1; }

scenario() { # $1 = agents, $2 = hold seconds
  cat >"$work/s$1.toml" <<EOF
name = "fleet-$1"
[target]
hub = "$HUB"
[hub]
timeout = "60s"
sources = $SOURCES
[[agents]]
name = "agent"
protocol = "socketio"
register = { event = "register", data = { id = "a-{{ agent.id }}" }, ack = true }
heartbeat = { every = "$HEARTBEAT", jitter = "20%", ack = true }
reconnect = { base = "1s", max = "10s", jitter = "full" }
[[phases]]
name = "storm"
duration = "${STORM}s"
agents = { connected = $1, connect_rate = $RATE_TEXT }
[[phases]]
name = "hold"
duration = "${2}s"
EOF
}

# Runs $1 agents for a hold of $2 s; sets RSS (KiB, mid-hold, client
# processes), CPU_S / HUB_CPU_S over the window, W0/W1 (window, seconds
# since the start) and DIR (the merged result).
measure() {
  local n=$1 hold=$2
  scenario "$n" "$hold"
  # The reference run uses as many processes as the measured one, so their
  # fixed memory cancels out of the per-agent figure.
  local hs
  hs=$(tree_cpu_ticks "$hub_pid")
  "$BIN" run "$work/s$n.toml" --quiet --processes "$P" --out "$work/out$n" >"$work/run$n.log" 2>&1 &
  local pid=$! t0
  pids+=("$pid")
  t0=$(date +%s.%N)
  sleep $((STORM + 3))
  kill -0 "$pid" 2>/dev/null || { echo "the run ended early:" >&2; cat "$work/run$n.log" >&2; exit 1; }
  local c0 h0
  c0=$(tree_cpu_ticks "$pid"); h0=$(tree_cpu_ticks "$hub_pid")
  # The storm phase's CPU (start-up included): every client process is new.
  STORM_CPU_S=$(python3 -c "print($c0 / $tick_hz)")
  STORM_HUB_CPU_S=$(python3 -c "print(($h0 - $hs) / $tick_hz)")
  W0=$(python3 -c "print($(date +%s.%N) - $t0)")
  sleep $((hold / 2))
  RSS=$(tree_rss_kb "$pid")
  sleep $((hold / 2 - 5))
  local c1 h1
  c1=$(tree_cpu_ticks "$pid"); h1=$(tree_cpu_ticks "$hub_pid")
  W1=$(python3 -c "print($(date +%s.%N) - $t0)")
  wait "$pid" || echo "(the run exited with $?)"
  CPU_S=$(python3 -c "print(($c1 - $c0) / $tick_hz)")
  HUB_CPU_S=$(python3 -c "print(($h1 - $h0) / $tick_hz)")
  DIR=$(ls -d "$work/out$n"/*/ | head -1)
  tail -3 "$work/run$n.log"
}

echo "== $N agents on one machine: client --processes $P, hub --processes $T ($HUB), $SOURCES source addresses; storm ${STORM}s, hold ${HOLD}s, heartbeat every $HEARTBEAT"
rss_base=0
if [ "$BASE" -gt 0 ]; then
  measure "$BASE" 20
  rss_base=$RSS
  echo "reference: $BASE agents in $P processes, client RSS $((rss_base / 1024)) MiB"
fi
measure "$N" "$HOLD"
python3 - "$DIR/summary.json" "$N" "$BASE" "$rss_base" "$RSS" "$CPU_S" "$HUB_CPU_S" "$W0" "$W1" "$STORM_CPU_S" "$STORM_HUB_CPU_S" "$CONNECT_RATE" <<'EOF'
import json, sys
path, connect_rate = sys.argv[1], sys.argv[12]
n, base, rss_base, rss = map(int, sys.argv[2:6])
cpu, hub_cpu, w0, w1, storm_cpu, storm_hub_cpu = map(float, sys.argv[6:12])
s = json.load(open(path))
def total(metric, kind=None):
    return sum(c["total"] for c in s["counters"] if c["metric"] == metric and (kind is None or c["kind"] == kind))
connect = [h for h in s["histograms"] if h["metric"] == "hub.connect" and h["phase"] == "storm" and h["count"]]
slowest = max(h["max"] for h in connect) / 1e6 if connect else float("nan")
p99 = max(h["p99"] for h in connect) / 1e3 if connect else float("nan")
rtt = [i for i, d in enumerate(s["layout"]["hists"]) if d["metric"] == "hub.message.rtt"]
# Heartbeats acked in exactly the seconds inside the CPU window.
beats = sum(p["hists"][i]["count"] for p in s["series"] if w0 + 1 <= p["elapsed_s"] <= w1 for i in rtt)
seconds = sum(1 for p in s["series"] if w0 + 1 <= p["elapsed_s"] <= w1)
errors, disconnects = total("hub.errors"), total("hub.disconnects")
print(f"merged result: {path.rsplit('/', 2)[0]}  exit code {s['meta']['exit_code']}")
print(f"agents: {total('hub.registrations')} registrations of {n}, {total('hub.connects')} connects, "
      f"{errors} errors, {disconnects} disconnects (goal: 0 and 0)")
if base > 0:
    per = (rss - rss_base) * 1024 / (n - base)
    print(f"client memory: {rss/1024:.0f} MiB with {n} agents, {rss_base/1024:.0f} MiB with {base} -> "
          f"{per/1024:.2f} KiB per agent (goal <= 10 KiB)")
else:
    print(f"client memory: {rss/1024:.0f} MiB with {n} agents -> {rss/n:.2f} KiB per agent including the fixed part")
def kinds(metric):
    return {c["kind"]: c["total"] for c in s["counters"] if c["metric"] == metric and c["total"]}
if errors or disconnects:
    print(f"errors by kind: {kinds('hub.errors')}; disconnects by kind: {kinds('hub.disconnects')}")
if connect_rate == "max":
    print(f"storm: {n} agents connected in {slowest:.3f} s (slowest connect; p99 {p99:.0f} ms) -> "
          f"{n/slowest:,.0f} connects/s (goal >= 10,000/s)")
else:
    print(f"connects at {connect_rate}/s: slowest {slowest*1e3:.0f} ms, p99 {p99:.0f} ms")
print(f"connect phase CPU (the {n} connects, process start-up included): client {storm_cpu*1e6/n:.0f} us per agent, "
      f"hub {storm_hub_cpu*1e6/n:.0f} us per agent; both share this machine's cores")
ok = errors == 0 and disconnects == 0 and total("hub.registrations") == n and s["meta"]["exit_code"] == 0
if beats:
    print(f"heartbeats acked in the {seconds} s window: {beats} ({beats/seconds:,.0f}/s) -> client CPU "
          f"{cpu*1e6/beats:.1f} us per heartbeat; hub CPU {hub_cpu*1e6/beats:.1f} us per heartbeat "
          f"(all processes; pings and kernel loopback work included)")
if not ok:
    print("FAILED: every agent must register once, with 0 errors and 0 disconnects, and the merged run exit 0")
    sys.exit(1)
EOF
