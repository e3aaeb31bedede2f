#!/bin/sh
# tools/trace_report.py on a made-up OLLM_PROFILE=FILE trace whose figures are known: a prefill chunk, then two
# decoded tokens of 1000 us each (vocab 8: logits read backs of 32 bytes), each with a router read back and a copy
# stream gap of 390 us that ends 20 us after that router's result, and 200 us idle across the tokens' boundary
# (so 490 us a token); the same with each token ending in the device's argmax and its 8-byte read back. Then
# tools/disk_read.c on a file of 4 MB: a rate (or, where the file system refuses O_DIRECT, that reason), a file
# shorter than asked and bad arguments refused. Ends "N passed, M failed".
set -u
cd "$(dirname "$0")/.." || exit 1
B=build/tools-test
mkdir -p "$B"
pass=0; fail=0
check() { if eval "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $2"; fi; }
cat > "$B/t.trace" <<'TR'
0 gemm_wgmma 0.0 90.0 0
0 read back 90.0 10.0 32
1 upload (copy stream) 100.0 200.0 1000
0 gemv_bf16_1 100.0 500.0 0
0 read back 660.0 10.0 16
1 upload (copy stream) 690.0 210.0 2000
0 gemv_bf16_1 700.0 390.0 0
0 read back 1090.0 10.0 32
1 upload (copy stream) 1100.0 200.0 1000
0 gemv_bf16_1 1100.0 500.0 0
0 read back 1660.0 10.0 16
1 upload (copy stream) 1690.0 210.0 2000
0 gemv_bf16_1 1700.0 390.0 0
0 read back 2090.0 10.0 32
TR
if command -v python3 > /dev/null 2>&1; then
    python3 tools/trace_report.py "$B/t.trace" 8 > "$B/report.txt" 2>&1
    check "grep -q '^2 decoded tokens: 1000 us each; compute stream busy 910 us, copy stream busy 410 us (0.0 MB)' $B/report.txt" \
          "per-token busy times"
    check "grep -q 'copy stream idle 490 us a token; .* by layer: 0: 390 us' $B/report.txt" "copy stream gaps by layer"
    check "grep -q 'gemv_bf16_1 .* 2.0 ops .* 890.0 us' $B/report.txt" "kernels per token"
    # the same tokens decoded greedily on the device: each ends with an argmax kernel and a read back of its 8 bytes
    awk '$2 == "read" && $NF == 32 { printf "0 argmax %.1f 5.0 0\n0 read back %.1f 5.0 8\n", $4, $4 + 5; next } { print }' \
        "$B/t.trace" > "$B/a.trace"
    python3 tools/trace_report.py "$B/a.trace" 8 > "$B/argmax.txt" 2>&1
    check "grep -q '^2 decoded tokens: 1000 us each; compute stream busy 910 us, copy stream busy 410 us (0.0 MB)' $B/argmax.txt" \
          "tokens that end with the device's argmax"
    check "grep -q 'copy stream idle 490 us a token; .* by layer: 0: 390 us' $B/argmax.txt" "the argmax's read back is no router's"
    python3 tools/trace_report.py "$B/t.trace" 9 > "$B/none.txt" 2>&1
    check "grep -q 'no decoded tokens' $B/none.txt" "a wrong vocabulary finds no tokens and says so"
else
    echo "skipped: no python3"
fi
CC=${CC:-cc}
if $CC -O2 -o "$B/disk_read" tools/disk_read.c -lpthread; then
    dd if=/dev/zero of="$B/4mb" bs=1048576 count=4 2> /dev/null
    out=$("$B/disk_read" "$B/4mb" 2 64 4 2>&1)
    check "echo '$out' | grep -Eq '^disk_read 2 64 [0-9]+\.[0-9]+$|refuses O_DIRECT'" "disk_read: a rate or why not ($out)"
    "$B/disk_read" "$B/4mb" 1 64 8 > /dev/null 2> "$B/short.txt"; rc=$?
    check "[ $rc -eq 1 ] && grep -q 'holds 4 MB, fewer than START_MB + MB = 8' $B/short.txt" "disk_read: a file too short"
    "$B/disk_read" "$B/4mb" 1 6 4 > /dev/null 2>&1; rc=$?
    check "[ $rc -eq 2 ]" "disk_read: a request size that is not a multiple of 4 KB"
    rm -f "$B/4mb"
else
    fail=$((fail + 1)); echo "FAIL build tools/disk_read.c"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
