#!/usr/bin/env python3
"""Make the tiny random-weight Llama-3 fixtures under tests/fixtures/.

Run (on a machine with torch, transformers and safetensors; no network needed):

    python3 tools/make_fixtures.py tests/fixtures

Each tests/fixtures/llama_<name>/ is what LlamaForCausalLM.save_pretrained(dir, safe_serialization=True) writes,
weights in bf16 (generation_config.json removed), plus reference.safetensors with float32 references computed by
transformers (eager attention, float32, CPU) from the bf16 weights as loaded back from that directory:

    ids     int32   [120]         prompt token ids, drawn with a fixed seed from [0, vocab)
    logits  float32 [120, vocab]  logits after every prompt position, one forward pass
    greedy  int32   [20]          greedy continuation: argmax of the last logits, append, full forward again;
                                  never stops at eos

Two fixtures have config.json rewritten after saving, to exercise what older transformers wrote (top-level
rope_theta + rope_scaling; head_dim absent); each is re-loaded with transformers and must give bit-identical
logits to the form transformers wrote. Every reference is also checked against an independent float64
re-implementation of the equations in shared/MODELS.md ("Llama-3"), read straight from the safetensors files.

Deterministic: seeded torch generators, CPU float32, deterministic algorithms; two runs with the same versions give
byte-identical files. The committed files were made with torch 2.11.0+cu130, transformers 5.17.0, safetensors 0.8.0,
Python 3.12.3 (also printed into tests/fixtures/README.md).
"""

import json
import math
import os
import platform
import shutil
import sys

import torch

PROMPT_LEN = 120
GREEDY_LEN = 20
TARGET_LOGIT_STD = 3.0  # std of the logits over the vocab; >= 1 so that a wrong kernel cannot hide in near-uniform logits
MIN_GREEDY_MARGIN = 0.02  # top-1 minus top-2 logit at each greedy step; reseed below this (fp32 noise is ~1e-5)
MIN_PROMPT_MARGIN = 1e-3  # top-1 minus top-2 logit at every prompt position
MIN_GREEDY_DISTINCT = 12  # distinct tokens among the 20 greedy ones: a model stuck repeating one token tests little
MAX_FIXTURE_BYTES = 1_400_000


def llama3(factor, orig):
    return {"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": orig}


# rope: None = plain RoPE.  form: "new" = config.json as transformers writes it (rope_parameters),
# "old" = rewritten to top-level rope_theta + rope_scaling (a dict, or null when rope is None).
FIXTURES = [
    dict(name="llama_tied_gqa4", seed=101, hidden=128, heads=4, kv_heads=1, head_dim=64, layers=2, inter=320,
         vocab=256, tied=True, theta=10000.0, rope=llama3(8.0, 32), eos=249, bos=248, shard_bytes=None,
         form="new", drop_head_dim=False,
         about="tied head, GQA 4 (4 heads / 1 kv head), head_dim 64 (hidden/heads is 32), llama3 RoPE "
               "factor 8 orig 32 (rope_parameters form), eos int, single file"),
    dict(name="llama_untied_gqa2_sharded", seed=202, hidden=96, heads=2, kv_heads=1, head_dim=128, layers=2,
         inter=256, vocab=384, tied=False, theta=500000.0, rope=llama3(32.0, 16), eos=377, bos=376,
         shard_bytes=200_000, form="old", drop_head_dim=False,
         about="untied head, GQA 2 (2 heads / 1 kv head), head_dim 128 (hidden/heads is 48), llama3 RoPE "
               "factor 32 orig 16 in the OLD form (top-level rope_theta + rope_scaling), eos int, "
               "sharded + model.safetensors.index.json"),
    dict(name="llama_gqa1", seed=303, hidden=64, heads=4, kv_heads=4, head_dim=64, layers=3, inter=192,
         vocab=320, tied=False, theta=100000.0, rope=llama3(8.0, 16), eos=[313, 315, 318], bos=312,
         shard_bytes=None, form="new", drop_head_dim=False,
         about="untied head, no GQA (4 heads / 4 kv heads), head_dim 64 (hidden/heads is 16), 3 layers, llama3 "
               "RoPE factor 8 orig 16 (rope_parameters form), eos a list, single file"),
    dict(name="llama_default_rope", seed=404, hidden=128, heads=4, kv_heads=2, head_dim=None, layers=2,
         inter=256, vocab=288, tied=False, theta=500000.0, rope=None, eos=281, bos=280, shard_bytes=None,
         form="old", drop_head_dim=True,
         about="Llama-3.0 style: plain RoPE theta 500000 written as `rope_theta` + `\"rope_scaling\": null`, "
               "head_dim ABSENT from config.json (hidden/heads = 32), GQA 2, untied, eos int, single file"),
]


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Building, saving, loading


def make_config(fx):
    from transformers import LlamaConfig
    import transformers
    kw = dict(vocab_size=fx["vocab"], hidden_size=fx["hidden"], intermediate_size=fx["inter"],
              num_hidden_layers=fx["layers"], num_attention_heads=fx["heads"], num_key_value_heads=fx["kv_heads"],
              head_dim=fx["head_dim"], hidden_act="silu", max_position_embeddings=256, rms_norm_eps=1e-5,
              tie_word_embeddings=fx["tied"], bos_token_id=fx["bos"], eos_token_id=fx["eos"],
              attention_bias=False, mlp_bias=False)
    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        rp = {"rope_type": "default"} if fx["rope"] is None else dict(fx["rope"])
        rp["rope_theta"] = fx["theta"]
        kw["rope_parameters"] = rp
    else:
        kw["rope_theta"] = fx["theta"]
        kw["rope_scaling"] = None if fx["rope"] is None else dict(fx["rope"])
    return LlamaConfig(**kw)


def init_weights(model, fx, gen):
    """Seeded init, big enough that logits are far from uniform and attention is far from flat."""
    H, I = fx["hidden"], fx["inter"]
    hd = fx["head_dim"] or H // fx["heads"]
    # A tied head scores the current token by |embedding|^2 / rms(residual); with the embedding scaled for logit
    # std 3 that self-score is ~3 std unless the layers dominate the residual stream, and greedy then just
    # repeats the last token. Larger residual branches keep it near 1 std.
    gain = 3.0 if fx["tied"] else 1.0
    std = {"q_proj": 1.5 / math.sqrt(H), "k_proj": 1.5 / math.sqrt(H), "v_proj": 1.0 / math.sqrt(H),
           "o_proj": gain / math.sqrt(fx["heads"] * hd), "gate_proj": 1.0 / math.sqrt(H),
           "up_proj": 1.0 / math.sqrt(H), "down_proj": gain / math.sqrt(I)}
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                # around 1, so that a missing or misplaced norm weight changes the outputs
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name == "model.embed_tokens.weight":
                s = 1.0 / math.sqrt(H) if fx["tied"] else 1.0
                p.copy_(s * torch.randn(p.shape, generator=gen))
            elif name == "lm_head.weight":
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(H))
            else:
                key = name.split(".")[-2]
                if key not in std or not name.endswith(".weight"):
                    raise SystemExit(f"unexpected parameter {name}")
                p.copy_(std[key] * torch.randn(p.shape, generator=gen))
    if fx["tied"]:
        emb, head = model.model.embed_tokens.weight, model.lm_head.weight
        if emb.data_ptr() != head.data_ptr():
            log("  NOTE: lm_head was not tied to the embedding after init; tying it by hand")
            model.lm_head.weight = model.model.embed_tokens.weight


def logits_std(logits):
    return logits.std(dim=-1)  # per position, over the vocab


def calibrate_head(model, fx, ids):
    """Scale the head so that the std of the logits over the vocab is about TARGET_LOGIT_STD."""
    head = model.lm_head.weight  # the embedding itself when tied
    for _ in range(4 if fx["tied"] else 1):
        with torch.no_grad():
            s = logits_std(model(input_ids=ids[None], use_cache=False).logits[0].float()).mean().item()
            head.mul_(TARGET_LOGIT_STD / s)
    log(f"  head scaled: logit std {s:.3f} before the last step")


def save(model, d, fx):
    model = model.to(torch.bfloat16)
    kw = {}
    if fx["shard_bytes"]:
        kw["max_shard_size"] = fx["shard_bytes"]
    try:
        model.save_pretrained(d, safe_serialization=True, **kw)
    except TypeError:  # newer transformers dropped the argument (safetensors is the only format)
        model.save_pretrained(d, **kw)
    gc = os.path.join(d, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)


def load(d):
    from transformers import AutoModelForCausalLM
    try:
        m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    except TypeError:
        m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
    m.eval()
    for n, p in m.named_parameters():
        if p.dtype != torch.float32:
            raise SystemExit(f"{d}: {n} loaded as {p.dtype}")
    return m


def forward(model, ids):
    with torch.no_grad():
        return model(input_ids=ids[None], use_cache=False).logits[0].float()


def greedy(model, ids):
    seq = ids.tolist()
    out, margins = [], []
    for _ in range(GREEDY_LEN):
        last = forward(model, torch.tensor(seq, dtype=torch.long))[-1]
        top = torch.topk(last, 2)
        margins.append((top.values[0] - top.values[1]).item())
        t = int(top.indices[0])
        out.append(t)
        seq.append(t)
    return out, margins


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")  # as transformers writes config.json


def rewrite_config(d, fx):
    """Turn config.json into what older transformers (and many hub checkpoints) hold."""
    path = os.path.join(d, "config.json")
    with open(path) as f:
        c = json.load(f)
    log(f"  as written by transformers: head_dim {c.get('head_dim', 'absent')}, rope_parameters "
        f"{c.get('rope_parameters', 'absent')}, rope_theta {c.get('rope_theta', 'absent')}, rope_scaling "
        f"{c.get('rope_scaling', 'absent')}")
    if fx["form"] == "old":
        rp = c.pop("rope_parameters", None)
        if rp is not None:
            c["rope_theta"] = rp["rope_theta"]
        if fx["rope"] is None:
            c["rope_scaling"] = None
        else:
            # key set of meta-llama/Llama-3.1-8B's rope_scaling
            c["rope_scaling"] = {k: fx["rope"][k] for k in ("factor", "high_freq_factor", "low_freq_factor",
                                                             "original_max_position_embeddings", "rope_type")}
        c["rope_theta"] = fx["theta"]
    if fx["drop_head_dim"]:
        assert c.get("head_dim") in (None, fx["hidden"] // fx["heads"])
        c.pop("head_dim", None)
    write_json(path, c)


# ---------------------------------------------------------------------------------------------------------------
# Independent check: the shared/MODELS.md equations in float64, weights read straight from the safetensors files


def read_weights(d):
    from safetensors import safe_open
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    T, info = {}, []
    for fn in files:
        with safe_open(os.path.join(d, fn), framework="pt") as f:
            meta = f.metadata()
            for k in f.keys():
                t = f.get_tensor(k)
                T[k] = t
                info.append((fn, k, str(t.dtype).replace("torch.", ""), list(t.shape)))
        info.append((fn, "__metadata__", str(meta), []))
    return T, files, info


def rope_from_config(c):
    rp = c.get("rope_parameters")
    rp = dict(rp if rp is not None else c.get("rope_scaling") or {})
    rp.setdefault("rope_theta", c.get("rope_theta", 10000.0))
    return rp


def spec_inv_freq(c, hd, force_default=False):
    rp = rope_from_config(c)
    inv = rp["rope_theta"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    if rp.get("rope_type", rp.get("type", "default")) == "llama3" and not force_default:
        # transformers _compute_llama3_parameters; the medium band includes both ends
        factor, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        orig = rp["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        low_wl, high_wl = orig / lo, orig / hi
        scaled = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (orig / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wl >= high_wl) & (wl <= low_wl)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def spec_forward(d, ids, force_default_rope=False):
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    W = {k: v.double() for k, v in read_weights(d)[0].items()}
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads") or nh
    hd = c.get("head_dim") or H // nh
    eps = c["rms_norm_eps"]
    n = ids.numel()
    ang = torch.arange(n, dtype=torch.float64)[:, None] * spec_inv_freq(c, hd, force_default_rope)[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)

    def rope(t):  # rotate-half: pairs (i, i + hd/2)
        rot = torch.cat([-t[..., hd // 2:], t[..., :hd // 2]], -1)
        return t * cos + rot * sin

    def rms(x, w):
        return w * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)

    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    x = W["model.embed_tokens.weight"][ids.long()]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms(x, W[p + "input_layernorm.weight"])
        q = (a @ W[p + "self_attn.q_proj.weight"].T).view(n, nh, hd).transpose(0, 1)
        k = (a @ W[p + "self_attn.k_proj.weight"].T).view(n, nkv, hd).transpose(0, 1)
        v = (a @ W[p + "self_attn.v_proj.weight"].T).view(n, nkv, hd).transpose(0, 1)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(nh // nkv, 0)  # query head j uses kv head j // (nh / nkv)
        v = v.repeat_interleave(nh // nkv, 0)
        s = (q @ k.transpose(1, 2)) / math.sqrt(hd)
        o = torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v
        x = x + o.transpose(0, 1).reshape(n, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
        b = rms(x, W[p + "post_attention_layernorm.weight"])
        g = b @ W[p + "mlp.gate_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * (b @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    x = rms(x, W["model.norm.weight"])
    tied = c.get("tie_word_embeddings", False)  # LlamaConfig's default
    head = W["model.embed_tokens.weight"] if tied else W["lm_head.weight"]
    return x @ head.T


# ---------------------------------------------------------------------------------------------------------------


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def make_one(root, fx):
    from transformers import LlamaForCausalLM
    from safetensors.torch import save_file

    d = os.path.join(root, fx["name"])
    g = torch.Generator().manual_seed(fx["seed"])
    ids = torch.randint(0, fx["vocab"], (PROMPT_LEN,), generator=g, dtype=torch.long)

    for attempt in range(30):
        seed = fx["seed"] * 1000 + attempt
        if os.path.exists(d):
            shutil.rmtree(d)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(make_config(fx))
        model.eval()
        init_weights(model, fx, torch.Generator().manual_seed(seed))
        calibrate_head(model, fx, ids)
        save(model, d, fx)
        del model

        m = load(d)
        logits_new = forward(m, ids)
        rot = getattr(m.model, "rotary_emb", None)
        inv_model = getattr(rot, "inv_freq", None)
        scaling = getattr(rot, "attention_scaling", None)
        del m
        if fx["form"] == "old" or fx["drop_head_dim"]:
            rewrite_config(d, fx)
        m = load(d)
        logits = forward(m, ids)
        rewrite_diff = (logits - logits_new).abs().max().item()
        out, margins = greedy(m, ids)
        # the first greedy step sees the same tokens as the prompt forward
        if not torch.equal(forward(m, ids)[-1], logits[-1]):
            raise SystemExit("forward is not deterministic")
        std = logits_std(logits)
        top2 = torch.topk(logits, 2, dim=-1).values
        prompt_margin = (top2[:, 0] - top2[:, 1]).min().item()
        ok = (min(margins) >= MIN_GREEDY_MARGIN and std.min().item() >= 1.0 and prompt_margin >= MIN_PROMPT_MARGIN
              and len(set(out)) >= MIN_GREEDY_DISTINCT)
        log(f"{fx['name']} seed {seed}: logit std min {std.min().item():.3f} mean {std.mean().item():.3f}, "
            f"greedy min margin {min(margins):.4f}, prompt min margin {prompt_margin:.4f}, "
            f"{len(set(out))} distinct greedy tokens" + ("" if ok else "  -> reseed"))
        if ok:
            break
    else:
        raise SystemExit(f"{fx['name']}: no seed passed the checks")

    ref_path = os.path.join(d, "reference.safetensors")
    save_file({"ids": ids.to(torch.int32).contiguous(), "logits": logits.contiguous(),
               "greedy": torch.tensor(out, dtype=torch.int32)}, ref_path)
    # no __metadata__: safetensors writes its keys in hash order, so the file would differ from run to run

    # ---- checks and report
    with open(os.path.join(d, "config.json")) as f:
        cfg_text = f.read()
    c = json.loads(cfg_text)
    hd = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    spec = spec_forward(d, ids)
    spec_err = (spec - logits.double()).abs().max().item()
    full = torch.tensor(ids.tolist() + out, dtype=torch.long)
    spec_full = spec_forward(d, full[:-1])
    spec_greedy = spec_full[PROMPT_LEN - 1:].argmax(-1).tolist()
    inv_err = None
    if inv_model is not None:
        inv_err = (inv_model.double().cpu() - spec_inv_freq(c, hd)).abs().max().item()
    rope_effect = None
    if fx["rope"] is not None:
        plain = spec_forward(d, ids, force_default_rope=True)
        rope_effect = ((plain - spec).abs().max().item(),
                       (plain.argmax(-1) != spec.argmax(-1)).sum().item())
    _, files, info = read_weights(d)
    size = dir_bytes(d)

    log(f"== {fx['name']}  ({size} bytes)")
    log("config.json:\n" + cfg_text)
    for fn, k, dt, sh in info:
        log(f"  {fn}: {k} {dt} {sh}")
    log(f"  files: {sorted(os.listdir(d))}")
    log(f"  max|logit| {logits.abs().max().item():.3f}, std over vocab: min {std.min().item():.3f} "
        f"mean {std.mean().item():.3f} max {std.max().item():.3f}")
    log(f"  greedy {out}")
    log(f"  greedy top-2 margins {[round(x, 4) for x in margins]}, min {min(margins):.4f}")
    log(f"  min top-2 margin over the 120 prompt positions {prompt_margin:.5f}")
    log(f"  float64 MODELS.md re-implementation vs transformers: max|dlogit| {spec_err:.3g}, "
        f"greedy agrees: {spec_greedy == out}")
    if fx["form"] == "old" or fx["drop_head_dim"]:
        log(f"  rewritten config.json vs as written by transformers: max|dlogit| {rewrite_diff:g}")
    log(f"  rotary inv_freq vs MODELS.md llama3 formula: max diff {inv_err}, attention_scaling {scaling}")
    if rope_effect is not None:
        log(f"  llama3 scaling vs plain RoPE: max|dlogit| {rope_effect[0]:.3f}, argmax differs at "
            f"{rope_effect[1]} of {PROMPT_LEN} positions")
    problems = []
    if rewrite_diff != 0:
        problems.append(f"rewritten config.json changes the transformers logits by {rewrite_diff:g}")
    if spec_err > 1e-3:
        problems.append(f"float64 re-implementation differs by {spec_err:g}")
    if spec_greedy != out:
        problems.append("float64 greedy differs")
    if inv_err is not None and inv_err > 1e-6:
        problems.append(f"inv_freq differs by {inv_err:g}")
    if rope_effect is not None and rope_effect[0] < 0.5:
        problems.append("llama3 scaling barely changes the logits")
    if size > MAX_FIXTURE_BYTES:
        problems.append(f"{size} bytes is too big")
    for p in problems:
        log(f"  PROBLEM: {p}")
    return dict(fx=fx, size=size, files=sorted(os.listdir(d)), shards=len(files), std=std, logits=logits,
                margins=margins, spec_err=spec_err, rope_effect=rope_effect, hd=hd, problems=problems,
                prompt_margin=prompt_margin)


def write_readme(root, results):
    import transformers
    import safetensors
    L = []
    L.append("# Test fixtures\n")
    L.append("Tiny random-weight Llama-3 checkpoints in the Hugging Face hub layout (what "
             "`LlamaForCausalLM.save_pretrained` writes: bf16 safetensors, config.json; generation_config.json removed; "
             "two config.json files rewritten to older forms, see below) with float32 references. "
             "Made by `python3 tools/make_fixtures.py tests/fixtures` (deterministic; see the top of the script) with "
             f"torch {torch.__version__}, transformers {transformers.__version__}, safetensors "
             f"{safetensors.__version__}, Python {platform.python_version()}.\n")
    L.append("`reference.safetensors` in each directory, computed by transformers (eager attention, float32, CPU, "
             "weights loaded back from the directory):\n")
    L.append(f"- `ids` int32 [{PROMPT_LEN}]: prompt, seeded random ids in [0, vocab)")
    L.append(f"- `logits` float32 [{PROMPT_LEN}, vocab]: logits after every prompt position (one forward pass)")
    L.append(f"- `greedy` int32 [{GREEDY_LEN}]: greedy continuation (argmax, append, full forward; ignores eos)\n")
    L.append("| fixture | hidden | heads / kv | head_dim | layers | inter | vocab | tied | files | RoPE | eos | bytes |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        fx = r["fx"]
        if fx["rope"] is None:
            rope = f"plain, θ={fx['theta']:g}"
        else:
            rope = (f"llama3, θ={fx['theta']:g}, factor {fx['rope']['factor']:g}, "
                    f"orig {fx['rope']['original_max_position_embeddings']}")
        rope += ", `rope_theta`+`rope_scaling`" if fx["form"] == "old" else ", `rope_parameters`"
        hd = f"{r['hd']} (absent)" if fx["drop_head_dim"] else str(r["hd"])
        files = "1" if r["shards"] == 1 else f"{r['shards']} shards + index"
        L.append(f"| `{fx['name']}` | {fx['hidden']} | {fx['heads']} / {fx['kv_heads']} | {hd} | {fx['layers']} | "
                 f"{fx['inter']} | {fx['vocab']} | {str(fx['tied']).lower()} | {files} | {rope} | "
                 f"`{json.dumps(fx['eos'])}` | {r['size']} |")
    L.append("")
    for r in results:
        fx = r["fx"]
        s = (f"- `{fx['name']}`: {fx['about']}. Logit std over the vocab {r['std'].min().item():.2f}..."
             f"{r['std'].max().item():.2f}, max |logit| {r['logits'].abs().max().item():.1f}, smallest greedy top-2 "
             f"margin {min(r['margins']):.3f} (prompt positions: {r['prompt_margin']:.3f})")
        if r["rope_effect"] is not None:
            s += f"; plain RoPE instead of llama3 would move the logits by up to {r['rope_effect'][0]:.1f}"
        L.append(s + ".")
    L.append("\nEach reference also matches a float64 re-implementation of shared/MODELS.md (\"Llama-3\") to within "
             f"{max(r['spec_err'] for r in results):.1g} (max |Δlogit|). The rewritten config.json files give "
             "bit-identical transformers logits to the form transformers wrote.")
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    os.makedirs(root, exist_ok=True)
    import transformers
    transformers.logging.set_verbosity_error()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_default_dtype(torch.float32)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}")
    results = [make_one(root, fx) for fx in FIXTURES]
    write_readme(root, results)
    bad = [(r["fx"]["name"], p) for r in results for p in r["problems"]]
    total = sum(r["size"] for r in results)
    log(f"total {total} bytes; problems: {bad if bad else 'none'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
