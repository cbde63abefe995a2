#!/bin/sh
# fuzz/run.sh [seconds-per-target] -- build and run every libFuzzer target.
#
# Builds fuzz/fuzz_*.c with clang (-fsanitize=fuzzer,address,undefined; an
# UndefinedBehaviorSanitizer report stops the run like a crash) into
# build/fuzz/, then runs the targets one after another, each in a single
# process for the given number of seconds (default 20) over a fresh copy of
# its seed corpus fuzz/corpus/<target>/; new corpus entries are written to
# build/fuzz/corpus/<target>/, crash inputs to build/fuzz/artifacts/<target>/.
# Prints executions, corpus size and crashes per target; exits 1 when any
# target crashed or failed a property, 2 when the build failed.
#
# No -jobs flag: libFuzzer's default already is one process on one core
# (-jobs=1 would only add a supervising parent and move the output to
# fuzz-0.log); the targets run one after another.
#
# Environment: CLANG (default clang, else clang-14), FUZZ_TARGETS (names to
# run, default all), FUZZ_UBSAN_SUPP (an UndefinedBehaviorSanitizer
# suppressions file, to look past a known report while it is being fixed).
set -u

SECONDS_PER_TARGET=${1:-20}
case $SECONDS_PER_TARGET in
  ''|*[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/fuzz
CLANG=${CLANG:-$(command -v clang || command -v clang-14 || echo clang)}
CFLAGS="-std=c99 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
        -D_POSIX_C_SOURCE=200809L -I$ROOT/csrc/lib
        -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes"

cd "$ROOT" || exit 2
mkdir -p "$OUT/obj" "$OUT/corpus" "$OUT/artifacts" "$OUT/logs"

# ---- build: the plain-C units (csrc/lib, no Lua) once, then each target
echo "== building with $CLANG into build/fuzz/"
objs=""
for f in csrc/lib/*.c; do
  b=$(basename "$f" .c)
  o=$OUT/obj/$b.o
  # shellcheck disable=SC2086
  $CLANG $CFLAGS -fsanitize=fuzzer-no-link -c "$f" -o "$o" || exit 2
  objs="$objs $o"
done
targets=${FUZZ_TARGETS:-$(for f in fuzz/fuzz_*.c; do basename "$f" .c; done)}
for t in $targets; do
  # shellcheck disable=SC2086
  $CLANG $CFLAGS "fuzz/$t.c" $objs -lcrypto -o "$OUT/$t" || exit 2
done

# ---- run
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${FUZZ_UBSAN_SUPP:+:suppressions=$FUZZ_UBSAN_SUPP}"
export ASAN_OPTIONS UBSAN_OPTIONS

failed=0
summary=""
for t in $targets; do
  corpus=$OUT/corpus/$t
  art=$OUT/artifacts/$t
  log=$OUT/logs/$t.log
  rm -rf "$corpus" "$art"
  mkdir -p "$corpus" "$art"
  [ -d "fuzz/corpus/$t" ] && cp fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
  seeds=$(find "$corpus" -type f | wc -l)
  extra=""
  [ -f "fuzz/$t.dict" ] && extra="-dict=fuzz/$t.dict"
  [ "$t" = fuzz_cookie ] && extra="$extra -max_len=6000"
  echo "== $t: ${SECONDS_PER_TARGET}s from $seeds seeds"
  # shellcheck disable=SC2086
  "$OUT/$t" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=1024 -use_value_profile=1 -artifact_prefix="$art/" $extra \
    "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  size=$(find "$corpus" -type f | wc -l)
  crashes=$(find "$art" -type f | sort | sed "s|^$ROOT/||" | tr '\n' ' ')
  if [ "$rc" -ne 0 ] || [ -n "$crashes" ]; then
    failed=1
    grep -E 'PROPERTY FAILED|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error' \
      "$log" | head -n 5 | sed 's/^/   /'
    [ -n "$crashes" ] || crashes="exit status $rc, see build/fuzz/logs/$t.log"
  else
    crashes=0
  fi
  summary="$summary$(printf '%-12s %12s %8s   %s' "$t" "${execs:-?}" "$size" "$crashes")
"
done

echo
printf '%-12s %12s %8s   %s\n' target executions corpus crashes
printf '%s' "$summary"
if [ "$failed" -ne 0 ]; then
  echo "FAILED: a target crashed or failed a property (logs in build/fuzz/logs/)"
  exit 1
fi
echo "ok: no crash, no property failure"
