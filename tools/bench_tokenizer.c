/* bench_tokenizer.c - encoding speed of ollm's tokenizer on one thread, in MB/s of UTF-8 input.
       cc -O2 -o /tmp/bench_tokenizer tools/bench_tokenizer.c -lm -lpthread -ldl
       /tmp/bench_tokenizer tests/fixtures/tokenizer/corpus.bin .cache/tokenizers/llama3_1 .cache/tokenizers/gptoss ...
   The document is the one tools/make_tokenizer_fixtures.py times HF tokenizers on: the corpus's ordinary text
   (multilingual prose, English docs, C and Python code) concatenated, repeated to 1 MiB and cut after the last
   newline. Each tokenizer encodes it 5 times (fresh handle: the first run starts with an empty BPE cache). */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include <stdio.h>

static uint64_t rd_varint(const unsigned char **p) {
    uint64_t v = 0; int sh = 0;
    for (;;) { unsigned char b = *(*p)++; v |= (uint64_t)(b & 0x7f) << sh; sh += 7; if (!(b & 0x80)) return v; }
}
int main(int argc, char **argv) {
    char *corpus, *text, *doc; size_t len, n, i, tlen = 0, dlen = 0; const unsigned char *p; int a, r;
    if (argc < 3) { fprintf(stderr, "usage: %s corpus.bin tokenizer-dir...\n", argv[0]); return 2; }
    if (ollm__read_file(argv[1], 1u << 30, &corpus, &len) != OLLM_OK || len < 8 || memcmp(corpus, "OLLMTKC1", 8) != 0) {
        fprintf(stderr, "%s: not a corpus file\n", argv[1]); return 1;
    }
    text = (char *)malloc(len); doc = (char *)malloc((1u << 20) + 1);
    p = (const unsigned char *)corpus + 8; n = (size_t)rd_varint(&p);
    for (i = 0; i < n; i++) {
        int kind = (int)rd_varint(&p); size_t l = (size_t)rd_varint(&p);
        if (kind == 1) { memcpy(text + tlen, p, l); tlen += l; }
        p += l;
    }
    while (dlen < (1u << 20)) { size_t k = tlen < (1u << 20) - dlen ? tlen : (1u << 20) - dlen; memcpy(doc + dlen, text, k); dlen += k; }
    while (dlen && doc[dlen - 1] != '\n') dlen--;
    for (a = 2; a < argc; a++) {
        ollm_tokenizer *t; int32_t *ids = (int32_t *)malloc(dlen * 4); size_t nids = 0; double best = 1e9, first = 0;
        if (ollm_tokenizer_open(argv[a], &t) != OLLM_OK) { fprintf(stderr, "%s\n", ollm_tokenizer_last_error(t)); return 1; }
        for (r = 0; r < 5; r++) {
            double t0 = ollm__now(), dt;
            if (ollm_tokenize(t, doc, dlen, OLLM_TOKENIZE_PARSE_SPECIAL, ids, dlen, &nids) != OLLM_OK) { fprintf(stderr, "%s\n", ollm_tokenizer_last_error(t)); return 1; }
            dt = ollm__now() - t0;
            if (r == 0) first = dt;
            if (dt < best) best = dt;
        }
        printf("{\"dir\": \"%s\", \"bytes\": %llu, \"tokens\": %llu, \"first_MBps\": %.2f, \"best_MBps\": %.2f}\n", argv[a],
               (unsigned long long)dlen, (unsigned long long)nids, dlen / first / 1e6, dlen / best / 1e6);
        ollm_tokenizer_close(t); free(ids);
    }
    free(corpus); free(text); free(doc);
    return 0;
}
