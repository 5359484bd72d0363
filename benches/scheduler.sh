#!/usr/bin/env bash
# The open-loop scheduler's precision and cost, next to oha's corrected figures.
#
# nginx (one worker, `return 200`) is pinned to core 0; the load generator is
# pinned to core 1 (so stampede runs its one-core, current-thread runtime).
# At each rate, for ~SECS seconds each, one after the other:
#   - stampede, open model (`users = { rate = "R/s" }`);
#   - the BASELINE binary the same way, when given (e.g. main's build:
#     before/after side by side in one run);
#   - oha at the same rate with its latency correction
#     (`oha -q R --latency-correction`), which, like stampede, counts latency
#     from each request's intended start.
# Printed per run: generator.lag p50/p99/p99.9 (stampede's summary.json: how
# late each arrival was handed over, µs), latency p50/p95/p99 (stampede:
# `http.latency`, from the intended start; oha: its corrected percentiles),
# requests/s, and CPU per second of run (user + sys of the generator's
# process over its wall time: what the scheduler and the requests cost).
#
#   bash benches/scheduler.sh                          # 20000/s and 5000/s, 10 s each
#   RATES="20000" SECS=15 bash benches/scheduler.sh
#   BASELINE=/path/to/old/stampede bash benches/scheduler.sh
#   OHA=0 bash benches/scheduler.sh                    # without oha
#
# oha is installed into benches/.tools (git-ignored) when not on PATH.
# Load goes only to 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"20000 5000"}
SECS=${SECS:-10}
BASELINE=${BASELINE:-}
PORT=${PORT:-18090}
NGINX_CORE=${NGINX_CORE:-0}
GEN_CORE=${GEN_CORE:-1}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx (Debian package)…" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

OHA=${OHA:-1}   # OHA=0: stampede (and BASELINE) only
export PATH="$PWD/benches/.tools/bin:$PATH"
if [ "$OHA" = 1 ] && ! need oha; then
  echo "installing oha into benches/.tools (cargo install, once)…" >&2
  cargo install oha --locked --quiet --root benches/.tools
fi

# STAMPEDE=/path/to/binary: bench that build instead of building this tree.
if [ -z "${STAMPEDE:-}" ]; then
  cargo build --release --quiet --bin stampede
  STAMPEDE=${CARGO_TARGET_DIR:-target}/release/stampede
fi

work=$(mktemp -d)
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=benches/nginx.sh
. benches/nginx.sh
start_nginx "$work" "$PORT" "$NGINX_CORE"

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# Runs a command; prints "cpu_seconds wall_seconds" (user+sys of it and its
# children, via bash's `time`).
cpu_wall() {
  local out=$1; shift
  local TIMEFORMAT='%U %S %R'
  { time "$@" >"$out" 2>&1; } 2>"$out.time"
  awk '{ printf "%.3f %.3f", $1 + $2, $3 }' "$out.time"
}

row() { printf '%-9s %7s %9s %9s %9s %10s %10s %10s %9s %9s\n' "$@"; }

stampede_row() {
  local bin=$1 label=$2 rate=$3 cw
  cat > "$work/open.toml" <<TOML
name = "scheduler-bench"
[target]
api = "http://127.0.0.1:$PORT"
[http]
timeout = "5s"
[[users]]
name = "bench"
steps = [{ name = "root", get = "/" }]
[[phases]]
name = "open"
duration = "${SECS}s"
users = { rate = "$rate/s" }
TOML
  rm -rf "$work/reports"
  cw=$(cpu_wall "$work/st.out" taskset -c "$GEN_CORE" "$bin" run "$work/open.toml" --quiet --out "$work/reports")
  python3 - "$work/reports" "$label" "$rate" "$SECS" $cw <<'PY'
import json, pathlib, sys
reports, label, rate, secs, cpu, wall = sys.argv[1:7]
summary = next(pathlib.Path(reports).glob("*/summary.json"))
data = json.loads(summary.read_text())
def hist(metric):
    rows = [h for h in data["histograms"] if h["metric"] == metric and h["phase"] is None]
    return max(rows, key=lambda h: h["count"])
lag, lat = hist("generator.lag"), hist("http.latency")
ok = sum(c["total"] for c in data["counters"] if c["metric"] == "http.requests")
bad = sum(c["total"] for c in data["counters"] if c["metric"] == "http.errors")
ms = lambda us: f"{us / 1000:.3f}"
print(f"{label:<9} {rate:>7} {lag['p50']:>9} {lag['p99']:>9} {lag['p99_9']:>9} "
      f"{ms(lat['p50']):>10} {ms(lat['p95']):>10} {ms(lat['p99']):>10} "
      f"{(ok - bad) / float(secs):>9.0f} {float(cpu) / float(wall):>9.3f}")
PY
}

oha_row() {
  local rate=$1 cw
  cw=$(cpu_wall "$work/oha.json" taskset -c "$GEN_CORE" oha -q "$rate" --latency-correction \
    -z "${SECS}s" --no-tui --output-format json "http://127.0.0.1:$PORT/")
  python3 - "$work/oha.json" "$rate" "$SECS" $cw <<'PY'
import json, sys
path, rate, secs, cpu, wall = sys.argv[1:6]
text = open(path).read()
data = json.loads(text[text.index("{"):])
p = data["latencyPercentiles"]
ms = lambda s: f"{s * 1000:.3f}"
ok = sum(v for k, v in data.get("statusCodeDistribution", {}).items() if k.startswith("2"))
print(f"{'oha':<9} {rate:>7} {'-':>9} {'-':>9} {'-':>9} "
      f"{ms(p['p50']):>10} {ms(p['p95']):>10} {ms(p['p99']):>10} "
      f"{ok / float(secs):>9.0f} {float(cpu) / float(wall):>9.3f}")
PY
}

echo "generator pinned to core $GEN_CORE, nginx to core $NGINX_CORE, ${SECS} s per run"
echo "lag: µs (generator.lag); latency: ms from the intended start; cpu: CPU s per s of run"
row tool "rate/s" "lag p50" "lag p99" "lag p99.9" "lat p50" "lat p95" "lat p99" "ok req/s" "cpu/s"
for rate in $RATES; do
  stampede_row "$STAMPEDE" stampede "$rate"
  if [ -n "$BASELINE" ]; then
    stampede_row "$BASELINE" baseline "$rate"
  fi
  if [ "$OHA" = 1 ]; then
    oha_row "$rate"
  fi
done
