#!/bin/sh
# Bulk transfer through modelhub, each against a reference measured in the same run:
#  (a) download of one 1 GiB LFS file via /resolve, 1 stream and 16 concurrent streams,
#      vs nginx serving the same file the same way               (targets: ratio >= 0.95)
#  (b) 1 GiB upload through the signed LFS PUT vs single-core sha256 throughput of
#      `openssl speed -evp sha256` (16 KiB blocks): the PUT hashes everything it stores,
#      so sha256 is the floor                                      (target: ratio >= 0.75)
#  (c) one commit of 1,000 small files through the NDJSON commit API (target: <= 1 s)
# Prints figures and ratios; asserts no target. BENCH_SIZE_MB (default 1024) and
# BENCH_STREAMS (default 16) shrink the run for a quick check. Before timing, both download
# URLs must serve the file's exact bytes (sha256); every transfer's status and byte count
# is checked, and a failure aborts without printing a ratio (lib.sh).
. "$(dirname "$0")/lib.sh"
need curl curl
need openssl openssl
SIZE_MB=${BENCH_SIZE_MB:-1024}
STREAMS=${BENCH_STREAMS:-16}
NFILES=${BENCH_FILES:-1000}

# par_get URL N → MB/s of N concurrent whole-file GETs (total bytes / wall time)
par_get() {
  _s=$(now)
  _i=0; _pids=""
  while [ "$_i" -lt "$2" ]; do
    curl -sfL -o /dev/null -w '%{size_download}\n' "$1" >"$WORK/get.$_i" &
    _pids="$_pids $!"; _i=$((_i + 1))
  done
  for _p in $_pids; do wait "$_p" || die "download failed: $1"; done
  _e=$(now)
  _bytes=$(cat "$WORK"/get.* | awk '{ t += $1 } END { printf "%.0f", t }')
  rm -f "$WORK"/get.*
  _want=$((SIZE * $2))
  [ "$_bytes" -eq "$_want" ] || die "short download: $_bytes of $_want bytes from $1"
  mbps "$_bytes" "$_s" "$_e"
}

start_hub
AUTH="Authorization: Bearer $TOKEN"
curl -sf -XPOST "$HUB_URL/api/repos/create" -H "$AUTH" -d '{"name":"bench-transfer"}' >/dev/null ||
  die "cannot create the bench repo"

# nginx workers run as "nobody": let them traverse the (0700) temp dir to www/ only.
chmod 711 "$WORK"
mkdir -p "$WORK/www"
echo "generating ${SIZE_MB} MiB of random data..."
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/www/big.bin"
SIZE=$(stat -c %s "$WORK/www/big.bin")
OID=$(sha256sum "$WORK/www/big.bin" | cut -d' ' -f1)

# ---- (b) upload through the signed PUT vs openssl sha256 -------------------------------
HREF=$(curl -sf -XPOST "$HUB_URL/admin/bench-transfer.git/info/lfs/objects/batch" -H "$AUTH" \
  -H 'Content-Type: application/vnd.git-lfs+json' \
  -d "{\"operation\":\"upload\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$OID\",\"size\":$SIZE}]}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"][0]["actions"]["upload"]["href"])') ||
  die "LFS batch (upload) gave no upload URL"
[ -n "$HREF" ] || die "LFS batch (upload) gave no upload URL"
SHA=$(sha256_mbs)
sync # flush the generated file first so its writeback does not land on the upload
# Second reference: the disk's durable write rate. The PUT must fsync what it stores
# (issue 3: temp file, fsync, rename), so it can never beat writing the same bytes with
# dd conv=fsync on this filesystem.
S=$(now)
dd if=/dev/zero of="$WORK/dd.bin" bs=1M count=$((SIZE / 1048576)) conv=fsync 2>/dev/null
E=$(now)
DISK=$(mbps "$((SIZE / 1048576 * 1048576))" "$S" "$E")
rm -f "$WORK/dd.bin"
sync
S=$(now)
CODE=$(curl -s -o "$WORK/put.out" -w '%{http_code}' -T "$WORK/www/big.bin" "$HREF")
E=$(now)
[ "$CODE" = 200 ] || die "upload failed: HTTP $CODE $(cat "$WORK/put.out")"
UP=$(mbps "$SIZE" "$S" "$E")
printf '{"key":"header","value":{"summary":"big"}}\n{"key":"lfsFile","value":{"path":"big.bin","algo":"sha256","oid":"%s","size":%s}}\n' \
  "$OID" "$SIZE" >"$WORK/big.ndjson"
curl -sf -XPOST "$HUB_URL/api/models/admin/bench-transfer/commit/main" -H "$AUTH" \
  -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/big.ndjson" >/dev/null ||
  die "commit of big.bin failed"

# ---- (a) downloads via /resolve vs nginx ----------------------------------------------
start_nginx "$WORK/www"
RES="$HUB_URL/admin/bench-transfer/resolve/main/big.bin"
NGX="$NGINX_URL/big.bin"
# Both serve the uploaded bytes (this also warms the page cache and first-request costs).
check_sha "$RES" "$OID"
check_sha "$NGX" "$OID"
# 1 stream: 3 alternating runs each, median (it is cheap and noisy); 16 streams: one each
H1=""; N1=""
for _ in 1 2 3; do H1="$H1 $(par_get "$RES" 1)"; N1="$N1 $(par_get "$NGX" 1)"; done
H1=$(median $H1); N1=$(median $N1)
HN=$(par_get "$RES" "$STREAMS"); NN=$(par_get "$NGX" "$STREAMS")

# ---- (c) one commit of NFILES small files ---------------------------------------------
python3 - "$NFILES" >"$WORK/small.ndjson" <<'PY'
import base64, json, sys
n = int(sys.argv[1])
print(json.dumps({"key": "header", "value": {"summary": f"{n} small files"}}))
for i in range(n):
    body = f"file {i}\n".encode() * 8
    print(json.dumps({"key": "file", "value": {"path": f"small/f{i:05d}.txt",
                      "content": base64.b64encode(body).decode(), "encoding": "base64"}}))
PY
sync # same for the 1 GiB blob and anything else still dirty
CT=$(curl -s -o "$WORK/commit.out" -w '%{http_code} %{time_total}' -XPOST \
  "$HUB_URL/api/models/admin/bench-transfer/commit/main" -H "$AUTH" \
  -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/small.ndjson")
[ "${CT%% *}" = 200 ] || die "commit failed: $CT $(cat "$WORK/commit.out")"

R_H1=$(ratio "$H1" "$N1")
R_HN=$(ratio "$HN" "$NN")
R_UP=$(ratio "$UP" "$SHA")
R_DISK=$(ratio "$UP" "$DISK")
echo "file: $SIZE bytes random; MB = 10^6 bytes"
echo "(a) download /resolve, 1 stream:    modelhub $H1 MB/s, nginx $N1 MB/s, ratio $R_H1 (target >= 0.95)"
echo "(a) download /resolve, $STREAMS streams:  modelhub $HN MB/s, nginx $NN MB/s, ratio $R_HN (target >= 0.95)"
echo "(b) upload signed PUT:              modelhub $UP MB/s, openssl sha256 (1 core, 16 KiB) $SHA MB/s, ratio $R_UP (target >= 0.75)"
echo "    same upload vs the disk's durable write rate (dd conv=fsync): $DISK MB/s, ratio $R_DISK"
echo "(c) commit of $NFILES small files:     ${CT#* } s (target <= 1 s)"
