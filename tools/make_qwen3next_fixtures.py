#!/usr/bin/env python3
"""Make the tiny random-weight Qwen3-Next fixtures under tests/fixtures/qwen3next_*/.

Run (torch, transformers >= 5 with qwen3_next; no network, no GPU needed, everything runs on the CPU):

    python3 tools/make_qwen3next_fixtures.py tests/fixtures

Each tests/fixtures/qwen3next_<name>/ holds config.json and model.safetensors in the Hugging Face hub layout of
Qwen/Qwen3-Next-80B-A3B-Instruct: bf16 weights (dt_bias and A_log F32 in one fixture, as in the real checkpoint), one
tensor per expert (`mlp.experts.{j}.{gate,up,down}_proj.weight`). The safetensors file is written here with the hub
names rather than by save_pretrained, because transformers 5 keeps the experts fused in memory
(`mlp.experts.gate_up_proj [E, 2I, H]`) and this script must not depend on which layout save_pretrained emits (it
reports what it emits). Transformers then loads the directory (missing and unexpected keys must be empty, every
parameter must equal what was written) and computes, in float32 on the CPU with eager attention and its torch
fallbacks for the gated delta rule (chunked, chunk 64) and the causal conv1d (no fla or causal-conv1d kernels):

    reference.safetensors:
    ids     int32   [PROMPT_LEN]         prompt token ids, seeded, from [0, vocab)
    logits  float32 [PROMPT_LEN, vocab]  logits after every prompt position, one forward pass
    greedy  int32   [20]                 greedy continuation: argmax, append, full forward again; never stops at eos

Every reference is also checked against an independent float64 implementation of shared/MODELS.md ("Qwen3-Next")
below (recurrent form of the delta rule), read straight from the files: that is also the check that the chunked
torch implementation matches the recurrent form within fp32 rounding.

    python3 tools/make_qwen3next_fixtures.py --spec-only DIR   (no transformers needed)

writes the same directories with the reference taken from the float64 implementation instead, to test the script
and ollm.h without transformers. Deterministic: seeded CPU generators, float32/float64 on the CPU.
"""

import json
import math
import os
import platform
import shutil
import struct
import sys

import torch

PROMPT_LEN = 130          # > 2 chunks of the chunked delta rule (64)
GREEDY_LEN = 20
TARGET_LOGIT_STD = 3.0
MIN_GREEDY_MARGIN = 0.02
MIN_PROMPT_MARGIN = 1e-3
MIN_GREEDY_DISTINCT = 8
MIN_ROUTER_GAP = 2e-4     # log(p_k / p_(k+1)) of the router at every token and layer: no near-tie in the top-k choice
MAX_FIXTURE_BYTES = 1_500_000

FIXTURES = [
    dict(name="qwen3next_hub", seed=11, hidden=64, heads=4, kv_heads=2, head_dim=32, prf=0.25, theta=10000000.0,
         lin_k_heads=2, lin_v_heads=4, lin_k_dim=16, lin_v_dim=16, conv=4, layers=4, interval=4, layer_types=None,
         experts=16, topk=4, moe_ffn=32, shared_ffn=48, norm_topk=True, vocab=256, form="hub", f32_dt=True,
         eos=[251, 253], bos=250,
         about="config.json in the form of the real hub checkpoint (full_attention_interval 4: layers 0-2 Gated "
               "DeltaNet, layer 3 full attention; top-level rope_theta 1e7 and partial_rotary_factor 0.25, "
               "rope_scaling null, decoder_sparse_step 1, mlp_only_layers []); 4 heads / 2 kv heads, head_dim 32 "
               "(hidden/heads is 16), rotary dims 8; DeltaNet 2 key heads / 4 value heads (r = 2), dk = dv = 16, "
               "conv kernel 4; 16 experts, top-4, norm_topk_prob true, shared expert 48; dt_bias and A_log stored "
               "F32 as in the real checkpoint; eos a list"),
    dict(name="qwen3next_new", seed=22, hidden=48, heads=2, kv_heads=1, head_dim=64, prf=0.5, theta=10000.0,
         lin_k_heads=1, lin_v_heads=3, lin_k_dim=24, lin_v_dim=16, conv=3, layers=4, interval=None,
         layer_types=["full_attention", "linear_attention", "linear_attention", "full_attention"],
         experts=16, topk=4, moe_ffn=24, shared_ffn=32, norm_topk=False, vocab=320, form="new", f32_dt=False,
         eos=317, bos=316,
         about="config.json in the transformers-5 form (layer_types [full, linear, linear, full]; rope_parameters "
               "holding rope_theta 10000 and partial_rotary_factor 0.5); 2 heads / 1 kv head, head_dim 64 "
               "(hidden/heads is 24), rotary dims 32; DeltaNet 1 key head / 3 value heads (r = 3), dk 24, dv 16, "
               "conv kernel 3; 16 experts, top-4, norm_topk_prob false, shared expert 32; all weights bf16"),
    dict(name="qwen3next_shared", seed=33, hidden=64, heads=4, kv_heads=1, head_dim=16, prf=0.5, theta=1000000.0,
         lin_k_heads=2, lin_v_heads=2, lin_k_dim=32, lin_v_dim=16, conv=4, layers=4, interval=2, layer_types=None,
         experts=12, topk=3, moe_ffn=40, shared_ffn=40, norm_topk=True, vocab=272, form="hub", f32_dt=False,
         eos=271, bos=270,
         about="the shared expert as large as a routed one (as in Qwen3-Next-80B-A3B: 512 and 512), so ollm.h runs it "
               "in the experts' grouped products when decoding; full_attention_interval 2 (layers 1 and 3 full "
               "attention); 4 heads / 1 kv head of 16, rotary dims 8; DeltaNet 2 key heads / 2 value heads (r = 1), "
               "dk 32, dv 16; 12 experts, top-3, norm_topk_prob true; all weights bf16"),
]


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# safetensors, written and read here (the layout is simple; no dependency on the safetensors package)

_DT = {torch.bfloat16: "BF16", torch.float32: "F32", torch.int32: "I32"}


def _bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    try:
        return t.numpy().tobytes()
    except Exception:  # no numpy
        return bytes(t.view(torch.uint8).reshape(-1).tolist())


def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        t = tensors[k]
        b = _bytes(t)
        header[k] = {"dtype": _DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out, dtypes = {}, {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        raw = bytearray(data[8 + n + b:8 + n + e])
        if v["dtype"] == "BF16":
            i16 = torch.frombuffer(raw, dtype=torch.int16).to(torch.int32) & 0xFFFF
            t = (i16 << 16).view(torch.float32)
        elif v["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32).clone()
        elif v["dtype"] == "I32":
            t = torch.frombuffer(raw, dtype=torch.int32).clone()
        else:
            raise SystemExit(f"{path}: {k}: dtype {v['dtype']}")
        out[k] = t.reshape(v["shape"])
        dtypes[k] = v["dtype"]
    return out, dtypes


# ---------------------------------------------------------------------------------------------------------------
# config.json and weights in the hub layout


def layer_types(fx):
    if fx["layer_types"]:
        return list(fx["layer_types"])
    return ["full_attention" if (i + 1) % fx["interval"] == 0 else "linear_attention" for i in range(fx["layers"])]


def make_config(fx):
    c = {
        "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next",
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": fx["bos"], "eos_token_id": fx["eos"],
        "decoder_sparse_step": 1, "head_dim": fx["head_dim"], "hidden_act": "silu", "hidden_size": fx["hidden"],
        "initializer_range": 0.02, "intermediate_size": 4 * fx["hidden"],
        "linear_conv_kernel_dim": fx["conv"], "linear_key_head_dim": fx["lin_k_dim"],
        "linear_num_key_heads": fx["lin_k_heads"], "linear_num_value_heads": fx["lin_v_heads"],
        "linear_value_head_dim": fx["lin_v_dim"], "max_position_embeddings": 512, "mlp_only_layers": [],
        "moe_intermediate_size": fx["moe_ffn"], "norm_topk_prob": fx["norm_topk"],
        "num_attention_heads": fx["heads"], "num_experts": fx["experts"], "num_experts_per_tok": fx["topk"],
        "num_hidden_layers": fx["layers"], "num_key_value_heads": fx["kv_heads"], "output_router_logits": False,
        "rms_norm_eps": 1e-6, "router_aux_loss_coef": 0.001, "shared_expert_intermediate_size": fx["shared_ffn"],
        "tie_word_embeddings": False, "use_cache": True, "vocab_size": fx["vocab"],
    }
    if fx["form"] == "hub":   # keys of Qwen/Qwen3-Next-80B-A3B-Instruct's config.json
        c.update({"full_attention_interval": fx["interval"], "partial_rotary_factor": fx["prf"],
                  "rope_scaling": None, "rope_theta": fx["theta"], "torch_dtype": "bfloat16",
                  "use_sliding_window": False})
    else:                     # as transformers 5 writes it
        c.update({"layer_types": layer_types(fx), "dtype": "bfloat16",
                  "rope_parameters": {"partial_rotary_factor": fx["prf"], "rope_theta": fx["theta"],
                                      "rope_type": "default"}})
    return c


def make_weights(fx, seed):
    """Hub tensor names -> fp32 tensors (rounded to bf16 unless kept F32), seeded. Large enough that logits, routing
    and the DeltaNet state all matter."""
    g = torch.Generator().manual_seed(seed)
    H, hd, nh, nkv = fx["hidden"], fx["head_dim"], fx["heads"], fx["kv_heads"]
    nk, nv, dk, dv, K = fx["lin_k_heads"], fx["lin_v_heads"], fx["lin_k_dim"], fx["lin_v_dim"], fx["conv"]
    Kd, Vd, E, I, SI = nk * dk, nv * dv, fx["experts"], fx["moe_ffn"], fx["shared_ffn"]

    def randn(*shape, std=1.0, mean=0.0):
        return mean + std * torch.randn(*shape, generator=g, dtype=torch.float32)

    W, f32 = {}, set()
    W["model.embed_tokens.weight"] = randn(fx["vocab"], H)
    W["model.norm.weight"] = randn(H, std=0.1)                      # zero-centred: x_hat * (1 + w)
    W["lm_head.weight"] = randn(fx["vocab"], H, std=1 / math.sqrt(H))
    for i, lt in enumerate(layer_types(fx)):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = randn(H, std=0.1)
        W[p + "post_attention_layernorm.weight"] = randn(H, std=0.1)
        if lt == "full_attention":
            W[p + "self_attn.q_proj.weight"] = randn(nh * hd * 2, H, std=1.5 / math.sqrt(H))
            W[p + "self_attn.k_proj.weight"] = randn(nkv * hd, H, std=1.5 / math.sqrt(H))
            W[p + "self_attn.v_proj.weight"] = randn(nkv * hd, H, std=1 / math.sqrt(H))
            W[p + "self_attn.o_proj.weight"] = randn(H, nh * hd, std=1 / math.sqrt(nh * hd))
            W[p + "self_attn.q_norm.weight"] = randn(hd, std=0.1)
            W[p + "self_attn.k_norm.weight"] = randn(hd, std=0.1)
        else:
            W[p + "linear_attn.in_proj_qkvz.weight"] = randn(2 * Kd + 2 * Vd, H, std=1 / math.sqrt(H))
            W[p + "linear_attn.in_proj_ba.weight"] = randn(2 * nv, H, std=1 / math.sqrt(H))
            W[p + "linear_attn.conv1d.weight"] = randn(2 * Kd + Vd, 1, K, std=0.6)
            # g = -exp(A_log) softplus(a + dt_bias): A in [0.02, 2] gives per-token decays from ~0.99 to ~0.05
            W[p + "linear_attn.dt_bias"] = randn(nv, std=0.5, mean=0.5)
            W[p + "linear_attn.A_log"] = torch.log(0.02 + 1.98 * torch.rand(nv, generator=g))
            W[p + "linear_attn.norm.weight"] = randn(dv, std=0.1, mean=1.0)   # RMSNormGated: plain weight
            W[p + "linear_attn.out_proj.weight"] = randn(H, Vd, std=1 / math.sqrt(Vd))
            if fx["f32_dt"]:
                f32 |= {p + "linear_attn.dt_bias", p + "linear_attn.A_log"}
        W[p + "mlp.gate.weight"] = randn(E, H, std=4 / math.sqrt(H))
        for e in range(E):
            q = p + f"mlp.experts.{e}."
            W[q + "gate_proj.weight"] = randn(I, H, std=1 / math.sqrt(H))
            W[q + "up_proj.weight"] = randn(I, H, std=1 / math.sqrt(H))
            W[q + "down_proj.weight"] = randn(H, I, std=1.5 / math.sqrt(I))
        W[p + "mlp.shared_expert.gate_proj.weight"] = randn(SI, H, std=1 / math.sqrt(H))
        W[p + "mlp.shared_expert.up_proj.weight"] = randn(SI, H, std=1 / math.sqrt(H))
        W[p + "mlp.shared_expert.down_proj.weight"] = randn(H, SI, std=1 / math.sqrt(SI))
        W[p + "mlp.shared_expert_gate.weight"] = randn(1, H, std=1 / math.sqrt(H))
    for k in W:
        if k not in f32:
            W[k] = W[k].to(torch.bfloat16).to(torch.float32)
    return W, f32


def write_dir(d, fx, W, f32):
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(json.dumps(make_config(fx), indent=2, sort_keys=True) + "\n")
    st_write(os.path.join(d, "model.safetensors"),
             {k: (v if k in f32 else v.to(torch.bfloat16)) for k, v in W.items()})


# ---------------------------------------------------------------------------------------------------------------
# Independent float64 implementation of shared/MODELS.md "Qwen3-Next", weights read from the directory


def spec_forward(d, ids, stats=None):
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    W = {k: v.double() for k, v in st_read(os.path.join(d, "model.safetensors"))[0].items()}
    H, nh, nkv, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    nk, nv = c["linear_num_key_heads"], c["linear_num_value_heads"]
    dk, dv, K = c["linear_key_head_dim"], c["linear_value_head_dim"], c["linear_conv_kernel_dim"]
    r, Kd, Vd = nv // nk, nk * dk, nv * dv
    E, k_top, eps = c["num_experts"], c["num_experts_per_tok"], c["rms_norm_eps"]
    rp = c.get("rope_parameters") or {}
    theta = rp.get("rope_theta", c.get("rope_theta", 10000.0))
    prf = rp.get("partial_rotary_factor", c.get("partial_rotary_factor", 0.25))
    lts = c.get("layer_types") or ["full_attention" if (i + 1) % c["full_attention_interval"] == 0
                                   else "linear_attention" for i in range(c["num_hidden_layers"])]
    n = ids.numel()
    rot = int(hd * prf)
    inv = theta ** (-torch.arange(0, rot, 2, dtype=torch.float64) / rot)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)

    def rope(t):  # [heads, n, hd]: rotate-half within the first rot dims
        a, rest = t[..., :rot], t[..., rot:]
        rh = torch.cat([-a[..., rot // 2:], a[..., :rot // 2]], -1)
        return torch.cat([a * cos + rh * sin, rest], -1)

    def rms0(x, w):  # zero-centred
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * (1 + w)

    def silu(x):
        return x * torch.sigmoid(x)

    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    x = W["model.embed_tokens.weight"][ids.long()]
    min_gap = float("inf")
    for i, lt in enumerate(lts):
        p = f"model.layers.{i}."
        a = rms0(x, W[p + "input_layernorm.weight"])
        if lt == "full_attention":
            qg = (a @ W[p + "self_attn.q_proj.weight"].T).view(n, nh, 2 * hd)
            q, gate = qg[..., :hd], qg[..., hd:].reshape(n, nh * hd)       # per head [query | gate]
            kk = (a @ W[p + "self_attn.k_proj.weight"].T).view(n, nkv, hd)
            v = (a @ W[p + "self_attn.v_proj.weight"].T).view(n, nkv, hd)
            q = rope(rms0(q, W[p + "self_attn.q_norm.weight"]).transpose(0, 1))
            kk = rope(rms0(kk, W[p + "self_attn.k_norm.weight"]).transpose(0, 1))
            kk = kk.repeat_interleave(nh // nkv, 0)
            v = v.transpose(0, 1).repeat_interleave(nh // nkv, 0)
            s = (q @ kk.transpose(1, 2)) / math.sqrt(hd)
            o = (torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v).transpose(0, 1).reshape(n, nh * hd)
            x = x + (o * torch.sigmoid(gate)) @ W[p + "self_attn.o_proj.weight"].T
        else:
            qkvz = (a @ W[p + "linear_attn.in_proj_qkvz.weight"].T).view(n, nk, 2 * dk + 2 * r * dv)
            ba = (a @ W[p + "linear_attn.in_proj_ba.weight"].T).view(n, nk, 2 * r)
            q, kk = qkvz[..., :dk], qkvz[..., dk:2 * dk]
            v, z = qkvz[..., 2 * dk:2 * dk + r * dv], qkvz[..., 2 * dk + r * dv:]
            b, aa = ba[..., :r].reshape(n, nv), ba[..., r:].reshape(n, nv)
            mixed = torch.cat([q.reshape(n, Kd), kk.reshape(n, Kd), v.reshape(n, Vd)], -1)
            cw = W[p + "linear_attn.conv1d.weight"][:, 0, :]                 # [C, K]
            padded = torch.cat([torch.zeros(K - 1, mixed.shape[1], dtype=torch.float64), mixed], 0)
            conv = sum(cw[:, j][None, :] * padded[j:j + n] for j in range(K))
            mixed = silu(conv)
            q = mixed[:, :Kd].view(n, nk, dk)
            kk = mixed[:, Kd:2 * Kd].view(n, nk, dk)
            v = mixed[:, 2 * Kd:].view(n, nv, dv)
            q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-6) / math.sqrt(dk)
            kk = kk / torch.sqrt((kk * kk).sum(-1, keepdim=True) + 1e-6)
            q, kk = q.repeat_interleave(r, 1), kk.repeat_interleave(r, 1)    # value head j uses key head j // r
            beta = torch.sigmoid(b)
            gdec = -W[p + "linear_attn.A_log"].exp() * torch.nn.functional.softplus(aa + W[p + "linear_attn.dt_bias"])
            S = torch.zeros(nv, dk, dv, dtype=torch.float64)
            o = torch.zeros(n, nv, dv, dtype=torch.float64)
            for t in range(n):
                S = S * gdec[t].exp()[:, None, None]
                kv = torch.einsum("hkv,hk->hv", S, kk[t])
                delta = (v[t] - kv) * beta[t][:, None]
                S = S + kk[t][:, :, None] * delta[:, None, :]
                o[t] = torch.einsum("hkv,hk->hv", S, q[t])
            z = z.reshape(n, nv, dv)
            o = W[p + "linear_attn.norm.weight"] * o / torch.sqrt((o * o).mean(-1, keepdim=True) + eps) * silu(z)
            x = x + o.reshape(n, Vd) @ W[p + "linear_attn.out_proj.weight"].T
        hdn = rms0(x, W[p + "post_attention_layernorm.weight"])
        prob = torch.softmax(hdn @ W[p + "mlp.gate.weight"].T, -1)
        top = torch.topk(prob, k_top + 1, -1)
        min_gap = min(min_gap, (top.values[:, k_top - 1].log() - top.values[:, k_top].log()).min().item())
        wts, idx = top.values[:, :k_top], top.indices[:, :k_top]
        if c["norm_topk_prob"]:
            wts = wts / wts.sum(-1, keepdim=True)
        moe = torch.zeros_like(x)
        for e in range(E):
            sel = (idx == e)
            rows = sel.any(-1).nonzero()[:, 0]
            if rows.numel() == 0:
                continue
            q_ = p + f"mlp.experts.{e}."
            xe = hdn[rows]
            ye = (silu(xe @ W[q_ + "gate_proj.weight"].T) * (xe @ W[q_ + "up_proj.weight"].T)) @ W[q_ + "down_proj.weight"].T
            moe[rows] += (wts * sel)[rows].sum(-1, keepdim=True) * ye
        sh = (silu(hdn @ W[p + "mlp.shared_expert.gate_proj.weight"].T) * (hdn @ W[p + "mlp.shared_expert.up_proj.weight"].T)) \
            @ W[p + "mlp.shared_expert.down_proj.weight"].T
        moe = moe + torch.sigmoid(hdn @ W[p + "mlp.shared_expert_gate.weight"].T) * sh
        x = x + moe
    x = rms0(x, W["model.norm.weight"])
    if stats is not None:
        stats["min_router_gap"] = min_gap
    return x @ W["lm_head.weight"].T


def spec_greedy(d, ids):
    seq = ids.tolist()
    out, margins = [], []
    for _ in range(GREEDY_LEN):
        last = spec_forward(d, torch.tensor(seq))[-1]
        top = torch.topk(last, 2)
        margins.append((top.values[0] - top.values[1]).item())
        out.append(int(top.indices[0]))
        seq.append(out[-1])
    return out, margins


# ---------------------------------------------------------------------------------------------------------------
# transformers


def tf_load(d):
    import importlib.util
    import transformers
    from transformers import AutoModelForCausalLM
    import transformers.models.qwen3_next.modeling_qwen3_next as mq
    kw = dict(dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    try:
        m, info = AutoModelForCausalLM.from_pretrained(d, experts_implementation="eager", **kw)
    except (TypeError, ValueError):
        m, info = AutoModelForCausalLM.from_pretrained(d, **kw)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise SystemExit(f"{d}: transformers loading info: {bad}")
    m.eval()
    # without these packages transformers runs its reference torch code for the delta rule and the conv
    for pkg in ("fla", "causal_conv1d"):
        if importlib.util.find_spec(pkg) is not None:
            raise SystemExit(f"{pkg} is installed: uninstall it so that transformers uses its torch fallbacks")
    # older transformers 5.x also picks the implementation per layer, through these attributes
    fallbacks = {n: getattr(mq, n) for n in dir(mq) if n.startswith("torch_")}
    n_gdn = 0
    for mod in m.modules():
        if isinstance(mod, mq.Qwen3NextGatedDeltaNet):
            # the torch reference paths: chunked delta rule (prefill), torch conv1d; never fla / causal-conv1d
            if hasattr(mod, "causal_conv1d_fn"):
                mod.causal_conv1d_fn = None
            for attr in ("causal_conv1d_update", "chunk_gated_delta_rule", "recurrent_gated_delta_rule"):
                if hasattr(mod, attr) and "torch_" + attr in fallbacks:
                    setattr(mod, attr, fallbacks["torch_" + attr])
            for a in ("causal_conv1d_fn", "chunk_gated_delta_rule"):
                f_ = getattr(mod, a, None)
                if f_ is not None and not getattr(f_, "__module__", "").startswith("transformers"):
                    raise SystemExit(f"linear_attn.{a} is {f_} ({getattr(f_, '__module__', '')}), not a torch fallback")
            if type(mod.norm) is not mq.Qwen3NextRMSNormGated:
                raise SystemExit(f"linear_attn.norm is {type(mod.norm)}, not the torch Qwen3NextRMSNormGated")
            n_gdn += 1
    for n_, p in m.named_parameters():
        if p.dtype != torch.float32:
            raise SystemExit(f"{d}: {n_} loaded as {p.dtype}")
    return m, n_gdn, transformers.__version__


def tf_check_params(m, W, fx):
    """Every parameter transformers holds equals what was written (fused experts rebuilt from the per-expert hub
    tensors: gate_up_proj[e] = cat(gate_proj, up_proj), down_proj[e] = down_proj)."""
    used, sd = set(), m.state_dict()
    for name, t in sd.items():
        t = t.float()
        if name in W:
            ref = W[name]
            used.add(name)
        elif name.endswith("mlp.experts.gate_up_proj"):
            p = name[:-len("gate_up_proj")]
            ref = torch.stack([torch.cat([W[f"{p}{e}.gate_proj.weight"], W[f"{p}{e}.up_proj.weight"]], 0)
                               for e in range(fx["experts"])])
            used |= {f"{p}{e}.{w}_proj.weight" for e in range(fx["experts"]) for w in ("gate", "up")}
        elif name.endswith("mlp.experts.down_proj"):
            p = name[:-len("down_proj")]
            ref = torch.stack([W[f"{p}{e}.down_proj.weight"] for e in range(fx["experts"])])
            used |= {f"{p}{e}.down_proj.weight" for e in range(fx["experts"])}
        else:
            raise SystemExit(f"transformers parameter {name} has no counterpart in the hub layout")
        if tuple(t.shape) != tuple(ref.shape) or not torch.equal(t, ref.float()):
            raise SystemExit(f"transformers parameter {name} differs from what was written")
    if set(W) - used:
        raise SystemExit(f"written but not used by transformers: {sorted(set(W) - used)[:5]}")
    return sorted(sd)[:3]


def tf_forward(m, ids):
    with torch.no_grad():
        return m(input_ids=ids[None], use_cache=False).logits[0].float()


def tf_greedy(m, ids):
    seq = ids.tolist()
    out, margins = [], []
    for _ in range(GREEDY_LEN):
        last = tf_forward(m, torch.tensor(seq, dtype=torch.long))[-1]
        top = torch.topk(last, 2)
        margins.append((top.values[0] - top.values[1]).item())
        out.append(int(top.indices[0]))
        seq.append(out[-1])
    return out, margins


def tf_save_layout(m, tmp):
    """What save_pretrained writes for the experts (reported only; the fixtures are written here)."""
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    m.save_pretrained(tmp)
    names = []
    for f in sorted(os.listdir(tmp)):
        if f.endswith(".safetensors"):
            with open(os.path.join(tmp, f), "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                names += [k for k in json.loads(fh.read(n)) if k != "__metadata__"]
    shutil.rmtree(tmp)
    ex = sorted(k for k in names if ".layers.0.mlp.experts" in k)
    return ex[:4] + (["..."] if len(ex) > 4 else []), len(ex)


# ---------------------------------------------------------------------------------------------------------------


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def make_one(root, fx, use_tf):
    d = os.path.join(root, fx["name"])
    g = torch.Generator().manual_seed(fx["seed"])
    ids = torch.randint(0, fx["vocab"], (PROMPT_LEN,), generator=g, dtype=torch.long)
    for attempt in range(40):
        seed = fx["seed"] * 1000 + attempt
        W, f32 = make_weights(fx, seed)
        write_dir(d, fx, W, f32)
        # scale the head for a logit std of about TARGET_LOGIT_STD (float64 implementation; bf16 after scaling)
        s = spec_forward(d, ids).std(-1).mean().item()
        W["lm_head.weight"] = (W["lm_head.weight"] * (TARGET_LOGIT_STD / s)).to(torch.bfloat16).to(torch.float32)
        write_dir(d, fx, W, f32)
        if use_tf:
            m, n_gdn, tfv = tf_load(d)
            tf_check_params(m, W, fx)
            logits = tf_forward(m, ids)
            out, margins = tf_greedy(m, ids)
        else:
            n_gdn, tfv = None, None
            out, margins = spec_greedy(d, ids)
        # one float64 pass over prompt + greedy tokens: the spec's logits, its greedy choices, the router gaps
        stats = {}
        spec_full = spec_forward(d, torch.tensor(ids.tolist() + out[:-1]), stats)
        spec, sg_out, gap = spec_full[:PROMPT_LEN], spec_full[PROMPT_LEN - 1:].argmax(-1).tolist(), stats["min_router_gap"]
        if not use_tf:
            logits = spec.float()
        std = logits.std(-1)
        top2 = torch.topk(logits, 2, -1).values
        prompt_margin = (top2[:, 0] - top2[:, 1]).min().item()
        ok = (min(margins) >= MIN_GREEDY_MARGIN and std.min().item() >= 1.0 and prompt_margin >= MIN_PROMPT_MARGIN
              and len(set(out)) >= MIN_GREEDY_DISTINCT and gap >= MIN_ROUTER_GAP and out == sg_out)
        log(f"{fx['name']} seed {seed}: logit std min {std.min().item():.3f} mean {std.mean().item():.3f}, greedy "
            f"min margin {min(margins):.4f}, prompt min margin {prompt_margin:.4f}, {len(set(out))} distinct greedy "
            f"tokens, router top-k logit gap {gap:.2e}, spec greedy {'same' if out == sg_out else 'DIFFERENT'}"
            + ("" if ok else "  -> reseed"))
        if ok:
            break
    else:
        raise SystemExit(f"{fx['name']}: no seed passed the checks")

    st_write(os.path.join(d, "reference.safetensors"),
             {"ids": ids.to(torch.int32), "logits": logits.contiguous(), "greedy": torch.tensor(out, dtype=torch.int32)})
    spec_err = (spec - logits.double()).abs().max().item()
    maxl = logits.abs().max().item()
    # what a wrong-but-plausible implementation would change (so the fixture can tell)
    notes = []
    if use_tf:
        layout, n_exp = tf_save_layout(m, os.path.join(root, ".tmp_save"))
        notes.append(f"transformers {tfv} save_pretrained writes layer 0's experts as {n_exp} tensors: {layout}")
        notes.append(f"{n_gdn} Gated DeltaNet layers; fla and causal_conv1d not installed, so transformers ran its "
                     f"torch fallbacks (torch_chunk_gated_delta_rule, chunk 64, and F.conv1d)")
    size = dir_bytes(d)
    if size > MAX_FIXTURE_BYTES:
        raise SystemExit(f"{fx['name']}: {size} bytes > {MAX_FIXTURE_BYTES}")
    summary = (f"Logit std over the vocab {std.min().item():.2f}...{std.max().item():.2f}, max |logit| {maxl:.1f}, "
               f"smallest greedy top-2 margin {min(margins):.3f} (prompt positions: {prompt_margin:.4f}), smallest "
               f"router top-k logit gap {gap:.1e}; float64 recurrent implementation vs the reference: max |dlogit| "
               f"{spec_err:.2e}; greedy identical: {out == sg_out}.")
    log(f"== {fx['name']} ({size} bytes): {summary}")
    for n_ in notes:
        log("   " + n_)
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write(f"# {fx['name']}\n\nTiny random-weight Qwen3-Next checkpoint in the hub layout, made by "
                f"`tools/make_qwen3next_fixtures.py` ({'transformers ' + tfv if use_tf else 'float64 spec only'}, "
                f"torch {torch.__version__}, Python {platform.python_version()}).\n\n{fx['about']}.\n\n"
                f"Reference: `ids` int32 [{PROMPT_LEN}], `logits` float32 [{PROMPT_LEN}, {fx['vocab']}], `greedy` "
                f"int32 [{GREEDY_LEN}]. {summary}\n" + "".join(f"\n- {n_}" for n_ in notes) + ("\n" if notes else ""))
    return dict(name=fx["name"], bytes=size, spec_err=spec_err, maxl=maxl)


def main():
    args = sys.argv[1:]
    use_tf = "--spec-only" not in args
    args = [a for a in args if a != "--spec-only"]
    root = args[0] if args else "tests/fixtures"
    only = set(args[1:])
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    res = [make_one(root, fx, use_tf) for fx in FIXTURES if not only or fx["name"] in only]
    for r_ in res:
        log(f"{r_['name']}: {r_['bytes']} bytes, float64 vs reference {r_['spec_err']:.2e} (max |logit| {r_['maxl']:.1f})")


if __name__ == "__main__":
    main()
