#!/usr/bin/env bash
# Hub agents at scale: 10,000 idle Socket.IO agents with heartbeats running,
# against the built-in hub in its own process (`stampede target`).
#
# Prints, for stampede's agents:
#   - client memory per idle agent: (RSS with N agents − RSS with BASE
#     agents) / (N − BASE), both sampled in the middle of the hold phase;
#   - the storm connect rate: N agents started at once (connect_rate =
#     "max"); N / the slowest connect (TCP + upgrade + Engine.IO open +
#     namespace CONNECT), i.e. the rate at which the fleet got connected;
#   - client CPU per heartbeat over the hold phase: (utime + stime delta of
#     the stampede process) / (heartbeats the hub counted in the window),
#     and the hub's CPU per heartbeat alongside;
# and, side by side on the same hub, the reference client (node's
# `socket.io-client`, from tests/node) holding the same number of idle
# connections with the same heartbeat: its memory per connection and the
# ratio.
#
#   bash benches/hub-agents.sh                 # 10,000 agents, 20 s hold
#   AGENTS=5000 HOLD=30 bash benches/hub-agents.sh
#   PEER=0 bash benches/hub-agents.sh          # without the node comparison
#   BASELINE=/path/to/old/stampede bash benches/hub-agents.sh
#                      # the same measurements with an older build, same hub
#   BASELINE=… ROUNDS=3 HOLD=10 STORM=10 PEER=0 bash benches/hub-agents.sh
#                      # alternate the two builds three times (storms are noisy)
#
# Everything goes to 127.0.0.1, is bounded in count and time, and stops by
# itself. Goals on a 2-core machine: ≤ 16 KiB per idle agent, ≥ 5,000
# connects/s in the storm.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${AGENTS:-10000}
BASE=${BASE:-100}
HOLD=${HOLD:-20}
STORM=${STORM:-15}
PEER=${PEER:-1}
BASELINE=${BASELINE:-}
ROUNDS=${ROUNDS:-1}
HEARTBEAT=${HEARTBEAT:-5s}
[ "$HOLD" -ge 10 ] || { echo "HOLD must be at least 10 (seconds)" >&2; exit 2; }

cargo build --release --quiet
BIN=target/release/stampede
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

alive() { # $1 = pid, $2 = its log
  if ! kill -0 "$1" 2>/dev/null; then
    echo "the run ended early:" >&2
    cat "$2" >&2
    exit 1
  fi
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
tick_hz=$(getconf CLK_TCK)

# The hub, in its own process.
"$BIN" target --listen 127.0.0.1:0 --hub-ping-interval 10s --hub-ping-timeout 10s >"$work/hub.log" 2>&1 &
hub_pid=$!
pids+=("$hub_pid")
for _ in $(seq 100); do
  grep -q "listening on" "$work/hub.log" 2>/dev/null && break
  sleep 0.1
done
HUB=$(grep -o 'http://[0-9.:]*' "$work/hub.log" | head -1)
[ -n "$HUB" ] || { echo "the hub did not start" >&2; cat "$work/hub.log" >&2; exit 1; }
stat() { curl -s "$HUB/admin/hub/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

scenario() { # $1 = agents
  cat >"$work/s$1.toml" <<EOF
name = "bench-agents-$1"
[target]
hub = "$HUB"
[hub]
timeout = "30s"
[[agents]]
name = "agent"
protocol = "socketio"
register = { event = "register", data = { id = "a-{{ agent.id }}" }, ack = true }
heartbeat = { every = "$HEARTBEAT", jitter = "20%", ack = true }
reconnect = { base = "1s", max = "10s", jitter = "full" }
[[phases]]
name = "storm"
duration = "${STORM}s"
agents = { connected = $1, connect_rate = "max" }
[[phases]]
name = "hold"
duration = "${HOLD}s"
EOF
}

# Runs stampede with $1 agents; sets RSS (KiB, mid-hold), CPU_S, HUB_CPU_S,
# BEATS (heartbeats in the measured window), DIR (result directory).
measure() {
  local n=$1
  scenario "$n"
  rm -rf "$work/out$n" # one result directory: this run's (a baseline build reuses the name)
  "$BIN" run "$work/s$n.toml" --quiet --out "$work/out$n" >"$work/run$n.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  sleep $((STORM + 2))
  alive "$pid" "$work/run$n.log"
  local c0 h0 b0 u0
  c0=$(cpu_ticks "$pid"); u0=$(user_ticks "$pid"); h0=$(cpu_ticks "$hub_pid"); b0=$(stat heartbeats)
  sleep $((HOLD / 2))
  RSS=$(rss_kb "$pid")
  sleep $((HOLD / 2 - 4)) # the window ends 2 s before the run does
  local c1 h1 b1 u1
  c1=$(cpu_ticks "$pid"); u1=$(user_ticks "$pid"); h1=$(cpu_ticks "$hub_pid"); b1=$(stat heartbeats)
  wait "$pid" || true
  CPU_S=$(python3 -c "print(($c1 - $c0) / $tick_hz)")
  USER_S=$(python3 -c "print(($u1 - $u0) / $tick_hz)")
  HUB_CPU_S=$(python3 -c "print(($h1 - $h0) / $tick_hz)")
  BEATS=$((b1 - b0))
  DIR=$(ls -d "$work/out$n"/*/ | head -1)
}

# Prints the figures of the last two measure calls ($1: label).
summarize() {
python3 - "$DIR/summary.json" "$N" "$rss_base" "$rss_n" "$1" "$BASE" "$CPU_S" "$HUB_CPU_S" "$BEATS" "$USER_S" <<'EOF'
import json, sys
path, n, rss_base, rss_n, label, base, cpu, hub_cpu, beats, user = sys.argv[1:]
n, rss_base, rss_n, base, beats = int(n), int(rss_base), int(rss_n), int(base), int(beats)
cpu, hub_cpu, user = float(cpu), float(hub_cpu), float(user)
s = json.load(open(path))
def total(metric, kind=None):
    return sum(c["total"] for c in s["counters"] if c["metric"] == metric and (kind is None or c["kind"] == kind))
connect = [h for h in s["histograms"] if h["metric"] == "hub.connect" and h["phase"] is None and h["count"]]
slowest = max(h["max"] for h in connect) / 1e6
p99 = max(h["p99"] for h in connect) / 1e3
per_agent = (rss_n - rss_base) * 1024 / (n - base)
print(f"[{label}] connected: {total('hub.connects')} attempts, {total('hub.registrations')} registered, {total('hub.errors')} errors, {total('hub.disconnects')} disconnects")
print(f"client RSS: {rss_base/1024:.1f} MiB with {base} agents, {rss_n/1024:.1f} MiB with {n}")
print(f"client memory per idle agent: {per_agent/1024:.2f} KiB (goal <= 16 KiB)")
print(f"storm: {n} agents connected in {slowest:.3f} s (slowest connect; p99 {p99:.0f} ms) -> {n/slowest:,.0f} connects/s (goal >= 5,000/s)")
if beats > 0:
    print(f"heartbeats in the window: {beats} -> client CPU {cpu*1e6/beats:.1f} us per heartbeat "
          f"(user {user*1e6/beats:.1f} + kernel {(cpu-user)*1e6/beats:.1f}; the kernel side includes loopback delivery to the hub; "
          f"hub process: {hub_cpu*1e6/beats:.1f} us); pings answered in the window: ~{n * 14 // 10}")
EOF

}

echo "== stampede: $BASE agents (reference level), then $N agents; hub $HUB; storm ${STORM}s, hold ${HOLD}s, heartbeat every $HEARTBEAT"
ours_bin=$BIN
for round in $(seq "$ROUNDS"); do
  BIN=$ours_bin
  measure "$BASE"; rss_base=$RSS
  measure "$N"; rss_n=$RSS
  ours_cpu=$CPU_S; ours_beats=$BEATS; ours_rss_base=$rss_base; ours_rss_n=$rss_n
  summarize "stampede, round $round"
  if [ -n "$BASELINE" ]; then
    # The older build on the same hub, alternating with ours round by round.
    BIN=$BASELINE
    measure "$BASE"; rss_base=$RSS
    measure "$N"; rss_n=$RSS
    summarize "baseline $BASELINE, round $round"
  fi
done
BIN=$ours_bin; rss_base=$ours_rss_base; rss_n=$ours_rss_n

if [ "$PEER" = "1" ]; then
  if [ ! -d tests/node/node_modules/socket.io-client ]; then
    npm ci --prefix tests/node --no-audit --no-fund >/dev/null
  fi
  hb_ms=$(python3 -c "import re; v='$HEARTBEAT'; m=re.fullmatch(r'(\d+)(ms|s)', v); print(int(m[1]) * (1 if m[2]=='ms' else 1000))")
  echo "== side by side: node socket.io-client, $BASE then $N connections, same hub and heartbeat"
  peer() { # $1 = connections; writes "RSS_KiB CPU_s heartbeats" to $work/peer$1.txt
    node benches/sio-clients.js "$HUB" "$1" "$hb_ms" $((STORM + HOLD)) >"$work/peer$1.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    sleep $((STORM + 2))
    alive "$pid" "$work/peer$1.log"
    local c0 b0 c1 b1 rss
    c0=$(cpu_ticks "$pid"); b0=$(stat heartbeats)
    sleep $((HOLD / 2))
    rss=$(rss_kb "$pid")
    sleep $((HOLD / 2 - 4))
    c1=$(cpu_ticks "$pid"); b1=$(stat heartbeats)
    wait "$pid" || true
    echo "$rss $(python3 -c "print(($c1 - $c0) / $tick_hz)") $((b1 - b0))" >"$work/peer$1.txt"
  }
  peer "$BASE"; read -r peer_base _ _ <"$work/peer$BASE.txt"
  peer "$N"; read -r peer_n peer_cpu peer_beats <"$work/peer$N.txt"
  tail -1 "$work/peer$N.log"
  python3 - "$peer_base" "$peer_n" "$BASE" "$N" "$rss_base" "$rss_n" "$peer_cpu" "$peer_beats" "$ours_cpu" "$ours_beats" <<'EOF'
import sys
pb, pn, base, n, sb, sn = map(int, sys.argv[1:7])
pcpu, pbeats, ocpu, obeats = float(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
peer = (pn - pb) * 1024 / (n - base)
ours = (sn - sb) * 1024 / (n - base)
print(f"memory: socket.io-client {peer/1024:.2f} KiB per connection, stampede {ours/1024:.2f} KiB per agent; ratio stampede/peer = {ours/peer:.2f}")
if pbeats and obeats:
    p, o = pcpu * 1e6 / pbeats, ocpu * 1e6 / obeats
    print(f"CPU per heartbeat: socket.io-client {p:.1f} us, stampede {o:.1f} us; ratio stampede/peer = {o/p:.2f}")
EOF
fi
