#!/bin/sh
# git clone from modelhub (smart HTTP + git-lfs) vs a reference measured in the same run:
#  (1) a repo of 10,000 small files: modelhub vs `git daemon` serving a bare copy
#      (`git clone --bare` of the modelhub repo) over git://
#  (2) a repo with one 1 GiB LFS file: modelhub (git clone, git-lfs smudges the object)
#      vs `git daemon` clone with GIT_LFS_SKIP_SMUDGE=1 + curl of the same 1 GiB from nginx
#      into the work tree (what a static server would cost)
# Content goes into modelhub by `git push` over HTTP with the admin token.
# Each clone runs BENCH_RUNS times (default 3), alternating hub/reference; the median is
# printed with the ratio modelhub/reference (target <= 1.10). Asserts no target; but both
# sides are checked before timing (same refs, nginx serving the object and the batch answer)
# and every clone is checked (file count, the object's bytes); a failure aborts without
# printing a ratio (lib.sh).
# BENCH_SIZE_MB (default 1024) and BENCH_FILES (default 10000) shrink the run.
. "$(dirname "$0")/lib.sh"
need git git
need git-lfs git-lfs
need curl curl
SIZE_MB=${BENCH_SIZE_MB:-1024}
NFILES=${BENCH_FILES:-10000}
RUNS=${BENCH_RUNS:-3}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }'; }

# nginx workers run as "nobody": let them traverse the (0700) temp dir to www/ only.
chmod 711 "$WORK"
export HOME="$WORK/home" GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
git config --global user.name bench
git config --global user.email bench@example.invalid
git config --global init.defaultBranch main
git config --global advice.detachedHead false
git config --global lfs.locksverify false
git lfs install >/dev/null

start_hub
AUTH="Authorization: Bearer $TOKEN"
HUB_HOSTPORT=${HUB_URL#http://}
for r in bench-small bench-lfs; do
  curl -sf -XPOST "$HUB_URL/api/repos/create" -H "$AUTH" -d "{\"name\":\"$r\"}" >/dev/null ||
    die "cannot create $r"
done

# ---- content, pushed with git over HTTP -------------------------------------------------
echo "building a repo of $NFILES small files and one with a ${SIZE_MB} MiB LFS file..."
mkdir -p "$WORK/src" "$WORK/www"
# a new repo already has an initial commit (.gitattributes): clone it, add, push
PUSH="http://u:$TOKEN@$HUB_HOSTPORT/admin"
git clone -q "$PUSH/bench-small" "$WORK/src/small"
GIT_LFS_SKIP_SMUDGE=1 git clone -q "$PUSH/bench-lfs" "$WORK/src/lfs"
(cd "$WORK/src/small" && python3 - "$NFILES" <<'PY'
import os, sys
n = int(sys.argv[1])
for i in range(n):
    d = f"d{i // 100:03d}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:05d}.txt", "w") as f:
        f.write(f"small file {i}\n" * 20)
PY
git add -A && git commit -qm "$NFILES small files" &&
  git push -q origin main 2>&1)
(cd "$WORK/src/lfs" && git lfs track '*.bin' >/dev/null &&
  head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >big.bin &&
  git add -A && git commit -qm "one big LFS file" &&
  git push -q origin main 2>&1)
SIZE=$(stat -c %s "$WORK/src/lfs/big.bin")
ln "$WORK/src/lfs/big.bin" "$WORK/www/big.bin"

# ---- references: bare copies of the modelhub repos under git daemon, the object on nginx ----
mkdir -p "$WORK/daemon"
git clone -q --bare "$HUB_URL/admin/bench-small" "$WORK/daemon/bench-small.git"
GIT_LFS_SKIP_SMUDGE=1 git clone -q --bare "$HUB_URL/admin/bench-lfs" "$WORK/daemon/bench-lfs.git"
GD_PORT=$(free_port)
git daemon --reuseaddr --base-path="$WORK/daemon" --export-all --listen=127.0.0.1 \
  --port="$GD_PORT" 2>"$WORK/daemon.log" &
PIDS="$PIDS $!"
GD_URL="git://127.0.0.1:$GD_PORT"
for _ in $(seq 50); do git ls-remote "$GD_URL/bench-small.git" >/dev/null 2>&1 && break; sleep 0.1; done
# A static LFS server for the like-for-like reference: nginx answers the batch POST with a
# fixed JSON file (405 → 200 on the same URI) pointing at the object it also serves.
NGINX_EXTRA='location /lfs/ { default_type application/vnd.git-lfs+json; error_page 405 =200 $uri; }'
start_nginx "$WORK/www"
mkdir -p "$WORK/www/lfs/objects"
OIDX=$(sha256sum "$WORK/www/big.bin" | cut -d' ' -f1)
printf '{"transfer":"basic","objects":[{"oid":"%s","size":%s,"actions":{"download":{"href":"%s/big.bin"}}}]}' \
  "$OIDX" "$SIZE" "$NGINX_URL" >"$WORK/www/lfs/objects/batch"

# Before timing: git daemon serves the same commits as modelhub, and nginx the object's
# bytes and the batch answer (a POST, as git-lfs sends it).
for r in bench-small bench-lfs; do
  H=$(git ls-remote "$HUB_URL/admin/$r" refs/heads/main | cut -f1) || die "ls-remote $r on modelhub failed"
  D=$(git ls-remote "$GD_URL/$r.git" refs/heads/main | cut -f1) || die "ls-remote $r on git daemon failed"
  [ -n "$H" ] && [ "$H" = "$D" ] || die "$r: modelhub main is '$H', git daemon's '$D'"
done
check_sha "$NGINX_URL/big.bin" "$OIDX"
check_url "$NGINX_URL/lfs/objects/batch" 200 "$WORK/www/lfs/objects/batch" -XPOST \
  -H 'Content-Type: application/vnd.git-lfs+json' -d '{"operation":"download"}'

# timed CMD... → seconds; runs in a fresh clone dir, removed afterwards
timed() {
  rm -rf "$WORK/clone"; sync
  _s=$(now)
  "$@" >"$WORK/clone.log" 2>&1 || die "failed: $*: $(tail -n 20 "$WORK/clone.log")"
  _e=$(now)
  awk -v s="$_s" -v e="$_e" 'BEGIN { printf "%.3f", e - s }'
}
check_small() { [ "$(git -C "$WORK/clone" ls-files 'd*' | wc -l)" -eq "$NFILES" ] ||
  die "clone incomplete: $(git -C "$WORK/clone" ls-files 'd*' | wc -l) of $NFILES files"; }
check_big() { [ "$(stat -c %s "$WORK/clone/big.bin" 2>/dev/null)" = "$SIZE" ] &&
  cmp -s "$WORK/clone/big.bin" "$WORK/www/big.bin" || die "big.bin in the clone is not the pushed file"; }
# Same git + git-lfs client work as the modelhub clone, against git daemon + static LFS.
ref_lfs_static() {
  git -c lfs.url="$NGINX_URL/lfs" clone -q "$GD_URL/bench-lfs.git" "$WORK/clone"
}
ref_lfs() {
  GIT_LFS_SKIP_SMUDGE=1 git clone -q "$GD_URL/bench-lfs.git" "$WORK/clone" &&
    curl -sf -o "$WORK/clone/big.bin" "$NGINX_URL/big.bin"
}

SH=""; SR=""; LH=""; LR=""; LS=""
i=0
while [ "$i" -lt "$RUNS" ]; do
  t=$(timed git clone -q "$HUB_URL/admin/bench-small" "$WORK/clone"); check_small; SH="$SH $t"
  t=$(timed git clone -q "$GD_URL/bench-small.git" "$WORK/clone"); check_small; SR="$SR $t"
  t=$(timed git clone -q "$HUB_URL/admin/bench-lfs" "$WORK/clone"); check_big; LH="$LH $t"
  t=$(timed ref_lfs); check_big; LR="$LR $t"
  rm -rf "$WORK/clone"
  t=$(timed ref_lfs_static); check_big; LS="$LS $t"
  i=$((i + 1))
done
rm -rf "$WORK/clone"

echo "runs: $RUNS each, median shown (all runs in brackets)"
MSH=$(echo "$SH" | median); MSR=$(echo "$SR" | median)
MLH=$(echo "$LH" | median); MLR=$(echo "$LR" | median); MLS=$(echo "$LS" | median)
R_S=$(ratio "$MSH" "$MSR")
R_L=$(ratio "$MLH" "$MLR")
R_LS=$(ratio "$MLH" "$MLS")
echo "clone $NFILES small files:  modelhub $MSH s [$SH ], git daemon $MSR s [$SR ], ratio $R_S (target <= 1.10)"
echo "clone $SIZE-byte LFS file: modelhub $MLH s [$LH ], git daemon + nginx $MLR s [$LR ], ratio $R_L (target <= 1.10)"
echo "clone $SIZE-byte LFS file: modelhub $MLH s, git daemon + static LFS on nginx (same git-lfs client work) $MLS s [$LS ], ratio $R_LS (target <= 1.10)"
