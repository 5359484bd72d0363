#!/usr/bin/env bash
# The hub topology of hub-and-agents-scaling.md, on loopback: nginx
# (`hash $remote_addr consistent`, WebSocket upgrade) in front of HUBS
# instances (3) of the reference Socket.IO hub (tests/node/server.js)
# sharing a Redis adapter on redis-server. Every part on its own free port;
# nginx runs in the foreground of this script with its own prefix and
# configuration in DIR, not as the system service.
#
#   ci/topology/up.sh                     # stand it up, print URLs and PIDs; Enter or Ctrl-C: down
#   HUBS=3 SOURCES=24 ci/topology/up.sh   # also print which hub each source address lands on
#   ci/topology/up.sh --dir /tmp/topo     # files there (default: a new temp dir)
#
# Then, in another shell (the printed `source` line sets HUB_URL, HUB1_PID…):
#   source /tmp/topo/topology.env
#   stampede run scenarios/hub-failover.toml --hub "$HUB_URL" --allow-exec
#
# Writes DIR/topology.env (HUB_URL, REDIS_URL, HUB<n>_URL, HUB<n>_PID,
# HUB<n>_LOG, NGINX_PID, REDIS_PID) and prints `READY <DIR>/topology.env`
# once every part answers. Stops everything (and removes a temp DIR) on
# Enter, end of input, Ctrl-C, SIGTERM, or after LIFETIME seconds when set.
# Each hub's output (CONNECT / REGISTER / COMMAND / DISCONNECT lines, see
# server.js) is in HUB<n>_LOG; GET <HUB<n>_URL>/stats gives its registry.
#
# Needs node (with `npm ci --prefix tests/node` done, or npm to do it),
# nginx and redis-server (apt-get install nodejs npm nginx redis-server).
# Environment: HUBS (3), SOURCES (0: no mapping printed), LIFETIME (0: until
# stopped), PING_INTERVAL / PING_TIMEOUT (ms, the hubs' Engine.IO pings).
set -euo pipefail
# nginx and redis-server are in sbin on Debian, not always on a user's PATH.
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
node_dir=$(cd "$here/../../tests/node" && pwd)
dir=
temp_dir=
if [[ ${1:-} == --dir ]]; then
    dir=${2:?"--dir DIR"}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
elif [[ $# -gt 0 ]]; then
    echo "up.sh: unknown argument $1 (usage: up.sh [--dir DIR])" >&2
    exit 2
fi
hubs=${HUBS:-3}
sources=${SOURCES:-0}
lifetime=${LIFETIME:-0}
for n in hubs sources lifetime; do
    [[ ${!n} =~ ^[0-9]+$ ]] || { echo "up.sh: ${n^^}=${!n}: expected a number" >&2; exit 2; }
done
((hubs >= 1)) || { echo "up.sh: HUBS must be at least 1" >&2; exit 2; }
((sources <= 254)) || { echo "up.sh: SOURCES at most 254 (127.0.0.1..127.0.0.254)" >&2; exit 2; }

for tool in node nginx redis-server; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "up.sh: $tool not found (apt-get install nodejs npm nginx redis-server)" >&2
        exit 2
    }
done
if [[ ! -f $node_dir/node_modules/@socket.io/redis-adapter/package.json ]]; then
    echo "up.sh: installing tests/node packages (npm ci --prefix tests/node)" >&2
    npm ci --prefix "$node_dir" --no-audit --no-fund >/dev/null
fi

if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/stampede-topology.XXXXXX")
    temp_dir=$dir
fi

pids=()
stopped=
# Running, not exited (an exited child stays a zombie until reaped, and
# `kill -0` still finds it).
alive() {
    kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}
down() {
    [[ -n $stopped ]] && return
    stopped=1
    trap - INT TERM EXIT
    echo "down: stopping ${#pids[@]} processes" >&2
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    exec 3>&- 2>/dev/null || true
    if [[ -n $temp_dir ]]; then rm -rf "$temp_dir"; fi
}
trap down EXIT
trap 'down; exit 130' INT
trap 'down; exit 143' TERM

# A free loopback port (redis-server and nginx cannot be given port 0; the
# hubs can and say which port they got).
free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# Waits (up to 30 s) for a line matching $2 in file $1; fails if process $3 died.
wait_for() {
    local file=$1 pattern=$2 pid=$3
    for _ in $(seq 300); do
        grep -qE "$pattern" "$file" 2>/dev/null && return 0
        alive "$pid" || { echo "up.sh: it exited; its output ($file):" >&2; cat "$file" >&2; return 1; }
        sleep 0.1
    done
    echo "up.sh: no /$pattern/ in $file within 30 s:" >&2
    cat "$file" >&2
    return 1
}

# The hubs' stdin: a FIFO this script holds open, so they exit by
# themselves (end of input) should this script die without cleaning up.
rm -f "$dir/hold"
mkfifo "$dir/hold"
exec 3<>"$dir/hold"

# redis-server: no persistence, loopback only.
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir" --logfile "" >"$dir/redis.log" 2>&1 </dev/null &
redis_pid=$!
pids+=("$redis_pid")
wait_for "$dir/redis.log" "Ready to accept connections" "$redis_pid"
redis_url=redis://127.0.0.1:$redis_port

# The hubs, each on a port of its own, all on the one Redis.
hub_lifetime=$((lifetime > 0 ? lifetime * 1000 + 10000 : 2000000000))
hub_ports=()
hub_pids=()
for i in $(seq "$hubs"); do
    log=$dir/hub-$i.log
    node "$node_dir/server.js" --port 0 --redis "$redis_url" --name "hub-$i" \
        --max-lifetime "$hub_lifetime" \
        ${PING_INTERVAL:+--ping-interval "$PING_INTERVAL"} \
        ${PING_TIMEOUT:+--ping-timeout "$PING_TIMEOUT"} \
        <"$dir/hold" >"$log" 2>&1 &
    pids+=("$!")
    hub_pids+=("$!")
done
for i in $(seq "$hubs"); do
    log=$dir/hub-$i.log
    wait_for "$log" "^LISTENING [0-9]+$" "${hub_pids[i - 1]}"
    hub_ports+=("$(sed -n 's/^LISTENING \([0-9]*\)$/\1/p' "$log" | head -1)")
done

# nginx: the upstream of hub-and-agents-scaling.md, its WebSocket settings.
nginx_port=$(free_port)
mkdir -p "$dir/nginx/temp"
{
    echo "# Written by ci/topology/up.sh."
    echo "daemon off;"
    echo "worker_processes 1;"
    echo "worker_rlimit_nofile 20000;"
    echo "pid $dir/nginx/nginx.pid;"
    echo "error_log $dir/nginx/error.log warn;"
    echo "events { worker_connections 8192; }"
    echo "http {"
    echo "  access_log off;"
    for t in client_body proxy fastcgi uwsgi scgi; do
        echo "  ${t}_temp_path $dir/nginx/temp/$t;"
    done
    echo "  upstream engine_websocket {"
    echo "    hash \$remote_addr consistent;  # sticky by source address"
    for port in "${hub_ports[@]}"; do
        echo "    server 127.0.0.1:$port;"
    done
    echo "  }"
    echo "  server {"
    echo "    listen 127.0.0.1:$nginx_port;"
    echo "    location / {"
    echo "      proxy_pass http://engine_websocket;"
    echo "      proxy_http_version 1.1;"
    echo "      proxy_set_header Upgrade \$http_upgrade;"
    echo "      proxy_set_header Connection \"upgrade\";"
    echo "      proxy_set_header Host \$host;"
    echo "      proxy_set_header X-Real-IP \$remote_addr;"
    echo "      proxy_read_timeout 86400s;"
    echo "      proxy_send_timeout 86400s;"
    echo "      proxy_buffering off;"
    echo "    }"
    echo "  }"
    echo "}"
} >"$dir/nginx/nginx.conf"
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" -t >"$dir/nginx/check.log" 2>&1 \
    || { cat "$dir/nginx/check.log" >&2; exit 1; }
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" \
    >"$dir/nginx/stdout.log" 2>&1 </dev/null &
nginx_pid=$!
pids+=("$nginx_pid")
hub_url=http://127.0.0.1:$nginx_port
# Ready when a request through nginx reaches a hub.
ready=
for _ in $(seq 300); do
    alive "$nginx_pid" || { cat "$dir/nginx/error.log" >&2; exit 1; }
    if node -e 'require("http").get(process.argv[1], (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1))' \
        "$hub_url/health" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
[[ -n $ready ]] || { echo "up.sh: nginx did not answer within 30 s" >&2; cat "$dir/nginx/error.log" >&2; exit 1; }

{
    echo "HUB_URL=$hub_url"
    echo "REDIS_URL=$redis_url"
    echo "NGINX_PID=$nginx_pid"
    echo "REDIS_PID=$redis_pid"
    for i in $(seq "$hubs"); do
        echo "HUB${i}_URL=http://127.0.0.1:${hub_ports[i - 1]}"
        echo "HUB${i}_PID=${hub_pids[i - 1]}"
        echo "HUB${i}_LOG=$dir/hub-$i.log"
    done
} | sed 's/^/export /' >"$dir/topology.env"

echo "hub (nginx, hash \$remote_addr consistent): $hub_url   pid $nginx_pid"
echo "redis: $redis_url   pid $redis_pid"
for i in $(seq "$hubs"); do
    echo "hub-$i: http://127.0.0.1:${hub_ports[i - 1]}   pid ${hub_pids[i - 1]}   log $dir/hub-$i.log"
done
if ((sources > 0)); then
    # Which hub each source address lands on (as agents with
    # `[hub] sources = SOURCES` will): /stats through nginx from that address.
    node -e '
      const http = require("http");
      const [url, n] = [process.argv[1], Number(process.argv[2])];
      const get = (addr) => new Promise((ok) =>
        http.get(url + "/stats", { localAddress: addr }, (r) => {
          let body = "";
          r.on("data", (d) => (body += d));
          r.on("end", () => ok(JSON.parse(body).name));
        }).on("error", (e) => ok("error: " + e.message)));
      (async () => {
        const by = {};
        for (let i = 1; i <= n; i++) (by[await get(`127.0.0.${i}`)] ||= []).push(i);
        for (const [hub, list] of Object.entries(by).sort())
          console.log(`sources on ${hub}: 127.0.0.{${list.join(",")}}`);
      })();' "$hub_url" "$sources"
fi
echo "kill one hub (a crash):  kill -9 \$HUB2_PID    (in a shell that ran: source $dir/topology.env)"
echo "READY $dir/topology.env"
((lifetime > 0)) && echo "up.sh: stops by itself after ${lifetime}s" >&2
echo "Enter or Ctrl-C: down" >&2

# Down on end of input, Enter, or after LIFETIME seconds.
if ((lifetime > 0)); then
    read -r -t "$lifetime" _ || true
else
    read -r _ || true
fi
down
