#!/usr/bin/env python3
"""make_tokenizer_fixtures.py - the tokenizer test corpus and its reference ids / chat renderings.

Two steps, like tools/train_tiny.py:

1. corpus (plain python3, this machine):
       python3 tools/make_tokenizer_fixtures.py corpus tests/fixtures/tokenizer/corpus.bin
   writes the hard cases below plus ordinary multilingual text: translated messages (msgstr) of the gettext
   catalogues under /usr/share/locale (dozens of languages), some English documentation from /usr/share/doc and
   source code from /usr/include and this repository. Deterministic for a given machine; the file is committed.

2. refs (the GPU machine: needs tokenizers, transformers, jinja2; no network):
       python3 tools/make_tokenizer_fixtures.py refs --corpus tests/fixtures/tokenizer/corpus.bin \
           --tokenizers .tokref --templates tests/fixtures/tokenizer/templates --out $OUT
   encodes every case with HF `tokenizers` (Tokenizer.from_file: the pipeline tokenizer.json describes) for each
   family, with special-token text parsed (the HF default) and not parsed (encode_special_tokens = True, which is
   ollm's default), and with add_special_tokens True/False; renders the chat conversations with transformers'
   apply_chat_template(chat_template=<official template>); times HF encoding of the benchmark document on one
   thread. Writes ids_<family>.bin, chat.json and hf_bench.json into --out.

Formats (little-endian, unsigned LEB128 varints "v"):
  corpus.bin      "OLLMTKC1" v:count, then per case v:kind (0 hard case, 1 ordinary text) v:len bytes
  ids_<f>.bin     "OLLMTKI1" v:n_prefix ids.. v:n_suffix ids.. v:count, then per case:
                  v:flags (1 decode(ids) == text; 2 ids listed, else only the hash; 4 parse-special ids differ and
                  follow) v:n [ids.. | u64 hash] and, with flag 4, v:n [ids.. | u64 hash] again.
                  hash = FNV-1a 64 over the ids as int32 little-endian. Hard cases list their ids (readable
                  failures); ordinary text stores hashes (small fixtures), in chunks of about 2 KB.
                  The script checks for every case that add_special_tokens=True gives prefix + ids + suffix.
  chat.json       [{"name", "dir", "template" (file under templates/, null = the directory's own), "messages",
                  "options": {"no_generation_prompt", "reasoning_effort", "thinking", "date"}, "expected",
                  "ids" (HF encode of expected, special tokens parsed, add_special_tokens=False)}]
"""
import argparse
import glob
import gettext
import json
import os
import struct
import sys
import time

FAMILIES = ["llama3_1", "gptoss", "qwen3"]


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fnv(ids):
    h = 14695981039346656037
    for b in struct.pack("<%di" % len(ids), *ids):
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


# ---- hard cases ---------------------------------------------------------------------------------------------
def hard_cases():
    c = []
    add = c.append
    # contractions in every case, and near misses
    add("It's, I'm, you're, we've, they'll, he'd, don't. IT'S I'M YOU'RE WE'VE THEY'LL HE'D DON'T.")
    add("'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D 'Re 'rE 'Ll 'lL 'sup 'tis 'x ' s ''s '''ll")
    add("Long s: 'ſ 'ſt ſ's KELVIN 'K Ångström 'ǆ")
    add("o'clock rock'n'roll O'Neil D'Angelo l'homme qu'il aujourd'hui c'est L'ÉTÉ")
    add("dog's dogs' James's the '90s ’s ‘quoted’ \"double\" «guillemets» „Anführung“")
    # digits
    add("0 12 123 1234 12345 123456 1234567 3.14159 1,000,000 2024-06-28 10:45:33 +49 (0)30 1e-9 0x1F 0b1010")
    add("١٢٣٤٥ ০১২৩৪ ๑๒๓๔๕ 一二三 ①②③④ ⅠⅡⅢⅣ ½¾ ²³ １２３４５ 𝟎𝟏𝟐𝟑 ٣.١٤")
    add("9" * 100 + " " + "1234567890" * 30)
    # whitespace
    add("a  b   c    d\te\t\tf \t g\n\nh\r\ni\r\n\r\nj \n k  \n  l\n\n\n")
    add("   leading spaces and trailing   ")
    add("\n\n\nstarts with newlines")
    add("ends with spaces    ")
    add("ends with newline spaces \n   ")
    add("nbsp\u00a0here\u00a0\u00a0two, thin\u2009space, em\u2003space, ideographic\u3000space, nnbsp\u202fx, "
        "ogham\u1680x, line\u2028sep, para\u2029sep, nel\u0085x, zwsp\u200bx, zwnj\u200cx, zwj\u200dx, bom\ufeffx, "
        "mvs\u180ex, figure\u2007sp, \u205fmath")
    add("\u3000\u3000indented with ideographic spaces\u3000")
    add(" \u00a0 \u00a0mixed\u2003 \u2003 spaces\u00a0")
    add("tabs\t\t\tand\t \t spaces\t\n\t\tindented\n")
    add("\r\n".join(["line %d" % i for i in range(10)]) + "\r\n")
    add("CR only\rline\r\rtwo")
    add(" " * 300 + "x" + "\n" * 200 + "y" + "\t" * 100)
    add("\x0b\x0c vertical tab and form feed \x1c\x1d\x1e\x1f info separators")
    # control bytes
    add("".join(chr(i) for i in range(0, 32)) + "\x7f" + "".join(chr(i) for i in range(0x80, 0xa0)))
    add("null\x00byte bell\x07 escape\x1b[31mred\x1b[0m backspace\x08")
    # punctuation and code
    add("Hello, world! How are you??? Fine... (really) [yes] {no} <maybe> @user #tag $5 %20 ^_^ &amp; *bold* ~tilde~ `code` |pipe| \\back/slash")
    add("def f(x):\n    return x**2 + 1  # comment\n\nclass A(B):\n    pass\n")
    add("int main(void) {\n\tprintf(\"%d\\n\", a[i] >> 2);\n\treturn 0;\n}\n")
    add("for (i = 0; i < n; i++) { x += y[i] * z; } // done\n/* block */ if (a != b && c <= d || !e) return;")
    add("<html><body class=\"x\"><p>Text &nbsp; <b>bold</b></p></body></html>\n<!-- comment -->")
    add("{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\\u00e9\"}}")
    add("https://example.com/path/to/page?query=1&x=y#frag http://a.b/c/ file:///etc/passwd //comment ///triple")
    add("a/b/c /usr/bin/env python3 C:\\Windows\\System32 ../../up ./here ~/home")
    add("$ ls -la | grep foo > out.txt 2>&1 && echo \"done\" || exit 1")
    add("SELECT * FROM users WHERE id = 42 AND name LIKE '%smith%';")
    add("x = y ?? z; a?.b!.c; f => g; [...arr]; `${tpl}`; a === b !== c; i++ --j")
    add("----- ===== ***** ##### ..... ,,,,, ;;;;; !!!!! ????? ~~~~~ _____ ''''' \"\"\"\"\"")
    add("!!!\n\n???\r\n...\n/\n//\n")
    add(" !! ?? ::\n")
    add("emoji:\n🙂\n\n")
    # scripts
    add("English, Français, Deutsch: Größe, Übermaß, straße. Español: ¿Qué tal? ¡Hola! Português: ação, coração.")
    add("Ελληνικά: Καλημέρα κόσμε, ΓΕΙΆ ΣΟΥ. Русский: Съешь же ещё этих мягких французских булок. Українська: Ґанок, їжак.")
    add("中文：我能吞下玻璃而不伤身体。日本語：私はガラスを食べられます。それは私を傷つけません。カタカナ ﾊﾝｶｸ")
    add("한국어: 나는 유리를 먹을 수 있어요. 그래도 아프지 않아요. 한글 자모: 각 ㄱㅏㄱ")
    add("العربية: أنا قادر على أكل الزجاج و هذا لا يؤلمني. فارسی: من می‌توانم بدون احساس درد شیشه بخورم.")
    add("עברית: אני יכול לאכול זכוכית וזה לא מזיק לי. ייִדיש: איך קען עסן גלאָז און עס טוט מיר נישט װײ.")
    add("हिन्दी: मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती. বাংলা: আমি কাঁচ খেতে পারি. தமிழ்: நான் கண்ணாடி சாப்பிடுவேன்.")
    add("ไทย: ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ ລາວ: ຂອ້ຍກິນແກ້ວໄດ້ ພາສາລາວ. ខ្មែរ: ខ្ញុំអាចញុំកញ្ចក់បាន. မြန်မာ: ကျွန်တော် ကိုယ်မ စားနိုင်")
    add("ქართული: მინას ვჭამ. Հայերեն: Կրնամ ապակի ուտել. አማርኛ: ብርጭቆ መብላት እችላለሁ. ᏣᎳᎩ Cherokee. ᠮᠣᠩᠭᠣᠯ Mongolian.")
    add("Tiếng Việt: Tôi có thể ăn thủy tinh mà không hại gì. Türkçe: İstanbul ıııİİİ. Azərbaycan: ə Ə. Polski: Zażółć gęślą jaźń.")
    add("Čeština: Příliš žluťoučký kůň úpěl ďábelské ódy. Íslenska: Ég get etið gler. Føroyskt. Cymraeg: Gallaf fwyta gwydr.")
    add("𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 𝕯𝖔𝖚𝖇𝖑𝖊 𝓈𝒸𝓇𝒾𝓅𝓉 ｆｕｌｌｗｉｄｔｈ ＡＢＣ ﬁ ﬂ ﬀ Ǆ ǅ ǆ ǈ ǋ ǲ ᾈ ᾼ ῌ ῼ")
    add("ʰʲʷ ˢᵗ ᵃᵇᶜ ｰ ー 々 〻 ꙿ ˈstress ˌsecondary ᵻ Titlecase ǅungla ǈubljana ǋovak")
    add("𓀀𓀁𓀂 𐌰𐌱𐌲 Gothic 𐐷𐐸 Deseret 𒀀𒀁 Cuneiform 𖼀 Miao 𞤀𞤢 Adlam 𑀅𑀆 Brahmi 𝄞𝄢 music")
    add("Unicode 15.0: 𑼀𑼁𑼂 Kawi, 𞀰𞀱 Cyrillic modifiers, 𞓐𞓑 Nag Mundari, 𛄲 Hentaigana, 𝼥 Latin. "
        "15.1: 𮯰𮯱𮯲 CJK Ext I, ⿼⿽ IDC. 14.0: 𞊐 Toto, 𐞀 Latin Ext-F, 𑾰 Lisu. 16.0: 𐵎 Garay, 𖵀 Kirat.")
    add("Private use: \ue000\ue001 \U000f0000 noncharacters: \ufdd0 \ufffe unassigned: \u0378 \U0003ffff")
    # combining marks and normalisation
    add("cafe\u0301 re\u0301sume\u0301 na\u0308ive A\u030a \u212b \u00c5 \u2126 \u03a9 e\u0301\u0301 a\u0323\u0302 a\u0302\u0323")
    add("Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u0336\u0317\u0324\u0353L\u0335\u0315G\u0358\u0335O zalgo text")
    add("\u0301 starts with a combining mark, \u0301\u0301 two, x\u20dd enclosed, 1\ufe0f\u20e3 keycap")
    add("\u1100\u1161\u11a8 \u1100\u1161 \uac00\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af jamo to syllables, \u3131\u314f compat")
    add("\U00011935\U00011930 Dives Akuru, \u0b47\u0b3e Oriya, \u0bc6\u0bbe Tamil, \u09c7\u09be Bengali, \u0344 excluded, \u0f73 Tibetan")
    add("\u1e9b\u0323 \u0071\u0307\u0323 \u1e0b\u0323 \u1e69 \u00e9\u0300 \u01fa\u0327 ḱṷṓn \u0958 \ufb2a \u2000 \u2126")
    add("Vietnamese NFD: Vie\u0302\u0323t Nam, Tie\u0302\u0301ng Vie\u0302\u0323t; NFC: Việt Nam, Tiếng Việt")
    add("\u00c5ngstr\u00f6m vs A\u030angstro\u0308m vs \u212bngstr\u00f6m")
    # emoji
    add("😀😃😄😁 😆😅🤣😂 🙂🙃 😉😊😇 ❤️ ❤ ♥️ ✨ ⭐ 🌟 ☀️ ☁ ⚡ 🔥 💯 ✅ ❌ ⚠️ ©️ ®️ ™️ #️⃣ *️⃣ 0️⃣")
    add("👨‍👩‍👧‍👦 👩‍❤️‍💋‍👨 🏳️‍🌈 🏴‍☠️ 👁️‍🗨️ 🧑🏽‍💻 👩🏿‍🔬 🤝🏻 🫱🏼‍🫲🏿 👍🏻👍🏼👍🏽👍🏾👍🏿 🧔‍♂️ 🏃‍♀️‍➡️")
    add("🇺🇸🇬🇧🇩🇪🇫🇷🇯🇵🇨🇳🇧🇷🇮🇳 🇺 🇸 🏴󠁧󠁢󠁳󠁣󠁴󠁿 🏴󠁧󠁢󠁥󠁮󠁧󠁿 flags: 🇪🇺🇺🇳")
    add("text😀text 😀😀😀😀😀 a😀b 1😀2 😀, 😀. (😀) \"😀\" 🙏🙏 🤷‍♂️🤷‍♀️")
    add("🧑‍🧑‍🧒‍🧒" * 20)
    add("☃ ☺ ✌ ✍ ❣ 〰 〽 ㊗ ㊙ ⌚ ⏰ ⚽ 🀄 🃏 🅰 🆎 🈁 🉐 🌀 🗿 🛸 🥇 🦄 🧀 🪐 🫠 🫶")
    # special-token text (parsed or not)
    add("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
    add("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    add("<|start|>user<|message|>Hi<|end|><|start|>assistant<|channel|>final<|message|>Hello<|return|>")
    add("<think>\nreasoning\n</think>\n\nanswer <tool_call>{\"a\":1}</tool_call> <|endoftext|> <|fim_prefix|>x<|fim_suffix|>")
    add("<|eot_id|<|eot_id|>> <<|im_end|>> <|im_end|<|im_end|> |im_start| <|reserved_special_token_5|> <|reserved_200000|>")
    add("text<|endoftext|>text <|startoftext|> <|endofprompt|> <|end_of_text|> <|finetune_right_pad_id|>")
    add("<|im_start|><|im_start|><|im_end|><|im_end|><think></think><think><think>")
    add("<|begin_of_text|>")
    add("<think>")
    add("  <|im_start|>  spaced  <|im_end|>  ")
    # very long words and runs
    add("a" * 5000)
    add("ab" * 3000)
    add("Supercalifragilisticexpialidocious" * 60)
    add("pneumonoultramicroscopicsilicovolcanoconiosis " * 30)
    add("字" * 3000)
    add("한국어" * 800)
    add("ა" * 2000 + "!" * 2000 + "ё" * 2000)
    add("🙂" * 500)
    add("x\u0301" * 800)
    add("aB" * 1500 + "ÄÖÜäöü" * 200)
    add("_" * 1000 + "-" * 1000 + "=" * 1000)
    add("😀" + "\u200d😀" * 300)
    add("The quick brown fox jumps over the lazy dog. " * 40)
    add("".join(chr(0x4e00 + (i * 7919) % 20000) for i in range(1500)))
    add("".join(chr(0x61 + (i * 31) % 26) for i in range(8000)))
    # case patterns that matter to o200k's letter classes
    add("HTTPServer XMLHttpRequest iPhone eBay McDonald MacOS PostgreSQL camelCaseWord snake_case_word SCREAMING_CASE")
    add("ABCdef DEFghi'S ÀÉÎõü ǅa ǅA aǅ ΣΑΣ σας ÉCOLE École éCOLE Dž dž DŽ ﬁNAL ǈAMA")
    add("JSON'S ISN'T WE'LL they'RE I'M'S abc'def ABC'DEF a'b A'B 1'2 '1 'A 'a")
    add("x\u02b0y \u02b0\u02b0 a\u0301B\u0301c\u0301 \u0301A \u0301a \u1d2c\u1d2e\u1d30 \u3005\u3005 \u30fc\u30fc")
    add("ﬀﬁﬂ ﬃﬄ ǆǉǌ ʣʤ ŉ ẞß")
    add("a\u0300\u0301\u0302'S A\u0300'LL \u01c5'D")
    add("word/ word// /word w/o a/b/ 1/2/3 ./ x.\n/ ;/\n\n ?/\r\n")
    add("")
    add(" ")
    add("\n")
    add("a")
    add("'")
    add("\u0301")
    add("😀")
    return c


# ---- ordinary multilingual text -------------------------------------------------------------------------------
def ordinary_text(limit):
    chunks = []
    # English prose and code first
    for path in sorted(glob.glob("/usr/share/doc/*/README*"))[:12] + ["/usr/include/stdio.h", "/usr/include/string.h"]:
        try:
            with open(path, encoding="utf-8") as f:
                chunks.append(f.read(5000))
        except Exception:
            pass
    here = os.path.dirname(os.path.abspath(__file__))
    for path in [os.path.join(here, "train_tiny.py"), os.path.join(here, "..", "ollm.h")]:
        try:
            with open(path, encoding="utf-8") as f:
                chunks.append(f.read(10000))
        except Exception:
            pass
    # translated messages: about 3 KB per language, from the largest catalogues, sorted for determinism
    langs = sorted(d for d in os.listdir("/usr/share/locale") if os.path.isdir(os.path.join("/usr/share/locale", d)))
    per_lang = 3000
    for lang in langs:
        mos = sorted(glob.glob("/usr/share/locale/%s/LC_MESSAGES/*.mo" % lang))
        mos = [m for m in mos if not os.path.basename(m).startswith("iso_")]
        got, seen = [], set()
        size = 0
        for mo in mos:
            try:
                with open(mo, "rb") as f:
                    cat = gettext.GNUTranslations(f)
            except Exception:
                continue
            for k, v in sorted(cat._catalog.items(), key=lambda kv: str(kv[0])):
                if not k or not isinstance(v, str) or not v.strip() or v in seen or len(v) < 20 or v == k:
                    continue
                seen.add(v)
                got.append(v)
                size += len(v.encode())
                if size > per_lang:
                    break
            if size > per_lang:
                break
        if size > 1500:
            chunks.append("\n".join(got))
    # cut into cases of about 2 KB on line boundaries, up to `limit` bytes in all
    cases, total = [], 0
    for ch in chunks:
        cur = ""
        for line in ch.splitlines(keepends=True):
            cur += line
            if len(cur.encode()) >= 2000:
                cases.append(cur)
                cur = ""
        if cur:
            cases.append(cur)
    out = []
    for c in cases:
        if total + len(c.encode()) > limit:
            break
        out.append(c)
        total += len(c.encode())
    return out


def cmd_corpus(a):
    hard = hard_cases()
    ordinary = ordinary_text(a.limit)
    with open(a.out, "wb") as f:
        f.write(b"OLLMTKC1" + varint(len(hard) + len(ordinary)))
        for kind, cases in ((0, hard), (1, ordinary)):
            for c in cases:
                b = c.encode("utf-8")
                f.write(varint(kind) + varint(len(b)) + b)
    print("%s: %d hard cases (%d bytes), %d ordinary (%d bytes)" % (a.out, len(hard), sum(len(c.encode()) for c in hard),
          len(ordinary), sum(len(c.encode()) for c in ordinary)))


def read_corpus(path):
    data = open(path, "rb").read()
    assert data[:8] == b"OLLMTKC1"
    pos = 8

    def rv():
        nonlocal pos
        n, sh = 0, 0
        while True:
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << sh
            sh += 7
            if not b & 0x80:
                return n
    count = rv()
    out = []
    for _ in range(count):
        kind = rv()
        n = rv()
        out.append((kind, data[pos:pos + n].decode("utf-8")))
        pos += n
    return out


def bench_doc(cases):
    """The 1 MiB benchmark document: the ordinary cases joined, repeated, cut on a line boundary (as bench_tokenizer.c)."""
    text = "".join(c for k, c in cases if k == 1).encode()
    doc = b""
    while len(doc) < (1 << 20):
        doc += text
    doc = doc[:1 << 20]
    return doc[:doc.rindex(b"\n") + 1]


# ---- chat conversations -----------------------------------------------------------------------------------------
def conversations():
    u = lambda s: {"role": "user", "content": s}
    s = lambda x: {"role": "system", "content": x}
    asst = lambda x: {"role": "assistant", "content": x}
    return {
        "user": [u("Hello! What's 2+2?")],
        "system_user": [s("  You are a pirate. Answer in pirate speak.\n"), u("  Tell me a joke about cats.\n\n")],
        "multi": [s("You are terse."), u("Name a colour."), asst("Blue."), u("Another one, please.")],
        "multi_nosys": [u("Hi"), asst("Hello! How can I help?"), u("Translate 'chat' to German."), asst("Katze."),
                        u("Danke — und auf Französisch? 🙂")],
        "unicode": [s("Réponds en français.\u00a0"), u("Qu'est-ce que « l'été » ? 日本語もOK。\u3000")],
        "thinking_history": [u("What is 6*7?"), asst("<think>\n6*7 = 42.\n</think>\n\n42"), u("And 7*8?")],
        "assistant_last": [u("Say hi."), asst("<think>\nShort answer.\n</think>\n\nHi!")],
        "empty_system": [s(""), u("Hi")],
    }


def chat_cases():
    """(name, dir, template file or None, conversation, options) for every family and option we render."""
    cases = []
    conv = conversations()
    for c in ["user", "system_user", "multi", "multi_nosys", "unicode", "empty_system"]:
        cases.append(("llama3/" + c, "llama3_1", None, c, {}))
    cases.append(("llama3/" + "multi_nogen", "llama3_1", None, "multi_nosys", {"no_generation_prompt": 1}))
    for c in ["user", "system_user", "multi", "unicode", "empty_system"]:
        cases.append(("llama3.1/" + c, "llama3_1", "llama3.1.jinja", c, {}))
    cases.append(("llama3.1/date", "llama3_1", "llama3.1.jinja", "system_user", {"date": "15 Aug 2025"}))
    cases.append(("llama3.1/nogen", "llama3_1", "llama3.1.jinja", "multi", {"no_generation_prompt": 1}))
    cases.append(("llama3.2/date", "llama3_1", "llama3.2.jinja", "multi", {"date": "01 Jan 2026"}))
    cases.append(("llama3.2/today", "llama3_1", "llama3.2.jinja", "system_user", {"date": "TODAY:%d %b %Y"}))
    for c in ["user", "system_user", "multi", "multi_nosys", "unicode", "empty_system"]:
        cases.append(("harmony/" + c, "gptoss", "gpt-oss.jinja", c, {"date": "TODAY:%Y-%m-%d"}))
    today = "TODAY:%Y-%m-%d"   # the harmony template always prints strftime_now("%Y-%m-%d")
    cases.append(("harmony/low", "gptoss", "gpt-oss.jinja", "system_user", {"date": today, "reasoning_effort": "low"}))
    cases.append(("harmony/high", "gptoss", "gpt-oss.jinja", "multi", {"date": today, "reasoning_effort": "high"}))
    cases.append(("harmony/nogen", "gptoss", "gpt-oss.jinja", "multi_nosys", {"date": today, "no_generation_prompt": 1}))
    cases.append(("harmony/vocab-fallback", "gptoss", None, "multi", {"date": today, "reference_template": "gpt-oss.jinja"}))
    for c in ["user", "system_user", "multi", "multi_nosys", "unicode", "thinking_history", "assistant_last", "empty_system"]:
        cases.append(("qwen3/" + c, "qwen3", None, c, {}))
    cases.append(("qwen3/no_think", "qwen3", None, "multi", {"thinking": -1}))
    cases.append(("qwen3/think", "qwen3", None, "thinking_history", {"thinking": 1}))
    cases.append(("qwen3/nogen", "qwen3", None, "assistant_last", {"no_generation_prompt": 1}))
    cases.append(("qwen3/no_think_history", "qwen3", None, "thinking_history", {"thinking": -1}))
    return cases, conv


def cmd_refs(a):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datetime
    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    os.makedirs(a.out, exist_ok=True)
    cases = read_corpus(a.corpus)
    summary = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__, "cases": len(cases)}
    for fam in FAMILIES:
      try:
          path = os.path.join(a.tokenizers, fam, "tokenizer.json")
          tk = Tokenizer.from_file(path)
          tk_nosplit = Tokenizer.from_file(path)
          tk_nosplit.encode_special_tokens = True
          try:
              hf = AutoTokenizer.from_pretrained(os.path.join(a.tokenizers, fam))
          except Exception as e:
              hf = None
              summary[fam + "_transformers_error"] = repr(e)
          empty = tk.encode("", add_special_tokens=True).ids
          prefix, suffix = empty, []   # with no text, add_special_tokens gives prefix + suffix; split below
          out = bytearray(b"OLLMTKI1")
          # find prefix/suffix split from a non-empty case
          probe = tk.encode("x", add_special_tokens=False).ids
          full = tk.encode("x", add_special_tokens=True).ids
          k = full.index(probe[0]) if probe[0] in full else len(full)
          prefix, suffix = full[:k], full[k + len(probe):]
          assert prefix + suffix == empty, (prefix, suffix, empty)
          out += varint(len(prefix)) + b"".join(varint(i) for i in prefix)
          out += varint(len(suffix)) + b"".join(varint(i) for i in suffix)
          out += varint(len(cases))
          n_tokens = n_diff_tf = n_lossless = n_special_diff = n_add_bad = 0
          debug = []   # hard cases: HF's normalised text and pre-tokens, to diagnose a difference offline
          for kind, text in cases:
              if kind == 0:
                  try:
                      norm = tk.normalizer.normalize_str(text) if tk.normalizer else text
                      debug.append({"norm": norm, "pieces": [s for s, _ in tk.pre_tokenizer.pre_tokenize_str(norm)]})
                  except Exception as e:
                      debug.append({"error": repr(e)})
              ids_plain = tk_nosplit.encode(text, add_special_tokens=False).ids     # ollm default: no special parsing
              ids_parse = tk.encode(text, add_special_tokens=False).ids            # HF default
              for t_, ids in ((tk_nosplit, ids_plain), (tk, ids_parse)):
                  w = t_.encode(text, add_special_tokens=True).ids
                  if w != prefix + ids + suffix:
                    n_add_bad += 1
              if hf is not None:
                  try:
                      if hf(text, add_special_tokens=False)["input_ids"] != ids_parse:
                          n_diff_tf += 1
                  except Exception:
                      n_diff_tf += 1
              lossless = tk.decode(ids_plain, skip_special_tokens=False) == text
              n_lossless += lossless
              diff = ids_parse != ids_plain
              n_special_diff += diff
              listed = kind == 0
              flags = (1 if lossless else 0) | (2 if listed else 0) | (4 if diff else 0)
              out += varint(flags)
              for ids in ([ids_plain, ids_parse] if diff else [ids_plain]):
                  out += varint(len(ids))
                  out += b"".join(varint(i) for i in ids) if listed else struct.pack("<Q", fnv(ids))
              n_tokens += len(ids_plain)
          with open(os.path.join(a.out, "ids_%s.bin" % fam), "wb") as f:
              f.write(out)
          with open(os.path.join(a.out, "debug_%s.json" % fam), "w", encoding="utf-8") as f:
              json.dump(debug, f, ensure_ascii=False)
          summary[fam] = {"tokens": n_tokens, "lossless": n_lossless, "special_differs": n_special_diff,
                          "transformers_differs_from_tokenizers": n_diff_tf, "add_special_not_prefix_suffix": n_add_bad, "prefix": prefix, "suffix": suffix,
                          "bytes": len(out)}
          print(fam, summary[fam], flush=True)
      except Exception:
        import traceback
        traceback.print_exc()
        print("family failed:", fam, flush=True)

    # chat renderings
    ccases, conv = chat_cases()
    res = []
    toks, raw = {}, {}
    for name, d, tplfile, cname, opts in ccases:
      try:
        if d not in toks:
            toks[d] = AutoTokenizer.from_pretrained(os.path.join(a.tokenizers, d))
            raw[d] = Tokenizer.from_file(os.path.join(a.tokenizers, d, "tokenizer.json"))
        hf = toks[d]
        tpl_name = tplfile or opts.get("reference_template")
        tpl = open(os.path.join(a.templates, tpl_name)).read() if tpl_name else None
        kw = {}
        date = opts.get("date")
        if date and date.startswith("TODAY:"):
            date = datetime.datetime.now().strftime(date[6:])   # what strftime_now gives the template
        elif date and tpl_name and "llama" in tpl_name:
            kw["date_string"] = date
        if "reasoning_effort" in opts:
            kw["reasoning_effort"] = opts["reasoning_effort"]
        if opts.get("thinking"):
            kw["enable_thinking"] = opts["thinking"] > 0
        gen = not opts.get("no_generation_prompt")
        msgs = conv[cname]
        text = hf.apply_chat_template(msgs, chat_template=tpl, tokenize=False, add_generation_prompt=gen, **kw)
        ids = raw[d].encode(text, add_special_tokens=False).ids
        o = {k: v for k, v in opts.items() if k in ("no_generation_prompt", "reasoning_effort", "thinking")}
        if date:
            o["date"] = date
        res.append({"name": name, "dir": d, "template": tplfile, "messages": msgs, "options": o, "expected": text,
                    "ids": ids})
      except Exception:
        import traceback
        traceback.print_exc()
        print("chat case failed:", name, flush=True)
    with open(os.path.join(a.out, "chat.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=False, indent=1)
    print("chat:", len(res), "renderings", flush=True)

    # speed: HF tokenizers on one thread, the same 1 MiB document as tools/bench_tokenizer.c
    doc = bench_doc(cases).decode("utf-8")
    bench = {}
    for fam in FAMILIES:
      try:
        tk = Tokenizer.from_file(os.path.join(a.tokenizers, fam, "tokenizer.json"))
        times = []
        for r in range(a.reps):
            t0 = time.perf_counter()
            n = len(tk.encode(doc, add_special_tokens=False).ids)
            times.append(time.perf_counter() - t0)
        mb = len(doc.encode()) / 1e6
        bench[fam] = {"tokens": n, "first_s": times[0], "best_s": min(times), "first_MBps": mb / times[0],
                      "best_MBps": mb / min(times)}
        print("hf", fam, bench[fam], flush=True)
      except Exception:
        import traceback
        traceback.print_exc()
    summary["bench"] = bench
    summary["bench_bytes"] = len(doc.encode())
    summary["date"] = datetime.datetime.now().isoformat()
    with open(os.path.join(a.out, "hf_bench.json"), "w") as f:
        json.dump(summary, f, indent=1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("out")
    c.add_argument("--limit", type=int, default=420000)
    r = sub.add_parser("refs")
    r.add_argument("--corpus", required=True)
    r.add_argument("--tokenizers", required=True)
    r.add_argument("--templates", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    {"corpus": cmd_corpus, "refs": cmd_refs}[a.cmd](a)


if __name__ == "__main__":
    main()
