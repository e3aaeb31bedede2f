#!/bin/sh
# Longer libFuzzer runs of the harnesses in tests/fuzz (tests/test_fuzz.sh is the few-seconds smoke run).
#
#   tools/fuzz.sh [-t SECONDS] [-j JOBS] [HARNESS ...]
#     -t   seconds per harness (default 600)
#     -j   harnesses run at once (default: online cores); each run is one libFuzzer process
#     HARNESS  names such as fuzz_json or json (default: every tests/fuzz/fuzz_*.c)
#   environment: CC (default clang), FUZZ_FLAGS (extra libFuzzer flags, e.g. "-jobs=4 -workers=4")
#
# Needs clang with libFuzzer (Debian: apt-get install -y clang libclang-rt-14-dev). Builds with
# -O1 -g -fsanitize=fuzzer,address,undefined into build/fuzz/. Each harness reads the committed seeds and regression
# inputs in tests/fuzz/corpus/<harness>/ and writes what it learns to build/fuzz/corpus/<harness>/ (the committed
# corpus is never modified). Crashes, leaks and timeouts land in build/fuzz/artifacts/<harness>/; logs in
# build/fuzz/logs/. At the end a table gives executions and crashes per harness; the exit status is 1 if any crashed.
#
# A crash becomes a regression input:
#   build/fuzz/fuzz_X -minimize_crash=1 -max_total_time=60 -exact_artifact_path=/tmp/min build/fuzz/artifacts/fuzz_X/crash-...
#   cp /tmp/min tests/fuzz/corpus/fuzz_X/regress-<what-it-breaks>       (libFuzzer replays the corpus on every start)
# and the fix goes to tests/fuzz/FIXES.md until it lands in ollm.h. To shrink a grown corpus into new seeds:
#   build/fuzz/fuzz_X -merge=1 /tmp/merged build/fuzz/corpus/fuzz_X tests/fuzz/corpus/fuzz_X
set -u
cd "$(dirname "$0")/.." || exit 1
T=600; J=$(nproc 2>/dev/null || echo 2)
while getopts t:j: o; do case $o in t) T=$OPTARG;; j) J=$OPTARG;; *) sed -n '2,9p' "$0"; exit 2;; esac; done
shift $((OPTIND - 1))
CC=${CC:-clang}
B=build/fuzz
mkdir -p "$B/logs"
if [ $# -eq 0 ]; then set -- $(ls tests/fuzz/fuzz_*.c | sed 's|.*/||; s|\.c$||'); fi
names=""
for h in "$@"; do case $h in fuzz_*) names="$names $h";; *) names="$names fuzz_$h";; esac; done

echo "building:$names"
for h in $names; do echo "$h"; done | xargs -P "$J" -I{} sh -c \
    "$CC -g -O1 -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -o $B/{} tests/fuzz/{}.c -lm -lpthread -ldl \
     > $B/logs/{}.build 2>&1 || { echo 'build failed: {}'; cat $B/logs/{}.build; }"

echo "fuzzing $T s per harness, $J at a time"
for h in $names; do echo "$h"; done | xargs -P "$J" -I{} sh -c \
    "[ -x $B/{} ] || exit 0; mkdir -p $B/corpus/{} $B/artifacts/{}; \
     $B/{} -max_total_time=$T -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -dict=tests/fuzz/ollm.dict \
        -artifact_prefix=$B/artifacts/{}/ ${FUZZ_FLAGS:-} $B/corpus/{} tests/fuzz/corpus/{} > $B/logs/{}.log 2>&1; true"

status=0
printf '%-18s %12s %8s %8s %s\n' harness executions exec/s corpus crashes
for h in $names; do
    log=$B/logs/$h.log
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -n 1)
    [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$log" 2>/dev/null | tail -n 1 | tr -d '#')
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" 2>/dev/null | tail -n 1)
    corp=$(ls "$B/corpus/$h" 2>/dev/null | wc -l)
    crashes=$(ls "$B/artifacts/$h" 2>/dev/null | wc -l)
    [ -x "$B/$h" ] || crashes="build-failed"
    printf '%-18s %12s %8s %8s %s\n' "$h" "${runs:-0}" "${speed:-?}" "$corp" "$crashes"
    [ "$crashes" = 0 ] || status=1
done
exit $status
