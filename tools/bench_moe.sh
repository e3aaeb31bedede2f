#!/bin/sh
# GPT-OSS-20B shape on the GPU machine: a random-weight checkpoint in the hub layout (MXFP4 experts, from
# tools/configs/gpt-oss-20b.json), `ollm run` under an 8 GB VRAM budget at 10K and 64K context, and the floor measured
# in the same run: the bytes the expert cache copies to the GPU per generated token / pinned host-to-device bandwidth.
#   sh tools/bench_moe.sh [WORKDIR]        (WORKDIR: where the 13 GB checkpoint goes; default /tmp/ollm-bench)
set -u
cd "$(dirname "$0")/.." || exit 1
W=${1:-/tmp/ollm-bench}
B=build/bench
mkdir -p "$W" "$B"
cc -O2 -o "$B/ollm" examples/ollm.c -lm -lpthread -ldl || exit 1
cc -O2 -o "$B/mrc" tools/make_random_checkpoint.c -lm -lpthread -ldl || exit 1
[ -f "$W/g20/config.json" ] || "$B/mrc" tools/configs/gpt-oss-20b.json "$W/g20" 2>/dev/null

python3 tools/h2d_floor.py > "$B/floors-moe.txt" || exit 1
H2D=$(awk '/h2d_pinned/ {print $2}' "$B/floors-moe.txt")
echo "pinned H2D $H2D GB/s"
ids() { python3 -c "import sys; n=int(sys.argv[1]); print(' '.join(str((i * 7919 + 13) % 199000) for i in range(n)))" "$1" > "$2"; }
ids 10240 "$B/ids10k.txt"; ids 65536 "$B/ids64k.txt"

run() {   # name, then ollm run arguments
    name=$1; shift
    "$B/ollm" run "$@" --print-ids --ignore-eos -v > "$B/$name.out" 2> "$B/$name.log"
    echo "$name: $(grep -E 'tiers:|experts:|prompt .* tokens in|rror|budget' "$B/$name.log" | sed 's/^ollm: //' | tr '\n' ' ')"
}
echo "== the expert cache changes where experts live, not what is computed: greedy ids must be identical"
ids 64 "$B/ids64.txt"
run g20_all "$W/g20" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 30 --ctx 128
run g20_8gb "$W/g20" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 8 --ctx 128
run g20_tight "$W/g20" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 4.2 --ctx 128
for v in g20_8gb g20_tight; do
    if cmp -s "$B/g20_all.out" "$B/$v.out"; then echo "$v == every expert cached: identical ids"; else echo "$v != every expert cached: DIFFERENT ids"; fi
done
run g20_10k "$W/g20" --ids @"$B/ids10k.txt" -n 17 --backend cuda --vram-gb 8 --ctx 10300 --chunk 2048
run g20_64k "$W/g20" --ids @"$B/ids64k.txt" -n 9 --backend cuda --vram-gb 8 --ctx 65600 --chunk 2048

echo "== table (floor: GB copied to the GPU per generated token / pinned H2D $H2D GB/s)"
printf "%-10s %13s %13s %13s %12s %10s\n" run "prefill tok/s" "decode s/tok" "floor s/tok" "expert hits" "peak VRAM"
for name in g20_10k g20_64k; do
    [ -f "$B/$name.log" ] || continue
    pre=$(sed -n 's/.*prompt [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p' "$B/$name.log")
    dec=$(sed -n 's/.*(\([0-9.]*\) s\/token over.*/\1/p' "$B/$name.log")
    vram=$(sed -n 's/.*peak VRAM \([0-9.]*\) GB.*/\1/p' "$B/$name.log")
    hit=$(sed -n 's/.*(hit rate \([0-9.]*\)%).*/\1%/p' "$B/$name.log")
    gb=$(sed -n 's/.*, \([0-9.]*\) GB copied to the GPU per token.*/\1/p' "$B/$name.log")
    floor=$(python3 -c "print('%.4f' % (float('${gb:-0}' or 0) / float('$H2D')))" 2>/dev/null)
    printf "%-10s %13s %13s %13s %12s %10s\n" "$name" "${pre:-?}" "${dec:-?}" "${floor:-?}" "${hit:-?}" "${vram:-?}"
done
