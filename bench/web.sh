#!/bin/sh
# Web UI server time (issue 6): p50/p99 at concurrency 8 for the model page of a repo with
# a 200 KB README and 500 files, and for the /models search page over a seeded catalog.
# Target p99 <= 20 ms. Measures, never asserts targets; but each page is checked first (200
# and its content) and any error response or socket error during a run aborts without
# figures (lib.sh).
#   BENCH_REPOS=N        catalog size for /models (default 1000000; seeding 1M takes minutes)
#   BENCH_SEED_DIR=DIR   reuse a seeded data dir (e.g. the one bench/search.sh made)
#   BENCH_SECONDS=S      wrk duration per URL (default 10)
. "$(dirname "$0")/lib.sh"
need wrk wrk
N=${BENCH_REPOS:-1000000}
SECS=${BENCH_SECONDS:-10}
DATA=${BENCH_SEED_DIR:-$WORK/data}
if [ ! -f "$DATA/modelhub.db" ]; then
  mkdir -p "$DATA"
  "$BIN" --data "$DATA" dev seed-catalog "$N" >/dev/null || die "seed-catalog $N failed"
fi
HUB_PORT=$(free_port)
"$BIN" --data "$DATA" serve --listen "127.0.0.1:$HUB_PORT" >"$WORK/hub.out" 2>"$WORK/hub.log" &
PIDS="$PIDS $!"
HUB_URL="http://127.0.0.1:$HUB_PORT"
wait_hub 100
"$BIN" --data "$DATA" user add benchweb >/dev/null 2>&1 || true
TOKEN=$("$BIN" --data "$DATA" token create benchweb --name "web-$$" --role write) ||
  die "token create failed"
case $TOKEN in hf_?*) ;; *) die "token create printed '$TOKEN'" ;; esac

curl -sf -XPOST "$HUB_URL/api/repos/create" -H "Authorization: Bearer $TOKEN" \
  -d "{\"name\":\"big-card-$$\"}" >/dev/null || die "cannot create benchweb/big-card-$$"
python3 - "$WORK/commit.ndjson" <<'PY'
import base64, json, sys
para = "This model card paragraph describes training data, evaluation and limitations. " * 4
readme = "---\nlicense: apache-2.0\npipeline_tag: text-generation\ntags: [bench]\n---\n# Big card\n\n"
i = 0
while len(readme) < 200 * 1024:
    readme += f"## Section {i}\n\n{para}\n\n| metric | value |\n|---|---|\n| acc | 0.{i % 100:02d} |\n\n"
    i += 1
with open(sys.argv[1] + ".last", "w") as f:
    f.write(str(i - 1))  # the last section's number, checked in the rendered page
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"key": "header", "value": {"summary": "big card"}}) + "\n")
    f.write(json.dumps({"key": "file", "value": {"path": "README.md", "encoding": "base64",
        "content": base64.b64encode(readme.encode()).decode()}}) + "\n")
    for k in range(499):
        f.write(json.dumps({"key": "file", "value": {"path": f"files/part-{k:03d}.txt",
            "encoding": "base64", "content": base64.b64encode(f"part {k}\n".encode()).decode()}}) + "\n")
PY
curl -sf -XPOST "$HUB_URL/api/models/benchweb/big-card-$$/commit/main" -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/commit.ndjson" >/dev/null ||
  die "commit of the big card failed"

U_CARD="$HUB_URL/benchweb/big-card-$$"
U_SEARCH="$HUB_URL/models?search=llama&sort=downloads"
U_MODELS="$HUB_URL/models"
# Each page answers 200 with what it should show before anything is timed: the rendered
# card (its last section too), and search pages with repos in their results.
check_url "$U_CARD" 200
check_body_has "<h1>Big card</h1>" "$U_CARD"
check_body_has "Section $(cat "$WORK/commit.ndjson.last")<" "$U_CARD"
check_url "$U_SEARCH" 200
check_body_has 'class="rcard"' "$U_SEARCH"
check_url "$U_MODELS" 200
check_body_has 'class="rcard"' "$U_MODELS"

measure() { # measure NAME URL
  wrk_run "$WORK/wrk.out" -t2 -c8 -d2s "$2"
  wrk_run "$WORK/wrk.out" -t2 -c8 -d"${SECS}"s --latency "$2"
  awk -v name="$1" '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2}
      END {printf "%-40s p50 %9s  p99 %9s  %8s req/s\n", name, p50, p99, rps}' "$WORK/wrk.out"
}
echo "catalog: $N repos; wrk -t2 -c8 -d${SECS}s; load $(cut -d' ' -f1-3 /proc/loadavg)"
measure "model page (200 KB README, 500 files)" "$U_CARD"
measure "/models search page" "$U_SEARCH"
measure "/models (no query)" "$U_MODELS"
