#!/bin/sh
# Webhook deliveries (docs/webhooks.md): BENCH_EVENTS (default 1000) commits to one repo
# watched by BENCH_WEBHOOKS (default 10) webhooks whose receiver is on loopback
# (bench/webhooks.mjs). Latency: from a commit's answer to each delivery's arrival while
# commits go on one after another (p50 / p99). Throughput: a backlog of the same number of
# events (recorded with the consumers paused) delivered to every webhook. Job runners and
# webhook concurrency: BENCH_RUNNERS (default 4), BENCH_CONCURRENCY (default 4). Every
# delivery is checked (each one arrives, in commit order per webhook) before a figure is
# printed.
. "$(dirname "$0")/lib.sh"
N=${BENCH_EVENTS:-1000}
W=${BENCH_WEBHOOKS:-10}
export MODELHUB_WEBHOOK_ALLOW_PRIVATE=1
export MODELHUB_JOB_RUNNERS=${BENCH_RUNNERS:-4}
export MODELHUB_WEBHOOK_CONCURRENCY=${BENCH_CONCURRENCY:-4}
export MODELHUB_TEST_PAUSE_CONSUMERS="$WORK/pause"
start_hub
OUT=$(timeout "${BENCH_TIMEOUT:-1800}" node "$ROOT/bench/webhooks.mjs" "$HUB_URL" "$TOKEN" "$WORK/pause" "$N" "$W") ||
  die "webhook deliveries: $(grep -v " 200 " "$WORK/hub.log" | tail -n 5)"
echo "== webhooks: $N events × $W webhooks, runners $MODELHUB_JOB_RUNNERS, concurrency $MODELHUB_WEBHOOK_CONCURRENCY"
echo "$OUT" | node -e '
const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(`  latency (commit answered → delivered): p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms (commits at ${r.commits_per_s}/s)`);
console.log(`  backlog: ${r.deliveries} deliveries in ${r.backlog_s} s = ${r.deliveries_per_s} deliveries/s`);'
