#!/bin/sh
# Discovery at catalog scale (docs/search.md): seed N synthetic repos (default 1,000,000)
# with `modelhub dev seed-catalog`, start the hub on that data dir and measure p50/p99
# latency at concurrency 8 (wrk -t2 -c8 --latency) for the listing shapes clients send,
# deep pagination (page 50 via Link cursors) and repo info; then the server's RSS.
# Targets: p99 <= 10 ms each, RSS <= 1 GB. Measures, never asserts targets; but every URL
# is checked first (200 and a non-empty listing, or the repo's info) and any error response
# or socket error during a run aborts without figures (lib.sh).
#   BENCH_REPOS=N        catalog size (default 1000000)
#   BENCH_SECONDS=S      wrk duration per URL (default 10)
#   BENCH_SEED_DIR=DIR   reuse (or create once) a seeded data dir instead of a temp one
. "$(dirname "$0")/lib.sh"
need wrk wrk
N=${BENCH_REPOS:-1000000}
SECS=${BENCH_SECONDS:-10}

DATA=${BENCH_SEED_DIR:-$WORK/data}
if [ ! -f "$DATA/modelhub.db" ]; then
  mkdir -p "$DATA"
  t0=$(date +%s)
  "$BIN" --data "$DATA" dev seed-catalog "$N" >/dev/null || die "seed-catalog $N failed"
  echo "seeded $N repos in $(( $(date +%s) - t0 )) s; db $(du -sh "$DATA" | cut -f1)"
fi

HUB_PORT=$(free_port)
"$BIN" --data "$DATA" serve --listen "127.0.0.1:$HUB_PORT" >"$WORK/hub.out" 2>"$WORK/hub.log" &
HUB_PID=$!
PIDS="$PIDS $HUB_PID"
HUB_URL="http://127.0.0.1:$HUB_PORT"
wait_hub 100
# Steady state: the in-memory search index is built in the background at start (a startup
# cost, reported here, not measured as request latency).
for _ in $(seq 600); do grep -q 'search index:' "$WORK/hub.log" && break; sleep 0.1; done
grep -q 'search index:' "$WORK/hub.log" || die "the search index was not built within 60 s"
grep -o 'search index: .*' "$WORK/hub.log" | head -n 1

# Page 50 of the downloads ranking: follow 49 Link headers first.
url="$HUB_URL/api/models?sort=downloads&limit=20"
for _ in $(seq 49); do
  url=$(curl -sf -D - -o /dev/null "$url" | sed -n 's/^[Ll]ink: <\([^>]*\)>; rel="next".*/\1/p' | tr -d '\r')
  [ -n "$url" ] || die "pagination of sort=downloads ended before page 50 (catalog too small?)"
done
PAGE50=$url
INFO_ID=$(curl -sf "$HUB_URL/api/models?author=org5&limit=1" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -n 1)
[ -n "$INFO_ID" ] || die "no repo of author org5 to time the repo info of"

U_SEARCH="$HUB_URL/api/models?search=mistral-7B&limit=20"
U_FILTER="$HUB_URL/api/models?search=llama&filter=license:apache-2.0&sort=downloads&limit=20"
U_AUTHOR="$HUB_URL/api/models?author=org5&limit=20"
U_PIPE="$HUB_URL/api/models?pipeline_tag=text-generation&num_parameters=min:1B,max:10B&limit=20"
U_INFO="$HUB_URL/api/models/$INFO_ID"
# Every URL answers 200 with what it should before anything is timed: a listing with repos
# in it, and the repo's own info.
for u in "$U_SEARCH" "$U_FILTER" "$U_AUTHOR" "$U_PIPE" "$PAGE50"; do check_json_list "$u"; done
check_url "$U_INFO" 200
check_body_has "\"id\":\"$INFO_ID\"" "$U_INFO"

measure() { # measure NAME URL
  # Warm the connection's statement caches, then measure; any error response aborts.
  wrk_run "$WORK/wrk.out" -t2 -c8 -d2s "$2"
  wrk_run "$WORK/wrk.out" -t2 -c8 -d"${SECS}"s --latency "$2"
  awk -v name="$1" '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2}
      END {printf "%-34s p50 %9s  p99 %9s  %8s req/s\n", name, p50, p99, rps}' "$WORK/wrk.out"
}

echo "catalog: $N repos; wrk -t2 -c8 -d${SECS}s; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
measure "search (id + card text)" "$U_SEARCH"
measure "search+filter+sort=downloads" "$U_FILTER"
measure "author" "$U_AUTHOR"
measure "pipeline_tag+num_parameters" "$U_PIPE"
measure "deep pagination (page 50)" "$PAGE50"
measure "repo info" "$U_INFO"
RSS=$(ps -o rss= -p "$HUB_PID" | tr -d ' ') || die "modelhub (pid $HUB_PID) is gone"
is_pos "$RSS" || die "modelhub (pid $HUB_PID): no RSS"
echo "server RSS: $(awk -v k="$RSS" 'BEGIN {printf "%.0f MB", k / 1024}') (target <= 1024 MB)"
