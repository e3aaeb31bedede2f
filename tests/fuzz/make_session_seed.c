/* Writes the seed inputs of fuzz_session: real session folders of the fixture model, packed as the harness reads
   them (flags byte, session.hdr, FUZZ_SEP, kv.bin). Used by tests/fuzz/make_seeds.sh; run from the repository root:
     cc -O1 tests/fuzz/make_session_seed.c -o build/make_session_seed -lm -lpthread -ldl
     build/make_session_seed tests/fixtures/llama_gqa1 tests/fuzz/corpus/fuzz_session
   With a third argument, the harness's mixture-of-experts byte (0: GPT-OSS, 1: Qwen3-Next): flag 128 and that byte
   lead every seed, the sessions are fed in chunks of 4 as the harness opens them, and the seed names get a prefix. */
#define OLLM_IMPLEMENTATION
#include "../../ollm.h"
#include "fuzz_common.h"

static size_t slurp(const char *dir, const char *name, uint8_t *buf, size_t cap) {
    char p[1024]; FILE *f; size_t n;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (!(f = fopen(p, "rb"))) return 0;
    n = fread(buf, 1, cap, f); fclose(f);
    return n;
}
static int moe = -1;   /* the harness's mixture-of-experts byte, or -1 */
static void pack(const char *sdir, const char *out_dir, const char *name, int flags) {
    static uint8_t buf[1 << 20]; size_t n = 1; char p[1024]; FILE *f;
    buf[0] = (uint8_t)(flags | (moe >= 0 ? 128 : 0));
    if (moe >= 0) buf[n++] = (uint8_t)moe;
    n += slurp(sdir, "session.hdr", buf + n, sizeof buf - n);
    memcpy(buf + n, FUZZ_SEP, FUZZ_SEP_LEN); n += FUZZ_SEP_LEN;
    n += slurp(sdir, "kv.bin", buf + n, sizeof buf - n);
    snprintf(p, sizeof p, "%s/%s%s", out_dir, moe < 0 ? "" : moe ? "qwen3next-" : "gptoss-", name);
    if (!(f = fopen(p, "wb")) || fwrite(buf, 1, n, f) != n) { perror(p); exit(1); }
    fclose(f);
    printf("%s: %zu bytes\n", p, n);
}

int main(int argc, char **argv) {
    ollm_model *m; ollm_session *s; ollm_model_config mc = ollm_model_config_default();
    ollm_session_config sc = ollm_session_config_default(); const char *sdir;
    int32_t a[3] = { 5, 17, 42 }, b[2] = { 7, 8 };
    if (argc != 3 && argc != 4) { fprintf(stderr, "usage: %s <model-dir> <out-dir> [0|1]\n", argv[0]); return 2; }
    if (argc == 4) moe = atoi(argv[3]) & 1;
    mc.backend = OLLM_BACKEND_CPU; mc.threads = 1;
    if (ollm_model_open(argv[1], &mc, &m) != OLLM_OK) { fprintf(stderr, "%s\n", ollm_model_last_error(m)); return 1; }
    sdir = fuzz_subdir("seed");
    sc.dir = sdir; sc.max_context = 16;
    if (moe >= 0) sc.prefill_chunk = 4;
    /* empty session */
    if (ollm_session_open(m, &sc, &s) != OLLM_OK) { fprintf(stderr, "%s\n", ollm_model_last_error(m)); return 1; }
    ollm_session_close(s);
    pack(sdir, argv[2], "empty", 0);
    /* three tokens in one record, then a rewind to 2 and two more: two records, the second starting lower */
    if (ollm_session_open(m, &sc, &s) != OLLM_OK || ollm_session_prefill(s, a, 3, NULL) != OLLM_OK) return 1;
    ollm_session_close(s);
    pack(sdir, argv[2], "three_tokens", 0);
    pack(sdir, argv[2], "three_tokens_generate", 64 | 16);
    if (ollm_session_open(m, &sc, &s) != OLLM_OK || ollm_session_rewind(s, 2) != OLLM_OK ||
        ollm_session_prefill(s, b, 2, NULL) != OLLM_OK) return 1;
    ollm_session_close(s);
    pack(sdir, argv[2], "rewound", 0);
    pack(sdir, argv[2], "rewound_fixups", 1 | 2 | 4 | 8 | 16);
    if (moe >= 0) {   /* 14 tokens in chunks of 4 (past a GPT-OSS ring of 11 rows), then a rewind to 3 and 2 more */
        int32_t c[14]; int i;
        for (i = 0; i < 14; i++) c[i] = (i * 37 + 3) % (int32_t)ollm_model_get_info(m)->vocab;
        if (ollm_session_open(m, &sc, &s) != OLLM_OK || ollm_session_rewind(s, 0) != OLLM_OK ||
            ollm_session_prefill(s, c, 14, NULL) != OLLM_OK || ollm_session_rewind(s, 3) != OLLM_OK ||
            ollm_session_prefill(s, b, 2, NULL) != OLLM_OK) return 1;
        ollm_session_close(s);
        pack(sdir, argv[2], "past_the_ring", 0);
        pack(sdir, argv[2], "past_the_ring_generate", 64 | 16);
    }
    ollm_model_close(m);
    return 0;
}
