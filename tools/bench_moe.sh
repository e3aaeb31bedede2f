#!/bin/sh
# The MoE families on the GPU machine, from random-weight checkpoints in the hub layout (tools/make_random_checkpoint.c),
# `ollm run` under an 8 GB VRAM budget, and the floor measured in the same run: the bytes the expert cache copies to
# the GPU per generated token / pinned host-to-device bandwidth.
#   GPT-OSS-20B shape (MXFP4 experts, tools/configs/gpt-oss-20b.json, 13 GB): 10K and 64K context.
#   Qwen3-Next-80B-A3B shape (tools/configs/qwen3-next-80b-a3b.json) cut to its first 8 of 48 layers (26 GB: the
#   160 GB of all 48 do not fit the machine's disk); 8K and 50K context, and 8K with the page cache dropped and no
#   RAM tier (experts read from the checkpoint when picked).
#   sh tools/bench_moe.sh [WORKDIR] [gpt-oss|qwen3-next|disk|all] [quick]   (WORKDIR: where the checkpoints go;
#   /tmp/ollm-bench; quick: the benchmark rows without the greedy-identity runs and, for Qwen3-Next, the disk rows;
#   disk: only Qwen3-Next's disk rows, with quick not its prefill from disk)
#   BENCH_TRACE=1: also 16 traced tokens at 10K / 8K (OLLM_PROFILE=FILE) and tools/trace_report.py's summary of them
set -u
cd "$(dirname "$0")/.." || exit 1
W=${1:-/tmp/ollm-bench}
WHAT=${2:-all}
QUICK=${3:-}
G=; Q=; D=   # which parts run: GPT-OSS, Qwen3-Next from RAM, Qwen3-Next from disk
case $WHAT in gpt-oss) G=1 ;; qwen3-next) Q=1 ;; disk) D=1 ;; *) G=1; Q=1 ;; esac
[ -n "$Q" ] && [ -z "$QUICK" ] && D=1
B=build/bench
QL=8   # Qwen3-Next layers written
mkdir -p "$W" "$B"
cc -O2 -o "$B/ollm" examples/ollm.c -lm -lpthread -ldl || exit 1
cc -O2 -o "$B/mrc" tools/make_random_checkpoint.c -lm -lpthread -ldl || exit 1
if [ -n "$G" ] && [ ! -f "$W/g20/config.json" ]; then "$B/mrc" tools/configs/gpt-oss-20b.json "$W/g20" 2>/dev/null; fi
if [ -n "$Q$D" ] && [ ! -f "$W/qn/config.json" ]; then
    python3 -c "import json; c = json.load(open('tools/configs/qwen3-next-80b-a3b.json')); c['num_hidden_layers'] = $QL; json.dump(c, open('$W/qn.json', 'w'), indent=1)"
    "$B/mrc" "$W/qn.json" "$W/qn" 2>/dev/null
fi

python3 tools/h2d_floor.py > "$B/floors-moe.txt" || exit 1
H2D=$(awk '/h2d_pinned/ {print $2}' "$B/floors-moe.txt")
echo "pinned H2D $H2D GB/s"
ids() { python3 -c "import sys; n=int(sys.argv[1]); print(' '.join(str((i * 7919 + 13) % 151000) for i in range(n)))" "$1" > "$2"; }
ids 64 "$B/ids64.txt"

run() {   # name, then ollm run arguments
    name=$1; shift
    "$B/ollm" run "$@" --print-ids --ignore-eos -v > "$B/$name.out" 2> "$B/$name.log"
    echo "$name: $(grep -E 'tiers:|experts:|prompt .* tokens in|rror|budget' "$B/$name.log" | sed 's/^ollm: //' | tr '\n' ' ')"
}
same() {   # reference run, then runs that must give identical greedy ids
    ref=$1; shift
    for v in "$@"; do
        if cmp -s "$B/$ref.out" "$B/$v.out"; then echo "$v == $ref: identical ids"; else echo "$v != $ref: DIFFERENT ids"; fi
    done
}
echo "== the expert cache changes where experts live, not what is computed: greedy ids must be identical"
if [ -n "$G" ] && [ -z "$QUICK" ]; then
    run g20_all "$W/g20" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 30 --ctx 128
    run g20_8gb "$W/g20" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 8 --ctx 128
    run g20_tight "$W/g20" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 4.2 --ctx 128
    same g20_all g20_8gb g20_tight
fi
if [ -n "$G" ]; then
    ids 10240 "$B/ids10k.txt"; ids 65536 "$B/ids64k.txt"
    run g20_10k "$W/g20" --ids @"$B/ids10k.txt" -n 65 --backend cuda --vram-gb 8 --ctx 10400 --chunk 2048
    run g20_10k_ng "$W/g20" --ids @"$B/ids10k.txt" -n 65 --backend cuda --vram-gb 8 --ctx 10400 --chunk 2048 --no-guess
    run g20_10k_rg "$W/g20" --ids @"$B/ids10k.txt" -n 65 --backend cuda --vram-gb 8 --ctx 10400 --chunk 2048 --refine-guess
    run g20_64k "$W/g20" --ids @"$B/ids64k.txt" -n 33 --backend cuda --vram-gb 8 --ctx 65600 --chunk 2048
fi
if [ -n "$D" ]; then   # (set by qwen3-next without quick too)
    run qn_all "$W/qn" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 40 --ctx 128
    run qn_8gb "$W/qn" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 8 --ctx 128
    run qn_tight "$W/qn" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 3 --ctx 128
    same qn_all qn_8gb qn_tight
fi
if [ -n "$Q" ]; then
    ids 8192 "$B/ids8k.txt"; ids 50000 "$B/ids50k.txt"
    run qn_8k "$W/qn" --ids @"$B/ids8k.txt" -n 65 --backend cuda --vram-gb 8 --ctx 8300 --chunk 2048
    run qn_8k_ng "$W/qn" --ids @"$B/ids8k.txt" -n 65 --backend cuda --vram-gb 8 --ctx 8300 --chunk 2048 --no-guess
    run qn_8k_rg "$W/qn" --ids @"$B/ids8k.txt" -n 65 --backend cuda --vram-gb 8 --ctx 8300 --chunk 2048 --refine-guess
    run qn_50k "$W/qn" --ids @"$B/ids50k.txt" -n 33 --backend cuda --vram-gb 8 --ctx 50100 --chunk 2048
fi
if [ -n "$D" ]; then
    echo "== no RAM tier, page cache dropped: experts read from the checkpoint when picked (a prefill; then a decode"
    echo "   resumed from a session folder so that its reads are not the prefill's page cache)"
    cc -O2 -o "$B/disk_read" tools/disk_read.c -lpthread || exit 1
    # the floor: the disk read as the library reads it (tools/disk_read.c: O_DIRECT, 8 threads, 1 MiB requests),
    # three times at places no run has read yet, the best of them; one reader with 16 MiB requests for comparison
    set -- "$W"/qn/model-0000*.safetensors
    DISK1=$("$B/disk_read" "$1" 1 16384 1024 3000 | awk '{print $4}')
    echo "disk_read_direct $DISK1 GB/s (one reader, 16 MiB requests)"
    DISKS=$(for f in "$2" "$3" "$4"; do "$B/disk_read" "$f" 8 1024 1024 3000 | awk '{print $4}'; done | tr '\n' ' ')
    DISK=$(echo "$DISKS" | tr ' ' '\n' | sort -g | tail -n 1)
    echo "disk_read_direct_8 $DISKS GB/s (8 readers, 1 MiB requests, three places): the disk rows' floor uses $DISK"
    ids 8192 "$B/ids8k.txt"
    if [ -z "$QUICK" ]; then
        sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
        run qn_8k_diskp "$W/qn" --ids @"$B/ids8k.txt" -n 1 --backend cuda --vram-gb 8 --ctx 8300 --chunk 2048 --ram-gb 0.001
    fi
    rm -rf "$W/qs"
    run qn_fill "$W/qn" --ids @"$B/ids8k.txt" -n 0 --session "$W/qs" --backend cuda --vram-gb 8 --ctx 8300 --chunk 2048
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
    run qn_8k_disk "$W/qn" --session "$W/qs" -n 17 --backend cuda --vram-gb 8 --ctx 8300 --ram-gb 0.001
    run qn_disk_ids "$W/qn" --ids @"$B/ids64.txt" -n 24 --backend cuda --vram-gb 3 --ctx 128 --ram-gb 0.001
    same qn_all qn_disk_ids
fi

echo "== table (floor: GB of picked experts copied to the GPU per generated token / pinned H2D $H2D GB/s, or for *_disk"
echo "   runs / the disk ${DISK:-?} GB/s; copied: all bytes copied, guesses of the next layer's experts included; *_ng: --no-guess; *_rg: --refine-guess)"
printf "%-11s %13s %13s %13s %12s %10s %10s\n" run "prefill tok/s" "decode s/tok" "floor s/tok" "expert hits" "GB copied" "peak VRAM"
for name in g20_10k g20_10k_ng g20_10k_rg g20_64k qn_8k qn_8k_ng qn_8k_rg qn_50k qn_8k_diskp qn_8k_disk; do
    [ -f "$B/$name.log" ] || continue
    pre=$(sed -n 's/.*prompt [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p' "$B/$name.log")
    dec=$(sed -n 's/.*(\([0-9.]*\) s\/token over.*/\1/p' "$B/$name.log")
    vram=$(sed -n 's/.*peak VRAM \([0-9.]*\) GB.*/\1/p' "$B/$name.log")
    hit=$(sed -n 's/.*(hit rate \([0-9.]*\)%).*/\1%/p' "$B/$name.log")
    cp=$(sed -n 's/.*, \([0-9.]*\) GB copied to the GPU per token.*/\1/p' "$B/$name.log")
    gb=$(sed -n 's/.*, \([0-9.]*\) GB of it for picked experts.*/\1/p' "$B/$name.log")
    bw=$H2D; case $name in *disk*) bw=${DISK:-$H2D} ;; esac
    floor=$(python3 -c "print('%.4f' % (float('${gb:-0}' or 0) / float('$bw')))" 2>/dev/null)
    printf "%-11s %13s %13s %13s %12s %10s %10s\n" "$name" "${pre:-?}" "${dec:-?}" "${floor:-?}" "${hit:-?}" "${cp:-?}" "${vram:-?}"
done
echo "== guesses of the next layer's experts (generation)"
for name in g20_10k g20_10k_rg g20_64k qn_8k qn_8k_rg qn_50k; do
    [ -f "$B/$name.log" ] || continue
    echo "$name: $(sed -n 's/.*(guessed ahead: \(.*\)).*/\1/p' "$B/$name.log")"
done
echo "== the host's side of a generated token (ollm run -v): kernel launches, and waits for the GPU"
for name in g20_10k g20_10k_ng g20_10k_rg g20_64k qn_8k qn_8k_ng qn_8k_rg qn_50k qn_8k_disk; do
    [ -f "$B/$name.log" ] || continue
    echo "$name: $(sed -n 's/^ollm: per generated token: //p' "$B/$name.log")"
done
if [ "${BENCH_TRACE:-0}" = 1 ]; then
    echo "== traced tokens (OLLM_PROFILE=FILE; the events slow a token down: compare traces with traces)"
    vocab() { python3 -c "import json, sys; print(json.load(open(sys.argv[1] + '/config.json'))['vocab_size'])" "$1"; }
    if [ -n "$G" ]; then
        OLLM_PROFILE="$B/g20_10k.trace" run g20_10k_tr "$W/g20" --ids @"$B/ids10k.txt" -n 17 --backend cuda --vram-gb 8 --ctx 10400 --chunk 2048 > /dev/null
        python3 tools/trace_report.py "$B/g20_10k.trace" "$(vocab "$W/g20")" | sed 's/^/g20_10k: /'
    fi
    if [ -n "$Q" ]; then
        OLLM_PROFILE="$B/qn_8k.trace" run qn_8k_tr "$W/qn" --ids @"$B/ids8k.txt" -n 17 --backend cuda --vram-gb 8 --ctx 8300 --chunk 2048 > /dev/null
        python3 tools/trace_report.py "$B/qn_8k.trace" "$(vocab "$W/qn")" | sed 's/^/qn_8k: /'
    fi
fi
