# Shared helpers for bench scripts: start a modelhub on a free port with a temp data dir,
# an nginx serving a directory, make sure the tools are installed, and check that what is
# about to be timed really works.
#
# A benchmark never prints a figure or a ratio from a failed run. Before timing, every URL
# is fetched once and must answer the expected status and bytes (check_url, check_sha);
# wrk runs fail on any non-2xx/3xx response or socket error (wrk_run, rps); a ratio needs
# two positive numbers (ratio). Any failure prints "bench: FAILED: …" and exits non-zero.
# die() also signals the main shell, so it stops the benchmark from inside $(…) too, but
# only an assignment (X=$(ratio …)) stops before anything is printed: scripts assign
# figures first and print them after.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MODELHUB_BIN:-$ROOT/build/modelhub}
WORK=$(mktemp -d /tmp/modelhub-bench.XXXXXX)
chmod 711 "$WORK" # nginx workers run as nobody and must reach the files
PIDS=""
MAIN_PID=$$
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 1' USR1 # die() in a subshell

die() { # die MESSAGE: abort the benchmark (no figures), exit status 1
  echo "bench: FAILED: $*" >&2
  kill -USR1 "$MAIN_PID" 2>/dev/null || true
  exit 1
}

is_pos() { # is_pos VALUE: a decimal number > 0
  case $1 in '' | . | *[!0-9.]* | *.*.*) return 1 ;; esac
  awk -v v="$1" 'BEGIN { exit !(v > 0) }'
}

ratio() { # ratio VALUE REFERENCE → VALUE/REFERENCE, two decimals; both must be numbers > 0
  is_pos "$2" || die "ratio: the reference '$2' is empty, not a number or zero"
  is_pos "$1" || die "ratio: the measured value '$1' is empty, not a number or zero"
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

# check_url URL STATUS [FILE [CURL_ARGS…]]: GET URL once and abort unless it answers STATUS
# with a non-empty body, and, when FILE is given (not "-"), exactly FILE's bytes. The body
# stays in $WORK/check.body for further checks (check_body_has).
check_url() {
  _cu_url=$1 _cu_want=$2 _cu_file=${3:--}
  shift 2
  [ $# -eq 0 ] || shift
  _cu_code=$(curl -sS -o "$WORK/check.body" -w '%{http_code}' "$@" "$_cu_url") ||
    die "GET $_cu_url: curl failed"
  [ "$_cu_code" = "$_cu_want" ] || die "GET $_cu_url: HTTP $_cu_code, expected $_cu_want: $(head -c 300 "$WORK/check.body" | tr -s "\n\r" "  ")"
  [ -s "$WORK/check.body" ] || die "GET $_cu_url: empty body"
  if [ "$_cu_file" != - ] && ! cmp -s "$WORK/check.body" "$_cu_file"; then
    die "GET $_cu_url: body ($(wc -c <"$WORK/check.body") bytes) differs from $_cu_file ($(wc -c <"$_cu_file") bytes)"
  fi
}

check_body_has() { # check_body_has TEXT [WHAT]: the last check_url body contains TEXT
  grep -qF -- "$1" "$WORK/check.body" ||
    die "${2:-response}: expected '$1' in the body: $(head -c 300 "$WORK/check.body" | tr -s "\n\r" "  ")"
}

check_json_list() { # check_json_list URL: 200 and a JSON array with at least one item
  check_url "$1" 200
  [ "$(head -c 2 "$WORK/check.body")" = '[{' ] ||
    die "GET $1: expected a non-empty JSON array, got: $(head -c 200 "$WORK/check.body")"
}

check_sha() { # check_sha URL SHA256 [CURL_ARGS…]: the whole body at URL hashes to SHA256
  _cs_url=$1 _cs_want=$2
  shift 2
  _cs_got=$(curl -sfL "$@" "$_cs_url" | sha256sum | cut -d' ' -f1)
  [ "$_cs_got" = "$_cs_want" ] || die "GET $_cs_url: content sha256 $_cs_got, expected $_cs_want"
}

# wrk_run OUT WRK_ARGS… URL: run wrk, its output in OUT; abort if wrk fails, completes no
# request, or reports any non-2xx/3xx response or socket error (connect, read, write,
# timeout). wrk counts those as requests, so its req/s alone cannot tell a failed run.
wrk_run() {
  _wr_out=$1
  shift
  for _wr_url; do :; done
  wrk "$@" >"$_wr_out" 2>&1 || die "wrk $_wr_url exited $?: $(tail -n 3 "$_wr_out")"
  if grep -q 'Non-2xx or 3xx responses' "$_wr_out"; then
    die "wrk $_wr_url: $(grep 'Non-2xx or 3xx responses' "$_wr_out" | sed 's/^ *//')"
  fi
  if grep -q 'Socket errors' "$_wr_out"; then
    die "wrk $_wr_url: $(grep 'Socket errors' "$_wr_out" | sed 's/^ *//')"
  fi
  is_pos "$(awk '/ requests in / { print $1 }' "$_wr_out")" || die "wrk $_wr_url: no request completed"
}

sha256_mbs() { # single-core sha256 MB/s from `openssl speed -evp sha256` (16 KiB blocks)
  _sm_out=$(openssl speed -evp sha256 -bytes 16384 -seconds "${BENCH_SHA_SECONDS:-3}" 2>/dev/null) ||
    die "openssl speed -evp sha256 failed"
  # The figures line: "sha256  123456.78k" (one column per block size; 16384 is the last).
  _sm_k=$(printf '%s\n' "$_sm_out" | awk 'tolower($1) == "sha256" { v = $NF } END { sub(/k$/, "", v); print v }')
  is_pos "$_sm_k" || die "openssl speed: no sha256 figure in its output: $_sm_out"
  awk -v k="$_sm_k" 'BEGIN { printf "%.1f", k * 1000 / 1e6 }'
}

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }'; } # BYTES START END
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

get_mbps() { # get_mbps URL SIZE [CURL_ARGS…] → MB/s of one whole-file GET (status and size checked)
  _gm_u=$1 _gm_z=$2
  shift 2
  _gm_s=$(now)
  _gm_r=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$@" "$_gm_u") || die "GET $_gm_u failed"
  _gm_e=$(now)
  [ "$_gm_r" = "200 $_gm_z" ] || die "GET $_gm_u: expected '200 $_gm_z', got '$_gm_r'"
  mbps "$_gm_z" "$_gm_s" "$_gm_e"
}

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
  [ -x "$BIN" ] || make -C "$ROOT" build/modelhub >/dev/null || die "cannot build $BIN"
  HUB_PORT=$(free_port)
  mkdir -p "$WORK/data"
  "$BIN" --data "$WORK/data" serve --listen "127.0.0.1:$HUB_PORT" >"$WORK/hub.out" 2>"$WORK/hub.log" &
  PIDS="$PIDS $!"
  HUB_URL="http://127.0.0.1:$HUB_PORT"
  wait_hub
  TOKEN=$(awk '/admin token:/ {print $3}' "$WORK/hub.out")
  case $TOKEN in hf_?*) ;; *) die "modelhub printed no admin token: $(cat "$WORK/hub.out")" ;; esac
}

wait_hub() { # wait_hub [TRIES]: $HUB_URL/healthz answers 200 within TRIES × 0.1 s (default 50)
  for _ in $(seq "${1:-50}"); do curl -sf "$HUB_URL/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "modelhub at $HUB_URL did not become healthy: $(tail -n 5 "$WORK/hub.log" 2>/dev/null)"
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
  for _ in $(seq 50); do curl -s -o /dev/null "$NGINX_URL/" && return 0; sleep 0.1; done
  die "nginx at $NGINX_URL did not start: $(cat "$WORK/nginx/error.log" 2>/dev/null)"
}

rps() { # rps URL → requests/sec from wrk -t2 -c32; aborts on any error response (wrk_run)
  wrk_run "$WORK/wrk.out" -t2 -c32 -d"${BENCH_SECONDS:-8}"s "$1"
  _rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out")
  is_pos "$_rps" || die "wrk $1: no Requests/sec figure"
  echo "$_rps"
}
