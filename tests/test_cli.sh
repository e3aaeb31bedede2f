#!/bin/sh
# The command-line contract: outputs of `ollm logits` and `ollm run`, and bad input ending in exit status 1 with a
# one-line message that names the culprit (never a signal). Run from the repository root after building ./ollm.
set -u
pass=0; fail=0
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
FX=tests/fixtures/llama_gqa1
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $2"; fi; }
# expect_error WHAT PATTERN CMD...: exit status 1, stderr matching PATTERN
expect_error() {
    what=$1; pat=$2; shift 2
    "$@" > "$T/out" 2> "$T/err"; rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$pat" "$T/err" && [ "$(wc -l < "$T/err")" -le 3 ]; then check 0 "$what"
    else check 1 "$what (exit $rc, stderr: $(head -c 300 "$T/err"))"; fi
}
copy() { rm -rf "$T/m"; cp -r "$FX" "$T/m"; }

./ollm logits $FX --ids 1,2,3,4 --out "$T/l.safetensors"
check $? "logits runs"
size=$(wc -c < "$T/l.safetensors")
hdr=$(head -c 200 "$T/l.safetensors" | tr -d '\0')
echo "$hdr" | grep -q '"logits":{"dtype":"F32","shape":\[4,320\]'; check $? "logits header: F32 [4, 320]"
[ $((size % 8)) -eq 0 ] && [ "$size" -gt $((4 * 320 * 4)) ]; check $? "logits file size"
out=$(./ollm run $FX --ids 5,6,7 -n 6 --print-ids --ignore-eos 2>/dev/null)
[ "$(echo "$out" | wc -w)" -eq 6 ]; check $? "run --print-ids prints 6 ids ($out)"
out2=$(./ollm run $FX --ids 5,6,7 -n 6 --print-ids --ignore-eos --temp 0.8 --seed 3 2>/dev/null)
out3=$(./ollm run $FX --ids 5,6,7 -n 6 --print-ids --ignore-eos --temp 0.8 --seed 3 2>/dev/null)
[ -n "$out2" ] && [ "$out2" = "$out3" ]; check $? "seeded sampling is reproducible"
./ollm --help > /dev/null; check $? "--help"
# a session folder: prefill once, ask twice from the same point, same answer as a fresh run
./ollm run $FX --ids 1,2,3,4,5,6,7,8 -n 0 --session "$T/s" 2>/dev/null; check $? "run --session: prefill only"
a1=$(./ollm run $FX --session "$T/s" --rewind 8 --ids 9,10 -n 5 --print-ids --ignore-eos 2>/dev/null)
a2=$(./ollm run $FX --session "$T/s" --rewind 8 --ids 9,10 -n 5 --print-ids --ignore-eos 2>/dev/null)
a3=$(./ollm run $FX --ids 1,2,3,4,5,6,7,8,9,10 -n 5 --print-ids --ignore-eos 2>/dev/null)
[ -n "$a1" ] && [ "$a1" = "$a2" ] && [ "$a1" = "$a3" ]; check $? "run --session --rewind: resumed answers equal a fresh run ($a1 / $a3)"
expect_error "session of another model" "another model" ./ollm run tests/fixtures/llama_tied_gqa4 --session "$T/s" --ids 1 -n 1

# text in, text out on the shipped model; ids of "Hello world" as Hugging Face tokenizers gives them
TM=examples/models/fortune-llama
printf 'Hello world' > "$T/hello.txt"
[ "$(./ollm tokenize $TM --file "$T/hello.txt")" = "39 467 78 701" ]; check $? "tokenize: HF ids of 'Hello world'"
[ "$(./ollm tokenize $TM --file "$T/hello.txt" --add-special)" = "4091 39 467 78 701" ]; check $? "tokenize --add-special adds BOS"
[ "$(printf 'Hello world' | ./ollm tokenize $TM --file -)" = "39 467 78 701" ]; check $? "tokenize --file - reads stdin"
[ "$(./ollm decode $TM --ids 39,467,78,701)" = "Hello world" ]; check $? "decode"
[ "$(./ollm decode $TM --ids 4091,39,467,78,701 --skip-special)" = "Hello world" ]; check $? "decode --skip-special"
out=$(./ollm run $TM "The secret of life is" -n 12 2>/dev/null)
case "$out" in "The secret of life is"?*) check 0 "run PROMPT prints text";; *) check 1 "run PROMPT printed: $out";; esac
ids=$(./ollm tokenize $TM --chat --system "Be brief." --user "Tell me a fortune.")
case "$ids" in 4091\ 4093*4095*4093*) check 0 "tokenize --chat renders the chat format";; *) check 1 "tokenize --chat gave: $ids";; esac
out=$(printf 'Tell me a fortune about love.\n\n' | ./ollm chat $TM -n 30 2>/dev/null)
[ -n "$out" ]; check $? "chat answers on stdin"
s1=$(./ollm run $TM "Computers are" -n 24 --temp 0.8 --top-k 40 --seed 11 2>/dev/null)
s2=$(./ollm run $TM "Computers are" -n 24 --temp 0.8 --top-k 40 --seed 11 2>/dev/null)
[ -n "$s1" ] && [ "$s1" = "$s2" ]; check $? "a fixed-seed sample of the shipped model is stable"
./ollm info $TM | grep -q "backend        cpu (CPU)"; check $? "info names the backend and device"
./ollm info $TM | grep -q "prefill        chunks of 256 tokens, 1 a pass"; check $? "info: every layer resident, one chunk a pass"
./ollm info $TM --ram-gb 0.006 --ctx 1024 | grep -q "prefill        chunks of 256 tokens, 4 a pass"
check $? "info: layers streamed from disk, as many chunks a pass as the context holds"
g1=$(./ollm run $TM "Computers are" -n 12 --ram-gb 0.006 --ctx 1024 --chunk 2 --group 1 2>/dev/null)
ga=$(./ollm run $TM "Computers are" -n 12 --ram-gb 0.006 --ctx 1024 --chunk 2 2>/dev/null)
[ -n "$g1" ] && [ "$g1" = "$ga" ]; check $? "streamed layers: the default chunks a pass give one chunk a pass's text"

expect_error "missing directory" "/no/such/dir" ./ollm logits /no/such/dir --ids 1 --out "$T/x"
copy; truncate -s -100 "$T/m/model.safetensors"
expect_error "truncated shard" "truncated" ./ollm run "$T/m" --ids 1 -n 1
copy; sed -i 's/"model_type": "llama"/"model_type": "rwkv"/' "$T/m/config.json"
expect_error "unknown architecture" "rwkv" ./ollm run "$T/m" --ids 1 -n 1
copy; sed -i 's/"num_hidden_layers": 3/"num_hidden_layers": 5/' "$T/m/config.json"
expect_error "missing tensor" "missing tensor 'model.layers.3" ./ollm run "$T/m" --ids 1 -n 1
copy; sed -i 's/"intermediate_size": 192/"intermediate_size": 200/' "$T/m/config.json"
expect_error "shape disagrees with config" "gate_proj.weight' has shape \[192, 64\], config.json implies \[200, 64\]" ./ollm run "$T/m" --ids 1 -n 1
copy; sed -i 's/"vocab_size": 320/"vocab_size": 300/' "$T/m/config.json"
expect_error "special token outside the vocabulary" "outside vocab_size 300" ./ollm run "$T/m" --ids 1 -n 1
copy; printf '{"model_type": "llama", "hidden_size": 64' > "$T/m/config.json"
expect_error "malformed config.json" "config.json" ./ollm run "$T/m" --ids 1 -n 1
copy; printf '{"model_type": "ll\377ama"}' > "$T/m/config.json"
expect_error "non-UTF-8 config.json" "UTF-8" ./ollm run "$T/m" --ids 1 -n 1
copy; python3 - "$T/m/model.safetensors" <<'PY'
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
b[:8] = struct.pack('<Q', len(b) + 100)          # header length past the end of the file
open(p, 'wb').write(b)
PY
expect_error "header length past EOF" "header length" ./ollm run "$T/m" --ids 1 -n 1
copy; python3 - "$T/m/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = open(p, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
names = [k for k in h if k != '__metadata__']
h[names[1]]['data_offsets'] = list(h[names[0]]['data_offsets'])   # two tensors on the same bytes
hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8)
open(p, 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8 + n:])
PY
expect_error "overlapping tensors" "overlap\|needs" ./ollm run "$T/m" --ids 1 -n 1
copy; python3 - "$T/m/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = open(p, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
k = 'model.norm.weight'; s, e = h[k]['data_offsets']
h[k]['data_offsets'] = [len(b), len(b) + e - s]                      # out of range
hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8)
open(p, 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8 + n:])
PY
expect_error "out-of-range offsets" "model.norm.weight" ./ollm run "$T/m" --ids 1 -n 1
copy; chmod 000 "$T/m"
[ "$(id -u)" != 0 ] && expect_error "unreadable directory" "config.json" ./ollm run "$T/m" --ids 1 -n 1
chmod 755 "$T/m"
expect_error "id outside the vocabulary" "outside the vocabulary" ./ollm run $FX --ids 1,99999 -n 1
expect_error "malformed --ids" "malformed" ./ollm run $FX --ids 1,x -n 1
expect_error "prompt longer than the context" "exceed" ./ollm run $FX --ids 1,2,3,4,5 --ctx 3 -n 1
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
