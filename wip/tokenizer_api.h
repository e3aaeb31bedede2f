/* ---- tokenizer and chat formats (public) ---- */
typedef struct ollm_tokenizer ollm_tokenizer;

enum {
    OLLM_TOKENIZE_ADD_SPECIAL = 1,    /* add what the post-processor adds (Llama-3: <|begin_of_text|>) */
    OLLM_TOKENIZE_PARSE_SPECIAL = 2   /* turn special-token text in the input into control tokens; off = plain text
                                         (the safe default for untrusted input). Added tokens that are not special
                                         (Qwen's <think>) are matched either way, as HF tokenizers does. */
};
enum { OLLM_DETOKENIZE_SKIP_SPECIAL = 1 };

/* Opens the tokenizer of a model directory (tokenizer.json, tokenizer_config.json). *out is set even on failure, to a
   handle holding only the message (ollm_tokenizer_last_error); close it either way. */
OLLM_API ollm_result ollm_tokenizer_open(const char *dir, ollm_tokenizer **out);
OLLM_API void        ollm_tokenizer_close(ollm_tokenizer *t);
OLLM_API const char *ollm_tokenizer_last_error(const ollm_tokenizer *t);
/* The tokenizer a model opened with (NULL when its directory has no tokenizer.json); owned by the model. */
OLLM_API ollm_tokenizer *ollm_model_tokenizer(const ollm_model *m);
/* ids receives up to cap ids; *n_ids the number the text needs (may exceed cap: call again with more room). */
OLLM_API ollm_result ollm_tokenize(ollm_tokenizer *t, const char *text, size_t len, unsigned flags, int32_t *ids,
                                   size_t cap, size_t *n_ids);
/* out receives up to cap bytes (not NUL-terminated); *len the number of bytes the ids decode to. */
OLLM_API ollm_result ollm_detokenize(ollm_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, char *out,
                                     size_t cap, size_t *len);
/* The id of an added token's text ("<|eot_id|>") or of a vocabulary entry as tokenizer.json spells it ("\xc4\xa0the",
   i.e. "Ġthe"); -1 if absent. */
OLLM_API int32_t     ollm_token_id(const ollm_tokenizer *t, const char *token_text);
/* The chat format ollm_chat_render uses: "llama3", "llama3.1" (3.1/3.2/3.3, with the date lines), "harmony"
   (GPT-OSS), "qwen3", "unknown" (a template we do not recognise) or "none" (no template, no telling tokens). */
OLLM_API const char *ollm_tokenizer_chat_format(const ollm_tokenizer *t);

typedef struct ollm_chat_message { const char *role; const char *content; } ollm_chat_message;  /* system|user|assistant */
typedef struct ollm_chat_options {
    int32_t     no_generation_prompt;  /* nonzero: do not append the assistant header */
    const char *reasoning_effort;      /* GPT-OSS: "low", "medium" (NULL = template default) or "high" */
    int32_t     thinking;              /* Qwen3: 0 = template default, 1 = enable_thinking true, -1 = false */
    const char *date;                  /* Llama-3.1 "Today Date" / GPT-OSS "Current date"; NULL = template default */
} ollm_chat_options;
/* Renders a conversation with the directory's chat format, byte-identical to transformers' apply_chat_template.
   out receives up to cap bytes plus a NUL when room; *len the full length. OLLM_ERR_UNSUPPORTED for an unknown
   template (pass a raw prompt instead). */
OLLM_API ollm_result ollm_chat_render(ollm_tokenizer *t, const ollm_chat_message *msgs, size_t n,
                                      const ollm_chat_options *opt, char *out, size_t cap, size_t *len);

/* ---- CUDA kernels ---- */
/* Compiles every kernel of kernels.cu.inc with NVRTC for arch ("sm_90"), publishing the CUBIN into cache_dir (NULL =
   the default cache); needs no GPU. *n_kernels receives the number of kernels in the module. */
OLLM_API ollm_result ollm_cuda_compile_kernels(const char *arch, const char *cache_dir, const char *nvrtc_path,
                                               int *n_kernels, char *err, size_t err_cap);
