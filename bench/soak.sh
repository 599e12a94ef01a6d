#!/bin/sh
# Memory under a steady stream of commits: SOAK_WRITERS (4) loops commit one new small file
# each (d<N % 100>/f<N>.txt) to one repo's main for SOAK_MINUTES (60). Every
# SOAK_SAMPLE_SECONDS (60) it prints the server's RSS and the commits so far; at the end
# whether RSS plateaued: growth over the second half of the run at most 5 % (or 8 MB) of
# its size at the half. Aborts non-zero on a failed commit. Needs no reference: the figure
# to watch is the trend.
. "$(dirname "$0")/lib.sh"
MINUTES=${SOAK_MINUTES:-60}
WRITERS=${SOAK_WRITERS:-4}
SAMPLE=${SOAK_SAMPLE_SECONDS:-60}
start_hub
HUB_PID=${PIDS##* }
curl -sf -XPOST "$HUB_URL/api/repos/create" -H "Authorization: Bearer $TOKEN" \
  -d '{"name":"soak"}' >/dev/null
URL="$HUB_URL/api/models/admin/soak/commit/main"
END=$(($(date +%s) + $(awk -v m="$MINUTES" "BEGIN { printf \"%d\", m * 60 }")))
mkdir -p "$WORK/n"

writer() { # writer K: commits until END; counts in $WORK/n/count.K, stops at the first failure
  k=$1
  i=0
  while [ "$(date +%s)" -lt "$END" ]; do
    n=$((i * WRITERS + k))
    c=$(printf 'commit %s\n' "$n" | base64)
    code=$(printf '{"key":"header","value":{"summary":"c%s"}}\n{"key":"file","value":{"path":"d%s/f%s.txt","content":"%s","encoding":"base64"}}\n' \
      "$n" "$((n % 100))" "$n" "$c" |
      curl -s -o "$WORK/n/$k.last" -w '%{http_code}' -XPOST "$URL" \
        -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/x-ndjson" --data-binary @-)
    if [ "$code" != 200 ]; then
      echo "FAIL: writer $k commit $n answered $code: $(cat "$WORK/n/$k.last")" >"$WORK/n/$k.fail"
      return 1
    fi
    i=$((i + 1))
    echo "$i" >"$WORK/n/count.$k"
  done
}

W=""
k=0
while [ "$k" -lt "$WRITERS" ]; do
  writer "$k" &
  W="$W $!"
  k=$((k + 1))
done

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$HUB_PID/status"; }
commits() { cat "$WORK"/n/count.* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
echo "minute rss_mb commits"
echo "0 $(rss_mb) 0" | tee "$WORK/samples"
t=0
while [ "$(date +%s)" -lt "$END" ]; do
  sleep "$SAMPLE"
  t=$((t + SAMPLE))
  if ls "$WORK"/n/*.fail >/dev/null 2>&1; then
    cat "$WORK"/n/*.fail >&2
    exit 1
  fi
  echo "$(awk -v t="$t" 'BEGIN { printf "%g", t / 60 }') $(rss_mb) $(commits)" | tee -a "$WORK/samples"
done
for p in $W; do wait "$p" || true; done
if ls "$WORK"/n/*.fail >/dev/null 2>&1; then
  cat "$WORK"/n/*.fail >&2
  exit 1
fi
awk 'NR > 1 { t[NR - 1] = $1; m[NR - 1] = $2; c[NR - 1] = $3; n = NR - 1 }
  END {
    if (n < 2) { print "too short to judge a plateau"; exit }
    h = int((n + 1) / 2); grow = m[n] - m[h]; lim = m[h] * 0.05; if (lim < 8) lim = 8
    per = (c[n] > c[h]) ? grow * 1024 / (c[n] - c[h]) : 0
    printf "%d commits; RSS %.1f MB at minute %s of the run, %.1f MB at the end: %+.1f MB over the second half (%.2f KB per commit): %s\n",
      c[n], m[h], t[h], m[n], grow, per, (grow <= lim) ? "plateaued" : "STILL GROWING"
  }' "$WORK/samples"
