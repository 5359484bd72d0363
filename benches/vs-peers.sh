#!/usr/bin/env bash
# Side by side with the peers: wrk, oha, Goose and stampede against the same
# nginx on loopback, same connection count and duration, one table.
#
# nginx (one worker, `return 200`) is pinned to core 0; each tool is pinned
# to core 1 and the tools run one after another, round after round.
#
# - closed loop: CONNS connections as fast as they go, SECS seconds:
#   requests/s, CPU µs per request (user + sys of the tool's process tree)
#   and peak RSS (the largest process of the tree).
# - open loop at each rate of RATES (requests/s), SECS seconds, CONNS
#   connections: latency p50/p95/p99/max as each tool reports it, with the
#   correction each applies. wrk has none (wrk2, which has, is not
#   packaged); oha `-q RATE --latency-correction` (from the intended
#   start); Goose `--throttle-requests RATE --co-mitigation average`
#   (CONNS users; its figures with the backfilled samples); stampede
#   `rate = "RATE/s"`, `max_in_flight = CONNS` (from the intended start).
#
#   bash benches/vs-peers.sh                       # 50 connections, 10 s, 2,000/s and 10,000/s, 2 rounds
#   CONNS=100 SECS=15 RATES="5000" ROUNDS=3 bash benches/vs-peers.sh
#   STAMPEDE=/path/to/stampede bash benches/vs-peers.sh   # that binary, no build
#   OHA=/path/to/oha bash benches/vs-peers.sh             # that oha, no install
#   PEERS="wrk oha" bash benches/vs-peers.sh               # only these peers (and stampede)
#
# Installs what is missing: nginx and wrk (Debian packages), oha (`cargo
# install oha --locked --root benches/.tools`), the Goose load test of
# benches/goose/ (built from crates.io into benches/.tools/goose-target).
# benches/.tools is git-ignored. Load goes only to 127.0.0.1, every run
# stops by itself, nginx is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

CONNS=${CONNS:-50}
SECS=${SECS:-10}
RATES=${RATES:-"2000 10000"}
ROUNDS=${ROUNDS:-2}
PEERS=${PEERS:-"wrk oha goose"}
PORT=${PORT:-18090}
TOOLS=$root/benches/.tools

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
  echo "installing nginx and wrk (Debian packages)…" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

peer() { case " $PEERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if ! peer oha || [ -n "${OHA:-}" ]; then
  :
elif need oha; then
  OHA=$(command -v oha)
else
  OHA=$TOOLS/bin/oha
  if [ ! -x "$OHA" ]; then
    echo "building oha (cargo install oha --locked --root benches/.tools)…" >&2
    CARGO_TARGET_DIR=$TOOLS/oha-target cargo install oha --locked --quiet --root "$TOOLS"
  fi
fi

if peer goose; then
  echo "building the Goose load test (benches/goose, from crates.io)…" >&2
  cargo build --release --quiet --manifest-path benches/goose/Cargo.toml --target-dir "$TOOLS/goose-target"
fi
GOOSE=$TOOLS/goose-target/release/stampede-goose-bench

if [ -z "${STAMPEDE:-}" ]; then
  cargo build --release --quiet
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
start_nginx "$work" "$PORT" 0
URL=http://127.0.0.1:$PORT/
# Goose starts its users at this rate per second: all within ~10 ms.
HATCH=$((CONNS * 100))

# Runs a command pinned to core 1, its output in $1; prints "cpu_s rss_kib":
# user + sys CPU of its whole process tree and the peak RSS of its largest
# process (getrusage of the waited-for children).
measure() {
  local out=$1; shift
  python3 - "$out" "$@" <<'PY'
import resource, subprocess, sys
out = sys.argv[1]
with open(out, "wb") as f:
    code = subprocess.call(["taskset", "-c", "1", *sys.argv[2:]], stdout=f, stderr=subprocess.STDOUT)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{u.ru_utime + u.ru_stime:.3f} {u.ru_maxrss} {code}")
PY
}

# results.tsv: mode rate tool round requests cpu_s rss_kib p50 p95 p99 max (ms; "-" if none)
results=$work/results.tsv
: > "$results"
row() { printf '%s\n' "$*" | tr ' ' '\t' >> "$results"; }
failed() { echo "$1 failed (exit $2); its output:" >&2; cat "$3" >&2; exit 1; }

stampede_toml() {
  local users=$1 extra=$2
  cat > "$work/st.toml" <<TOML
name = "vs-peers"
[target]
api = "http://127.0.0.1:$PORT"
[http]
timeout = "5s"
$extra
[[users]]
name = "bench"
steps = [{ name = "root", get = "/" }]
[[phases]]
name = "load"
duration = "${SECS}s"
users = $users
TOML
}

# stampede's requests and latency (ms) from summary.json: "requests p50 p95 p99 max".
stampede_figures() {
  python3 - "$work/st-reports" <<'PY'
import json, pathlib, sys
s = json.loads(next(pathlib.Path(sys.argv[1]).glob("*/summary.json")).read_text())
req = sum(c["total"] for c in s["counters"] if c["metric"] == "http.requests")
bad = sum(c["total"] for c in s["counters"] if c["metric"] == "http.errors")
# One step, one phase: one series (the largest, should there be more).
h = max((h for h in s["histograms"] if h["metric"] == "http.latency"), key=lambda h: h["count"])
ms = lambda k: f"{h[k] / 1000:.3f}"
print(req - bad, ms("p50"), ms("p95"), ms("p99"), ms("max"))
PY
}

# oha's JSON: "requests p50 p95 p99 max" (ms).
oha_figures() {
  python3 - "$1" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text[text.index("{"):])
ok = sum(v for k, v in d["statusCodeDistribution"].items() if k.startswith("2"))
p = d["latencyPercentiles"]
ms = lambda v: f"{v * 1000:.3f}"
print(ok, ms(p["p50"]), ms(p["p95"]), ms(p["p99"]), ms(d["summary"]["slowest"]))
PY
}

# The line our Goose load test prints (benches/goose/src/main.rs, Goose's
# own percentiles): "requests p50 p95 p99 max co|raw" (ms).
goose_figures() {
  awk '/^vs-peers: requests/ {
    printf "%s %.3f %.3f %.3f %.3f %s\n", $3, $4 / 1000, $5 / 1000, $6 / 1000, $7 / 1000, $8
  }' "$1"
}

run_closed() {
  local r=$1 m req
  if peer wrk; then
    m=$(measure "$work/wrk.out" wrk -t1 -c"$CONNS" -d"${SECS}s" "$URL")
    set -- $m; [ "$3" = 0 ] || failed wrk "$3" "$work/wrk.out"
    req=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
    row closed - wrk "$r" "$req" "$1" "$2" - - - -
  fi
  if peer oha; then
    m=$(measure "$work/oha.out" "$OHA" -z "${SECS}s" -c "$CONNS" --no-tui --output-format json "$URL")
    set -- $m; [ "$3" = 0 ] || failed oha "$3" "$work/oha.out"
    read -r req _ < <(oha_figures "$work/oha.out")
    row closed - oha "$r" "$req" "$1" "$2" - - - -
  fi
  if peer goose; then # CONNS users started at once, each looping GET / without a pause
    m=$(measure "$work/goose.out" "$GOOSE" -H "http://127.0.0.1:$PORT" -u "$CONNS" -r "$HATCH" \
      -t "${SECS}s" -q)
    set -- $m; [ "$3" = 0 ] || failed goose "$3" "$work/goose.out"
    read -r req _ < <(goose_figures "$work/goose.out")
    row closed - goose "$r" "$req" "$1" "$2" - - - -
  fi
  # stampede
  stampede_toml "{ vus = $CONNS }" ""
  rm -rf "$work/st-reports"
  m=$(measure "$work/st.out" "$STAMPEDE" run "$work/st.toml" --quiet --out "$work/st-reports")
  set -- $m; [ "$3" = 0 ] || failed stampede "$3" "$work/st.out"
  read -r req _ < <(stampede_figures)
  row closed - stampede "$r" "$req" "$1" "$2" - - - -
}

run_open() {
  local rate=$1 r=$2 m f
  if peer oha; then # CONNS workers, RATE/s, latency from the intended start
    m=$(measure "$work/oha.out" "$OHA" -z "${SECS}s" -c "$CONNS" -q "$rate" --latency-correction \
      --no-tui --output-format json "$URL")
    set -- $m; [ "$3" = 0 ] || failed oha "$3" "$work/oha.out"
    f=$(oha_figures "$work/oha.out")
    row open "$rate" oha "$r" $(echo "$f" | cut -d' ' -f1) "$1" "$2" $(echo "$f" | cut -d' ' -f2-)
  fi
  if peer goose; then # CONNS users throttled to RATE/s together, CO mitigation
    m=$(measure "$work/goose.out" "$GOOSE" -H "http://127.0.0.1:$PORT" -u "$CONNS" -r "$HATCH" \
      -t "${SECS}s" --throttle-requests "$rate" --co-mitigation average -q)
    set -- $m; [ "$3" = 0 ] || failed goose "$3" "$work/goose.out"
    f=$(goose_figures "$work/goose.out")
    row open "$rate" goose "$r" $(echo "$f" | cut -d' ' -f1) "$1" "$2" $(echo "$f" | cut -d' ' -f2-)
  fi
  # stampede: open model, at most CONNS in flight
  stampede_toml "{ rate = \"$rate/s\" }" "max_in_flight = $CONNS"
  rm -rf "$work/st-reports"
  m=$(measure "$work/st.out" "$STAMPEDE" run "$work/st.toml" --quiet --out "$work/st-reports")
  set -- $m; [ "$3" = 0 ] || failed stampede "$3" "$work/st.out"
  f=$(stampede_figures)
  row open "$rate" stampede "$r" $(echo "$f" | cut -d' ' -f1) "$1" "$2" $(echo "$f" | cut -d' ' -f2-)
}

for r in $(seq "$ROUNDS"); do
  echo "round $r/$ROUNDS: closed loop…" >&2
  run_closed "$r"
  for rate in $RATES; do
    echo "round $r/$ROUNDS: open loop at $rate/s…" >&2
    run_open "$rate" "$r"
  done
done

python3 - "$results" "$CONNS" "$SECS" "$ROUNDS" <<'PY'
import statistics, sys
path, conns, secs, rounds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
tools = ["wrk", "oha", "goose", "stampede"]
corr = {
    "wrk": "none (wrk2 not packaged)",
    "oha": "--latency-correction",
    "goose": "--co-mitigation average",
    "stampede": "intended start",
}
def sel(mode, rate, tool):
    return [r for r in rows if r[0] == mode and r[1] == rate and r[2] == tool]

print(f"closed loop: {conns} connections, {secs:g} s, {rounds} round(s); "
      "CPU = user+sys of the tool's processes; RSS = peak of its largest process")
print(f"{'tool':<10} {'req/s':>10} {'CPU µs/req':>11} {'RSS MiB':>8} "
      f"{'req/s ÷ st':>11} {'CPU ÷ st':>9} {'RSS ÷ st':>9}")
closed = {}
for t in tools:
    rs = sel("closed", "-", t)
    if not rs:
        continue
    req = sum(int(r[4]) for r in rs)
    cpu = sum(float(r[5]) for r in rs)
    rss = max(int(r[6]) for r in rs) / 1024
    closed[t] = (req / (secs * len(rs)), cpu * 1e6 / req if req else float("nan"), rss)
st = closed.get("stampede")
for t, (rps, us, rss) in closed.items():
    ratio = lambda a, b: f"{a / b:.2f}" if st and b else "-"
    print(f"{t:<10} {rps:>10.0f} {us:>11.2f} {rss:>8.1f} "
          f"{ratio(rps, st[0]):>11} {ratio(us, st[1]):>9} {ratio(rss, st[2]):>9}")

rates = []
for r in rows:
    if r[0] == "open" and r[1] not in rates:
        rates.append(r[1])
for rate in rates:
    print()
    print(f"open loop at {int(rate):,}/s: {conns} connections, {secs:g} s "
          f"({int(int(rate) * secs):,} due); latency in ms as each tool reports it "
          f"(median of {rounds} round(s)); ok = answered 2xx per round")
    print(f"{'tool':<10} {'ok':>9} {'CPU µs/req':>11} {'p50':>8} {'p95':>8} {'p99':>8} "
          f"{'max':>8} {'p99 ÷ st':>9}  correction")
    figs = {}
    for t in tools:
        rs = sel("open", rate, t)
        if not rs:
            continue
        med = lambda i: statistics.median(float(r[i]) for r in rs)
        req = sum(int(r[4]) for r in rs)
        cpu = sum(float(r[5]) for r in rs)
        figs[t] = (req // len(rs), cpu * 1e6 / req if req else float("nan"),
                   med(7), med(8), med(9), med(10))
    for t in tools:
        if t == "wrk" and any(r[2] == "wrk" for r in rows):
            print(f"{t:<10} {'-':>9} {'-':>11} {'-':>8} {'-':>8} {'-':>8} {'-':>8} {'-':>9}  "
                  "no open loop (wrk2 not packaged)")
            continue
        if t not in figs:
            continue
        req, us, p50, p95, p99, mx = figs[t]
        st99 = figs.get("stampede", (0,) * 6)[4]
        ratio = f"{p99 / st99:.2f}" if st99 else "-"
        note = corr[t]
        if t == "goose":
            backfilled = sum(1 for r in sel("open", rate, t) if len(r) > 11 and r[11] == "co")
            note += f" (backfilled in {backfilled} of {len(sel('open', rate, t))} rounds)"
        print(f"{t:<10} {req:>9} {us:>11.2f} {p50:>8.3f} {p95:>8.3f} {p99:>8.3f} {mx:>8.3f} "
              f"{ratio:>9}  {note}")
PY
