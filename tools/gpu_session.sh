#!/bin/sh
# The GPU checks that fit one short lease on the device machine, in one command, most important first:
#   1. tests/test_kernels.c: every CUDA op against the CPU backend
#   2. the Llama, GPT-OSS and Qwen3-Next fixtures through the CUDA backend (as tests/gpu.sh checks them)
#   3. tools/bench.c (quick) beside torch's dense bf16 rate measured in the same command
#   4. tools/bench_e2e.sh quick: Llama-3.1-8B shape under 8 GB at 8K, 32K and 100K
#   5. tools/bench_moe.sh gpt-oss quick: GPT-OSS-20B shape under 8 GB at 10K and 64K
#   6. test_kernels under compute-sanitizer memcheck, the largest shapes left out (OLLM_TEST_SMALL)
# tests/gpu.sh is the full suite (racecheck, the VRAM ceiling, ...). Each step has a time limit; logs go to $OUT when
# set (the device machine's folder that comes back), else build/gpu-session; a summary is printed last.
#   sh tools/gpu_session.sh [WORKDIR]      (WORKDIR: where the random checkpoints go; default /tmp/ollm-bench)
set -u
cd "$(dirname "$0")/.." || exit 1
W=${1:-/tmp/ollm-bench}
L=${OUT:-build/gpu-session}
B=build/gpu-session
mkdir -p "$L" "$B"
export XDG_CACHE_HOME="$PWD/$B/cache" OLLM_TEST_CACHE="$PWD/$B/cache/ollm"   # one kernel cache for every program
t0=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - t0 )) s)"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
cc -O2 -g -o "$B/test_kernels" tests/test_kernels.c -lm -lpthread -ldl &&
cc -O2 -o "$B/test_fixtures" tests/test_fixtures.c -lm -lpthread -ldl &&
cc -O2 -o "$B/kbench" tools/bench.c -lm -lpthread -ldl || exit 1

step "test_kernels"
timeout 300 "$B/test_kernels" > "$L/test_kernels.log" 2>&1
grep -v '^ok ' "$L/test_kernels.log" | grep -v '^\[' | tail -n 12
step "fixtures through CUDA"
timeout 120 "$B/test_fixtures" --backend cuda tests/fixtures/llama_* > "$L/fixtures.log" 2>&1
timeout 120 "$B/test_fixtures" --backend cuda --quantile 0.5 tests/fixtures/gptoss_* tests/fixtures/qwen3next_* > "$L/fixtures-moe.log" 2>&1
grep -h '^  \|passed, ' "$L/fixtures.log" "$L/fixtures-moe.log"
step "kernel benchmark"
CEIL=$(timeout 60 python3 tools/torch_ceiling.py 2>/dev/null)
echo "torch bf16 8192^3: ${CEIL:-?} TFLOP/s"
OLLM_BENCH_CEIL_TFLOPS=${CEIL:-0} timeout 180 "$B/kbench" quick > "$L/bench.log" 2>&1
cat "$L/bench.log"
step "Llama-3.1-8B shape under 8 GB"
timeout 300 sh tools/bench_e2e.sh "$W" quick > "$L/e2e.log" 2>&1
sed -n '/== table/,$p' "$L/e2e.log"
step "GPT-OSS-20B shape under 8 GB"
timeout 240 sh tools/bench_moe.sh "$W" gpt-oss quick > "$L/moe.log" 2>&1
sed -n '/== table/,$p' "$L/moe.log"
step "memcheck (small shapes)"
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
[ -n "$CS" ] && OLLM_TEST_SMALL=1 timeout 200 "$CS" --tool memcheck --error-exitcode 99 "$B/test_kernels" > "$L/memcheck.log" 2>&1
echo "memcheck exit $?: $(grep -E 'ERROR SUMMARY' "$L/memcheck.log" 2>/dev/null | tail -n 1)"

step "summary"
echo "test_kernels:  $(tail -n 1 "$L/test_kernels.log")"
echo "fixtures:      $(tail -n 1 "$L/fixtures.log") (Llama); $(tail -n 1 "$L/fixtures-moe.log") (MoE, median position)"
echo "memcheck:      $(grep -E 'ERROR SUMMARY' "$L/memcheck.log" 2>/dev/null | tail -n 1) $(tail -n 1 "$L/memcheck.log" 2>/dev/null)"
