#!/bin/sh
# Xet storage (docs/xet.md): chunk+hash throughput vs `openssl speed -evp sha256`; upload
# and download of one file through the Xet path vs the LFS path with @huggingface/hub;
# stored bytes of a 5 % edit (dedup). BENCH_SIZE_MB (default 1024) sizes the transfer file,
# BENCH_DEDUP_MB (default 100) the dedup file.
. "$(dirname "$0")/lib.sh"
SIZE_MB=${BENCH_SIZE_MB:-1024}
DEDUP_MB=${BENCH_DEDUP_MB:-100}
NODE_CLIENT="$ROOT/bench/xet-client.mjs"
[ -d "$ROOT/tests/e2e/node_modules/@huggingface/hub" ] || make -C "$ROOT" e2e-deps >/dev/null

echo "== chunk + hash (gear CDC, BLAKE3 chunk hashes, Merkle, sha256; one core)"
head -c "${SIZE_MB}M" /dev/urandom >"$WORK/big.bin"
sync
"$BIN" --data "$WORK/hashdata" storage hash "$WORK/big.bin" | tail -1 | sed 's/^/  modelhub storage hash: /'
HASH_MBS=$("$BIN" --data "$WORK/hashdata" storage hash "$WORK/big.bin" | awk '/MB\/s/ {print $(NF-1)}')
SHA_KBS=$(openssl speed -evp sha256 -bytes 16384 -seconds 3 2>/dev/null | awk '/^sha256/ {print $2}' | tr -d k)
SHA_MBS=$(awk -v k="$SHA_KBS" 'BEGIN {printf "%.1f", k * 1000 / 1e6}')
echo "  chunk+hash: $HASH_MBS MB/s   openssl sha256 (16 KiB): $SHA_MBS MB/s   ratio: $(awk -v a="$HASH_MBS" -v b="$SHA_MBS" 'BEGIN {printf "%.2f", a / b}')"

start_hub
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" "$@"; }
for n in xet lfs dedup; do api -X POST "$HUB_URL/api/repos/create" -d "{\"name\":\"$n\"}" >/dev/null; done
"$BIN" --data "$WORK/data" storage xet off admin/lfs >/dev/null # plain LFS, no background conversion
WANT=$(sha256sum "$WORK/big.bin" | cut -d' ' -f1)

run() { # run upload|download REPO MODE → "seconds bytes sha"
  node "$NODE_CLIENT" "$1" "$HUB_URL" "$TOKEN" "admin/$2" big.bin "$WORK/big.bin" "$3"
}
mbs() { awk -v s="$1" -v b="$2" 'BEGIN {printf "%.1f", b / s / 1e6}'; }

echo "== ${SIZE_MB} MiB random file with @huggingface/hub (upload = hash + chunk + send + commit)"
for mode in xet lfs; do
  sync
  set -- $(run upload "$mode" "$mode")
  UP=$(mbs "$1" "$2")
  sync
  set -- $(run download "$mode" "$mode")
  DOWN=$(mbs "$1" "$2")
  OK=$([ "$3" = "$WANT" ] && echo "byte-exact" || echo "MISMATCH")
  echo "  $mode: upload $UP MB/s, download $DOWN MB/s ($OK)"
  eval "UP_$mode=$UP DOWN_$mode=$DOWN"
done
XORB_MS=$(awk '/POST \/xet-cas\/v1\/xorbs/ {sub(/ms/, "", $5); t += $5} END {printf "%.0f", t}' "$WORK/hub.log")
echo "  (server time in xorb POSTs, body receive + verify + store: ${XORB_MS} ms in total)"
echo "  Xet/LFS: upload $(awk -v a="$UP_xet" -v b="$UP_lfs" 'BEGIN {printf "%.2f", a / b}'), download $(awk -v a="$DOWN_xet" -v b="$DOWN_lfs" 'BEGIN {printf "%.2f", a / b}')"
sync
T0=$(date +%s.%N)
curl -sf -o /dev/null "$HUB_URL/admin/xet/resolve/main/big.bin"
T1=$(date +%s.%N)
echo "  plain GET /resolve of the Xet-uploaded file (rebuilt from xorbs): $(awk -v a="$T0" -v b="$T1" -v n="$SIZE_MB" 'BEGIN {printf "%.1f", n * 1048576 / (b - a) / 1e6}') MB/s"

echo "== dedup: ${DEDUP_MB} MiB file, then the same with 5 % rewritten in the middle"
stored() { "$BIN" --data "$WORK/data" storage stats --json | sed 's/.*"stored_bytes":\([0-9]*\).*/\1/'; }
head -c "${DEDUP_MB}M" /dev/urandom >"$WORK/d0.bin"
EDIT=$((DEDUP_MB * 1048576 / 20))
cp "$WORK/d0.bin" "$WORK/d1.bin"
head -c "$EDIT" /dev/urandom >"$WORK/edit.bin"
dd if="$WORK/edit.bin" of="$WORK/d1.bin" bs=1048576 seek=$((DEDUP_MB / 2)) conv=notrunc status=none
S0=$(stored)
node "$NODE_CLIENT" upload "$HUB_URL" "$TOKEN" admin/dedup d.bin "$WORK/d0.bin" xet >/dev/null
S1=$(stored)
node "$NODE_CLIENT" upload "$HUB_URL" "$TOKEN" admin/dedup d.bin "$WORK/d1.bin" xet >/dev/null
S2=$(stored)
awk -v a="$S0" -v b="$S1" -v c="$S2" -v e="$EDIT" -v n="$DEDUP_MB" 'BEGIN {
  printf "  first upload stored %.1f MB; the edited version stored %.2f MB more (edit: %.2f MB, %.2fx of it)\n", (b - a) / 1e6, (c - b) / 1e6, e / 1e6, (c - b) / e
  printf "  two versions: %.1f MB logical in %.1f MB stored, dedup ratio %.2f\n", 2 * n * 1.048576, (c - a) / 1e6, 2 * n * 1048576 / (c - a) }'
