#!/bin/sh
# End-to-end benchmark on the GPU machine: random-weight checkpoints of real shapes (tools/make_random_checkpoint.c),
# `ollm run` at several prompt lengths under an 8 GB VRAM budget, and the floors measured in the same run.
#   sh tools/bench_e2e.sh [WORKDIR] [quick] (WORKDIR: where the 2.5 GB and 16 GB checkpoints go; default /tmp/ollm-bench;
#                                            quick: only the 8B rows at 8K (chunk 4096), 32K and 100K)
# Prints one line per run and a table last. Needs python3 with torch for the bandwidth floors (pinned and pageable
# host-to-device copies); page-cache reads are measured with dd.
set -u
cd "$(dirname "$0")/.." || exit 1
W=${1:-/tmp/ollm-bench}
QUICK=${2:-}
B=build/bench
mkdir -p "$W" "$B"
cc -O2 -o "$B/ollm" examples/ollm.c -lm -lpthread -ldl || exit 1
cc -O2 -o "$B/mrc" tools/make_random_checkpoint.c -lm -lpthread -ldl || exit 1
[ -n "$QUICK" ] || [ -f "$W/l1b/config.json" ] || "$B/mrc" tools/configs/llama-3.2-1b.json "$W/l1b" 2>/dev/null
[ -f "$W/l8b/config.json" ] || "$B/mrc" tools/configs/llama-3.1-8b.json "$W/l8b" 2>/dev/null

echo "== floors"
python3 tools/h2d_floor.py > "$B/floors.txt" || exit 1
cat "$B/floors.txt"
H2D=$(awk '/h2d_pinned/ {print $2}' "$B/floors.txt")
cat "$W"/l8b/model-0000*.safetensors > /dev/null   # warm the page cache
t0=$(date +%s.%N); cat "$W"/l8b/model-00001-of-*.safetensors > /dev/null; t1=$(date +%s.%N)
PC=$(python3 -c "import os; print('%.2f' % (os.path.getsize('$(ls "$W"/l8b/model-00001-of-*.safetensors)') / ($t1 - $t0) / 1e9))")
echo "page_cache_read $PC GB/s"

ids() { python3 -c "import sys; n=int(sys.argv[1]); print(' '.join(str((i * 7919 + 13) % 128000) for i in range(n)))" "$1" > "$2"; }
ids 64 "$B/ids64.txt"; ids 8192 "$B/ids8k.txt"; ids 32768 "$B/ids32k.txt"; ids 100000 "$B/ids100k.txt"

run() {   # name, then ollm run arguments; the stats line goes to the log
    name=$1; shift
    "$B/ollm" run "$@" --print-ids --ignore-eos -v > "$B/$name.out" 2> "$B/$name.log"
    echo "$name: $(grep -E 'tiers:|prompt .* tokens in|streamed layers:|KV cache of|rror|budget' "$B/$name.log" | sed 's/^ollm: //' | tr '\n' ' ')"
}

if [ -z "$QUICK" ]; then
echo "== Llama-3.2-1B shape: resident vs streamed from RAM (greedy ids must be identical)"
run 1b_resident "$W/l1b" --ids @"$B/ids64.txt" -n 16 --backend cuda --ctx 128
run 1b_streamed "$W/l1b" --ids @"$B/ids64.txt" -n 16 --backend cuda --ctx 128 --vram-gb 1.4
if cmp -s "$B/1b_resident.out" "$B/1b_streamed.out"; then echo "1B streamed == resident: identical ids"; else echo "1B streamed != resident: DIFFERENT ids"; fi
run 1b_kvhost "$W/l1b" --ids @"$B/ids64.txt" -n 16 --backend cuda --ctx 128 --vram-gb 1.4 --kv-host
if cmp -s "$B/1b_resident.out" "$B/1b_kvhost.out"; then echo "1B KV in host RAM == resident: identical ids"; else echo "1B KV in host RAM != resident: DIFFERENT ids"; fi

fi
echo "== Llama-3.1-8B shape, 8 GB VRAM budget, RAM tier"
[ -n "$QUICK" ] || run 8b_8k_ram "$W/l8b" --ids @"$B/ids8k.txt" -n 6 --backend cuda --vram-gb 8 --ctx 8256 --chunk 2048
run 8b_8k_ram_c4k "$W/l8b" --ids @"$B/ids8k.txt" -n 6 --backend cuda --vram-gb 8 --ctx 8256 --chunk 4096
[ -n "$QUICK" ] || run 8b_8k_ram_c8k "$W/l8b" --ids @"$B/ids8k.txt" -n 6 --backend cuda --vram-gb 8 --ctx 8256 --chunk 8192
run 8b_32k_ram "$W/l8b" --ids @"$B/ids32k.txt" -n 4 --backend cuda --vram-gb 8 --ctx 32832 --chunk 2048
run 8b_100k_ram "$W/l8b" --ids @"$B/ids100k.txt" -n 4 --backend cuda --vram-gb 8 --ctx 100064 --chunk 4096
if [ -z "$QUICK" ]; then
echo "== Llama-3.1-8B shape, 8 GB VRAM budget, disk only (page cache dropped)"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && echo "(page cache dropped)"
run 8b_8k_disk "$W/l8b" --ids @"$B/ids8k.txt" -n 3 --backend cuda --vram-gb 8 --ctx 8256 --chunk 2048 --ram-gb 0.001
fi

echo "== table (floors: bytes streamed per token / measured bandwidth: pinned H2D $H2D GB/s)"
printf "%-12s %12s %14s %12s %10s\n" run "prefill tok/s" "decode s/tok" "floor s/tok" "peak VRAM"
for name in 1b_resident 1b_streamed 1b_kvhost 8b_8k_ram 8b_8k_ram_c4k 8b_8k_ram_c8k 8b_32k_ram 8b_100k_ram 8b_8k_disk; do
    [ -f "$B/$name.log" ] || continue
    pre=$(sed -n 's/.*prompt [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p' "$B/$name.log")
    dec=$(sed -n 's/.*(\([0-9.]*\) s\/token over.*/\1/p' "$B/$name.log")
    vram=$(sed -n 's/.*peak VRAM \([0-9.]*\) GB.*/\1/p' "$B/$name.log")
    slot=$(sed -n 's/.*through [0-9]* slots of \([0-9.]*\) GB.*/\1/p' "$B/$name.log")
    nstr=$(sed -n 's/.*resident (.*), \([0-9]*\) streamed.*/\1/p' "$B/$name.log")
    floor=$(python3 -c "print('%.3f' % (float('${slot:-0}' or 0) * int('${nstr:-0}' or 0) / float('$H2D')))" 2>/dev/null)
    printf "%-12s %12s %14s %12s %10s\n" "$name" "${pre:-?}" "${dec:-?}" "${floor:-?}" "${vram:-?}"
done
