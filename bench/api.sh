#!/bin/sh
# GET /api/models/{id} through modelhub vs nginx serving a static JSON file of the same
# size, same machine, same run. Prints requests/s of each and the ratio (target ≥ 0.8).
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
HUB=$(rps "$URL")
NGX=$(rps "$NGINX_URL/info.json")
echo "repo info ($SIZE bytes): modelhub $HUB req/s, nginx $NGX req/s"
awk -v a="$HUB" -v b="$NGX" 'BEGIN { printf "ratio modelhub/nginx: %.2f (target >= 0.80)\n", a / b }'
