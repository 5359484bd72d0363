#!/usr/bin/env bash
# What the live metrics endpoint costs: the same closed-model run against
# nginx on loopback, alternately without and with `--metrics-listen`
# (scraped once a second by curl, as Prometheus would), side by side.
# Prints CPU µs per request of stampede's process (the endpoint's thread
# included) for both and their ratio, and the size and time of a scrape.
#
#   bash benches/metrics-endpoint.sh            # 50 VUs, 10 s, 3 rounds
#   VUS=100 SECS=15 ROUNDS=5 bash benches/metrics-endpoint.sh
#
# nginx (one worker) is pinned to core 0 with the scraper, stampede to
# core 1. Load goes only to 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

VUS=${VUS:-50}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18091}
METRICS_PORT=${METRICS_PORT:-18092}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need curl; then
  echo "installing nginx and curl (Debian packages)…" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx curl >/dev/null
fi

NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet
STAMPEDE=target/release/stampede

work=$(mktemp -d)
scraper=
cleanup() {
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=benches/nginx.sh
. benches/nginx.sh
start_nginx "$work" "$PORT" 0

# Four steps in two phases: 8 latency series, their error kinds, a
# realistic exposition (~100 KB).
cat > "$work/bench.toml" <<TOML
name = "metrics-endpoint"
[target]
api = "http://127.0.0.1:$PORT"
[[users]]
name = "bench"
steps = [
  { name = "a", get = "/a" }, { name = "b", get = "/b" },
  { name = "c", get = "/c" }, { name = "d", get = "/d" },
]
[[phases]]
name = "first"
duration = "$((SECS / 2))s"
users = { vus = $VUS }
[[phases]]
name = "second"
duration = "$((SECS - SECS / 2))s"
users = { vus = $VUS }
TOML

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
cpu_of() {
  local out=$1; shift
  local TIMEFORMAT='%U %S'
  { time "$@" >"$out" 2>&1; } 2>"$out.time"
  awk '{ printf "%.3f", $1 + $2 }' "$out.time"
}
requests_of() {
  python3 - "$1" <<'PY'
import json, pathlib, sys
summary = next(pathlib.Path(sys.argv[1]).glob("*/summary.json"))
data = json.loads(summary.read_text())
print(sum(c["total"] for c in data["counters"] if c["metric"] == "http.requests"))
PY
}

# Scrape every second (on core 0) while a run serves; one line per scrape:
# "seconds bytes" (failed scrapes, before the endpoint is up, are skipped).
scrape_loop() {
  while true; do
    taskset -c 0 curl -s -o /dev/null -w '%{time_total} %{size_download}\n' \
      "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null | awk '$2 > 0' >>"$work/scrapes" || true
    sleep 1
  done
}

round() {
  local label=$1 round=$2; shift 2
  rm -rf "$work/reports"
  local cpu req
  cpu=$(cpu_of "$work/st.out" taskset -c 1 "$STAMPEDE" run "$work/bench.toml" --quiet --out "$work/reports" "$@")
  req=$(requests_of "$work/reports")
  printf '%-22s %5s %12s %12.0f %14.2f\n' "$label" "$round" "$req" "$(calc "$req / $SECS")" "$(calc "$cpu * 1000000 / $req")" >&2
  echo "$cpu $req"
}

printf '%-22s %5s %12s %12s %14s\n' run round requests req/s "CPU µs/req"
: >"$work/scrapes"
declare -a off_cpu off_req on_cpu on_req
for r in $(seq "$ROUNDS"); do
  read -r cpu req < <(round "no endpoint" "$r")
  off_cpu+=("$cpu"); off_req+=("$req")
  scrape_loop & scraper=$!
  read -r cpu req < <(round "--metrics-listen" "$r" --metrics-listen "127.0.0.1:$METRICS_PORT" --metrics-linger 0s)
  kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; scraper=
  on_cpu+=("$cpu"); on_req+=("$req")
done

sum() { local s=0; for x in "$@"; do s=$(calc "$s + $x"); done; echo "$s"; }
off_us=$(calc "$(sum "${off_cpu[@]}") * 1000000 / $(sum "${off_req[@]}")")
on_us=$(calc "$(sum "${on_cpu[@]}") * 1000000 / $(sum "${on_req[@]}")")
echo
printf 'no endpoint:      %.2f µs CPU per request\n' "$off_us"
printf 'metrics endpoint: %.2f µs CPU per request (scraped every second)\n' "$on_us"
printf 'ratio with/without (CPU per request): %.3f\n' "$(calc "$on_us / $off_us")"
awk '{ t += $1; b += $2; n++ } END { if (n) printf "scrapes: %d, mean %.1f ms, %.0f KB each\n", n, t / n * 1000, b / n / 1000 }' "$work/scrapes"
