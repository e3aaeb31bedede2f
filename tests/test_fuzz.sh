#!/bin/sh
# Smoke run of the libFuzzer harnesses in tests/fuzz: builds each one (-O0, for a quick build; tools/fuzz.sh builds
# -O1 for long runs) and runs it a few seconds on its committed corpus (seeds and regression inputs, replayed first).
# One check per harness: it built and ran without a crash. Ends "N passed, M failed". Installs nothing: without a
# clang whose -fsanitize=fuzzer links, every harness counts as passed with "skipped: no libFuzzer".
#   FUZZ_SECONDS (default 3): seconds per harness.   FUZZ_JOBS (default 2): harnesses built and run at once.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${FUZZ_CC:-clang}
SECS=${FUZZ_SECONDS:-3}
JOBS=${FUZZ_JOBS:-2}
B=build/fuzz-smoke
mkdir -p "$B"
harnesses=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/||; s|\.c$||')
n=$(echo "$harnesses" | wc -w)

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$B/probe.c"
if ! command -v "$CC" >/dev/null 2>&1 ||
   ! "$CC" -fsanitize=fuzzer,address,undefined -o "$B/probe" "$B/probe.c" >"$B/probe.log" 2>&1; then
    echo "skipped: no libFuzzer ($CC -fsanitize=fuzzer does not link; Debian: apt-get install clang libclang-rt-14-dev)"
    echo "$n passed, 0 failed"
    exit 0
fi

# build and run: one line per harness into $B/<h>.result
echo "$harnesses" | xargs -P "$JOBS" -I{} sh -c '
    B='"$B"'; h={}; rm -f $B/$h.result $B/$h.art-*
    if ! '"$CC"' -O0 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $B/$h tests/fuzz/$h.c \
         -lm -lpthread -ldl > $B/$h.build 2>&1; then
        echo "FAIL build" > $B/$h.result; exit 0; fi
    mkdir -p $B/work-$h
    $B/$h -max_total_time='"$SECS"' -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -dict=tests/fuzz/ollm.dict \
        -artifact_prefix=$B/$h.art- $B/work-$h tests/fuzz/corpus/$h > $B/$h.log 2>&1
    rc=$?; rm -rf $B/work-$h
    runs=$(sed -n "s/^stat::number_of_executed_units: *//p" $B/$h.log | tail -n 1)
    if [ $rc -eq 0 ]; then echo "ok ${runs:-?}" > $B/$h.result; else echo "FAIL rc=$rc ${runs:-?}" > $B/$h.result; fi'

pass=0; fail=0
for h in $harnesses; do
    res=$(cat "$B/$h.result" 2>/dev/null || echo "FAIL no result")
    case $res in
    ok*) pass=$((pass + 1)); echo "ok $h: ${res#ok } executions in ${SECS} s, no crash" ;;
    "FAIL build"*) fail=$((fail + 1)); echo "FAIL $h: build failed"; tail -n 20 "$B/$h.build" ;;
    *) fail=$((fail + 1)); art=$(ls "$B/$h".art-* 2>/dev/null | head -n 1)
       echo "FAIL $h: crash after ${res##* } executions${art:+ (input: $art)}"
       grep -E "ERROR: |SUMMARY: |FUZZ_CHECK|runtime error" "$B/$h.log" | head -n 5 ;;
    esac
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
