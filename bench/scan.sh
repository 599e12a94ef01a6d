#!/bin/sh
# Security-scan throughput (docs/scanning.md) of `modelhub scan` against `sha256sum` of the
# same file in the same run (the target: >= 1x sha256 throughput for the pickle and header
# scans), on three files made here with Debian's /usr/bin/python3 (torch, numpy):
#  (a) a safetensors file           BENCH_ST_MB  (default 1024)
#  (b) a PyTorch zip checkpoint     BENCH_PT_MB  (default 500): only the central directory
#      and archive/data.pkl are read, never the tensor data
#  (c) a raw pickle of numpy arrays BENCH_PKL_MB (default 200): the big BINBYTES8 payloads
#      are skipped by seeking
# Figures are MB/s (10^6 bytes) of the median of BENCH_RUNS runs (default 3), on a warm page
# cache (each file is read once first, so neither side measures the disk). ClamAV: with
# BENCH_CLAMAV_DB=DIR the files are scanned once more with --clamav-db DIR and that figure
# is reported as measured (no target). Before timing, each file must scan with exit status
# 0 and the expected scanner (pickle members walked for (b) and (c)); otherwise no figure.
. "$(dirname "$0")/lib.sh"
need sha256sum coreutils
PY=/usr/bin/python3
ST_MB=${BENCH_ST_MB:-1024}
PT_MB=${BENCH_PT_MB:-500}
PKL_MB=${BENCH_PKL_MB:-200}
RUNS=${BENCH_RUNS:-3}
[ -x "$BIN" ] || make -C "$ROOT" build/modelhub >/dev/null || die "cannot build $BIN"
"$PY" -c 'import torch, numpy' 2>/dev/null || die "$PY cannot import torch and numpy (python3-torch, python3-numpy)"


# timed CMD... → MB/s of the median run over $SIZE bytes; CMD must succeed every time
# (for `modelhub scan`, exit 0: clean)
timed() {
  _r=""
  _i=0
  while [ "$_i" -lt "$RUNS" ]; do
    _s=$(now)
    "$@" >/dev/null || die "failed: $*"
    _e=$(now)
    _r="$_r $(mbps "$SIZE" "$_s" "$_e")"
    _i=$((_i + 1))
  done
  median $_r
}

echo "generating: safetensors ${ST_MB} MiB, torch checkpoint ${PT_MB} MiB, pickle ${PKL_MB} MiB..."
"$PY" - "$WORK" "$ST_MB" "$PT_MB" "$PKL_MB" <<'EOF' || die "generating the files failed"
import json, os, pickle, struct, sys
import numpy as np, torch
work, st_mb, pt_mb, pkl_mb = sys.argv[1], *map(int, sys.argv[2:5])
MiB = 1 << 20
# (a) safetensors: 1 MiB float32 tensors, header then data, written directly
n = st_mb
hdr = {"__metadata__": {"format": "pt"}}
for i in range(n):
    hdr["layer.%d.weight" % i] = {"dtype": "F32", "shape": [512, 512], "data_offsets": [i * MiB, (i + 1) * MiB]}
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(os.path.join(work, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    block = os.urandom(MiB)
    for i in range(n):
        f.write(block)
# (b) a zip checkpoint of 4 MiB tensors
sd = {"layer.%d.weight" % i: torch.rand(1024, 1024) for i in range(max(1, pt_mb // 4))}
torch.save(sd, os.path.join(work, "pytorch_model.bin"))
# (c) a raw pickle of 1 MiB arrays plus small entries (protocol 4: BINBYTES8 payloads)
d = {"arr%d" % i: np.random.rand(MiB // 8) for i in range(pkl_mb)}
d["meta"] = [{"k": i, "s": "x" * (i % 50)} for i in range(10000)]
with open(os.path.join(work, "data.pkl"), "wb") as f:
    pickle.dump(d, f, protocol=4)
EOF

check_scan() { # check_scan FILE SCANNER: exit 0, level safe, SCANNER present (and walked)
  "$BIN" scan --json "$1" >"$WORK/check.json" || die "modelhub scan $1: exit $?: $(head -c 300 "$WORK/check.json")"
  python3 - "$WORK/check.json" "$2" <<'EOF' || die "modelhub scan $1: not the expected report: $(head -c 300 "$WORK/check.json")"
import json, sys
r = json.load(open(sys.argv[1]))
s = r["scanners"].get(sys.argv[2]) if sys.argv[2] != "-" else {}
assert r["level"] == "safe" and s is not None, r
if sys.argv[2] == "pickle":
    assert s["members"] and s["imports"], s
EOF
}

printf '\n%-36s %10s %10s %8s\n' "file" "sha256 MB/s" "scan MB/s" "ratio"
for f in model.safetensors pytorch_model.bin data.pkl; do
  P="$WORK/$f"
  SIZE=$(stat -c %s "$P")
  case $f in
  *.safetensors) want=header ;;
  *) want=pickle ;;
  esac
  # the header scanner may not be built in yet: then only check a clean scan
  if [ "$want" = header ] && ! "$BIN" scan --json "$P" | grep -q '"header"'; then
    want=- HEADER_NOTE=" (no header scanner in this build: dispatcher + AV only)"
  fi
  check_scan "$P" "$want"
  cat "$P" >/dev/null
  SHA=$(timed sha256sum "$P")
  SCAN=$(timed "$BIN" scan "$P")
  R=$(ratio "$SCAN" "$SHA")
  printf '%-36s %10s %10s %8s\n' "$f ($((SIZE / 1000000)) MB)" "$SHA" "$SCAN" "$R"
  if [ -n "${BENCH_CLAMAV_DB:-}" ]; then
    CLAM=$(timed "$BIN" scan --clamav-db "$BENCH_CLAMAV_DB" "$P")
    printf '%-36s %10s %10s %8s\n' "  with ClamAV ($BENCH_CLAMAV_DB)" "$SHA" "$CLAM" "$(ratio "$CLAM" "$SHA")"
  fi
done
[ -z "${HEADER_NOTE:-}" ] || echo "note: model.safetensors$HEADER_NOTE"
echo "ratio = scan / sha256sum throughput on the same file, same run (target >= 1)"
