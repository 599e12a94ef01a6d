#!/bin/sh
# GET /api/models/{id} through modelhub vs nginx serving a static JSON file of the same
# size, same machine, same run. Prints requests/s of each and the median ratio of three
# alternating runs (target ≥ 0.8). Both URLs are checked first (200, the same bytes); any
# error response or socket error during a run aborts without a ratio (lib.sh).
. "$(dirname "$0")/lib.sh"
need wrk wrk
start_hub
curl -sf -XPOST "$HUB_URL/api/repos/create" -H "Authorization: Bearer $TOKEN" \
  -d '{"name":"bench-model"}' >/dev/null || die "cannot create the bench repo"
URL="$HUB_URL/api/models/admin/bench-model"
mkdir -p "$WORK/www"
check_url "$URL" 200
check_body_has '"id":"admin/bench-model"' "$URL"
cp "$WORK/check.body" "$WORK/www/info.json"
start_nginx "$WORK/www"
SIZE=$(wc -c <"$WORK/www/info.json")
# Same status and bytes from both before anything is timed (nginx answering 403 from an
# unreadable directory once produced a ratio of 0.51 against an error page).
check_url "$NGINX_URL/info.json" 200 "$WORK/www/info.json"
check_url "$URL" 200 "$WORK/www/info.json"
# Three alternating runs of each; the median ratio (single runs swing ±10 % on 2 cores).
R=""
for i in 1 2 3; do
  HUB=$(rps "$URL")
  NGX=$(rps "$NGINX_URL/info.json")
  r=$(ratio "$HUB" "$NGX")
  echo "run $i: repo info ($SIZE bytes): modelhub $HUB req/s, nginx $NGX req/s"
  R="$R $r"
done
echo "$R" | tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END {
  printf "ratio modelhub/nginx: median %.2f of [%s %s %s] (target >= 0.80)\n", v[2], v[1], v[2], v[3] }'
