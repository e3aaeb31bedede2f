#!/bin/sh
# tests/gpu.sh: the GPU tests, for a machine with an NVIDIA GPU and driver (CI has none: tests/run.sh covers the rest).
#   1. test_kernels: every CUDA op against the CPU backend (odd shapes, long attention, GQA, windows, sinks)
#   2. the same under compute-sanitizer memcheck, and (smaller shapes) racecheck (skipped without compute-sanitizer)
#   3. a sticky device error (OLLM_TEST_STICKY=1: an illegal address, then every later call fails the same way)
#   4. the Llama fixtures through the CUDA backend (tests/test_fixtures.c --backend cuda tests/fixtures/llama_*:
#      logits within 2e-2 x max |logit|, greedy tokens identical), and `ollm logits --backend cuda` on each
#   5. the VRAM ceiling: streamed models and host-RAM KV caches stay within the budget as cuMemGetInfo sees it
#   6. `ollm kernels --arch` of this GPU, twice (the second from the cache)
# Ends with "N passed, M failed"; exit status 1 on any failure. Logs under build/gpu. Run from anywhere.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
B=build/gpu
mkdir -p "$B"
export OLLM_TEST_CACHE="${OLLM_TEST_CACHE:-$PWD/$B/kernel-cache}"
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tally() {   # adds a log's last line "N passed, M failed"
    line=$(tail -n 1 "$1")
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then bad "$2: no summary line"; return; fi
    pass=$((pass + p)); fail=$((fail + f)); echo "     $2: $line"
}

if $CC -O2 -g -Wall -Wextra -o "$B/test_kernels" tests/test_kernels.c -lm -lpthread -ldl; then ok "build test_kernels"; else bad "build test_kernels"; fi
if $CC -O2 -Wall -Wextra -o "$B/test_fixtures" tests/test_fixtures.c -lm -lpthread -ldl; then ok "build test_fixtures"; else bad "build test_fixtures"; fi
if $CC -O2 -Wall -Wextra -o "$B/ollm" examples/ollm.c -lm -lpthread -ldl; then ok "build ollm"; else bad "build ollm"; fi

echo "== test_kernels"
"$B/test_kernels" > "$B/test_kernels.log" 2>&1
grep -v '^ok ' "$B/test_kernels.log" | tail -n 25
tally "$B/test_kernels.log" test_kernels
if grep -q '^skipped: no CUDA driver' "$B/test_kernels.log"; then
    echo "no CUDA driver here: nothing more to run"; echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?
fi

echo "== compute-sanitizer memcheck test_kernels"
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$CS" ]; then
    timeout "${OLLM_MEMCHECK_TIMEOUT:-400}" "$CS" --tool memcheck --error-exitcode 99 "$B/test_kernels" > "$B/memcheck.log" 2>&1
    rc=$?
    grep -E 'ERROR SUMMARY|Invalid|passed, ' "$B/memcheck.log" | tail -n 8
    if [ $rc -eq 0 ] && grep -q 'ERROR SUMMARY: 0 errors' "$B/memcheck.log"; then ok "memcheck: 0 errors"; else bad "memcheck (exit $rc, see $B/memcheck.log)"; fi
else
    echo "(compute-sanitizer not found: skipped)"
fi

echo "== compute-sanitizer racecheck test_kernels (OLLM_TEST_SMALL: the largest shapes left out)"
if [ -n "$CS" ]; then
    OLLM_TEST_SMALL=1 timeout "${OLLM_RACECHECK_TIMEOUT:-300}" "$CS" --tool racecheck --error-exitcode 99 "$B/test_kernels" > "$B/racecheck.log" 2>&1
    rc=$?
    grep -E 'RACECHECK SUMMARY|ERROR SUMMARY|hazard|passed, ' "$B/racecheck.log" | tail -n 8
    if [ $rc -eq 0 ] && grep -q 'passed, 0 failed' "$B/racecheck.log"; then ok "racecheck: no hazards"; else bad "racecheck (exit $rc, see $B/racecheck.log)"; fi
fi

echo "== sticky device error"
OLLM_TEST_STICKY=1 "$B/test_kernels" > "$B/sticky.log" 2>&1
grep -E 'sticky|later work' "$B/sticky.log"
tally "$B/sticky.log" test_kernels+sticky

echo "== fixtures, CUDA backend (Llama; then the MoE families GPT-OSS and Qwen3-Next)"
"$B/test_fixtures" --backend cuda tests/fixtures/llama_* > "$B/fixtures.log" 2>&1
grep -v '^ok ' "$B/fixtures.log" | tail -n 12
tally "$B/fixtures.log" test_fixtures-cuda
# GPT-OSS and Qwen3-Next: the fixtures' random routers have top-k gaps down to 0.002 (tools/make_gptoss_fixtures.py),
# the size of the bf16 noise of the GPU path (bf16 KV cache and GEMM inputs): some tokens pick another expert than the
# float32 reference, their logits jump, and later positions that attend to them move too. So the check is on the
# median position's error (a wrong kernel moves every position) and on the greedy continuation, which must be
# identical; the maximum is printed. The MoE ops and the DeltaNet ops are checked one by one in test_kernels.
"$B/test_fixtures" --backend cuda --quantile 0.5 tests/fixtures/gptoss_* tests/fixtures/qwen3next_* > "$B/fixtures-moe.log" 2>&1
grep -v '^ok ' "$B/fixtures-moe.log" | tail -n 12
tally "$B/fixtures-moe.log" test_fixtures-cuda-moe
echo "   (again with the expert cache holding a quarter of the experts: evictions, uploads, guesses of the next layer's)"
"$B/test_fixtures" --backend cuda --quantile 0.5 --tight-experts tests/fixtures/gptoss_* tests/fixtures/qwen3next_* > "$B/fixtures-tight.log" 2>&1
grep -v '^ok ' "$B/fixtures-tight.log" | tail -n 16
tally "$B/fixtures-tight.log" test_fixtures-cuda-moe-tight
for d in tests/fixtures/llama_*; do
    [ -f "$d/reference.safetensors" ] || continue
    ids=$(seq -s, 1 37)
    if "$B/ollm" logits "$d" --ids "$ids" --out "$B/$(basename "$d").logits.safetensors" --backend cuda > "$B/logits.log" 2>&1 &&
       [ -s "$B/$(basename "$d").logits.safetensors" ]; then ok "ollm logits $d --backend cuda"; else bad "ollm logits $d --backend cuda: $(tail -n 2 "$B/logits.log")"; fi
done

echo "== the VRAM ceiling against cuMemGetInfo"
if $CC -O2 -Wall -Wextra -o "$B/test_vram" tests/test_vram.c -lm -lpthread -ldl; then ok "build test_vram"; else bad "build test_vram"; fi
# a random Llama-3.2-1B-shaped checkpoint (2.5 GB) streams its layers under a 1.4 GB budget
$CC -O2 -o "$B/mrc" tools/make_random_checkpoint.c -lm -lpthread -ldl && [ -f "$B/l1b/config.json" ] ||
    "$B/mrc" tools/configs/llama-3.2-1b.json "$B/l1b" > /dev/null 2>&1
"$B/test_vram" "$B/l1b" 1400000000 > "$B/test_vram.log" 2>&1
grep -v '^ok ' "$B/test_vram.log" | tail -n 10
tally "$B/test_vram.log" test_vram

echo "== ollm kernels"
arch=$(grep -o 'sm_[0-9]*' "$B/test_kernels.log" | head -n 1)
rm -rf "$B/kc2"
if out=$("$B/ollm" kernels --arch "$arch" --cache "$B/kc2" 2>&1) && echo "$out" | grep -q "kernels compiled for $arch"; then ok "ollm kernels --arch $arch: $out"; else bad "ollm kernels --arch $arch: $out"; fi
if out=$("$B/ollm" kernels --arch "$arch" --cache "$B/kc2" 2>&1) && ls "$B"/kc2/ollm-*-"$arch".cubin > /dev/null 2>&1; then ok "ollm kernels again (cached): $out"; else bad "ollm kernels cached: $out"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
