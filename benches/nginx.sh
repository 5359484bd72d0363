# Sourced by the benches: start_nginx DIR PORT CORE runs nginx (one worker,
# `return 200 "ok"`, no access log, unlimited keep-alive) on 127.0.0.1:PORT,
# pinned to CORE, with its config, pid file and logs in DIR; it returns once
# the port accepts. NGINX names the binary. The caller stops it with
# `kill "$(cat DIR/nginx.pid)"`.
start_nginx() {
  local dir=$1 port=$2 core=$3
  mkdir -p "$dir/logs"
  cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "ok"; }
  }
}
CONF
  taskset -c "$core" "$NGINX" -p "$dir" -c "$dir/nginx.conf"
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nginx did not start on 127.0.0.1:$port" >&2
  return 1
}
