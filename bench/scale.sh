#!/bin/sh
# Scale-out (docs/scale-out.md): the same hub on its embedded defaults and on the shared
# stores several nodes use, in one run.
#  (a) repo-info requests/s (wrk -t2 -c32 on /api/models/acme/big): SQLite + disk, one node,
#      vs PostgreSQL + S3, one node (goal ≥ 0.5×), and PostgreSQL + S3 with two nodes
#      behind nginx (round robin) vs one node behind the same nginx. One hot repo: on
#      PostgreSQL mostly answered from the node's repo cache (docs/scale-out.md).
#  (a') the same over BENCH_REPOS (2,000) repos from `modelhub dev seed-catalog`, each
#      request a random public one: the node's cache rarely helps, a request costs a
#      database round trip.
#  (b) a 1 GiB LFS download (/resolve): disk (sendfile) vs S3 streamed through the node vs
#      S3 redirected (--blob-redirect: 302 to a presigned URL, followed by curl) vs a plain
#      GET of the same key from the object store (goal: redirected ≈ the store's own speed).
# Everything runs on this machine: PostgreSQL from scripts/pg.sh (Debian postgresql),
# moto_server as the S3 API server (the machine image's Python), Debian nginx. On two
# cores, two nodes share the CPUs the one node had: the two-node figure shows the cost of
# the load balancer and the shared database, not a capacity gain (that needs two hosts).
# BENCH_SIZE_MB (1024), BENCH_SECONDS (8). BENCH_PIN=1: PostgreSQL on CPU 1, everything
# else (hubs, nginx, moto, wrk, curl) on CPU 0, in both configurations — the database on a
# core of its own, as on its own host in production, with the hub side equal in both.
. "$(dirname "$0")/lib.sh"
need curl curl
need wrk wrk
need nginx nginx-light
SIZE_MB=${BENCH_SIZE_MB:-1024}

if ! command -v moto_server >/dev/null 2>&1; then
  for d in "${PYENV_ROOT:-}/shims" "${HOME:-/root}/.pyenv/shims" /root/.pyenv/shims; do
    [ -x "$d/moto_server" ] && PATH="$d:$PATH" && break
  done
fi
command -v moto_server >/dev/null 2>&1 || die "moto_server not found (the S3 API server; docs/blob.md)"
[ -x "$BIN" ] || make -C "$ROOT" build/modelhub >/dev/null || die "cannot build $BIN"

REPOS=${BENCH_REPOS:-2000}
# wrk script: each request a random path from the file named by PATHS_FILE
cat >"$WORK/spread.lua" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do paths[#paths + 1] = line end
math.randomseed(os.time())
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
LUA
# spread_rps URL DATA_DIR [VAR=VALUE…]: seed the catalog, then repo-info req/s over its public
# models (the same ones on every store: seed-catalog is deterministic)
spread_rps() {
  _u=$1 _d=$2
  shift 2
  env "$@" "$BIN" --data "$_d" dev seed-catalog "$REPOS" >/dev/null || die "seed-catalog at $_u failed"
  curl -sf "$_u/api/models?limit=1000&sort=id" |
    python3 -c 'import json,sys; [print("/api/models/" + m["id"]) for m in json.load(sys.stdin)]' \
      >"$WORK/paths" || die "cannot list the seeded models at $_u"
  [ "$(wc -l <"$WORK/paths")" -ge 100 ] || die "too few seeded models at $_u"
  PATHS_FILE="$WORK/paths" wrk_run "$WORK/wrk.out" -t2 -c32 -d"${BENCH_SECONDS:-8}"s \
    -s "$WORK/spread.lua" "$_u/"
  _rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk.out")
  is_pos "$_rps" || die "wrk (spread) $_u: no Requests/sec figure"
  echo "$_rps"
}

med3() { # med3 URL SIZE [CURL_ARGS…] → median MB/s of 3 downloads
  _m=""
  for _ in 1 2 3; do _m="$_m $(get_mbps "$@")"; done
  median $_m
}

# ---- the stores -------------------------------------------------------------------------
echo "generating ${SIZE_MB} MiB of random data..."
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/big.bin"
SIZE=$(stat -c %s "$WORK/big.bin")
OID=$(sha256sum "$WORK/big.bin" | cut -d' ' -f1)

PG_PIN=""
if [ "${BENCH_PIN:-0}" = 1 ]; then
  need taskset util-linux
  taskset -cp 0 $$ >/dev/null || die "taskset: cannot pin this script to CPU 0"
  PG_PIN="taskset -c 1"
fi
PG_URL=$($PG_PIN sh "$ROOT/scripts/pg.sh" start "$WORK/pg") || die "cannot start PostgreSQL (scripts/pg.sh)"
pg_stop() { sh "$ROOT/scripts/pg.sh" stop "$WORK/pg" >/dev/null 2>&1 || true; }
trap 'pg_stop; cleanup' EXIT
MOTO_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS="$PIDS $!"
S3="http://127.0.0.1:$MOTO_PORT"
for _ in $(seq 100); do curl -sf -o /dev/null "$S3/moto-api/" && break; sleep 0.1; done
curl -sf -X PUT -o /dev/null "$S3/bench" || die "cannot create the bucket on moto_server"
S3_ENV="MODELHUB_BLOB_STORE=s3://bench MODELHUB_S3_ENDPOINT=$S3 MODELHUB_S3_PATH_STYLE=1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1"

# start_node NAME DATA_DIR [VAR=VALUE…] → URL on stdout's last line; TOKEN from the first start
start_node() {
  _n=$1 _d=$2
  shift 2
  _p=$(free_port)
  mkdir -p "$_d"
  env "$@" "$BIN" --data "$_d" serve --listen "127.0.0.1:$_p" >>"$WORK/$_n.out" 2>"$WORK/$_n.log" &
  PIDS="$PIDS $!"
  echo "$!" >"$WORK/$_n.pid"
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$_p/healthz" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$_p/healthz" || die "node $_n did not become healthy: $(tail -n 5 "$WORK/$_n.log")"
  echo "http://127.0.0.1:$_p"
}
stop_node() { kill "$(cat "$WORK/$1.pid")" 2>/dev/null || true; }
token_of() { awk '/admin token:/ {print $3}' "$WORK/$1.out" | head -n 1; }

# seed URL TOKEN DATA_DIR [VAR=VALUE…]: org acme, public model acme/big with big.bin in LFS
seed() {
  _u=$1 _t=$2 _d=$3
  shift 3
  env "$@" "$BIN" --data "$_d" org add acme --owner admin >/dev/null || die "cannot create org acme"
  _a="Authorization: Bearer $_t"
  curl -sf -XPOST "$_u/api/repos/create" -H "$_a" -d '{"name":"big","organization":"acme"}' >/dev/null ||
    die "cannot create acme/big at $_u"
  _href=$(curl -sf -XPOST "$_u/acme/big.git/info/lfs/objects/batch" -H "$_a" \
    -H 'Content-Type: application/vnd.git-lfs+json' \
    -d "{\"operation\":\"upload\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$OID\",\"size\":$SIZE}]}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"][0]["actions"]["upload"]["href"])') ||
    die "LFS batch (upload) at $_u gave no upload URL"
  curl -sf -o /dev/null -T "$WORK/big.bin" "$_href" || die "upload to $_u failed"
  printf '{"key":"header","value":{"summary":"add"}}\n{"key":"lfsFile","value":{"path":"big.bin","algo":"sha256","oid":"%s","size":%s}}\n' \
    "$OID" "$SIZE" >"$WORK/c.ndjson"
  curl -sf -XPOST "$_u/api/models/acme/big/commit/main" -H "$_a" \
    -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/c.ndjson" >/dev/null || die "commit at $_u failed"
}

# ---- SQLite + disk, one node ------------------------------------------------------------
LOCAL=$(start_node local "$WORK/local")
seed "$LOCAL" "$(token_of local)" "$WORK/local"
check_sha "$LOCAL/acme/big/resolve/main/big.bin" "$OID"
RPS_LOCAL=$(rps "$LOCAL/api/models/acme/big")
DL_DISK=$(med3 "$LOCAL/acme/big/resolve/main/big.bin" "$SIZE")
SPREAD_LOCAL=$(spread_rps "$LOCAL" "$WORK/local")
stop_node local

# ---- PostgreSQL + S3, one node, then two behind nginx -----------------------------------
# shellcheck disable=SC2086
A=$(start_node a "$WORK/shared" MODELHUB_DB="$PG_URL" $S3_ENV)
# shellcheck disable=SC2086
seed "$A" "$(token_of a)" "$WORK/shared" MODELHUB_DB="$PG_URL" $S3_ENV
check_sha "$A/acme/big/resolve/main/big.bin" "$OID"
RPS_PG=$(rps "$A/api/models/acme/big")
DL_S3=$(med3 "$A/acme/big/resolve/main/big.bin" "$SIZE")
# shellcheck disable=SC2086
SPREAD_PG=$(spread_rps "$A" "$WORK/shared" MODELHUB_DB="$PG_URL" $S3_ENV)
# shellcheck disable=SC2086
B=$(start_node b "$WORK/shared" MODELHUB_DB="$PG_URL" $S3_ENV MODELHUB_BLOB_REDIRECT=1)
check_sha "$B/acme/big/resolve/main/big.bin" "$OID" -L
DL_REDIR=$(med3 "$B/acme/big/resolve/main/big.bin" "$SIZE" -L)
# the store's own speed for the same object: a plain GET of the presigned URL node B
# redirects to (what a client does after the 302, without the hub in between)
LOC=$(curl -s -o /dev/null -w '%{redirect_url}' "$B/acme/big/resolve/main/big.bin")
case $LOC in http*) ;; *) die "node B (--blob-redirect) answered no redirect" ;; esac
check_sha "$LOC" "$OID"
DL_STORE=$(med3 "$LOC" "$SIZE")

LB_PORT=$(free_port)
mkdir -p "$WORK/lb"
write_lb() { # write_lb UPSTREAM_LINES
  cat >"$WORK/lb.conf" <<CONF
worker_processes 2;
pid $WORK/lb.pid;
error_log $WORK/lb/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/lb; proxy_temp_path $WORK/lb;
  fastcgi_temp_path $WORK/lb; uwsgi_temp_path $WORK/lb; scgi_temp_path $WORK/lb;
  upstream hub { $1 keepalive 64; }
  server {
    listen 127.0.0.1:$LB_PORT;
    client_max_body_size 0;
    location / {
      proxy_pass http://hub;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
CONF
}
lb_up() {
  nginx -c "$WORK/lb.conf" -g 'daemon off;' &
  LB_PID=$!
  PIDS="$PIDS $LB_PID"
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$LB_PORT/healthz" && return 0; sleep 0.1; done
  die "nginx (load balancer) did not start: $(cat "$WORK/lb/error.log" 2>/dev/null)"
}
LB="http://127.0.0.1:$LB_PORT"
write_lb "server ${A#http://};"
lb_up
RPS_LB1=$(rps "$LB/api/models/acme/big")
kill "$LB_PID"; wait "$LB_PID" 2>/dev/null || true
write_lb "server ${A#http://}; server ${B#http://};"
lb_up
RPS_LB2=$(rps "$LB/api/models/acme/big")
check_sha "$LB/acme/big/resolve/main/big.bin" "$OID" -L
kill "$LB_PID"; wait "$LB_PID" 2>/dev/null || true
stop_node a
stop_node b
pg_stop

R_PG=$(ratio "$RPS_PG" "$RPS_LOCAL")
R_SPREAD=$(ratio "$SPREAD_PG" "$SPREAD_LOCAL")
R_LB=$(ratio "$RPS_LB2" "$RPS_LB1")
R_S3=$(ratio "$DL_S3" "$DL_DISK")
R_REDIR=$(ratio "$DL_REDIR" "$DL_STORE")
[ "${BENCH_PIN:-0}" = 1 ] && echo "pinned: PostgreSQL on CPU 1, everything else on CPU 0"
echo "repo info, req/s: SQLite+disk $RPS_LOCAL; PostgreSQL+S3 $RPS_PG (ratio $R_PG, goal >= 0.5)"
echo "                  behind nginx: one node $RPS_LB1, two nodes $RPS_LB2 (ratio $R_LB; same 2 cores)"
echo "                  over $REPOS repos (random): SQLite+disk $SPREAD_LOCAL; PostgreSQL+S3 $SPREAD_PG (ratio $R_SPREAD)"
echo "1 GiB download, MB/s: disk $DL_DISK; S3 streamed $DL_S3 (ratio $R_S3 of disk)"
echo "                      S3 redirected $DL_REDIR vs the store itself $DL_STORE (ratio $R_REDIR, goal ~ 1)"
