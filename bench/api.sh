#!/bin/sh
# GET /api/models/{id} through modelhub vs nginx serving a static JSON file of the same
# size, same machine, same run. Prints requests/s of each and the median ratio of three
# alternating runs (target ≥ 0.8).
. "$(dirname "$0")/lib.sh"
need wrk wrk
start_hub
curl -sf -XPOST "$HUB_URL/api/repos/create" -H "Authorization: Bearer $TOKEN" \
  -d '{"name":"bench-model"}' >/dev/null
URL="$HUB_URL/api/models/admin/bench-model"
mkdir -p "$WORK/www"
curl -sf "$URL" >"$WORK/www/info.json"
start_nginx "$WORK/www"
SIZE=$(wc -c <"$WORK/www/info.json")
# Three alternating runs of each; the median ratio (single runs swing ±10 % on 2 cores).
R=""
for i in 1 2 3; do
  HUB=$(rps "$URL")
  NGX=$(rps "$NGINX_URL/info.json")
  echo "run $i: repo info ($SIZE bytes): modelhub $HUB req/s, nginx $NGX req/s"
  R="$R $(awk -v a="$HUB" -v b="$NGX" 'BEGIN { printf "%.2f", a / b }')"
done
echo "$R" | tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END {
  printf "ratio modelhub/nginx: median %.2f of [%s %s %s] (target >= 0.80)\n", v[2], v[1], v[2], v[3] }'
