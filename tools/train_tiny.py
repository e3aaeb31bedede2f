#!/usr/bin/env python3
"""train_tiny.py - make the small Llama-3-architecture model that ships in examples/models/fortune-llama.

This script is the record of how that model, its tokenizer and the C library's reference fixture
(tests/fixtures/tiny_reference.safetensors) were made.  It has two steps.

1. prepare (plain python3, no third-party packages; run it on the development machine):

       apt-get install -y fortunes fortunes-min      # Debian's BSD-licensed fortune cookie files
       python3 tools/train_tiny.py prepare --fortunes /usr/share/games/fortunes --out .corpus

   reads the non-offensive fortune files (a fixed list, minus ascii-art, ethnic and men-women), cleans
   them (backspace overstrikes and control characters removed, trailing blanks stripped, ASCII-art-like
   and very long entries dropped, exact duplicates removed), shuffles them with a fixed seed and writes
   .corpus/train.jsonl and .corpus/valid.jsonl (2% of the entries held out), one {"src", "text"} per line.
   .corpus/ is ignored by git (.git/info/exclude); it travels to the GPU machine as a carried path.

2. train (needs torch, transformers 5.x, tokenizers, safetensors - this machine's python3 lacks them; run
   it on the GPU machine, e.g. through the device tool with carry [".corpus"]):

       PYTHONUNBUFFERED=1 python3 tools/train_tiny.py train --corpus .corpus \
           --out examples/models/fortune-llama --fixture tests/fixtures/tiny_reference --dropout 0.2 --epochs 22

   (the defaults are those of the shipped model; about 50 s on one H100, 46 s of it training).  Only
   files under $OUT come back from the device machine: write --out/--fixture under /tmp there, tar
   them into $OUT and unpack them here.

   a) trains a byte-level BPE tokenizer (HF `tokenizers`) on the training entries, Llama-3 style:
      Split(Llama-3 regex, isolated) + ByteLevel(no prefix space, no regex) pre-tokenizer, ByteLevel
      decoder, BPE with ignore_merges, merges saved as "a b" strings, five special tokens appended after
      the BPE vocabulary (<|begin_of_text|>, <|end_of_text|>, <|start_header_id|>, <|end_header_id|>,
      <|eot_id|>), post-processor Sequence[ByteLevel, TemplateProcessing(<|begin_of_text|> $A)];
      writes tokenizer.json and tokenizer_config.json (Llama-3-8B-Instruct's chat template);
   b) builds the token streams: each entry is `<|begin_of_text|>text<|end_of_text|>`; a fixed share of
      the training entries is instead rendered as a one-turn chat (user asks for a fortune, the
      assistant answers with the entry, `<|eot_id|>`), so that chat mode answers with a fortune too;
      the held-out stream uses the plain form only;
   c) trains LlamaForCausalLM (tied embeddings, llama3 RoPE scaling) from scratch: bf16 autocast, AdamW,
      linear warmup then cosine decay, random 256-token windows, residual/attention dropout; evaluates
      the held-out loss every --eval-every steps and keeps the best weights;
   d) saves the best weights in bf16 with save_pretrained(safe_serialization=True);
   e) re-loads the saved directory in float32 (eager attention, on the CPU), reports the held-out loss
      of the shipped weights, prints samples, and writes the fixture: <fixture>.safetensors with
      `ids` int32 [T] (prompt ids with BOS), `logits` float32 [T, vocab], `greedy` int32 [20] (argmax
      continuation, never stopping at an end token) and <fixture>.txt (prompt on its first line).

Seeds are fixed (--seed); GPU kernels are not bitwise deterministic, so a rerun gives a model of the same
quality but not identical bytes.  Losses are in nats per token of this tokenizer.
"""

import argparse
import json
import math
import os
import random
import re
import sys
import time

# --------------------------------------------------------------------------------------------------
# shared constants

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
BOS, EOS, SH, EH, EOT = SPECIALS

# Llama-3-8B-Instruct's chat template (no date lines).
CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# The fortune files used (fortunes + fortunes-min, Debian 1:1.99.1).  Left out: ascii-art (pictures),
# ethnic and men-women (stereotype jokes); the 'off' (offensive) set is never read.
FORTUNE_FILES = [
    "art", "computers", "cookie", "debian", "definitions", "disclaimer", "drugs", "education", "food",
    "fortunes", "goedel", "humorists", "kids", "knghtbrd", "law", "linux", "linuxcookie", "literature",
    "love", "magic", "medicine", "miscellaneous", "news", "paradoxum", "people", "perl", "pets",
    "platitudes", "politics", "pratchett", "riddles", "science", "songs-poems", "sports", "startrek",
    "tao", "translate-me", "wisdom", "work", "zippy",
]

# Topics for the chat-form training entries ("Tell me a fortune about love.").
TOPICS = {
    "computers": "computers", "debian": "Debian", "drugs": "drugs", "education": "education",
    "food": "food", "kids": "kids", "law": "the law", "linux": "Linux", "linuxcookie": "Linux",
    "literature": "literature", "love": "love", "magic": "magic", "medicine": "medicine", "news": "the news",
    "people": "people", "perl": "Perl", "pets": "pets", "politics": "politics", "riddles": "riddles",
    "science": "science", "songs-poems": "poetry", "sports": "sports", "startrek": "Star Trek",
    "tao": "the Tao", "wisdom": "wisdom", "work": "work",
}
GENERIC_ASKS = ["Tell me a fortune.", "Give me a fortune cookie.", "Say something wise.",
                "Tell me something funny.", "What does my fortune say?", "I need some advice.",
                "Tell me a joke.", "Say something."]
TOPIC_ASKS = ["Tell me a fortune about {}.", "Say something about {}.", "Give me a quote about {}.",
              "What do you know about {}?"]
SYSTEMS = ["You are a fortune cookie.", "You are a helpful assistant.", "You are a wise old owl."]

FIXTURE_PROMPT = ("It's 3:14 in the morning, and the computer says: \"Don't panic!\"  "
                  "The wise programmer answers that every bug is a feature nobody has documented yet, and")

SAMPLE_PROMPTS = ["The secret of life is", "Computers are", "A wise man once said"]


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------------------------------
# step 1: prepare the corpus (plain python)

def clean_entry(t):
    t = re.sub(r".\x08", "", t)                       # overstrike: "_\bX" -> "X"
    t = "".join(c for c in t if c in "\n\t" or (ord(c) >= 32 and ord(c) != 127))
    lines = [ln.rstrip() for ln in t.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def keep_entry(t, max_chars):
    if not t or len(t) > max_chars:
        return False
    visible = [c for c in t if not c.isspace()]
    letters = sum(1 for c in visible if c.isalpha())
    return len(visible) >= 8 and letters >= 0.6 * len(visible)


def cmd_prepare(a):
    docs, seen, dropped = [], set(), 0
    for name in FORTUNE_FILES:
        path = os.path.join(a.fortunes, name)
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        n = 0
        for raw in re.split(r"\n%\n|\n%$|^%\n", text):
            t = clean_entry(raw)
            key = " ".join(t.split())
            if not keep_entry(t, a.max_chars) or key in seen:
                dropped += bool(t)
                continue
            seen.add(key)
            docs.append({"src": name, "text": t})
            n += 1
        log(f"{name:14s} {n:5d} entries")
    rng = random.Random(a.seed)
    rng.shuffle(docs)
    n_valid = max(1, round(len(docs) * a.valid_frac))
    valid, train = docs[:n_valid], docs[n_valid:]
    os.makedirs(a.out, exist_ok=True)
    for fname, part in (("train.jsonl", train), ("valid.jsonl", valid)):
        with open(os.path.join(a.out, fname), "w", encoding="utf-8") as f:
            for d in part:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    chars = lambda p: sum(len(d["text"]) for d in p)
    log(f"kept {len(docs)} entries ({dropped} dropped): train {len(train)} ({chars(train)} chars), "
        f"valid {len(valid)} ({chars(valid)} chars) -> {a.out}")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def chat_text(rng, d):
    """A training entry as a one-turn chat, rendered exactly as CHAT_TEMPLATE renders it."""
    topic = TOPICS.get(d["src"])
    if topic and rng.random() < 0.5:
        ask = rng.choice(TOPIC_ASKS).format(topic)
    else:
        ask = rng.choice(GENERIC_ASKS)
    msgs = []
    r = rng.random()
    if r < 0.3:
        msgs.append(("system", SYSTEMS[int(r / 0.1)]))
    msgs += [("user", ask), ("assistant", d["text"])]
    s = BOS
    for role, content in msgs:
        s += SH + role + EH + "\n\n" + content.strip() + EOT
    return s


# --------------------------------------------------------------------------------------------------
# step 2: tokenizer

def build_tokenizer(texts, vocab_size, out_dir, max_len):
    from tokenizers import Tokenizer, AddedToken, Regex, decoders, models, pre_tokenizers, processors, trainers

    n_bpe = vocab_size - len(SPECIALS)
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=n_bpe, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    got = tok.get_vocab_size()
    assert got == n_bpe, f"BPE trainer made {got} tokens, wanted {n_bpe}"
    tok.add_special_tokens([AddedToken(s, single_word=False, lstrip=False, rstrip=False, normalized=False,
                                       special=True) for s in SPECIALS])
    bos_id = tok.token_to_id(BOS)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
                                      special_tokens=[(BOS, bos_id)]),
    ])

    # Make the JSON look like Llama-3's tokenizer.json.
    j = json.loads(tok.to_str())
    m = j["model"]
    m["ignore_merges"] = True
    m["merges"] = [x if isinstance(x, str) else " ".join(x) for x in m["merges"]]
    for x in m["merges"]:
        assert len(x.split(" ")) == 2, x
    j["post_processor"]["processors"][0] = {"type": "ByteLevel", "add_prefix_space": True,
                                            "trim_offsets": False, "use_regex": True}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    js = json.dumps(j, ensure_ascii=False, indent=2)
    tok = Tokenizer.from_str(js)
    j2 = json.loads(tok.to_str())
    assert j2["model"]["ignore_merges"] is True
    assert tok.get_vocab_size(with_added_tokens=True) == vocab_size
    ids = [tok.token_to_id(s) for s in SPECIALS]
    assert ids == list(range(n_bpe, vocab_size)), ids

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(js + "\n")
    cfg = {
        "added_tokens_decoder": {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True} for s, i in zip(SPECIALS, ids)},
        "bos_token": BOS,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": max_len,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
        f.write("\n")
    log("tokenizer: vocab", tok.get_vocab_size(with_added_tokens=True), "specials", dict(zip(SPECIALS, ids)))
    log("pre_tokenizer:", json.dumps(j2["pre_tokenizer"]))
    log("post_processor:", json.dumps(j2["post_processor"]))
    log("decoder:", json.dumps(j2["decoder"]))
    log("model flags:", {k: v for k, v in j2["model"].items() if k not in ("vocab", "merges")},
        "merges", len(j2["model"]["merges"]), "first", j2["model"]["merges"][:5])
    return tok


def check_tokenizer(tok, out_dir, docs):
    bad = 0
    for d in docs:
        e = tok.encode(d["text"], add_special_tokens=False)
        if tok.decode(e.ids, skip_special_tokens=False) != d["text"]:
            bad += 1
    log(f"tokenizer round trip: {len(docs) - bad}/{len(docs)} exact")
    e = tok.encode("Hello world")
    log("encode('Hello world') ->", e.ids, e.tokens)
    try:
        from transformers import AutoTokenizer
        ht = AutoTokenizer.from_pretrained(out_dir)
        same = ht(FIXTURE_PROMPT)["input_ids"] == tok.encode(FIXTURE_PROMPT).ids
        msgs = [{"role": "system", "content": "You are a fortune cookie."},
                {"role": "user", "content": " Tell me a fortune. "}]
        r = ht.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        want = (BOS + SH + "system" + EH + "\n\nYou are a fortune cookie." + EOT + SH + "user" + EH +
                "\n\nTell me a fortune." + EOT + SH + "assistant" + EH + "\n\n")
        log(f"transformers AutoTokenizer: {type(ht).__name__}, ids equal: {same}, chat template ok: {r == want}")
        if r != want:
            log("chat template rendered:", repr(r))
    except Exception as ex:  # reported, not fatal: the files are still written
        log("WARNING: transformers tokenizer check failed:", repr(ex))


# --------------------------------------------------------------------------------------------------
# step 3: model

def encode_stream(tok, texts):
    import torch
    ids = []
    for e in tok.encode_batch(texts, add_special_tokens=False):
        ids.extend(e.ids)
    return torch.tensor(ids, dtype=torch.long)


def evaluate(model, stream, ctx, batch, device, autocast):
    import torch
    import torch.nn.functional as F
    model.eval()
    n = (len(stream) - 1) // ctx
    xs = stream[: n * ctx].view(n, ctx)
    ys = stream[1: n * ctx + 1].view(n, ctx)
    tot, cnt = 0.0, 0
    with torch.no_grad():
        for i in range(0, n, batch):
            x, y = xs[i:i + batch].to(device), ys[i:i + batch].to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=x).logits
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
            tot += loss.item()
            cnt += y.numel()
    model.train()
    return tot / cnt


def sample(model, tok, prompt, n, greedy, gen, temperature=0.8, top_k=40, stop=True):
    import torch
    ids = tok.encode(prompt).ids
    stop_ids = {tok.token_to_id(EOS), tok.token_to_id(EOT)}
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1].float()
            if greedy:
                nxt = int(torch.argmax(logits))
            else:
                v, i = torch.topk(logits / temperature, top_k)
                p = torch.softmax(v, -1)
                nxt = int(i[torch.multinomial(p, 1, generator=gen)])
            if stop and nxt in stop_ids:
                break
            out.append(nxt)
    return out


def cmd_train(a):
    import torch
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM, AutoModelForCausalLM
    from safetensors.torch import save_file

    t_start = time.time()
    random.seed(a.seed)
    torch.manual_seed(a.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log("torch", torch.__version__, "device", device, torch.cuda.get_device_name(0) if device.type == "cuda" else "")
    import transformers, tokenizers
    log("transformers", transformers.__version__, "tokenizers", tokenizers.__version__)

    train_docs = read_jsonl(os.path.join(a.corpus, "train.jsonl"))
    valid_docs = read_jsonl(os.path.join(a.corpus, "valid.jsonl"))
    log(f"corpus: {len(train_docs)} train entries, {len(valid_docs)} held-out entries")

    tok = build_tokenizer([d["text"] for d in train_docs], a.vocab, a.out, a.max_pos)
    check_tokenizer(tok, a.out, valid_docs)

    rng = random.Random(a.seed)
    order = list(range(len(train_docs)))
    rng.shuffle(order)
    texts, n_chat = [], 0
    for k in order:
        d = train_docs[k]
        if rng.random() < a.chat_frac:
            texts.append(chat_text(rng, d))
            n_chat += 1
        else:
            texts.append(BOS + d["text"] + EOS)
    train_stream = encode_stream(tok, texts)
    valid_stream = encode_stream(tok, [BOS + d["text"] + EOS for d in valid_docs])
    valid_bytes = sum(len(d["text"].encode("utf-8")) for d in valid_docs)
    log(f"train stream {len(train_stream)} tokens ({n_chat} chat-form entries), held-out {len(valid_stream)} "
        f"tokens ({valid_bytes} bytes, {valid_bytes / len(valid_stream):.2f} bytes/token)")
    log("first chat-form entry:", repr(next(t for t in texts if t.startswith(BOS + SH))))

    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    cfg = LlamaConfig(
        vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.inter, num_hidden_layers=a.layers,
        num_attention_heads=a.heads, num_key_value_heads=a.kv_heads, head_dim=a.hidden // a.heads,
        max_position_embeddings=a.max_pos, rms_norm_eps=1e-5, tie_word_embeddings=True,
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": a.ctx},
        attention_dropout=a.dropout, bos_token_id=ids[BOS], eos_token_id=[ids[EOS], ids[EOT]],
        pad_token_id=None, initializer_range=0.02,
    )
    model = LlamaForCausalLM(cfg)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters ({2 * n_params / 1e6:.2f} MB in bf16)")
    if a.dropout > 0:
        def drop(mod, inp, out):
            return F.dropout(out, a.dropout, mod.training)
        for layer in model.model.layers:
            layer.self_attn.o_proj.register_forward_hook(drop)
            layer.mlp.register_forward_hook(drop)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")
    tokens_per_step = a.batch * a.ctx
    steps = a.steps or max(1, round(a.epochs * len(train_stream) / tokens_per_step))
    warm = min(a.warmup, steps // 10 + 1)
    log(f"training {steps} steps x {tokens_per_step} tokens ({steps * tokens_per_step / len(train_stream):.1f} "
        f"epochs), lr {a.lr}, warmup {warm}, wd {a.wd}, dropout {a.dropout}")

    def lr_at(s):
        if s < warm:
            return a.lr * (s + 1) / warm
        p = (s - warm) / max(1, steps - warm)
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    gen = torch.Generator().manual_seed(a.seed)
    arange = torch.arange(a.ctx + 1)
    autocast = device.type == "cuda"
    best, best_step, best_state = float("inf"), -1, None
    history = []
    model.train()
    t0 = time.time()
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        off = torch.randint(0, len(train_stream) - a.ctx - 1, (a.batch,), generator=gen)
        w = train_stream[off[:, None] + arange].to(device, non_blocking=True)
        x, y = w[:, :-1], w[:, 1:]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (s + 1) % a.eval_every == 0 or s == steps - 1:
            v = evaluate(model, valid_stream, a.ctx, 64, device, autocast)
            history.append((s + 1, loss.item(), v))
            mark = ""
            if v < best:
                best, best_step = v, s + 1
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
                mark = " *"
            log(f"step {s + 1:5d}/{steps}  lr {lr_at(s):.2e}  train {loss.item():.4f}  held-out {v:.4f}"
                f"  {time.time() - t0:6.1f}s{mark}")
        if time.time() - t0 > a.max_train_seconds:
            log(f"stopping: {a.max_train_seconds}s training time limit")
            break
    train_secs = time.time() - t0
    log(f"training took {train_secs:.1f}s; best held-out {best:.4f} nats/token at step {best_step}")

    model.load_state_dict(best_state)
    model.config.attention_dropout = 0.0
    model.to(torch.bfloat16)
    model.save_pretrained(a.out, safe_serialization=True)
    gc_path = os.path.join(a.out, "generation_config.json")
    gcfg = {"bos_token_id": ids[BOS], "eos_token_id": [ids[EOS], ids[EOT]], "do_sample": True,
            "temperature": 0.8, "top_k": 40, "max_length": a.max_pos}
    with open(gc_path, "w") as f:
        json.dump(gcfg, f, indent=2)
        f.write("\n")
    del model, best_state, opt

    # ---- re-load what was saved, float32, eager attention, on the CPU
    m = AutoModelForCausalLM.from_pretrained(a.out, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    log("saved config:", json.dumps(json.loads(open(os.path.join(a.out, "config.json")).read()), sort_keys=True))
    from safetensors import safe_open
    with safe_open(os.path.join(a.out, "model.safetensors"), "pt") as f:
        names = list(f.keys())
        log(f"model.safetensors: {len(names)} tensors, e.g.",
            {k: (str(f.get_slice(k).get_dtype()), f.get_slice(k).get_shape()) for k in sorted(names)[:4]})
        log("lm_head stored:", any(k.startswith("lm_head") for k in names))
    v32 = evaluate(m, valid_stream, a.ctx, 64, torch.device("cpu"), False)
    log(f"held-out loss of the saved bf16 weights (float32 math): {v32:.4f} nats/token, "
        f"{v32 * len(valid_stream) / valid_bytes / math.log(2):.3f} bits/byte")

    g = torch.Generator().manual_seed(a.seed)
    samples = []
    for i, p in enumerate(SAMPLE_PROMPTS):
        out = sample(m, tok, p, 80, i == 0, g)
        txt = tok.decode(out, skip_special_tokens=False)
        samples.append({"prompt": p, "mode": "greedy" if i == 0 else "sampled T=0.8 top-k 40", "text": txt})
        log(f"--- sample {i + 1} ({samples[-1]['mode']}): {p!r}\n{p}{txt}\n---")
    chat = (BOS + SH + "user" + EH + "\n\nTell me a fortune about computers." + EOT + SH + "assistant" + EH + "\n\n")
    out = sample(m, tok, chat, 80, False, g)
    log("--- chat sample: 'Tell me a fortune about computers.'\n" + tok.decode(out, skip_special_tokens=False))

    # ---- the fixture
    pid = tok.encode(FIXTURE_PROMPT).ids
    log(f"fixture prompt: {len(pid)} tokens (with BOS)")
    assert 30 <= len(pid) <= 60, len(pid)
    with torch.no_grad():
        logits = m(input_ids=torch.tensor([pid])).logits[0].float().contiguous()
    greedy = sample(m, tok, FIXTURE_PROMPT, 20, True, None, stop=False)
    assert greedy[0] == int(logits[-1].argmax())
    os.makedirs(os.path.dirname(a.fixture) or ".", exist_ok=True)
    save_file({"ids": torch.tensor(pid, dtype=torch.int32), "logits": logits,
               "greedy": torch.tensor(greedy, dtype=torch.int32)}, a.fixture + ".safetensors")
    with open(a.fixture + ".txt", "w", encoding="utf-8") as f:
        f.write(FIXTURE_PROMPT + "\n")
        f.write("# line 1: the prompt (encode with BOS). Made by tools/train_tiny.py from "
                "examples/models/fortune-llama in float32, eager attention.\n")
        f.write("# greedy continuation: " + json.dumps(tok.decode(greedy, skip_special_tokens=False)) + "\n")
    log("fixture ids:", pid)
    log("fixture greedy:", greedy, repr(tok.decode(greedy, skip_special_tokens=False)))
    log("fixture logits[0,:4]", logits[0, :4].tolist(), "logits[-1,:4]", logits[-1, :4].tolist())

    metrics = {"params": n_params, "steps": len(history) and history[-1][0], "best_step": best_step,
               "held_out_loss_training": best, "held_out_loss_saved_fp32": v32,
               "bits_per_byte": v32 * len(valid_stream) / valid_bytes / math.log(2),
               "train_tokens": len(train_stream), "held_out_tokens": len(valid_stream),
               "train_seconds": train_secs, "history": history, "samples": samples, "args": vars(a)}
    if a.metrics:
        with open(a.metrics, "w") as f:
            json.dump(metrics, f, indent=1)
    log(f"done in {time.time() - t_start:.1f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="build .corpus/{train,valid}.jsonl from the fortune files")
    p.add_argument("--fortunes", default="/usr/share/games/fortunes")
    p.add_argument("--out", default=".corpus")
    p.add_argument("--valid-frac", type=float, default=0.02)
    p.add_argument("--max-chars", type=int, default=4000)
    p.add_argument("--seed", type=int, default=1234)
    t = sub.add_parser("train", help="train tokenizer and model, save them, write the fixture")
    t.add_argument("--corpus", default=".corpus")
    t.add_argument("--out", default="examples/models/fortune-llama")
    t.add_argument("--fixture", default="tests/fixtures/tiny_reference", help="path without extension")
    t.add_argument("--metrics", default="", help="optional path for a JSON summary (losses, samples)")
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--vocab", type=int, default=4096)
    t.add_argument("--hidden", type=int, default=256)
    t.add_argument("--inter", type=int, default=704)
    t.add_argument("--layers", type=int, default=6)
    t.add_argument("--heads", type=int, default=8)
    t.add_argument("--kv-heads", type=int, default=4)
    t.add_argument("--max-pos", type=int, default=2048)
    t.add_argument("--ctx", type=int, default=256)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--epochs", type=float, default=22)
    t.add_argument("--steps", type=int, default=0, help="overrides --epochs")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--min-lr-frac", type=float, default=0.1)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--wd", type=float, default=0.1)
    t.add_argument("--dropout", type=float, default=0.2)
    t.add_argument("--chat-frac", type=float, default=0.15)
    t.add_argument("--eval-every", type=int, default=50)
    t.add_argument("--max-train-seconds", type=float, default=360)
    a = ap.parse_args()
    {"prepare": cmd_prepare, "train": cmd_train}[a.cmd](a)


if __name__ == "__main__":
    main()
