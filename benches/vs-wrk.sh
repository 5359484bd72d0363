#!/usr/bin/env bash
# Side-by-side: wrk vs stampede against nginx on loopback.
#
# nginx (one worker, `return 200`) is pinned to core 0; wrk and stampede are
# pinned to core 1 and run alternately with the same connection count and
# duration. For each run we take requests/s and CPU time (user + sys of the
# load generator's process tree) and print CPU µs per request and the ratio.
#
#   bash benches/vs-wrk.sh                   # 50 connections, 10 s, 3 rounds
#   CONNS=100 SECS=15 ROUNDS=5 bash benches/vs-wrk.sh
#   BASELINE=/path/to/old/stampede bash benches/vs-wrk.sh
#                                            # also an older build, same rounds
#
# Load goes only to 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-50}
BASELINE=${BASELINE:-}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18089}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
  echo "installing nginx and wrk (Debian packages)…" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet
STAMPEDE=target/release/stampede

work=$(mktemp -d)
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=benches/nginx.sh
. benches/nginx.sh
start_nginx "$work" "$PORT" 0

cat > "$work/bench.toml" <<TOML
name = "vs-wrk"
[target]
api = "http://127.0.0.1:$PORT"
[http]
timeout = "5s"
[[users]]
name = "bench"
steps = [{ name = "root", get = "/" }]
[[phases]]
name = "closed"
duration = "${SECS}s"
users = { vus = $CONNS }
TOML

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# CPU seconds (user+sys) of a command, via bash's `time` (children included).
cpu_of() {
  local out=$1; shift
  local TIMEFORMAT='%U %S'
  { time "$@" >"$out" 2>&1; } 2>"$out.time"
  awk '{ printf "%.3f", $1 + $2 }' "$out.time"
}

# One stampede run of the bench scenario with binary $1: prints its row
# (to stderr) and "cpu requests" (to stdout).
stampede_round() {
  local bin=$1 label=$2 round=$3 cpu req
  rm -rf "$work/reports"
  cpu=$(cpu_of "$work/st.out" taskset -c 1 "$bin" run "$work/bench.toml" --quiet --out "$work/reports")
  req=$(python3 - "$work/reports" <<'PY'
import json, pathlib, sys
summary = next(pathlib.Path(sys.argv[1]).glob("*/summary.json"))
data = json.loads(summary.read_text())
ok = sum(c["total"] for c in data["counters"] if c["metric"] == "http.requests")
bad = sum(c["total"] for c in data["counters"] if c["metric"] == "http.errors")
print(ok - bad)
PY
)
  printf '%-10s %5s %12s %12.0f %14.2f\n' "$label" "$round" "$req" "$(calc "$req / $SECS")" "$(calc "$cpu * 1000000 / $req")" >&2
  echo "$cpu $req"
}

printf '%-10s %5s %12s %12s %14s\n' tool round "requests" "req/s" "CPU µs/req"
declare -a wrk_cpu wrk_req st_cpu st_req bl_cpu bl_req
for r in $(seq "$ROUNDS"); do
  cpu=$(cpu_of "$work/wrk.out" taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/")
  req=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
  printf '%-10s %5s %12s %12.0f %14.2f\n' wrk "$r" "$req" "$(calc "$req / $SECS")" "$(calc "$cpu * 1000000 / $req")"
  wrk_cpu+=("$cpu"); wrk_req+=("$req")

  read -r cpu req < <(stampede_round "$STAMPEDE" stampede "$r")
  st_cpu+=("$cpu"); st_req+=("$req")
  if [ -n "$BASELINE" ]; then
    read -r cpu req < <(stampede_round "$BASELINE" baseline "$r")
    bl_cpu+=("$cpu"); bl_req+=("$req")
  fi
done

sum() { local s=0; for x in "$@"; do s=$(calc "$s + $x"); done; echo "$s"; }
wc=$(sum "${wrk_cpu[@]}"); wr=$(sum "${wrk_req[@]}")
sc=$(sum "${st_cpu[@]}"); sr=$(sum "${st_req[@]}")
wrk_us=$(calc "$wc * 1000000 / $wr")
st_us=$(calc "$sc * 1000000 / $sr")
echo
printf 'wrk:      %.2f µs CPU per request, %.0f req/s\n' "$wrk_us" "$(calc "$wr / ($SECS * $ROUNDS)")"
printf 'stampede: %.2f µs CPU per request, %.0f req/s\n' "$st_us" "$(calc "$sr / ($SECS * $ROUNDS)")"
printf 'ratio stampede/wrk (CPU per request): %.2f\n' "$(calc "$st_us / $wrk_us")"
if [ -n "$BASELINE" ]; then
  bc=$(sum "${bl_cpu[@]}"); br=$(sum "${bl_req[@]}")
  bl_us=$(calc "$bc * 1000000 / $br")
  printf 'baseline: %.2f µs CPU per request, %.0f req/s (%s)\n' "$bl_us" "$(calc "$br / ($SECS * $ROUNDS)")" "$BASELINE"
  printf 'ratio baseline/wrk (CPU per request): %.2f\n' "$(calc "$bl_us / $wrk_us")"
  printf 'ratio stampede/baseline (CPU per request): %.2f\n' "$(calc "$st_us / $bl_us")"
fi
