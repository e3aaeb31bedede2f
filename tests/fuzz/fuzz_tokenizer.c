/* libFuzzer harness: tokenizer.json loading and tokenisation (@tokenizer: ollm__tok_load, ollm_tokenize,
   ollm_detokenize). The input is split at FUZZ_SEP lines: part 0 is tokenizer.json, part 1 the text to tokenise,
   part 2 (optional) tokenizer_config.json. The text is tokenised plain and with ADD_SPECIAL | PARSE_SPECIAL; the ids
   must be in range and decode without error. */
#define OLLM_IMPLEMENTATION
#include "../../ollm.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir; fuzz_part parts[FUZZ_MAX_PARTS]; int n = fuzz_split(data, size, parts), pass;
    ollm__log lg; ollm_tokenizer *tok = NULL;
    if (n < 2) return 0;
    dir = fuzz_subdir("tok");
    fuzz_write(dir, "tokenizer.json", parts[0].p, parts[0].n);
    if (n > 2) fuzz_write(dir, "tokenizer_config.json", parts[2].p, parts[2].n);
    memset(&lg, 0, sizeof lg);
    if (ollm__tok_load(dir, &lg, &tok) != OLLM_OK) {
        fuzz_say("tokenizer", lg.err);
        FUZZ_CHECK(tok == NULL && lg.err[0] != 0);
        return 0;
    }
    fuzz_say("tokenizer", tok ? "" : "no tokenizer");
    if (!tok) return 0;   /* a placeholder tokenizer (or none) exercises nothing */
    for (pass = 0; pass < 2; pass++) {
        unsigned flags = pass ? OLLM_TOKENIZE_ADD_SPECIAL | OLLM_TOKENIZE_PARSE_SPECIAL : 0;
        int32_t small[4]; size_t need = 0, got = 0, i, len = 0;
        /* the text as its own allocation, so ASan sees a read past its end */
        char *text = (char *)malloc(parts[1].n ? parts[1].n : 1); int32_t *ids; char *out;
        memcpy(text, parts[1].p, parts[1].n);
        if (ollm_tokenize(tok, text, parts[1].n, flags, small, 4, &need) != OLLM_OK) { free(text); break; }
        ids = (int32_t *)malloc((need ? need : 1) * sizeof *ids);
        FUZZ_CHECK(ollm_tokenize(tok, text, parts[1].n, flags, ids, need, &got) == OLLM_OK && got == need);
        for (i = 0; i < got; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < tok->n_ids);
        for (i = 0; i < (got < 4 ? got : 4); i++) FUZZ_CHECK(small[i] == ids[i]);
        FUZZ_CHECK(ollm_detokenize(tok, ids, got, 0, NULL, 0, &len) == OLLM_OK);
        out = (char *)malloc(len ? len : 1);
        FUZZ_CHECK(ollm_detokenize(tok, ids, got, pass ? OLLM_DETOKENIZE_SKIP_SPECIAL : 0, out, len, &len) == OLLM_OK);
        free(out); free(ids); free(text);
    }
    {   /* the chat renderer on the loaded template, when it knows one */
        ollm_chat_message msgs[2]; char buf[256]; size_t len = 0;
        msgs[0].role = "system"; msgs[0].content = " be brief ";
        msgs[1].role = "user"; msgs[1].content = "hi";
        (void)ollm_chat_render(tok, msgs, 2, NULL, buf, sizeof buf, &len);
    }
    ollm__tok_free(tok);
    return 0;
}
