#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer harnesses (tests/fuzz/corpus/<harness>/) from the repository's own files:
config.json files, safetensors headers, the sharded fixture's index, a cut-down copy of a real tokenizer.json and
tokenizer test texts. Every seed stays under 64 KB. Run from anywhere: python3 tests/fuzz/make_seeds.py
(fuzz_session's seeds come from make_session_seed.c; tests/fuzz/make_seeds.sh runs both). Regression inputs
(crash-*, regress-*) in the corpus folders are kept."""
import glob, json, os, struct

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
SEP = b"\n--8<--\n"
LIMIT = 64 * 1024

def put(harness, name, data):
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < LIMIT, (harness, name, len(data))
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def rel(p):
    return os.path.relpath(p, ROOT)

def st_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return f.read(n), os.path.getsize(path) - 8 - n

def st_seed(path):
    """fuzz_write_st's mode-even form: the JSON header, with a sparse data section of at least the real size"""
    hdr, data = st_header(path)
    k = min(127, (data + 65535) // 65536)
    return bytes([2 * k]) + hdr

def raw_st(tensors, meta=None):
    """a small, valid safetensors file: tensors = [(name, dtype, shape, bytes)]"""
    h, off, blob = {}, 0, b""
    if meta is not None:
        h["__metadata__"] = meta
    for name, dt, shape, data in tensors:
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data); blob += data
    js = json.dumps(h, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    return struct.pack("<Q", len(js)) + js + blob

configs = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/*/config.json")) +
                 glob.glob(os.path.join(ROOT, "tools/configs/*.json")) +
                 glob.glob(os.path.join(ROOT, "examples/models/*/config.json")))
sts = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/**/*.safetensors"), recursive=True) +
             glob.glob(os.path.join(ROOT, "examples/models/*/model.safetensors")))

# ---- fuzz_config: every real config.json, and variants of the rope and eos fields
for p in configs:
    put("fuzz_config", rel(p).replace("/", "_"), open(p, "rb").read())
base = json.load(open(os.path.join(ROOT, "tests/fixtures/llama_gqa1/config.json")))
variants = {
    "yarn": {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64,
                              "beta_fast": 32, "beta_slow": 1, "truncate": False}},
    "linear_partial": {"rope_scaling": {"type": "linear", "factor": 2.0}, "partial_rotary_factor": 0.5},
    "eos_int_no_head_dim": {"eos_token_id": 3, "head_dim": None, "rope_parameters": None},
    "gpt_oss": {"model_type": "gpt_oss", "num_local_experts": 4, "experts_per_token": 2, "sliding_window": 8,
                "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]},
    "qwen3_next": {"model_type": "qwen3_next", "num_experts": 4, "num_experts_per_tok": 2,
                   "layer_types": ["linear_attention", "linear_attention", "full_attention"]},
}
for name, change in variants.items():
    c = dict(base); c.update(change)
    put("fuzz_config", "variant_" + name + ".json", json.dumps(c, indent=1))

# ---- fuzz_json: configs, an index, safetensors headers, tokenizer_config, and the corner cases of RFC 8259
for p in configs[:3]:
    put("fuzz_json", rel(p).replace("/", "_"), open(p, "rb").read())
put("fuzz_json", "index.json", open(os.path.join(ROOT, "tests/fixtures/llama_untied_gqa2_sharded/model.safetensors.index.json"), "rb").read())
put("fuzz_json", "st_header.json", st_header(os.path.join(ROOT, "tests/fixtures/llama_gqa1/model.safetensors"))[0])
put("fuzz_json", "tokenizer_config.json", open(os.path.join(ROOT, "examples/models/fortune-llama/tokenizer_config.json"), "rb").read())
put("fuzz_json", "strings.json", '["\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/", "caf\u00e9", "", "a\\u0000b", "\ud7ff"]'.encode("utf-8", "surrogatepass"))
put("fuzz_json", "numbers.json", b"[0, -0, 1.5e-3, -12345678901234567890123, 1E+400, 1e-400, 0.000000000000000000000000001, 9007199254740993, 123.456e7]")
put("fuzz_json", "nested.json", b"[" * 100 + b"{\"a\":true}" + b"]" * 100)
put("fuzz_json", "bom_dup.json", b"\xef\xbb\xbf{\"k\": 1, \"k\": [null, false, true, {}], \"\": \"\"}")

# ---- fuzz_safetensors: real headers (sparse data), small valid raw files, a truncated raw copy
for p in sts:
    put("fuzz_safetensors", rel(p).replace("/", "_"), st_seed(p))
small = raw_st([("a.weight", "BF16", [2, 3], bytes(12)), ("b", "F32", [2], bytes(8)), ("empty", "F16", [0, 4], b""),
                ("scalar", "I64", [], bytes(8)), ("f8", "F8_E4M3", [1, 1, 1, 2], bytes(2))], {"format": "pt"})
put("fuzz_safetensors", "raw_small", b"\x01" + small)
put("fuzz_safetensors", "raw_overlap", b"\x01" + raw_st([("x", "U8", [4], bytes(4)), ("y", "U8", [4], bytes(4))]).replace(b"[4,8]", b"[2,6]"))
with open(os.path.join(ROOT, "tests/fixtures/tiny_reference.safetensors"), "rb") as f:
    put("fuzz_safetensors", "raw_truncated", b"\x01" + f.read(4096))

# ---- fuzz_st_dir: the sharded fixture (index + four shard headers), and a single-file directory
sh = os.path.join(ROOT, "tests/fixtures/llama_untied_gqa2_sharded")
parts = [open(os.path.join(sh, "model.safetensors.index.json"), "rb").read()]
for i in range(1, 5):
    parts.append(st_seed(os.path.join(sh, "model-%05d-of-00004.safetensors" % i)))
put("fuzz_st_dir", "sharded", SEP.join(parts))
put("fuzz_st_dir", "single_file", SEP.join([b"", st_seed(os.path.join(ROOT, "tests/fixtures/llama_gqa1/model.safetensors"))]))
put("fuzz_st_dir", "single_raw", SEP.join([b"", b"\x01" + small]))
idx = {"metadata": {"total_size": 20}, "weight_map": {"a.weight": "model-00001-of-00004.safetensors", "b": "model-00002-of-00004.safetensors"}}
put("fuzz_st_dir", "two_raw_shards", SEP.join([json.dumps(idx).encode(), b"\x01" + raw_st([("a.weight", "BF16", [2, 3], bytes(12))]),
                                                b"\x01" + raw_st([("b", "F32", [2], bytes(8))])]))

# ---- tokenizers: a cut-down copy of fortune-llama's tokenizer.json (byte tokens, the merges they allow, the
# added tokens), with texts from the tokenizer tests' corpus
tok = json.load(open(os.path.join(ROOT, "examples/models/fortune-llama/tokenizer.json")))
vocab = tok["model"]["vocab"]
keep = {k: v for k, v in vocab.items() if v < 256}
merges = []
for m in tok["model"]["merges"]:
    a, b = m.split(" ") if isinstance(m, str) else m
    if a in keep and b in keep and (a + b) in vocab and len(merges) < 300:
        keep[a + b] = vocab[a + b]; merges.append(m)
small_tok = dict(tok); small_tok["model"] = dict(tok["model"]); small_tok["model"]["vocab"] = keep
small_tok["model"]["merges"] = merges
tok_json = json.dumps(small_tok, ensure_ascii=False, separators=(",", ":")).encode()
tcfg = open(os.path.join(ROOT, "examples/models/fortune-llama/tokenizer_config.json"), "rb").read()
texts = []
blob = open(os.path.join(ROOT, "tests/fixtures/tokenizer/corpus.bin"), "rb").read()
for piece in blob[8:].split(b"\x00"):
    if 4 < len(piece) < 2000:
        texts.append(piece[1:])
    if len(texts) >= 24:
        break
texts += [b"Hello world! <|begin_of_text|>x<|eot_id|>", "naïve café ℌ ﬁ 한국어 😀".encode(), b"\xff\xfe\xc3(\xe2\x82", b""]
put("fuzz_tokenizer", "fortune_small", SEP.join([tok_json, texts[0]]))
put("fuzz_tokenizer", "fortune_small_chat", SEP.join([tok_json, texts[-4], tcfg]))
nfc = dict(small_tok); nfc["normalizer"] = {"type": "NFC"}
nfc["pre_tokenizer"] = json.loads(json.dumps(tok["pre_tokenizer"]).replace("\\\\p{N}{1,3}", "\\\\p{N}"))
put("fuzz_tokenizer", "fortune_small_nfc_qwen2", SEP.join([json.dumps(nfc, ensure_ascii=False).encode(), texts[-3]]))
for i, t in enumerate(texts):
    put("fuzz_tokenize", "text_%02d" % i, t)
print("seeds written under", rel(OUT))

# ---- fuzz_session: variants of make_session_seed.c's real folders that reach the checks after the checksums (the
# flags byte makes the harness recompute the hashes): a token id outside the vocabulary, and a header that claims more
# tokens than its records hold. Needs fuzz_session/three_tokens (make_seeds.sh writes it first).
src = os.path.join(OUT, "fuzz_session", "three_tokens")
if os.path.exists(src):
    blob = open(src, "rb").read()
    hdr, kv = blob[1:].split(SEP, 1)
    HDR, REC = 64, 48
    bad_tok = kv[:REC] + struct.pack("<i", 99999) + kv[REC + 4:]
    put("fuzz_session", "token_outside_vocab", bytes([1 | 2 | 4 | 8]) + hdr + SEP + bad_tok)
    more = hdr[:32] + struct.pack("<Q", 5) + hdr[40:]          # n_tokens at offset 32: 5 > the 3 recorded
    put("fuzz_session", "header_claims_more", bytes([1 | 2 | 4 | 8]) + more + SEP + kv)
    put("fuzz_session", "log_bytes_from_kv", bytes([1 | 2 | 4 | 8 | 32 | 64]) + hdr + SEP + kv + kv)
