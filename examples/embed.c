/* The smallest complete program that embeds ollm.h: open a model, tokenize a prompt, stream the continuation
   through a callback, close. Build: cc -O2 -o embed examples/embed.c -lm -lpthread -ldl
   Run:   ./embed examples/models/fortune-llama "The secret of life is" */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include <stdio.h>
#include <string.h>

static int print_piece(void *user, int32_t token, const char *piece, size_t len) {
    (void)user; (void)token;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;                                   /* nonzero would stop generation */
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "examples/models/fortune-llama";
    const char *prompt = argc > 2 ? argv[2] : "The secret of life is";
    ollm_model *m; ollm_session *s; int32_t ids[512]; size_t n = 0; int rc = 1;
    ollm_generate_config g = ollm_generate_config_default();
    if (ollm_model_open(dir, NULL, &m) != OLLM_OK) goto fail;          /* NULL config: defaults, CUDA if present */
    if (ollm_tokenize(ollm_model_tokenizer(m), prompt, strlen(prompt), OLLM_TOKENIZE_ADD_SPECIAL, ids, 512, &n) != OLLM_OK)
        goto fail;
    if (ollm_session_open(m, NULL, &s) != OLLM_OK) goto fail;
    if (ollm_session_prefill(s, ids, n < 512 ? n : 512, NULL) == OLLM_OK) {
        g.max_tokens = 40; g.on_token = print_piece;                     /* greedy by default */
        printf("%s", prompt);
        rc = ollm_session_generate(s, &g, NULL, 0, NULL) != OLLM_OK;
        printf("\n");
    }
    ollm_session_close(s);
fail:
    if (rc) fprintf(stderr, "embed: %s\n", ollm_model_last_error(m));
    ollm_model_close(m);
    return rc;
}
