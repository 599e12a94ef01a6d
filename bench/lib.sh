# Shared helpers for bench scripts: start a modelhub on a free port with a temp data dir,
# an nginx serving a directory, and make sure the tools are installed.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MODELHUB_BIN:-$ROOT/build/modelhub}
WORK=$(mktemp -d /tmp/modelhub-bench.XXXXXX)
chmod 711 "$WORK" # nginx workers run as nobody and must reach the files
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

need() { # need CMD PACKAGE
  command -v "$1" >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
  }
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_hub() { # sets HUB_URL, TOKEN
  [ -x "$BIN" ] || make -C "$ROOT" build/modelhub >/dev/null
  HUB_PORT=$(free_port)
  mkdir -p "$WORK/data"
  "$BIN" --data "$WORK/data" serve --listen "127.0.0.1:$HUB_PORT" >"$WORK/hub.out" 2>"$WORK/hub.log" &
  PIDS="$PIDS $!"
  HUB_URL="http://127.0.0.1:$HUB_PORT"
  for _ in $(seq 50); do curl -sf "$HUB_URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  TOKEN=$(awk '/admin token:/ {print $3}' "$WORK/hub.out")
}

start_nginx() { # start_nginx ROOT_DIR → NGINX_URL
  need nginx nginx-light
  NGINX_PORT=$(free_port)
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; root $1; default_type application/json; ${NGINX_EXTRA:-} }
}
CONF
  nginx -c "$WORK/nginx.conf"
  NGINX_URL="http://127.0.0.1:$NGINX_PORT"
  for _ in $(seq 50); do curl -s -o /dev/null "$NGINX_URL/" && break; sleep 0.1; done
}

rps() { # rps URL → requests/sec from wrk
  wrk -t2 -c32 -d"${BENCH_SECONDS:-8}"s "$1" 2>/dev/null | awk '/Requests\/sec/ {print $2}'
}
