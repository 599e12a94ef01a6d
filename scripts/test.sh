#!/bin/sh
# Run every test stage after `make test` has built everything:
#   1. unit  - build/unit/test_* and build/asan/unit/test_* (cmocka)
#   2. fuzz  - replay tests/fuzz/corpus/NAME/* through build/fuzz/fuzz_NAME
#   3. e2e   - node --test in tests/e2e against build/asan/modelhub
# Ends with exactly one line "N passed, M failed" (totals) and exits 1 if
# anything failed or crashed. A crash (no parsable result, or a non-zero exit
# without a counted failure) counts as one failure.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

PASS=0
FAIL=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/modelhub-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

section() { printf '\n==== %s ====\n' "$1"; }

# Sum the N of every line "<prefix> N test(s)" in file $2 (cmocka may print
# several groups per binary). Prints 0 and returns 1 when there is none.
sum_cmocka() {
  awk -v pat="$1" '
    index($0, pat) == 1 { s = substr($0, length(pat) + 1); n += s + 0; seen = 1 }
    END { print n + 0; exit(seen ? 0 : 1) }' "$2"
}

# ---------------------------------------------------------------- unit
section "unit tests (cmocka; plain and ASan+UBSan)"
found=0
for t in build/unit/test_* build/asan/unit/test_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  found=1
  out="$TMP/unit.out"
  "./$t" >"$out" 2>&1
  rc=$?
  p=$(sum_cmocka '[  PASSED  ] ' "$out") || p=0
  f=$(sum_cmocka '[  FAILED  ] ' "$out")
  have_summary=$?
  note=""
  if [ "$have_summary" -ne 0 ] && ! grep -q '^\[  PASSED  \] ' "$out"; then
    f=$((f + 1)); note=" (crashed: no cmocka summary, exit $rc)"
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; note=" (exit $rc after the tests, e.g. a leak report)"
  fi
  PASS=$((PASS + p)); FAIL=$((FAIL + f))
  if [ "$f" -ne 0 ]; then
    printf 'FAIL %-34s %d passed, %d failed%s\n' "$t" "$p" "$f" "$note"
    sed 's/^/    | /' "$out" | tail -n 60
  else
    printf 'ok   %-34s %d passed\n' "$t" "$p"
  fi
done
[ "$found" -eq 1 ] || echo "(no unit test binaries found)"

# ---------------------------------------------------------------- fuzz
section "fuzz corpus replay"
found=0
for h in build/fuzz/fuzz_*; do
  [ -f "$h" ] && [ -x "$h" ] || continue
  found=1
  name=${h#build/fuzz/fuzz_}
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
[ "$found" -eq 1 ] || echo "(no fuzz harnesses built)"

# ---------------------------------------------------------------- e2e
section "e2e (node --test, server under ASan+LSan)"
BIN="$ROOT/build/asan/modelhub"
if ! command -v node >/dev/null 2>&1; then
  echo "FAIL node not found"; FAIL=$((FAIL + 1))
elif [ ! -x "$BIN" ]; then
  echo "FAIL $BIN not built"; FAIL=$((FAIL + 1))
elif [ ! -d tests/e2e/node_modules/@huggingface/hub ]; then
  echo "FAIL tests/e2e/node_modules missing (run: make e2e-deps)"; FAIL=$((FAIL + 1))
else
  tap="$TMP/e2e.tap"
  # Human-readable progress on the console, TAP in a file for the counts.
  (cd tests/e2e && MODELHUB_BIN="$BIN" node --test \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$tap")
  rc=$?
  p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
  f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
  c=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n 1)
  if [ -z "$p" ] || [ -z "$f" ]; then
    echo "FAIL e2e: no test summary (node exited $rc)"
    PASS=$((PASS + ${p:-0})); FAIL=$((FAIL + ${f:-0} + 1))
  else
    f=$((f + ${c:-0}))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "FAIL e2e: node exited $rc with no failed test counted"
      f=1
    fi
    PASS=$((PASS + p)); FAIL=$((FAIL + f))
    echo "e2e: $p passed, $f failed"
  fi
fi

# ---------------------------------------------------------------- total
echo
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
