#!/bin/sh
# Run every test stage after `make test` has built everything:
#   0. layers - scripts/layers.sh: includes follow the layer table of docs/architecture.md; no SQL outside src/db/
#   1. unit  - build/unit/test_X and build/asan/unit/test_X for every tests/unit/test_X.c
#   2. fuzz  - replay tests/fuzz/corpus/X/* through build/fuzz/fuzz_X for every
#              tests/fuzz/fuzz_X.c
#   3. e2e   - node --test in tests/e2e against build/asan/modelhub
#   4. e2e   - the same on PostgreSQL + S3 (moto_server) with two nodes behind nginx
#              (plain build)
# What should run is derived from the sources, not from what happens to be built: a
# missing binary counts as one failure, and so does a stage, binary or e2e file that
# ran no test. A crash (no parsable result, or a non-zero exit without a counted
# failure) counts as one failure. Skipped and todo tests are listed by name.
# Ends with exactly one line "N passed, M failed" (totals), followed by ", K skipped"
# when K > 0 tests were skipped or marked todo, and exits 1 if anything failed.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

# moto_server (the S3 API server of test_blob_s3 and the S3 e2e stage) comes with the machine
# image's Python (pyenv); find it even when a caller's PATH lacks the pyenv shims.
if ! command -v moto_server >/dev/null 2>&1; then
  for d in "${PYENV_ROOT:-}/shims" "${HOME:-/root}/.pyenv/shims" /root/.pyenv/shims; do
    if [ -x "$d/moto_server" ]; then
      PATH="$PATH:$d"
      break
    fi
  done
  export PATH
fi

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

PASS=0
FAIL=0
SKIP=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/modelhub-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

section() { printf '\n==== %s ====\n' "$1"; }
SKIPPED="$TMP/skipped.list" # "<where>: <test name>" of every skipped/todo test
: >"$SKIPPED"

# Sum the N of every line "<prefix> N test(s)" in file $2 (cmocka may print
# several groups per binary). Prints 0 and returns 1 when there is none.
sum_cmocka() {
  awk -v pat="$1" '
    index($0, pat) == 1 { s = substr($0, length(pat) + 1); n += s + 0; seen = 1 }
    END { print n + 0; exit(seen ? 0 : 1) }' "$2"
}

# ---------------------------------------------------------------- layers
section "layers (includes against docs/architecture.md)"
if sh scripts/layers.sh >"$TMP/layers.out" 2>&1; then
  PASS=$((PASS + 1))
  printf 'ok   %-34s %s\n' "scripts/layers.sh" "$(tail -n 1 "$TMP/layers.out")"
else
  FAIL=$((FAIL + 1))
  printf 'FAIL %-34s\n' "scripts/layers.sh"
  sed 's/^/    | /' "$TMP/layers.out" | tail -n 60
fi

# ---------------------------------------------------------------- unit
section "unit tests (cmocka; plain and ASan+UBSan)"
declared=0
for src in tests/unit/test_*.c; do
  [ -f "$src" ] || continue
  name=$(basename "$src" .c)
  for t in "build/unit/$name" "build/asan/unit/$name"; do
    declared=$((declared + 1))
    if [ ! -f "$t" ] || [ ! -x "$t" ]; then
      FAIL=$((FAIL + 1))
      printf 'FAIL %-34s not built (declared by %s)\n' "$t" "$src"
      continue
    fi
    out="$TMP/unit.out"
    "./$t" >"$out" 2>&1
    rc=$?
    p=$(sum_cmocka '[  PASSED  ] ' "$out") || p=0
    s=$(sum_cmocka '[  SKIPPED ] ' "$out") || s=0
    f=$(sum_cmocka '[  FAILED  ] ' "$out")
    have_summary=$?
    note=""
    if [ "$have_summary" -ne 0 ] && ! grep -q '^\[  PASSED  \] ' "$out"; then
      f=$((f + 1)); note=" (crashed: no cmocka summary, exit $rc)"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1; note=" (exit $rc after the tests, e.g. a leak report)"
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
      f=1; note=" (ran no tests)"
    fi
    # cmocka lists each skipped test as "[  SKIPPED ] name" after the count line.
    grep '^\[  SKIPPED \] ' "$out" | sed 's/^\[  SKIPPED \] //' | grep -v '^[0-9][0-9]* test' |
      sed "s|^|$t: |" >>"$SKIPPED"
    PASS=$((PASS + p)); FAIL=$((FAIL + f)); SKIP=$((SKIP + s))
    sk=""; [ "$s" -eq 0 ] || sk=", $s skipped"
    if [ "$f" -ne 0 ]; then
      printf 'FAIL %-34s %d passed, %d failed%s%s\n' "$t" "$p" "$f" "$sk" "$note"
      sed 's/^/    | /' "$out" | tail -n 60
    else
      printf 'ok   %-34s %d passed%s\n' "$t" "$p" "$sk"
    fi
  done
done
if [ "$declared" -eq 0 ]; then
  echo "FAIL no unit tests declared (tests/unit/test_*.c)"; FAIL=$((FAIL + 1))
fi

# ---------------------------------------------------------------- fuzz
section "fuzz corpus replay"
declared=0
for src in tests/fuzz/fuzz_*.c; do
  [ -f "$src" ] || continue
  declared=$((declared + 1))
  name=$(basename "$src" .c)
  name=${name#fuzz_}
  h="build/fuzz/fuzz_$name"
  if [ ! -f "$h" ] || [ ! -x "$h" ]; then
    FAIL=$((FAIL + 1))
    printf 'FAIL %-34s not built (declared by %s)\n' "$h" "$src"
    continue
  fi
  corpus="tests/fuzz/corpus/$name"
  list="$TMP/fuzz.list"
  out="$TMP/fuzz.out"
  if [ -d "$corpus" ]; then find "$corpus" -type f | sort >"$list"; else : >"$list"; fi
  if [ ! -s "$list" ]; then
    # No corpus yet: still run the harness once, on the empty input.
    : >"$TMP/empty"
    echo "$TMP/empty" >"$list"
    note=" (no corpus in $corpus; ran the empty input)"
  else
    note=""
  fi
  n=$(wc -l <"$list" | tr -d ' ')
  # libFuzzer executes each file given as an argument once and does not fuzz.
  tr '\n' '\0' <"$list" | xargs -0 "./$h" >"$out" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    PASS=$((PASS + 1))
    printf 'ok   %-34s %s input(s)%s\n' "$h" "$n" "$note"
  else
    FAIL=$((FAIL + 1))
    printf 'FAIL %-34s exit %s replaying %s input(s)%s\n' "$h" "$rc" "$n" "$note"
    grep -v '^Executed \|^Running: ' "$out" | sed 's/^/    | /' | tail -n 60
  fi
done
if [ "$declared" -eq 0 ]; then
  echo "FAIL no fuzz harnesses declared (tests/fuzz/fuzz_*.c)"; FAIL=$((FAIL + 1))
fi

# ---------------------------------------------------------------- e2e
# run_e2e TITLE TAG [VAR=VALUE ...]: node --test over tests/e2e with the extra environment.
run_e2e() {
title=$1
tag=$2
shift 2
section "$title"
BIN=${E2E_BIN:-$ROOT/build/asan/modelhub}
if ! command -v node >/dev/null 2>&1; then
  echo "FAIL node not found"; FAIL=$((FAIL + 1))
elif [ ! -x "$BIN" ]; then
  echo "FAIL $BIN not built"; FAIL=$((FAIL + 1))
elif [ ! -d tests/e2e/node_modules/@huggingface/hub ]; then
  echo "FAIL tests/e2e/node_modules missing (run: make e2e-deps)"; FAIL=$((FAIL + 1))
else
  tap="$TMP/e2e$tag.tap"
  files="$tap"
  # Human-readable progress on the console; in a file, one line per test with its file
  # (scripts/e2e-files-reporter.mjs, to check that every file ran tests) and the TAP-style
  # summary ("# pass N", …) for the counts.
  # node --test without arguments finds **/*.test.mjs (and its other name patterns).
  (cd tests/e2e && env "$@" MODELHUB_BIN="$BIN" node --test \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter="$ROOT/scripts/e2e-files-reporter.mjs" --test-reporter-destination="$tap")
  rc=$?
  p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
  f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
  c=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
  s=$(sed -n 's/^# skipped \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
  t=$(sed -n 's/^# todo \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
  s=$((${s:-0} + ${t:-0}))
  if [ -z "$p" ] || [ -z "$f" ]; then
    echo "FAIL e2e$tag: no test summary (node exited $rc)"
    PASS=$((PASS + ${p:-0})); FAIL=$((FAIL + ${f:-0} + 1))
  else
    f=$((f + ${c:-0}))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "FAIL e2e$tag: node exited $rc with no failed test counted"
      f=1
    fi
    if [ "$((p + f))" -eq 0 ]; then
      echo "FAIL e2e$tag: node ran no tests"
      f=1
    fi
    # Every file that uses node:test must have run at least one test (passed or failed):
    # one node --test does not find (named other than *.test.mjs), or one that declares
    # nothing or skips everything, is a failure, not a silent pass.
    e2e_dir=$(cd tests/e2e && pwd -P) # node reports files by their physical path
    for tf in $(cd tests/e2e && find . -name node_modules -prune -o -type f -name '*.mjs' -print | sort); do
      tf=${tf#./}
      grep -q 'node:test' "tests/e2e/$tf" || continue
      abs="$e2e_dir/$tf"
      ran=$(awk -F '\t' -v file="$abs" '$2 == file && ($1 == "pass" || $1 == "fail") { n++ }
        END { print n + 0 }' "$files" 2>/dev/null)
      if [ "${ran:-0}" -eq 0 ]; then
        echo "FAIL e2e$tag: tests/e2e/$tf ran no tests (not found by node --test, which runs *.test.mjs, or no test in it)"
        f=$((f + 1))
      fi
    done
    awk -F '\t' '$1 == "skip" || $1 == "todo" {
      sub(".*/tests/e2e/", "tests/e2e/", $2); print $2 tag " (" $1 "): " $3 }' tag="$tag" "$files" >>"$SKIPPED" 2>/dev/null
    PASS=$((PASS + p)); FAIL=$((FAIL + f)); SKIP=$((SKIP + s))
    if [ "$s" -ne 0 ]; then echo "e2e$tag: $p passed, $f failed, $s skipped/todo"
    else echo "e2e$tag: $p passed, $f failed"; fi
  fi
fi
}
run_e2e "e2e (node --test, server under ASan+LSan)" ""

# The same suite on the scale-out stores (docs/scale-out.md): every server's metadata in a
# database of its own on a throwaway PostgreSQL cluster (tests/e2e/lib/db.mjs, one cluster
# per test process), its blobs in an S3 bucket on moto_server (lib/store.mjs), and two
# `modelhub serve` nodes on one data dir behind nginx round robin (lib/server.mjs). A
# missing moto_server, PostgreSQL or nginx is a failure, not a skip.
stage2="e2e (PostgreSQL + S3, two nodes behind nginx)"
if ! command -v "${MODELHUB_E2E_MOTO:-moto_server}" >/dev/null 2>&1; then
  section "$stage2"
  echo "FAIL e2e [pg+s3, 2 nodes]: moto_server not found (the S3 server this stage runs on; docs/blob.md)"
  FAIL=$((FAIL + 1))
elif ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${PG_BIN:-}" ]; then
  section "$stage2"
  echo "FAIL e2e [pg+s3, 2 nodes]: PostgreSQL not installed (Debian postgresql; scripts/deps.sh)"
  FAIL=$((FAIL + 1))
elif ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  section "$stage2"
  echo "FAIL e2e [pg+s3, 2 nodes]: nginx not installed (scripts/deps.sh)"
  FAIL=$((FAIL + 1))
else
  # The plain build: the sanitizers had the whole suite in the stage before; this one is
  # about the engines and the nodes (and twice the servers), kept within make test's time.
  E2E_BIN="$ROOT/build/modelhub" run_e2e "$stage2" " [pg+s3, 2 nodes]" \
    MODELHUB_E2E_DB=postgres MODELHUB_E2E_STORE=s3 MODELHUB_E2E_NODES=2
fi

# ---------------------------------------------------------------- total
echo
if [ -s "$SKIPPED" ]; then
  echo "skipped or todo (not counted as passed):"
  sed 's/^/  /' "$SKIPPED"
fi
if [ "$SKIP" -ne 0 ]; then
  echo "$PASS passed, $FAIL failed, $SKIP skipped"
else
  echo "$PASS passed, $FAIL failed"
fi
[ "$FAIL" -eq 0 ]
