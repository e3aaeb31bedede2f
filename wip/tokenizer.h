/* placeholder: no tokenizer yet */
struct ollm_tokenizer { ollm__log log; };
static ollm_result ollm__tok_load(const char *dir, ollm__log *lg, ollm_tokenizer **out) { (void)dir; (void)lg; *out = NULL; return OLLM_OK; }
static void ollm__tok_free(ollm_tokenizer *t) { OLLM_FREE(t); }
/* Appends the bytes of token id to out (at most cap); returns the count. skip_special: control tokens give none. */
static size_t ollm__tok_bytes(const ollm_tokenizer *t, int32_t id, int skip_special, char *out, size_t cap) {
    (void)t; (void)id; (void)skip_special; (void)out; (void)cap; return 0;
}
OLLM_API ollm_result ollm_tokenizer_open(const char *dir, ollm_tokenizer **out) {
    *out = (ollm_tokenizer *)ollm__calloc(1, sizeof **out);
    if (!*out) return OLLM_ERR_NO_MEMORY;
    return ollm__fail(&(*out)->log, OLLM_ERR_UNSUPPORTED, "%s: tokenizer not implemented yet", dir);
}
OLLM_API void ollm_tokenizer_close(ollm_tokenizer *t) { ollm__tok_free(t); }
OLLM_API const char *ollm_tokenizer_last_error(const ollm_tokenizer *t) { return t ? t->log.err : "out of memory"; }
OLLM_API ollm_result ollm_tokenize(ollm_tokenizer *t, const char *text, size_t len, unsigned flags, int32_t *ids,
                                   size_t cap, size_t *n_ids) {
    (void)t; (void)text; (void)len; (void)flags; (void)ids; (void)cap; *n_ids = 0; return OLLM_ERR_UNSUPPORTED;
}
OLLM_API ollm_result ollm_detokenize(ollm_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, char *out,
                                     size_t cap, size_t *len) {
    (void)t; (void)ids; (void)n; (void)flags; (void)out; (void)cap; *len = 0; return OLLM_ERR_UNSUPPORTED;
}
OLLM_API int32_t ollm_token_id(const ollm_tokenizer *t, const char *token_text) { (void)t; (void)token_text; return -1; }
OLLM_API ollm_result ollm_chat_render(ollm_tokenizer *t, const ollm_chat_message *msgs, size_t n,
                                      const ollm_chat_options *opt, char *out, size_t cap, size_t *len) {
    (void)t; (void)msgs; (void)n; (void)opt; (void)out; (void)cap; *len = 0; return OLLM_ERR_UNSUPPORTED;
}
