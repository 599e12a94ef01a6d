#!/bin/sh
# Xet storage (docs/xet.md): chunk+hash throughput vs `openssl speed -evp sha256`; upload
# and download of one file through the Xet path vs the LFS path with @huggingface/hub;
# stored bytes of a 5 % edit (dedup). BENCH_SIZE_MB (default 1024) sizes the transfer file,
# BENCH_DEDUP_MB (default 100) the dedup file. Every transfer is checked (the client's exit
# status, byte counts, the downloaded sha256 against the file's); a failure or a mismatch
# aborts without printing a ratio (lib.sh).
. "$(dirname "$0")/lib.sh"
SIZE_MB=${BENCH_SIZE_MB:-1024}
DEDUP_MB=${BENCH_DEDUP_MB:-100}
NODE_CLIENT="$ROOT/bench/xet-client.mjs"
[ -d "$ROOT/tests/e2e/node_modules/@huggingface/hub" ] || make -C "$ROOT" e2e-deps >/dev/null

echo "== chunk + hash (gear CDC, BLAKE3 chunk hashes, Merkle, sha256; one core)"
head -c "${SIZE_MB}M" /dev/urandom >"$WORK/big.bin"
sync
HASH_OUT=$("$BIN" --data "$WORK/hashdata" storage hash "$WORK/big.bin") || die "modelhub storage hash failed"
echo "$HASH_OUT" | tail -1 | sed 's/^/  modelhub storage hash: /'
HASH_OUT=$("$BIN" --data "$WORK/hashdata" storage hash "$WORK/big.bin") || die "modelhub storage hash failed"
HASH_MBS=$(echo "$HASH_OUT" | awk '/MB\/s/ {print $(NF-1)}')
SHA_MBS=$(sha256_mbs)
R_HASH=$(ratio "$HASH_MBS" "$SHA_MBS")
echo "  chunk+hash: $HASH_MBS MB/s   openssl sha256 (16 KiB): $SHA_MBS MB/s   ratio: $R_HASH"

start_hub
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" "$@"; }
for n in xet lfs dedup; do
  api -X POST "$HUB_URL/api/repos/create" -d "{\"name\":\"$n\"}" >/dev/null || die "cannot create repo $n"
done
"$BIN" --data "$WORK/data" storage xet off admin/lfs >/dev/null || die "storage xet off failed" # plain LFS, no background conversion
WANT=$(sha256sum "$WORK/big.bin" | cut -d' ' -f1)
SIZE=$(stat -c %s "$WORK/big.bin")

# run upload|download REPO MODE → "seconds bytes sha"; aborts if the client fails, moved
# another number of bytes than the file has, or (download) got other bytes.
run() {
  _out=$(node "$NODE_CLIENT" "$1" "$HUB_URL" "$TOKEN" "admin/$2" big.bin "$WORK/big.bin" "$3") ||
    die "$1 of admin/$2 ($3) with @huggingface/hub failed"
  set -- "$1" "$2" "$3" $_out
  [ $# -eq 6 ] || die "$1 of admin/$2: unexpected client output '$_out'"
  is_pos "$4" || die "$1 of admin/$2: no duration in '$_out'"
  [ "$5" = "$SIZE" ] || die "$1 of admin/$2: $5 bytes, the file has $SIZE"
  [ "$1" = upload ] || [ "$6" = "$WANT" ] || die "download of admin/$2 ($3): sha256 $6, uploaded $WANT"
  echo "$4 $5"
}
mbs() { awk -v s="$1" -v b="$2" 'BEGIN {printf "%.1f", b / s / 1e6}'; }

echo "== ${SIZE_MB} MiB random file with @huggingface/hub (upload = hash + chunk + send + commit)"
for mode in xet lfs; do
  sync
  T=$(run upload "$mode" "$mode")
  UP=$(mbs $T)
  sync
  T=$(run download "$mode" "$mode")
  DOWN=$(mbs $T)
  echo "  $mode: upload $UP MB/s, download $DOWN MB/s (byte-exact)"
  eval "UP_$mode=$UP DOWN_$mode=$DOWN"
done
XORB_MS=$(awk '/POST \/xet-cas\/v1\/xorbs/ {sub(/ms/, "", $5); t += $5} END {printf "%.0f", t}' "$WORK/hub.log")
echo "  (server time in xorb POSTs, body receive + verify + store: ${XORB_MS} ms in total)"
R_UP=$(ratio "$UP_xet" "$UP_lfs")
R_DOWN=$(ratio "$DOWN_xet" "$DOWN_lfs")
echo "  Xet/LFS: upload $R_UP, download $R_DOWN"
RES="$HUB_URL/admin/xet/resolve/main/big.bin"
check_sha "$RES" "$WANT" # the byte bridge rebuilds the same bytes
sync
T0=$(date +%s.%N)
GOT=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "$RES") || die "GET $RES failed"
T1=$(date +%s.%N)
[ "$GOT" = "200 $SIZE" ] || die "GET $RES: status and bytes '$GOT', expected '200 $SIZE'"
echo "  plain GET /resolve of the Xet-uploaded file (rebuilt from xorbs): $(awk -v a="$T0" -v b="$T1" -v n="$SIZE" 'BEGIN {printf "%.1f", n / (b - a) / 1e6}') MB/s"

echo "== dedup: ${DEDUP_MB} MiB file, then the same with 5 % rewritten in the middle"
stored() {
  _j=$("$BIN" --data "$WORK/data" storage stats --json) || die "storage stats failed"
  _b=$(echo "$_j" | sed -n 's/.*"stored_bytes":\([0-9][0-9]*\).*/\1/p')
  [ -n "$_b" ] || die "storage stats: no stored_bytes in $_j"
  echo "$_b"
}
head -c "${DEDUP_MB}M" /dev/urandom >"$WORK/d0.bin"
EDIT=$((DEDUP_MB * 1048576 / 20))
cp "$WORK/d0.bin" "$WORK/d1.bin"
head -c "$EDIT" /dev/urandom >"$WORK/edit.bin"
dd if="$WORK/edit.bin" of="$WORK/d1.bin" bs=1048576 seek=$((DEDUP_MB / 2)) conv=notrunc status=none
S0=$(stored)
node "$NODE_CLIENT" upload "$HUB_URL" "$TOKEN" admin/dedup d.bin "$WORK/d0.bin" xet >/dev/null ||
  die "dedup upload 1 failed"
S1=$(stored)
node "$NODE_CLIENT" upload "$HUB_URL" "$TOKEN" admin/dedup d.bin "$WORK/d1.bin" xet >/dev/null ||
  die "dedup upload 2 failed"
S2=$(stored)
check_sha "$HUB_URL/admin/dedup/resolve/main/d.bin" "$(sha256sum "$WORK/d1.bin" | cut -d' ' -f1)"
[ "$S1" -gt "$S0" ] && [ "$S2" -gt "$S1" ] || die "stored bytes did not grow with the uploads: $S0, $S1, $S2"
awk -v a="$S0" -v b="$S1" -v c="$S2" -v e="$EDIT" -v n="$DEDUP_MB" 'BEGIN {
  printf "  first upload stored %.1f MB; the edited version stored %.2f MB more (edit: %.2f MB, %.2fx of it)\n", (b - a) / 1e6, (c - b) / 1e6, e / 1e6, (c - b) / e
  printf "  two versions: %.1f MB logical in %.1f MB stored, dedup ratio %.2f\n", 2 * n * 1.048576, (c - a) / 1e6, 2 * n * 1048576 / (c - a) }'
