#!/bin/sh
# Uploads keep their speed while the scan queue has a backlog (issue #14: scans never block
# the request path). One hub; the same LFS upload (signed PUT of BENCH_UP_MB MiB of random
# bytes) is timed twice:
#   reference: before anything is queued for scanning;
#   backlog:   right after a commit that references BENCH_BACKLOG_FILES text files of
#              BENCH_BACKLOG_MB MiB each (each one a secrets scan of 16 MiB and an AV pass),
#              while the scan jobs run. /metrics must show a queue both before and after the
#              timed upload, or no figure is printed.
# Prints both rates and their ratio (target ≥ 0.9: the 2 cores are shared, so the scanner's
# CPU use shows, but nothing waits on it).
. "$(dirname "$0")/lib.sh"
UP_MB=${BENCH_UP_MB:-256}
NFILES=${BENCH_BACKLOG_FILES:-24}
FILE_MB=${BENCH_BACKLOG_MB:-16}
need python3 python3


start_hub
AUTH="Authorization: Bearer $TOKEN"
curl -sf -XPOST "$HUB_URL/api/repos/create" -H "$AUTH" -d '{"name":"bench-scan"}' >/dev/null ||
  die "cannot create the bench repo"

# lfs_put FILE → uploads FILE's bytes through the batch API's signed PUT; prints MB/s
lfs_put() {
  _size=$(stat -c %s "$1")
  _oid=$(sha256sum "$1" | cut -d' ' -f1)
  _href=$(curl -sf -XPOST "$HUB_URL/admin/bench-scan.git/info/lfs/objects/batch" -H "$AUTH" \
    -H 'Content-Type: application/vnd.git-lfs+json' \
    -d "{\"operation\":\"upload\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$_oid\",\"size\":$_size}]}" |
    python3 -c 'import json,sys; a=json.load(sys.stdin)["objects"][0].get("actions",{}); print(a["upload"]["href"] if "upload" in a else "")') ||
    die "LFS batch (upload) failed"
  [ -n "$_href" ] || die "LFS batch gave no upload URL (object already stored?)"
  _s=$(now)
  _code=$(curl -s -o "$WORK/put.out" -w '%{http_code}' -T "$1" "$_href")
  _e=$(now)
  [ "$_code" = 200 ] || die "upload failed: HTTP $_code $(cat "$WORK/put.out")"
  mbps "$_size" "$_s" "$_e"
}

queue_depth() {
  curl -sf "$HUB_URL/metrics" -H "$AUTH" | awk '/^modelhub_scan_queue_depth / { print $2 }'
}

echo "generating the upload (${UP_MB} MiB) and the backlog (${NFILES} × ${FILE_MB} MiB of text)..."
head -c "$((UP_MB * 1048576))" /dev/urandom >"$WORK/up1.bin"
head -c "$((UP_MB * 1048576))" /dev/urandom >"$WORK/up2.bin"
mkdir -p "$WORK/backlog"
i=0
: >"$WORK/backlog.ndjson"
printf '{"key":"header","value":{"summary":"backlog"}}\n' >>"$WORK/backlog.ndjson"
while [ "$i" -lt "$NFILES" ]; do
  # text that the secrets scanner reads whole: base64 lines with assignments in them
  head -c "$((FILE_MB * 786432))" /dev/urandom | base64 -w 76 | sed 's/^\(.\{20\}\)/token = "\1"/' \
    >"$WORK/backlog/notes-$i.txt"
  lfs_put "$WORK/backlog/notes-$i.txt" >/dev/null
  printf '{"key":"lfsFile","value":{"path":"notes-%s.txt","algo":"sha256","oid":"%s","size":%s}}\n' \
    "$i" "$(sha256sum "$WORK/backlog/notes-$i.txt" | cut -d' ' -f1)" \
    "$(stat -c %s "$WORK/backlog/notes-$i.txt")" >>"$WORK/backlog.ndjson"
  i=$((i + 1))
done
sync

REF=$(lfs_put "$WORK/up1.bin")
[ "$(queue_depth)" = 0 ] || die "the scan queue was not empty for the reference upload"

curl -sf -XPOST "$HUB_URL/api/models/admin/bench-scan/commit/main" -H "$AUTH" \
  -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/backlog.ndjson" >/dev/null ||
  die "the backlog commit failed"
for _ in $(seq 100); do
  D=$(queue_depth)
  [ -n "$D" ] && [ "$D" -gt 0 ] && break
  sleep 0.1
done
[ -n "$D" ] && [ "$D" -gt 0 ] || die "no scan backlog appeared after the commit"
BEFORE=$D
DURING=$(lfs_put "$WORK/up2.bin")
AFTER=$(queue_depth)
[ -n "$AFTER" ] && [ "$AFTER" -gt 0 ] ||
  die "the backlog drained before the upload ended (queue $BEFORE → $AFTER): raise BENCH_BACKLOG_FILES"
R=$(ratio "$DURING" "$REF")
echo "upload ${UP_MB} MiB, signed PUT: no backlog $REF MB/s; scan queue $BEFORE → $AFTER jobs: $DURING MB/s; ratio $R (target >= 0.9)"
