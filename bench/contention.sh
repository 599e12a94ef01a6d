#!/bin/sh
# Many concurrent committers on one branch: BENCH_WRITERS (50) NDJSON commits without a
# parentCommit start at once, BENCH_ROUNDS (5) times. Prints p50/p99/max commit latency
# (curl time_total) and checks that every acknowledged commit is in the branch's history.
# Aborts non-zero on any failed commit or a lost one. Target: p99 <= 1 s at 50 writers.
. "$(dirname "$0")/lib.sh"
WRITERS=${BENCH_WRITERS:-50}
ROUNDS=${BENCH_ROUNDS:-5}
start_hub
curl -sf -XPOST "$HUB_URL/api/repos/create" -H "Authorization: Bearer $TOKEN" \
  -d '{"name":"contention"}' >/dev/null
URL="$HUB_URL/api/models/admin/contention/commit/main"
mkdir -p "$WORK/out"
i=0
while [ "$i" -lt "$WRITERS" ]; do # one body per writer: each writes its own file
  c=$(printf 'writer %s\n' "$i" | base64)
  printf '{"key":"header","value":{"summary":"w%s"}}\n{"key":"file","value":{"path":"w/%s.txt","content":"%s","encoding":"base64"}}\n' \
    "$i" "$i" "$c" >"$WORK/body.$i"
  i=$((i + 1))
done
r=1
while [ "$r" -le "$ROUNDS" ]; do
  i=0
  CURLS=""
  while [ "$i" -lt "$WRITERS" ]; do
    curl -s -o "$WORK/out/$r.$i.json" -w '%{http_code} %{time_total}\n' -XPOST "$URL" \
      -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/x-ndjson" \
      --data-binary @"$WORK/body.$i" >"$WORK/out/$r.$i.code" &
    CURLS="$CURLS $!"
    i=$((i + 1))
  done
  for p in $CURLS; do wait "$p"; done # not the hub, also a child of this shell
  r=$((r + 1))
done
cat "$WORK"/out/*.code >"$WORK/codes"
BAD=$(awk '$1 != 200' "$WORK/codes" | wc -l)
if [ "$BAD" -ne 0 ]; then
  echo "FAIL: $BAD of $((WRITERS * ROUNDS)) commits did not answer 200:" >&2
  for f in "$WORK"/out/*.code; do
    grep -qv '^200 ' "$f" && cat "$f" "${f%.code}.json" >&2 && echo >&2
  done
  exit 1
fi
# Every acknowledged commitOid must be in the history of main.
sed -n 's/.*"commitOid":"\([0-9a-f]\{40\}\)".*/\1/p' "$WORK"/out/*.json | sort >"$WORK/acked"
: >"$WORK/history"
p=0
while :; do
  n=$(curl -sf "$HUB_URL/api/models/admin/contention/commits/main?limit=1000&p=$p" |
    grep -o '"id":"[0-9a-f]\{40\}"' | cut -d'"' -f4 | tee -a "$WORK/history" | wc -l)
  [ "$n" -lt 1000 ] && break
  p=$((p + 1))
done
sort -o "$WORK/history" "$WORK/history"
ACKED=$(wc -l <"$WORK/acked")
LOST=$(comm -23 "$WORK/acked" "$WORK/history" | wc -l)
if [ "$ACKED" -ne $((WRITERS * ROUNDS)) ] || [ "$LOST" -ne 0 ]; then
  echo "FAIL: $ACKED acknowledged commits, $LOST of them missing from the history" >&2
  exit 1
fi
awk '{ print $2 }' "$WORK/codes" | sort -n | awk -v w="$WRITERS" -v r="$ROUNDS" '
  { v[NR] = $1 }
  END {
    p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
    printf "%d writers x %d rounds: %d commits, all in history; latency p50 %.3f s, p99 %.3f s, max %.3f s (target p99 <= 1 s)\n",
      w, r, NR, p50, p99, v[NR]
  }'
