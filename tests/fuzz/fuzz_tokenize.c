/* libFuzzer harness: tokenisation of arbitrary bytes with a real tokenizer (examples/models/fortune-llama, a
   Llama-3 byte-level BPE, loaded once). Plain tokenisation must round-trip: detokenize(tokenize(x)) == x, since every
   byte has a token and PARSE_SPECIAL is off. Set OLLM_FUZZ_TOKENIZER=<dir> to fuzz with another tokenizer. */
#define OLLM_IMPLEMENTATION
#include "../../ollm.h"
#include "fuzz_common.h"

static ollm_tokenizer *tok;
static int strict;   /* the round trip is checked only when no normalisation or stripping applies */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("OLLM_FUZZ_TOKENIZER"); ollm__log lg; int k;
    (void)argc; (void)argv;
    if (!dir) dir = "examples/models/fortune-llama";
    memset(&lg, 0, sizeof lg);
    if (ollm__tok_load(dir, &lg, &tok) != OLLM_OK || !tok) {
        fprintf(stderr, "fuzz_tokenize: no tokenizer in %s (%s): exercising nothing\n", dir, lg.err);
        tok = NULL; return 0;
    }
    strict = !tok->nfc;
    for (k = 0; k < tok->n_added; k++) if (tok->added[k].lstrip || tok->added[k].rstrip) strict = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t *ids; size_t need = 0, got = 0, len = 0, i; char *out; int pass;
    if (!tok) return 0;
    for (pass = 0; pass < 2; pass++) {
        unsigned flags = pass ? OLLM_TOKENIZE_ADD_SPECIAL | OLLM_TOKENIZE_PARSE_SPECIAL : 0;
        FUZZ_CHECK(ollm_tokenize(tok, (const char *)data, size, flags, NULL, 0, &need) == OLLM_OK);
        FUZZ_CHECK(need <= size + 16);   /* byte-level BPE: at most a token per byte, plus what ADD_SPECIAL adds */
        ids = (int32_t *)malloc((need ? need : 1) * sizeof *ids);
        FUZZ_CHECK(ollm_tokenize(tok, (const char *)data, size, flags, ids, need, &got) == OLLM_OK && got == need);
        for (i = 0; i < got; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < tok->n_ids);
        FUZZ_CHECK(ollm_detokenize(tok, ids, got, 0, NULL, 0, &len) == OLLM_OK);
        out = (char *)malloc(len ? len : 1);
        FUZZ_CHECK(ollm_detokenize(tok, ids, got, 0, out, len, &len) == OLLM_OK);
        if (pass == 0 && strict) FUZZ_CHECK(len == size && (size == 0 || memcmp(out, data, size) == 0));
        free(out); free(ids);
    }
    return 0;
}
