/* ollm.h v0.1: run Hugging Face LLMs (Llama-3, GPT-OSS, Qwen3-Next) from their checkpoint directories, in one C
   header, on the CPU or one NVIDIA GPU, streaming what does not fit. MIT licence (end of file).

   USAGE     In exactly one .c or .cpp file:
                 #define OLLM_IMPLEMENTATION
                 #include "ollm.h"
             Build:  cc -O2 app.c -lm -lpthread -ldl   (no CUDA toolkit and no -lcuda needed to build)

             ollm_model *m; ollm_session *s;
             if (ollm_model_open("Llama-3.2-1B", NULL, &m) != OLLM_OK) {     // NULL config = defaults
                 fprintf(stderr, "%s\n", ollm_model_last_error(m)); ollm_model_close(m); return 1; }
             ollm_session_open(m, NULL, &s);
             ollm_session_prefill(s, ids, n_ids, NULL);                       // feed the prompt
             ollm_generate_config g = ollm_generate_config_default();
             g.max_tokens = 64; g.on_token = print_piece;                    // called per token
             ollm_session_generate(s, &g, NULL, 0, NULL);
             ollm_session_close(s); ollm_model_close(m);

   OPTIONS   (define before the include)
             OLLM_STATIC                  every function static: the library private to one translation unit
             OLLM_MALLOC / OLLM_REALLOC / OLLM_FREE   host allocator (all three or none)
             OLLM_ASSERT                  checks of the library's own invariants (never of input files)
             OLLM_XR_PIECE                bytes of one read of an expert from disk while running (default 1 MiB)
   ENVIRONMENT (read at run time)
             OLLM_NVRTC                   the NVRTC library to try first (or ollm_model_config.nvrtc_path)
             OLLM_GEMM=mma                prefill products on mma.sync even on sm_90, where the default is wgmma
             OLLM_ATTN=fa2                prefill attention on mma.sync (FlashAttention-2) even on sm_90, where the
                                          default is the wgmma kernel
             OLLM_PDL=0                   kernels launched one after another, without sm_90's programmatic
                                          dependent launch (which overlaps a kernel's launch with the end of the
                                          one before it)
             OLLM_PROFILE=1               the CUDA backend times every kernel and copy and logs (INFO) where the
                                          device's time went after each prefill and generation
             OLLM_PROFILE=FILE            the same, and every op to FILE, a line each: stream (0 compute, 1 copy),
                                          op, start and duration in us, bytes copied

   ERRORS    Every fallible call returns an ollm_result; ollm_model_last_error(m) holds a message naming the file,
             tensor or field at fault. The library never prints, exits or aborts; logs go to the callback in the
             config. Bad files (truncated, wrong shape, overlapping tensors, malformed JSON) are errors, not crashes.

   THREADS   One thread at a time per handle. Distinct models may be used from distinct threads.

   CONTENTS  @api        public declarations (models, sessions, generation, tokenizer and chat formats)
             @platform   files (pread/pwrite, fault injection for tests), a worker pool, clocks
             @util       errors, logging, half/bfloat conversion, hashing
             @json       strict JSON parser (UTF-8 validated, depth-limited)
             @safetensors  headers, shards and the index, validated against file sizes
             @config     config.json -> model description; RoPE frequency tables
             @backend    the op interface the model graphs call
             @cpu        the CPU reference backend (fp32 accumulation, pthreads)
             @tokenizer  byte-level BPE from tokenizer.json, Unicode tables, chat formats
             @cuda       Driver API and NVRTC loaded at run time; kernels from kernels.cu.inc; CUBIN cache
             @model      model and session state; tensors bound and checked against the config
             @tiers      where weights live: resident, or streamed per layer (per expert) from RAM or disk
             @graph-llama, @graph-gpt-oss, @graph-qwen3-next   the families' forward passes (a pass over one layer
                         each; the driver they share, ollm__forward_chunks, ends @tiers)
             @kvstore    sessions in a folder: crash-consistent K/V records, resumable
             @open       the family table; opening and closing models and sessions; prefill
             @generate   samplers and the generation loop
   FILES     kernels.cu.inc (the CUDA kernels as source text) must sit beside ollm.h; it is #included.
*/
#ifndef OLLM_H
#define OLLM_H

/* The implementation needs POSIX and GNU declarations (pread, O_DIRECT, clock_gettime) even under -std=c99: include
   ollm.h before any system header in the file that defines OLLM_IMPLEMENTATION, or define _GNU_SOURCE yourself. */
#if defined(OLLM_IMPLEMENTATION) && !defined(_GNU_SOURCE) && !defined(__APPLE__)
#  define _GNU_SOURCE
#endif

/* ==== @api ==== declarations only ==================================================================== */

#include <stddef.h>
#include <stdint.h>

#define OLLM_VERSION "0.1.0"

#if !defined(OLLM_API) && defined(OLLM_STATIC)
#  define OLLM_API static
#elif !defined(OLLM_API)
#  define OLLM_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes: append only (bindings keep the numbers). */
#define OLLM_RESULTS(X) \
    X(OLLM_OK,              "ok") \
    X(OLLM_ERR_INVALID_ARG, "invalid argument") \
    X(OLLM_ERR_IO,          "file could not be read or written") \
    X(OLLM_ERR_FORMAT,      "file is malformed") \
    X(OLLM_ERR_UNSUPPORTED, "model, dtype or option not supported") \
    X(OLLM_ERR_NO_MEMORY,   "out of host memory") \
    X(OLLM_ERR_BUDGET,      "does not fit the memory budget") \
    X(OLLM_ERR_NO_DEVICE,   "no usable CUDA driver or GPU") \
    X(OLLM_ERR_DEVICE,      "a CUDA call failed") \
    X(OLLM_ERR_CANCELLED,   "stopped by a callback") \
    X(OLLM_ERR_CONTEXT_FULL, "the session's context is full") \
    X(OLLM_ERR_MISMATCH,    "the session folder belongs to another model or layout")
#define OLLM__ENUM(name, text) name,
typedef enum ollm_result { OLLM_RESULTS(OLLM__ENUM) OLLM_RESULT_COUNT } ollm_result;
#undef OLLM__ENUM

typedef enum ollm_log_level { OLLM_LOG_ERROR, OLLM_LOG_WARN, OLLM_LOG_INFO, OLLM_LOG_DEBUG } ollm_log_level;
typedef enum ollm_backend { OLLM_BACKEND_AUTO, OLLM_BACKEND_CPU, OLLM_BACKEND_CUDA } ollm_backend;

/* Callbacks take the user pointer first, run on the calling thread, and may be NULL. */
typedef void (*ollm_log_fn)(void *user, ollm_log_level level, const char *msg);
/* piece holds only whole UTF-8 sequences (possibly empty); return nonzero to stop (OLLM_ERR_CANCELLED). */
typedef int (*ollm_token_fn)(void *user, int32_t token, const char *piece, size_t len);
/* Progress of long work (prefill): return nonzero to stop (OLLM_ERR_CANCELLED; the session stays usable). */
typedef int (*ollm_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct ollm_model ollm_model;      /* weights, tokenizer, backend, budgets */
typedef struct ollm_session ollm_session;  /* one context: KV cache, position, last logits */

/* Zero means default for every field; ollm_model_config_default() returns that. */
typedef struct ollm_model_config {
    ollm_backend backend;     /* OLLM_BACKEND_AUTO (0): CUDA when a driver and GPU are usable, else the CPU */
    int          threads;     /* CPU worker threads; 0 = online cores, at most 64 */
    uint64_t     vram_bytes;  /* GPU memory budget for everything the library puts on the GPU (64 MiB of it for the
                                 kernels and streams); 0 = free memory at open minus 512 MiB */
    uint64_t     ram_bytes;   /* host memory for weights (CPU backend) or the RAM tier (CUDA); 0 = no limit.
                                 Layers that do not fit are read from disk as they are needed */
    int32_t      stream_depth; /* layers in flight while one computes, when layers stream; 0 = 2 */
    int32_t      expert_slots; /* MoE on a GPU: the most routed experts its cache holds; 0 = as many as the budget allows
                                  (fewer than a chunk's picks still work, uploaded one expert at a time) */
    int32_t      expert_guess; /* MoE decoding with experts in the RAM tier: 0 (default) or 1 = while a layer computes,
                                  the experts the next layer's router picks from this layer's input (a guess of its
                                  picks) upload in chunks whenever the copy stream would be idle, so a right guess is
                                  a miss copied early and a wrong one delays the next layer's uploads by at most two
                                  chunks; 2 = as 1, and each guess ranked again once the layer's experts have run
                                  (its router on the next layer's input less that layer's attention: one more read
                                  back a layer); -1 = upload only what the router picked. Where experts live
                                  changes, never what is computed */
    int32_t      direct_io;    /* how layers and experts are read from disk while running: 0 = with O_DIRECT (Linux),
                                  past the page cache, where the file system takes it (else buffered); -1 = buffered,
                                  through the page cache (repeated reads may then come from RAM the kernel spares).
                                  Reads at open (resident weights, the RAM tier) are buffered either way */
    int32_t      io_threads;   /* MoE on a GPU with experts read from disk while running (no RAM copy): how many
                                  reads are in flight at once, each on a thread of its own; 0 = 8, at most 64 */
    int32_t      max_context;  /* the longest session you will open: the GPU weight planner leaves room for its KV
                                  cache and activations; 0 = min(max_position_embeddings, 8192) */
    int32_t      prefill_chunk; /* prompt tokens per pass over the layers, the sessions' default: weights stream
                                  once per chunk, activations grow with it; 0 = 256 (CPU) or 1024 (CUDA) */
    int32_t      prefill_group; /* chunks a prefill pass takes, the sessions' default (ollm_session_config's): the GPU
                                  weight planner leaves room for their residual streams. 0 = automatic: where the budget
                                  streams layers, as many as max_context holds, up to 16 (on a GPU also up to a
                                  sixteenth of its budget for what they add), in passes of equal size; else 1 */
    const char  *cache_dir;   /* compiled-kernel cache; NULL = $XDG_CACHE_HOME/ollm or ~/.cache/ollm */
    const char  *nvrtc_path;  /* NVRTC library to try first; NULL = $OLLM_NVRTC, then the usual names */
    ollm_log_fn  log;         /* receives every level; filter in the callback. NULL = silent */
    void        *log_user;
    ollm_progress_fn progress; /* called as ollm_model_open reads the weights: bytes read of the bytes the model's
                                  tensors hold (what stays on disk counts once the open is done), about 64 times;
                                  nonzero stops the open with OLLM_ERR_CANCELLED */
    void        *progress_user;
} ollm_model_config;

/* What ollm_model_get_info reports; valid while the model is open. */
typedef struct ollm_model_info {
    const char *arch;          /* "llama" */
    const char *backend;       /* "cpu" or "cuda" */
    const char *device;        /* the GPU's name, or "CPU" */
    int32_t  n_layers, hidden, n_heads, n_kv_heads, head_dim, ffn, vocab, max_context;
    uint64_t n_params;         /* parameters in the checkpoint */
    uint64_t weight_bytes;     /* bytes of weights as stored */
    int32_t  bos_id;           /* -1 if none */
    int32_t  n_eos; int32_t eos_ids[8];
    /* the tier plan and what streaming has cost so far */
    int32_t  resident_layers, streamed_layers, stream_slots;
    int32_t  prefill_chunk, prefill_group;   /* the sessions' defaults: prompt tokens a chunk, chunks a pass */
    uint64_t resident_bytes;   /* weights held on the compute device (RAM for the CPU backend) */
    uint64_t slot_bytes;       /* one streaming slot */
    int32_t  ram_layers;       /* streamed layers kept in host RAM (the rest are read from disk) */
    uint64_t ram_bytes;        /* host RAM holding them */
    uint64_t device_peak_bytes; /* most GPU memory allocated at once so far (0 for the CPU backend) */
    uint64_t disk_bytes_read;  /* layer bytes read from disk while running */
    uint64_t upload_bytes;     /* streamed layer bytes copied from host memory to the GPU while running */
    double   stream_wait_s;    /* time compute waited for a layer */
    /* the host's side of the GPU backend (0 for the CPU backend) */
    uint64_t kernel_launches;  /* kernels launched so far */
    uint64_t device_waits;     /* times the host waited for the GPU: a result read back, a copy's buffer reused */
    double   device_wait_s;    /* time spent in those waits; the rest of a token's time the host was issuing work */
    /* mixture-of-experts models on the GPU: routed experts live in a cache of expert slots, filled on demand */
    int32_t  expert_slots;     /* experts the GPU cache holds (0: no cache) */
    uint64_t expert_bytes;     /* one expert's weights (its slices of every expert tensor of a layer) */
    uint64_t expert_hits, expert_misses;   /* lookups so far: found in the cache, or uploaded */
    uint64_t expert_guesses;   /* experts uploaded ahead on a guess of the next layer's picks (expert_guess) */
    uint64_t expert_guess_hits;   /* of those, picked by their layer's router (also counted in expert_misses) */
    uint64_t expert_guess_waste;  /* bytes of guessed uploads not picked (yet): in upload_bytes, not in the misses */
} ollm_model_info;

typedef struct ollm_session_config {
    int32_t          max_context;   /* tokens; 0 = min(model's max_position_embeddings, 8192) */
    int32_t          prefill_chunk; /* tokens per pass over the layers during prefill; 0 = the model config's */
    int32_t          prefill_group; /* prefill chunks run through each layer before the next (their residual streams
                                       kept: chunk x hidden x 4 bytes each), so streamed layers and experts are copied
                                       once per group, not once per chunk; 0 = the model config's, 1 = one chunk a
                                       pass. The same results bit for bit */
    ollm_progress_fn progress;      /* called after each prefill pass (a chunk, or prefill_group of them) with the
                                       tokens done; within a pass of several chunks also after each layer, done then
                                       counting the pass's tokens by the share of layers gone through. A nonzero
                                       return stops the prefill at the end of the pass */
    void            *progress_user;
    int32_t          kv_host;       /* where the KV cache lives: 0 = on the compute device unless it would take more
                                       than half the GPU budget, then in host RAM (each layer's cache is uploaded for
                                       its attention); 1 = always in host RAM; -1 = never */
    const char      *dir;           /* NULL: the session lives in memory. A folder: every fed token's K and V are
                                       committed there (crash-consistent), and opening a session on a folder that
                                       holds one of this model resumes it without recomputing the prompt */
} ollm_session_config;

/* Zero means greedy decoding until an end-of-sequence token or the context is full. */
typedef struct ollm_generate_config {
    int32_t  max_tokens;          /* 0 = until eos or the context is full */
    float    temperature;         /* 0 = greedy (argmax) */
    int32_t  top_k;               /* 0 = off */
    float    top_p;               /* 0 or >= 1 = off */
    float    min_p;               /* 0 = off */
    float    repetition_penalty;  /* 0 or 1 = off; >1 penalises tokens already in the context (CTRL rule) */
    uint64_t seed;                /* sampling seed */
    int32_t  ignore_eos;          /* nonzero: keep going past end-of-sequence tokens */
    ollm_token_fn on_token;       /* each generated token; NULL = none */
    void    *user;
} ollm_generate_config;

OLLM_API const char *ollm_result_string(ollm_result r);
OLLM_API ollm_model_config ollm_model_config_default(void);
OLLM_API ollm_session_config ollm_session_config_default(void);
OLLM_API ollm_generate_config ollm_generate_config_default(void);

/* Opens a Hugging Face model directory. *out is set even on failure, to a handle that holds only the error message:
   read it with ollm_model_last_error and close the handle. cfg NULL = defaults. */
OLLM_API ollm_result ollm_model_open(const char *dir, const ollm_model_config *cfg, ollm_model **out);
OLLM_API void        ollm_model_close(ollm_model *m);                   /* NULL is fine */
OLLM_API const char *ollm_model_last_error(const ollm_model *m);        /* "" when none; NULL m: "out of memory" */
OLLM_API const ollm_model_info *ollm_model_get_info(const ollm_model *m);

OLLM_API ollm_result ollm_session_open(ollm_model *m, const ollm_session_config *cfg, ollm_session **out);
OLLM_API void        ollm_session_close(ollm_session *s);               /* NULL is fine */
/* Feeds n tokens. logits: NULL, or room for n * vocab floats that receives the logits after every position.
   The logits after the last position are always available from ollm_session_logits. */
OLLM_API ollm_result ollm_session_prefill(ollm_session *s, const int32_t *ids, size_t n, float *logits);
OLLM_API const float *ollm_session_logits(const ollm_session *s);       /* vocab floats; NULL before any token (or
                                                                           if reading them from the GPU failed) */
OLLM_API size_t      ollm_session_length(const ollm_session *s);        /* tokens in the context */
OLLM_API ollm_result ollm_session_rewind(ollm_session *s, size_t n);    /* keep the first n tokens (n <= length) */
/* Samples up to g->max_tokens tokens, feeding each back. out_ids (may be NULL) receives up to cap ids; *n_out (may be
   NULL) the number generated. Stops early on an eos token (unless ignore_eos), a full context, or a callback. */
OLLM_API ollm_result ollm_session_generate(ollm_session *s, const ollm_generate_config *g, int32_t *out_ids,
                                           size_t cap, size_t *n_out);

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

#ifdef __cplusplus
}
#endif
#endif /* OLLM_H */

#ifdef OLLM_IMPLEMENTATION          /* outside the include guard: see stb_howto.txt */
#ifndef OLLM__IMPLEMENTED
#define OLLM__IMPLEMENTED

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <dlfcn.h>
#include <dirent.h>

#if defined(OLLM_MALLOC) != defined(OLLM_FREE) || defined(OLLM_MALLOC) != defined(OLLM_REALLOC)
#  error "define all of OLLM_MALLOC, OLLM_REALLOC and OLLM_FREE, or none"
#endif
#ifndef OLLM_MALLOC
#  define OLLM_MALLOC(size) malloc(size)
#  define OLLM_FREE(ptr) free(ptr)
#  define OLLM_REALLOC(ptr, size) realloc(ptr, size)
#endif
#ifndef OLLM_ASSERT
#  define OLLM_ASSERT(cond) assert(cond)
#endif
#if defined(__GNUC__) || defined(__clang__)
#  define OLLM__UNUSED __attribute__((unused))   /* helpers some configurations of the library do not call */
#else
#  define OLLM__UNUSED
#endif

/* ==== @platform ==== files, threads and a worker pool, clocks ========================================== */

/* dfd: a second descriptor opened with O_DIRECT (ollm__file_open_direct), or -1; dio_err: the errno that refused it */
typedef struct ollm__file { int fd, dfd, dio_err; uint64_t size; } ollm__file;

static ollm_result ollm__file_open(ollm__file *f, const char *path) {
    struct stat st;
    f->dfd = -1; f->dio_err = 0;
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);   /* a FIFO must not block the open: refused below */
    f->size = 0;
    if (f->fd < 0) return OLLM_ERR_IO;
    if (fstat(f->fd, &st) != 0) { close(f->fd); f->fd = -1; return OLLM_ERR_IO; }
    if (!S_ISREG(st.st_mode)) { close(f->fd); f->fd = -1; errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL; return OLLM_ERR_IO; }
    f->size = (uint64_t)st.st_size;
    return OLLM_OK;
}
static void ollm__file_close(ollm__file *f) {
    if (f->fd >= 0) close(f->fd);
    if (f->dfd >= 0) close(f->dfd);
    f->fd = f->dfd = -1;
}

/* Test-only fault injection (define OLLM_FAULT_INJECTION): the hook may shorten a write (*n), or fail it with an errno
   value (return nonzero). Production builds compile it away. */
#ifdef OLLM_FAULT_INJECTION
static int (*ollm__io_fault)(int op, int fd, size_t *n);   /* op: 'r' read, 'w' write, 's' sync */
#define OLLM__FAULT(op, fd, n) (ollm__io_fault ? ollm__io_fault((op), (fd), (n)) : 0)
#else
#define OLLM__FAULT(op, fd, n) 0
#endif

/* Reads exactly n bytes at off; EINTR and short reads are retried; end of file is OLLM_ERR_IO. */
static ollm_result ollm__pread_all(int fd, void *buf, uint64_t n, uint64_t off) {
    char *p = (char *)buf;
    while (n > 0) {
        size_t want = n > ((uint64_t)1 << 30) ? ((size_t)1 << 30) : (size_t)n; ssize_t r; int fault;
        if ((fault = OLLM__FAULT('r', fd, &want)) != 0) { errno = fault; if (fault == EINTR) continue; return OLLM_ERR_IO; }
        r = pread(fd, p, want, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return OLLM_ERR_IO;
        p += r; n -= (uint64_t)r; off += (uint64_t)r;
    }
    return OLLM_OK;
}

/* Direct reads (O_DIRECT, Linux) bypass the page cache, so the file offset, the length and the buffer address of each
   read must be multiples of OLLM__DIO_ALIGN. Tensors lie at any offset: ollm__pread_direct reads the aligned span
   around the wanted bytes, in pieces of at most one bounce buffer, and copies the bytes out. */
#define OLLM__DIO_ALIGN 4096u
#define OLLM__DIO_CHUNK (8u << 20)   /* the largest bounce buffer: reads stay large, memory small */

typedef struct ollm__bounce { char *raw, *buf; uint64_t cap; } ollm__bounce;   /* buf: cap bytes, aligned */

/* A bounce buffer for reads of up to `largest` bytes (in one piece while that fits OLLM__DIO_CHUNK); 0: no memory. */
static int ollm__bounce_init(ollm__bounce *b, uint64_t largest) {
    uint64_t cap = (largest + OLLM__DIO_ALIGN - 1) / OLLM__DIO_ALIGN * OLLM__DIO_ALIGN + OLLM__DIO_ALIGN;
    if (cap > OLLM__DIO_CHUNK) cap = OLLM__DIO_CHUNK;
    if (cap < 2 * OLLM__DIO_ALIGN) cap = 2 * OLLM__DIO_ALIGN;   /* every piece then covers at least one wanted byte */
    b->raw = (char *)OLLM_MALLOC((size_t)cap + OLLM__DIO_ALIGN);
    b->buf = b->raw ? b->raw + (OLLM__DIO_ALIGN - (uintptr_t)b->raw % OLLM__DIO_ALIGN) % OLLM__DIO_ALIGN : NULL;
    b->cap = b->raw ? cap : 0;
    return b->raw != NULL;
}
static void ollm__bounce_free(ollm__bounce *b) { OLLM_FREE(b->raw); b->raw = b->buf = NULL; b->cap = 0; }

/* Opens f's O_DIRECT descriptor and reads its first block through it: 0, or the errno that refused it (the open on
   tmpfs and some FUSE file systems, the read on others: EINVAL; ENOTSUP where the platform has no O_DIRECT), also
   kept in f->dio_err. The path must still name the file f has open. */
static int ollm__file_open_direct(ollm__file *f, const char *path) {
#ifdef O_DIRECT
    char raw[2 * OLLM__DIO_ALIGN], *blk = raw + (OLLM__DIO_ALIGN - (uintptr_t)raw % OLLM__DIO_ALIGN) % OLLM__DIO_ALIGN;
    struct stat a, b; int fd, fault, err = 0; ssize_t r = -1; size_t want;
    if (f->dfd >= 0) return 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_DIRECT)) < 0) return f->dio_err = errno;
    if (fstat(fd, &a) != 0 || fstat(f->fd, &b) != 0) err = errno;
    else if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) err = ESTALE;   /* replaced since it was opened */
    while (!err && r < 0) {
        want = OLLM__DIO_ALIGN;
        if ((fault = OLLM__FAULT('r', fd, &want)) != 0) { if (fault != EINTR) err = fault; continue; }
        want = OLLM__DIO_ALIGN;   /* one whole block, whatever a test hook shortened it to */
        if ((r = pread(fd, blk, want, 0)) < 0 && errno != EINTR) err = errno;
    }
    if (err) { close(fd); return f->dio_err = err; }
    f->dfd = fd;
    return 0;
#else
    (void)path;
    return f->dio_err = ENOTSUP;
#endif
}

/* ollm__pread_all of f through its O_DIRECT descriptor and the bounce buffer b; buffered without either. The end of
   the file inside a piece, an odd-sized short read, or EINVAL from the descriptor (refused after all) finish the
   read buffered, so every error is ollm__pread_all's. */
static ollm_result ollm__pread_direct(const ollm__file *f, void *buf, uint64_t n, uint64_t off, const ollm__bounce *b) {
    char *p = (char *)buf;
    if (f->dfd < 0 || !b || !b->buf) return ollm__pread_all(f->fd, buf, n, off);
    while (n > 0) {
        uint64_t at = off / OLLM__DIO_ALIGN * OLLM__DIO_ALIGN, skip = off - at, got = 0, take;
        uint64_t span = (skip + n + OLLM__DIO_ALIGN - 1) / OLLM__DIO_ALIGN * OLLM__DIO_ALIGN;
        if (span > b->cap) span = b->cap;
        while (got < span) {   /* one aligned piece; short reads are retried from the block they stopped at */
            size_t want = (size_t)(span - got); ssize_t r; int fault;
            if ((fault = OLLM__FAULT('r', f->dfd, &want)) != 0) {
                errno = fault;
                if (fault == EINTR) continue;
                return fault == EINVAL ? ollm__pread_all(f->fd, p, n, off) : OLLM_ERR_IO;
            }
            want = want >= OLLM__DIO_ALIGN ? want / OLLM__DIO_ALIGN * OLLM__DIO_ALIGN : OLLM__DIO_ALIGN;
            r = pread(f->dfd, b->buf + got, want, (off_t)(at + got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return errno == EINVAL ? ollm__pread_all(f->fd, p, n, off) : OLLM_ERR_IO;
            if (r == 0) break;
            got += (uint64_t)r;
            if (got % OLLM__DIO_ALIGN) break;
        }
        take = got > skip ? got - skip : 0;
        if (take > n) take = n;
        memcpy(p, b->buf + skip, (size_t)take);
        p += take; n -= take; off += take;
        if (got < span && n > 0) return ollm__pread_all(f->fd, p, n, off);
    }
    return OLLM_OK;
}

/* Writes exactly n bytes at off: EINTR and short writes are retried; ENOSPC, EIO and kin are OLLM_ERR_IO (errno set). */
static ollm_result ollm__pwrite_all(int fd, const void *buf, uint64_t n, uint64_t off) {
    const char *p = (const char *)buf;
    while (n > 0) {
        size_t want = n > ((uint64_t)1 << 30) ? ((size_t)1 << 30) : (size_t)n; ssize_t r; int fault;
        if ((fault = OLLM__FAULT('w', fd, &want)) != 0) { errno = fault; if (fault == EINTR) continue; return OLLM_ERR_IO; }
        r = pwrite(fd, p, want, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { if (r == 0) errno = EIO; return OLLM_ERR_IO; }
        p += r; n -= (uint64_t)r; off += (uint64_t)r;
    }
    return OLLM_OK;
}
static ollm_result ollm__fsync(int fd) {
    int fault = OLLM__FAULT('s', fd, NULL);
    if (fault) { errno = fault; return OLLM_ERR_IO; }
    while (fsync(fd) != 0) if (errno != EINTR) return OLLM_ERR_IO;
    return OLLM_OK;
}

/* Reads a whole small file (JSON) into a NUL-terminated buffer. */
static ollm_result ollm__read_file(const char *path, uint64_t max, char **out, size_t *len) {
    ollm__file f; ollm_result r; char *buf;
    *out = NULL; *len = 0;
    if ((r = ollm__file_open(&f, path)) != OLLM_OK) return r;
    if (f.size > max) { ollm__file_close(&f); return OLLM_ERR_FORMAT; }
    buf = (char *)OLLM_MALLOC((size_t)f.size + 1);
    if (!buf) { ollm__file_close(&f); return OLLM_ERR_NO_MEMORY; }
    r = ollm__pread_all(f.fd, buf, f.size, 0);
    ollm__file_close(&f);
    if (r != OLLM_OK) { OLLM_FREE(buf); return r; }
    buf[f.size] = 0;
    *out = buf; *len = (size_t)f.size;
    return OLLM_OK;
}

static double ollm__now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A fixed pool of worker threads running one parallel-for at a time: fn(ctx, i) for i in [0, n). The calling thread
   takes part, so a pool of 1 thread runs everything inline. */
typedef void (*ollm__task_fn)(void *ctx, int64_t i);
typedef struct ollm__pool {
    int n_threads;                      /* including the caller */
    pthread_t th[64];
    pthread_mutex_t mu; pthread_cond_t go, done;
    ollm__task_fn fn; void *ctx; int64_t n, next, finished;
    uint64_t gen; int busy, quit, started;
} ollm__pool;

static void ollm__pool_work(ollm__pool *p) {   /* called with mu held; returns with mu held */
    while (p->next < p->n) {
        int64_t i = p->next++;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ctx, i);
        pthread_mutex_lock(&p->mu);
        if (++p->finished == p->n) pthread_cond_broadcast(&p->done);
    }
}
static void *ollm__pool_main(void *arg) {
    ollm__pool *p = (ollm__pool *)arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        ollm__pool_work(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}
static void ollm__pool_init(ollm__pool *p, int n_threads) {
    int i;
    memset(p, 0, sizeof *p);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    pthread_mutex_init(&p->mu, NULL); pthread_cond_init(&p->go, NULL); pthread_cond_init(&p->done, NULL);
    p->started = 1;
    p->n_threads = 1;
    for (i = 0; i < n_threads - 1; i++) {
        if (pthread_create(&p->th[i], NULL, ollm__pool_main, p) != 0) break;   /* fewer threads still works */
        p->n_threads++;
    }
}
static void ollm__pool_run(ollm__pool *p, int64_t n, ollm__task_fn fn, void *ctx) {
    if (n <= 0) return;
    if (p->n_threads <= 1 || n == 1) { int64_t i; for (i = 0; i < n; i++) fn(ctx, i); return; }
    pthread_mutex_lock(&p->mu);
    p->fn = fn; p->ctx = ctx; p->n = n; p->next = 0; p->finished = 0; p->gen++;
    pthread_cond_broadcast(&p->go);
    ollm__pool_work(p);
    while (p->finished < p->n) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
static void ollm__pool_free(ollm__pool *p) {
    int i;
    if (!p->started) return;
    pthread_mutex_lock(&p->mu); p->quit = 1; pthread_cond_broadcast(&p->go); pthread_mutex_unlock(&p->mu);
    for (i = 0; i < p->n_threads - 1; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu); pthread_cond_destroy(&p->go); pthread_cond_destroy(&p->done);
    p->started = 0;
}

/* ==== @util ==== errors, logging, half/bfloat conversion, hashing, checked arithmetic ===================== */

OLLM_API const char *ollm_result_string(ollm_result r) {
#define OLLM__TEXT(name, text) text,
    static const char *const text[] = { OLLM_RESULTS(OLLM__TEXT) };
#undef OLLM__TEXT
    return (unsigned)r < OLLM_RESULT_COUNT ? text[r] : "unknown ollm_result";
}

/* Where messages go: one per model; the parsers write into a plain buffer of this shape. */
typedef struct ollm__log { ollm_log_fn fn; void *user; char err[1024]; } ollm__log;

static void ollm__logf(ollm__log *lg, ollm_log_level level, const char *fmt, ...) {
    char msg[1024]; va_list ap;
    if (!lg || !lg->fn) return;
    va_start(ap, fmt); vsnprintf(msg, sizeof msg, fmt, ap); va_end(ap);
    lg->fn(lg->user, level, msg);
}
/* Records the message (the handle's last error), logs it at ERROR and returns r: `return ollm__fail(...)`. */
static ollm_result ollm__fail(ollm__log *lg, ollm_result r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt); vsnprintf(lg->err, sizeof lg->err, fmt, ap); va_end(ap);
    if (lg->fn) lg->fn(lg->user, OLLM_LOG_ERROR, lg->err);
    return r;
}

static void *ollm__calloc(size_t n, size_t size) {   /* zeroed, overflow-checked */
    void *p;
    if (size && n > SIZE_MAX / size) return NULL;
    p = OLLM_MALLOC(n * size > 0 ? n * size : 1);
    if (p) memset(p, 0, n * size);
    return p;
}
static char *ollm__strdup(const char *s) {
    size_t n = strlen(s) + 1; char *d = (char *)OLLM_MALLOC(n);
    if (d) memcpy(d, s, n);
    return d;
}
/* a*b with overflow detection: returns 0 on overflow */
static int ollm__mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a && b > UINT64_MAX / a) return 0;
    *out = a * b; return 1;
}

static float ollm__bf16_to_f32(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
OLLM__UNUSED static uint16_t ollm__f32_to_bf16(float f) {   /* round to nearest even; NaN stays NaN */
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static float ollm__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u; float f;
    if (exp == 0) {                           /* zero or subnormal: man * 2^-24 */
        f = (float)man * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &u, 4); return f;
}

OLLM__UNUSED static uint64_t ollm__fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data; size_t i;
    for (i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ull; }
    return h;
}
#define OLLM__FNV_INIT 14695981039346656037ull


/* ==== @json ==== strict JSON parser: RFC 8259, UTF-8 validated, depth-limited =========================== */
/* The document becomes a flat array of nodes in document order; node 0 is a sentinel meaning "absent", so lookups
   chain safely: ollm__json_get(j, ollm__json_get(j, 1, "rope_scaling"), "factor") is 0 when either is missing.
   Strings are decoded (escapes resolved) into one arena and NUL-terminated; `len` keeps embedded NULs. */

enum { OLLM__J_NONE, OLLM__J_NULL, OLLM__J_FALSE, OLLM__J_TRUE, OLLM__J_NUM, OLLM__J_STR, OLLM__J_ARR, OLLM__J_OBJ };
#define OLLM__JSON_MAX_DEPTH 128

typedef struct ollm__jnode {
    uint8_t type;
    uint32_t n;          /* children of an array or object */
    uint32_t next;       /* next sibling, 0 = last */
    const char *key;     /* member name inside an object, else NULL */
    uint32_t key_len;
    const char *s;       /* decoded string */
    uint32_t len;
    double num;
} ollm__jnode;

typedef struct ollm__json {
    ollm__jnode *v; uint32_t n, cap;
    char *arena; size_t arena_used;
    const char *src; size_t src_len, pos;
    char err[160];
} ollm__json;

static void ollm__json_free(ollm__json *j) {
    OLLM_FREE(j->v); OLLM_FREE(j->arena);
    j->v = NULL; j->arena = NULL; j->n = j->cap = 0;
}
static int ollm__json_err(ollm__json *j, const char *what) {
    size_t line = 1, i;
    for (i = 0; i < j->pos && i < j->src_len; i++) line += j->src[i] == '\n';
    snprintf(j->err, sizeof j->err, "%s at byte %llu (line %llu)", what, (unsigned long long)j->pos,
             (unsigned long long)line);
    return 0;
}
static uint32_t ollm__json_node(ollm__json *j, uint8_t type) {
    if (j->n == j->cap) {
        uint32_t cap = j->cap ? j->cap * 2 : 256;
        ollm__jnode *v;
        if (j->cap >= 0x40000000u) return 0;
        v = (ollm__jnode *)OLLM_REALLOC(j->v, (size_t)cap * sizeof *v);
        if (!v) return 0;
        j->v = v; j->cap = cap;
    }
    memset(&j->v[j->n], 0, sizeof j->v[0]);
    j->v[j->n].type = type;
    return j->n++;
}
static void ollm__json_ws(ollm__json *j) {
    while (j->pos < j->src_len) {
        char c = j->src[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        j->pos++;
    }
}
/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid (overlong, surrogate, > U+10FFFF). */
static int ollm__utf8_len(const unsigned char *p, size_t n, uint32_t *cp) {
    uint32_t c;
    if (n == 0) return 0;
    if (p[0] < 0x80) { *cp = p[0]; return 1; }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        if (n < 2 || (p[1] & 0xc0) != 0x80) return 0;
        *cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f); return 2;
    }
    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
        c = ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
        if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) return 0;
        *cp = c; return 3;
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80) return 0;
        c = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) | ((uint32_t)(p[2] & 0x3f) << 6) |
            (p[3] & 0x3f);
        if (c < 0x10000 || c > 0x10ffff) return 0;
        *cp = c; return 4;
    }
    return 0;
}
static size_t ollm__utf8_put(char *out, uint32_t c) {
    if (c < 0x80) { out[0] = (char)c; return 1; }
    if (c < 0x800) { out[0] = (char)(0xc0 | (c >> 6)); out[1] = (char)(0x80 | (c & 0x3f)); return 2; }
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | (c >> 12)); out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f)); return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18)); out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f)); out[3] = (char)(0x80 | (c & 0x3f)); return 4;
}
static int ollm__json_hex4(ollm__json *j, uint32_t *out) {
    uint32_t v = 0; int i;
    if (j->src_len - j->pos < 4) return 0;
    for (i = 0; i < 4; i++) {
        char c = j->src[j->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v; return 1;
}
/* Parses a string at j->pos (opening quote) into the arena. */
static int ollm__json_string(ollm__json *j, const char **out, uint32_t *out_len) {
    char *dst = j->arena + j->arena_used, *start = dst;
    j->pos++;
    for (;;) {
        unsigned char c;
        if (j->pos >= j->src_len) return ollm__json_err(j, "unterminated string");
        c = (unsigned char)j->src[j->pos];
        if (c == '"') { j->pos++; break; }
        if (c < 0x20) return ollm__json_err(j, "control character in string");
        if (c == '\\') {
            uint32_t cp, lo;
            if (++j->pos >= j->src_len) return ollm__json_err(j, "unterminated string");
            c = (unsigned char)j->src[j->pos++];
            switch (c) {
            case '"': *dst++ = '"'; break;   case '\\': *dst++ = '\\'; break; case '/': *dst++ = '/'; break;
            case 'b': *dst++ = '\b'; break;  case 'f': *dst++ = '\f'; break;  case 'n': *dst++ = '\n'; break;
            case 'r': *dst++ = '\r'; break;  case 't': *dst++ = '\t'; break;
            case 'u':
                if (!ollm__json_hex4(j, &cp)) return ollm__json_err(j, "bad \\u escape");
                if (cp >= 0xdc00 && cp <= 0xdfff) return ollm__json_err(j, "lone low surrogate");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (j->src_len - j->pos < 6 || j->src[j->pos] != '\\' || j->src[j->pos + 1] != 'u')
                        return ollm__json_err(j, "lone high surrogate");
                    j->pos += 2;
                    if (!ollm__json_hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        return ollm__json_err(j, "bad surrogate pair");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                dst += ollm__utf8_put(dst, cp);   /* never longer than the escape it replaces */
                break;
            default: return ollm__json_err(j, "bad escape");
            }
        } else {
            uint32_t cp; int n = ollm__utf8_len((const unsigned char *)j->src + j->pos, j->src_len - j->pos, &cp);
            if (!n) return ollm__json_err(j, "invalid UTF-8");
            memcpy(dst, j->src + j->pos, (size_t)n); dst += n; j->pos += (size_t)n;
        }
    }
    *dst++ = 0;
    *out = start; *out_len = (uint32_t)(dst - start - 1);
    j->arena_used = (size_t)(dst - j->arena);
    return 1;
}
static int ollm__json_number(ollm__json *j, double *out) {
    /* Locale-independent: mantissa digits then one correctly rounded scaling in most cases (exact powers of 10). */
    static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                                  1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
    const char *s = j->src; size_t p = j->pos, n = j->src_len;
    int neg = 0, digits = 0; uint64_t m = 0; int exp10 = 0, e = 0, eneg = 0; double v;
    if (p < n && s[p] == '-') { neg = 1; p++; }
    if (p >= n || s[p] < '0' || s[p] > '9') { j->pos = p; return ollm__json_err(j, "bad number"); }
    if (s[p] == '0') { p++; if (p < n && s[p] >= '0' && s[p] <= '9') { j->pos = p; return ollm__json_err(j, "leading zero"); } }
    else while (p < n && s[p] >= '0' && s[p] <= '9') {
        if (digits < 19) { m = m * 10 + (uint64_t)(s[p] - '0'); digits += m != 0; }
        else if (exp10 < 100000) exp10++;   /* bounded: a 2 GiB run of digits must not overflow int (inf anyway) */
        p++;
    }
    if (p < n && s[p] == '.') {
        p++;
        if (p >= n || s[p] < '0' || s[p] > '9') { j->pos = p; return ollm__json_err(j, "bad fraction"); }
        while (p < n && s[p] >= '0' && s[p] <= '9') {
            if (digits < 19 && exp10 > -100000) { m = m * 10 + (uint64_t)(s[p] - '0'); digits += m != 0; exp10--; }
            p++;
        }
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-')) eneg = s[p++] == '-';
        if (p >= n || s[p] < '0' || s[p] > '9') { j->pos = p; return ollm__json_err(j, "bad exponent"); }
        while (p < n && s[p] >= '0' && s[p] <= '9') { if (e < 100000) e = e * 10 + (s[p] - '0'); p++; }
    }
    exp10 += eneg ? -e : e;
    v = (double)m;
    if (m == 0) v = 0;
    else if (exp10 >= 0) { while (exp10 > 22) { v *= 1e22; exp10 -= 22; if (isinf(v)) break; } v *= p10[exp10 > 22 ? 22 : exp10]; }
    else { while (exp10 < -22) { v /= 1e22; exp10 += 22; if (v == 0) break; } v /= p10[-exp10 > 22 ? 22 : -exp10]; }
    *out = neg ? -v : v;
    j->pos = p;
    return 1;
}
static int ollm__json_value(ollm__json *j, uint32_t *out, int depth) {
    uint32_t id; char c;
    ollm__json_ws(j);
    if (j->pos >= j->src_len) return ollm__json_err(j, "unexpected end of input");
    if (depth > OLLM__JSON_MAX_DEPTH) return ollm__json_err(j, "nesting too deep");
    c = j->src[j->pos];
    if (c == '{' || c == '[') {
        uint32_t prev = 0, count = 0; int obj = c == '{';
        if (!(id = ollm__json_node(j, obj ? OLLM__J_OBJ : OLLM__J_ARR))) return ollm__json_err(j, "out of memory");
        j->pos++;
        ollm__json_ws(j);
        if (j->pos < j->src_len && j->src[j->pos] == (obj ? '}' : ']')) { j->pos++; *out = id; return 1; }
        for (;;) {
            const char *key = NULL; uint32_t key_len = 0, child;
            ollm__json_ws(j);
            if (obj) {
                if (j->pos >= j->src_len || j->src[j->pos] != '"') return ollm__json_err(j, "expected member name");
                if (!ollm__json_string(j, &key, &key_len)) return 0;
                ollm__json_ws(j);
                if (j->pos >= j->src_len || j->src[j->pos] != ':') return ollm__json_err(j, "expected ':'");
                j->pos++;
            }
            if (!ollm__json_value(j, &child, depth + 1)) return 0;
            j->v[child].key = key; j->v[child].key_len = key_len;
            if (prev) j->v[prev].next = child;
            prev = child; count++;
            ollm__json_ws(j);
            if (j->pos >= j->src_len) return ollm__json_err(j, "unexpected end of input");
            if (j->src[j->pos] == ',') { j->pos++; continue; }
            if (j->src[j->pos] == (obj ? '}' : ']')) { j->pos++; break; }
            return ollm__json_err(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        j->v[id].n = count;
        *out = id; return 1;
    }
    if (c == '"') {
        const char *s; uint32_t len;
        if (!(id = ollm__json_node(j, OLLM__J_STR))) return ollm__json_err(j, "out of memory");
        if (!ollm__json_string(j, &s, &len)) return 0;
        j->v[id].s = s; j->v[id].len = len;
        *out = id; return 1;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        double d = 0;
        if (!(id = ollm__json_node(j, OLLM__J_NUM))) return ollm__json_err(j, "out of memory");
        if (!ollm__json_number(j, &d)) return 0;
        j->v[id].num = d;
        *out = id; return 1;
    }
    {
        static const char *const words[] = { "null", "false", "true" };
        static const uint8_t types[] = { OLLM__J_NULL, OLLM__J_FALSE, OLLM__J_TRUE };
        int w;
        for (w = 0; w < 3; w++) {
            size_t l = strlen(words[w]);
            if (j->src_len - j->pos >= l && memcmp(j->src + j->pos, words[w], l) == 0) {
                if (!(id = ollm__json_node(j, types[w]))) return ollm__json_err(j, "out of memory");
                j->pos += l; *out = id; return 1;
            }
        }
    }
    return ollm__json_err(j, "unexpected character");
}
/* Parses text[0..len). On failure returns 0 and j->err says what and where. The root is node 1. */
static int ollm__json_parse(ollm__json *j, const char *text, size_t len) {
    uint32_t root;
    memset(j, 0, sizeof *j);
    j->src = text; j->src_len = len;
    if (len >= 0x7fffffffu) { snprintf(j->err, sizeof j->err, "document larger than 2 GiB"); return 0; }
    j->arena = (char *)OLLM_MALLOC(len + 1);
    ollm__json_node(j, OLLM__J_NONE);   /* node 0: the "absent" sentinel */
    if (!j->arena || j->n != 1) { snprintf(j->err, sizeof j->err, "out of memory"); return 0; }
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) j->pos = 3;   /* tolerate a UTF-8 byte order mark */
    if (!ollm__json_value(j, &root, 0)) return 0;
    ollm__json_ws(j);
    if (j->pos != len) return ollm__json_err(j, "trailing characters after the document");
    return 1;
}
static uint32_t ollm__json_first(const ollm__json *j, uint32_t id) {
    return id && (j->v[id].type == OLLM__J_ARR || j->v[id].type == OLLM__J_OBJ) && j->v[id].n ? id + 1 : 0;
}
static uint32_t ollm__json_next(const ollm__json *j, uint32_t id) { return id ? j->v[id].next : 0; }
/* Member `key` of object `obj`, or 0. The last duplicate wins (as serde_json and Python do). */
static uint32_t ollm__json_get(const ollm__json *j, uint32_t obj, const char *key) {
    uint32_t c, found = 0; size_t kl = strlen(key);
    if (!obj || j->v[obj].type != OLLM__J_OBJ) return 0;
    for (c = ollm__json_first(j, obj); c; c = j->v[c].next)
        if (j->v[c].key_len == kl && memcmp(j->v[c].key, key, kl) == 0) found = c;
    return found;
}
static int ollm__json_is(const ollm__json *j, uint32_t id, int type) { return id && j->v[id].type == type; }
static const char *ollm__json_str(const ollm__json *j, uint32_t id) {
    return ollm__json_is(j, id, OLLM__J_STR) ? j->v[id].s : NULL;
}

/* ==== @safetensors ==== headers, shards and the index, validated against file sizes ===================== */
/* A file is: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [b, e]}}, then
   the data. Every tensor is checked: known dtype, shape product without overflow, e - b = dtype size x elements,
   e within the file, no two tensors overlapping. Files are untrusted. */

typedef enum ollm__dtype {
    OLLM__F32, OLLM__F16, OLLM__BF16, OLLM__F64, OLLM__I64, OLLM__I32, OLLM__I16, OLLM__I8, OLLM__U8, OLLM__BOOL,
    OLLM__F8_E4M3, OLLM__F8_E5M2, OLLM__DTYPE_COUNT
} ollm__dtype;
static const char *const ollm__dtype_names[] = { "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8",
                                                 "BOOL", "F8_E4M3", "F8_E5M2" };
static const uint8_t ollm__dtype_size[] = { 4, 2, 2, 8, 8, 4, 2, 1, 1, 1, 1, 1 };

#define OLLM__MAX_DIMS 6
#define OLLM__ST_MAX_HEADER (256u << 20)   /* the largest hub headers are a few MB */
#define OLLM__ST_MAX_TENSORS 2000000u
#define OLLM__ST_MAX_FILES 4096

typedef struct ollm__tensor {
    char *name;
    uint16_t file;              /* index into ollm__st.files */
    uint8_t dtype, ndim;
    int64_t shape[OLLM__MAX_DIMS];
    uint64_t offset;            /* absolute byte offset in the file */
    uint64_t nbytes;
} ollm__tensor;

typedef struct ollm__st {
    ollm__file files[OLLM__ST_MAX_FILES];
    char *file_names[OLLM__ST_MAX_FILES];
    int n_files;
    ollm__tensor *t; uint32_t n, cap;
    uint32_t *sorted;           /* tensor indices sorted by name, for lookup */
} ollm__st;

static void ollm__st_free(ollm__st *st) {
    int i; uint32_t k;
    for (i = 0; i < st->n_files; i++) { ollm__file_close(&st->files[i]); OLLM_FREE(st->file_names[i]); }
    for (k = 0; k < st->n; k++) OLLM_FREE(st->t[k].name);
    OLLM_FREE(st->t); OLLM_FREE(st->sorted);
    memset(st, 0, sizeof *st);
}

static int ollm__range_cmp(const void *a, const void *b) {
    const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* Parses one safetensors file and appends its tensors. `path` is for messages and for opening. */
static ollm_result ollm__st_add_file(ollm__st *st, const char *path, const char *shown, ollm__log *lg) {
    unsigned char lenbuf[8]; uint64_t hlen = 0, data_start, data_size; char *hdr; ollm__json j;
    uint32_t m, first_new = st->n, k; int fi, i; ollm_result r; uint64_t *ranges;
    if (st->n_files >= OLLM__ST_MAX_FILES) return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: too many shards", shown);
    fi = st->n_files;
    if (ollm__file_open(&st->files[fi], path) != OLLM_OK)
        return ollm__fail(lg, OLLM_ERR_IO, "%s: cannot open: %s", shown, strerror(errno));
    st->file_names[fi] = ollm__strdup(shown);
    st->n_files++;
    if (st->files[fi].size < 8)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: %llu bytes, too short for a safetensors header", shown,
                          (unsigned long long)st->files[fi].size);
    if (ollm__pread_all(st->files[fi].fd, lenbuf, 8, 0) != OLLM_OK)
        return ollm__fail(lg, OLLM_ERR_IO, "%s: cannot read the header length", shown);
    for (i = 7; i >= 0; i--) hlen = (hlen << 8) | lenbuf[i];
    if (hlen > st->files[fi].size - 8)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)",
                          shown, (unsigned long long)hlen, (unsigned long long)st->files[fi].size);
    if (hlen > OLLM__ST_MAX_HEADER)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: header of %llu bytes is over the %u-byte limit", shown,
                          (unsigned long long)hlen, OLLM__ST_MAX_HEADER);
    data_start = 8 + hlen; data_size = st->files[fi].size - data_start;
    hdr = (char *)OLLM_MALLOC((size_t)hlen + 1);
    if (!hdr) return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "%s: no memory for the header", shown);
    if (ollm__pread_all(st->files[fi].fd, hdr, hlen, 8) != OLLM_OK) {
        OLLM_FREE(hdr); return ollm__fail(lg, OLLM_ERR_IO, "%s: cannot read the header", shown);
    }
    hdr[hlen] = 0;
    if (!ollm__json_parse(&j, hdr, (size_t)hlen)) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: header is not valid JSON: %s", shown, j.err);
        goto done;
    }
    if (!ollm__json_is(&j, 1, OLLM__J_OBJ)) { r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: header is not a JSON object", shown); goto done; }
    r = OLLM_OK;
    for (m = ollm__json_first(&j, 1); m; m = ollm__json_next(&j, m)) {
        const char *name = j.v[m].key, *dt; uint32_t dims, off, d; ollm__tensor t; uint64_t elems = 1, b, e, need = 0;
        int dtype = -1;
        if (strcmp(name, "__metadata__") == 0) continue;
        if (j.v[m].key_len != strlen(name) || j.v[m].key_len == 0) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: empty tensor name or a NUL inside one", shown); goto done;
        }
        if (!ollm__json_is(&j, m, OLLM__J_OBJ)) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: tensor '%s' is not an object", shown, name); goto done;
        }
        dt = ollm__json_str(&j, ollm__json_get(&j, m, "dtype"));
        dims = ollm__json_get(&j, m, "shape"); off = ollm__json_get(&j, m, "data_offsets");
        if (!dt || !ollm__json_is(&j, dims, OLLM__J_ARR) || !ollm__json_is(&j, off, OLLM__J_ARR) || j.v[off].n != 2) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets [begin, end]",
                           shown, name);
            goto done;
        }
        for (i = 0; i < OLLM__DTYPE_COUNT; i++) if (strcmp(dt, ollm__dtype_names[i]) == 0) dtype = i;
        if (dtype < 0) { r = ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown dtype '%s'", shown, name, dt); goto done; }
        memset(&t, 0, sizeof t);
        if (j.v[dims].n > OLLM__MAX_DIMS) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (at most %d)", shown, name,
                           j.v[dims].n, OLLM__MAX_DIMS);
            goto done;
        }
        t.ndim = (uint8_t)j.v[dims].n;
        for (d = ollm__json_first(&j, dims), i = 0; d; d = ollm__json_next(&j, d), i++) {
            double v = j.v[d].num;
            if (j.v[d].type != OLLM__J_NUM || v < 0 || v > 9.0e15 || v != floor(v) ||
                !ollm__mul_ok(elems, (uint64_t)v, &elems)) {
                r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: tensor '%s' has a bad shape", shown, name); goto done;
            }
            t.shape[i] = (int64_t)v;
        }
        d = ollm__json_first(&j, off);
        if (j.v[d].type != OLLM__J_NUM || j.v[d + 1].type != OLLM__J_NUM || j.v[d].num < 0 || j.v[d + 1].num < 0 ||
            j.v[d].num > 1.8e19 || j.v[d + 1].num > 1.8e19 || j.v[d].num != floor(j.v[d].num) ||
            j.v[d + 1].num != floor(j.v[d + 1].num)) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: tensor '%s' has bad data_offsets", shown, name); goto done;
        }
        b = (uint64_t)j.v[d].num; e = (uint64_t)j.v[d + 1].num;
        if (!ollm__mul_ok(elems, ollm__dtype_size[dtype], &need) || e < b || e - b != need) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: tensor '%s' holds %llu bytes but %s x shape needs %llu", shown,
                           name, (unsigned long long)(e >= b ? e - b : 0), dt, (unsigned long long)need);
            goto done;
        }
        if (e > data_size) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT,
                           "%s: tensor '%s' ends at byte %llu, past the end of the file (%llu bytes; truncated?)",
                           shown, name, (unsigned long long)(data_start + e), (unsigned long long)st->files[fi].size);
            goto done;
        }
        if (st->n >= OLLM__ST_MAX_TENSORS) { r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: too many tensors", shown); goto done; }
        if (st->n == st->cap) {
            uint32_t cap = st->cap ? st->cap * 2 : 256;
            ollm__tensor *nt = (ollm__tensor *)OLLM_REALLOC(st->t, (size_t)cap * sizeof *nt);
            if (!nt) { r = ollm__fail(lg, OLLM_ERR_NO_MEMORY, "out of memory"); goto done; }
            st->t = nt; st->cap = cap;
        }
        t.name = ollm__strdup(name);
        if (!t.name) { r = ollm__fail(lg, OLLM_ERR_NO_MEMORY, "out of memory"); goto done; }
        t.file = (uint16_t)fi; t.dtype = (uint8_t)dtype; t.offset = data_start + b; t.nbytes = need;
        st->t[st->n++] = t;
    }
    /* no two tensors of this file may share bytes */
    ranges = (uint64_t *)ollm__calloc((size_t)(st->n - first_new) * 2 + 1, sizeof *ranges);
    if (!ranges) { r = ollm__fail(lg, OLLM_ERR_NO_MEMORY, "out of memory"); goto done; }
    for (k = first_new; k < st->n; k++) {
        ranges[(k - first_new) * 2] = st->t[k].offset; ranges[(k - first_new) * 2 + 1] = st->t[k].offset + st->t[k].nbytes;
    }
    qsort(ranges, st->n - first_new, 2 * sizeof *ranges, ollm__range_cmp);
    {
        uint64_t max_end = 0;   /* furthest end among the earlier non-empty ranges */
        for (k = 0; k < st->n - first_new; k++) {
            if (ranges[k * 2 + 1] == ranges[k * 2]) continue;
            if (ranges[k * 2] < max_end) {
                r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: two tensors overlap at byte %llu", shown,
                               (unsigned long long)ranges[k * 2]);
                break;
            }
            max_end = ranges[k * 2 + 1];
        }
    }
    OLLM_FREE(ranges);
done:
    ollm__json_free(&j);
    OLLM_FREE(hdr);
    return r;
}

static const ollm__st *ollm__st_sort_ctx;
static int ollm__st_name_cmp(const void *a, const void *b) {
    return strcmp(ollm__st_sort_ctx->t[*(const uint32_t *)a].name, ollm__st_sort_ctx->t[*(const uint32_t *)b].name);
}
static const ollm__tensor *ollm__st_find(const ollm__st *st, const char *name) {
    uint32_t lo = 0, hi = st->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2; int c = strcmp(st->t[st->sorted[mid]].name, name);
        if (c == 0) return &st->t[st->sorted[mid]];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}
/* Sorts the names and rejects a tensor that appears twice (in two shards, say). */
static ollm_result ollm__st_index(ollm__st *st, ollm__log *lg) {
    uint32_t k;
    st->sorted = (uint32_t *)ollm__calloc(st->n + 1, sizeof *st->sorted);
    if (!st->sorted) return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "out of memory");
    for (k = 0; k < st->n; k++) st->sorted[k] = k;
    ollm__st_sort_ctx = st;   /* qsort has no context argument in C99; opening is single-threaded per model */
    qsort(st->sorted, st->n, sizeof *st->sorted, ollm__st_name_cmp);
    for (k = 1; k < st->n; k++)
        if (strcmp(st->t[st->sorted[k]].name, st->t[st->sorted[k - 1]].name) == 0)
            return ollm__fail(lg, OLLM_ERR_FORMAT, "tensor '%s' appears twice (%s and %s)", st->t[st->sorted[k]].name,
                              st->file_names[st->t[st->sorted[k - 1]].file], st->file_names[st->t[st->sorted[k]].file]);
    return OLLM_OK;
}

/* Opens the checkpoint of a directory: model.safetensors.index.json (weight_map -> shards) or model.safetensors.
   Every tensor named in the index must be in the shard it names. */
static ollm_result ollm__st_open_dir(ollm__st *st, const char *dir, ollm__log *lg) {
    char path[4096], *text = NULL; size_t len; ollm__json j; ollm_result r; uint32_t wm, m;
    memset(st, 0, sizeof *st);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    r = ollm__read_file(path, 256u << 20, &text, &len);
    if (r == OLLM_ERR_IO && errno == ENOENT) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (access(path, F_OK) != 0)
            return ollm__fail(lg, OLLM_ERR_IO, "%s: no model.safetensors.index.json or model.safetensors", dir);
        if ((r = ollm__st_add_file(st, path, "model.safetensors", lg)) != OLLM_OK) return r;
        return ollm__st_index(st, lg);
    }
    if (r != OLLM_OK) return ollm__fail(lg, r, "%s: cannot read: %s", path, ollm_result_string(r));
    if (!ollm__json_parse(&j, text, len)) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "model.safetensors.index.json: %s", j.err); goto done;
    }
    wm = ollm__json_get(&j, 1, "weight_map");
    if (!ollm__json_is(&j, wm, OLLM__J_OBJ)) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "model.safetensors.index.json: no \"weight_map\" object"); goto done;
    }
    /* open each distinct shard once, in order of first mention */
    for (m = ollm__json_first(&j, wm); m; m = ollm__json_next(&j, m)) {
        const char *file = ollm__json_str(&j, m); int i, seen = 0;
        if (!file || !file[0] || strchr(file, '/') || strchr(file, '\\') || strcmp(file, "..") == 0 ||
            strcmp(file, ".") == 0) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "model.safetensors.index.json: tensor '%s' names a bad file",
                           j.v[m].key);
            goto done;
        }
        for (i = 0; i < st->n_files && !seen; i++) seen = strcmp(st->file_names[i], file) == 0;
        if (seen) continue;
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if ((r = ollm__st_add_file(st, path, file, lg)) != OLLM_OK) goto done;
    }
    if (st->n_files == 0) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "model.safetensors.index.json: \"weight_map\" lists no tensors"); goto done;
    }
    if ((r = ollm__st_index(st, lg)) != OLLM_OK) goto done;
    for (m = ollm__json_first(&j, wm); m; m = ollm__json_next(&j, m)) {
        const ollm__tensor *t = ollm__st_find(st, j.v[m].key);
        if (!t || strcmp(st->file_names[t->file], j.v[m].s) != 0) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: tensor '%s' listed in model.safetensors.index.json is missing",
                           j.v[m].s, j.v[m].key);
            goto done;
        }
    }
done:
    ollm__json_free(&j);
    OLLM_FREE(text);
    return r;
}

/* ==== @config ==== config.json -> model description; RoPE frequency tables ============================= */

enum { OLLM__ROPE_DEFAULT, OLLM__ROPE_LLAMA3, OLLM__ROPE_LINEAR, OLLM__ROPE_YARN };

typedef struct ollm__rope {
    int type;
    double theta, factor;
    double low_freq_factor, high_freq_factor;   /* llama3 */
    double beta_fast, beta_slow;                /* yarn */
    double attention_factor;                    /* yarn; 0 = derived from factor */
    int truncate;                               /* yarn */
    int64_t original_max_position_embeddings;
    double partial_rotary_factor;               /* fraction of head_dim rotated; 1 = all */
} ollm__rope;

#define OLLM__MAX_LAYERS 1024
enum { OLLM__LAYER_FULL, OLLM__LAYER_SLIDING, OLLM__LAYER_LINEAR };   /* the attention of a layer */

/* What config.json says, for every family; a family's own fields are 0 in the others. */
typedef struct ollm__desc {
    char model_type[32];
    int32_t hidden, n_layers, n_heads, n_kv_heads, head_dim, ffn, vocab, max_pos;
    double rms_eps;
    int tie_embeddings;
    int32_t bos_id, n_eos, eos[8];
    ollm__rope rope;
    uint8_t layer_kind[OLLM__MAX_LAYERS];          /* OLLM__LAYER_*, from layer_types or the family's rule */
    int32_t sliding_window;                        /* GPT-OSS */
    int attention_bias;                            /* GPT-OSS */
    double swiglu_limit;                           /* GPT-OSS */
    int32_t n_experts, n_experts_per_tok, moe_ffn; /* MoE families; moe_ffn = width of one expert */
    int32_t shared_ffn;                            /* Qwen3-Next shared expert */
    int norm_topk_prob;                            /* Qwen3-Next */
    int32_t lin_k_heads, lin_v_heads, lin_k_dim, lin_v_dim, conv_kernel;   /* Qwen3-Next Gated DeltaNet */
} ollm__desc;

#define OLLM__MAX_DIM (1 << 24)   /* any width or count in a config above this is rejected as malformed */

/* Reads an optional integer field into *out (left alone when absent or null). */
static ollm_result ollm__cfg_int(const ollm__json *j, uint32_t obj, const char *key, int64_t lo, int64_t hi,
                                 int32_t *out, ollm__log *lg) {
    uint32_t v = ollm__json_get(j, obj, key);
    if (!v || j->v[v].type == OLLM__J_NULL) return OLLM_OK;
    if (j->v[v].type != OLLM__J_NUM || j->v[v].num != floor(j->v[v].num) || j->v[v].num < (double)lo ||
        j->v[v].num > (double)hi)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: \"%s\" must be an integer in [%lld, %lld]", key,
                          (long long)lo, (long long)hi);
    *out = (int32_t)j->v[v].num;
    return OLLM_OK;
}
static ollm_result ollm__cfg_num(const ollm__json *j, uint32_t obj, const char *key, double lo, double hi,
                                 double *out, ollm__log *lg) {
    uint32_t v = ollm__json_get(j, obj, key);
    if (!v || j->v[v].type == OLLM__J_NULL) return OLLM_OK;
    if (j->v[v].type != OLLM__J_NUM || !(j->v[v].num >= lo && j->v[v].num <= hi))
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: \"%s\" must be a number in [%g, %g]", key, lo, hi);
    *out = j->v[v].num;
    return OLLM_OK;
}
static ollm_result ollm__cfg_bool(const ollm__json *j, uint32_t obj, const char *key, int *out, ollm__log *lg) {
    uint32_t v = ollm__json_get(j, obj, key);
    if (!v || j->v[v].type == OLLM__J_NULL) return OLLM_OK;
    if (j->v[v].type != OLLM__J_TRUE && j->v[v].type != OLLM__J_FALSE)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: \"%s\" must be true or false", key);
    *out = j->v[v].type == OLLM__J_TRUE;
    return OLLM_OK;
}
#define OLLM__TRY(expr) do { ollm_result r_ = (expr); if (r_ != OLLM_OK) return r_; } while (0)

/* RoPE settings: newer transformers writes `rope_parameters` (theta inside), older files `rope_scaling` plus a
   top-level `rope_theta`; `type` is the old name of `rope_type`. */
static ollm_result ollm__cfg_rope(const ollm__json *j, ollm__rope *rope, ollm__log *lg) {
    uint32_t rp = ollm__json_get(j, 1, "rope_parameters"), rs = ollm__json_get(j, 1, "rope_scaling"), src;
    const char *type;
    double orig = 0;
    memset(rope, 0, sizeof *rope);
    rope->theta = 10000.0; rope->factor = 1.0; rope->partial_rotary_factor = 1.0;
    rope->low_freq_factor = 1.0; rope->high_freq_factor = 4.0; rope->beta_fast = 32.0; rope->beta_slow = 1.0;
    OLLM__TRY(ollm__cfg_num(j, 1, "rope_theta", 1e-3, 1e12, &rope->theta, lg));
    OLLM__TRY(ollm__cfg_num(j, 1, "partial_rotary_factor", 1e-6, 1.0, &rope->partial_rotary_factor, lg));
    src = ollm__json_is(j, rs, OLLM__J_OBJ) ? rs : ollm__json_is(j, rp, OLLM__J_OBJ) ? rp : 0;   /* rope_scaling or rope_parameters */
    if (!src) return OLLM_OK;
    OLLM__TRY(ollm__cfg_num(j, src, "rope_theta", 1e-3, 1e12, &rope->theta, lg));
    OLLM__TRY(ollm__cfg_num(j, src, "partial_rotary_factor", 1e-6, 1.0, &rope->partial_rotary_factor, lg));
    type = ollm__json_str(j, ollm__json_get(j, src, "rope_type"));
    if (!type) type = ollm__json_str(j, ollm__json_get(j, src, "type"));
    if (!type || strcmp(type, "default") == 0) { rope->type = OLLM__ROPE_DEFAULT; return OLLM_OK; }
    if (strcmp(type, "llama3") == 0) rope->type = OLLM__ROPE_LLAMA3;
    else if (strcmp(type, "linear") == 0) rope->type = OLLM__ROPE_LINEAR;
    else if (strcmp(type, "yarn") == 0) rope->type = OLLM__ROPE_YARN;
    else return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "config.json: rope type \"%s\" is not supported", type);
    OLLM__TRY(ollm__cfg_num(j, src, "factor", 1e-6, 1e6, &rope->factor, lg));
    OLLM__TRY(ollm__cfg_num(j, src, "low_freq_factor", 1e-6, 1e6, &rope->low_freq_factor, lg));
    OLLM__TRY(ollm__cfg_num(j, src, "high_freq_factor", 1e-6, 1e6, &rope->high_freq_factor, lg));
    OLLM__TRY(ollm__cfg_num(j, src, "beta_fast", 1e-6, 1e6, &rope->beta_fast, lg));
    OLLM__TRY(ollm__cfg_num(j, src, "beta_slow", 1e-6, 1e6, &rope->beta_slow, lg));
    OLLM__TRY(ollm__cfg_num(j, src, "attention_factor", 1e-6, 1e6, &rope->attention_factor, lg));
    OLLM__TRY(ollm__cfg_num(j, src, "original_max_position_embeddings", 1, 1e9, &orig, lg));
    OLLM__TRY(ollm__cfg_bool(j, src, "truncate", &rope->truncate, lg));
    if (!ollm__json_get(j, src, "truncate")) rope->truncate = 1;   /* transformers' default */
    rope->original_max_position_embeddings = (int64_t)orig;
    if (rope->type == OLLM__ROPE_LLAMA3 && (orig <= 0 || rope->high_freq_factor <= rope->low_freq_factor))
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: llama3 rope needs original_max_position_embeddings "
                          "and high_freq_factor > low_freq_factor");
    return OLLM_OK;
}

/* The fields every family shares (model_type is checked by the caller). */
static ollm_result ollm__desc_common(const ollm__json *jp, ollm__desc *d, ollm__log *lg) {
    ollm__json j = *jp; uint32_t eos, e; ollm_result r = OLLM_OK;
    d->n_kv_heads = -1; d->head_dim = -1; d->max_pos = 8192; d->rms_eps = 1e-6; d->bos_id = -1;
#define OLLM__CHECK(expr) do { if ((r = (expr)) != OLLM_OK) goto done; } while (0)
    OLLM__CHECK(ollm__cfg_int(&j, 1, "hidden_size", 1, OLLM__MAX_DIM, &d->hidden, lg));
    OLLM__CHECK(ollm__cfg_int(&j, 1, "num_hidden_layers", 1, OLLM__MAX_LAYERS, &d->n_layers, lg));
    OLLM__CHECK(ollm__cfg_int(&j, 1, "num_attention_heads", 1, 4096, &d->n_heads, lg));
    OLLM__CHECK(ollm__cfg_int(&j, 1, "num_key_value_heads", 1, 4096, &d->n_kv_heads, lg));
    OLLM__CHECK(ollm__cfg_int(&j, 1, "head_dim", 2, 4096, &d->head_dim, lg));
    OLLM__CHECK(ollm__cfg_int(&j, 1, "intermediate_size", 1, OLLM__MAX_DIM, &d->ffn, lg));
    OLLM__CHECK(ollm__cfg_int(&j, 1, "vocab_size", 1, OLLM__MAX_DIM, &d->vocab, lg));
    OLLM__CHECK(ollm__cfg_int(&j, 1, "max_position_embeddings", 1, 1 << 30, &d->max_pos, lg));
    OLLM__CHECK(ollm__cfg_num(&j, 1, "rms_norm_eps", 0, 1, &d->rms_eps, lg));
    OLLM__CHECK(ollm__cfg_bool(&j, 1, "tie_word_embeddings", &d->tie_embeddings, lg));
    OLLM__CHECK(ollm__cfg_int(&j, 1, "bos_token_id", -1, OLLM__MAX_DIM, &d->bos_id, lg));
    OLLM__CHECK(ollm__cfg_rope(&j, &d->rope, lg));
    eos = ollm__json_get(&j, 1, "eos_token_id");
    if (ollm__json_is(&j, eos, OLLM__J_NUM)) OLLM__CHECK(ollm__cfg_int(&j, 1, "eos_token_id", 0, OLLM__MAX_DIM, &d->eos[d->n_eos++], lg));
    else if (ollm__json_is(&j, eos, OLLM__J_ARR))
        for (e = ollm__json_first(&j, eos); e; e = ollm__json_next(&j, e)) {
            if (j.v[e].type != OLLM__J_NUM || j.v[e].num < 0 || j.v[e].num > OLLM__MAX_DIM || j.v[e].num != floor(j.v[e].num)) {
                r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: \"eos_token_id\" holds a non-integer"); goto done;
            }
            if (d->n_eos < 8) d->eos[d->n_eos++] = (int32_t)j.v[e].num;
        }
    else if (eos && j.v[eos].type != OLLM__J_NULL) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: \"eos_token_id\" must be an integer or a list"); goto done;
    }
#undef OLLM__CHECK
    if (!d->hidden || !d->n_layers || !d->n_heads || !d->vocab) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: hidden_size, num_hidden_layers, num_attention_heads "
                       "and vocab_size are required");
        goto done;
    }
    if (d->n_kv_heads < 0) d->n_kv_heads = d->n_heads;
    if (d->head_dim < 0 && d->hidden % d->n_heads == 0) d->head_dim = d->hidden / d->n_heads;   /* else: the family's */
    if (d->bos_id >= d->vocab) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: bos_token_id %d is outside vocab_size %d", d->bos_id, d->vocab);
        goto done;
    }
    for (e = 0; e < (uint32_t)d->n_eos; e++)
        if (d->eos[e] >= d->vocab) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: eos_token_id %d is outside vocab_size %d", d->eos[e], d->vocab);
            goto done;
        }
    if (d->n_heads % d->n_kv_heads) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       d->n_heads, d->n_kv_heads);
        goto done;
    }
    if (d->rms_eps <= 0) d->rms_eps = 1e-6;
done:
    return r;
}

/* inv_freq[i] for the pairs (i, i + rot/2) of the rotated dimensions, and the factor cos and sin are scaled by.
   Mirrors transformers modeling_rope_utils.py: _compute_default/_linear/_llama3/_yarn_parameters. */
static void ollm__rope_freqs(const ollm__rope *rp, int head_dim, float *inv_freq, int *rot_dim, float *mscale) {
    int rot = (int)(head_dim * rp->partial_rotary_factor), half, i;
    double pi = 3.14159265358979323846;
    rot -= rot % 2;
    half = rot / 2;
    *rot_dim = rot; *mscale = 1.0f;
    for (i = 0; i < half; i++) {
        double inv = 1.0 / pow(rp->theta, (double)(2 * i) / (double)rot);
        if (rp->type == OLLM__ROPE_LINEAR) inv /= rp->factor;
        else if (rp->type == OLLM__ROPE_LLAMA3) {
            double orig = (double)rp->original_max_position_embeddings;
            double low_wl = orig / rp->low_freq_factor, high_wl = orig / rp->high_freq_factor;
            double wl = 2 * pi / inv;
            if (wl > low_wl) inv = inv / rp->factor;
            else if (wl >= high_wl) {   /* transformers: is_medium_freq = ~(wavelen < high_wl) & ~(wavelen > low_wl) */
                double smooth = (orig / wl - rp->low_freq_factor) / (rp->high_freq_factor - rp->low_freq_factor);
                inv = (1 - smooth) * inv / rp->factor + smooth * inv;
            }
        } else if (rp->type == OLLM__ROPE_YARN) {
            double orig = (double)rp->original_max_position_embeddings, lo, hi, ramp;
            lo = rot * log(orig / (rp->beta_fast * 2 * pi)) / (2 * log(rp->theta));
            hi = rot * log(orig / (rp->beta_slow * 2 * pi)) / (2 * log(rp->theta));
            if (rp->truncate) { lo = floor(lo); hi = ceil(hi); }
            if (lo < 0) lo = 0;
            if (hi > rot - 1) hi = rot - 1;
            if (lo == hi) hi += 0.001;   /* transformers linear_ramp_factor: avoid a zero-width ramp */
            ramp = ((double)i - lo) / (hi - lo);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            /* inv_freq_extrapolation_factor = 1 - ramp */
            inv = (inv / rp->factor) * ramp + inv * (1 - ramp);
        }
        inv_freq[i] = (float)inv;
    }
    if (rp->type == OLLM__ROPE_YARN)
        *mscale = (float)(rp->attention_factor > 0 ? rp->attention_factor
                          : (rp->factor <= 1 ? 1.0 : 0.1 * log(rp->factor) + 1.0));
}

/* Rows of layer l's KV cache in a session of ctx tokens fed at most `chunk` at a time (a session's chunk times its
   prefill_group: the rows of a forward pass are committed to the session folder after it): a sliding-window layer
   keeps a ring of window + chunk - 1 rows (every key those queries can see), other attention layers a row per
   position, linear-attention layers none. */
static int64_t ollm__kv_layer_rows(const ollm__desc *c, int l, int64_t ctx, int64_t chunk) {
    if (c->layer_kind[l] == OLLM__LAYER_LINEAR) return 0;
    if (c->layer_kind[l] == OLLM__LAYER_SLIDING && c->sliding_window > 0 && c->sliding_window + chunk - 1 < ctx)
        return c->sliding_window + chunk - 1;
    return ctx;
}
/* Bytes of a session's whole KV cache (K and V of every layer, elem bytes a value). */
static uint64_t ollm__kv_bytes(const ollm__desc *c, int64_t ctx, int64_t chunk, uint32_t elem) {
    uint64_t rows = 0; int l;
    for (l = 0; l < c->n_layers; l++) rows += (uint64_t)ollm__kv_layer_rows(c, l, ctx, chunk);
    return 2ull * elem * (uint64_t)c->n_kv_heads * c->head_dim * rows;
}

/* ==== @backend ==== the op interface the model graphs call ============================================ */
/* A buffer is memory of one backend: host memory for the CPU, a device address for CUDA. Graphs never touch the
   bytes; they pass buffers (or views into them) to ops. Activations are float32, row-major [T, width]; weights keep
   their checkpoint dtype (BF16, F16 or F32), a Linear weight stored [out, in] = [rows, cols]. */

typedef struct ollm__buf { void *ptr; uint64_t bytes; } ollm__buf;
/* A weight of the logical shape [rows, cols] (a Linear [out, in]), stored as fmt says:
   OLLM__W_DENSE   data holds rows x cols values of dtype, row-major (every checkpoint's Linear weights);
   OLLM__W_MXFP4   data holds [rows, cols/32, 16] bytes of E2M1 pairs and scales [rows, cols/32] bytes 2^(s-127)
                   (GPT-OSS experts as published); dtype is unused;
   OLLM__W_KMAJOR  data holds cols x rows values of dtype, input-major (GPT-OSS experts republished as floats). */
enum { OLLM__W_DENSE, OLLM__W_MXFP4, OLLM__W_KMAJOR };
typedef struct ollm__w {
    ollm__buf data; uint8_t dtype, fmt;
    uint8_t in_xc;               /* an expert tensor of the expert cache: one expert's part lies at xoff in its slot */
    int64_t rows, cols; ollm__buf scales;
    uint64_t xoff;
} ollm__w;

static ollm__buf ollm__view(ollm__buf b, uint64_t off, uint64_t bytes) {
    ollm__buf v; v.ptr = (char *)b.ptr + off; v.bytes = bytes; return v;
}

typedef struct ollm__attn_args {
    int T, pos0;                    /* T new queries at positions pos0 .. pos0 + T - 1 */
    int n_heads, n_kv_heads, head_dim;
    int window;                     /* 0 = full causal; W = keys j with i - W < j <= i */
    int ring;                       /* 0: cache row j holds position j; R > 0: position j lives in row j % R (a
                                       sliding layer's ring of R >= window + T - 1 rows) */
    float scale;                    /* softmax scale, 1/sqrt(head_dim) */
    const ollm__w *sinks;           /* NULL, or one logit per head that joins the softmax and takes no value */
} ollm__attn_args;

/* Whether a KV cache of `rows` rows takes what attention `a` appends and reads: positions up to pos0 + T - 1, or in a
   ring (a->ring <= rows) the window's earlier keys beside the T new ones. */
static int ollm__attn_fits(const ollm__attn_args *a, uint64_t rows) {
    if (a->ring) return a->window > 0 && a->ring >= a->T + a->window - 1 && (uint64_t)a->ring <= rows;
    return (uint64_t)a->pos0 + (uint64_t)a->T <= rows;
}

/* Gated DeltaNet dimensions (Qwen3-Next's linear attention): nk key heads of dk and nv = nk r value heads of dv; the
   causal conv (kernel K) runs over C = 2 nk dk + nv dv channels: q, k, v. */
typedef struct ollm__dn_dims { int nk, nv, dk, dv, K; } ollm__dn_dims;

/* Upload slots of the optional async interface below: 0..7 the weight streamer's, 8 and 9 a session's KV staging,
   10.. the expert cache's uploads in flight (a ring). */
#define OLLM__SLOTS 42
#define OLLM__KV_SLOT 8
#define OLLM__X_SLOT 10
typedef struct ollm__backend ollm__backend;
struct ollm__backend {
    const char *name;
    const char *device;             /* for messages: the GPU's name, or "CPU" */
    int host;                       /* buffers are host memory: files can be read straight into them */
    uint32_t kv_elem;               /* bytes per element of the KV cache */
    ollm__log *log;
    void (*destroy)(ollm__backend *b);
    ollm_result (*alloc)(ollm__backend *b, uint64_t bytes, ollm__buf *out);
    void (*release)(ollm__backend *b, ollm__buf *buf);
    ollm_result (*upload)(ollm__backend *b, ollm__buf dst, const void *src, uint64_t n);
    ollm_result (*download)(ollm__backend *b, void *dst, ollm__buf src, uint64_t n);
    /* x[T, cols] = table[ids[t]] (ids on the host) */
    ollm_result (*embed)(ollm__backend *b, ollm__buf x, const ollm__w *table, const int32_t *ids, int T);
    /* y[T, n] = w * x / sqrt(mean(x^2) + eps); unit_offset: (1 + w) instead of w (zero-centred norms) */
    ollm_result (*rmsnorm)(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *w, int T, int n, float eps,
                           int unit_offset);
    /* y[T, W.rows] = x[T, W.cols] W^T + bias, or y += that when accumulate (the residual add); bias: a vector
       weight of W.rows (a row view of a stacked [E, n] bias is fine), or NULL */
    ollm_result (*matmul)(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W, const ollm__w *bias, int T,
                          int accumulate);
    /* rotate-half RoPE in place on q[T, nq * head_dim] and k[T, nk * head_dim] (nk = 0: q alone), the first rot_dim
       dims of each head, positions pos0 + t */
    ollm_result (*rope)(ollm__backend *b, ollm__buf q, int nq, ollm__buf k, int nk, int T, int head_dim, int rot_dim,
                        int pos0, ollm__buf inv_freq, float mscale);
    /* appends k, v [T, n_kv_heads * head_dim] at pos0 into the caches [ctx, n_kv_heads * head_dim] and computes
       o[T, n_heads * head_dim] = softmax(q k^T * scale, causal, window, sinks) v over positions 0 .. pos0 + T - 1 */
    ollm_result (*attention)(ollm__backend *b, ollm__buf o, ollm__buf q, ollm__buf k, ollm__buf v,
                             ollm__buf k_cache, ollm__buf v_cache, const ollm__attn_args *a);
    /* G products of one shape in one call (the experts a token picked): for g < G, rows [row0[g], row0[g] + rows[g])
       of y [., W[g].rows] = rows [xrow[g], xrow[g] + rows[g]) of x [., W[g].cols] (xrow NULL: row0) times W[g]^T +
       bias[g] (bias NULL: none); every W[g] has the same shape and fmt, every bias[g] the same dtype */
    ollm_result (*matmul_grouped)(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W, const ollm__w *bias,
                                  const int32_t *row0, const int32_t *xrow, const int32_t *rows, int G);
    /* n <= 12 products of one input x[T, K] (q, k and v; gate and up): y[i] [T, W[i]->rows] = x W[i]^T + bias[i]
       (bias NULL, or bias[i] NULL: none) */
    ollm_result (*matmul_n)(ollm__backend *b, int n, const ollm__buf *y, ollm__buf x, const ollm__w *const *W,
                            const ollm__w *const *bias, int T);
    /* g[n] = silu(g) * u: the SwiGLU of LlamaMLP */
    ollm_result (*silu_mul)(ollm__backend *b, ollm__buf g, ollm__buf u, int64_t n);
    /* mixture-of-experts plumbing (index arrays and weights on the host):
       y[T, n] += bias[n], a vector weight (a row view of a stacked [E, n] bias is fine); what matmul's bias does */
    ollm_result (*add_bias)(ollm__backend *b, ollm__buf y, const ollm__w *bias, int T, int64_t n);
    /* dst[r] = src[idx[r]] for r < R, rows of `width` floats */
    ollm_result (*gather)(ollm__backend *b, ollm__buf dst, ollm__buf src, const int32_t *idx, int R, int64_t width);
    /* x[t] += sum_{i<k} w[t k + i] src[rows[t k + i]] for t < T, in that order */
    ollm_result (*combine)(ollm__backend *b, ollm__buf x, ollm__buf src, const int32_t *rows, const float *w, int T,
                           int k, int64_t width);
    /* y[R, I] = GptOssExperts' activation of gu[R, 2I] ((gate, up) interleaved): gate = min(gate, limit),
       up = clamp(up, -limit, limit), y = (up + 1) * gate * sigmoid(alpha * gate) */
    ollm_result (*swiglu_clamp)(ollm__backend *b, ollm__buf y, ollm__buf gu, int64_t R, int64_t I, float limit,
                                float alpha);
    /* gated attention and Gated DeltaNet (Qwen3-Next):
       a[rows, na], b[rows, nb] = the two column ranges of src[rows, na + nb] */
    ollm_result (*split_cols)(ollm__backend *b, ollm__buf a, ollm__buf bb, ollm__buf src, int64_t rows, int64_t na,
                              int64_t nb);
    /* y[n] *= sigmoid(g[n]) */
    ollm_result (*sigmoid_mul)(ollm__backend *b, ollm__buf y, ollm__buf g, int64_t n);
    /* from the projections qkvz[T, nk (2 dk + 2 r dv)] and ba[T, nk 2 r] (per key head: [q | k | v | z], [b | a]):
       mix[T, C] = (q, k, v) of all heads, z[T, nv dv], beta[T, nv] = sigmoid(b),
       g[T, nv] = -exp(A_log) softplus(a + dt_bias) */
    ollm_result (*dn_split)(ollm__backend *b, ollm__buf mix, ollm__buf z, ollm__buf beta, ollm__buf g, ollm__buf qkvz,
                            ollm__buf ba, const ollm__w *A_log, const ollm__w *dt_bias, const ollm__dn_dims *d, int T);
    /* causal depthwise conv then SiLU: y[t, c] = silu(sum_j w[c, j] X[t + j, c]), X = the K-1 rows of state then
       mix[T, C]; state becomes X's last K-1 rows */
    ollm_result (*dn_conv)(ollm__backend *b, ollm__buf y, ollm__buf state, ollm__buf mix, const ollm__w *w, int T,
                           int C, int K);
    /* the gated delta rule over T tokens of qkv[T, C] (the conv output): q and k of each key head l2-normalised in
       place (q also scaled by 1/sqrt(dk)); per value head h (key head h / r), S[h] [dk, dv] carried across calls:
       S <- exp(g_t) S; d = beta_t (v_t - S^T k_t); S <- S + k_t d^T; o[t, h] = S^T q_t */
    ollm_result (*dn_rule)(ollm__backend *b, ollm__buf o, ollm__buf qkv, ollm__buf beta, ollm__buf g, ollm__buf S,
                           const ollm__dn_dims *d, int T);
    /* y[rows, n] = w * y / sqrt(mean(y^2) + eps) * silu(z) (RMSNormGated, plain weight) */
    ollm_result (*norm_gated)(ollm__backend *b, ollm__buf y, ollm__buf z, const ollm__w *w, int64_t rows, int n,
                              float eps);
    ollm_result (*sync)(ollm__backend *b);
    /* memory accounting: the device budget (0 = none), the most ever allocated at once; where the backend counts
       them (else 0), the bytes allocated now and those of its own scratch among them */
    uint64_t mem_budget, mem_peak, mem_used, mem_scratch;
    uint64_t n_launch, n_wait;      /* kernels launched, and waits of the host for the device */
    double wait_s;                  /* time the host spent in those waits */
    /* optional page-locked host memory for the RAM tier (fast uploads); NULL: plain host memory */
    void *(*host_alloc)(ollm__backend *b, uint64_t bytes);
    void (*host_free)(ollm__backend *b, void *p);
    /* optional: weight uploads into streaming slot k that overlap compute (NULL: synchronous upload). The copy
       starts once compute has released k's previous layer; slot_wait makes compute wait for it; slot_sync makes the
       host wait, before the upload's source memory is reused. */
    ollm_result (*upload_async)(ollm__backend *b, int k, ollm__buf dst, const void *src, uint64_t n);
    ollm_result (*slot_wait)(ollm__backend *b, int k);
    ollm_result (*slot_release)(ollm__backend *b, int k);
    ollm_result (*slot_sync)(ollm__backend *b, int k);
    /* optional: whether upload slot k's last upload has landed (1; also when none was made or it failed: slot_wait
       reports that), without waiting; NULL: uploads land before upload_async returns */
    int (*slot_ready)(ollm__backend *b, int k);
    /* optional: a read back the host polls. read_start queues n <= 1 MiB bytes of src; read_poll copies them to dst
       and sets *done once they have arrived (wait: blocks until then). Between the two only upload_async and
       slot_ready may be called. NULL: download */
    ollm_result (*read_start)(ollm__backend *b, ollm__buf src, uint64_t n);
    ollm_result (*read_poll)(ollm__backend *b, void *dst, uint64_t n, int wait, int *done);
    /* optional (OLLM_PROFILE=1): logs where the device's time went since the last call, under the title `what`, and
       starts over */
    void (*profile)(ollm__backend *b, const char *what);
    /* optional: *out = the index of the largest of v[n] by ollm__argmax's rule, computed where v is (greedy decoding
       reads back one index instead of the logits); NULL: the logits are read back */
    ollm_result (*argmax)(ollm__backend *b, ollm__buf v, int64_t n, int32_t *out);
};

/* Copies host memory into streaming slot k's buffer: behind compute on the copy stream when the backend can, else
   at once. */
static ollm_result ollm__upload_slot(ollm__backend *B, int k, ollm__buf dst, const void *src, uint64_t n) {
    return B->upload_async ? B->upload_async(B, k, dst, src, n) : B->upload(B, dst, src, n);
}

/* ==== @cpu ==== the CPU reference backend: plain loops, fp32 accumulation, a pthread pool ================= */

typedef struct ollm__cpu { ollm__backend b; ollm__pool pool; } ollm__cpu;

/* The index of the largest of v[n], the lowest on a tie, as `if (v[i] > v[best]) best = i` gives (a NaN never wins;
   v[0] NaN: 0), without that loop's chain through v[best]: the maximum in 8 lanes, then its first index. */
static int32_t ollm__argmax(const float *v, int32_t n) {
    float m[8], mx; int32_t i, j;
    if (n <= 0 || v[0] != v[0]) return 0;
    for (j = 0; j < 8; j++) m[j] = v[0];
    for (i = 0; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) m[j] = v[i + j] > m[j] ? v[i + j] : m[j];
    for (; i < n; i++) m[0] = v[i] > m[0] ? v[i] : m[0];
    for (mx = m[0], j = 1; j < 8; j++) mx = m[j] > mx ? m[j] : mx;
    for (i = 0; v[i] != mx; i++) {}
    return i;
}
static ollm_result ollm__cpu_argmax(ollm__backend *b, ollm__buf v, int64_t n, int32_t *out) {
    (void)b; *out = ollm__argmax((const float *)v.ptr, (int32_t)n); return OLLM_OK;
}

static void ollm__to_f32(const void *src, uint8_t dtype, float *dst, int64_t n) {
    int64_t i;
    if (dtype == OLLM__F32) memcpy(dst, src, (size_t)n * 4);
    else if (dtype == OLLM__BF16) { const uint16_t *s = (const uint16_t *)src; for (i = 0; i < n; i++) dst[i] = ollm__bf16_to_f32(s[i]); }
    else { const uint16_t *s = (const uint16_t *)src; for (i = 0; i < n; i++) dst[i] = ollm__f16_to_f32(s[i]); }
}
static const void *ollm__w_row(const ollm__w *w, int64_t r) {
    return (const char *)w->data.ptr + (uint64_t)r * (uint64_t)w->cols * ollm__dtype_size[w->dtype];
}
/* The 8 lanes of a dot product, summed in the one order every CPU dot product uses */
static float ollm__sum8(const float *acc) {
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}
static float ollm__dot(const float *a, const float *b, int64_t n) {
    float acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 }; int64_t i = 0; int j;
    for (; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];   /* 8 independent sums: vectorisable, fp32 */
    for (; i < n; i++) acc[0] += a[i] * b[i];
    return ollm__sum8(acc);
}

static ollm_result ollm__cpu_alloc(ollm__backend *b, uint64_t bytes, ollm__buf *out) {
    (void)b;
    out->bytes = bytes;
    out->ptr = bytes < SIZE_MAX ? OLLM_MALLOC((size_t)(bytes ? bytes : 1)) : NULL;
    return out->ptr ? OLLM_OK : OLLM_ERR_NO_MEMORY;
}
static void ollm__cpu_release(ollm__backend *b, ollm__buf *buf) { (void)b; OLLM_FREE(buf->ptr); buf->ptr = NULL; buf->bytes = 0; }
static ollm_result ollm__cpu_upload(ollm__backend *b, ollm__buf dst, const void *src, uint64_t n) {
    (void)b; memcpy(dst.ptr, src, (size_t)n); return OLLM_OK;
}
static ollm_result ollm__cpu_download(ollm__backend *b, void *dst, ollm__buf src, uint64_t n) {
    (void)b; memcpy(dst, src.ptr, (size_t)n); return OLLM_OK;
}
static ollm_result ollm__cpu_sync(ollm__backend *b) { (void)b; return OLLM_OK; }

static ollm_result ollm__cpu_embed(ollm__backend *b, ollm__buf x, const ollm__w *table, const int32_t *ids, int T) {
    int t; (void)b;
    for (t = 0; t < T; t++)
        ollm__to_f32(ollm__w_row(table, ids[t]), table->dtype, (float *)x.ptr + (int64_t)t * table->cols, table->cols);
    return OLLM_OK;
}

static ollm_result ollm__cpu_rmsnorm(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *w, int T, int n,
                                     float eps, int unit_offset) {
    float *wf = (float *)OLLM_MALLOC((size_t)n * 4); int t, i; (void)b;
    if (!wf) return OLLM_ERR_NO_MEMORY;
    ollm__to_f32(w->data.ptr, w->dtype, wf, n);
    for (t = 0; t < T; t++) {
        const float *xi = (const float *)x.ptr + (int64_t)t * n; float *yi = (float *)y.ptr + (int64_t)t * n;
        double ss = 0; float inv;
        for (i = 0; i < n; i++) ss += (double)xi[i] * xi[i];
        inv = 1.0f / sqrtf((float)(ss / n) + eps);
        for (i = 0; i < n; i++) yi[i] = (unit_offset ? 1.0f + wf[i] : wf[i]) * (xi[i] * inv);
    }
    OLLM_FREE(wf);
    return OLLM_OK;
}

/* E2M1 (FP4) codes 0..15: transformers integrations/mxfp4.py FP4_VALUES */
static const float ollm__fp4_values[16] = { +0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                            -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f };
/* One row of K = 32 * nblk values: block g holds values 32g .. 32g + 31, byte j of it values 2j (low nibble) and
   2j + 1 (high nibble), all times 2^(scale - 127) (convert_moe_packed_tensors). Exact in fp32. */
static void ollm__mxfp4_row(const uint8_t *blocks, const uint8_t *scales, int64_t nblk, float *out) {
    int64_t g; int j;
    for (g = 0; g < nblk; g++) {
        float s = ldexpf(1.0f, (int)scales[g] - 127); const uint8_t *b = blocks + g * 16; float *o = out + g * 32;
        for (j = 0; j < 16; j++) {
            o[2 * j] = ollm__fp4_values[b[j] & 15] * s;
            o[2 * j + 1] = ollm__fp4_values[b[j] >> 4] * s;
        }
    }
}

/* Rows r0 .. r0 + nr - 1 of W as floats, whatever its storage (ollm__w's fmt). */
static void ollm__w_rows_f32(const ollm__w *W, int64_t r0, int64_t nr, float *out, float *tmp) {
    int64_t K = W->cols, N = W->rows, r, k;
    if (W->fmt == OLLM__W_MXFP4)
        for (r = 0; r < nr; r++)
            ollm__mxfp4_row((const uint8_t *)W->data.ptr + (r0 + r) * (K / 2), (const uint8_t *)W->scales.ptr + (r0 + r) * (K / 32),
                            K / 32, out + r * K);
    else if (W->fmt == OLLM__W_KMAJOR) {   /* row n is column n of [K, N]: nr adjacent values per k */
        size_t es = ollm__dtype_size[W->dtype];
        for (k = 0; k < K; k++) {
            ollm__to_f32((const char *)W->data.ptr + (k * N + r0) * es, W->dtype, tmp, nr);
            for (r = 0; r < nr; r++) out[r * K + k] = tmp[r];
        }
    } else
        for (r = 0; r < nr; r++) ollm__to_f32(ollm__w_row(W, r0 + r), W->dtype, out + r * K, K);
}
/* Matrix product: one task per block of 16 weight rows, converted to fp32 once and reused for every token. */
typedef struct ollm__mm_ctx { float *y; const float *x; const ollm__w *W; int T, accumulate, failed; } ollm__mm_ctx;
#define OLLM__MM_ROWS 16
/* ollm__dot of a bf16 row, converting as it goes: the same products summed in the same order, so the same float */
static float ollm__dot_bf16(const uint16_t *a, const float *b, int64_t n) {
    float acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 }; int64_t i = 0; int j;
    for (; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) acc[j] += ollm__bf16_to_f32(a[i + j]) * b[i + j];
    for (; i < n; i++) acc[0] += ollm__bf16_to_f32(a[i]) * b[i];
    return ollm__sum8(acc);
}
/* The same for a row of MXFP4 blocks (ollm__mxfp4_row's values, each in the lane ollm__dot gives it) */
static float ollm__dot_mxfp4(const uint8_t *blocks, const uint8_t *scales, int64_t nblk, const float *x) {
    float acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 }; int64_t g; int q, j;
    for (g = 0; g < nblk; g++) {
        float s = ldexpf(1.0f, (int)scales[g] - 127); const uint8_t *b = blocks + g * 16; const float *xg = x + g * 32;
        for (q = 0; q < 4; q++)
            for (j = 0; j < 4; j++) {
                float lo = ollm__fp4_values[b[4 * q + j] & 15] * s, hi = ollm__fp4_values[b[4 * q + j] >> 4] * s;
                acc[2 * j] += lo * xg[8 * q + 2 * j];
                acc[2 * j + 1] += hi * xg[8 * q + 2 * j + 1];
            }
    }
    return ollm__sum8(acc);
}
static void ollm__mm_task(void *vctx, int64_t blk) {
    ollm__mm_ctx *c = (ollm__mm_ctx *)vctx;
    int64_t K = c->W->cols, N = c->W->rows, r0 = blk * OLLM__MM_ROWS, nr = N - r0 < OLLM__MM_ROWS ? N - r0 : OLLM__MM_ROWS, r;
    float *wf;
    int t;
    if (c->T == 1 && (c->W->fmt == OLLM__W_MXFP4 ||
                      (c->W->fmt == OLLM__W_DENSE && (c->W->dtype == OLLM__BF16 || c->W->dtype == OLLM__F32)))) {
        /* one token: each row read once where it lies (converted on the fly), bit for bit the path below */
        for (r = 0; r < nr; r++) {
            float d = c->W->fmt == OLLM__W_MXFP4
                          ? ollm__dot_mxfp4((const uint8_t *)c->W->data.ptr + (r0 + r) * (K / 2),
                                            (const uint8_t *)c->W->scales.ptr + (r0 + r) * (K / 32), K / 32, c->x)
                      : c->W->dtype == OLLM__F32 ? ollm__dot((const float *)ollm__w_row(c->W, r0 + r), c->x, K)
                                                 : ollm__dot_bf16((const uint16_t *)ollm__w_row(c->W, r0 + r), c->x, K);
            c->y[r0 + r] = c->accumulate ? c->y[r0 + r] + d : d;
        }
        return;
    }
    wf = (float *)OLLM_MALLOC((size_t)(nr * K + OLLM__MM_ROWS) * 4);
    if (!wf) { c->failed = 1; return; }   /* a benign race: every writer stores 1 */
    ollm__w_rows_f32(c->W, r0, nr, wf, wf + nr * K);
    for (t = 0; t < c->T; t++) {
        const float *xt = c->x + (int64_t)t * K; float *yt = c->y + (int64_t)t * N + r0;
        for (r = 0; r < nr; r++) {
            float d = ollm__dot(wf + r * K, xt, K);
            yt[r] = c->accumulate ? yt[r] + d : d;
        }
    }
    OLLM_FREE(wf);
}
static ollm_result ollm__cpu_add_bias(ollm__backend *b, ollm__buf y, const ollm__w *bias, int T, int64_t n);
static ollm_result ollm__cpu_matmul(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W, const ollm__w *bias, int T,
                                    int accumulate) {
    ollm__mm_ctx c;
    c.y = (float *)y.ptr; c.x = (const float *)x.ptr; c.W = W; c.T = T; c.accumulate = accumulate; c.failed = 0;
    ollm__pool_run(&((ollm__cpu *)b)->pool, (W->rows + OLLM__MM_ROWS - 1) / OLLM__MM_ROWS, ollm__mm_task, &c);
    if (c.failed) return OLLM_ERR_NO_MEMORY;
    return bias ? ollm__cpu_add_bias(b, y, bias, T, W->rows) : OLLM_OK;
}

static ollm_result ollm__cpu_rope(ollm__backend *b, ollm__buf q, int nq, ollm__buf k, int nk, int T, int head_dim,
                                  int rot_dim, int pos0, ollm__buf inv_freq, float mscale) {
    int t, h, i, half = rot_dim / 2; const float *inv = (const float *)inv_freq.ptr; (void)b;
    for (t = 0; t < T; t++)
        for (i = 0; i < half; i++) {
            float ang = (float)(pos0 + t) * inv[i];          /* fp32 angle, as transformers' position @ inv_freq */
            float c = cosf(ang) * mscale, s = sinf(ang) * mscale;
            for (h = 0; h < nq + nk; h++) {
                float *xh = h < nq ? (float *)q.ptr + ((int64_t)t * nq + h) * head_dim
                                   : (float *)k.ptr + ((int64_t)t * nk + h - nq) * head_dim;
                float a = xh[i], bb = xh[i + half];
                xh[i] = a * c - bb * s;                       /* x cos + rotate_half(x) sin, rotate_half = [-b, a] */
                xh[i + half] = bb * c + a * s;
            }
        }
    return OLLM_OK;
}

typedef struct ollm__att_ctx {
    float *o; const float *q, *kc, *vc; const ollm__attn_args *a; float *sinks; int failed;
} ollm__att_ctx;
static void ollm__att_task(void *vctx, int64_t task) {
    ollm__att_ctx *c = (ollm__att_ctx *)vctx; const ollm__attn_args *a = c->a;
    int h = (int)(task % a->n_heads), t = (int)(task / a->n_heads), hd = a->head_dim, i = a->pos0 + t, j, d;
    int kvh = h / (a->n_heads / a->n_kv_heads), kvw = a->n_kv_heads * hd, j0 = 0, R = a->ring ? a->ring : INT_MAX;
    const float *q = c->q + ((int64_t)t * a->n_heads + h) * hd;
    float *o = c->o + ((int64_t)t * a->n_heads + h) * hd, *p, mx = -INFINITY, sum = 0;
    if (a->window > 0 && i - a->window + 1 > 0) j0 = i - a->window + 1;
    p = (float *)OLLM_MALLOC((size_t)(i - j0 + 1) * 4);
    if (!p) { c->failed = 1; return; }
    for (j = j0; j <= i; j++) {
        p[j - j0] = ollm__dot(q, c->kc + (int64_t)(j % R) * kvw + kvh * hd, hd) * a->scale;
        if (p[j - j0] > mx) mx = p[j - j0];
    }
    if (c->sinks && c->sinks[h] > mx) mx = c->sinks[h];
    for (j = j0; j <= i; j++) { p[j - j0] = expf(p[j - j0] - mx); sum += p[j - j0]; }
    if (c->sinks) sum += expf(c->sinks[h] - mx);   /* the sink takes probability, adds no value */
    for (d = 0; d < hd; d++) o[d] = 0;
    for (j = j0; j <= i; j++) {
        const float *v = c->vc + (int64_t)(j % R) * kvw + kvh * hd; float w = p[j - j0] / sum;
        for (d = 0; d < hd; d++) o[d] += w * v[d];
    }
    OLLM_FREE(p);
}
static ollm_result ollm__cpu_attention(ollm__backend *b, ollm__buf o, ollm__buf q, ollm__buf k, ollm__buf v,
                                       ollm__buf k_cache, ollm__buf v_cache, const ollm__attn_args *a) {
    ollm__att_ctx c; uint64_t row = (uint64_t)a->n_kv_heads * a->head_dim * 4, rows; int t;
    float sinks[4096];
    rows = (k_cache.bytes < v_cache.bytes ? k_cache.bytes : v_cache.bytes) / row;
    if (!ollm__attn_fits(a, rows))
        return ollm__fail(b->log, OLLM_ERR_INVALID_ARG, "attention: positions %d..%d (window %d) do not fit a cache of "
                          "%llu rows%s", a->pos0, a->pos0 + a->T - 1, a->window, (unsigned long long)rows,
                          a->ring ? " used as a ring" : "");
    for (t = 0; t < a->T; t++) {   /* append: row pos0 + t, or its place in the ring */
        uint64_t r = a->ring ? (uint64_t)(a->pos0 + t) % (uint64_t)a->ring : (uint64_t)(a->pos0 + t);
        memcpy((char *)k_cache.ptr + r * row, (const char *)k.ptr + (uint64_t)t * row, (size_t)row);
        memcpy((char *)v_cache.ptr + r * row, (const char *)v.ptr + (uint64_t)t * row, (size_t)row);
    }
    c.o = (float *)o.ptr; c.q = (const float *)q.ptr; c.kc = (const float *)k_cache.ptr; c.vc = (const float *)v_cache.ptr;
    c.a = a; c.sinks = NULL; c.failed = 0;
    if (a->sinks) { ollm__to_f32(a->sinks->data.ptr, a->sinks->dtype, sinks, a->n_heads); c.sinks = sinks; }
    ollm__pool_run(&((ollm__cpu *)b)->pool, (int64_t)a->T * a->n_heads, ollm__att_task, &c);
    return c.failed ? OLLM_ERR_NO_MEMORY : OLLM_OK;
}

static ollm_result ollm__cpu_silu_mul(ollm__backend *b, ollm__buf g, ollm__buf u, int64_t n) {
    float *gp = (float *)g.ptr; const float *up = (const float *)u.ptr; int64_t i; (void)b;
    for (i = 0; i < n; i++) gp[i] = gp[i] / (1.0f + expf(-gp[i])) * up[i];
    return OLLM_OK;
}

static ollm_result ollm__cpu_add_bias(ollm__backend *b, ollm__buf y, const ollm__w *bias, int T, int64_t n) {
    float *bf = (float *)OLLM_MALLOC((size_t)n * 4), *yp = (float *)y.ptr; int t; int64_t i; (void)b;
    if (!bf) return OLLM_ERR_NO_MEMORY;
    ollm__to_f32(bias->data.ptr, bias->dtype, bf, n);
    for (t = 0; t < T; t++) for (i = 0; i < n; i++) yp[(int64_t)t * n + i] += bf[i];
    OLLM_FREE(bf);
    return OLLM_OK;
}
static ollm_result ollm__cpu_gather(ollm__backend *b, ollm__buf dst, ollm__buf src, const int32_t *idx, int R, int64_t width) {
    int r; (void)b;
    for (r = 0; r < R; r++)
        memcpy((float *)dst.ptr + (int64_t)r * width, (const float *)src.ptr + (int64_t)idx[r] * width, (size_t)width * 4);
    return OLLM_OK;
}
static ollm_result ollm__cpu_combine(ollm__backend *b, ollm__buf x, ollm__buf src, const int32_t *rows, const float *w,
                                     int T, int k, int64_t width) {
    int t, j; int64_t i; (void)b;
    for (t = 0; t < T; t++) {
        float *xt = (float *)x.ptr + (int64_t)t * width;
        for (i = 0; i < width; i++) {
            float acc = 0;
            for (j = 0; j < k; j++) acc += w[t * k + j] * ((const float *)src.ptr)[(int64_t)rows[t * k + j] * width + i];
            xt[i] += acc;
        }
    }
    return OLLM_OK;
}
static ollm_result ollm__cpu_swiglu_clamp(ollm__backend *b, ollm__buf y, ollm__buf gu, int64_t R, int64_t I, float limit,
                                          float alpha) {
    float *yp = (float *)y.ptr; const float *g = (const float *)gu.ptr; int64_t i; (void)b;
    for (i = 0; i < R * I; i++) {
        float gate = g[2 * i], up = g[2 * i + 1];
        gate = gate > limit ? limit : gate;                              /* clamp(max=limit) only */
        up = up > limit ? limit : up < -limit ? -limit : up;
        yp[i] = (up + 1.0f) * (gate / (1.0f + expf(-gate * alpha)));     /* (up + 1) * glu */
    }
    return OLLM_OK;
}

static ollm_result ollm__cpu_matmul_grouped(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W,
                                            const ollm__w *bias, const int32_t *row0, const int32_t *xrow,
                                            const int32_t *rows, int G) {
    int g;
    for (g = 0; g < G; g++) {
        uint64_t n = W[g].rows, k = W[g].cols, r = (uint64_t)row0[g], t = (uint64_t)rows[g];
        uint64_t xr = (uint64_t)(xrow ? xrow[g] : row0[g]);
        OLLM__TRY(b->matmul(b, ollm__view(y, r * n * 4, t * n * 4), ollm__view(x, xr * k * 4, t * k * 4), &W[g],
                              bias ? &bias[g] : NULL, (int)t, 0));
    }
    return OLLM_OK;
}
static ollm_result ollm__cpu_matmul_n(ollm__backend *b, int n, const ollm__buf *y, ollm__buf x, const ollm__w *const *W,
                                      const ollm__w *const *bias, int T) {
    int i;
    for (i = 0; i < n; i++) OLLM__TRY(b->matmul(b, y[i], x, W[i], bias ? bias[i] : NULL, T, 0));
    return OLLM_OK;
}
static float ollm__sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static ollm_result ollm__cpu_split_cols(ollm__backend *b, ollm__buf a, ollm__buf bb, ollm__buf src, int64_t rows,
                                        int64_t na, int64_t nb) {
    int64_t r; const float *sp = (const float *)src.ptr; (void)b;
    for (r = 0; r < rows; r++) {
        memcpy((float *)a.ptr + r * na, sp + r * (na + nb), (size_t)na * 4);
        memcpy((float *)bb.ptr + r * nb, sp + r * (na + nb) + na, (size_t)nb * 4);
    }
    return OLLM_OK;
}
static ollm_result ollm__cpu_sigmoid_mul(ollm__backend *b, ollm__buf y, ollm__buf g, int64_t n) {
    float *yp = (float *)y.ptr; const float *gp = (const float *)g.ptr; int64_t i; (void)b;
    for (i = 0; i < n; i++) yp[i] *= ollm__sigmoid(gp[i]);
    return OLLM_OK;
}
static ollm_result ollm__cpu_dn_split(ollm__backend *b, ollm__buf mix, ollm__buf z, ollm__buf beta, ollm__buf g,
                                      ollm__buf qkvz, ollm__buf ba, const ollm__w *A_log, const ollm__w *dt_bias,
                                      const ollm__dn_dims *d, int T) {
    int nk = d->nk, nv = d->nv, dk = d->dk, dv = d->dv, r = nv / nk, Kd = nk * dk, Vd = nv * dv, C = 2 * Kd + Vd;
    int G = 2 * dk + 2 * r * dv, t, h, j; float A[4096], dtb[4096]; (void)b;
    if (nv > 4096) return OLLM_ERR_INVALID_ARG;
    ollm__to_f32(A_log->data.ptr, A_log->dtype, A, nv); ollm__to_f32(dt_bias->data.ptr, dt_bias->dtype, dtb, nv);
    for (t = 0; t < T; t++) {
        const float *p = (const float *)qkvz.ptr + (int64_t)t * nk * G, *pb = (const float *)ba.ptr + (int64_t)t * 2 * nv;
        float *mx = (float *)mix.ptr + (int64_t)t * C, *zt = (float *)z.ptr + (int64_t)t * Vd;
        for (h = 0; h < nk; h++) {
            const float *ph = p + (int64_t)h * G;
            memcpy(mx + h * dk, ph, (size_t)dk * 4);
            memcpy(mx + Kd + h * dk, ph + dk, (size_t)dk * 4);
            memcpy(mx + 2 * Kd + h * r * dv, ph + 2 * dk, (size_t)(r * dv) * 4);
            memcpy(zt + h * r * dv, ph + 2 * dk + r * dv, (size_t)(r * dv) * 4);
            for (j = 0; j < r; j++) {
                int hv = h * r + j; float sp = pb[h * 2 * r + r + j] + dtb[hv];
                sp = sp > 20.0f ? sp : log1pf(expf(sp));                 /* F.softplus, threshold 20 */
                ((float *)beta.ptr)[t * nv + hv] = ollm__sigmoid(pb[h * 2 * r + j]);
                ((float *)g.ptr)[t * nv + hv] = -expf(A[hv]) * sp;
            }
        }
    }
    return OLLM_OK;
}
static ollm_result ollm__cpu_dn_conv(ollm__backend *b, ollm__buf y, ollm__buf state, ollm__buf mix, const ollm__w *w,
                                     int T, int C, int K) {
    float *wf = (float *)OLLM_MALLOC((size_t)C * K * 4), *st = (float *)state.ptr, *yp = (float *)y.ptr;
    const float *mx = (const float *)mix.ptr; int t, c, j; (void)b;
    if (!wf) return OLLM_ERR_NO_MEMORY;
    ollm__to_f32(w->data.ptr, w->dtype, wf, (int64_t)C * K);
    for (t = 0; t < T; t++)
        for (c = 0; c < C; c++) {
            float acc = 0;
            for (j = 0; j < K; j++) {
                int r = t + j;   /* row of X: the state's rows first */
                acc += wf[(int64_t)c * K + j] * (r < K - 1 ? st[(int64_t)r * C + c] : mx[(int64_t)(r - (K - 1)) * C + c]);
            }
            yp[(int64_t)t * C + c] = acc * ollm__sigmoid(acc);
        }
    for (j = 0; j < K - 1; j++) {   /* the last K-1 rows of X, oldest first (in place: row j reads row j + T >= j) */
        int r = T + j;
        if (r < K - 1) memmove(st + (int64_t)j * C, st + (int64_t)r * C, (size_t)C * 4);
        else memcpy(st + (int64_t)j * C, mx + (int64_t)(r - (K - 1)) * C, (size_t)C * 4);
    }
    OLLM_FREE(wf);
    return OLLM_OK;
}
/* One task per value head: the recurrence over the T tokens (torch_recurrent_gated_delta_rule). */
typedef struct ollm__dn_ctx { const float *qkv, *beta, *g; float *o, *S; int T; ollm__dn_dims d; } ollm__dn_ctx;
static void ollm__cpu_dn_task(void *vctx, int64_t hv) {
    const ollm__dn_ctx *c = (const ollm__dn_ctx *)vctx;
    int dk = c->d.dk, dv = c->d.dv, nv = c->d.nv, Kd = c->d.nk * dk, C = 2 * Kd + nv * dv, kh = (int)hv / (nv / c->d.nk);
    int t, i, j; float *S = c->S + hv * (int64_t)dk * dv;
    for (t = 0; t < c->T; t++) {
        const float *row = c->qkv + (int64_t)t * C;
        const float *q = row + kh * dk, *k = row + Kd + kh * dk, *v = row + 2 * Kd + hv * dv;
        float decay = expf(c->g[t * nv + hv]), beta = c->beta[t * nv + hv];
        float *o = c->o + (int64_t)t * nv * dv + hv * dv;
        for (j = 0; j < dv; j++) o[j] = 0;
        for (i = 0; i < dk * dv; i++) S[i] *= decay;
        for (i = 0; i < dk; i++) {                      /* o temporarily holds S^T k */
            const float *Si = S + (int64_t)i * dv; float ki = k[i];
            for (j = 0; j < dv; j++) o[j] += Si[j] * ki;
        }
        for (j = 0; j < dv; j++) o[j] = (v[j] - o[j]) * beta;   /* the delta */
        for (i = 0; i < dk; i++) {
            float *Si = S + (int64_t)i * dv; float ki = k[i];
            for (j = 0; j < dv; j++) Si[j] += ki * o[j];
        }
        for (j = 0; j < dv; j++) o[j] = 0;
        for (i = 0; i < dk; i++) {
            const float *Si = S + (int64_t)i * dv; float qi = q[i];
            for (j = 0; j < dv; j++) o[j] += Si[j] * qi;
        }
    }
}
static ollm_result ollm__cpu_dn_rule(ollm__backend *b, ollm__buf o, ollm__buf qkv, ollm__buf beta, ollm__buf g,
                                     ollm__buf S, const ollm__dn_dims *d, int T) {
    int dk = d->dk, C = 2 * d->nk * dk + d->nv * d->dv, t, h, i; float qscale = 1.0f / sqrtf((float)dk);
    ollm__dn_ctx c;
    for (t = 0; t < T; t++)   /* l2norm (eps 1e-6 inside the rsqrt of the sum of squares) of q and k per key head */
        for (h = 0; h < 2 * d->nk; h++) {
            float *v = (float *)qkv.ptr + (int64_t)t * C + (int64_t)h * dk, ss = 0, inv;
            for (i = 0; i < dk; i++) ss += v[i] * v[i];
            inv = 1.0f / sqrtf(ss + 1e-6f);
            if (h < d->nk) inv *= qscale;
            for (i = 0; i < dk; i++) v[i] *= inv;
        }
    c.qkv = (const float *)qkv.ptr; c.beta = (const float *)beta.ptr; c.g = (const float *)g.ptr; c.o = (float *)o.ptr;
    c.S = (float *)S.ptr; c.T = T; c.d = *d;
    ollm__pool_run(&((ollm__cpu *)b)->pool, d->nv, ollm__cpu_dn_task, &c);
    return OLLM_OK;
}
static ollm_result ollm__cpu_norm_gated(ollm__backend *b, ollm__buf y, ollm__buf z, const ollm__w *w, int64_t rows, int n,
                                        float eps) {
    float *wf = (float *)OLLM_MALLOC((size_t)n * 4); int64_t r; int i; (void)b;
    if (!wf) return OLLM_ERR_NO_MEMORY;
    ollm__to_f32(w->data.ptr, w->dtype, wf, n);
    for (r = 0; r < rows; r++) {
        float *o = (float *)y.ptr + r * n, ss = 0, inv; const float *zr = (const float *)z.ptr + r * n;
        for (i = 0; i < n; i++) ss += o[i] * o[i];
        inv = 1.0f / sqrtf(ss / (float)n + eps);
        for (i = 0; i < n; i++) o[i] = wf[i] * (o[i] * inv) * (zr[i] * ollm__sigmoid(zr[i]));
    }
    OLLM_FREE(wf);
    return OLLM_OK;
}

static void ollm__cpu_destroy(ollm__backend *b) {
    ollm__cpu *c = (ollm__cpu *)b;
    ollm__pool_free(&c->pool);
    OLLM_FREE(c);
}
static ollm_result ollm__cpu_create(int threads, ollm__log *lg, ollm__backend **out) {
    ollm__cpu *c = (ollm__cpu *)ollm__calloc(1, sizeof *c);
    if (!c) return OLLM_ERR_NO_MEMORY;
    if (threads <= 0) { long n = sysconf(_SC_NPROCESSORS_ONLN); threads = n > 0 ? (int)n : 1; }
    ollm__pool_init(&c->pool, threads);
    c->b.name = "cpu"; c->b.device = "CPU"; c->b.host = 1; c->b.kv_elem = 4; c->b.log = lg;
    c->b.destroy = ollm__cpu_destroy; c->b.alloc = ollm__cpu_alloc; c->b.release = ollm__cpu_release;
    c->b.upload = ollm__cpu_upload; c->b.download = ollm__cpu_download; c->b.embed = ollm__cpu_embed;
    c->b.rmsnorm = ollm__cpu_rmsnorm; c->b.matmul = ollm__cpu_matmul; c->b.rope = ollm__cpu_rope;
    c->b.attention = ollm__cpu_attention; c->b.silu_mul = ollm__cpu_silu_mul; c->b.sync = ollm__cpu_sync;
    c->b.add_bias = ollm__cpu_add_bias; c->b.gather = ollm__cpu_gather; c->b.combine = ollm__cpu_combine;
    c->b.swiglu_clamp = ollm__cpu_swiglu_clamp; c->b.split_cols = ollm__cpu_split_cols;
    c->b.matmul_grouped = ollm__cpu_matmul_grouped; c->b.matmul_n = ollm__cpu_matmul_n;
    c->b.sigmoid_mul = ollm__cpu_sigmoid_mul; c->b.dn_split = ollm__cpu_dn_split; c->b.dn_conv = ollm__cpu_dn_conv;
    c->b.dn_rule = ollm__cpu_dn_rule; c->b.norm_gated = ollm__cpu_norm_gated; c->b.argmax = ollm__cpu_argmax;
    *out = &c->b;
    ollm__logf(lg, OLLM_LOG_INFO, "CPU backend: %d threads", c->pool.n_threads);
    return OLLM_OK;
}

/* ==== @tokenizer ==== byte-level BPE from tokenizer.json, chat formats ===================================== */
/* Byte-level BPE read from tokenizer.json (Llama-3, GPT-OSS o200k harmony, Qwen3), the added/special
   tokens, and the chat formats of those families rendered without a template engine.

   ENCODE    text -> added tokens split out (leftmost-longest, lstrip/rstrip/single_word) -> normaliser (none, or NFC)
             -> pre-tokenizer (the Split regex of the family, run by a hand-written matcher below, then ByteLevel)
             -> BPE by merge rank -> post-processor (TemplateProcessing prefix/suffix, e.g. <|begin_of_text|>).
             This is the pipeline of HF tokenizers (tokenizer.rs encode_single_sequence, added_vocabulary.rs
             extract_and_normalize, models/bpe/word.rs merge_all); the tests compare ids with it on every case.
   SPECIAL   OLLM_TOKENIZE_PARSE_SPECIAL off (the default) is HF's `encode_special_tokens = true`
             (transformers' split_special_tokens=True): text that spells a *special* token (special: true, e.g.
             <|eot_id|>) is tokenized as plain text. Added tokens that are not special (Qwen's <think>, <tool_call>)
             are always matched, in both modes, as HF does: they are vocabulary, not control.
   DECODE    ids -> bytes through the GPT-2 byte table; a token whose text has characters outside that table (an
             added token such as "<|eot_id|>" has none) gives its UTF-8 text, as decoders/byte_level.rs does.
             Bytes are exact: invalid UTF-8 is passed through (the streaming core holds partial sequences).
   UNICODE   \p{L} \p{N} \p{M} \s come from UCD 15.0.0 (Debian unicode-data), NFC from the same files cut at 12.1, as
             generated by tools/gen_unicode.py. HF tokenizers' Python wheels run the Split regex with Oniguruma (the
             `onig` crate, the default feature; `regex`/`fancy-regex` only in wasm builds), whose classes behave as
             Unicode 15.0 (Kawi, new in 15.0, is a letter; CJK Extension I, new in 15.1, is not), and NFC with
             unicode-normalization-alignments, whose tables predate 13.0 (U+11935 U+11930 stay apart; 14.0 marks
             have ccc 0). tests/fixtures/tokenizer/probes.json pins both.
   INPUT     bytes; invalid UTF-8 (which HF cannot receive: Python strings are always valid) is accepted, each bad
             byte being one character of no class, so decode(encode(x)) == x for any bytes without NFC. */

/* BEGIN GENERATED UNICODE TABLES: tools/gen_unicode.py from the Unicode Character Database 15.0.0 (Debian unicode-data) */
#define OLLM__UNICODE_VERSION "15.0.0"
#define OLLM__NFC_UNICODE_VERSION "12.1 (characters assigned later do not decompose and have ccc 0)"
/* start << 4 | class (0 other, 1 Lu, 2 Ll, 3 Lt, 4 Lm, 5 Lo, 6 M, 7 N, 8 White_Space) */
static const uint32_t ollm__ucat[3155] = {
0,152,224,520,528,775,928,1041,1456,1554,1968,2136,2144,2568,2576,2725,2736,2855,2880,2898,2912,2967,2981,2992,3015,
3056,3073,3440,3457,3570,3952,3970,4097,4114,4129,4146,4161,4178,4193,4210,4225,4242,4257,4274,4289,4306,4321,4338,
4353,4370,4385,4402,4417,4434,4449,4466,4481,4498,4513,4530,4545,4562,4577,4594,4609,4626,4641,4658,4673,4690,4705,
4722,4737,4754,4769,4786,4801,4818,4833,4850,4865,4882,4897,4914,4929,4946,4961,4978,5009,5026,5041,5058,5073,5090,
5105,5122,5137,5154,5169,5186,5201,5218,5233,5250,5281,5298,5313,5330,5345,5362,5377,5394,5409,5426,5441,5458,5473,
5490,5505,5522,5537,5554,5569,5586,5601,5618,5633,5650,5665,5682,5697,5714,5729,5746,5761,5778,5793,5810,5825,5842,
5857,5874,5889,5906,5921,5938,5953,5970,5985,6002,6017,6050,6065,6082,6097,6114,6161,6194,6209,6226,6241,6274,6289,
6338,6369,6434,6449,6482,6497,6546,6593,6626,6641,6674,6689,6706,6721,6738,6753,6786,6801,6818,6849,6866,6881,6914,
6929,6978,6993,7010,7025,7058,7093,7105,7122,7173,7233,7251,7266,7281,7299,7314,7329,7347,7362,7377,7394,7409,7426,
7441,7458,7473,7490,7505,7522,7537,7554,7569,7586,7601,7618,7649,7666,7681,7698,7713,7730,7745,7762,7777,7794,7809,
7826,7841,7858,7873,7890,7905,7922,7953,7971,7986,8001,8018,8033,8082,8097,8114,8129,8146,8161,8178,8193,8210,8225,
8242,8257,8274,8289,8306,8321,8338,8353,8370,8385,8402,8417,8434,8449,8466,8481,8498,8513,8530,8545,8562,8577,8594,
8609,8626,8641,8658,8673,8690,8705,8722,8737,8754,8769,8786,8801,8818,8833,8850,8865,8882,8897,8914,8929,8946,8961,
8978,8993,9010,9121,9154,9169,9202,9233,9250,9265,9330,9345,9362,9377,9394,9409,9426,9441,9458,10565,10578,11012,
11296,11364,11552,11780,11856,11972,11984,12004,12016,12294,14081,14098,14113,14130,14148,14160,14177,14194,14208,
14244,14258,14304,14321,14336,14433,14448,14465,14512,14529,14544,14561,14594,14609,14880,14897,15042,15601,15618,
15649,15698,15745,15762,15777,15794,15809,15826,15841,15858,15873,15890,15905,15922,15937,15954,15969,15986,16001,
16018,16033,16050,16065,16082,16097,16114,16193,16210,16224,16241,16258,16273,16306,16337,17154,17921,17938,17953,
17970,17985,18002,18017,18034,18049,18066,18081,18098,18113,18130,18145,18162,18177,18194,18209,18226,18241,18258,
18273,18290,18305,18322,18337,18354,18369,18386,18401,18418,18433,18450,18464,18486,18593,18610,18625,18642,18657,
18674,18689,18706,18721,18738,18753,18770,18785,18802,18817,18834,18849,18866,18881,18898,18913,18930,18945,18962,
18977,18994,19009,19026,19041,19058,19073,19090,19105,19122,19137,19154,19169,19186,19201,19218,19233,19250,19265,
19282,19297,19314,19329,19346,19361,19378,19393,19410,19425,19442,19457,19490,19505,19522,19537,19554,19569,19586,
19601,19618,19633,19650,19665,19682,19713,19730,19745,19762,19777,19794,19809,19826,19841,19858,19873,19890,19905,
19922,19937,19954,19969,19986,20001,20018,20033,20050,20065,20082,20097,20114,20129,20146,20161,20178,20193,20210,
20225,20242,20257,20274,20289,20306,20321,20338,20353,20370,20385,20402,20417,20434,20449,20466,20481,20498,20513,
20530,20545,20562,20577,20594,20609,20626,20641,20658,20673,20690,20705,20722,20737,20754,20769,20786,20801,20818,
20833,20850,20865,20882,20897,20914,20929,20946,20961,20978,20993,21010,21025,21042,21057,21074,21089,21106,21121,
21138,21153,21170,21185,21202,21217,21234,21248,21265,21872,21908,21920,22018,22672,22806,23520,23542,23552,23574,
23600,23622,23648,23670,23680,23813,24240,24309,24368,24838,25008,25093,25604,25621,25782,26119,26272,26341,26374,
26389,27968,27989,28006,28112,28150,28244,28278,28304,28326,28389,28423,28581,28624,28661,28672,28933,28950,28965,
29446,29872,29909,31334,31509,31520,31751,31909,32438,32580,32608,32676,32688,32726,32736,32773,33126,33188,33206,
33348,33366,33412,33430,33504,33797,34198,34240,34309,34480,34565,34944,34965,35056,35206,35333,35988,36006,36384,
36406,36933,37798,37845,37862,38149,38166,38277,38438,38464,38503,38656,38676,38693,38934,38976,38997,39120,39157,
39184,39221,39568,39589,39696,39717,39728,39781,39840,39878,39893,39910,40016,40054,40080,40118,40165,40176,40310,
40320,40389,40416,40437,40486,40512,40551,40709,40736,40775,40864,40901,40912,40934,40944,40982,41024,41045,41136,
41205,41232,41269,41616,41637,41744,41765,41792,41813,41840,41861,41888,41926,41936,41958,42032,42102,42128,42166,
42208,42262,42272,42389,42448,42469,42480,42599,42758,42789,42838,42848,43030,43072,43093,43232,43253,43296,43317,
43664,43685,43792,43813,43840,43861,43936,43974,43989,44006,44128,44150,44192,44214,44256,44293,44304,44549,44582,
44608,44647,44800,44949,44966,45056,45078,45120,45141,45264,45301,45328,45365,45712,45733,45840,45861,45888,45909,
45984,46022,46037,46054,46160,46198,46224,46262,46304,46422,46464,46533,46560,46581,46630,46656,46695,46848,46869,
46887,46976,47142,47157,47168,47189,47280,47333,47376,47397,47456,47509,47536,47557,47568,47589,47616,47669,47696,
47749,47792,47845,48032,48102,48176,48230,48272,48294,48352,48389,48400,48502,48512,48743,48944,49158,49237,49360,
49381,49424,49445,49808,49829,50080,50118,50133,50150,50256,50278,50320,50342,50400,50518,50544,50565,50608,50645,
50656,50693,50726,50752,50791,50944,51079,51184,51205,51222,51264,51285,51408,51429,51472,51493,51856,51877,52032,
52053,52128,52166,52181,52198,52304,52326,52368,52390,52448,52566,52592,52693,52720,52741,52774,52800,52839,52992,
53013,53046,53056,53254,53317,53456,53477,53520,53541,54198,54229,54246,54352,54374,54416,54438,54501,54512,54597,
54646,54663,54773,54822,54848,54887,55184,55205,55296,55318,55360,55381,55664,55717,56096,56117,56256,56277,56288,
56325,56432,56486,56496,56566,56656,56678,56688,56710,56832,56935,57088,57126,57152,57365,58134,58149,58182,58288,
58373,58468,58486,58608,58631,58784,59413,59440,59461,59472,59493,59568,59589,59968,59989,60000,60021,60182,60197,
60230,60373,60384,60421,60496,60516,60528,60550,60656,60679,60832,60869,60928,61445,61456,61830,61856,61959,62272,
62294,62304,62326,62336,62358,62368,62438,62469,62592,62613,63184,63254,63568,63590,63621,63702,63872,63894,64464,
64614,64624,65541,66230,66549,66567,66720,66821,66918,66981,67046,67093,67110,67157,67190,67301,67350,67413,67622,
67813,67830,67847,68006,68064,68097,68704,68721,68736,68817,68832,68866,69552,69572,69586,69637,74896,74917,74976,
75013,75120,75141,75152,75173,75232,75269,75920,75941,76000,76037,76560,76581,76640,76677,76784,76805,76816,76837,
76896,76933,77168,77189,78096,78117,78176,78213,79280,79318,79360,79511,79824,79877,80128,80385,81760,81794,81888,
81941,91856,91893,92168,92181,92592,92677,93872,93927,93973,94096,94213,94502,94560,94709,95014,95056,95237,95526,
95552,95749,95952,95973,96016,96038,96064,96261,97094,97600,97652,97664,97733,97750,97760,97799,97952,98055,98208,
98486,98528,98550,98567,98720,98821,99380,99397,100240,100357,100438,100469,101014,101029,101040,101125,102240,102405,
102896,102918,103104,103174,103360,103527,103685,104160,104197,104272,104453,105152,105221,105632,105735,105904,
106501,106870,106944,107013,107862,108016,108038,108496,108534,108551,108704,108807,108960,109172,109184,109318,
109808,110598,110677,111430,111701,111824,111879,112032,112310,112448,112646,112693,113174,113381,113415,113573,
114278,114496,114693,115270,115584,115719,115872,115925,115975,116133,116612,116704,116738,116880,116993,117680,
117713,117760,118022,118064,118086,118421,118486,118501,118598,118613,118646,118693,118704,118786,119492,120498,
120708,120722,121268,121862,122881,122898,122913,122930,122945,122962,122977,122994,123009,123026,123041,123058,
123073,123090,123105,123122,123137,123154,123169,123186,123201,123218,123233,123250,123265,123282,123297,123314,
123329,123346,123361,123378,123393,123410,123425,123442,123457,123474,123489,123506,123521,123538,123553,123570,
123585,123602,123617,123634,123649,123666,123681,123698,123713,123730,123745,123762,123777,123794,123809,123826,
123841,123858,123873,123890,123905,123922,123937,123954,123969,123986,124001,124018,124033,124050,124065,124082,
124097,124114,124129,124146,124161,124178,124193,124210,124225,124242,124257,124274,124289,124306,124321,124338,
124353,124370,124385,124402,124417,124434,124449,124466,124481,124498,124513,124530,124545,124562,124577,124594,
124609,124626,124641,124658,124673,124690,124705,124722,124737,124754,124769,124786,124801,124818,124833,124850,
124865,124882,124897,124914,124929,124946,124961,124978,124993,125010,125025,125042,125057,125074,125089,125106,
125121,125138,125153,125170,125185,125202,125217,125234,125249,125266,125409,125426,125441,125458,125473,125490,
125505,125522,125537,125554,125569,125586,125601,125618,125633,125650,125665,125682,125697,125714,125729,125746,
125761,125778,125793,125810,125825,125842,125857,125874,125889,125906,125921,125938,125953,125970,125985,126002,
126017,126034,126049,126066,126081,126098,126113,126130,126145,126162,126177,126194,126209,126226,126241,126258,
126273,126290,126305,126322,126337,126354,126369,126386,126401,126418,126433,126450,126465,126482,126497,126514,
126529,126546,126561,126578,126593,126610,126625,126642,126657,126674,126689,126706,126721,126738,126753,126770,
126785,126802,126817,126834,126849,126866,126881,126898,126913,126930,126945,126962,127105,127234,127328,127361,
127456,127490,127617,127746,127873,128002,128096,128129,128224,128258,128384,128401,128416,128433,128448,128465,
128480,128497,128514,128641,128770,128992,129026,129155,129282,129411,129538,129667,129794,129872,129890,129921,
129987,130000,130018,130032,130082,130128,130146,130177,130243,130256,130306,130368,130402,130433,130496,130562,
130689,130768,130850,130896,130914,130945,131011,131024,131080,131248,131720,131744,131832,131840,132600,132608,
132871,132884,132896,132935,133024,133108,133127,133280,133380,133584,134406,134928,135201,135216,135281,135296,
135330,135345,135394,135425,135474,135488,135505,135520,135569,135648,135745,135760,135777,135792,135809,135824,
135841,135904,135922,135937,136002,136021,136082,136096,136130,136161,136192,136273,136290,136352,136418,136432,
136455,137265,137282,137303,137376,148999,149952,151207,151552,161639,162112,180225,180994,181761,181778,181793,
181842,181873,181890,181905,181922,181937,181954,181969,182034,182049,182066,182097,182114,182212,182241,182290,
182305,182322,182337,182354,182369,182386,182401,182418,182433,182450,182465,182482,182497,182514,182529,182546,
182561,182578,182593,182610,182625,182642,182657,182674,182689,182706,182721,182738,182753,182770,182785,182802,
182817,182834,182849,182866,182881,182898,182913,182930,182945,182962,182977,182994,183009,183026,183041,183058,
183073,183090,183105,183122,183137,183154,183169,183186,183201,183218,183233,183250,183265,183282,183297,183314,
183329,183346,183361,183378,183393,183410,183425,183442,183457,183474,183489,183506,183521,183538,183553,183570,
183585,183602,183617,183634,183649,183666,183681,183698,183713,183730,183745,183762,183777,183794,183809,183826,
183841,183858,183888,183985,184002,184017,184034,184054,184097,184114,184128,184279,184288,184322,184928,184946,
184960,185042,185056,185093,185984,186100,186112,186358,186373,186736,186885,186992,187013,187120,187141,187248,
187269,187376,187397,187504,187525,187632,187653,187760,187781,187888,187910,188416,189172,189184,196616,196624,
196692,196709,196727,196736,197143,197286,197376,197396,197472,197511,197556,197573,197584,197653,199024,199062,
199088,199124,199157,199168,199189,200624,200644,200693,200704,200789,201472,201493,202992,203047,203104,203269,
203776,204549,204800,205319,205472,205959,206080,206103,206336,206855,207008,207639,207872,212997,318464,319493,
655700,655717,674000,675077,675716,675808,675845,680132,680144,680197,680455,680613,680640,680961,680978,680993,
681010,681025,681042,681057,681074,681089,681106,681121,681138,681153,681170,681185,681202,681217,681234,681249,
681266,681281,681298,681313,681330,681345,681362,681377,681394,681409,681426,681441,681458,681473,681490,681505,
681522,681537,681554,681569,681586,681601,681618,681633,681650,681665,681682,681701,681718,681776,681798,681952,
681972,681985,682002,682017,682034,682049,682066,682081,682098,682113,682130,682145,682162,682177,682194,682209,
682226,682241,682258,682273,682290,682305,682322,682337,682354,682369,682386,682401,682418,682436,682470,682501,
683623,683782,683808,684404,684544,684577,684594,684609,684626,684641,684658,684673,684690,684705,684722,684737,
684754,684769,684786,684833,684850,684865,684882,684897,684914,684929,684946,684961,684978,684993,685010,685025,
685042,685057,685074,685089,685106,685121,685138,685153,685170,685185,685202,685217,685234,685249,685266,685281,
685298,685313,685330,685345,685362,685377,685394,685409,685426,685441,685458,685473,685490,685505,685522,685537,
685554,685569,685586,685601,685618,685633,685650,685665,685682,685697,685714,685729,685746,685761,685778,685793,
685810,685828,685842,685969,685986,686001,686018,686033,686066,686081,686098,686113,686130,686145,686162,686177,
686194,686212,686224,686257,686274,686289,686306,686325,686337,686354,686369,686386,686433,686450,686465,686482,
686497,686514,686529,686546,686561,686578,686593,686610,686625,686642,686657,686674,686689,686706,686721,686738,
686753,686834,686849,686930,686945,686962,686977,686994,687009,687026,687041,687058,687073,687090,687105,687122,
687137,687154,687169,687234,687249,687266,687280,687361,687378,687392,687410,687424,687442,687457,687474,687489,
687506,687520,687908,687953,687970,687989,688004,688034,688053,688166,688181,688230,688245,688310,688325,688694,
688768,688838,688848,688903,688992,689157,689984,690182,690213,691014,691296,691463,691616,691718,692005,692096,
692149,692160,692181,692214,692231,692389,692838,692960,692997,693366,693568,693765,694224,694278,694341,695094,
695312,695540,695559,695712,695813,695894,695908,695925,696071,696229,696304,696325,696982,697200,697349,697398,
697413,697542,697568,697607,697760,697861,698116,698133,698224,698277,698294,698341,699142,699157,699174,699221,
699254,699285,699366,699397,699414,699429,699440,699829,699860,699872,699909,700086,700160,700197,700212,700246,
700272,700437,700528,700565,700656,700693,700784,700933,701040,701061,701168,701186,701872,701892,701954,702100,
702112,702210,703493,704054,704176,704198,704224,704263,704416,704517,883264,883461,883824,883893,884672,1019909,
1025760,1025797,1027488,1028098,1028208,1028402,1028480,1028565,1028582,1028597,1028752,1028773,1028976,1028997,
1029072,1029093,1029104,1029125,1029152,1029173,1029200,1029221,1030944,1031477,1037280,1037573,1038592,1038629,
1039488,1040133,1040320,1040390,1040640,1040902,1041152,1042181,1042256,1042277,1044432,1044743,1044896,1045009,
1045424,1045522,1045936,1046117,1046276,1046293,1047012,1047045,1047536,1047589,1047680,1047717,1047808,1047845,
1047936,1047973,1048016,1048581,1048768,1048789,1049200,1049221,1049520,1049541,1049568,1049589,1049824,1049861,
1050080,1050629,1052592,1052791,1053504,1053703,1054608,1054887,1054912,1056726,1056736,1058821,1059280,1059333,
1060112,1060358,1060375,1060800,1060869,1061383,1061440,1061589,1061911,1061925,1062055,1062064,1062149,1062758,
1062832,1062917,1063392,1063429,1064000,1064069,1064192,1064215,1064288,1064961,1065602,1066245,1067488,1067527,
1067680,1067777,1068352,1068418,1068992,1069061,1069696,1069829,1070656,1070849,1071024,1071041,1071280,1071297,
1071408,1071425,1071456,1071474,1071648,1071666,1071904,1071922,1072032,1072050,1072080,1073157,1078128,1078277,
1078624,1078789,1078912,1079300,1079392,1079412,1080080,1080100,1080240,1081349,1081440,1081477,1081488,1081509,
1082208,1082229,1082256,1082309,1082320,1082357,1082720,1082759,1082885,1083248,1083287,1083397,1083888,1084023,
1084160,1084933,1085232,1085253,1085280,1085367,1085445,1085799,1085888,1085957,1086368,1087493,1088384,1088455,
1088485,1088519,1088768,1088807,1089541,1089558,1089600,1089622,1089648,1089734,1089797,1089856,1089877,1089920,
1089941,1090400,1090438,1090480,1090550,1090567,1090704,1091077,1091543,1091568,1091589,1092055,1092096,1092613,
1092736,1092757,1093206,1093232,1093303,1093376,1093637,1094496,1094661,1095008,1095047,1095173,1095472,1095559,
1095685,1095968,1096343,1096448,1097733,1098896,1099777,1100592,1100802,1101616,1101735,1101829,1102406,1102464,
1102599,1102752,1107463,1107952,1107973,1108640,1108662,1108688,1108741,1108768,1109974,1110021,1110487,1110645,
1110656,1110789,1111142,1111319,1111376,1111813,1112102,1112160,1112837,1113175,1113280,1113605,1113968,1114118,
1114165,1115014,1115248,1115431,1115910,1115925,1115958,1115989,1116000,1116150,1116213,1116934,1117104,1117222,
1117232,1117445,1117840,1117959,1118112,1118214,1118261,1118838,1119056,1119079,1119232,1119301,1119318,1119349,
1119360,1119493,1120054,1120064,1120101,1120112,1120262,1120309,1121078,1121301,1121360,1121430,1121488,1121510,
1121543,1121701,1121712,1121733,1121744,1121815,1122128,1122309,1122592,1122613,1123014,1123200,1123302,1123317,
1123350,1123360,1124357,1124464,1124485,1124496,1124517,1124576,1124597,1124832,1124853,1125008,1125125,1125878,
1126064,1126151,1126304,1126406,1126464,1126485,1126608,1126645,1126672,1126709,1127056,1127077,1127184,1127205,
1127232,1127253,1127328,1127350,1127381,1127398,1127504,1127542,1127568,1127606,1127648,1127685,1127696,1127798,
1127808,1127893,1127974,1128000,1128038,1128144,1128198,1128272,1130501,1131350,1131637,1131696,1131783,1131936,
1132006,1132021,1132064,1132549,1133318,1133637,1133664,1133685,1133696,1133831,1133984,1136645,1137398,1137504,
1137542,1137680,1138053,1138118,1138144,1138693,1139462,1139728,1139781,1139792,1139975,1140128,1140741,1141430,
1141637,1141648,1141767,1141920,1142789,1143216,1143254,1143488,1143559,1143744,1143813,1143920,1146885,1147590,
1147824,1149441,1149954,1150471,1150768,1150965,1151088,1151125,1151136,1151173,1151296,1151317,1151344,1151365,
1151750,1151840,1151862,1151888,1151926,1151989,1152006,1152021,1152038,1152064,1152263,1152416,1153541,1153664,
1153701,1154326,1154432,1154470,1154581,1154592,1154613,1154630,1154640,1155077,1155094,1155253,1155894,1156005,
1156022,1156080,1156214,1156224,1156357,1156374,1156549,1157286,1157536,1157589,1157600,1157893,1159056,1163269,
1163408,1163429,1164022,1164144,1164166,1164293,1164304,1164551,1165008,1165093,1165568,1165606,1165952,1165974,
1166192,1167365,1167472,1167493,1167520,1167541,1168150,1168240,1168294,1168304,1168326,1168352,1168374,1168485,
1168502,1168512,1168647,1168800,1168901,1168992,1169013,1169040,1169061,1169574,1169648,1169670,1169696,1169718,
1169797,1169808,1169927,1170080,1175045,1175350,1175408,1175558,1175589,1175606,1175621,1175824,1175845,1176390,
1176496,1176550,1176624,1176839,1176992,1178373,1178384,1178631,1178960,1179653,1194400,1196039,1197808,1198085,
1201216,1243397,1244944,1245189,1262336,1262598,1262613,1262710,1262944,1327109,1336432,1474565,1483664,1483781,
1484272,1484295,1484448,1484549,1485808,1485831,1485984,1486085,1486560,1486598,1486672,1486853,1487622,1487728,
1487876,1487936,1488135,1488288,1488311,1488416,1488437,1488768,1488853,1489152,1500161,1500674,1501191,1501552,
1503237,1504432,1504502,1504517,1504534,1505408,1505526,1505588,1505792,1506820,1506848,1506868,1506886,1506896,
1507078,1507104,1507333,1605504,1605637,1625440,1626117,1626256,1769220,1769280,1769300,1769408,1769428,1769456,
1769477,1774128,1774373,1774384,1774853,1774896,1774933,1774944,1775173,1775232,1775365,1781696,1818629,1820336,
1820421,1820624,1820677,1820816,1820933,1821088,1821142,1821168,1896454,1897184,1897222,1897584,1906262,1906336,
1906390,1906480,1906614,1906736,1906774,1906880,1907366,1907424,1909798,1909840,1911815,1912128,1912327,1912640,
1914375,1914768,1916929,1917346,1917761,1918178,1918288,1918306,1918593,1919010,1919425,1919440,1919457,1919488,
1919521,1919536,1919569,1919600,1919633,1919696,1919713,1919842,1919904,1919922,1919936,1919954,1920064,1920082,
1920257,1920674,1921089,1921120,1921137,1921200,1921233,1921360,1921377,1921488,1921506,1921921,1921952,1921969,
1922032,1922049,1922128,1922145,1922160,1922209,1922320,1922338,1922753,1923170,1923585,1924002,1924417,1924834,
1925249,1925666,1926081,1926498,1926913,1927330,1927776,1927809,1928208,1928226,1928624,1928642,1928737,1929136,
1929154,1929552,1929570,1929665,1930064,1930082,1930480,1930498,1930593,1930992,1931010,1931408,1931426,1931521,
1931920,1931938,1932336,1932354,1932449,1932466,1932480,1932519,1933312,1941510,1942384,1942454,1943248,1943382,
1943392,1943622,1943632,1943990,1944064,1944086,1944320,1961986,1962149,1962162,1962480,1962578,1962672,1966086,
1966192,1966214,1966480,1966518,1966624,1966646,1966672,1966694,1966768,1966852,1967840,1968374,1968384,1970181,
1970896,1970950,1971060,1971168,1971207,1971360,1971429,1971440,1976581,1977062,1977072,1977349,1978054,1978119,
1978272,1985797,1986228,1986246,1986311,1986464,1998341,1998448,1998469,1998528,1998549,1998576,1998597,1998832,
1998853,2002000,2002039,2002182,2002288,2002945,2003490,2004038,2004148,2004160,2004231,2004384,2017047,2017984,
2018007,2018048,2018071,2018128,2019351,2020064,2020087,2020320,2023429,2023488,2023509,2023936,2023957,2023984,
2024005,2024016,2024053,2024064,2024085,2024240,2024261,2024320,2024341,2024352,2024373,2024384,2024485,2024496,
2024565,2024576,2024597,2024608,2024629,2024640,2024661,2024704,2024725,2024752,2024773,2024784,2024821,2024832,
2024853,2024864,2024885,2024896,2024917,2024928,2024949,2024960,2024981,2025008,2025029,2025040,2025077,2025136,
2025157,2025264,2025285,2025344,2025365,2025424,2025445,2025456,2025477,2025632,2025653,2025920,2026005,2026048,
2026069,2026144,2026165,2026432,2035719,2035920,2080519,2080672,2097157,2780672,2781189,2847648,2847749,2851296,
2851333,2943520,2943749,3063312,3112965,3121632,3145733,3224752,3224837,3291904,14684166,14688000,
};
/* start << 8 | canonical combining class, for runs of equal class */
static const uint32_t ollm__uccc[537] = {
196838,202216,202460,203496,203736,203996,205258,205788,206794,207324,209921,211420,212454,214512,214758,215004,
215782,216540,216832,217318,218076,219110,219368,219612,220134,220393,220650,221161,221418,221929,222182,225280,
295910,296960,365020,365286,366300,366566,367326,367580,367846,369372,370918,371420,371686,372190,372452,372710,
372746,373003,373260,373517,373774,374031,374288,374545,374802,375059,375572,375829,376086,376320,376599,376832,
377112,377369,377600,378086,378332,378368,378642,378880,397542,399390,399647,399904,400128,412443,412700,412957,
413214,413471,413728,413985,414242,414694,415196,415718,416988,417254,417756,417792,421923,422144,448230,449792,
450534,451548,451814,451840,452582,452864,453340,453606,454108,454144,463140,463360,471270,471516,471782,472284,
472550,473052,473830,474076,474598,474844,475110,475868,476134,476380,476646,476892,477158,477404,477670,477952,
519142,520924,521190,521216,523740,523776,530150,530944,531430,533504,533990,534528,535014,536064,547292,547840,
578524,578790,582144,582620,582886,583388,583654,584156,584422,585180,585755,586012,586269,586726,587484,587750,
588252,588774,589824,605191,605440,609545,609792,610790,611036,611302,611584,637959,638208,642313,642560,655078,
655104,670727,670976,675081,675328,703495,703744,707849,708096,736263,736512,740617,740864,773385,773632,806153,
806400,808276,808539,808704,834567,834816,838921,839168,867081,867584,871689,871936,903689,903936,931943,932361,
932608,936043,936960,964726,965129,965376,968826,969728,989404,989696,996828,996864,997340,997376,997848,997888,
1012097,1012354,1012480,1012868,1012992,1014402,1015296,1015938,1016064,1016550,1016841,1017088,1017574,1017856,
1033948,1033984,1062663,1062912,1063177,1063680,1084892,1084928,1269222,1269760,1512457,1512704,1520649,1520896,
1561097,1561344,1564134,1564160,1616356,1616384,1653214,1653478,1653724,1653760,1710054,1710300,1710336,1728521,
1728768,1734118,1735936,1736668,1736704,1749222,1750492,1752038,1752540,1752576,1782791,1783040,1786889,1787136,
1797094,1797340,1797606,1799168,1813001,1813504,1828359,1828608,1831433,1831936,1849095,1849344,1888486,1889024,
1889281,1889756,1891046,1891548,1892582,1892608,1892865,1894656,1895900,1895936,1897702,1897728,1898726,1899008,
1949926,1950428,1950694,1952476,1952742,1953258,1953494,1953756,1953994,1954278,1963752,1964004,1964508,1964544,
1965030,1965289,1965532,1965798,1966044,1966080,2150630,2150913,2151654,2152449,2153446,2153728,2154982,2155008,
2155777,2156518,2156764,2157030,2157057,2157788,2158822,2158848,2944998,2945536,2981641,2981888,3006694,3014656,
3156698,3156964,3157224,3157470,3157728,3158016,3184904,3185408,10907622,10907648,10908902,10911232,10919654,10919936,
10940646,10940928,11011593,11011840,11060233,11060480,11067622,11072000,11086812,11087360,11096841,11097088,11121415,
11121664,11124745,11124992,11186406,11186432,11186918,11187420,11187456,11188198,11188480,11189990,11190272,11190758,
11190784,11204105,11204352,11267337,11267584,16457242,16457472,16654566,16656348,16658150,16658432,16907740,16907776,
16965852,16965888,17004262,17005312,17436124,17436160,17436646,17436672,17447142,17447169,17447644,17447680,17448713,
17448960,17491430,17491676,17491712,17638630,17639424,17778396,17778918,17779676,17779942,17780188,17780992,17843721,
17843968,17858313,17858560,17873161,17873415,17873664,17891558,17892096,17904393,17904896,17920775,17921024,17940489,
17940736,17943047,17943296,17970441,17970695,17970944,18016519,18016777,18017024,18037511,18038016,18042121,18042368,
18048742,18050304,18051302,18052352,18104841,18105088,18105863,18106112,18112230,18112256,18137609,18137863,18138112,
18202377,18202631,18202880,18235145,18235392,18265609,18265863,18266112,18295561,18295808,18364681,18364935,18365184,
18472969,18473216,18494473,18494720,18499337,18499584,18520329,18520576,18628361,18628608,18694663,18694912,18695177,
18695680,18716425,18716672,23785473,23786752,23802086,23803648,29138433,29138688,30500312,30500609,30501376,30502370,
30502616,30503680,30505948,30507776,30508518,30509788,30510080,30517990,30518784,30556902,30557440,31457510,31459072,
31459558,31463680,31464422,31465984,31466470,31466752,31467238,31468288,31535334,31536896,31648998,31649792,32035036,
32036608,32064742,32066055,32066304,
};
/* cp, first, second | Full_Composition_Exclusion << 21 (canonical, one level) */
static const uint32_t ollm__udec[6180] = {
192,65,768,193,65,769,194,65,770,195,65,771,196,65,776,197,65,778,199,67,807,200,69,768,201,69,769,202,69,770,203,69,
776,204,73,768,205,73,769,206,73,770,207,73,776,209,78,771,210,79,768,211,79,769,212,79,770,213,79,771,214,79,776,217,
85,768,218,85,769,219,85,770,220,85,776,221,89,769,224,97,768,225,97,769,226,97,770,227,97,771,228,97,776,229,97,778,
231,99,807,232,101,768,233,101,769,234,101,770,235,101,776,236,105,768,237,105,769,238,105,770,239,105,776,241,110,
771,242,111,768,243,111,769,244,111,770,245,111,771,246,111,776,249,117,768,250,117,769,251,117,770,252,117,776,253,
121,769,255,121,776,256,65,772,257,97,772,258,65,774,259,97,774,260,65,808,261,97,808,262,67,769,263,99,769,264,67,
770,265,99,770,266,67,775,267,99,775,268,67,780,269,99,780,270,68,780,271,100,780,274,69,772,275,101,772,276,69,774,
277,101,774,278,69,775,279,101,775,280,69,808,281,101,808,282,69,780,283,101,780,284,71,770,285,103,770,286,71,774,
287,103,774,288,71,775,289,103,775,290,71,807,291,103,807,292,72,770,293,104,770,296,73,771,297,105,771,298,73,772,
299,105,772,300,73,774,301,105,774,302,73,808,303,105,808,304,73,775,308,74,770,309,106,770,310,75,807,311,107,807,
313,76,769,314,108,769,315,76,807,316,108,807,317,76,780,318,108,780,323,78,769,324,110,769,325,78,807,326,110,807,
327,78,780,328,110,780,332,79,772,333,111,772,334,79,774,335,111,774,336,79,779,337,111,779,340,82,769,341,114,769,
342,82,807,343,114,807,344,82,780,345,114,780,346,83,769,347,115,769,348,83,770,349,115,770,350,83,807,351,115,807,
352,83,780,353,115,780,354,84,807,355,116,807,356,84,780,357,116,780,360,85,771,361,117,771,362,85,772,363,117,772,
364,85,774,365,117,774,366,85,778,367,117,778,368,85,779,369,117,779,370,85,808,371,117,808,372,87,770,373,119,770,
374,89,770,375,121,770,376,89,776,377,90,769,378,122,769,379,90,775,380,122,775,381,90,780,382,122,780,416,79,795,417,
111,795,431,85,795,432,117,795,461,65,780,462,97,780,463,73,780,464,105,780,465,79,780,466,111,780,467,85,780,468,117,
780,469,220,772,470,252,772,471,220,769,472,252,769,473,220,780,474,252,780,475,220,768,476,252,768,478,196,772,479,
228,772,480,550,772,481,551,772,482,198,772,483,230,772,486,71,780,487,103,780,488,75,780,489,107,780,490,79,808,491,
111,808,492,490,772,493,491,772,494,439,780,495,658,780,496,106,780,500,71,769,501,103,769,504,78,768,505,110,768,506,
197,769,507,229,769,508,198,769,509,230,769,510,216,769,511,248,769,512,65,783,513,97,783,514,65,785,515,97,785,516,
69,783,517,101,783,518,69,785,519,101,785,520,73,783,521,105,783,522,73,785,523,105,785,524,79,783,525,111,783,526,79,
785,527,111,785,528,82,783,529,114,783,530,82,785,531,114,785,532,85,783,533,117,783,534,85,785,535,117,785,536,83,
806,537,115,806,538,84,806,539,116,806,542,72,780,543,104,780,550,65,775,551,97,775,552,69,807,553,101,807,554,214,
772,555,246,772,556,213,772,557,245,772,558,79,775,559,111,775,560,558,772,561,559,772,562,89,772,563,121,772,832,768,
2097152,833,769,2097152,835,787,2097152,836,776,2097921,884,697,2097152,894,59,2097152,901,168,769,902,913,769,903,
183,2097152,904,917,769,905,919,769,906,921,769,908,927,769,910,933,769,911,937,769,912,970,769,938,921,776,939,933,
776,940,945,769,941,949,769,942,951,769,943,953,769,944,971,769,970,953,776,971,965,776,972,959,769,973,965,769,974,
969,769,979,978,769,980,978,776,1024,1045,768,1025,1045,776,1027,1043,769,1031,1030,776,1036,1050,769,1037,1048,768,
1038,1059,774,1049,1048,774,1081,1080,774,1104,1077,768,1105,1077,776,1107,1075,769,1111,1110,776,1116,1082,769,1117,
1080,768,1118,1091,774,1142,1140,783,1143,1141,783,1217,1046,774,1218,1078,774,1232,1040,774,1233,1072,774,1234,1040,
776,1235,1072,776,1238,1045,774,1239,1077,774,1242,1240,776,1243,1241,776,1244,1046,776,1245,1078,776,1246,1047,776,
1247,1079,776,1250,1048,772,1251,1080,772,1252,1048,776,1253,1080,776,1254,1054,776,1255,1086,776,1258,1256,776,1259,
1257,776,1260,1069,776,1261,1101,776,1262,1059,772,1263,1091,772,1264,1059,776,1265,1091,776,1266,1059,779,1267,1091,
779,1268,1063,776,1269,1095,776,1272,1067,776,1273,1099,776,1570,1575,1619,1571,1575,1620,1572,1608,1620,1573,1575,
1621,1574,1610,1620,1728,1749,1620,1730,1729,1620,1747,1746,1620,2345,2344,2364,2353,2352,2364,2356,2355,2364,2392,
2325,2099516,2393,2326,2099516,2394,2327,2099516,2395,2332,2099516,2396,2337,2099516,2397,2338,2099516,2398,2347,
2099516,2399,2351,2099516,2507,2503,2494,2508,2503,2519,2524,2465,2099644,2525,2466,2099644,2527,2479,2099644,2611,
2610,2099772,2614,2616,2099772,2649,2582,2099772,2650,2583,2099772,2651,2588,2099772,2654,2603,2099772,2888,2887,2902,
2891,2887,2878,2892,2887,2903,2908,2849,2100028,2909,2850,2100028,2964,2962,3031,3018,3014,3006,3019,3015,3006,3020,
3014,3031,3144,3142,3158,3264,3263,3285,3271,3270,3285,3272,3270,3286,3274,3270,3266,3275,3274,3285,3402,3398,3390,
3403,3399,3390,3404,3398,3415,3546,3545,3530,3548,3545,3535,3549,3548,3530,3550,3545,3551,3907,3906,2101175,3917,3916,
2101175,3922,3921,2101175,3927,3926,2101175,3932,3931,2101175,3945,3904,2101173,3955,3953,2101106,3957,3953,2101108,
3958,4018,2101120,3960,4019,2101120,3969,3953,2101120,3987,3986,2101175,3997,3996,2101175,4002,4001,2101175,4007,4006,
2101175,4012,4011,2101175,4025,3984,2101173,4134,4133,4142,6918,6917,6965,6920,6919,6965,6922,6921,6965,6924,6923,
6965,6926,6925,6965,6930,6929,6965,6971,6970,6965,6973,6972,6965,6976,6974,6965,6977,6975,6965,6979,6978,6965,7680,65,
805,7681,97,805,7682,66,775,7683,98,775,7684,66,803,7685,98,803,7686,66,817,7687,98,817,7688,199,769,7689,231,769,
7690,68,775,7691,100,775,7692,68,803,7693,100,803,7694,68,817,7695,100,817,7696,68,807,7697,100,807,7698,68,813,7699,
100,813,7700,274,768,7701,275,768,7702,274,769,7703,275,769,7704,69,813,7705,101,813,7706,69,816,7707,101,816,7708,
552,774,7709,553,774,7710,70,775,7711,102,775,7712,71,772,7713,103,772,7714,72,775,7715,104,775,7716,72,803,7717,104,
803,7718,72,776,7719,104,776,7720,72,807,7721,104,807,7722,72,814,7723,104,814,7724,73,816,7725,105,816,7726,207,769,
7727,239,769,7728,75,769,7729,107,769,7730,75,803,7731,107,803,7732,75,817,7733,107,817,7734,76,803,7735,108,803,7736,
7734,772,7737,7735,772,7738,76,817,7739,108,817,7740,76,813,7741,108,813,7742,77,769,7743,109,769,7744,77,775,7745,
109,775,7746,77,803,7747,109,803,7748,78,775,7749,110,775,7750,78,803,7751,110,803,7752,78,817,7753,110,817,7754,78,
813,7755,110,813,7756,213,769,7757,245,769,7758,213,776,7759,245,776,7760,332,768,7761,333,768,7762,332,769,7763,333,
769,7764,80,769,7765,112,769,7766,80,775,7767,112,775,7768,82,775,7769,114,775,7770,82,803,7771,114,803,7772,7770,772,
7773,7771,772,7774,82,817,7775,114,817,7776,83,775,7777,115,775,7778,83,803,7779,115,803,7780,346,775,7781,347,775,
7782,352,775,7783,353,775,7784,7778,775,7785,7779,775,7786,84,775,7787,116,775,7788,84,803,7789,116,803,7790,84,817,
7791,116,817,7792,84,813,7793,116,813,7794,85,804,7795,117,804,7796,85,816,7797,117,816,7798,85,813,7799,117,813,7800,
360,769,7801,361,769,7802,362,776,7803,363,776,7804,86,771,7805,118,771,7806,86,803,7807,118,803,7808,87,768,7809,119,
768,7810,87,769,7811,119,769,7812,87,776,7813,119,776,7814,87,775,7815,119,775,7816,87,803,7817,119,803,7818,88,775,
7819,120,775,7820,88,776,7821,120,776,7822,89,775,7823,121,775,7824,90,770,7825,122,770,7826,90,803,7827,122,803,7828,
90,817,7829,122,817,7830,104,817,7831,116,776,7832,119,778,7833,121,778,7835,383,775,7840,65,803,7841,97,803,7842,65,
777,7843,97,777,7844,194,769,7845,226,769,7846,194,768,7847,226,768,7848,194,777,7849,226,777,7850,194,771,7851,226,
771,7852,7840,770,7853,7841,770,7854,258,769,7855,259,769,7856,258,768,7857,259,768,7858,258,777,7859,259,777,7860,
258,771,7861,259,771,7862,7840,774,7863,7841,774,7864,69,803,7865,101,803,7866,69,777,7867,101,777,7868,69,771,7869,
101,771,7870,202,769,7871,234,769,7872,202,768,7873,234,768,7874,202,777,7875,234,777,7876,202,771,7877,234,771,7878,
7864,770,7879,7865,770,7880,73,777,7881,105,777,7882,73,803,7883,105,803,7884,79,803,7885,111,803,7886,79,777,7887,
111,777,7888,212,769,7889,244,769,7890,212,768,7891,244,768,7892,212,777,7893,244,777,7894,212,771,7895,244,771,7896,
7884,770,7897,7885,770,7898,416,769,7899,417,769,7900,416,768,7901,417,768,7902,416,777,7903,417,777,7904,416,771,
7905,417,771,7906,416,803,7907,417,803,7908,85,803,7909,117,803,7910,85,777,7911,117,777,7912,431,769,7913,432,769,
7914,431,768,7915,432,768,7916,431,777,7917,432,777,7918,431,771,7919,432,771,7920,431,803,7921,432,803,7922,89,768,
7923,121,768,7924,89,803,7925,121,803,7926,89,777,7927,121,777,7928,89,771,7929,121,771,7936,945,787,7937,945,788,
7938,7936,768,7939,7937,768,7940,7936,769,7941,7937,769,7942,7936,834,7943,7937,834,7944,913,787,7945,913,788,7946,
7944,768,7947,7945,768,7948,7944,769,7949,7945,769,7950,7944,834,7951,7945,834,7952,949,787,7953,949,788,7954,7952,
768,7955,7953,768,7956,7952,769,7957,7953,769,7960,917,787,7961,917,788,7962,7960,768,7963,7961,768,7964,7960,769,
7965,7961,769,7968,951,787,7969,951,788,7970,7968,768,7971,7969,768,7972,7968,769,7973,7969,769,7974,7968,834,7975,
7969,834,7976,919,787,7977,919,788,7978,7976,768,7979,7977,768,7980,7976,769,7981,7977,769,7982,7976,834,7983,7977,
834,7984,953,787,7985,953,788,7986,7984,768,7987,7985,768,7988,7984,769,7989,7985,769,7990,7984,834,7991,7985,834,
7992,921,787,7993,921,788,7994,7992,768,7995,7993,768,7996,7992,769,7997,7993,769,7998,7992,834,7999,7993,834,8000,
959,787,8001,959,788,8002,8000,768,8003,8001,768,8004,8000,769,8005,8001,769,8008,927,787,8009,927,788,8010,8008,768,
8011,8009,768,8012,8008,769,8013,8009,769,8016,965,787,8017,965,788,8018,8016,768,8019,8017,768,8020,8016,769,8021,
8017,769,8022,8016,834,8023,8017,834,8025,933,788,8027,8025,768,8029,8025,769,8031,8025,834,8032,969,787,8033,969,788,
8034,8032,768,8035,8033,768,8036,8032,769,8037,8033,769,8038,8032,834,8039,8033,834,8040,937,787,8041,937,788,8042,
8040,768,8043,8041,768,8044,8040,769,8045,8041,769,8046,8040,834,8047,8041,834,8048,945,768,8049,940,2097152,8050,949,
768,8051,941,2097152,8052,951,768,8053,942,2097152,8054,953,768,8055,943,2097152,8056,959,768,8057,972,2097152,8058,
965,768,8059,973,2097152,8060,969,768,8061,974,2097152,8064,7936,837,8065,7937,837,8066,7938,837,8067,7939,837,8068,
7940,837,8069,7941,837,8070,7942,837,8071,7943,837,8072,7944,837,8073,7945,837,8074,7946,837,8075,7947,837,8076,7948,
837,8077,7949,837,8078,7950,837,8079,7951,837,8080,7968,837,8081,7969,837,8082,7970,837,8083,7971,837,8084,7972,837,
8085,7973,837,8086,7974,837,8087,7975,837,8088,7976,837,8089,7977,837,8090,7978,837,8091,7979,837,8092,7980,837,8093,
7981,837,8094,7982,837,8095,7983,837,8096,8032,837,8097,8033,837,8098,8034,837,8099,8035,837,8100,8036,837,8101,8037,
837,8102,8038,837,8103,8039,837,8104,8040,837,8105,8041,837,8106,8042,837,8107,8043,837,8108,8044,837,8109,8045,837,
8110,8046,837,8111,8047,837,8112,945,774,8113,945,772,8114,8048,837,8115,945,837,8116,940,837,8118,945,834,8119,8118,
837,8120,913,774,8121,913,772,8122,913,768,8123,902,2097152,8124,913,837,8126,953,2097152,8129,168,834,8130,8052,837,
8131,951,837,8132,942,837,8134,951,834,8135,8134,837,8136,917,768,8137,904,2097152,8138,919,768,8139,905,2097152,8140,
919,837,8141,8127,768,8142,8127,769,8143,8127,834,8144,953,774,8145,953,772,8146,970,768,8147,912,2097152,8150,953,
834,8151,970,834,8152,921,774,8153,921,772,8154,921,768,8155,906,2097152,8157,8190,768,8158,8190,769,8159,8190,834,
8160,965,774,8161,965,772,8162,971,768,8163,944,2097152,8164,961,787,8165,961,788,8166,965,834,8167,971,834,8168,933,
774,8169,933,772,8170,933,768,8171,910,2097152,8172,929,788,8173,168,768,8174,901,2097152,8175,96,2097152,8178,8060,
837,8179,969,837,8180,974,837,8182,969,834,8183,8182,837,8184,927,768,8185,908,2097152,8186,937,768,8187,911,2097152,
8188,937,837,8189,180,2097152,8192,8194,2097152,8193,8195,2097152,8486,937,2097152,8490,75,2097152,8491,197,2097152,
8602,8592,824,8603,8594,824,8622,8596,824,8653,8656,824,8654,8660,824,8655,8658,824,8708,8707,824,8713,8712,824,8716,
8715,824,8740,8739,824,8742,8741,824,8769,8764,824,8772,8771,824,8775,8773,824,8777,8776,824,8800,61,824,8802,8801,
824,8813,8781,824,8814,60,824,8815,62,824,8816,8804,824,8817,8805,824,8820,8818,824,8821,8819,824,8824,8822,824,8825,
8823,824,8832,8826,824,8833,8827,824,8836,8834,824,8837,8835,824,8840,8838,824,8841,8839,824,8876,8866,824,8877,8872,
824,8878,8873,824,8879,8875,824,8928,8828,824,8929,8829,824,8930,8849,824,8931,8850,824,8938,8882,824,8939,8883,824,
8940,8884,824,8941,8885,824,9001,12296,2097152,9002,12297,2097152,10972,10973,2097976,12364,12363,12441,12366,12365,
12441,12368,12367,12441,12370,12369,12441,12372,12371,12441,12374,12373,12441,12376,12375,12441,12378,12377,12441,
12380,12379,12441,12382,12381,12441,12384,12383,12441,12386,12385,12441,12389,12388,12441,12391,12390,12441,12393,
12392,12441,12400,12399,12441,12401,12399,12442,12403,12402,12441,12404,12402,12442,12406,12405,12441,12407,12405,
12442,12409,12408,12441,12410,12408,12442,12412,12411,12441,12413,12411,12442,12436,12358,12441,12446,12445,12441,
12460,12459,12441,12462,12461,12441,12464,12463,12441,12466,12465,12441,12468,12467,12441,12470,12469,12441,12472,
12471,12441,12474,12473,12441,12476,12475,12441,12478,12477,12441,12480,12479,12441,12482,12481,12441,12485,12484,
12441,12487,12486,12441,12489,12488,12441,12496,12495,12441,12497,12495,12442,12499,12498,12441,12500,12498,12442,
12502,12501,12441,12503,12501,12442,12505,12504,12441,12506,12504,12442,12508,12507,12441,12509,12507,12442,12532,
12454,12441,12535,12527,12441,12536,12528,12441,12537,12529,12441,12538,12530,12441,12542,12541,12441,63744,35912,
2097152,63745,26356,2097152,63746,36554,2097152,63747,36040,2097152,63748,28369,2097152,63749,20018,2097152,63750,
21477,2097152,63751,40860,2097152,63752,40860,2097152,63753,22865,2097152,63754,37329,2097152,63755,21895,2097152,
63756,22856,2097152,63757,25078,2097152,63758,30313,2097152,63759,32645,2097152,63760,34367,2097152,63761,34746,
2097152,63762,35064,2097152,63763,37007,2097152,63764,27138,2097152,63765,27931,2097152,63766,28889,2097152,63767,
29662,2097152,63768,33853,2097152,63769,37226,2097152,63770,39409,2097152,63771,20098,2097152,63772,21365,2097152,
63773,27396,2097152,63774,29211,2097152,63775,34349,2097152,63776,40478,2097152,63777,23888,2097152,63778,28651,
2097152,63779,34253,2097152,63780,35172,2097152,63781,25289,2097152,63782,33240,2097152,63783,34847,2097152,63784,
24266,2097152,63785,26391,2097152,63786,28010,2097152,63787,29436,2097152,63788,37070,2097152,63789,20358,2097152,
63790,20919,2097152,63791,21214,2097152,63792,25796,2097152,63793,27347,2097152,63794,29200,2097152,63795,30439,
2097152,63796,32769,2097152,63797,34310,2097152,63798,34396,2097152,63799,36335,2097152,63800,38706,2097152,63801,
39791,2097152,63802,40442,2097152,63803,30860,2097152,63804,31103,2097152,63805,32160,2097152,63806,33737,2097152,
63807,37636,2097152,63808,40575,2097152,63809,35542,2097152,63810,22751,2097152,63811,24324,2097152,63812,31840,
2097152,63813,32894,2097152,63814,29282,2097152,63815,30922,2097152,63816,36034,2097152,63817,38647,2097152,63818,
22744,2097152,63819,23650,2097152,63820,27155,2097152,63821,28122,2097152,63822,28431,2097152,63823,32047,2097152,
63824,32311,2097152,63825,38475,2097152,63826,21202,2097152,63827,32907,2097152,63828,20956,2097152,63829,20940,
2097152,63830,31260,2097152,63831,32190,2097152,63832,33777,2097152,63833,38517,2097152,63834,35712,2097152,63835,
25295,2097152,63836,27138,2097152,63837,35582,2097152,63838,20025,2097152,63839,23527,2097152,63840,24594,2097152,
63841,29575,2097152,63842,30064,2097152,63843,21271,2097152,63844,30971,2097152,63845,20415,2097152,63846,24489,
2097152,63847,19981,2097152,63848,27852,2097152,63849,25976,2097152,63850,32034,2097152,63851,21443,2097152,63852,
22622,2097152,63853,30465,2097152,63854,33865,2097152,63855,35498,2097152,63856,27578,2097152,63857,36784,2097152,
63858,27784,2097152,63859,25342,2097152,63860,33509,2097152,63861,25504,2097152,63862,30053,2097152,63863,20142,
2097152,63864,20841,2097152,63865,20937,2097152,63866,26753,2097152,63867,31975,2097152,63868,33391,2097152,63869,
35538,2097152,63870,37327,2097152,63871,21237,2097152,63872,21570,2097152,63873,22899,2097152,63874,24300,2097152,
63875,26053,2097152,63876,28670,2097152,63877,31018,2097152,63878,38317,2097152,63879,39530,2097152,63880,40599,
2097152,63881,40654,2097152,63882,21147,2097152,63883,26310,2097152,63884,27511,2097152,63885,36706,2097152,63886,
24180,2097152,63887,24976,2097152,63888,25088,2097152,63889,25754,2097152,63890,28451,2097152,63891,29001,2097152,
63892,29833,2097152,63893,31178,2097152,63894,32244,2097152,63895,32879,2097152,63896,36646,2097152,63897,34030,
2097152,63898,36899,2097152,63899,37706,2097152,63900,21015,2097152,63901,21155,2097152,63902,21693,2097152,63903,
28872,2097152,63904,35010,2097152,63905,35498,2097152,63906,24265,2097152,63907,24565,2097152,63908,25467,2097152,
63909,27566,2097152,63910,31806,2097152,63911,29557,2097152,63912,20196,2097152,63913,22265,2097152,63914,23527,
2097152,63915,23994,2097152,63916,24604,2097152,63917,29618,2097152,63918,29801,2097152,63919,32666,2097152,63920,
32838,2097152,63921,37428,2097152,63922,38646,2097152,63923,38728,2097152,63924,38936,2097152,63925,20363,2097152,
63926,31150,2097152,63927,37300,2097152,63928,38584,2097152,63929,24801,2097152,63930,20102,2097152,63931,20698,
2097152,63932,23534,2097152,63933,23615,2097152,63934,26009,2097152,63935,27138,2097152,63936,29134,2097152,63937,
30274,2097152,63938,34044,2097152,63939,36988,2097152,63940,40845,2097152,63941,26248,2097152,63942,38446,2097152,
63943,21129,2097152,63944,26491,2097152,63945,26611,2097152,63946,27969,2097152,63947,28316,2097152,63948,29705,
2097152,63949,30041,2097152,63950,30827,2097152,63951,32016,2097152,63952,39006,2097152,63953,20845,2097152,63954,
25134,2097152,63955,38520,2097152,63956,20523,2097152,63957,23833,2097152,63958,28138,2097152,63959,36650,2097152,
63960,24459,2097152,63961,24900,2097152,63962,26647,2097152,63963,29575,2097152,63964,38534,2097152,63965,21033,
2097152,63966,21519,2097152,63967,23653,2097152,63968,26131,2097152,63969,26446,2097152,63970,26792,2097152,63971,
27877,2097152,63972,29702,2097152,63973,30178,2097152,63974,32633,2097152,63975,35023,2097152,63976,35041,2097152,
63977,37324,2097152,63978,38626,2097152,63979,21311,2097152,63980,28346,2097152,63981,21533,2097152,63982,29136,
2097152,63983,29848,2097152,63984,34298,2097152,63985,38563,2097152,63986,40023,2097152,63987,40607,2097152,63988,
26519,2097152,63989,28107,2097152,63990,33256,2097152,63991,31435,2097152,63992,31520,2097152,63993,31890,2097152,
63994,29376,2097152,63995,28825,2097152,63996,35672,2097152,63997,20160,2097152,63998,33590,2097152,63999,21050,
2097152,64000,20999,2097152,64001,24230,2097152,64002,25299,2097152,64003,31958,2097152,64004,23429,2097152,64005,
27934,2097152,64006,26292,2097152,64007,36667,2097152,64008,34892,2097152,64009,38477,2097152,64010,35211,2097152,
64011,24275,2097152,64012,20800,2097152,64013,21952,2097152,64016,22618,2097152,64018,26228,2097152,64021,20958,
2097152,64022,29482,2097152,64023,30410,2097152,64024,31036,2097152,64025,31070,2097152,64026,31077,2097152,64027,
31119,2097152,64028,38742,2097152,64029,31934,2097152,64030,32701,2097152,64032,34322,2097152,64034,35576,2097152,
64037,36920,2097152,64038,37117,2097152,64042,39151,2097152,64043,39164,2097152,64044,39208,2097152,64045,40372,
2097152,64046,37086,2097152,64047,38583,2097152,64048,20398,2097152,64049,20711,2097152,64050,20813,2097152,64051,
21193,2097152,64052,21220,2097152,64053,21329,2097152,64054,21917,2097152,64055,22022,2097152,64056,22120,2097152,
64057,22592,2097152,64058,22696,2097152,64059,23652,2097152,64060,23662,2097152,64061,24724,2097152,64062,24936,
2097152,64063,24974,2097152,64064,25074,2097152,64065,25935,2097152,64066,26082,2097152,64067,26257,2097152,64068,
26757,2097152,64069,28023,2097152,64070,28186,2097152,64071,28450,2097152,64072,29038,2097152,64073,29227,2097152,
64074,29730,2097152,64075,30865,2097152,64076,31038,2097152,64077,31049,2097152,64078,31048,2097152,64079,31056,
2097152,64080,31062,2097152,64081,31069,2097152,64082,31117,2097152,64083,31118,2097152,64084,31296,2097152,64085,
31361,2097152,64086,31680,2097152,64087,32244,2097152,64088,32265,2097152,64089,32321,2097152,64090,32626,2097152,
64091,32773,2097152,64092,33261,2097152,64093,33401,2097152,64094,33401,2097152,64095,33879,2097152,64096,35088,
2097152,64097,35222,2097152,64098,35585,2097152,64099,35641,2097152,64100,36051,2097152,64101,36104,2097152,64102,
36790,2097152,64103,36920,2097152,64104,38627,2097152,64105,38911,2097152,64106,38971,2097152,64107,24693,2097152,
64108,148206,2097152,64109,33304,2097152,64112,20006,2097152,64113,20917,2097152,64114,20840,2097152,64115,20352,
2097152,64116,20805,2097152,64117,20864,2097152,64118,21191,2097152,64119,21242,2097152,64120,21917,2097152,64121,
21845,2097152,64122,21913,2097152,64123,21986,2097152,64124,22618,2097152,64125,22707,2097152,64126,22852,2097152,
64127,22868,2097152,64128,23138,2097152,64129,23336,2097152,64130,24274,2097152,64131,24281,2097152,64132,24425,
2097152,64133,24493,2097152,64134,24792,2097152,64135,24910,2097152,64136,24840,2097152,64137,24974,2097152,64138,
24928,2097152,64139,25074,2097152,64140,25140,2097152,64141,25540,2097152,64142,25628,2097152,64143,25682,2097152,
64144,25942,2097152,64145,26228,2097152,64146,26391,2097152,64147,26395,2097152,64148,26454,2097152,64149,27513,
2097152,64150,27578,2097152,64151,27969,2097152,64152,28379,2097152,64153,28363,2097152,64154,28450,2097152,64155,
28702,2097152,64156,29038,2097152,64157,30631,2097152,64158,29237,2097152,64159,29359,2097152,64160,29482,2097152,
64161,29809,2097152,64162,29958,2097152,64163,30011,2097152,64164,30237,2097152,64165,30239,2097152,64166,30410,
2097152,64167,30427,2097152,64168,30452,2097152,64169,30538,2097152,64170,30528,2097152,64171,30924,2097152,64172,
31409,2097152,64173,31680,2097152,64174,31867,2097152,64175,32091,2097152,64176,32244,2097152,64177,32574,2097152,
64178,32773,2097152,64179,33618,2097152,64180,33775,2097152,64181,34681,2097152,64182,35137,2097152,64183,35206,
2097152,64184,35222,2097152,64185,35519,2097152,64186,35576,2097152,64187,35531,2097152,64188,35585,2097152,64189,
35582,2097152,64190,35565,2097152,64191,35641,2097152,64192,35722,2097152,64193,36104,2097152,64194,36664,2097152,
64195,36978,2097152,64196,37273,2097152,64197,37494,2097152,64198,38524,2097152,64199,38627,2097152,64200,38742,
2097152,64201,38875,2097152,64202,38911,2097152,64203,38923,2097152,64204,38971,2097152,64205,39698,2097152,64206,
40860,2097152,64207,141386,2097152,64208,141380,2097152,64209,144341,2097152,64210,15261,2097152,64211,16408,2097152,
64212,16441,2097152,64213,152137,2097152,64214,154832,2097152,64215,163539,2097152,64216,40771,2097152,64217,40846,
2097152,64285,1497,2098612,64287,1522,2098615,64298,1513,2098625,64299,1513,2098626,64300,64329,2098625,64301,64329,
2098626,64302,1488,2098615,64303,1488,2098616,64304,1488,2098620,64305,1489,2098620,64306,1490,2098620,64307,1491,
2098620,64308,1492,2098620,64309,1493,2098620,64310,1494,2098620,64312,1496,2098620,64313,1497,2098620,64314,1498,
2098620,64315,1499,2098620,64316,1500,2098620,64318,1502,2098620,64320,1504,2098620,64321,1505,2098620,64323,1507,
2098620,64324,1508,2098620,64326,1510,2098620,64327,1511,2098620,64328,1512,2098620,64329,1513,2098620,64330,1514,
2098620,64331,1493,2098617,64332,1489,2098623,64333,1499,2098623,64334,1508,2098623,69786,69785,69818,69788,69787,
69818,69803,69797,69818,69934,69937,69927,69935,69938,69927,70475,70471,70462,70476,70471,70487,70843,70841,70842,
70844,70841,70832,70846,70841,70845,71098,71096,71087,71099,71097,71087,119134,119127,2216293,119135,119128,2216293,
119136,119135,2216302,119137,119135,2216303,119138,119135,2216304,119139,119135,2216305,119140,119135,2216306,119227,
119225,2216293,119228,119226,2216293,119229,119227,2216302,119230,119228,2216302,119231,119227,2216303,119232,119228,
2216303,194560,20029,2097152,194561,20024,2097152,194562,20033,2097152,194563,131362,2097152,194564,20320,2097152,
194565,20398,2097152,194566,20411,2097152,194567,20482,2097152,194568,20602,2097152,194569,20633,2097152,194570,20711,
2097152,194571,20687,2097152,194572,13470,2097152,194573,132666,2097152,194574,20813,2097152,194575,20820,2097152,
194576,20836,2097152,194577,20855,2097152,194578,132380,2097152,194579,13497,2097152,194580,20839,2097152,194581,
20877,2097152,194582,132427,2097152,194583,20887,2097152,194584,20900,2097152,194585,20172,2097152,194586,20908,
2097152,194587,20917,2097152,194588,168415,2097152,194589,20981,2097152,194590,20995,2097152,194591,13535,2097152,
194592,21051,2097152,194593,21062,2097152,194594,21106,2097152,194595,21111,2097152,194596,13589,2097152,194597,21191,
2097152,194598,21193,2097152,194599,21220,2097152,194600,21242,2097152,194601,21253,2097152,194602,21254,2097152,
194603,21271,2097152,194604,21321,2097152,194605,21329,2097152,194606,21338,2097152,194607,21363,2097152,194608,21373,
2097152,194609,21375,2097152,194610,21375,2097152,194611,21375,2097152,194612,133676,2097152,194613,28784,2097152,
194614,21450,2097152,194615,21471,2097152,194616,133987,2097152,194617,21483,2097152,194618,21489,2097152,194619,
21510,2097152,194620,21662,2097152,194621,21560,2097152,194622,21576,2097152,194623,21608,2097152,194624,21666,
2097152,194625,21750,2097152,194626,21776,2097152,194627,21843,2097152,194628,21859,2097152,194629,21892,2097152,
194630,21892,2097152,194631,21913,2097152,194632,21931,2097152,194633,21939,2097152,194634,21954,2097152,194635,22294,
2097152,194636,22022,2097152,194637,22295,2097152,194638,22097,2097152,194639,22132,2097152,194640,20999,2097152,
194641,22766,2097152,194642,22478,2097152,194643,22516,2097152,194644,22541,2097152,194645,22411,2097152,194646,22578,
2097152,194647,22577,2097152,194648,22700,2097152,194649,136420,2097152,194650,22770,2097152,194651,22775,2097152,
194652,22790,2097152,194653,22810,2097152,194654,22818,2097152,194655,22882,2097152,194656,136872,2097152,194657,
136938,2097152,194658,23020,2097152,194659,23067,2097152,194660,23079,2097152,194661,23000,2097152,194662,23142,
2097152,194663,14062,2097152,194664,14076,2097152,194665,23304,2097152,194666,23358,2097152,194667,23358,2097152,
194668,137672,2097152,194669,23491,2097152,194670,23512,2097152,194671,23527,2097152,194672,23539,2097152,194673,
138008,2097152,194674,23551,2097152,194675,23558,2097152,194676,24403,2097152,194677,23586,2097152,194678,14209,
2097152,194679,23648,2097152,194680,23662,2097152,194681,23744,2097152,194682,23693,2097152,194683,138724,2097152,
194684,23875,2097152,194685,138726,2097152,194686,23918,2097152,194687,23915,2097152,194688,23932,2097152,194689,
24033,2097152,194690,24034,2097152,194691,14383,2097152,194692,24061,2097152,194693,24104,2097152,194694,24125,
2097152,194695,24169,2097152,194696,14434,2097152,194697,139651,2097152,194698,14460,2097152,194699,24240,2097152,
194700,24243,2097152,194701,24246,2097152,194702,24266,2097152,194703,172946,2097152,194704,24318,2097152,194705,
140081,2097152,194706,140081,2097152,194707,33281,2097152,194708,24354,2097152,194709,24354,2097152,194710,14535,
2097152,194711,144056,2097152,194712,156122,2097152,194713,24418,2097152,194714,24427,2097152,194715,14563,2097152,
194716,24474,2097152,194717,24525,2097152,194718,24535,2097152,194719,24569,2097152,194720,24705,2097152,194721,14650,
2097152,194722,14620,2097152,194723,24724,2097152,194724,141012,2097152,194725,24775,2097152,194726,24904,2097152,
194727,24908,2097152,194728,24910,2097152,194729,24908,2097152,194730,24954,2097152,194731,24974,2097152,194732,25010,
2097152,194733,24996,2097152,194734,25007,2097152,194735,25054,2097152,194736,25074,2097152,194737,25078,2097152,
194738,25104,2097152,194739,25115,2097152,194740,25181,2097152,194741,25265,2097152,194742,25300,2097152,194743,25424,
2097152,194744,142092,2097152,194745,25405,2097152,194746,25340,2097152,194747,25448,2097152,194748,25475,2097152,
194749,25572,2097152,194750,142321,2097152,194751,25634,2097152,194752,25541,2097152,194753,25513,2097152,194754,
14894,2097152,194755,25705,2097152,194756,25726,2097152,194757,25757,2097152,194758,25719,2097152,194759,14956,
2097152,194760,25935,2097152,194761,25964,2097152,194762,143370,2097152,194763,26083,2097152,194764,26360,2097152,
194765,26185,2097152,194766,15129,2097152,194767,26257,2097152,194768,15112,2097152,194769,15076,2097152,194770,20882,
2097152,194771,20885,2097152,194772,26368,2097152,194773,26268,2097152,194774,32941,2097152,194775,17369,2097152,
194776,26391,2097152,194777,26395,2097152,194778,26401,2097152,194779,26462,2097152,194780,26451,2097152,194781,
144323,2097152,194782,15177,2097152,194783,26618,2097152,194784,26501,2097152,194785,26706,2097152,194786,26757,
2097152,194787,144493,2097152,194788,26766,2097152,194789,26655,2097152,194790,26900,2097152,194791,15261,2097152,
194792,26946,2097152,194793,27043,2097152,194794,27114,2097152,194795,27304,2097152,194796,145059,2097152,194797,
27355,2097152,194798,15384,2097152,194799,27425,2097152,194800,145575,2097152,194801,27476,2097152,194802,15438,
2097152,194803,27506,2097152,194804,27551,2097152,194805,27578,2097152,194806,27579,2097152,194807,146061,2097152,
194808,138507,2097152,194809,146170,2097152,194810,27726,2097152,194811,146620,2097152,194812,27839,2097152,194813,
27853,2097152,194814,27751,2097152,194815,27926,2097152,194816,27966,2097152,194817,28023,2097152,194818,27969,
2097152,194819,28009,2097152,194820,28024,2097152,194821,28037,2097152,194822,146718,2097152,194823,27956,2097152,
194824,28207,2097152,194825,28270,2097152,194826,15667,2097152,194827,28363,2097152,194828,28359,2097152,194829,
147153,2097152,194830,28153,2097152,194831,28526,2097152,194832,147294,2097152,194833,147342,2097152,194834,28614,
2097152,194835,28729,2097152,194836,28702,2097152,194837,28699,2097152,194838,15766,2097152,194839,28746,2097152,
194840,28797,2097152,194841,28791,2097152,194842,28845,2097152,194843,132389,2097152,194844,28997,2097152,194845,
148067,2097152,194846,29084,2097152,194847,148395,2097152,194848,29224,2097152,194849,29237,2097152,194850,29264,
2097152,194851,149000,2097152,194852,29312,2097152,194853,29333,2097152,194854,149301,2097152,194855,149524,2097152,
194856,29562,2097152,194857,29579,2097152,194858,16044,2097152,194859,29605,2097152,194860,16056,2097152,194861,16056,
2097152,194862,29767,2097152,194863,29788,2097152,194864,29809,2097152,194865,29829,2097152,194866,29898,2097152,
194867,16155,2097152,194868,29988,2097152,194869,150582,2097152,194870,30014,2097152,194871,150674,2097152,194872,
30064,2097152,194873,139679,2097152,194874,30224,2097152,194875,151457,2097152,194876,151480,2097152,194877,151620,
2097152,194878,16380,2097152,194879,16392,2097152,194880,30452,2097152,194881,151795,2097152,194882,151794,2097152,
194883,151833,2097152,194884,151859,2097152,194885,30494,2097152,194886,30495,2097152,194887,30495,2097152,194888,
30538,2097152,194889,16441,2097152,194890,30603,2097152,194891,16454,2097152,194892,16534,2097152,194893,152605,
2097152,194894,30798,2097152,194895,30860,2097152,194896,30924,2097152,194897,16611,2097152,194898,153126,2097152,
194899,31062,2097152,194900,153242,2097152,194901,153285,2097152,194902,31119,2097152,194903,31211,2097152,194904,
16687,2097152,194905,31296,2097152,194906,31306,2097152,194907,31311,2097152,194908,153980,2097152,194909,154279,
2097152,194910,154279,2097152,194911,31470,2097152,194912,16898,2097152,194913,154539,2097152,194914,31686,2097152,
194915,31689,2097152,194916,16935,2097152,194917,154752,2097152,194918,31954,2097152,194919,17056,2097152,194920,
31976,2097152,194921,31971,2097152,194922,32000,2097152,194923,155526,2097152,194924,32099,2097152,194925,17153,
2097152,194926,32199,2097152,194927,32258,2097152,194928,32325,2097152,194929,17204,2097152,194930,156200,2097152,
194931,156231,2097152,194932,17241,2097152,194933,156377,2097152,194934,32634,2097152,194935,156478,2097152,194936,
32661,2097152,194937,32762,2097152,194938,32773,2097152,194939,156890,2097152,194940,156963,2097152,194941,32864,
2097152,194942,157096,2097152,194943,32880,2097152,194944,144223,2097152,194945,17365,2097152,194946,32946,2097152,
194947,33027,2097152,194948,17419,2097152,194949,33086,2097152,194950,23221,2097152,194951,157607,2097152,194952,
157621,2097152,194953,144275,2097152,194954,144284,2097152,194955,33281,2097152,194956,33284,2097152,194957,36766,
2097152,194958,17515,2097152,194959,33425,2097152,194960,33419,2097152,194961,33437,2097152,194962,21171,2097152,
194963,33457,2097152,194964,33459,2097152,194965,33469,2097152,194966,33510,2097152,194967,158524,2097152,194968,
33509,2097152,194969,33565,2097152,194970,33635,2097152,194971,33709,2097152,194972,33571,2097152,194973,33725,
2097152,194974,33767,2097152,194975,33879,2097152,194976,33619,2097152,194977,33738,2097152,194978,33740,2097152,
194979,33756,2097152,194980,158774,2097152,194981,159083,2097152,194982,158933,2097152,194983,17707,2097152,194984,
34033,2097152,194985,34035,2097152,194986,34070,2097152,194987,160714,2097152,194988,34148,2097152,194989,159532,
2097152,194990,17757,2097152,194991,17761,2097152,194992,159665,2097152,194993,159954,2097152,194994,17771,2097152,
194995,34384,2097152,194996,34396,2097152,194997,34407,2097152,194998,34409,2097152,194999,34473,2097152,195000,34440,
2097152,195001,34574,2097152,195002,34530,2097152,195003,34681,2097152,195004,34600,2097152,195005,34667,2097152,
195006,34694,2097152,195007,17879,2097152,195008,34785,2097152,195009,34817,2097152,195010,17913,2097152,195011,34912,
2097152,195012,34915,2097152,195013,161383,2097152,195014,35031,2097152,195015,35038,2097152,195016,17973,2097152,
195017,35066,2097152,195018,13499,2097152,195019,161966,2097152,195020,162150,2097152,195021,18110,2097152,195022,
18119,2097152,195023,35488,2097152,195024,35565,2097152,195025,35722,2097152,195026,35925,2097152,195027,162984,
2097152,195028,36011,2097152,195029,36033,2097152,195030,36123,2097152,195031,36215,2097152,195032,163631,2097152,
195033,133124,2097152,195034,36299,2097152,195035,36284,2097152,195036,36336,2097152,195037,133342,2097152,195038,
36564,2097152,195039,36664,2097152,195040,165330,2097152,195041,165357,2097152,195042,37012,2097152,195043,37105,
2097152,195044,37137,2097152,195045,165678,2097152,195046,37147,2097152,195047,37432,2097152,195048,37591,2097152,
195049,37592,2097152,195050,37500,2097152,195051,37881,2097152,195052,37909,2097152,195053,166906,2097152,195054,
38283,2097152,195055,18837,2097152,195056,38327,2097152,195057,167287,2097152,195058,18918,2097152,195059,38595,
2097152,195060,23986,2097152,195061,38691,2097152,195062,168261,2097152,195063,168474,2097152,195064,19054,2097152,
195065,19062,2097152,195066,38880,2097152,195067,168970,2097152,195068,19122,2097152,195069,169110,2097152,195070,
38923,2097152,195071,38923,2097152,195072,38953,2097152,195073,169398,2097152,195074,39138,2097152,195075,19251,
2097152,195076,39209,2097152,195077,39335,2097152,195078,39362,2097152,195079,39422,2097152,195080,19406,2097152,
195081,170800,2097152,195082,39698,2097152,195083,40000,2097152,195084,40189,2097152,195085,19662,2097152,195086,
19693,2097152,195087,40295,2097152,195088,172238,2097152,195089,19704,2097152,195090,172293,2097152,195091,172558,
2097152,195092,172689,2097152,195093,40635,2097152,195094,19798,2097152,195095,40697,2097152,195096,40702,2097152,
195097,40709,2097152,195098,40719,2097152,195099,40726,2097152,195100,40763,2097152,195101,173568,2097152,
};
/* END GENERATED UNICODE TABLES */

/* ---- character classes ---------------------------------------------------------------------------------- */

enum { OLLM__U_OTHER, OLLM__U_LU, OLLM__U_LL, OLLM__U_LT, OLLM__U_LM, OLLM__U_LO, OLLM__U_M, OLLM__U_N, OLLM__U_WS };
#define OLLM__U_IS_L(c) ((c) >= OLLM__U_LU && (c) <= OLLM__U_LO)
/* o200k's two letter sets: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
#define OLLM__U_IS_UP(c) ((c) == OLLM__U_LU || (c) == OLLM__U_LT || (c) == OLLM__U_LM || (c) == OLLM__U_LO || (c) == OLLM__U_M)
#define OLLM__U_IS_LO(c) ((c) == OLLM__U_LL || (c) == OLLM__U_LM || (c) == OLLM__U_LO || (c) == OLLM__U_M)

static int ollm__ucat_find(uint32_t cp) {
    size_t lo = 0, hi = sizeof ollm__ucat / sizeof ollm__ucat[0];   /* last entry with start <= cp */
    while (hi - lo > 1) { size_t mid = (lo + hi) / 2; if ((ollm__ucat[mid] >> 4) <= cp) lo = mid; else hi = mid; }
    return (int)(ollm__ucat[lo] & 15);
}
static int ollm__uccc_find(uint32_t cp) {
    size_t lo = 0, hi = sizeof ollm__uccc / sizeof ollm__uccc[0];
    if (cp < (ollm__uccc[0] >> 8)) return 0;
    while (hi - lo > 1) { size_t mid = (lo + hi) / 2; if ((ollm__uccc[mid] >> 8) <= cp) lo = mid; else hi = mid; }
    return (int)(ollm__uccc[lo] & 255);
}
/* Python's str.isspace(), which jinja's `trim` and str.strip() use: White_Space plus U+001C..U+001F */
static int ollm__py_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* ---- the tokenizer ----------------------------------------------------------------------------------------- */

enum { OLLM__PT_LLAMA3 = 1, OLLM__PT_QWEN2, OLLM__PT_O200K };
enum { OLLM__CHAT_NONE, OLLM__CHAT_UNKNOWN, OLLM__CHAT_LLAMA3, OLLM__CHAT_LLAMA31, OLLM__CHAT_HARMONY,
       OLLM__CHAT_QWEN3 };

typedef struct ollm__tk_added {
    const char *text; uint32_t len; int32_t id;
    uint8_t special, lstrip, rstrip, normalized, single_word;
} ollm__tk_added;

typedef struct ollm__tk_vec { int32_t *v; size_t n, cap; } ollm__tk_vec;
typedef struct ollm__tk_buf { char *p; size_t n, cap; } ollm__tk_buf;

struct ollm_tokenizer {
    ollm__log log;                 /* first member: the handle's last error */
    int32_t n_ids;                 /* 1 + the largest id of the vocabulary and the added tokens */
    /* bytes of each id: `dec` what decoding gives (added tokens' text wins), `enc` the model's own token (or none) */
    uint32_t *dec_off, *dec_len, *enc_off, *enc_len;
    char *bytes; size_t bytes_n;
    uint8_t *is_special;           /* added with special: true (skipped by OLLM_DETOKENIZE_SKIP_SPECIAL) */
    uint32_t *vmap; uint32_t vmap_mask;          /* model token bytes -> id + 1 (0 = empty slot) */
    uint64_t *mkey; uint32_t *mrank; int32_t *mnew; uint32_t mmask;   /* (left id, right id) -> rank, merged id */
    int32_t byte_id[256];          /* the token of each single byte */
    ollm__tk_added *added; int n_added;
    int bucket[257];               /* added tokens sorted by first byte, then longest first: [bucket[b], bucket[b+1]) */
    int has_normalized_added;
    int pretok, nfc, ignore_merges, parse_special;
    int32_t prefix[8], suffix[8]; int n_prefix, n_suffix;   /* what the post-processor adds (ADD_SPECIAL) */
    uint8_t *ucls;                 /* class of every BMP code point, from ollm__ucat */
    uint64_t *ckey; uint32_t *cval; uint32_t n_comp;        /* NFC composition pairs, sorted */
    /* BPE cache: pre-token bytes -> ids, cleared when full */
    uint64_t *cache_h; uint32_t *cache_at; uint32_t cache_n;
    char *cache_data; size_t cache_used;
    /* chat */
    int chat; char *bos_token; char *chat_date; int chat_strftime, chat_bos, chat_thinking;
    /* scratch */
    ollm__tk_vec out; ollm__tk_buf norm; uint32_t *cps; size_t cps_cap;
    int32_t *sym; size_t sym_cap;
    uint64_t *heap; size_t heap_cap;
};

#define OLLM__TK_CACHE_SLOTS 65536u
#define OLLM__TK_CACHE_BYTES (4u << 20)
#define OLLM__TK_CACHE_MAXLEN 64

static int ollm__tk_vec_push(ollm__tk_vec *v, int32_t x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        int32_t *p = (int32_t *)OLLM_REALLOC(v->v, cap * sizeof *p);
        if (!p) return 0;
        v->v = p; v->cap = cap;
    }
    v->v[v->n++] = x; return 1;
}
static int ollm__tk_buf_add(ollm__tk_buf *b, const void *s, size_t n) {
    if (b->cap - b->n < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap - b->n < n + 1) { if (cap > SIZE_MAX / 2) return 0; cap *= 2; }
        p = (char *)OLLM_REALLOC(b->p, cap);
        if (!p) return 0;
        b->p = p; b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n; b->p[b->n] = 0; return 1;
}
static int ollm__tk_buf_str(ollm__tk_buf *b, const char *s) { return ollm__tk_buf_add(b, s, strlen(s)); }
static int ollm__tk_grow(void **p, size_t *cap, size_t need, size_t elem) {
    void *q; size_t c = *cap ? *cap : 64;
    if (need <= *cap) return 1;
    while (c < need) c *= 2;
    q = OLLM_REALLOC(*p, c * elem);
    if (!q) return 0;
    *p = q; *cap = c; return 1;
}

static uint64_t ollm__tk_hash(const void *data, size_t n) {   /* 8 bytes a step; only needs to spread well */
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    while (n >= 8) { uint64_t w; memcpy(&w, p, 8); h = (h ^ w) * 0xff51afd7ed558ccdull; h ^= h >> 32; p += 8; n -= 8; }
    if (n) { uint64_t w = 0; memcpy(&w, p, n); h = (h ^ w) * 0xc4ceb9fe1a85ec53ull; }
    h ^= h >> 29; h *= 0x94d049bb133111ebull; h ^= h >> 32;
    return h;
}

/* The GPT-2 byte table (bytes_to_unicode): printable Latin-1 maps to itself; the other 68 bytes (0..32, 127..160,
   173) map in order to U+0100..U+0143. */
static uint32_t ollm__tk_byte_cp(int b) {
    if (b <= 32) return 256u + (uint32_t)b;
    if (b >= 127 && b <= 160) return 256u + 33u + (uint32_t)(b - 127);
    if (b == 173) return 256u + 67u;
    return (uint32_t)b;
}
static int ollm__tk_cp_byte(uint32_t cp) {   /* inverse, or -1 */
    if (cp >= 256) return cp <= 288 ? (int)(cp - 256) : cp <= 322 ? (int)(cp - 289 + 127) : cp == 323 ? 173 : -1;
    return (cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 255 && cp != 173) ? (int)cp : -1;
}
/* A byte-level token string -> its bytes (out has room for len bytes). Returns the count, or -1 when a character is
   outside the byte table (then the token cannot come out of BPE and decodes as its UTF-8 text). */
static long ollm__tk_unbyte(const char *s, size_t len, char *out) {
    size_t i = 0; long n = 0;
    while (i < len) {
        uint32_t cp; int l = ollm__utf8_len((const unsigned char *)s + i, len - i, &cp), b;
        if (!l || (b = ollm__tk_cp_byte(cp)) < 0) return -1;
        out[n++] = (char)b; i += (size_t)l;
    }
    return n;
}

static int32_t ollm__tk_vfind(const ollm_tokenizer *t, const char *s, size_t n) {
    uint32_t i = (uint32_t)ollm__tk_hash(s, n) & t->vmap_mask;
    for (;; i = (i + 1) & t->vmap_mask) {
        uint32_t e = t->vmap[i];
        if (!e) return -1;
        if (t->enc_len[e - 1] == n && memcmp(t->bytes + t->enc_off[e - 1], s, n) == 0) return (int32_t)(e - 1);
    }
}
static uint32_t ollm__tk_mslot(const ollm_tokenizer *t, uint64_t key) {
    uint32_t i = (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & t->mmask;
    while (t->mkey[i] != key && t->mkey[i] != UINT64_MAX) i = (i + 1) & t->mmask;
    return i;
}
static int ollm__tk_merge(const ollm_tokenizer *t, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    uint32_t i = ollm__tk_mslot(t, (uint64_t)(uint32_t)a << 32 | (uint32_t)b);
    if (t->mkey[i] == UINT64_MAX) return 0;
    *rank = t->mrank[i]; *id = t->mnew[i]; return 1;
}

/* ---- pre-tokenizers: the Split regexes as hand-written matchers ----------------------------------------------
   Each returns the end of the regex match that starts at p (the Split pre-tokenizer, behaviour Isolated: every
   character is covered by some alternative, so matches are contiguous). Alternatives are tried in order and the
   first that matches wins, with the backtracking of a Perl-style engine where it changes the result. */

static int ollm__tk_peek(const ollm_tokenizer *t, const unsigned char *s, size_t n, size_t i, uint32_t *cp, int *cls) {
    int l;
    if (i >= n) { *cp = 0xffffffffu; *cls = -1; return 0; }
    if (s[i] < 0x80) { *cp = s[i]; *cls = t->ucls[s[i]]; return 1; }
    l = ollm__utf8_len(s + i, n - i, cp);
    if (!l) { *cp = 0x110000u + s[i]; *cls = OLLM__U_OTHER; return 1; }   /* invalid byte: one char, no class */
    *cls = *cp < 0x10000 ? t->ucls[*cp] : ollm__ucat_find(*cp);
    return l;
}
/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at p: length or 0. Case-insensitive as Unicode simple case folding: U+017F (long s)
   folds to s; no other character folds to one of these letters. */
static size_t ollm__tk_contraction(const unsigned char *s, size_t n, size_t p) {
    int a, b;
    if (p + 1 >= n || s[p] != '\'') return 0;
    a = s[p + 1] | 0x20; b = p + 2 < n ? s[p + 2] | 0x20 : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (s[p + 1] == 0xc5 && p + 2 < n && s[p + 2] == 0xbf) return 3;   /* 'ſ */
    if ((a == 'r' || a == 'v') && b == 'e') return 3;
    if (a == 'l' && b == 'l') return 3;
    return 0;
}
/* \s*[\r\n]+ | \s+(?!\S) | \s+ at p (a White_Space character) */
static size_t ollm__tk_space(const ollm_tokenizer *t, const unsigned char *s, size_t n, size_t p) {
    size_t q = p, last_nl = 0, last = p; int nchars = 0, cls, l; uint32_t cp;
    while ((l = ollm__tk_peek(t, s, n, q, &cp, &cls)) && cls == OLLM__U_WS) {
        if (cp == '\r' || cp == '\n') last_nl = q + 1;
        last = q; q += (size_t)l; nchars++;
    }
    if (last_nl) return last_nl;            /* \s*[\r\n]+ backtracks to the last line break of the run */
    if (q >= n || nchars < 2) return q;     /* \s+(?!\S) at the end, or \s+ of one character */
    return last;                            /* \s+(?!\S): the run gives back its last character */
}
/* Llama-3 and Qwen2/3 (max_digits 1):
   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t ollm__tk_pt_llama(const ollm_tokenizer *t, const unsigned char *s, size_t n, size_t p, int max_digits) {
    uint32_t cp, cp2; int c, c2, l = ollm__tk_peek(t, s, n, p, &cp, &c), l2, k; size_t q;
    if (cp == '\'' && (q = ollm__tk_contraction(s, n, p)) != 0) return p + q;
    q = p;
    if (!OLLM__U_IS_L(c) && c != OLLM__U_N && cp != '\r' && cp != '\n') {   /* the optional prefix character */
        l2 = ollm__tk_peek(t, s, n, p + (size_t)l, &cp2, &c2);
        if (l2 && OLLM__U_IS_L(c2)) q = p + (size_t)l;
    }
    if (OLLM__U_IS_L(c) || q != p) {
        while ((l2 = ollm__tk_peek(t, s, n, q, &cp2, &c2)) && OLLM__U_IS_L(c2)) q += (size_t)l2;
        return q;
    }
    if (c == OLLM__U_N) {
        for (k = 0, q = p; k < max_digits && (l2 = ollm__tk_peek(t, s, n, q, &cp2, &c2)) && c2 == OLLM__U_N; k++)
            q += (size_t)l2;
        return q;
    }
    q = cp == ' ' ? p + 1 : p;
    l2 = ollm__tk_peek(t, s, n, q, &cp2, &c2);
    if (l2 && c2 != OLLM__U_WS && !OLLM__U_IS_L(c2) && c2 != OLLM__U_N) {
        do q += (size_t)l2;
        while ((l2 = ollm__tk_peek(t, s, n, q, &cp2, &c2)) && c2 != OLLM__U_WS && !OLLM__U_IS_L(c2) && c2 != OLLM__U_N);
        while (q < n && (s[q] == '\r' || s[q] == '\n')) q++;
        return q;
    }
    if (c == OLLM__U_WS) return ollm__tk_space(t, s, n, p);
    return p + (size_t)l;   /* unreachable: every character is in some alternative */
}
/* o200k, first letter alternative from q: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ then the
   optional contraction. The greedy first set backtracks to the last character that is also in the second set. */
static size_t ollm__tk_o200k_w1(const ollm_tokenizer *t, const unsigned char *s, size_t n, size_t q) {
    size_t last_lo = 0; int have = 0, c, l; uint32_t cp;
    while ((l = ollm__tk_peek(t, s, n, q, &cp, &c)) && OLLM__U_IS_UP(c)) {
        if (OLLM__U_IS_LO(c)) { last_lo = q + (size_t)l; have = 1; }
        q += (size_t)l;
    }
    if (l && OLLM__U_IS_LO(c)) {
        while ((l = ollm__tk_peek(t, s, n, q, &cp, &c)) && OLLM__U_IS_LO(c)) q += (size_t)l;
    } else if (have) q = last_lo;
    else return 0;
    return q + ollm__tk_contraction(s, n, q);
}
/* second letter alternative: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]* then the contraction */
static size_t ollm__tk_o200k_w2(const ollm_tokenizer *t, const unsigned char *s, size_t n, size_t q) {
    size_t q0 = q; int c, l; uint32_t cp;
    while ((l = ollm__tk_peek(t, s, n, q, &cp, &c)) && OLLM__U_IS_UP(c)) q += (size_t)l;
    if (q == q0) return 0;
    while ((l = ollm__tk_peek(t, s, n, q, &cp, &c)) && OLLM__U_IS_LO(c)) q += (size_t)l;
    return q + ollm__tk_contraction(s, n, q);
}
/* GPT-OSS o200k:
   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
   \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
   The optional prefix is tried taken first, then not (a mark is both a prefix character and a letter here). */
static size_t ollm__tk_pt_o200k(const ollm_tokenizer *t, const unsigned char *s, size_t n, size_t p) {
    uint32_t cp, cp2; int c, c2, l = ollm__tk_peek(t, s, n, p, &cp, &c), l2, k;
    int pre = !OLLM__U_IS_L(c) && c != OLLM__U_N && cp != '\r' && cp != '\n';
    size_t e, q;
    if (pre && (e = ollm__tk_o200k_w1(t, s, n, p + (size_t)l)) != 0) return e;
    if ((e = ollm__tk_o200k_w1(t, s, n, p)) != 0) return e;
    if (pre && (e = ollm__tk_o200k_w2(t, s, n, p + (size_t)l)) != 0) return e;
    if ((e = ollm__tk_o200k_w2(t, s, n, p)) != 0) return e;
    if (c == OLLM__U_N) {
        for (k = 0, q = p; k < 3 && (l2 = ollm__tk_peek(t, s, n, q, &cp2, &c2)) && c2 == OLLM__U_N; k++) q += (size_t)l2;
        return q;
    }
    q = cp == ' ' ? p + 1 : p;
    l2 = ollm__tk_peek(t, s, n, q, &cp2, &c2);
    if (l2 && c2 != OLLM__U_WS && !OLLM__U_IS_L(c2) && c2 != OLLM__U_N) {
        do q += (size_t)l2;
        while ((l2 = ollm__tk_peek(t, s, n, q, &cp2, &c2)) && c2 != OLLM__U_WS && !OLLM__U_IS_L(c2) && c2 != OLLM__U_N);
        while (q < n && (s[q] == '\r' || s[q] == '\n' || s[q] == '/')) q++;
        return q;
    }
    if (c == OLLM__U_WS) return ollm__tk_space(t, s, n, p);
    return p + (size_t)l;
}

/* ---- NFC (UAX #15): full canonical decomposition, canonical ordering, canonical composition ----------------- */

#define OLLM__H_SBASE 0xac00u
#define OLLM__H_LBASE 0x1100u
#define OLLM__H_VBASE 0x1161u
#define OLLM__H_TBASE 0x11a7u
#define OLLM__H_SCOUNT 11172u

static long ollm__udec_find(uint32_t cp) {
    size_t lo = 0, hi = sizeof ollm__udec / sizeof ollm__udec[0] / 3;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ollm__udec[mid * 3] == cp) return (long)mid;
        if (ollm__udec[mid * 3] < cp) lo = mid + 1; else hi = mid;
    }
    return -1;
}
/* appends the full canonical decomposition of cp (room for 4 more is checked by the caller: max depth is small) */
static size_t ollm__nfd_char(uint32_t cp, uint32_t *out) {
    long k;
    if (cp >= OLLM__H_SBASE && cp < OLLM__H_SBASE + OLLM__H_SCOUNT) {
        uint32_t si = cp - OLLM__H_SBASE, tt = si % 28;
        out[0] = OLLM__H_LBASE + si / (21 * 28); out[1] = OLLM__H_VBASE + (si % (21 * 28)) / 28;
        if (tt) { out[2] = OLLM__H_TBASE + tt; return 3; }
        return 2;
    }
    if (cp < 0xc0 || (k = ollm__udec_find(cp)) < 0) { out[0] = cp; return 1; }
    {
        size_t m = ollm__nfd_char(ollm__udec[k * 3 + 1], out);
        uint32_t second = ollm__udec[k * 3 + 2] & 0x1fffffu;
        if (second) m += ollm__nfd_char(second, out + m);
        return m;
    }
}
static uint32_t ollm__nfc_pair(const ollm_tokenizer *t, uint32_t a, uint32_t b) {
    size_t lo = 0, hi = t->n_comp; uint64_t key = (uint64_t)a << 21 | b;
    if (a >= OLLM__H_LBASE && a < OLLM__H_LBASE + 19 && b >= OLLM__H_VBASE && b < OLLM__H_VBASE + 21)
        return OLLM__H_SBASE + ((a - OLLM__H_LBASE) * 21 + (b - OLLM__H_VBASE)) * 28;
    if (a >= OLLM__H_SBASE && a < OLLM__H_SBASE + OLLM__H_SCOUNT && (a - OLLM__H_SBASE) % 28 == 0 &&
        b > OLLM__H_TBASE && b < OLLM__H_TBASE + 28)
        return a + (b - OLLM__H_TBASE);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->ckey[mid] == key) return t->cval[mid];
        if (t->ckey[mid] < key) lo = mid + 1; else hi = mid;
    }
    return 0;
}
/* NFC of s[0..n) into t->norm. Invalid bytes pass through as themselves (code points 0x110000 + byte). */
static int ollm__nfc(ollm_tokenizer *t, const char *s, size_t n) {
    size_t i = 0, m = 0, k, j;
    uint32_t *b;
    t->norm.n = 0;
    if (!ollm__tk_grow((void **)&t->cps, &t->cps_cap, n * 4 + 8, sizeof(uint32_t))) return 0;
    b = t->cps;
    while (i < n) {   /* 1. decompose (a code point decomposes to at most 4: U+1D160-style chains and Hangul) */
        uint32_t cp; int l = ollm__utf8_len((const unsigned char *)s + i, n - i, &cp);
        if (!l) { cp = 0x110000u + (unsigned char)s[i]; l = 1; }
        if (cp < 0xc0 || cp >= 0x110000u) b[m++] = cp;
        else m += ollm__nfd_char(cp, b + m);
        i += (size_t)l;
    }
    for (k = 1; k < m; k++) {   /* 2. canonical ordering: stable insertion sort of each run of non-starters */
        int ck = b[k] < 0x300 || b[k] >= 0x110000u ? 0 : ollm__uccc_find(b[k]);
        if (!ck) continue;
        for (j = k; j > 0; j--) {
            int cj = b[j - 1] < 0x300 || b[j - 1] >= 0x110000u ? 0 : ollm__uccc_find(b[j - 1]);
            uint32_t tmp;
            if (cj <= ck) break;
            tmp = b[j]; b[j] = b[j - 1]; b[j - 1] = tmp;
        }
    }
    if (m) {          /* 3. compose: a character joins the last starter unless blocked (UAX #15 sample code) */
        size_t starter = 0, out = 1;
        int last = b[0] < 0x300 || b[0] >= 0x110000u ? 0 : ollm__uccc_find(b[0]);
        if (last) last = 256;
        for (k = 1; k < m; k++) {
            uint32_t ch = b[k], comp;
            int cc = ch < 0x300 || ch >= 0x110000u ? 0 : ollm__uccc_find(ch);
            comp = b[starter] < 0x110000u && ch < 0x110000u && (last < cc || last == 0) ?
                   ollm__nfc_pair(t, b[starter], ch) : 0;
            if (comp && (last < cc || last == 0)) { b[starter] = comp; continue; }
            if (cc == 0) starter = out;
            last = cc;
            b[out++] = ch;
        }
        m = out;
    }
    for (k = 0; k < m; k++) {
        char tmp[4]; size_t l;
        if (b[k] >= 0x110000u) { tmp[0] = (char)(b[k] - 0x110000u); l = 1; }
        else l = ollm__utf8_put(tmp, b[k]);
        if (!ollm__tk_buf_add(&t->norm, tmp, l)) return 0;
    }
    return 1;
}

/* ---- BPE ---------------------------------------------------------------------------------------------------- */

/* heap entries: rank << 32 | position, smallest first: lowest rank, then leftmost (word.rs Merge's Ord) */
static void ollm__tk_heap_push(uint64_t *h, size_t *n, uint64_t x) {
    size_t i = (*n)++;
    while (i > 0) { size_t p = (i - 1) / 2; if (h[p] <= x) break; h[i] = h[p]; i = p; }
    h[i] = x;
}
static uint64_t ollm__tk_heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], x = h[--(*n)]; size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (x <= h[c]) break;
        h[i] = h[c]; i = c;
    }
    if (*n) h[i] = x;
    return top;
}
/* Merges one pre-token's bytes into ids appended to t->out: repeatedly the pair of lowest rank (leftmost on ties),
   as word.rs merge_all. A popped entry is stale when the pair now at its position merges to another token. */
static int ollm__tk_bpe_merge(ollm_tokenizer *t, const unsigned char *s, size_t n) {
    size_t i, nh = 0;
    int32_t *sym, *prv, *nxt; uint64_t *h;
    if (!ollm__tk_grow((void **)&t->sym, &t->sym_cap, 3 * n, sizeof(int32_t))) return 0;   /* sym, prev, next */
    if (!ollm__tk_grow((void **)&t->heap, &t->heap_cap, 3 * n + 8, sizeof(uint64_t))) return 0;
    sym = t->sym; prv = t->sym + n; nxt = t->sym + 2 * n; h = t->heap;
    for (i = 0; i < n; i++) { sym[i] = t->byte_id[s[i]]; prv[i] = (int32_t)i - 1; nxt[i] = i + 1 < n ? (int32_t)i + 1 : -1; }
    for (i = 0; i + 1 < n; i++) {
        uint32_t rank; int32_t id;
        if (ollm__tk_merge(t, sym[i], sym[i + 1], &rank, &id)) ollm__tk_heap_push(h, &nh, (uint64_t)rank << 32 | i);
    }
    while (nh) {
        uint64_t top = ollm__tk_heap_pop(h, &nh);
        uint32_t pos = (uint32_t)top, rank, r2; int32_t id, id2, right;
        if (sym[pos] < 0 || nxt[pos] < 0) continue;            /* removed, or the last symbol */
        right = nxt[pos];
        if (!ollm__tk_merge(t, sym[pos], sym[right], &rank, &id) || rank != (uint32_t)(top >> 32)) continue;
        sym[pos] = id; sym[right] = -1;
        nxt[pos] = nxt[right];
        if (nxt[pos] >= 0) prv[nxt[pos]] = (int32_t)pos;
        if (prv[pos] >= 0 && ollm__tk_merge(t, sym[prv[pos]], id, &r2, &id2))
            ollm__tk_heap_push(h, &nh, (uint64_t)r2 << 32 | (uint32_t)prv[pos]);
        if (nxt[pos] >= 0 && ollm__tk_merge(t, id, sym[nxt[pos]], &r2, &id2))
            ollm__tk_heap_push(h, &nh, (uint64_t)r2 << 32 | pos);
    }
    for (i = 0; i < n; i = (size_t)nxt[i]) {
        if (!ollm__tk_vec_push(&t->out, sym[i])) return 0;
        if (nxt[i] < 0) break;
    }
    return 1;
}
/* One pre-token: ignore_merges lookup, the cache, else the merges. */
static int ollm__tk_bpe(ollm_tokenizer *t, const unsigned char *s, size_t n) {
    uint64_t hsh; uint32_t slot; size_t first;
    if (n == 1) return ollm__tk_vec_push(&t->out, t->byte_id[s[0]]);
    if (t->ignore_merges) {
        int32_t id = ollm__tk_vfind(t, (const char *)s, n);
        if (id >= 0) return ollm__tk_vec_push(&t->out, id);
    }
    if (n > OLLM__TK_CACHE_MAXLEN || !t->cache_h) return ollm__tk_bpe_merge(t, s, n);
    hsh = ollm__tk_hash(s, n) | 1;   /* 0 marks an empty slot */
    for (slot = (uint32_t)hsh & (OLLM__TK_CACHE_SLOTS - 1); t->cache_h[slot]; slot = (slot + 1) & (OLLM__TK_CACHE_SLOTS - 1)) {
        const char *e = t->cache_data + t->cache_at[slot];
        if (t->cache_h[slot] == hsh && (unsigned char)e[0] == n && memcmp(e + 2, s, n) == 0) {
            size_t k, m = (unsigned char)e[1]; int32_t id;
            for (k = 0; k < m; k++) { memcpy(&id, e + 2 + n + 4 * k, 4); if (!ollm__tk_vec_push(&t->out, id)) return 0; }
            return 1;
        }
    }
    first = t->out.n;
    if (!ollm__tk_bpe_merge(t, s, n)) return 0;
    {
        size_t m = t->out.n - first, need = 2 + n + 4 * m;
        if (t->cache_n >= OLLM__TK_CACHE_SLOTS / 2 || t->cache_used + need > OLLM__TK_CACHE_BYTES) {
            memset(t->cache_h, 0, OLLM__TK_CACHE_SLOTS * sizeof *t->cache_h);   /* full: start over */
            t->cache_n = 0; t->cache_used = 0;
            for (slot = (uint32_t)hsh & (OLLM__TK_CACHE_SLOTS - 1); t->cache_h[slot]; slot = (slot + 1) & (OLLM__TK_CACHE_SLOTS - 1)) {}
        }
        if (m < 256) {
            char *e = t->cache_data + t->cache_used;
            e[0] = (char)n; e[1] = (char)m; memcpy(e + 2, s, n); memcpy(e + 2 + n, t->out.v + first, 4 * m);
            t->cache_h[slot] = hsh; t->cache_at[slot] = (uint32_t)t->cache_used;
            t->cache_used += need; t->cache_n++;
        }
    }
    return 1;
}
/* Pre-tokenizes and merges one normalised piece of text (no added tokens in it). */
static int ollm__tk_pieces(ollm_tokenizer *t, const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text; size_t p = 0;
    while (p < n) {
        size_t e = t->pretok == OLLM__PT_O200K ? ollm__tk_pt_o200k(t, s, n, p)
                                                : ollm__tk_pt_llama(t, s, n, p, t->pretok == OLLM__PT_QWEN2 ? 1 : 3);
        if (e <= p) e = p + 1;
        if (!ollm__tk_bpe(t, s + p, e - p)) return 0;
        p = e;
    }
    return 1;
}

/* ---- added tokens (added_vocabulary.rs find_matches) -------------------------------------------------------- */

static int ollm__tk_is_word_char(const ollm_tokenizer *t, const unsigned char *s, size_t n, size_t i) {
    uint32_t cp; int c; ollm__tk_peek(t, s, n, i, &cp, &c);
    return OLLM__U_IS_L(c) || c == OLLM__U_N;   /* Rust char::is_alphanumeric, less Other_Alphabetic marks */
}
/* Leftmost-longest match at or after pos among the added tokens with this `normalized` flag: index, or -1. */
static int ollm__tk_added_find(const ollm_tokenizer *t, const char *s, size_t n, size_t pos, int normalized,
                               size_t *at) {
    size_t q;
    for (q = pos; q < n; q++) {
        unsigned char b = (unsigned char)s[q]; int k;
        for (k = t->bucket[b]; k < t->bucket[b + 1]; k++) {
            const ollm__tk_added *a = &t->added[k];
            if (a->normalized == normalized && a->len <= n - q && memcmp(s + q, a->text, a->len) == 0) {
                *at = q; return k;
            }
        }
    }
    return -1;
}
/* Splits s on added tokens; tokens go to t->out, the text between them through `piece`. */
static int ollm__tk_split_added(ollm_tokenizer *t, const char *s, size_t n, int normalized,
                                int (*piece)(ollm_tokenizer *, const char *, size_t)) {
    size_t pos = 0, start_offset = 0, at; int k;
    const unsigned char *u = (const unsigned char *)s;
    while (pos < n && (k = ollm__tk_added_find(t, s, n, pos, normalized, &at)) >= 0) {
        const ollm__tk_added *a = &t->added[k];
        size_t start = at, stop = at + a->len;
        pos = stop;
        if (a->special && !t->parse_special) continue;   /* encode_special_tokens: the text stays text */
        if (a->single_word) {
            size_t b = start;
            int before = 0, after = stop < n && ollm__tk_is_word_char(t, u, n, stop);
            if (b > 0) { do b--; while (b > 0 && (u[b] & 0xc0) == 0x80); before = ollm__tk_is_word_char(t, u, n, b); }
            if (before || after) continue;
        }
        if (a->lstrip) {   /* trim_end of the text before, but never into the previous split */
            size_t ns = start;
            while (ns > 0) {
                size_t b = ns; uint32_t cp; int c;
                do b--; while (b > 0 && (u[b] & 0xc0) == 0x80);
                ollm__tk_peek(t, u, n, b, &cp, &c);
                if (c != OLLM__U_WS) break;
                ns = b;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            uint32_t cp; int c, l;
            while ((l = ollm__tk_peek(t, u, n, stop, &cp, &c)) && c == OLLM__U_WS) stop += (size_t)l;
        }
        if (start > start_offset && !piece(t, s + start_offset, start - start_offset)) return 0;
        if (!ollm__tk_vec_push(&t->out, a->id)) return 0;
        start_offset = stop;
    }
    if (start_offset < n && !piece(t, s + start_offset, n - start_offset)) return 0;
    return 1;
}
static int ollm__tk_normalized_piece(ollm_tokenizer *t, const char *s, size_t n) {
    return t->has_normalized_added ? ollm__tk_split_added(t, s, n, 1, ollm__tk_pieces) : ollm__tk_pieces(t, s, n);
}
static int ollm__tk_raw_piece(ollm_tokenizer *t, const char *s, size_t n) {
    size_t i;
    if (t->nfc) {
        for (i = 0; i < n && (unsigned char)s[i] < 0x80; i++) {}
        if (i < n) {   /* not all ASCII: normalise into t->norm (a copy: the recursion below does not reuse it) */
            ollm__tk_buf norm; int ok;
            if (!ollm__nfc(t, s, n)) return 0;
            norm = t->norm; t->norm.p = NULL; t->norm.n = t->norm.cap = 0;
            ok = ollm__tk_normalized_piece(t, norm.p, norm.n);
            if (!t->norm.p) t->norm = norm; else OLLM_FREE(norm.p);
            return ok;
        }
    }
    return ollm__tk_normalized_piece(t, s, n);
}

/* ---- loading tokenizer.json -------------------------------------------------------------------------------- */

static void ollm__tok_free(ollm_tokenizer *t) {
    if (!t) return;
    OLLM_FREE(t->dec_off); OLLM_FREE(t->dec_len); OLLM_FREE(t->enc_off); OLLM_FREE(t->enc_len); OLLM_FREE(t->bytes);
    OLLM_FREE(t->is_special); OLLM_FREE(t->vmap); OLLM_FREE(t->mkey); OLLM_FREE(t->mrank); OLLM_FREE(t->mnew);
    if (t->added) { int i; for (i = 0; i < t->n_added; i++) OLLM_FREE((void *)t->added[i].text); }
    OLLM_FREE(t->added); OLLM_FREE(t->ucls); OLLM_FREE(t->ckey); OLLM_FREE(t->cval);
    OLLM_FREE(t->cache_h); OLLM_FREE(t->cache_at); OLLM_FREE(t->cache_data);
    OLLM_FREE(t->bos_token); OLLM_FREE(t->chat_date);
    OLLM_FREE(t->out.v); OLLM_FREE(t->norm.p); OLLM_FREE(t->cps); OLLM_FREE(t->sym); OLLM_FREE(t->heap);
    OLLM_FREE(t);
}

/* The Split patterns we implement, exactly as tokenizer.json spells them. */
static const char ollm__tk_re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
static const char ollm__tk_re_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
static const char ollm__tk_re_o200k[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *ollm__tk_type(const ollm__json *j, uint32_t node) {
    const char *s = ollm__json_str(j, ollm__json_get(j, node, "type"));
    return s ? s : "(no type)";
}
static int ollm__tk_null(const ollm__json *j, uint32_t node) { return !node || j->v[node].type == OLLM__J_NULL; }
static int ollm__tk_true(const ollm__json *j, uint32_t obj, const char *key) {
    return ollm__json_is(j, ollm__json_get(j, obj, key), OLLM__J_TRUE);
}

static ollm_result ollm__tk_normalizer(ollm_tokenizer *t, const ollm__json *j, uint32_t nz, const char *path,
                                       ollm__log *lg) {
    const char *type;
    if (ollm__tk_null(j, nz)) return OLLM_OK;
    type = ollm__tk_type(j, nz);
    if (strcmp(type, "NFC") == 0) { t->nfc = 1; return OLLM_OK; }
    if (strcmp(type, "Sequence") == 0) {
        uint32_t c;
        for (c = ollm__json_first(j, ollm__json_get(j, nz, "normalizers")); c; c = ollm__json_next(j, c))
            OLLM__TRY(ollm__tk_normalizer(t, j, c, path, lg));
        return OLLM_OK;
    }
    return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported (only NFC)", path, type);
}
static ollm_result ollm__tk_pretokenizer(ollm_tokenizer *t, const ollm__json *j, uint32_t pt, const char *path,
                                         ollm__log *lg) {
    uint32_t items[2] = { 0, 0 }, c, pat; int n = 0;
    const char *re, *beh;
    if (ollm__tk_null(j, pt))
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: no pre_tokenizer; only byte-level BPE (Split + ByteLevel) is "
                          "supported", path);
    if (strcmp(ollm__tk_type(j, pt), "Sequence") == 0) {
        for (c = ollm__json_first(j, ollm__json_get(j, pt, "pretokenizers")); c; c = ollm__json_next(j, c)) {
            if (n == 2) { n = 3; break; }
            items[n++] = c;
        }
    } else items[n++] = pt;
    if (n != 2 || strcmp(ollm__tk_type(j, items[0]), "Split") != 0 || strcmp(ollm__tk_type(j, items[1]), "ByteLevel") != 0)
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: pre_tokenizer %s%s%s is not supported (only Sequence[Split, "
                          "ByteLevel] with the Llama-3, Qwen2 or o200k regex)", path, ollm__tk_type(j, pt),
                          n >= 1 ? " starting with " : "", n >= 1 ? ollm__tk_type(j, items[0]) : "");
    pat = ollm__json_get(j, items[0], "pattern");
    re = ollm__json_str(j, ollm__json_get(j, pat, "Regex"));
    beh = ollm__json_str(j, ollm__json_get(j, items[0], "behavior"));
    if (!re)
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: Split pre-tokenizer without a Regex pattern is not supported",
                          path);
    if (strcmp(re, ollm__tk_re_llama3) == 0) t->pretok = OLLM__PT_LLAMA3;
    else if (strcmp(re, ollm__tk_re_qwen2) == 0) t->pretok = OLLM__PT_QWEN2;
    else if (strcmp(re, ollm__tk_re_o200k) == 0) t->pretok = OLLM__PT_O200K;
    else return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: Split regex not supported (only Llama-3, Qwen2 and o200k): "
                           "%.200s", path, re);
    if (!beh || strcmp(beh, "Isolated") != 0 || ollm__tk_true(j, items[0], "invert"))
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: Split behavior %s%s is not supported (only Isolated)", path,
                          beh ? beh : "(none)", ollm__tk_true(j, items[0], "invert") ? " inverted" : "");
    if (ollm__tk_true(j, items[1], "add_prefix_space") || ollm__tk_true(j, items[1], "use_regex"))
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: ByteLevel pre-tokenizer with add_prefix_space or use_regex is "
                          "not supported", path);
    return OLLM_OK;
}
static ollm_result ollm__tk_post(ollm_tokenizer *t, const ollm__json *j, uint32_t pp, const char *path, ollm__log *lg) {
    const char *type; uint32_t c;
    if (ollm__tk_null(j, pp)) return OLLM_OK;
    type = ollm__tk_type(j, pp);
    if (strcmp(type, "ByteLevel") == 0) return OLLM_OK;   /* offsets only */
    if (strcmp(type, "Sequence") == 0) {
        for (c = ollm__json_first(j, ollm__json_get(j, pp, "processors")); c; c = ollm__json_next(j, c))
            OLLM__TRY(ollm__tk_post(t, j, c, path, lg));
        return OLLM_OK;
    }
    if (strcmp(type, "TemplateProcessing") == 0) {
        int after = 0; uint32_t specials = ollm__json_get(j, pp, "special_tokens");
        for (c = ollm__json_first(j, ollm__json_get(j, pp, "single")); c; c = ollm__json_next(j, c)) {
            uint32_t st = ollm__json_get(j, c, "SpecialToken"), sq = ollm__json_get(j, c, "Sequence"), id;
            if (sq) {
                const char *name = ollm__json_str(j, ollm__json_get(j, sq, "id"));
                if (!name || strcmp(name, "A") != 0 || after)
                    return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: TemplateProcessing \"single\" must hold sequence A once",
                                      path);
                after = 1;
            } else if (st) {
                const char *name = ollm__json_str(j, ollm__json_get(j, st, "id"));
                uint32_t ids = ollm__json_get(j, ollm__json_get(j, specials, name ? name : ""), "ids");
                if (!ollm__json_is(j, ids, OLLM__J_ARR))
                    return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: TemplateProcessing names special token %s without ids",
                                      path, name ? name : "(none)");
                for (id = ollm__json_first(j, ids); id; id = ollm__json_next(j, id)) {
                    double v = j->v[id].num;
                    if (!ollm__json_is(j, id, OLLM__J_NUM) || v < 0 || v >= t->n_ids || v != (double)(int32_t)v)
                        return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: TemplateProcessing id of %s out of range", path,
                                          name ? name : "");
                    if ((after ? t->n_suffix : t->n_prefix) == 8)
                        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: TemplateProcessing adds more than 8 ids", path);
                    if (after) t->suffix[t->n_suffix++] = (int32_t)v; else t->prefix[t->n_prefix++] = (int32_t)v;
                }
            } else return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: TemplateProcessing item is neither SpecialToken nor "
                                     "Sequence", path);
        }
        return OLLM_OK;
    }
    return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: post_processor \"%s\" is not supported (only TemplateProcessing, "
                      "ByteLevel, Sequence)", path, type);
}
static ollm_result ollm__tk_decoder(const ollm__json *j, uint32_t d, const char *path, ollm__log *lg) {
    const char *type; uint32_t c;
    if (ollm__tk_null(j, d)) return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: no decoder (only ByteLevel)", path);
    type = ollm__tk_type(j, d);
    if (strcmp(type, "ByteLevel") == 0) return OLLM_OK;
    if (strcmp(type, "Sequence") == 0 && ollm__json_first(j, ollm__json_get(j, d, "decoders"))) {
        for (c = ollm__json_first(j, ollm__json_get(j, d, "decoders")); c; c = ollm__json_next(j, c))
            OLLM__TRY(ollm__tk_decoder(j, c, path, lg));
        return OLLM_OK;
    }
    return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: decoder \"%s\" is not supported (only ByteLevel)", path, type);
}

static int ollm__tk_id_of(const ollm__json *j, uint32_t node, int32_t *out) {
    double v;
    if (!ollm__json_is(j, node, OLLM__J_NUM)) return 0;
    v = j->v[node].num;
    if (v < 0 || v >= (double)(1 << 24) || v != (double)(int32_t)v) return 0;
    *out = (int32_t)v; return 1;
}
static int ollm__tk_added_cmp(const void *a, const void *b) {
    const ollm__tk_added *x = (const ollm__tk_added *)a, *y = (const ollm__tk_added *)b;
    unsigned char cx = (unsigned char)x->text[0], cy = (unsigned char)y->text[0];
    if (cx != cy) return cx < cy ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;   /* longest first: leftmost-longest */
    return x->id < y->id ? -1 : x->id > y->id;
}
static int ollm__tk_u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
/* stores a token's bytes into the arena; decoding rule of decoders/byte_level.rs: the byte table when every
   character is in it, else the UTF-8 text */
static void ollm__tk_store(ollm_tokenizer *t, int32_t id, const char *s, size_t len, int model) {
    long b = ollm__tk_unbyte(s, len, t->bytes + t->bytes_n);
    if (b < 0) { memcpy(t->bytes + t->bytes_n, s, len); b = (long)len; }
    else if (model) { t->enc_off[id] = (uint32_t)t->bytes_n; t->enc_len[id] = (uint32_t)b; }
    t->dec_off[id] = (uint32_t)t->bytes_n; t->dec_len[id] = (uint32_t)b;
    t->bytes_n += (size_t)b;
}

static ollm_result ollm__tk_build(ollm_tokenizer *t, const ollm__json *j, const char *path, ollm__log *lg) {
    uint32_t model = ollm__json_get(j, 1, "model"), vocab = ollm__json_get(j, model, "vocab");
    uint32_t merges = ollm__json_get(j, model, "merges"), added = ollm__json_get(j, 1, "added_tokens"), c;
    const char *type = ollm__json_str(j, ollm__json_get(j, model, "type")), *s;
    size_t total = 0, n_vocab = 0, n_merges = 0, cap, i; int32_t id, max_id = -1; char *tmp = NULL;
    if (!ollm__json_is(j, model, OLLM__J_OBJ))
        return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: no \"model\" object", path);
    if ((type && strcmp(type, "BPE") != 0) || (!type && !merges))
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: model type \"%s\" is not supported (only BPE)", path,
                          type ? type : "(none)");
    if (ollm__tk_true(j, model, "byte_fallback"))
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: BPE byte_fallback is not supported", path);
    if (!ollm__tk_null(j, ollm__json_get(j, model, "dropout")) && j->v[ollm__json_get(j, model, "dropout")].num != 0)
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", path);
    if (((s = ollm__json_str(j, ollm__json_get(j, model, "continuing_subword_prefix"))) != NULL && s[0]) ||
        ((s = ollm__json_str(j, ollm__json_get(j, model, "end_of_word_suffix"))) != NULL && s[0]))
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: BPE continuing_subword_prefix/end_of_word_suffix \"%s\" is not "
                          "supported", path, s);
    t->ignore_merges = ollm__tk_true(j, model, "ignore_merges");
    OLLM__TRY(ollm__tk_normalizer(t, j, ollm__json_get(j, 1, "normalizer"), path, lg));
    OLLM__TRY(ollm__tk_pretokenizer(t, j, ollm__json_get(j, 1, "pre_tokenizer"), path, lg));
    OLLM__TRY(ollm__tk_decoder(j, ollm__json_get(j, 1, "decoder"), path, lg));
    if (!ollm__json_is(j, vocab, OLLM__J_OBJ) || !ollm__json_is(j, merges, OLLM__J_ARR))
        return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: BPE model without a \"vocab\" object and a \"merges\" array", path);

    /* ids and sizes */
    for (c = ollm__json_first(j, vocab); c; c = ollm__json_next(j, c)) {
        if (!ollm__tk_id_of(j, c, &id))
            return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: vocab entry \"%.60s\" has no valid id", path, j->v[c].key);
        if (id > max_id) max_id = id;
        total += j->v[c].key_len; n_vocab++;
    }
    for (c = ollm__json_first(j, added); c; c = ollm__json_next(j, c)) {
        uint32_t content = ollm__json_get(j, c, "content");
        if (!ollm__tk_id_of(j, ollm__json_get(j, c, "id"), &id) || !ollm__json_is(j, content, OLLM__J_STR))
            return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: added_tokens entry without a valid id and content", path);
        if (id > max_id) max_id = id;
        total += j->v[content].len; t->n_added++;
    }
    if (max_id < 255) return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: vocabulary of %d tokens is too small for byte-level "
                                        "BPE", path, max_id + 1);
    /* real vocabularies are dense (Llama-3 lists its reserved ids, Qwen's added tokens follow its vocab): ids far past
       the number of entries are malformed, and would size the per-id tables from a few bytes of input */
    if ((size_t)max_id + 1 > 2 * (n_vocab + (size_t)t->n_added) + 1024)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: id %d with only %llu vocabulary and added entries", path, max_id,
                          (unsigned long long)(n_vocab + (size_t)t->n_added));
    t->n_ids = max_id + 1;
    t->dec_off = (uint32_t *)ollm__calloc((size_t)t->n_ids, 4); t->dec_len = (uint32_t *)ollm__calloc((size_t)t->n_ids, 4);
    t->enc_off = (uint32_t *)ollm__calloc((size_t)t->n_ids, 4); t->enc_len = (uint32_t *)ollm__calloc((size_t)t->n_ids, 4);
    t->is_special = (uint8_t *)ollm__calloc((size_t)t->n_ids, 1);
    t->bytes = (char *)OLLM_MALLOC(total + 1);
    for (cap = 1024; cap < n_vocab * 2; cap *= 2) {}
    t->vmap = (uint32_t *)ollm__calloc(cap, 4); t->vmap_mask = (uint32_t)cap - 1;
    t->added = (ollm__tk_added *)ollm__calloc((size_t)t->n_added + 1, sizeof *t->added);
    t->ucls = (uint8_t *)OLLM_MALLOC(65536);
    if (!t->dec_off || !t->dec_len || !t->enc_off || !t->enc_len || !t->is_special || !t->bytes || !t->vmap ||
        !t->added || !t->ucls)
        return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "%s: out of memory for the vocabulary", path);
    for (i = 0; i < (size_t)t->n_ids; i++) t->enc_len[i] = UINT32_MAX;   /* no model token (yet) */

    /* vocabulary: bytes of every token, and the map bytes -> id of those BPE can produce */
    for (c = ollm__json_first(j, vocab); c; c = ollm__json_next(j, c)) {
        uint32_t h;
        ollm__tk_id_of(j, c, &id);
        ollm__tk_store(t, id, j->v[c].key, j->v[c].key_len, 1);
        if (t->enc_len[id] == UINT32_MAX) continue;
        if (ollm__tk_vfind(t, t->bytes + t->enc_off[id], t->enc_len[id]) >= 0) continue;   /* duplicate id */
        for (h = (uint32_t)ollm__tk_hash(t->bytes + t->enc_off[id], t->enc_len[id]) & t->vmap_mask; t->vmap[h];
             h = (h + 1) & t->vmap_mask) {}
        t->vmap[h] = (uint32_t)id + 1;
    }
    for (i = 0; i < 256; i++) {
        char b = (char)i;
        if ((t->byte_id[i] = ollm__tk_vfind(t, &b, 1)) < 0)
            return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "%s: the vocabulary lacks byte 0x%02x (U+%04X): not a byte-level "
                              "BPE", path, (unsigned)i, (unsigned)ollm__tk_byte_cp((int)i));
    }

    /* merges: "a b" strings or ["a", "b"] pairs; rank = position; a later duplicate wins (HashMap insert) */
    for (c = ollm__json_first(j, merges); c; c = ollm__json_next(j, c)) n_merges++;
    for (cap = 1024; cap < n_merges * 2; cap *= 2) {}
    t->mkey = (uint64_t *)OLLM_MALLOC(cap * 8); t->mrank = (uint32_t *)OLLM_MALLOC(cap * 4);
    t->mnew = (int32_t *)OLLM_MALLOC(cap * 4); t->mmask = (uint32_t)cap - 1;
    tmp = (char *)OLLM_MALLOC(total + 8);
    if (!t->mkey || !t->mrank || !t->mnew || !tmp) { OLLM_FREE(tmp); return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "%s: out of memory", path); }
    memset(t->mkey, 0xff, cap * 8);
    for (i = 0, c = ollm__json_first(j, merges); c; c = ollm__json_next(j, c), i++) {
        const char *a = NULL, *b = NULL; size_t la = 0, lb = 0; long na, nb; int32_t ia, ib, inew; uint32_t slot;
        if (j->v[c].type == OLLM__J_STR) {
            const char *sp = (const char *)memchr(j->v[c].s, ' ', j->v[c].len);
            if (sp && !memchr(sp + 1, ' ', j->v[c].len - (size_t)(sp + 1 - j->v[c].s))) {
                a = j->v[c].s; la = (size_t)(sp - a); b = sp + 1; lb = j->v[c].len - la - 1;
            }
        } else if (j->v[c].type == OLLM__J_ARR && j->v[c].n == 2) {
            uint32_t x = ollm__json_first(j, c), y = ollm__json_next(j, x);
            if (j->v[x].type == OLLM__J_STR && j->v[y].type == OLLM__J_STR) {
                a = j->v[x].s; la = j->v[x].len; b = j->v[y].s; lb = j->v[y].len;
            }
        }
        if (!a) { OLLM_FREE(tmp); return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: merge %llu is neither \"a b\" nor [\"a\", \"b\"]", path, (unsigned long long)i); }
        na = la + lb <= total ? ollm__tk_unbyte(a, la, tmp) : -1;
        nb = na >= 0 ? ollm__tk_unbyte(b, lb, tmp + na) : -1;
        ia = na >= 0 ? ollm__tk_vfind(t, tmp, (size_t)na) : -1;
        ib = nb >= 0 ? ollm__tk_vfind(t, tmp + na, (size_t)nb) : -1;
        inew = ia >= 0 && ib >= 0 ? ollm__tk_vfind(t, tmp, (size_t)(na + nb)) : -1;
        if (inew < 0) {
            OLLM_FREE(tmp);
            return ollm__fail(lg, OLLM_ERR_FORMAT, "%s: merge %llu (\"%.*s\" \"%.*s\"): %s not in the vocabulary", path,
                              (unsigned long long)i, (int)(la > 40 ? 40 : la), a, (int)(lb > 40 ? 40 : lb), b,
                              ia < 0 || ib < 0 ? "a part is" : "the merged token is");
        }
        slot = ollm__tk_mslot(t, (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib);
        t->mkey[slot] = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib; t->mrank[slot] = (uint32_t)i; t->mnew[slot] = inew;
    }
    OLLM_FREE(tmp);

    /* added tokens: their text decodes (and wins over a model token of the same id) */
    i = 0;
    for (c = ollm__json_first(j, added); c; c = ollm__json_next(j, c)) {
        uint32_t content = ollm__json_get(j, c, "content"), nz = ollm__json_get(j, c, "normalized");
        ollm__tk_added *a = &t->added[i];
        ollm__tk_id_of(j, ollm__json_get(j, c, "id"), &a->id);
        a->special = (uint8_t)ollm__tk_true(j, c, "special");
        a->lstrip = (uint8_t)ollm__tk_true(j, c, "lstrip"); a->rstrip = (uint8_t)ollm__tk_true(j, c, "rstrip");
        a->single_word = (uint8_t)ollm__tk_true(j, c, "single_word");
        a->normalized = (uint8_t)(nz ? ollm__json_is(j, nz, OLLM__J_TRUE) : !a->special);   /* AddedToken default */
        ollm__tk_store(t, a->id, j->v[content].s, j->v[content].len, 0);
        t->is_special[a->id] = a->special;
        if (!j->v[content].len) continue;   /* never matches */
        a->len = j->v[content].len;
        a->text = (const char *)OLLM_MALLOC(a->len + 1);
        if (!a->text) return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "%s: out of memory", path);
        memcpy((char *)a->text, j->v[content].s, a->len + 1);
        t->has_normalized_added |= a->normalized;
        i++;
    }
    t->n_added = (int)i;
    OLLM__TRY(ollm__tk_post(t, j, ollm__json_get(j, 1, "post_processor"), path, lg));

    /* the BMP class table */
    for (i = 0; i < sizeof ollm__ucat / sizeof ollm__ucat[0]; i++) {
        uint32_t a = ollm__ucat[i] >> 4, b = i + 1 < sizeof ollm__ucat / sizeof ollm__ucat[0] ? ollm__ucat[i + 1] >> 4 : 0x110000u;
        if (a >= 0x10000) break;
        if (b > 0x10000) b = 0x10000;
        memset(t->ucls + a, (int)(ollm__ucat[i] & 15), b - a);
    }
    if (t->nfc) {   /* composition pairs: two-character decompositions not excluded from composition */
        size_t n = 0, k, nd = sizeof ollm__udec / sizeof ollm__udec[0] / 3;
        uint64_t *pairs = (uint64_t *)OLLM_MALLOC(nd * 8);
        t->ckey = (uint64_t *)OLLM_MALLOC(nd * 8); t->cval = (uint32_t *)OLLM_MALLOC(nd * 4);
        if (!pairs || !t->ckey || !t->cval) { OLLM_FREE(pairs); return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "%s: out of memory", path); }
        for (k = 0; k < nd; k++) {
            uint32_t second = ollm__udec[k * 3 + 2];
            if ((second & 0x1fffffu) && !(second >> 21))
                pairs[n++] = ((uint64_t)ollm__udec[k * 3 + 1] << 21 | (second & 0x1fffffu)) << 21 | ollm__udec[k * 3];
        }
        qsort(pairs, n, 8, ollm__tk_u64_cmp);
        for (k = 0; k < n; k++) { t->ckey[k] = pairs[k] >> 21; t->cval[k] = (uint32_t)(pairs[k] & 0x1fffffu); }
        t->n_comp = (uint32_t)n;
        OLLM_FREE(pairs);
        for (k = 0; k < (size_t)t->n_added; k++) {   /* normalized added tokens match the normalised text */
            ollm__tk_added *a = &t->added[k]; char *p;
            if (!a->normalized) continue;
            if (!ollm__nfc(t, a->text, a->len) || !(p = (char *)OLLM_MALLOC(t->norm.n + 1)))
                return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "%s: out of memory", path);
            memcpy(p, t->norm.p, t->norm.n + 1);
            OLLM_FREE((void *)a->text); a->text = p; a->len = (uint32_t)t->norm.n;
            if (!a->len) a->normalized = 2;   /* empty after normalisation: never matches */
        }
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, ollm__tk_added_cmp);
    {
        int k, b = 0;
        for (k = 0; k <= t->n_added; k++) {
            int first = k < t->n_added ? (unsigned char)t->added[k].text[0] : 256;
            while (b <= first) t->bucket[b++] = k;
        }
        while (b <= 256) t->bucket[b++] = t->n_added;
    }
    t->cache_h = (uint64_t *)ollm__calloc(OLLM__TK_CACHE_SLOTS, 8);
    t->cache_at = (uint32_t *)ollm__calloc(OLLM__TK_CACHE_SLOTS, 4);
    t->cache_data = (char *)OLLM_MALLOC(OLLM__TK_CACHE_BYTES);
    if (!t->cache_h || !t->cache_at || !t->cache_data) {   /* the cache is only an optimisation */
        OLLM_FREE(t->cache_h); OLLM_FREE(t->cache_at); OLLM_FREE(t->cache_data);
        t->cache_h = NULL; t->cache_at = NULL; t->cache_data = NULL;
    }
    return OLLM_OK;
}

/* ---- chat formats -------------------------------------------------------------------------------------------
   The official templates are Jinja programs; rather than embed a template engine, the three families' templates are
   recognised by their text and rendered by the code below, which follows them line by line (no tools):
   - Llama-3 (Meta-Llama-3-8B-Instruct): bos, then per message <|start_header_id|>role<|end_header_id|>\n\n
     content|trim <|eot_id|>. Llama-3.1/3.2/3.3: a system message always comes first, "Cutting Knowledge Date:
     December 2023\nToday Date: {date}\n\n" + the trimmed system prompt (date: "26 Jul 2024" in 3.1/3.3,
     strftime_now("%d %b %Y") in 3.2).
   - GPT-OSS harmony (openai/gpt-oss chat_template.jinja): the system message (identity, knowledge cutoff, current
     date, reasoning effort, valid channels), a user system prompt as a developer message "# Instructions",
     assistant history as final-channel messages (analysis dropped), generation prompt <|start|>assistant.
   - Qwen3 ChatML (Qwen/Qwen3-*): <|im_start|>role\n...<|im_end|>\n; assistant turns after the last user query keep
     their <think> block, earlier ones lose it; enable_thinking=false appends <think>\n\n</think>\n\n. */

static ollm_result ollm__tk_chat_load(ollm_tokenizer *t, const char *dir, ollm__log *lg) {
    char path[4096], *cfg = NULL, *jinja = NULL, *tpl = NULL; size_t len; ollm__json j; ollm_result r = OLLM_OK;
    const char *bos = NULL;
    memset(&j, 0, sizeof j);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (ollm__read_file(path, 64u << 20, &cfg, &len) == OLLM_OK) {
        uint32_t ct, b;
        if (!ollm__json_parse(&j, cfg, len)) {
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: %s", path, j.err);
            goto done;
        }
        ct = ollm__json_get(&j, 1, "chat_template");
        if (ollm__json_is(&j, ct, OLLM__J_STR)) tpl = ollm__strdup(j.v[ct].s);
        else if (ollm__json_is(&j, ct, OLLM__J_ARR)) {   /* [{"name": "default", "template": ...}, ...] */
            uint32_t c, pick = 0;
            for (c = ollm__json_first(&j, ct); c; c = ollm__json_next(&j, c)) {
                const char *name = ollm__json_str(&j, ollm__json_get(&j, c, "name"));
                if (!pick || (name && strcmp(name, "default") == 0)) pick = c;
            }
            if (ollm__json_str(&j, ollm__json_get(&j, pick, "template")))
                tpl = ollm__strdup(ollm__json_str(&j, ollm__json_get(&j, pick, "template")));
        }
        b = ollm__json_get(&j, 1, "bos_token");
        bos = ollm__json_is(&j, b, OLLM__J_OBJ) ? ollm__json_str(&j, ollm__json_get(&j, b, "content")) : ollm__json_str(&j, b);
        if (bos && !(t->bos_token = ollm__strdup(bos))) { r = ollm__fail(lg, OLLM_ERR_NO_MEMORY, "out of memory"); goto done; }
    }
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    if (ollm__read_file(path, 16u << 20, &jinja, &len) == OLLM_OK) { OLLM_FREE(tpl); tpl = jinja; jinja = NULL; }
    if (tpl) {
        if (strstr(tpl, "<|start_header_id|>") && strstr(tpl, "<|end_header_id|>") && strstr(tpl, "<|eot_id|>")) {
            if (strstr(tpl, "Cutting Knowledge Date:")) {
                const char *d = strstr(tpl, "set date_string = \""), *e;
                t->chat = OLLM__CHAT_LLAMA31;
                t->chat_strftime = strstr(tpl, "strftime_now") != NULL;
                if (d && (e = strchr(d + 19, '"')) != NULL && e - d - 19 < 64) {
                    t->chat_date = (char *)ollm__calloc((size_t)(e - d - 19) + 1, 1);
                    if (t->chat_date) memcpy(t->chat_date, d + 19, (size_t)(e - d - 19));
                } else t->chat_date = ollm__strdup("26 Jul 2024");
            } else {
                t->chat = OLLM__CHAT_LLAMA3;
                t->chat_bos = strstr(tpl, "bos_token") != NULL;
            }
        } else if (strstr(tpl, "<|start|>") && strstr(tpl, "<|channel|>") && strstr(tpl, "<|message|>") &&
                   strstr(tpl, "Valid channels")) {
            t->chat = OLLM__CHAT_HARMONY;
        } else if (strstr(tpl, "<|im_start|>") && strstr(tpl, "<|im_end|>") && strstr(tpl, "last_query_index")) {
            t->chat = OLLM__CHAT_QWEN3;
            t->chat_thinking = strstr(tpl, "enable_thinking") != NULL;
        } else t->chat = OLLM__CHAT_UNKNOWN;
    } else {   /* no template: the vocabulary's control tokens say which family's official format applies */
        if (ollm_token_id(t, "<|start|>") >= 0 && ollm_token_id(t, "<|channel|>") >= 0 && ollm_token_id(t, "<|message|>") >= 0)
            t->chat = OLLM__CHAT_HARMONY;
        else if (ollm_token_id(t, "<|start_header_id|>") >= 0 && ollm_token_id(t, "<|eot_id|>") >= 0) {
            t->chat = OLLM__CHAT_LLAMA31; t->chat_date = ollm__strdup("26 Jul 2024");
        } else if (ollm_token_id(t, "<|im_start|>") >= 0 && ollm_token_id(t, "<think>") >= 0) {
            t->chat = OLLM__CHAT_QWEN3; t->chat_thinking = 1;
        }
        if (t->chat != OLLM__CHAT_NONE)
            ollm__logf(lg, OLLM_LOG_INFO, "%s: no chat template; using the %s format its special tokens imply", dir,
                       ollm_tokenizer_chat_format(t));
    }
    if (!t->bos_token && t->chat == OLLM__CHAT_LLAMA31) t->bos_token = ollm__strdup("<|begin_of_text|>");
    if ((t->chat == OLLM__CHAT_LLAMA31 && (!t->chat_date || !t->bos_token)))
        r = ollm__fail(lg, OLLM_ERR_NO_MEMORY, "out of memory");
done:
    ollm__json_free(&j); OLLM_FREE(cfg); OLLM_FREE(tpl); OLLM_FREE(jinja);
    return r;
}

static void ollm__tk_today(char *buf, size_t cap, const char *fmt) {   /* transformers' strftime_now: local time */
    time_t now = time(NULL); struct tm tmv;
    if (!localtime_r(&now, &tmv) || !strftime(buf, cap, fmt, &tmv)) snprintf(buf, cap, "?");
}
static const char *ollm__tk_str(const char *s) { return s ? s : ""; }
/* Python's str.strip() (jinja `trim`): [*b, *e) shrinks past whitespace at both ends */
static void ollm__tk_trim(const char **b, const char **e) {
    uint32_t cp; int l;
    while (*b < *e && (l = ollm__utf8_len((const unsigned char *)*b, (size_t)(*e - *b), &cp)) && ollm__py_space(cp)) *b += l;
    while (*e > *b) {
        const char *p = *e - 1;
        while (p > *b && ((unsigned char)*p & 0xc0) == 0x80) p--;
        if (!(l = ollm__utf8_len((const unsigned char *)p, (size_t)(*e - p), &cp)) || p + l != *e || !ollm__py_space(cp)) break;
        *e = p;
    }
}
static int ollm__tk_add_trim(ollm__tk_buf *b, const char *s) {
    const char *e = s + strlen(s);
    ollm__tk_trim(&s, &e);
    return ollm__tk_buf_add(b, s, (size_t)(e - s));
}
static int ollm__tk_add_range(ollm__tk_buf *b, const char *s, const char *e) { return ollm__tk_buf_add(b, s, (size_t)(e - s)); }
static const char *ollm__tk_rfind(const char *s, const char *e, const char *needle) {   /* last occurrence in [s, e) */
    size_t n = strlen(needle); const char *p = e - n;
    if ((size_t)(e - s) < n) return NULL;
    for (; p >= s; p--) if (memcmp(p, needle, n) == 0) return p;
    return NULL;
}
static int ollm__tk_is(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

static ollm_result ollm__tk_render(ollm_tokenizer *t, const ollm_chat_message *m, size_t n, const ollm_chat_options *o,
                                   ollm__tk_buf *b) {
    int gen = !o->no_generation_prompt, ok = 1; size_t i; char date[64];
    if (t->chat == OLLM__CHAT_NONE)
        return ollm__fail(&t->log, OLLM_ERR_UNSUPPORTED, "the directory has no chat template: pass a raw prompt");
    if (t->chat == OLLM__CHAT_UNKNOWN)
        return ollm__fail(&t->log, OLLM_ERR_UNSUPPORTED, "unrecognised chat template (known: Llama-3, Llama-3.1/3.2, "
                          "GPT-OSS harmony, Qwen3): pass a raw prompt");
    for (i = 0; i < n; i++)
        if (!m[i].role || !m[i].content)
            return ollm__fail(&t->log, OLLM_ERR_INVALID_ARG, "chat message %llu has no role or content", (unsigned long long)i);
    if (n == 0 && t->chat != OLLM__CHAT_LLAMA3)   /* the template reads messages[0] */
        return ollm__fail(&t->log, OLLM_ERR_INVALID_ARG, "chat: no messages");
    switch (t->chat) {
    case OLLM__CHAT_LLAMA3:
        for (i = 0; i < n; i++) {
            if (i == 0 && t->chat_bos) ok &= ollm__tk_buf_str(b, ollm__tk_str(t->bos_token));
            ok &= ollm__tk_buf_str(b, "<|start_header_id|>") && ollm__tk_buf_str(b, m[i].role) &&
                  ollm__tk_buf_str(b, "<|end_header_id|>\n\n") && ollm__tk_add_trim(b, m[i].content) &&
                  ollm__tk_buf_str(b, "<|eot_id|>");
        }
        if (gen) ok &= ollm__tk_buf_str(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case OLLM__CHAT_LLAMA31: {
        size_t first = ollm__tk_is(m[0].role, "system");
        if (o->date) snprintf(date, sizeof date, "%s", o->date);
        else if (t->chat_strftime) ollm__tk_today(date, sizeof date, "%d %b %Y");
        else snprintf(date, sizeof date, "%s", t->chat_date);
        ok &= ollm__tk_buf_str(b, ollm__tk_str(t->bos_token)) &&
              ollm__tk_buf_str(b, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                                  "Today Date: ") && ollm__tk_buf_str(b, date) && ollm__tk_buf_str(b, "\n\n");
        if (first) ok &= ollm__tk_add_trim(b, m[0].content);
        ok &= ollm__tk_buf_str(b, "<|eot_id|>");
        for (i = first; i < n; i++) {
            if (ollm__tk_is(m[i].role, "tool") || ollm__tk_is(m[i].role, "ipython"))
                return ollm__fail(&t->log, OLLM_ERR_UNSUPPORTED, "chat: role \"%s\" (tool results) is not supported",
                                  m[i].role);
            ok &= ollm__tk_buf_str(b, "<|start_header_id|>") && ollm__tk_buf_str(b, m[i].role) &&
                  ollm__tk_buf_str(b, "<|end_header_id|>\n\n") && ollm__tk_add_trim(b, m[i].content) &&
                  ollm__tk_buf_str(b, "<|eot_id|>");
        }
        if (gen) ok &= ollm__tk_buf_str(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    }
    case OLLM__CHAT_HARMONY: {
        size_t first = ollm__tk_is(m[0].role, "system") || ollm__tk_is(m[0].role, "developer");
        if (o->date) snprintf(date, sizeof date, "%s", o->date);
        else ollm__tk_today(date, sizeof date, "%Y-%m-%d");
        ok &= ollm__tk_buf_str(b, "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
                                  "Knowledge cutoff: 2024-06\nCurrent date: ") && ollm__tk_buf_str(b, date) &&
              ollm__tk_buf_str(b, "\n\nReasoning: ") &&
              ollm__tk_buf_str(b, o->reasoning_effort ? o->reasoning_effort : "medium") &&
              ollm__tk_buf_str(b, "\n\n# Valid channels: analysis, commentary, final. Channel must be included for "
                                  "every message.<|end|>");
        if (first && m[0].content[0])
            ok &= ollm__tk_buf_str(b, "<|start|>developer<|message|># Instructions\n\n") &&
                  ollm__tk_buf_str(b, m[0].content) && ollm__tk_buf_str(b, "\n\n<|end|>");
        for (i = first; i < n; i++) {
            if (ollm__tk_is(m[i].role, "assistant")) {
                if (strstr(m[i].content, "<|channel|>analysis<|message|>") || strstr(m[i].content, "<|channel|>final<|message|>"))
                    return ollm__fail(&t->log, OLLM_ERR_INVALID_ARG, "chat: assistant message %llu contains <|channel|> "
                                      "tags; pass only the final text", (unsigned long long)i);
                ok &= ollm__tk_buf_str(b, "<|start|>assistant<|channel|>final<|message|>") &&
                      ollm__tk_buf_str(b, m[i].content) &&
                      ollm__tk_buf_str(b, i + 1 == n && !gen ? "<|return|>" : "<|end|>");
            } else if (ollm__tk_is(m[i].role, "user")) {
                ok &= ollm__tk_buf_str(b, "<|start|>user<|message|>") && ollm__tk_buf_str(b, m[i].content) &&
                      ollm__tk_buf_str(b, "<|end|>");
            } else if (ollm__tk_is(m[i].role, "tool"))
                return ollm__fail(&t->log, OLLM_ERR_UNSUPPORTED, "chat: tool messages are not supported");
        }
        if (gen) ok &= ollm__tk_buf_str(b, "<|start|>assistant");
        break;
    }
    case OLLM__CHAT_QWEN3: {
        size_t lqi = n - 1; int multi = 1;
        if (ollm__tk_is(m[0].role, "system"))
            ok &= ollm__tk_buf_str(b, "<|im_start|>system\n") && ollm__tk_buf_str(b, m[0].content) &&
                  ollm__tk_buf_str(b, "<|im_end|>\n");
        for (i = n; i-- > 0;) {   /* the last user turn that is not a tool response */
            const char *c = m[i].content; size_t l = strlen(c);
            if (multi && ollm__tk_is(m[i].role, "user") &&
                !(strncmp(c, "<tool_response>", 15) == 0 && l >= 16 && strcmp(c + l - 16, "</tool_response>") == 0)) {
                multi = 0; lqi = i;
            }
        }
        for (i = 0; i < n; i++) {
            const char *c = m[i].content, *ce = c + strlen(c);
            if (ollm__tk_is(m[i].role, "user") || (ollm__tk_is(m[i].role, "system") && i > 0)) {
                ok &= ollm__tk_buf_str(b, "<|im_start|>") && ollm__tk_buf_str(b, m[i].role) && ollm__tk_buf_str(b, "\n") &&
                      ollm__tk_buf_str(b, c) && ollm__tk_buf_str(b, "<|im_end|>\n");
            } else if (ollm__tk_is(m[i].role, "assistant")) {
                const char *cb = c, *rb = c, *re = c, *endt = strstr(c, "</think>");
                if (endt) {   /* content = split('</think>')[-1].lstrip('\n'); reasoning: before the first </think>,
                                 rstrip('\n'), after the last <think>, lstrip('\n') */
                    const char *st;
                    cb = ollm__tk_rfind(c, ce, "</think>") + 8;
                    while (cb < ce && *cb == '\n') cb++;
                    re = endt;
                    while (re > c && re[-1] == '\n') re--;
                    st = ollm__tk_rfind(c, re, "<think>");
                    rb = st ? st + 7 : c;
                    while (rb < re && *rb == '\n') rb++;
                }
                if (i > lqi && (i + 1 == n || re > rb)) {
                    while (rb < re && *rb == '\n') rb++;
                    while (re > rb && re[-1] == '\n') re--;
                    while (cb < ce && *cb == '\n') cb++;
                    ok &= ollm__tk_buf_str(b, "<|im_start|>assistant\n<think>\n") && ollm__tk_add_range(b, rb, re) &&
                          ollm__tk_buf_str(b, "\n</think>\n\n") && ollm__tk_add_range(b, cb, ce);
                } else ok &= ollm__tk_buf_str(b, "<|im_start|>assistant\n") && ollm__tk_add_range(b, cb, ce);
                ok &= ollm__tk_buf_str(b, "<|im_end|>\n");
            } else if (ollm__tk_is(m[i].role, "tool")) {
                if (i == 0 || !ollm__tk_is(m[i - 1].role, "tool")) ok &= ollm__tk_buf_str(b, "<|im_start|>user");
                ok &= ollm__tk_buf_str(b, "\n<tool_response>\n") && ollm__tk_buf_str(b, c) &&
                      ollm__tk_buf_str(b, "\n</tool_response>");
                if (i + 1 == n || !ollm__tk_is(m[i + 1].role, "tool")) ok &= ollm__tk_buf_str(b, "<|im_end|>\n");
            }
        }
        if (gen) {
            ok &= ollm__tk_buf_str(b, "<|im_start|>assistant\n");
            if (o->thinking < 0 && t->chat_thinking) ok &= ollm__tk_buf_str(b, "<think>\n\n</think>\n\n");
        }
        break;
    }
    default: break;
    }
    return ok ? OLLM_OK : ollm__fail(&t->log, OLLM_ERR_NO_MEMORY, "chat: out of memory");
}

/* ---- public API ------------------------------------------------------------------------------------------- */

static ollm_result ollm__tok_load(const char *dir, ollm__log *lg, ollm_tokenizer **out) {
    char path[4096], *text = NULL; size_t len; ollm__json j; ollm_tokenizer *t; ollm_result r; struct stat st;
    *out = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) return OLLM_OK;
        return ollm__fail(lg, OLLM_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if ((r = ollm__read_file(path, 1u << 30, &text, &len)) != OLLM_OK)
        return ollm__fail(lg, r, "%s: cannot read (%s)", path, r == OLLM_ERR_IO ? strerror(errno) : "too large");
    if (!ollm__json_parse(&j, text, len)) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "%s: %s", path, j.err);
        ollm__json_free(&j); OLLM_FREE(text);
        return r;
    }
    t = (ollm_tokenizer *)ollm__calloc(1, sizeof *t);
    if (!t) r = ollm__fail(lg, OLLM_ERR_NO_MEMORY, "%s: out of memory", path);
    else {
        t->log.fn = lg->fn; t->log.user = lg->user;
        r = ollm__tk_build(t, &j, path, lg);
    }
    ollm__json_free(&j); OLLM_FREE(text);
    if (r == OLLM_OK) r = ollm__tk_chat_load(t, dir, lg);
    if (r != OLLM_OK) { ollm__tok_free(t); return r; }
    ollm__logf(lg, OLLM_LOG_INFO, "%s: byte-level BPE, %d ids, %d added tokens, %s pre-tokenizer%s, chat format %s", path,
               t->n_ids, t->n_added, t->pretok == OLLM__PT_O200K ? "o200k" : t->pretok == OLLM__PT_QWEN2 ? "Qwen2" : "Llama-3",
               t->nfc ? ", NFC" : "", ollm_tokenizer_chat_format(t));
    *out = t;
    return OLLM_OK;
}

/* Appends the bytes of token id to out (at most cap); returns the count. skip_special: control tokens give none. */
static size_t ollm__tok_bytes(const ollm_tokenizer *t, int32_t id, int skip_special, char *out, size_t cap) {
    size_t n;
    if (!t || id < 0 || id >= t->n_ids || (skip_special && t->is_special[id])) return 0;
    n = t->dec_len[id] < cap ? t->dec_len[id] : cap;
    memcpy(out, t->bytes + t->dec_off[id], n);
    return n;
}

OLLM_API ollm_result ollm_tokenizer_open(const char *dir, ollm_tokenizer **out) {
    ollm_tokenizer *holder; ollm_result r;
    *out = NULL;
    holder = (ollm_tokenizer *)ollm__calloc(1, sizeof *holder);   /* holds the message when opening fails */
    if (!holder) return OLLM_ERR_NO_MEMORY;
    if (!dir) { *out = holder; return ollm__fail(&holder->log, OLLM_ERR_INVALID_ARG, "tokenizer: no directory"); }
    r = ollm__tok_load(dir, &holder->log, out);
    if (r == OLLM_OK && !*out)
        r = ollm__fail(&holder->log, OLLM_ERR_IO, "%s: no tokenizer.json in the directory", dir);
    if (r != OLLM_OK) { *out = holder; return r; }
    OLLM_FREE(holder);
    return OLLM_OK;
}
OLLM_API void ollm_tokenizer_close(ollm_tokenizer *t) { ollm__tok_free(t); }
OLLM_API const char *ollm_tokenizer_last_error(const ollm_tokenizer *t) { return t ? t->log.err : "out of memory"; }
OLLM_API const char *ollm_tokenizer_chat_format(const ollm_tokenizer *t) {
    static const char *const names[] = { "none", "unknown", "llama3", "llama3.1", "harmony", "qwen3" };
    return t ? names[t->chat] : "none";
}

OLLM_API ollm_result ollm_tokenize(ollm_tokenizer *t, const char *text, size_t len, unsigned flags, int32_t *ids,
                                   size_t cap, size_t *n_ids) {
    int ok = 1, k;
    if (n_ids) *n_ids = 0;
    if (!t || !n_ids || (!text && len) || (!ids && cap))
        return t ? ollm__fail(&t->log, OLLM_ERR_INVALID_ARG, "tokenize: NULL argument") : OLLM_ERR_INVALID_ARG;
    if (!t->n_ids) return ollm__fail(&t->log, OLLM_ERR_INVALID_ARG, "tokenize: the tokenizer did not open");
    t->out.n = 0;
    t->parse_special = (flags & OLLM_TOKENIZE_PARSE_SPECIAL) != 0;
    if (flags & OLLM_TOKENIZE_ADD_SPECIAL) for (k = 0; k < t->n_prefix; k++) ok &= ollm__tk_vec_push(&t->out, t->prefix[k]);
    if (ok && len) ok = ollm__tk_split_added(t, text, len, 0, ollm__tk_raw_piece);
    if (flags & OLLM_TOKENIZE_ADD_SPECIAL) for (k = 0; k < t->n_suffix; k++) ok &= ollm__tk_vec_push(&t->out, t->suffix[k]);
    if (!ok) return ollm__fail(&t->log, OLLM_ERR_NO_MEMORY, "tokenize: out of memory (%llu bytes of text)",
                               (unsigned long long)len);
    *n_ids = t->out.n;
    if (cap) memcpy(ids, t->out.v, (t->out.n < cap ? t->out.n : cap) * sizeof *ids);
    return OLLM_OK;
}
OLLM_API ollm_result ollm_detokenize(ollm_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, char *out,
                                     size_t cap, size_t *len) {
    size_t i, total = 0;
    if (len) *len = 0;
    if (!t || !len || (!ids && n) || (!out && cap))
        return t ? ollm__fail(&t->log, OLLM_ERR_INVALID_ARG, "detokenize: NULL argument") : OLLM_ERR_INVALID_ARG;
    for (i = 0; i < n; i++) {
        uint32_t l;
        if (ids[i] < 0 || ids[i] >= t->n_ids)
            return ollm__fail(&t->log, OLLM_ERR_INVALID_ARG, "detokenize: id %d at index %llu is outside the vocabulary "
                              "(%d ids)", ids[i], (unsigned long long)i, t->n_ids);
        if ((flags & OLLM_DETOKENIZE_SKIP_SPECIAL) && t->is_special[ids[i]]) continue;
        l = t->dec_len[ids[i]];
        if (total < cap) memcpy(out + total, t->bytes + t->dec_off[ids[i]], cap - total < l ? cap - total : l);
        total += l;
    }
    *len = total;
    return OLLM_OK;
}
OLLM_API int32_t ollm_token_id(const ollm_tokenizer *t, const char *token_text) {
    size_t n; int k; char buf[1024]; long b;
    if (!t || !token_text || !t->n_ids) return -1;
    n = strlen(token_text);
    for (k = 0; k < t->n_added; k++)
        if (t->added[k].len == n && memcmp(t->added[k].text, token_text, n) == 0) return t->added[k].id;
    if (n > sizeof buf || (b = ollm__tk_unbyte(token_text, n, buf)) <= 0) return -1;   /* the vocabulary's spelling */
    return ollm__tk_vfind(t, buf, (size_t)b);
}
OLLM_API ollm_result ollm_chat_render(ollm_tokenizer *t, const ollm_chat_message *msgs, size_t n,
                                      const ollm_chat_options *opt, char *out, size_t cap, size_t *len) {
    ollm__tk_buf b; ollm_chat_options def; ollm_result r;
    if (len) *len = 0;
    if (!t || !len || (!msgs && n) || (!out && cap))
        return t ? ollm__fail(&t->log, OLLM_ERR_INVALID_ARG, "chat: NULL argument") : OLLM_ERR_INVALID_ARG;
    memset(&def, 0, sizeof def);
    memset(&b, 0, sizeof b);
    r = ollm__tk_render(t, msgs, n, opt ? opt : &def, &b);
    if (r == OLLM_OK) {
        *len = b.n;
        if (cap) { size_t k = b.n < cap ? b.n : cap; memcpy(out, b.p, k); if (k < cap) out[k] = 0; }
    }
    OLLM_FREE(b.p);
    return r;
}

/* ==== @cuda ==== Driver API and NVRTC loaded at run time; kernels from kernels.cu.inc =====================
   libcuda.so.1 and NVRTC are dlopen'ed, so building needs no CUDA toolkit and no -lcuda. The few prototypes used are
   declared here with our own prefixed types (versioned symbols as cuda.h of CUDA 12.x and 13.0 maps them; no
   cuCtxCreate: the primary context). NVRTC compiles kernels.cu.inc for the device's exact sm_XY into a CUBIN, which
   is cached on disk under a key of everything that went into the compile. All device memory comes from one
   accounted allocator with a hard budget. Every op is asynchronous on one stream; download and sync wait. */

#if defined(__GNUC__)
#  define OLLM__TLS __thread
#else
#  define OLLM__TLS
#endif

typedef int ollm__cu_result;                 /* CUresult: 0 = CUDA_SUCCESS */
typedef int ollm__cu_device;
typedef struct ollm__cu_ctx_st *ollm__cu_context;
typedef struct ollm__cu_mod_st *ollm__cu_module;
typedef struct ollm__cu_func_st *ollm__cu_function;
typedef struct ollm__cu_stream_st *ollm__cu_stream;
typedef struct ollm__cu_event_st *ollm__cu_event;
typedef unsigned long long ollm__cu_ptr;     /* CUdeviceptr (64-bit) */

enum {   /* the CUDA enum values used here (cuda.h) */
    OLLM__CU_ATTR_MULTIPROCESSOR_COUNT = 16, OLLM__CU_ATTR_CC_MAJOR = 75, OLLM__CU_ATTR_CC_MINOR = 76,
    OLLM__CU_ATTR_SMEM_OPTIN = 97, OLLM__CU_FUNC_MAX_DYNAMIC_SMEM = 8, OLLM__CU_STREAM_NON_BLOCKING = 1,
    OLLM__CU_ERROR_OUT_OF_MEMORY = 2
};

/* The Driver API table: field, symbol (what cuda.h maps the name to in 12.x and 13.0), arguments. */
#define OLLM__CU_FUNCS(X) \
    X(cuInit,                    "cuInit",                       (unsigned flags)) \
    X(cuDriverGetVersion,        "cuDriverGetVersion",           (int *version)) \
    X(cuGetErrorName,            "cuGetErrorName",               (ollm__cu_result e, const char **name)) \
    X(cuDeviceGetCount,          "cuDeviceGetCount",             (int *n)) \
    X(cuDeviceGet,               "cuDeviceGet",                  (ollm__cu_device *dev, int ordinal)) \
    X(cuDeviceGetName,           "cuDeviceGetName",              (char *name, int len, ollm__cu_device dev)) \
    X(cuDeviceGetAttribute,      "cuDeviceGetAttribute",         (int *v, int attrib, ollm__cu_device dev)) \
    X(cuDevicePrimaryCtxRetain,  "cuDevicePrimaryCtxRetain",     (ollm__cu_context *ctx, ollm__cu_device dev)) \
    X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", (ollm__cu_device dev)) \
    X(cuCtxSetCurrent,           "cuCtxSetCurrent",              (ollm__cu_context ctx)) \
    X(cuMemGetInfo,              "cuMemGetInfo_v2",              (size_t *free_bytes, size_t *total_bytes)) \
    X(cuMemAlloc,                "cuMemAlloc_v2",                (ollm__cu_ptr *p, size_t bytes)) \
    X(cuMemFree,                 "cuMemFree_v2",                 (ollm__cu_ptr p)) \
    X(cuMemHostAlloc,            "cuMemHostAlloc",               (void **p, size_t bytes, unsigned flags)) \
    X(cuMemFreeHost,             "cuMemFreeHost",                (void *p)) \
    X(cuMemcpyHtoDAsync,         "cuMemcpyHtoDAsync_v2",         (ollm__cu_ptr d, const void *h, size_t n, ollm__cu_stream s)) \
    X(cuMemcpyDtoHAsync,         "cuMemcpyDtoHAsync_v2",         (void *h, ollm__cu_ptr d, size_t n, ollm__cu_stream s)) \
    X(cuMemcpyDtoDAsync,         "cuMemcpyDtoDAsync_v2",         (ollm__cu_ptr d, ollm__cu_ptr s_, size_t n, ollm__cu_stream s)) \
    X(cuMemsetD8Async,           "cuMemsetD8Async",              (ollm__cu_ptr d, unsigned char v, size_t n, ollm__cu_stream s)) \
    X(cuStreamCreate,            "cuStreamCreate",               (ollm__cu_stream *s, unsigned flags)) \
    X(cuStreamDestroy,           "cuStreamDestroy_v2",           (ollm__cu_stream s)) \
    X(cuStreamSynchronize,       "cuStreamSynchronize",          (ollm__cu_stream s)) \
    X(cuStreamWaitEvent,         "cuStreamWaitEvent",            (ollm__cu_stream s, ollm__cu_event e, unsigned flags)) \
    X(cuEventCreate,             "cuEventCreate",                (ollm__cu_event *e, unsigned flags)) \
    X(cuEventRecord,             "cuEventRecord",                (ollm__cu_event e, ollm__cu_stream s)) \
    X(cuEventSynchronize,        "cuEventSynchronize",           (ollm__cu_event e)) \
    X(cuEventQuery,              "cuEventQuery",                 (ollm__cu_event e)) \
    X(cuEventDestroy,            "cuEventDestroy_v2",            (ollm__cu_event e)) \
    X(cuModuleLoadData,          "cuModuleLoadData",             (ollm__cu_module *m, const void *image)) \
    X(cuModuleUnload,            "cuModuleUnload",               (ollm__cu_module m)) \
    X(cuModuleGetFunction,       "cuModuleGetFunction",          (ollm__cu_function *f, ollm__cu_module m, const char *name)) \
    X(cuFuncSetAttribute,        "cuFuncSetAttribute",           (ollm__cu_function f, int attrib, int value)) \
    X(cuOccupancyMaxActiveBlocksPerMultiprocessor, "cuOccupancyMaxActiveBlocksPerMultiprocessor", (int *n, \
        ollm__cu_function f, int block, size_t smem)) \
    X(cuLaunchKernel,            "cuLaunchKernel",               (ollm__cu_function f, unsigned gx, unsigned gy, \
        unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned smem, ollm__cu_stream s, void **params, void **extra))
/* Looked up apart: cuEventElapsedTime (cuEventElapsedTime_v2 in 13.0, plain in 12.x, same arguments), and the
   optional cuTensorMapEncodeTiled (12.0+; without it the Hopper GEMM is not used) and cuLaunchKernelEx (12.0+;
   without it no programmatic dependent launch). */
typedef struct ollm__cu_launch_attr {   /* CUlaunchAttribute: an id, then a 64-byte union of values */
    int id; int pad_; union { int flag; char pad[64]; void *align_; } value;
} ollm__cu_launch_attr;
typedef struct ollm__cu_launch_config {   /* CUlaunchConfig */
    unsigned gx, gy, gz, bx, by, bz, smem; ollm__cu_stream st; ollm__cu_launch_attr *attrs; unsigned n_attrs;
} ollm__cu_launch_config;
#define OLLM__CU_LAUNCH_PDL 6   /* CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION */
#define OLLM__CU_FIELD(fn, sym, args) ollm__cu_result (*fn) args;
typedef struct ollm__cuda {
    void *lib;
    OLLM__CU_FUNCS(OLLM__CU_FIELD)
    ollm__cu_result (*cuEventElapsedTime)(float *ms, ollm__cu_event a, ollm__cu_event b);
    ollm__cu_result (*cuTensorMapEncodeTiled)(void *map, int dtype, unsigned rank, void *addr, const uint64_t *dims,
                                              const uint64_t *strides, const unsigned *box, const unsigned *elem_strides,
                                              int interleave, int swizzle, int l2_promotion, int oob_fill);
    ollm__cu_result (*cuLaunchKernelEx)(const ollm__cu_launch_config *cfg, ollm__cu_function f, void **params, void **extra);
} ollm__cuda;

/* NVRTC (nvrtc.h): every function returns nvrtcResult (0 = success) but nvrtcGetErrorString. */
typedef struct ollm__nvrtc_prog_st *ollm__nvrtc_prog;
#define OLLM__NVRTC_FUNCS(X) \
    X(nvrtcVersion,           (int *major, int *minor)) \
    X(nvrtcCreateProgram,     (ollm__nvrtc_prog *p, const char *src, const char *name, int n_headers, \
                               const char *const *headers, const char *const *include_names)) \
    X(nvrtcDestroyProgram,    (ollm__nvrtc_prog *p)) \
    X(nvrtcCompileProgram,    (ollm__nvrtc_prog p, int n_options, const char *const *options)) \
    X(nvrtcGetProgramLogSize, (ollm__nvrtc_prog p, size_t *n)) \
    X(nvrtcGetProgramLog,     (ollm__nvrtc_prog p, char *log)) \
    X(nvrtcGetCUBINSize,      (ollm__nvrtc_prog p, size_t *n)) \
    X(nvrtcGetCUBIN,          (ollm__nvrtc_prog p, char *cubin))
#define OLLM__NVRTC_FIELD(fn, args) int (*fn) args;
typedef struct ollm__nvrtc {
    void *lib;
    int major, minor;
    char path[256];
    OLLM__NVRTC_FUNCS(OLLM__NVRTC_FIELD)
    const char *(*nvrtcGetErrorString)(int r);
} ollm__nvrtc;

/* ---- the kernel table, from kernels.cu.inc ---- */
#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Woverlength-strings"   /* ISO C promises 4,095 chars per literal; GCC takes more */
#endif
#define OLLM__PRELUDE(line, text)
#define OLLM__KERNEL(op, line, text) OLLM__K_##op,
enum {
#include "kernels.cu.inc"
    OLLM__K_COUNT
};
#undef OLLM__KERNEL
#define OLLM__KERNEL(op, line, text) "ollm_k_" #op,
static const char *const ollm__knames[OLLM__K_COUNT] = {
#include "kernels.cu.inc"
};
#undef OLLM__PRELUDE
#undef OLLM__KERNEL
typedef struct ollm__kpiece { int line; const char *text; } ollm__kpiece;
#define OLLM__PRELUDE(line, text) { line, text },
#define OLLM__KERNEL(op, line, text) { line, text },
static const ollm__kpiece ollm__kpieces[] = {
#include "kernels.cu.inc"
};
#undef OLLM__PRELUDE
#undef OLLM__KERNEL
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif

/* ---- loading the libraries ---- */

static OLLM__TLS char ollm__cu_why[1024];   /* *why of ollm__cuda_create when it has details to give */

static void *ollm__dlopen_any(const char *const *names, int n, char *tried, size_t cap) {
    int i;
    for (i = 0; i < n; i++) {
        void *h;
        if (!names[i] || !names[i][0]) continue;
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        if (tried && strlen(tried) + strlen(names[i]) + 3 < cap) {
            if (tried[0]) strcat(tried, ", ");
            strcat(tried, names[i]);
        }
    }
    return NULL;
}

/* NVRTC: `first` (cfg->nvrtc_path), $OLLM_NVRTC, the sonames CUDA 13/12/11.2 ship, then lib64 of each /usr/local/cuda folder. */
static int ollm__nvrtc_load(ollm__nvrtc *nv, const char *first, char *err, size_t cap) {
    static const char *const sonames[] = { "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so" };
    char tried[1024] = "", names[48][256]; const char *list[48]; int n = 0, i; void *p;
    DIR *dir;
    memset(nv, 0, sizeof *nv);
    if (first && first[0]) snprintf(names[n], 256, "%s", first), list[n] = names[n], n++;
    if (getenv("OLLM_NVRTC") && getenv("OLLM_NVRTC")[0]) snprintf(names[n], 256, "%s", getenv("OLLM_NVRTC")), list[n] = names[n], n++;
    for (i = 0; i < 4; i++) list[n++] = sonames[i];
    if ((dir = opendir("/usr/local")) != NULL) {   /* /usr/local/cuda, /usr/local/cuda-13.0, ... */
        struct dirent *e; char cands[8][64]; int nc = 0, j;
        while ((e = readdir(dir)) != NULL && nc < 8)
            if (strncmp(e->d_name, "cuda", 4) == 0 && strlen(e->d_name) < 48) snprintf(cands[nc++], 64, "%.60s", e->d_name);
        closedir(dir);
        for (j = 0; j < nc; j++) if (strcmp(cands[j], "cuda") == 0) { char t[64]; memcpy(t, cands[0], 64); memcpy(cands[0], cands[j], 64); memcpy(cands[j], t, 64); }
        for (j = 0; j < nc && n + 4 <= 48; j++)
            for (i = 0; i < 4; i++) {
                snprintf(names[n], 256, "/usr/local/%.60s/lib64/%s", cands[j], sonames[i]);
                list[n] = names[n]; n++;
            }
    }
    nv->lib = ollm__dlopen_any(list, n, tried, sizeof tried);
    if (!nv->lib) { snprintf(err, cap, "NVRTC not found (tried %s); set OLLM_NVRTC or nvrtc_path", tried); return 0; }
#define OLLM__NVRTC_LOAD(fn, args) \
    if (!(p = dlsym(nv->lib, #fn))) { snprintf(err, cap, "NVRTC library lacks %s", #fn); dlclose(nv->lib); nv->lib = NULL; return 0; } \
    memcpy(&nv->fn, &p, sizeof p);   /* memcpy: ISO C has no void* to function pointer conversion */
    OLLM__NVRTC_FUNCS(OLLM__NVRTC_LOAD)
#undef OLLM__NVRTC_LOAD
    if (!(p = dlsym(nv->lib, "nvrtcGetErrorString"))) { snprintf(err, cap, "NVRTC library lacks nvrtcGetErrorString"); dlclose(nv->lib); nv->lib = NULL; return 0; }
    memcpy(&nv->nvrtcGetErrorString, &p, sizeof p);
    if (nv->nvrtcVersion(&nv->major, &nv->minor) != 0) { snprintf(err, cap, "nvrtcVersion failed"); dlclose(nv->lib); nv->lib = NULL; return 0; }
    {
        Dl_info info;   /* which file the loader picked, for the log */
        memcpy(&p, &nv->nvrtcVersion, sizeof p);
        snprintf(nv->path, sizeof nv->path, "%s", dladdr(p, &info) && info.dli_fname ? info.dli_fname : "libnvrtc");
    }
    return 1;
}
static void ollm__nvrtc_unload(ollm__nvrtc *nv) { if (nv->lib) dlclose(nv->lib); nv->lib = NULL; }

static int ollm__cuda_load(ollm__cuda *cu, char *err, size_t cap) {
    static const char *const names[] = { "libcuda.so.1" };   /* not bare libcuda.so: that may be the toolkit's stub */
    void *p;
    memset(cu, 0, sizeof *cu);
    cu->lib = ollm__dlopen_any(names, 1, NULL, 0);
    if (!cu->lib) { snprintf(err, cap, "no NVIDIA driver (libcuda.so.1 not found)"); return 0; }
#define OLLM__CU_LOAD(fn, sym, args) \
    if (!(p = dlsym(cu->lib, sym))) { snprintf(err, cap, "NVIDIA driver too old: no %s", sym); dlclose(cu->lib); cu->lib = NULL; return 0; } \
    memcpy(&cu->fn, &p, sizeof p);
    OLLM__CU_FUNCS(OLLM__CU_LOAD)
#undef OLLM__CU_LOAD
    if (!(p = dlsym(cu->lib, "cuEventElapsedTime_v2"))) p = dlsym(cu->lib, "cuEventElapsedTime");
    if (p) memcpy(&cu->cuEventElapsedTime, &p, sizeof p);
    if ((p = dlsym(cu->lib, "cuTensorMapEncodeTiled")) != NULL) memcpy(&cu->cuTensorMapEncodeTiled, &p, sizeof p);
    if ((p = dlsym(cu->lib, "cuLaunchKernelEx")) != NULL) memcpy(&cu->cuLaunchKernelEx, &p, sizeof p);
    return 1;
}

/* ---- compiling kernels.cu.inc, and the CUBIN cache ---- */

/* Sizes the kernels share with the host, defined from these ahead of kernels.cu.inc's text: launch arguments passed
   by value (XG_MAX, CMB_MAX) and the MXFP4 GEMV's ring of weight stages in shared memory (MX_BK, MX_ST) */
#define OLLM__XG_MAX 12    /* grouped products' descriptors (xgroups) */
#define OLLM__CMB_MAX 32   /* the MoE combine's rows and weights (cmb_small) */
#define OLLM__MX_BK 8      /* 32-value blocks a row per stage */
#define OLLM__MX_ST 3      /* stages */
/* The whole program: those sizes, then each piece behind a #line that points NVRTC's messages into kernels.cu.inc. */
static char *ollm__kernel_program(void) {
    size_t n = 160, i, off = 0; char *s;
    for (i = 0; i < sizeof ollm__kpieces / sizeof ollm__kpieces[0]; i++) n += strlen(ollm__kpieces[i].text) + 48;
    s = (char *)OLLM_MALLOC(n);
    if (!s) return NULL;
    off += (size_t)snprintf(s, n, "#define XG_MAX %d\n#define CMB_MAX %d\n#define MX_BK %d\n#define MX_ST %d\n", OLLM__XG_MAX,
                            OLLM__CMB_MAX, OLLM__MX_BK, OLLM__MX_ST);
    for (i = 0; i < sizeof ollm__kpieces / sizeof ollm__kpieces[0]; i++) {
        off += (size_t)snprintf(s + off, n - off, "#line %d \"kernels.cu.inc\"\n", ollm__kpieces[i].line + 1);
        off += (size_t)snprintf(s + off, n - off, "%s", ollm__kpieces[i].text);
    }
    return s;
}

static int ollm__arch_ok(const char *arch) {   /* sm_<digits>[a-z]: a real architecture, which gives a CUBIN */
    const char *p;
    if (!arch || strncmp(arch, "sm_", 3) != 0 || !arch[3] || strlen(arch) > 8) return 0;
    for (p = arch + 3; *p >= '0' && *p <= '9'; p++) {}
    return p > arch + 3 && (*p == 0 || (p[0] >= 'a' && p[0] <= 'z' && p[1] == 0));
}

/* Compiles `src` for `arch` into a CUBIN (OLLM_MALLOC'd). The message (with NVRTC's log) goes to lg. */
#define OLLM__NVRTC_NOPT 2
static ollm_result ollm__nvrtc_compile(const ollm__nvrtc *nv, const char *src, const char *arch, ollm__log *lg,
                                       void **cubin, size_t *n) {
    char archopt[32]; const char *opts[OLLM__NVRTC_NOPT]; ollm__nvrtc_prog prog = NULL; int r; size_t logn = 0;
    *cubin = NULL; *n = 0;
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    opts[0] = archopt; opts[1] = "--std=c++17";
    if ((r = nv->nvrtcCreateProgram(&prog, src, "kernels.cu.inc", 0, NULL, NULL)) != 0)
        return ollm__fail(lg, OLLM_ERR_DEVICE, "nvrtcCreateProgram: %s", nv->nvrtcGetErrorString(r));
    r = nv->nvrtcCompileProgram(prog, OLLM__NVRTC_NOPT, opts);
    if (r != 0) {
        char *log = NULL;
        if (nv->nvrtcGetProgramLogSize(prog, &logn) == 0 && logn > 0 && (log = (char *)OLLM_MALLOC(logn + 1)) != NULL) {
            if (nv->nvrtcGetProgramLog(prog, log) != 0) log[0] = 0;
            log[logn] = 0;
        }
        ollm__fail(lg, OLLM_ERR_DEVICE, "NVRTC %d.%d could not compile kernels.cu.inc for %s (%s): %s", nv->major,
                   nv->minor, arch, nv->nvrtcGetErrorString(r), log ? log : "(no log)");
        OLLM_FREE(log);
        nv->nvrtcDestroyProgram(&prog);
        return OLLM_ERR_DEVICE;
    }
    if ((r = nv->nvrtcGetCUBINSize(prog, n)) != 0 || *n == 0 || (*cubin = OLLM_MALLOC(*n)) == NULL ||
        (r = nv->nvrtcGetCUBIN(prog, (char *)*cubin)) != 0) {
        OLLM_FREE(*cubin); *cubin = NULL; nv->nvrtcDestroyProgram(&prog);
        return ollm__fail(lg, r ? OLLM_ERR_DEVICE : OLLM_ERR_NO_MEMORY, "NVRTC gave no CUBIN for %s (%s)", arch,
                          r ? nv->nvrtcGetErrorString(r) : "empty or out of memory");
    }
    nv->nvrtcDestroyProgram(&prog);
    return OLLM_OK;
}

/* Cache entry: this header, then the CUBIN. A file whose magic, key, size or checksum is off is rebuilt. */
typedef struct ollm__cubin_hdr { char magic[8]; uint32_t version, hdr_bytes; uint64_t key, size, checksum; } ollm__cubin_hdr;
#define OLLM__CUBIN_MAGIC "OLLMCUBN"
enum { OLLM__CACHE_COMPILED, OLLM__CACHE_HIT, OLLM__CACHE_BAD, OLLM__CACHE_FOREIGN };   /* what a build found */

static uint64_t ollm__kernel_key(const char *src, const char *arch, const ollm__nvrtc *nv) {
    char ver[32]; uint64_t h = OLLM__FNV_INIT;
    h = ollm__fnv1a64(h, src, strlen(src) + 1);
    h = ollm__fnv1a64(h, arch, strlen(arch) + 1);
    h = ollm__fnv1a64(h, "--std=c++17", 12);   /* the options of ollm__nvrtc_compile besides the arch */
    snprintf(ver, sizeof ver, "nvrtc %d.%d", nv->major, nv->minor);
    return ollm__fnv1a64(h, ver, strlen(ver) + 1);
}

/* The cache folder: dir, else $XDG_CACHE_HOME/ollm, else $HOME/.cache/ollm; created if missing. 0 if none usable. */
static int ollm__cache_dir(const char *dir, char *out, size_t cap) {
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME"); char *p;
    if (dir && dir[0]) snprintf(out, cap, "%s", dir);
    else if (x && x[0] == '/') snprintf(out, cap, "%s/ollm", x);
    else if (home && home[0]) snprintf(out, cap, "%s/.cache/ollm", home);
    else return 0;
    if (strlen(out) + 64 >= cap) return 0;
    for (p = out + 1; *p; p++)   /* mkdir -p */
        if (*p == '/') { *p = 0; mkdir(out, 0755); *p = '/'; }
    mkdir(out, 0755);
    return 1;
}

static int ollm__cache_read(const char *path, uint64_t key, void **cubin, size_t *n) {
    ollm__file f; ollm__cubin_hdr h; void *buf;
    *cubin = NULL; *n = 0;
    if (ollm__file_open(&f, path) != OLLM_OK) return OLLM__CACHE_COMPILED;   /* no entry */
    if (f.size < sizeof h || ollm__pread_all(f.fd, &h, sizeof h, 0) != OLLM_OK || memcmp(h.magic, OLLM__CUBIN_MAGIC, 8) != 0 ||
        h.version != 1 || h.hdr_bytes != sizeof h || h.size != f.size - sizeof h || h.size == 0 || h.size > ((uint64_t)1 << 30)) {
        ollm__file_close(&f); return OLLM__CACHE_BAD;
    }
    if (h.key != key) { ollm__file_close(&f); return OLLM__CACHE_FOREIGN; }
    buf = OLLM_MALLOC((size_t)h.size);
    if (!buf || ollm__pread_all(f.fd, buf, h.size, sizeof h) != OLLM_OK ||
        ollm__fnv1a64(OLLM__FNV_INIT, buf, (size_t)h.size) != h.checksum) {
        OLLM_FREE(buf); ollm__file_close(&f); return OLLM__CACHE_BAD;
    }
    ollm__file_close(&f);
    *cubin = buf; *n = (size_t)h.size;
    return OLLM__CACHE_HIT;
}

/* Publishes an entry atomically: a temporary file (write, fsync, close), then rename. Failure is only an INFO line. */
static void ollm__cache_write(const char *path, uint64_t key, const void *cubin, size_t n, ollm__log *lg) {
    char tmp[4300]; ollm__cubin_hdr h; int fd; const char *what = NULL;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, OLLM__CUBIN_MAGIC, 8); h.version = 1; h.hdr_bytes = sizeof h; h.key = key; h.size = n;
    h.checksum = ollm__fnv1a64(OLLM__FNV_INIT, cubin, n);
    snprintf(tmp, sizeof tmp, "%.4200s.%ld.tmp", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) what = "create";
    else {
        const char *parts[2]; size_t lens[2]; int i;
        parts[0] = (const char *)&h; lens[0] = sizeof h; parts[1] = (const char *)cubin; lens[1] = n;
        for (i = 0; i < 2 && !what; i++) {
            size_t done = 0;
            while (done < lens[i]) {
                ssize_t w = write(fd, parts[i] + done, lens[i] - done);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) { what = "write"; break; }
                done += (size_t)w;
            }
        }
        if (!what && fsync(fd) != 0) what = "fsync";
        if (close(fd) != 0 && !what) what = "close";
        if (!what && rename(tmp, path) != 0) what = "rename";
        if (what) unlink(tmp);
    }
    if (what) ollm__logf(lg, OLLM_LOG_INFO, "kernel cache: cannot %s %s (%s); kernels stay uncached", what,
                         fd < 0 ? tmp : path, strerror(errno));
}

/* The CUBIN for arch: from the cache when a valid entry is there, else compiled (and published). *how: OLLM__CACHE_*;
   path (may be NULL) receives the entry's path, "" when no cache folder is usable. */
static ollm_result ollm__cuda_build_src(const ollm__nvrtc *nv, char *src, const char *arch, const char *cache_dir,
                                        ollm__log *lg, void **cubin, size_t *n, int *how, char *path, size_t path_cap);
static ollm_result ollm__cuda_build(const ollm__nvrtc *nv, const char *arch, const char *cache_dir, ollm__log *lg,
                                    void **cubin, size_t *n, int *how, char *path, size_t path_cap) {
    char *src;
    *cubin = NULL; *n = 0; *how = OLLM__CACHE_COMPILED;
    if (!(src = ollm__kernel_program())) return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "out of memory");
    return ollm__cuda_build_src(nv, src, arch, cache_dir, lg, cubin, n, how, path, path_cap);
}
/* The same for any program text (the tests use a small one); takes ownership of src (OLLM_MALLOC'd). */
static ollm_result ollm__cuda_build_src(const ollm__nvrtc *nv, char *src, const char *arch, const char *cache_dir,
                                        ollm__log *lg, void **cubin, size_t *n, int *how, char *path, size_t path_cap) {
    char dir[4096], file[4200] = ""; uint64_t key; ollm_result r; double t0 = ollm__now();
    *cubin = NULL; *n = 0; *how = OLLM__CACHE_COMPILED;
    if (!ollm__arch_ok(arch)) {
        OLLM_FREE(src);
        return ollm__fail(lg, OLLM_ERR_INVALID_ARG, "kernel arch \"%s\": expected sm_XY (a real GPU; compute_XY gives no "
                          "CUBIN)", arch ? arch : "(null)");
    }
    key = ollm__kernel_key(src, arch, nv);
    if (ollm__cache_dir(cache_dir, dir, sizeof dir)) {
        snprintf(file, sizeof file, "%s/ollm-%016llx-%s.cubin", dir, (unsigned long long)key, arch);
        *how = ollm__cache_read(file, key, cubin, n);
        if (*how == OLLM__CACHE_HIT) {
            OLLM_FREE(src);
            if (path) snprintf(path, path_cap, "%s", file);
            ollm__logf(lg, OLLM_LOG_DEBUG, "kernel cache: %s", file);
            return OLLM_OK;
        }
        if (*how != OLLM__CACHE_COMPILED)
            ollm__logf(lg, OLLM_LOG_INFO, "kernel cache: %s is %s; rebuilding it", file,
                       *how == OLLM__CACHE_BAD ? "corrupt" : "for another build");
    } else ollm__logf(lg, OLLM_LOG_INFO, "kernel cache: no usable folder (cache_dir, $XDG_CACHE_HOME or $HOME); "
                      "kernels stay uncached");
    r = ollm__nvrtc_compile(nv, src, arch, lg, cubin, n);
    OLLM_FREE(src);
    if (r != OLLM_OK) return r;
    ollm__logf(lg, OLLM_LOG_INFO, "compiled the kernels for %s with NVRTC %d.%d in %.1f s (%llu bytes)", arch,
               nv->major, nv->minor, ollm__now() - t0, (unsigned long long)*n);
    if (file[0]) ollm__cache_write(file, key, *cubin, *n, lg);
    if (path) snprintf(path, path_cap, "%s", file);
    return OLLM_OK;
}

static int ollm__bytes_find(const void *hay, size_t n, const char *needle) {   /* memmem, with the NUL */
    size_t m = strlen(needle) + 1, i; const char *h = (const char *)hay;
    for (i = 0; i + m <= n; i++) if (h[i] == needle[0] && memcmp(h + i, needle, m) == 0) return 1;
    return 0;
}

OLLM_API ollm_result ollm_cuda_compile_kernels(const char *arch, const char *cache_dir, const char *nvrtc_path,
                                               int *n_kernels, char *err, size_t err_cap) {
    ollm__nvrtc nv; ollm__log lg; void *cubin = NULL; size_t n = 0; int how, i, found = 0; ollm_result r;
    memset(&lg, 0, sizeof lg);
    if (n_kernels) *n_kernels = 0;
    if (err && err_cap) err[0] = 0;
    if (!ollm__nvrtc_load(&nv, nvrtc_path, lg.err, sizeof lg.err)) {
        if (err && err_cap) snprintf(err, err_cap, "%s", lg.err);
        return OLLM_ERR_NO_DEVICE;
    }
    r = ollm__cuda_build(&nv, arch, cache_dir, &lg, &cubin, &n, &how, NULL, 0);
    if (r == OLLM_OK) {   /* every extern "C" kernel must be in the CUBIN's symbol table */
        for (i = 0; i < OLLM__K_COUNT; i++) {
            if (ollm__bytes_find(cubin, n, ollm__knames[i])) found++;
            else if (r == OLLM_OK) r = ollm__fail(&lg, OLLM_ERR_DEVICE, "the %s CUBIN has no kernel %s", arch, ollm__knames[i]);
        }
    }
    OLLM_FREE(cubin);
    ollm__nvrtc_unload(&nv);
    if (n_kernels) *n_kernels = found;
    if (r != OLLM_OK && err && err_cap) snprintf(err, err_cap, "%s", lg.err);
    return r;
}

/* ---- the backend ---- */

/* OLLM_PROFILE=1: every kernel launch and copy is bracketed by two timing events on its stream; at a flush (the table
   full, or a report) each op's time is summed under its kind, with the stream's idle time before it (waiting for the
   host to issue it, for a copy it waits on, or a read back before it). The events cost the host about 2 us per op,
   so idle time before short kernels is overstated; busy times are the device's own. */
#define OLLM__PROF_CAP 16384
enum { OLLM__PK_UPLOAD = OLLM__K_COUNT, OLLM__PK_PUT, OLLM__PK_READ, OLLM__PK_COUNT };
typedef struct ollm__cu_prof {
    ollm__cu_event ev[2 * OLLM__PROF_CAP];    /* op i: ev[2i] before it, ev[2i + 1] after */
    int16_t kind[OLLM__PROF_CAP]; uint8_t on_copy[OLLM__PROF_CAP];
    uint64_t bytes[OLLM__PROF_CAP];
    int n;
    double busy[OLLM__PK_COUNT], idle[OLLM__PK_COUNT], span[2], ops_bytes[OLLM__PK_COUNT];
    uint64_t calls[OLLM__PK_COUNT];
    FILE *trace;                              /* OLLM_PROFILE=FILE: every op, timed from t0 (before the first op) */
    ollm__cu_event t0;
} ollm__cu_prof;

typedef struct ollm__cu {
    ollm__backend b;
    ollm__cuda cu;
    ollm__nvrtc nv;
    ollm__cu_device dev;
    ollm__cu_context ctx;
    ollm__cu_stream st;
    ollm__cu_stream copy_st;          /* weight uploads that overlap compute (created on first use) */
    ollm__cu_event ev_copy[OLLM__SLOTS], ev_done[OLLM__SLOTS];   /* per slot: upload finished; compute done with it */
    ollm__cu_module mod;
    ollm__cu_function fn[OLLM__K_COUNT];
    int cc_major, cc_minor, n_sm, smem_optin, have_ctx;
    int pdl;                     /* launches may overlap the kernel before them (sm_90+, cuLaunchKernelEx) */
    int dec_ns[2], dec_bps[2];   /* the tensor-core decode attention at head_dim 64, 128: ollm__cu_dec_stages at load */
    unsigned dec_smem[2];
    int mx_smem;                 /* dynamic shared memory the MXFP4 GEMVs may take */
    char arch[16], dev_name[128];
    uint64_t budget, used, peak;
    ollm__cu_result sticky;          /* a sticky CUDA error: every later call fails with sticky_msg */
    char sticky_msg[512];
    ollm__buf ids, abf, part;        /* scratch: token ids, bf16 copy of a matmul input, attention partials */
    ollm__buf amax;                  /* ollm_k_argmax's result */
    ollm__buf idx, wbf;              /* scratch: routing tables; a bf16 [N, K] copy of an MXFP4 / input-major weight */
    char *pin; uint64_t pin_cap, pin_off;   /* page-locked arena the small host arrays go up from (ollm__cu_put) */
    uint64_t abf_src, abf_bytes;     /* abf holds bf16(x) for x = [abf_src, + abf_bytes) when abf_valid */
    int abf_valid;
    int wgmma;                       /* prefill GEMMs on wgmma + TMA (sm_90, kernels built for sm_90a) */
    int fa3;                         /* prefill attention on wgmma (ollm_k_fa3_*; sm_90a), else FlashAttention-2 */
    int dn_chunk;                    /* the delta rule over T >= 64 tokens in chunks of at most this many (64 or
                                        32, as shared memory allows); 0: the recurrent kernel for every T */
    ollm__cu_prof *prof;             /* OLLM_PROFILE=1: the timeline of kernels and copies; NULL: not profiling */
    ollm__cu_event ev_read;          /* a polled read back (read_start): landed */
    char *rd_from;                   /*   its bytes in the pinned arena; NULL: none, or a pageable read at read_poll */
    ollm__buf rd_src;
} ollm__cu;

#define OLLM__CU_ALLOC_ALIGN 256u
static uint64_t ollm__cu_round(uint64_t b) { return (b + OLLM__CU_ALLOC_ALIGN - 1) / OLLM__CU_ALLOC_ALIGN * OLLM__CU_ALLOC_ALIGN; }

static int ollm__cu_is_sticky(ollm__cu_result e) {
    /* the context is unusable after these (cuda.h: "the process must be terminated and relaunched") */
    return e == 700 || e == 702 || e == 714 || e == 715 || e == 716 || e == 717 || e == 718 || e == 719 ||
           e == 999 || e == 214 || e == 4 || e == 46;
}
static const char *ollm__cu_errname(ollm__cu *c, ollm__cu_result e) {
    const char *s = NULL;
    if (c->cu.cuGetErrorName(e, &s) != 0 || !s) s = "CUDA_ERROR_UNKNOWN";
    return s;
}
static ollm_result ollm__cu_check(ollm__cu *c, ollm__cu_result e, const char *what) {
    char msg[512];
    if (e == 0) return OLLM_OK;
    snprintf(msg, sizeof msg, "%s: %s (%d)", what, ollm__cu_errname(c, e), e);
    if (ollm__cu_is_sticky(e) && !c->sticky) {
        c->sticky = e;
        snprintf(c->sticky_msg, sizeof c->sticky_msg, "%.440s; the GPU context is unusable, reopen the model", msg);
        return ollm__fail(c->b.log, OLLM_ERR_DEVICE, "%s", c->sticky_msg);
    }
    return ollm__fail(c->b.log, OLLM_ERR_DEVICE, "%s", msg);
}
#define OLLM__CU(c, call) do { ollm_result r_ = ollm__cu_check((c), (c)->cu.call, #call); if (r_ != OLLM_OK) return r_; } while (0)
/* Every op starts here: a sticky error fails it the same way; the context is made current for this thread. */
#define OLLM__CU_ENTER(c) do { \
    if ((c)->sticky) return ollm__fail((c)->b.log, OLLM_ERR_DEVICE, "%s", (c)->sticky_msg); \
    OLLM__CU((c), cuCtxSetCurrent((c)->ctx)); } while (0)

static const char *ollm__prof_name(int k) {   /* a kernel's op name, or the kind of copy */
    return k < OLLM__K_COUNT ? ollm__knames[k] + 7 : k == OLLM__PK_UPLOAD ? "upload (copy stream)" :
           k == OLLM__PK_PUT ? "upload (compute stream)" : "read back";
}
/* The profile (OLLM_PROFILE=1): sums the finished table into the totals. Waits for both streams. */
static void ollm__cu_prof_flush(ollm__cu *c) {
    ollm__cu_prof *p = c->prof; int i, last[2] = { -1, -1 }, first[2] = { -1, -1 }, s;
    if (!p || !p->n) return;
    c->cu.cuStreamSynchronize(c->st);
    if (c->copy_st) c->cu.cuStreamSynchronize(c->copy_st);
    for (i = 0; i < p->n; i++) {
        float ms = 0, gap = 0, at = 0; int k = p->kind[i];
        s = p->on_copy[i];
        c->cu.cuEventElapsedTime(&ms, p->ev[2 * i], p->ev[2 * i + 1]);
        if (last[s] >= 0 && c->cu.cuEventElapsedTime(&gap, p->ev[2 * last[s] + 1], p->ev[2 * i]) == 0 && gap > 0)
            p->idle[k] += gap;
        p->busy[k] += ms; p->calls[k]++; p->ops_bytes[k] += (double)p->bytes[i];
        if (p->trace && c->cu.cuEventElapsedTime(&at, p->t0, p->ev[2 * i]) == 0)
            fprintf(p->trace, "%d %s %.1f %.1f %llu\n", s, ollm__prof_name(k), 1e3 * at, 1e3 * ms,
                    (unsigned long long)p->bytes[i]);
        if (first[s] < 0) first[s] = i;
        last[s] = i;
    }
    for (s = 0; s < 2; s++) {
        float ms = 0;
        if (first[s] >= 0 && c->cu.cuEventElapsedTime(&ms, p->ev[2 * first[s]], p->ev[2 * last[s] + 1]) == 0)
            p->span[s] += ms;
    }
    p->n = 0;
}
/* Before an op on stream st (the copy stream when on_copy): its index in the table, or -1 when not profiling. */
static int ollm__cu_prof_begin(ollm__cu *c, int on_copy) {
    ollm__cu_prof *p = c->prof; int i;
    if (!p) return -1;
    if (p->n == OLLM__PROF_CAP) ollm__cu_prof_flush(c);
    if (p->trace && !p->t0 && (c->cu.cuEventCreate(&p->t0, 0) != 0 || c->cu.cuEventRecord(p->t0, c->st) != 0))
        return -1;
    i = p->n;
    if ((!p->ev[2 * i] && c->cu.cuEventCreate(&p->ev[2 * i], 0) != 0) ||
        (!p->ev[2 * i + 1] && c->cu.cuEventCreate(&p->ev[2 * i + 1], 0) != 0) ||
        c->cu.cuEventRecord(p->ev[2 * i], on_copy ? c->copy_st : c->st) != 0)
        return -1;
    return i;
}
static void ollm__cu_prof_end(ollm__cu *c, int i, int kind, int on_copy, uint64_t bytes) {
    ollm__cu_prof *p = c->prof;
    if (i < 0 || c->cu.cuEventRecord(p->ev[2 * i + 1], on_copy ? c->copy_st : c->st) != 0) return;
    p->kind[i] = (int16_t)kind; p->on_copy[i] = (uint8_t)on_copy; p->bytes[i] = bytes; p->n++;
}
static void ollm__cu_profile(ollm__backend *b, const char *what) {
    ollm__cu *c = (ollm__cu *)b; ollm__cu_prof *p = c->prof; int order[OLLM__PK_COUNT], n = 0, i, j;
    double busy[2] = { 0, 0 }, idle[2] = { 0, 0 };
    if (!p || c->sticky || c->cu.cuCtxSetCurrent(c->ctx) != 0) return;
    ollm__cu_prof_flush(c);
    for (i = 0; i < OLLM__PK_COUNT; i++) {
        int s = i == OLLM__PK_UPLOAD;
        if (!p->calls[i]) continue;
        busy[s] += p->busy[i]; idle[s] += p->idle[i];
        for (j = n++; j > 0 && p->busy[order[j - 1]] + p->idle[order[j - 1]] < p->busy[i] + p->idle[i]; j--)
            order[j] = order[j - 1];   /* by busy + idle time, most first */
        order[j] = i;
    }
    if (n)
        ollm__logf(b->log, OLLM_LOG_INFO, "profile of %s: compute stream %.3f ms busy, %.3f ms idle between its ops (%.3f ms "
                   "from first to last); copy stream %.3f ms busy, %.3f ms idle (%.3f ms)", what, busy[0], idle[0], p->span[0],
                   busy[1], idle[1], p->span[1]);
    for (i = 0; i < n; i++) {
        int k = order[i]; const char *name = ollm__prof_name(k);
        char rate[48] = "";
        if (p->ops_bytes[k] > 0 && p->busy[k] > 0)
            snprintf(rate, sizeof rate, ", %.1f GB/s", p->ops_bytes[k] / p->busy[k] / 1e6);
        ollm__logf(b->log, OLLM_LOG_INFO, "  %-26s %7llu ops %10.3f ms busy (%8.2f us each%s) %10.3f ms idle before", name,
                   (unsigned long long)p->calls[k], p->busy[k], 1e3 * p->busy[k] / (double)p->calls[k], rate, p->idle[k]);
    }
    memset(p->busy, 0, sizeof p->busy); memset(p->idle, 0, sizeof p->idle); memset(p->span, 0, sizeof p->span);
    memset(p->calls, 0, sizeof p->calls); memset(p->ops_bytes, 0, sizeof p->ops_bytes);
}

static ollm__cu_ptr ollm__dp(ollm__buf b) { return (ollm__cu_ptr)(uintptr_t)b.ptr; }
static int ollm__al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* A write to [p, p + n) makes a bf16 copy of overlapping memory stale. */
static void ollm__cu_wrote(ollm__cu *c, const void *p, uint64_t n) {
    uint64_t a = (uint64_t)(uintptr_t)p;
    if (c->abf_valid && a < c->abf_src + c->abf_bytes && c->abf_src < a + n) c->abf_valid = 0;
}

/* The one allocator: every device byte is counted against the budget first. */
static ollm_result ollm__cu_alloc(ollm__backend *b, uint64_t bytes, ollm__buf *out) {
    ollm__cu *c = (ollm__cu *)b; ollm__cu_ptr p = 0; uint64_t need = ollm__cu_round(bytes ? bytes : 1);
    ollm__cu_result e;
    out->ptr = NULL; out->bytes = 0;
    OLLM__CU_ENTER(c);
    if (need > c->budget || c->used > c->budget - need)
        return ollm__fail(b->log, OLLM_ERR_BUDGET, "GPU memory budget: %llu bytes (%.1f MiB) requested with %.1f of %.1f "
                          "MiB in use", (unsigned long long)bytes, (double)bytes / 1048576.0, (double)c->used / 1048576.0,
                          (double)c->budget / 1048576.0);
    if ((e = c->cu.cuMemAlloc(&p, (size_t)need)) != 0) {
        if (ollm__cu_is_sticky(e)) return ollm__cu_check(c, e, "cuMemAlloc");
        return ollm__fail(b->log, OLLM_ERR_DEVICE, "cuMemAlloc(%llu bytes): %s (budget %.1f MiB, %.1f MiB used)",
                          (unsigned long long)need, ollm__cu_errname(c, e), (double)c->budget / 1048576.0,
                          (double)c->used / 1048576.0);
    }
    c->used += need; c->b.mem_used = c->used;
    if (c->used > c->peak) c->peak = c->b.mem_peak = c->used;
    out->ptr = (void *)(uintptr_t)p; out->bytes = bytes;
    return OLLM_OK;
}
static void ollm__cu_release(ollm__backend *b, ollm__buf *buf) {
    ollm__cu *c = (ollm__cu *)b;
    if (!buf->ptr) return;
    ollm__cu_wrote(c, buf->ptr, buf->bytes);
    if (!c->sticky) {
        c->cu.cuCtxSetCurrent(c->ctx);
        c->cu.cuStreamSynchronize(c->st);   /* no kernel still using it */
        if (c->copy_st) c->cu.cuStreamSynchronize(c->copy_st);   /* and no upload into it */
        c->cu.cuMemFree(ollm__dp(*buf));
    }
    c->used -= ollm__cu_round(buf->bytes ? buf->bytes : 1); c->b.mem_used = c->used;
    buf->ptr = NULL; buf->bytes = 0;
}
/* Scratch that grows on demand (and counts against the budget like everything else). */
static ollm_result ollm__cu_scratch(ollm__cu *c, ollm__buf *s, uint64_t bytes) {
    ollm_result r;
    if (s->ptr && s->bytes >= bytes) return OLLM_OK;
    if (s == &c->abf) c->abf_valid = 0;
    if (s->ptr) c->b.mem_scratch -= ollm__cu_round(s->bytes);
    ollm__cu_release(&c->b, s);
    r = ollm__cu_alloc(&c->b, (bytes + 0xfffff) & ~(uint64_t)0xfffff, s);
    if (r == OLLM_OK) c->b.mem_scratch += ollm__cu_round(s->bytes);
    return r;
}

/* Page-locked host memory for the RAM tier: uploads from it run at the bus's speed. NULL when the driver refuses. */
static void *ollm__cu_host_alloc(ollm__backend *b, uint64_t bytes) {
    ollm__cu *c = (ollm__cu *)b; void *p = NULL;
    if (c->sticky || c->cu.cuCtxSetCurrent(c->ctx) != 0 || c->cu.cuMemHostAlloc(&p, (size_t)bytes, 0) != 0) return NULL;
    return p;
}
static void ollm__cu_host_free(ollm__backend *b, void *p) {
    ollm__cu *c = (ollm__cu *)b;
    if (!p) return;
    c->cu.cuCtxSetCurrent(c->ctx);
    c->cu.cuMemFreeHost(p);
}

/* Streaming slots (@tiers): an upload into slot k runs on the copy stream once compute has finished with k's
   previous layer (ev_done), and compute waits for it (ev_copy) only when it reaches the layer. */
static ollm_result ollm__cu_slot_events(ollm__cu *c, int k) {
    if (k < 0 || k >= OLLM__SLOTS) return ollm__fail(c->b.log, OLLM_ERR_INVALID_ARG, "streaming slot %d out of range", k);
    if (!c->copy_st) OLLM__CU(c, cuStreamCreate(&c->copy_st, OLLM__CU_STREAM_NON_BLOCKING));
    if (!c->ev_copy[k]) OLLM__CU(c, cuEventCreate(&c->ev_copy[k], 2));   /* CU_EVENT_DISABLE_TIMING */
    if (!c->ev_done[k]) OLLM__CU(c, cuEventCreate(&c->ev_done[k], 2));
    return OLLM_OK;
}
static ollm_result ollm__cu_upload_async(ollm__backend *b, int k, ollm__buf dst, const void *src, uint64_t n) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__TRY(ollm__cu_slot_events(c, k));
    ollm__cu_wrote(c, dst.ptr, n);
    OLLM__CU(c, cuStreamWaitEvent(c->copy_st, c->ev_done[k], 0));
    {
        int pi = ollm__cu_prof_begin(c, 1);
        OLLM__CU(c, cuMemcpyHtoDAsync(ollm__dp(dst), src, (size_t)n, c->copy_st));
        ollm__cu_prof_end(c, pi, OLLM__PK_UPLOAD, 1, n);
    }
    OLLM__CU(c, cuEventRecord(c->ev_copy[k], c->copy_st));
    return OLLM_OK;
}
static ollm_result ollm__cu_slot_wait(ollm__backend *b, int k) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__TRY(ollm__cu_slot_events(c, k));
    OLLM__CU(c, cuStreamWaitEvent(c->st, c->ev_copy[k], 0));
    return OLLM_OK;
}
static ollm_result ollm__cu_slot_release(ollm__backend *b, int k) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__TRY(ollm__cu_slot_events(c, k));
    OLLM__CU(c, cuEventRecord(c->ev_done[k], c->st));
    return OLLM_OK;
}
/* The end of a wait of the host for the device that began at t0 (counted in n_wait and wait_s), e its result. */
static ollm_result ollm__cu_waited(ollm__cu *c, double t0, ollm__cu_result e, const char *what) {
    c->b.n_wait++; c->b.wait_s += ollm__now() - t0;
    return e != 0 ? ollm__cu_check(c, e, what) : OLLM_OK;
}
static ollm_result ollm__cu_slot_sync(ollm__backend *b, int k) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__TRY(ollm__cu_slot_events(c, k));
    {   /* the clock read before the wait: the order of a call's arguments is not defined */
        double t0 = ollm__now();
        return ollm__cu_waited(c, t0, c->cu.cuEventSynchronize(c->ev_copy[k]), "cuEventSynchronize");
    }
}

/* The compute stream drained: every copy out of the pinned arena has landed, so it starts over. t0: when the host
   began waiting (a read back into pageable memory already waits in the copy). */
static ollm_result ollm__cu_drain_since(ollm__cu *c, double t0) {
    OLLM__TRY(ollm__cu_waited(c, t0, c->cu.cuStreamSynchronize(c->st), "cuStreamSynchronize"));
    c->pin_off = 0;
    return OLLM_OK;
}
static ollm_result ollm__cu_drain(ollm__cu *c) { return ollm__cu_drain_since(c, ollm__now()); }
/* The MXFP4 GEMV's blocks (kernels.cu.inc: 4 warps, 32 rows each) and shared memory, all dynamic: the ring of weight
   stages (32 rows of OLLM__MX_BK 16-byte blocks and 16 bytes of padding), x of T rows in f16, hi and lo, in groups
   of 8 values plus one of padding per row, and the block's scales as floats. Where it does not fit (c->mx_smem, set
   at load), the product goes through a bf16 copy of the weight as for longer inputs. */
#define OLLM__MXFP4_THREADS 128
static unsigned ollm__cu_mxfp4_smem(int T, int K) {
    return (unsigned)OLLM__MX_ST * 32u * (OLLM__MX_BK + 1) * 16u + 2u * (unsigned)T * (unsigned)(K / 8 + 1) * 16u +
           4u * (unsigned)K;
}
static int ollm__cu_mxfp4_fits(const ollm__cu *c, int T, int K) { return ollm__cu_mxfp4_smem(T, K) <= (unsigned)c->mx_smem; }

/* Small host arrays (token ids, routing tables) to the device in stream order without waiting: through the pinned
   arena (a copy from pageable memory would make the driver wait for the stream first). */
/* Room for n bytes at c->pin + c->pin_off, draining the stream (the arena starts over) or growing the arena first
   if needed; *ok = 0 when the driver has no page-locked memory for it. */
static ollm_result ollm__cu_pin_room(ollm__cu *c, uint64_t n, int *ok) {
    *ok = 1;
    if (c->pin_off + n <= c->pin_cap) return OLLM_OK;
    OLLM__TRY(ollm__cu_drain(c));
    if (n > c->pin_cap) {
        uint64_t cap = n > ((uint64_t)1 << 20) ? (n + 0xfffff) & ~(uint64_t)0xfffff : (uint64_t)1 << 20; void *p = NULL;
        if (c->pin) c->cu.cuMemFreeHost(c->pin);
        c->pin = NULL; c->pin_cap = 0;
        if (c->cu.cuMemHostAlloc(&p, (size_t)cap, 0) != 0) { *ok = 0; return OLLM_OK; }
        c->pin = (char *)p; c->pin_cap = cap;
    }
    return OLLM_OK;
}
/* The parts src[i] of n[i] bytes, one after another at dst, in one copy. */
static ollm_result ollm__cu_putv(ollm__cu *c, ollm__cu_ptr dst, const void *const *src, const uint64_t *ns, int parts) {
    int ok, pi, i; uint64_t n = 0, at = 0;
    for (i = 0; i < parts; i++) n += ns[i];
    OLLM__TRY(ollm__cu_pin_room(c, n, &ok));
    if (!ok) {   /* no page-locked memory: pageable copies */
        for (i = 0; i < parts; at += ns[i++]) OLLM__CU(c, cuMemcpyHtoDAsync(dst + at, src[i], (size_t)ns[i], c->st));
        return OLLM_OK;
    }
    for (i = 0; i < parts; at += ns[i++]) memcpy(c->pin + c->pin_off + at, src[i], (size_t)ns[i]);
    pi = ollm__cu_prof_begin(c, 0);
    OLLM__CU(c, cuMemcpyHtoDAsync(dst, c->pin + c->pin_off, (size_t)n, c->st));
    ollm__cu_prof_end(c, pi, OLLM__PK_PUT, 0, n);
    c->pin_off += (n + 15) & ~(uint64_t)15;
    return OLLM_OK;
}
static ollm_result ollm__cu_put(ollm__cu *c, ollm__cu_ptr dst, const void *src, uint64_t n) {
    return ollm__cu_putv(c, dst, &src, &n, 1);
}
static ollm_result ollm__cu_upload(ollm__backend *b, ollm__buf dst, const void *src, uint64_t n) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    if (!n) return OLLM_OK;
    ollm__cu_wrote(c, dst.ptr, n);
    OLLM__CU(c, cuMemcpyHtoDAsync(ollm__dp(dst), src, (size_t)n, c->st));
    return ollm__cu_drain(c);
}
/* Queues a read back of n bytes of src on the compute stream: up to 1 MiB (a router's logits, a token's logits) into
   the pinned arena (*at: where they land), as a copy into pageable memory costs the stream several times longer;
   else into dst (*at = NULL), or when dst is NULL nothing is queued (the caller reads later). */
static ollm_result ollm__cu_read_queue(ollm__cu *c, void *dst, ollm__buf src, uint64_t n, char **at) {
    int ok = 0, pi;
    *at = NULL;
    if (n <= ((uint64_t)1 << 20)) OLLM__TRY(ollm__cu_pin_room(c, n, &ok));
    if (!ok && !dst) return OLLM_OK;
    if (ok) *at = c->pin + c->pin_off;
    pi = ollm__cu_prof_begin(c, 0);
    OLLM__CU(c, cuMemcpyDtoHAsync(ok ? (void *)*at : dst, ollm__dp(src), (size_t)n, c->st));
    ollm__cu_prof_end(c, pi, OLLM__PK_READ, 0, n);
    if (ok) c->pin_off += (n + 15) & ~(uint64_t)15;
    return OLLM_OK;
}
static ollm_result ollm__cu_download(ollm__backend *b, void *dst, ollm__buf src, uint64_t n) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    if (!n) return OLLM_OK;
    {   /* the whole read back counts as one wait */
        double t0 = ollm__now(); char *from;
        OLLM__TRY(ollm__cu_read_queue(c, dst, src, n, &from));
        OLLM__TRY(ollm__cu_drain_since(c, t0));
        if (from) memcpy(dst, from, (size_t)n);   /* the drain starts the arena over; the bytes stay till the next put */
        return OLLM_OK;
    }
}
static int ollm__cu_slot_ready(ollm__backend *b, int k) {
    ollm__cu *c = (ollm__cu *)b;
    if (k < 0 || k >= OLLM__SLOTS || !c->ev_copy[k] || c->sticky || c->cu.cuCtxSetCurrent(c->ctx) != 0) return 1;
    return c->cu.cuEventQuery(c->ev_copy[k]) != 600;   /* CUDA_ERROR_NOT_READY */
}
static ollm_result ollm__cu_read_start(ollm__backend *b, ollm__buf src, uint64_t n) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    c->rd_from = NULL; c->rd_src = src;
    if (!n) return OLLM_OK;
    if (!c->ev_read) OLLM__CU(c, cuEventCreate(&c->ev_read, 2));   /* CU_EVENT_DISABLE_TIMING */
    OLLM__TRY(ollm__cu_read_queue(c, NULL, src, n, &c->rd_from));   /* not pinned: read_poll reads it */
    if (c->rd_from) OLLM__CU(c, cuEventRecord(c->ev_read, c->st));
    return OLLM_OK;
}
static ollm_result ollm__cu_read_poll(ollm__backend *b, void *dst, uint64_t n, int wait, int *done) {
    ollm__cu *c = (ollm__cu *)b; ollm__cu_result e; double t0 = ollm__now();
    *done = 0;
    OLLM__CU_ENTER(c);
    if (!c->rd_from) { *done = 1; return n ? ollm__cu_download(b, dst, c->rd_src, n) : OLLM_OK; }
    e = wait ? c->cu.cuEventSynchronize(c->ev_read) : c->cu.cuEventQuery(c->ev_read);
    if (e == 600) return OLLM_OK;
    if (wait) OLLM__TRY(ollm__cu_waited(c, t0, e, "cuEventSynchronize"));
    else OLLM__TRY(ollm__cu_check(c, e, "cuEventQuery"));
    memcpy(dst, c->rd_from, (size_t)n);
    c->rd_from = NULL; *done = 1;
    return OLLM_OK;
}
static ollm_result ollm__cu_sync(ollm__backend *b) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    return ollm__cu_drain(c);
}

static ollm_result ollm__cu_launch(ollm__cu *c, int k, unsigned gx, unsigned gy, unsigned block, unsigned smem, void **args) {
    int pi = ollm__cu_prof_begin(c, 0); ollm__cu_result e;
    if (c->pdl) {   /* programmatic dependent launch: set up while the kernel before it finishes, run after it */
        ollm__cu_launch_attr at; ollm__cu_launch_config lc;
        memset(&at, 0, sizeof at); at.id = OLLM__CU_LAUNCH_PDL; at.value.flag = 1;
        lc.gx = gx; lc.gy = gy; lc.gz = 1; lc.bx = block; lc.by = 1; lc.bz = 1; lc.smem = smem; lc.st = c->st;
        lc.attrs = &at; lc.n_attrs = 1;
        e = c->cu.cuLaunchKernelEx(&lc, c->fn[k], args, NULL);
        if ((e == 1 || e == 801) &&   /* CUDA_ERROR_INVALID_VALUE, _NOT_SUPPORTED: refused by the driver, or not */
            c->cu.cuLaunchKernel(c->fn[k], gx, gy, 1, block, 1, 1, smem, c->st, args, NULL) == 0) {
            ollm__logf(c->b.log, OLLM_LOG_INFO, "CUDA: the driver refuses programmatic dependent launches (%s); "
                       "kernels are launched one after another", ollm__cu_errname(c, e));
            c->pdl = 0; e = 0;   /* a plain launch went: the attribute was what it refused */
        }
    } else e = c->cu.cuLaunchKernel(c->fn[k], gx, gy, 1, block, 1, 1, smem, c->st, args, NULL);
    ollm__cu_prof_end(c, pi, k, 0, 0);
    c->b.n_launch++;
    if (e != 0) {
        char what[96]; snprintf(what, sizeof what, "cuLaunchKernel(%s)", ollm__knames[k]);
        return ollm__cu_check(c, e, what);
    }
    return OLLM_OK;
}
static unsigned ollm__cu_grid(int64_t n, int per, unsigned cap) {   /* blocks for n elements, per per block */
    int64_t g = (n + per - 1) / per;
    return g < 1 ? 1u : g > (int64_t)cap ? cap : (unsigned)g;
}
static int ollm__cu_wk(int dtype, int k_f32, int k_f16, int k_bf16) {   /* a kernel by weight dtype; -1 unsupported */
    return dtype == OLLM__F32 ? k_f32 : dtype == OLLM__F16 ? k_f16 : dtype == OLLM__BF16 ? k_bf16 : -1;
}
static ollm_result ollm__cu_bad_dtype(ollm__cu *c, const char *op, int dtype) {
    return ollm__fail(c->b.log, OLLM_ERR_UNSUPPORTED, "CUDA %s: weight dtype %s (BF16, F16 or F32 expected)", op,
                      dtype < OLLM__DTYPE_COUNT ? ollm__dtype_names[dtype] : "?");
}

static ollm_result ollm__cu_embed(ollm__backend *b, ollm__buf x, const ollm__w *table, const int32_t *ids, int T) {
    ollm__cu *c = (ollm__cu *)b; int k = ollm__cu_wk(table->dtype, OLLM__K_embed_f32, OLLM__K_embed_f16, OLLM__K_embed_bf16);
    long long rows = table->rows, cols = table->cols; void *idp; void *args[6];
    OLLM__CU_ENTER(c);
    if (k < 0) return ollm__cu_bad_dtype(c, "embed", table->dtype);
    if (T <= 0) return OLLM_OK;
    OLLM__TRY(ollm__cu_scratch(c, &c->ids, (uint64_t)T * 4));
    OLLM__TRY(ollm__cu_put(c, ollm__dp(c->ids), ids, (uint64_t)T * 4));
    idp = c->ids.ptr;
    args[0] = &x.ptr; args[1] = (void *)&table->data.ptr; args[2] = &idp; args[3] = &T; args[4] = &rows; args[5] = &cols;
    ollm__cu_wrote(c, x.ptr, (uint64_t)T * cols * 4);
    return ollm__cu_launch(c, k, (unsigned)T, 1, 256, 0, args);
}

static ollm_result ollm__cu_rmsnorm(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *w, int T, int n,
                                    float eps, int unit_offset) {
    ollm__cu *c = (ollm__cu *)b; void *args[6];
    int k = ollm__cu_wk(w->dtype, OLLM__K_rmsnorm_f32, OLLM__K_rmsnorm_f16, OLLM__K_rmsnorm_bf16);
    OLLM__CU_ENTER(c);
    if (k < 0) return ollm__cu_bad_dtype(c, "rmsnorm", w->dtype);
    if (T <= 0) return OLLM_OK;
    args[0] = &y.ptr; args[1] = &x.ptr; args[2] = (void *)&w->data.ptr; args[3] = &n; args[4] = &eps; args[5] = &unit_offset;
    ollm__cu_wrote(c, y.ptr, (uint64_t)T * n * 4);
    {   /* a thread for about 4 elements of the row, whole warps, at most 1024 */
        unsigned nt = (unsigned)((n / 4 + 31) / 32 * 32);
        return ollm__cu_launch(c, k, (unsigned)T, 1, nt < 32 ? 32 : nt > 1024 ? 1024 : nt, 0, args);
    }
}

static ollm_result ollm__cu_matmul_fmt(ollm__cu *c, ollm__buf y, ollm__buf x, const ollm__w *W, const ollm__w *bias, int T,
                                      int accumulate);
static ollm_result ollm__cu_add_bias(ollm__backend *b, ollm__buf y, const ollm__w *bias, int T, int64_t n);
#define OLLM__GEMM_SMEM (4 * (128 + 128) * 40 * 2)     /* GB_ST * (GB_M + GB_N) * GB_LD * sizeof(bf16) */
#define OLLM__WGMMA_SMEM (4 * (128 + 256) * 64 * 2 + 1024)   /* WG_ST * (WG_BM + WG_BN) * WG_BK * 2, 1024-aligned */

/* The tensor map of a row-major bf16 [rows, K] matrix, read in boxes of box_rows x 64 with 128-byte swizzle (zeros
   past the edges): cuda.h's CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9, INTERLEAVE_NONE = 0, SWIZZLE_128B = 3,
   L2_PROMOTION_L2_256B = 3, FLOAT_OOB_FILL_NONE = 0. map: 128 bytes, 64-byte aligned. */
static ollm_result ollm__cu_tmap(ollm__cu *c, void *map, const void *p, int rows, int K, unsigned box_rows) {
    uint64_t dims[2], strides[1]; unsigned box[2], es[2] = { 1, 1 };
    dims[0] = (uint64_t)K; dims[1] = (uint64_t)rows; strides[0] = (uint64_t)K * 2; box[0] = 64; box[1] = box_rows;
    return ollm__cu_check(c, c->cu.cuTensorMapEncodeTiled(map, 9, 2, (void *)p, dims, strides, box, es, 0, 3, 3, 0),
                          "cuTensorMapEncodeTiled");
}
/* C[M, N] (+)= A[M, K] W[N, K]^T (+ bias), bf16 A and W (K % 8 == 0, 16-byte aligned): ollm_k_gemm_wgmma, 128x256
   tiles. */
static ollm_result ollm__cu_gemm_wgmma(ollm__cu *c, float *C, const void *A, const void *W, int M, int N, int K, int acc,
                                       const void *bias, int bdt) {
    unsigned char maps[3 * 128]; void *ta = (void *)(((uintptr_t)maps + 63) & ~(uintptr_t)63), *tb = (char *)ta + 128;
    void *args[9]; unsigned tiles = (unsigned)(((M + 127) / 128) * ((N + 255) / 256));
    OLLM__TRY(ollm__cu_tmap(c, ta, A, M, K, 128));
    OLLM__TRY(ollm__cu_tmap(c, tb, W, N, K, 256));
    args[0] = &C; args[1] = ta; args[2] = tb; args[3] = &M; args[4] = &N; args[5] = &K; args[6] = &acc;
    args[7] = (void *)&bias; args[8] = &bdt;
    return ollm__cu_launch(c, OLLM__K_gemm_wgmma, tiles, 1, 384, OLLM__WGMMA_SMEM, args);
}
#define OLLM__ABF_MAX ((uint64_t)64 << 20)             /* bf16 copies of matmul inputs: at most this, in row chunks */
#define OLLM__GEMV_SM_WARPS 64   /* the decode GEMVs split a row among up to 8 warps until the grid has this many an SM */
static ollm_result ollm__cu_matmul(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W, const ollm__w *bias, int T,
                                   int accumulate) {
    ollm__cu *c = (ollm__cu *)b; int N = (int)W->rows, K = (int)W->cols, dt = W->dtype; void *args[11];
    uint64_t esz = ollm__dtype_size[dt < OLLM__DTYPE_COUNT ? dt : 0];
    const void *bp = bias ? bias->data.ptr : NULL; int bdt = bias ? bias->dtype : 0;
    OLLM__CU_ENTER(c);
    if (T <= 0 || N <= 0) return OLLM_OK;
    if (bias && ollm__cu_wk(bdt, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "matmul bias", bdt);
    ollm__cu_wrote(c, y.ptr, (uint64_t)T * N * 4);
    if (bias && T <= 8 && W->fmt == OLLM__W_KMAJOR) {
        /* every product adds the bias as it writes but the input-major GEMV: after it, a pass of its own */
        OLLM__TRY(ollm__cu_matmul(b, y, x, W, NULL, T, accumulate));
        return ollm__cu_add_bias(b, y, bias, T, N);
    }
    if (W->fmt != OLLM__W_DENSE) return ollm__cu_matmul_fmt(c, y, x, W, bias, T, accumulate);
    if (ollm__cu_wk(dt, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "matmul", dt);
    if (T <= 8) {   /* decode: bound by reading W once; the bias added as each output is written */
        static const int kg[3][4] = {
            { OLLM__K_gemv_f32_1, OLLM__K_gemv_f32_2, OLLM__K_gemv_f32_4, OLLM__K_gemv_f32_8 },
            { OLLM__K_gemv_f16_1, OLLM__K_gemv_f16_2, OLLM__K_gemv_f16_4, OLLM__K_gemv_f16_8 },
            { OLLM__K_gemv_bf16_1, OLLM__K_gemv_bf16_2, OLLM__K_gemv_bf16_4, OLLM__K_gemv_bf16_8 } };
        int tt = T <= 1 ? 0 : T <= 2 ? 1 : T <= 4 ? 2 : 3;
        int vec = ollm__al16(W->data.ptr) && ollm__al16(x.ptr) && ((uint64_t)K * esz) % 16 == 0 && K % 4 == 0, wpr = 1;
        while (wpr < 8 && (int64_t)N * wpr < (int64_t)c->n_sm * OLLM__GEMV_SM_WARPS) wpr *= 2;   /* a full GPU of warps streaming W */
        args[0] = &y.ptr; args[1] = &x.ptr; args[2] = (void *)&W->data.ptr; args[3] = &T; args[4] = &N; args[5] = &K;
        args[6] = &accumulate; args[7] = &vec; args[8] = &wpr; args[9] = (void *)&bp; args[10] = &bdt;
        return ollm__cu_launch(c, kg[dt][tt], ollm__cu_grid(N, 8 / wpr, 0x7fffffff), 1, 256, 0, args);
    }
    /* prefill: tensor cores. Narrow products (N < 64: routers, gates) stay in fp32 on the CUDA cores: cheap, and a
       router's logits then carry no bf16 rounding of its input (as in decode's GEMV) */
    if (dt == OLLM__BF16 && K % 8 == 0 && N >= 64 && ollm__al16(W->data.ptr)) {
        uint64_t row_bytes = (uint64_t)K * 2;
        int chunk = (int)(OLLM__ABF_MAX / row_bytes) / 128 * 128, m0;
        if (chunk < 128) chunk = 128;
        if (chunk > T) chunk = T;
        for (m0 = 0; m0 < T; m0 += chunk) {
            int M = T - m0 < chunk ? T - m0 : chunk, tiles;
            const float *xs = (const float *)x.ptr + (int64_t)m0 * K;
            float *ys = (float *)y.ptr + (int64_t)m0 * N;
            void *ap;
            if (!(c->abf_valid && c->abf_src == (uint64_t)(uintptr_t)xs && c->abf_bytes == (uint64_t)M * K * 4)) {
                long long n = (long long)M * K;
                OLLM__TRY(ollm__cu_scratch(c, &c->abf, (uint64_t)M * row_bytes));
                args[0] = &c->abf.ptr; args[1] = (void *)&xs; args[2] = &n;
                OLLM__TRY(ollm__cu_launch(c, OLLM__K_to_bf16, ollm__cu_grid(n, 256, 8192), 1, 256, 0, args));
                c->abf_valid = 1; c->abf_src = (uint64_t)(uintptr_t)xs; c->abf_bytes = (uint64_t)M * K * 4;
            }
            ap = c->abf.ptr;
            if (c->wgmma && N >= 256 && K >= 64) {   /* M < 128: the tensor map zero-fills the tile's missing rows */
                OLLM__TRY(ollm__cu_gemm_wgmma(c, ys, ap, W->data.ptr, M, N, K, accumulate, bp, bdt));
                continue;
            }
            tiles = ((M + 127) / 128) * ((N + 127) / 128);
            args[0] = (void *)&ys; args[1] = &ap; args[2] = (void *)&W->data.ptr; args[3] = &M; args[4] = &N; args[5] = &K;
            args[6] = &accumulate; args[7] = (void *)&bp; args[8] = &bdt;
            OLLM__TRY(ollm__cu_launch(c, OLLM__K_gemm_bf16, (unsigned)tiles, 1, 256, OLLM__GEMM_SMEM, args));
        }
        return OLLM_OK;
    }
    {   /* F16 / F32 weights, or shapes the tensor-core path cannot take: fp32 FMA, in 64 x 64 tiles, or for a router
           or gate (N <= 32, 16-byte rows) a block per 8 rows of x, each read once */
        int narrow = dt == OLLM__BF16 && N <= 32 && K % 8 == 0 && ollm__al16(W->data.ptr) && ollm__al16(x.ptr);
        int k = narrow ? OLLM__K_gemm_narrow_bf16 : ollm__cu_wk(dt, OLLM__K_gemm_simt_f32, OLLM__K_gemm_simt_f16,
                                                                 OLLM__K_gemm_simt_bf16);
        args[0] = &y.ptr; args[1] = &x.ptr; args[2] = (void *)&W->data.ptr; args[3] = &T; args[4] = &N; args[5] = &K;
        args[6] = &accumulate; args[7] = (void *)&bp; args[8] = &bdt;
        if (narrow) return ollm__cu_launch(c, k, (unsigned)((T + 7) / 8), 1, 256, 0, args);
        return ollm__cu_launch(c, k, (unsigned)((N + 63) / 64), (unsigned)((T + 63) / 64), 256, 0, args);
    }
}

/* Weights stored other than [N, K] dense (ollm__w's fmt): a GEMV that reads them as stored for decode; for more rows,
   a bf16 [N, K] copy in scratch (one pass over the weight) and the dense product. */
static ollm_result ollm__cu_matmul_fmt(ollm__cu *c, ollm__buf y, ollm__buf x, const ollm__w *W, const ollm__w *bias, int T,
                                      int accumulate) {
    int N = (int)W->rows, K = (int)W->cols, bdt = bias ? bias->dtype : 0; void *args[10]; ollm__w dense;
    const void *bp = bias ? bias->data.ptr : NULL;
    if (W->fmt == OLLM__W_MXFP4 && (K % 32 || !ollm__al16(W->data.ptr) || !ollm__al16(x.ptr)))
        return ollm__fail(c->b.log, OLLM_ERR_UNSUPPORTED, "CUDA matmul: MXFP4 weight [%d, %d] needs K %% 32 == 0 and "
                          "16-byte aligned data", N, K);
    if (W->fmt == OLLM__W_KMAJOR && ollm__cu_wk(W->dtype, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "matmul", W->dtype);
    if (T <= 8 && (W->fmt != OLLM__W_MXFP4 || ollm__cu_mxfp4_fits(c, T, K))) {
        args[0] = &y.ptr; args[1] = &x.ptr; args[2] = (void *)&W->data.ptr;
        if (W->fmt == OLLM__W_MXFP4) {
            args[3] = (void *)&W->scales.ptr; args[4] = &T; args[5] = &N; args[6] = &K; args[7] = &accumulate;
            args[8] = (void *)&bp; args[9] = &bdt;
            return ollm__cu_launch(c, T == 1 ? OLLM__K_gemv_mxfp4_1 : OLLM__K_gemv_mxfp4_8, ollm__cu_grid(N, 32, 0x7fffffff),
                                   1, OLLM__MXFP4_THREADS, ollm__cu_mxfp4_smem(T, K), args);
        }
        args[3] = &T; args[4] = &N; args[5] = &K; args[6] = &accumulate;
        return ollm__cu_launch(c, ollm__cu_wk(W->dtype, OLLM__K_gemv_kmajor_f32, OLLM__K_gemv_kmajor_f16,
                               OLLM__K_gemv_kmajor_bf16), ollm__cu_grid(N, 64, 0x7fffffff), 1, 256, 0, args);
    }
    OLLM__TRY(ollm__cu_scratch(c, &c->wbf, (uint64_t)N * K * 2));
    if (W->fmt == OLLM__W_MXFP4) {
        long long nw = (long long)N * (K / 32) * 4;   /* 4-byte words of codes */
        args[0] = &c->wbf.ptr; args[1] = (void *)&W->data.ptr; args[2] = (void *)&W->scales.ptr; args[3] = &nw;
        OLLM__TRY(ollm__cu_launch(c, OLLM__K_mxfp4_to_bf16, ollm__cu_grid(nw, 256, 8192), 1, 256, 0, args));
    } else {
        args[0] = &c->wbf.ptr; args[1] = (void *)&W->data.ptr; args[2] = &N; args[3] = &K;
        OLLM__TRY(ollm__cu_launch(c, ollm__cu_wk(W->dtype, OLLM__K_kmajor_to_bf16_f32, OLLM__K_kmajor_to_bf16_f16,
                                  OLLM__K_kmajor_to_bf16_bf16), (unsigned)((N + 31) / 32), (unsigned)((K + 31) / 32), 256,
                                  0, args));
    }
    memset(&dense, 0, sizeof dense);
    dense.data = c->wbf; dense.dtype = OLLM__BF16; dense.fmt = OLLM__W_DENSE; dense.rows = N; dense.cols = K;
    return c->b.matmul(&c->b, y, x, &dense, bias, T, accumulate);   /* bias: an MXFP4 GEMV's whose x did not fit */
}

/* Grouped products (matmul_grouped, matmul_n): groups of at most 8 rows in dense or MXFP4 weights go in one launch
   (blockIdx.y = group) over descriptors passed by value (up to OLLM__XG_MAX groups: a decoded token's experts) or
   uploaded through c->idx; otherwise, or for input-major weights, one product per group. */
typedef struct ollm__cu_xgroup { const void *w, *s, *b; const float *x; float *y; int T, N; } ollm__cu_xgroup;   /* xgroup */
typedef struct ollm__cu_xgroups { ollm__cu_xgroup g[OLLM__XG_MAX]; } ollm__cu_xgroups;                        /* xgroups */
/* The grouped kernel for G products of K columns in W[0]'s format and dtype with at most `most` rows each, or -1. */
static int ollm__cu_group_kernel(const ollm__cu *c, const ollm__w *W, int most) {
    int K = (int)W[0].cols;
    if (most <= 8 && W[0].fmt == OLLM__W_MXFP4 && ollm__cu_mxfp4_fits(c, most, K))
        return most <= 1 ? OLLM__K_gemv_group_mxfp4_1 : OLLM__K_gemv_group_mxfp4_8;
    if (most <= 8 && W[0].fmt == OLLM__W_DENSE)
        return W[0].dtype == OLLM__BF16 ? (most <= 1 ? OLLM__K_gemv_group_bf16_1 : OLLM__K_gemv_group_bf16_8)
             : ollm__cu_wk(W[0].dtype, OLLM__K_gemv_group_f32_8, OLLM__K_gemv_group_f16_8, -1);
    return -1;
}
/* Launches kernel k over the G descriptors d (d == small->g when G <= OLLM__XG_MAX; else freed here), most rows each. */
static ollm_result ollm__cu_group_launch(ollm__cu *c, int k, const ollm__w *W, ollm__cu_xgroup *d, ollm__cu_xgroups *small,
                                         int G, int most, int bdt) {
    int g, vec = 1, wpr = 1, K = (int)W[0].cols, maxN = 0; int64_t rows_all = 0; void *args[6], *dp = NULL;
    uint64_t bytes = (uint64_t)G * sizeof *d;
    for (g = 0; g < G; g++) {
        vec &= ollm__al16(d[g].w) && ollm__al16(d[g].x);
        if (d[g].N > maxN) maxN = d[g].N;
        rows_all += d[g].N;
    }
    vec &= ((uint64_t)K * ollm__dtype_size[W[0].dtype]) % 16 == 0 && K % 4 == 0;
    if (W[0].fmt == OLLM__W_DENSE) while (wpr < 8 && rows_all * wpr < (int64_t)c->n_sm * OLLM__GEMV_SM_WARPS) wpr *= 2;
    if (d != small->g) {
        ollm_result r = ollm__cu_scratch(c, &c->idx, bytes);
        if (r == OLLM_OK) r = ollm__cu_put(c, ollm__dp(c->idx), d, bytes);
        OLLM_FREE(d);
        if (r != OLLM_OK) return r;
        dp = c->idx.ptr;
    }
    args[0] = &dp; args[1] = small; args[2] = &K; args[3] = &vec; args[4] = &wpr; args[5] = &bdt;
    if (W[0].fmt == OLLM__W_MXFP4)
        return ollm__cu_launch(c, k, ollm__cu_grid(maxN, 32, 0x7fffffff), (unsigned)G, OLLM__MXFP4_THREADS,
                               ollm__cu_mxfp4_smem(most, K), args);
    return ollm__cu_launch(c, k, ollm__cu_grid(maxN, 8 / wpr, 0x7fffffff), (unsigned)G, 256, 0, args);
}
static ollm_result ollm__cu_matmul_grouped(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W,
                                           const ollm__w *bias, const int32_t *row0, const int32_t *xrow,
                                           const int32_t *rows, int G) {
    ollm__cu *c = (ollm__cu *)b; int g, most = 0, k, N, K, bdt = bias ? bias[0].dtype : 0;
    ollm__cu_xgroup *d; ollm__cu_xgroups small;
    OLLM__CU_ENTER(c);
    if (G <= 0) return OLLM_OK;
    if (bias && ollm__cu_wk(bdt, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "matmul bias", bdt);
    N = (int)W[0].rows; K = (int)W[0].cols;
    for (g = 0; g < G; g++) if (rows[g] > most) most = rows[g];
    if ((k = ollm__cu_group_kernel(c, W, most)) < 0)   /* the loop: one product per group */
        return ollm__cpu_matmul_grouped(b, y, x, W, bias, row0, xrow, rows, G);
    memset(&small, 0, sizeof small);
    if (G <= OLLM__XG_MAX) d = small.g;
    else if (!(d = (ollm__cu_xgroup *)OLLM_MALLOC((size_t)G * sizeof *d))) return ollm__fail(b->log, OLLM_ERR_NO_MEMORY, "out of memory");
    for (g = 0; g < G; g++) {
        d[g].w = W[g].data.ptr; d[g].s = W[g].scales.ptr; d[g].b = bias ? bias[g].data.ptr : NULL;
        d[g].x = (const float *)x.ptr + (int64_t)(xrow ? xrow[g] : row0[g]) * K; d[g].y = (float *)y.ptr + (int64_t)row0[g] * N;
        d[g].T = rows[g]; d[g].N = N;
        ollm__cu_wrote(c, d[g].y, (uint64_t)rows[g] * N * 4);
    }
    return ollm__cu_group_launch(c, k, W, d, &small, G, most, bdt);
}
/* Products of one input (matmul_n) in one launch when they are GEMVs of one format, dtype and bias dtype. */
static ollm_result ollm__cu_matmul_n(ollm__backend *b, int n, const ollm__buf *y, ollm__buf x, const ollm__w *const *W,
                                     const ollm__w *const *bias, int T) {
    ollm__cu *c = (ollm__cu *)b; int i, k = -1, bdt = -1; const ollm__w *w0 = W[0]; ollm__cu_xgroups small;
    OLLM__CU_ENTER(c);
    if (n <= 0 || T <= 0) return OLLM_OK;
    for (i = 0; i < n; i++) {
        const ollm__w *bi = bias ? bias[i] : NULL;
        if (W[i]->fmt != OLLM__W_DENSE || W[i]->dtype != w0->dtype || W[i]->cols != w0->cols) break;
        if (bi && ((bdt >= 0 && bi->dtype != bdt) || ollm__cu_wk(bi->dtype, 0, 0, 0) < 0)) break;
        if (bi) bdt = bi->dtype;
    }
    if (i == n && n <= OLLM__XG_MAX) k = ollm__cu_group_kernel(c, w0, T);
    if (k < 0) {   /* one product each */
        for (i = 0; i < n; i++) OLLM__TRY(ollm__cu_matmul(b, y[i], x, W[i], bias ? bias[i] : NULL, T, 0));
        return OLLM_OK;
    }
    memset(&small, 0, sizeof small);
    for (i = 0; i < n; i++) {
        ollm__cu_xgroup *d = &small.g[i];
        d->w = W[i]->data.ptr; d->b = bias && bias[i] ? bias[i]->data.ptr : NULL; d->x = (const float *)x.ptr;
        d->y = (float *)y[i].ptr; d->T = T; d->N = (int)W[i]->rows;
        ollm__cu_wrote(c, d->y, (uint64_t)T * W[i]->rows * 4);
    }
    return ollm__cu_group_launch(c, k, w0, small.g, &small, n, T, bdt < 0 ? 0 : bdt);
}

static ollm_result ollm__cu_add_bias(ollm__backend *b, ollm__buf y, const ollm__w *bias, int T, int64_t n) {
    ollm__cu *c = (ollm__cu *)b; long long all = (long long)T * n; int nn = (int)n; void *args[4];
    int k = ollm__cu_wk(bias->dtype, OLLM__K_add_bias_f32, OLLM__K_add_bias_f16, OLLM__K_add_bias_bf16);
    OLLM__CU_ENTER(c);
    if (k < 0) return ollm__cu_bad_dtype(c, "add_bias", bias->dtype);
    if (all <= 0) return OLLM_OK;
    args[0] = &y.ptr; args[1] = (void *)&bias->data.ptr; args[2] = &all; args[3] = &nn;
    ollm__cu_wrote(c, y.ptr, (uint64_t)all * 4);
    return ollm__cu_launch(c, k, ollm__cu_grid(all, 256, 8192), 1, 256, 0, args);
}
/* Host index arrays go up into c->idx through the pinned arena; kernels on the same stream read them in order. */
static ollm_result ollm__cu_gather(ollm__backend *b, ollm__buf dst, ollm__buf src, const int32_t *idx, int R, int64_t width) {
    ollm__cu *c = (ollm__cu *)b; long long w = width; void *args[4];
    OLLM__CU_ENTER(c);
    if (R <= 0) return OLLM_OK;
    OLLM__TRY(ollm__cu_scratch(c, &c->idx, (uint64_t)R * 4));
    OLLM__TRY(ollm__cu_put(c, ollm__dp(c->idx), idx, (uint64_t)R * 4));
    args[0] = &dst.ptr; args[1] = &src.ptr; args[2] = &c->idx.ptr; args[3] = &w;
    ollm__cu_wrote(c, dst.ptr, (uint64_t)R * width * 4);
    return ollm__cu_launch(c, OLLM__K_gather_rows, (unsigned)R, (unsigned)((width + 255) / 256), 256, 0, args);
}
/* The combine's tables by value (kernels.cu.inc: cmb_small) while T k <= OLLM__CMB_MAX */
typedef struct ollm__cu_cmb_small { int32_t rows[OLLM__CMB_MAX]; float w[OLLM__CMB_MAX]; } ollm__cu_cmb_small;
static ollm_result ollm__cu_combine(ollm__backend *b, ollm__buf x, ollm__buf src, const int32_t *rows, const float *w,
                                    int T, int k, int64_t width) {
    ollm__cu *c = (ollm__cu *)b; long long wd = width; void *args[7], *rp = NULL, *wp = NULL;
    uint64_t n = (uint64_t)T * k * 4; ollm__cu_cmb_small small;
    OLLM__CU_ENTER(c);
    if (T <= 0 || k <= 0) return OLLM_OK;
    memset(&small, 0, sizeof small);
    if ((int64_t)T * k <= OLLM__CMB_MAX) { memcpy(small.rows, rows, (size_t)n); memcpy(small.w, w, (size_t)n); }
    else {   /* rows and weights up in one copy */
        const void *src2[2]; uint64_t n2[2];
        OLLM__TRY(ollm__cu_scratch(c, &c->idx, 2 * n));
        src2[0] = rows; src2[1] = w; n2[0] = n2[1] = n;
        OLLM__TRY(ollm__cu_putv(c, ollm__dp(c->idx), src2, n2, 2));
        rp = c->idx.ptr; wp = (char *)c->idx.ptr + n;
    }
    args[0] = &x.ptr; args[1] = &src.ptr; args[2] = &rp; args[3] = &wp; args[4] = &k; args[5] = &wd; args[6] = &small;
    ollm__cu_wrote(c, x.ptr, (uint64_t)T * width * 4);
    return ollm__cu_launch(c, OLLM__K_moe_combine, (unsigned)T, (unsigned)((width + 255) / 256), 256, 0, args);
}
static ollm_result ollm__cu_swiglu_clamp(ollm__backend *b, ollm__buf y, ollm__buf gu, int64_t R, int64_t I, float limit,
                                         float alpha) {
    ollm__cu *c = (ollm__cu *)b; long long n = (long long)R * I; void *args[5];
    OLLM__CU_ENTER(c);
    if (n <= 0) return OLLM_OK;
    if ((uintptr_t)gu.ptr & 7) return ollm__fail(b->log, OLLM_ERR_INVALID_ARG, "CUDA swiglu_clamp: unaligned input");
    args[0] = &y.ptr; args[1] = &gu.ptr; args[2] = &n; args[3] = &limit; args[4] = &alpha;
    ollm__cu_wrote(c, y.ptr, (uint64_t)n * 4);
    return ollm__cu_launch(c, OLLM__K_swiglu_clamp, ollm__cu_grid(n, 256, 8192), 1, 256, 0, args);
}

static ollm_result ollm__cu_split_cols(ollm__backend *b, ollm__buf a, ollm__buf bb, ollm__buf src, int64_t rows,
                                       int64_t na, int64_t nb) {
    ollm__cu *c = (ollm__cu *)b; long long r = rows, x = na, y = nb; void *args[6];
    OLLM__CU_ENTER(c);
    if (rows <= 0) return OLLM_OK;
    args[0] = &a.ptr; args[1] = &bb.ptr; args[2] = &src.ptr; args[3] = &r; args[4] = &x; args[5] = &y;
    ollm__cu_wrote(c, a.ptr, (uint64_t)rows * na * 4); ollm__cu_wrote(c, bb.ptr, (uint64_t)rows * nb * 4);
    return ollm__cu_launch(c, OLLM__K_split_cols, ollm__cu_grid(rows * (na + nb), 256, 8192), 1, 256, 0, args);
}
static ollm_result ollm__cu_sigmoid_mul(ollm__backend *b, ollm__buf y, ollm__buf g, int64_t n) {
    ollm__cu *c = (ollm__cu *)b; long long nn = n; void *args[3];
    OLLM__CU_ENTER(c);
    if (n <= 0) return OLLM_OK;
    args[0] = &y.ptr; args[1] = &g.ptr; args[2] = &nn;
    ollm__cu_wrote(c, y.ptr, (uint64_t)n * 4);
    return ollm__cu_launch(c, OLLM__K_sigmoid_mul, ollm__cu_grid(n, 256, 8192), 1, 256, 0, args);
}
static ollm_result ollm__cu_dn_split(ollm__backend *b, ollm__buf mix, ollm__buf z, ollm__buf beta, ollm__buf g,
                                     ollm__buf qkvz, ollm__buf ba, const ollm__w *A_log, const ollm__w *dt_bias,
                                     const ollm__dn_dims *d, int T) {
    ollm__cu *c = (ollm__cu *)b; void *args[15]; int adt = A_log->dtype, ddt = dt_bias->dtype, nk = d->nk, dk = d->dk;
    int r = d->nv / d->nk, dv = d->dv; int64_t C = 2 * (int64_t)nk * dk + (int64_t)d->nv * dv;
    OLLM__CU_ENTER(c);
    if (ollm__cu_wk(adt, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "A_log", adt);
    if (ollm__cu_wk(ddt, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "dt_bias", ddt);
    if (T <= 0) return OLLM_OK;
    args[0] = &mix.ptr; args[1] = &z.ptr; args[2] = &beta.ptr; args[3] = &g.ptr; args[4] = &qkvz.ptr; args[5] = &ba.ptr;
    args[6] = (void *)&A_log->data.ptr; args[7] = &adt; args[8] = (void *)&dt_bias->data.ptr; args[9] = &ddt;
    args[10] = &T; args[11] = &nk; args[12] = &dk; args[13] = &r; args[14] = &dv;
    ollm__cu_wrote(c, mix.ptr, (uint64_t)T * C * 4); ollm__cu_wrote(c, z.ptr, (uint64_t)T * d->nv * dv * 4);
    ollm__cu_wrote(c, beta.ptr, (uint64_t)T * d->nv * 4); ollm__cu_wrote(c, g.ptr, (uint64_t)T * d->nv * 4);
    return ollm__cu_launch(c, OLLM__K_dn_split, ollm__cu_grid((int64_t)T * nk * (2 * dk + 2 * r * dv), 256, 8192), 1, 256,
                           0, args);
}
static ollm_result ollm__cu_dn_conv(ollm__backend *b, ollm__buf y, ollm__buf state, ollm__buf mix, const ollm__w *w,
                                    int T, int C, int K) {
    ollm__cu *c = (ollm__cu *)b; void *args[7];
    int k = ollm__cu_wk(w->dtype, OLLM__K_dn_conv_f32, OLLM__K_dn_conv_f16, OLLM__K_dn_conv_bf16);
    OLLM__CU_ENTER(c);
    if (k < 0) return ollm__cu_bad_dtype(c, "conv1d", w->dtype);
    if (T <= 0) return OLLM_OK;
    args[0] = &y.ptr; args[1] = &state.ptr; args[2] = &mix.ptr; args[3] = (void *)&w->data.ptr; args[4] = &T; args[5] = &C;
    args[6] = &K;
    ollm__cu_wrote(c, y.ptr, (uint64_t)T * C * 4); ollm__cu_wrote(c, state.ptr, (uint64_t)(K - 1) * C * 4);
    return ollm__cu_launch(c, k, (unsigned)((C + 127) / 128), 1, 128, 0, args);
}
/* dynamic shared memory of ollm_k_dn_chunk_<16 nb> for key heads of dk (the layout in kernels.cu.inc) */
static unsigned ollm__cu_dn_chunk_smem(int nb, int dk) {
    unsigned ch = 16u * (unsigned)nb, dkp = ((unsigned)dk + 3) & ~3u, ks = ((dkp >> 2) | 1) << 2;
    return 8 * ch + 4 * (2 * ch * ks + dkp * 32 + 2 * ch * (ch + 4) + ch * 32 + 16 * 32 + (unsigned)nb * 256 + 3 * ch);
}
/* l2norm, then the delta rule: recurrent (one token after another) below 64 tokens, else in chunks of 64 tokens
   (32 where 64 do not fit the shared memory; the recurrent kernel where neither does) */
static ollm_result ollm__cu_dn_rule(ollm__backend *b, ollm__buf o, ollm__buf qkv, ollm__buf beta, ollm__buf g,
                                    ollm__buf S, const ollm__dn_dims *d, int T) {
    ollm__cu *c = (ollm__cu *)b; void *args[10]; int nk = d->nk, nv = d->nv, dk = d->dk, dv = d->dv, nb = 0;
    long long C = 2ll * nk * dk + (long long)nv * dv; float qscale = 1.0f / sqrtf((float)dk);
    OLLM__CU_ENTER(c);
    if (dk > 256)
        return ollm__fail(b->log, OLLM_ERR_UNSUPPORTED, "CUDA Gated DeltaNet: key head dim %d > 256 is not supported", dk);
    if (T <= 0) return OLLM_OK;
    args[0] = &qkv.ptr; args[1] = &T; args[2] = &C; args[3] = &nk; args[4] = &dk; args[5] = &qscale;
    ollm__cu_wrote(c, qkv.ptr, (uint64_t)T * C * 4);
    OLLM__TRY(ollm__cu_launch(c, OLLM__K_dn_l2norm, ollm__cu_grid((int64_t)T * 2 * nk, 8, 0x7fffffff), 1, 256, 0, args));
    args[0] = &o.ptr; args[1] = &qkv.ptr; args[2] = &beta.ptr; args[3] = &g.ptr; args[4] = &S.ptr; args[5] = &T;
    args[6] = &nk; args[7] = &nv; args[8] = &dk; args[9] = &dv;
    ollm__cu_wrote(c, o.ptr, (uint64_t)T * nv * dv * 4); ollm__cu_wrote(c, S.ptr, (uint64_t)nv * dk * dv * 4);
    if (T >= 64 && c->dn_chunk >= 64 && ollm__cu_dn_chunk_smem(4, dk) <= (unsigned)c->smem_optin) nb = 4;
    else if (T >= 64 && c->dn_chunk >= 32 && ollm__cu_dn_chunk_smem(2, dk) <= (unsigned)c->smem_optin) nb = 2;
    if (nb)
        return ollm__cu_launch(c, nb == 4 ? OLLM__K_dn_chunk_64 : OLLM__K_dn_chunk_32, (unsigned)nv,
                               (unsigned)((dv + 31) / 32), 256, ollm__cu_dn_chunk_smem(nb, dk), args);
    return ollm__cu_launch(c, dk <= 128 ? OLLM__K_dn_rule_32 : OLLM__K_dn_rule_64, (unsigned)nv, (unsigned)((dv + 31) / 32),
                           128, 0, args);
}
static ollm_result ollm__cu_norm_gated(ollm__backend *b, ollm__buf y, ollm__buf z, const ollm__w *w, int64_t rows, int n,
                                       float eps) {
    ollm__cu *c = (ollm__cu *)b; long long r = rows; void *args[6];
    int k = ollm__cu_wk(w->dtype, OLLM__K_norm_gated_f32, OLLM__K_norm_gated_f16, OLLM__K_norm_gated_bf16);
    OLLM__CU_ENTER(c);
    if (k < 0) return ollm__cu_bad_dtype(c, "norm_gated", w->dtype);
    if (rows <= 0) return OLLM_OK;
    args[0] = &y.ptr; args[1] = &z.ptr; args[2] = (void *)&w->data.ptr; args[3] = &r; args[4] = &n; args[5] = &eps;
    ollm__cu_wrote(c, y.ptr, (uint64_t)rows * n * 4);
    return ollm__cu_launch(c, k, ollm__cu_grid(rows, 8, 0x7fffffff), 1, 256, 0, args);
}

static ollm_result ollm__cu_rope(ollm__backend *b, ollm__buf q, int nq, ollm__buf k, int nk, int T, int head_dim,
                                 int rot_dim, int pos0, ollm__buf inv_freq, float mscale) {
    ollm__cu *c = (ollm__cu *)b; void *args[9];
    OLLM__CU_ENTER(c);
    if (T <= 0 || rot_dim < 2) return OLLM_OK;
    args[0] = &q.ptr; args[1] = &nq; args[2] = &k.ptr; args[3] = &nk; args[4] = &head_dim; args[5] = &rot_dim;
    args[6] = &pos0; args[7] = &inv_freq.ptr; args[8] = &mscale;
    ollm__cu_wrote(c, q.ptr, (uint64_t)T * nq * head_dim * 4);
    if (nk) ollm__cu_wrote(c, k.ptr, (uint64_t)T * nk * head_dim * 4);
    return ollm__cu_launch(c, OLLM__K_rope, (unsigned)T, 1, 128, 0, args);
}

static ollm_result ollm__cu_silu_mul(ollm__backend *b, ollm__buf g, ollm__buf u, int64_t n) {
    ollm__cu *c = (ollm__cu *)b; long long nn = n; void *args[3];
    OLLM__CU_ENTER(c);
    if (n <= 0) return OLLM_OK;
    args[0] = &g.ptr; args[1] = &u.ptr; args[2] = &nn;
    ollm__cu_wrote(c, g.ptr, (uint64_t)n * 4);
    return ollm__cu_launch(c, OLLM__K_silu_mul, ollm__cu_grid(n, 1024, 8192), 1, 256, 0, args);
}

#define OLLM__AS_BK 32
/* The decode kernel's pipeline depth: ns stages of shared memory per warp, as deep as lets two blocks share an SM
   (else one). Returns ns (0: not even 2 stages fit this device's shared memory; the CUDA-core kernel then serves),
   the block's shared memory and the blocks an SM holds (the driver's occupancy where it says fewer than the shared
   memory allows), so that the splits make one wave. */
#define OLLM__DEC_WARPS 2
static int ollm__cu_dec_stages(const ollm__cu *c, int hd, unsigned *smem, int *bps) {
    int ns, best = 0; unsigned q = 16u * (unsigned)(hd + 8) * 2u, stage = 2u * 32u * (unsigned)(hd + 8) * 2u;
    ollm__cu_function f = c->fn[hd == 64 ? OLLM__K_attn_dec_64 : OLLM__K_attn_dec_128];
    for (ns = 4; ns >= 2; ns--) {
        unsigned s = q + OLLM__DEC_WARPS * (unsigned)ns * stage;
        int fit = (c->smem_optin + 1024) / (int)(s + 1024), occ = 0;   /* 1 KiB per block is the driver's */
        if (s > (unsigned)c->smem_optin) continue;
        if (c->cu.cuOccupancyMaxActiveBlocksPerMultiprocessor && f &&
            c->cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(&occ, f, 32 * OLLM__DEC_WARPS, s) == 0 && occ > 0 && occ < fit)
            fit = occ;
        if (fit >= 2 || !best) { best = ns; *smem = s; *bps = fit; }
        if (fit >= 2) break;
    }
    return best;
}
/* ollm_k_fa3_*'s shared memory: 1024 bytes of alignment slack, Q [128, hd] and three stages of K and V [128, hd], bf16
   (kernels.cu.inc's FA3_ST) */
static unsigned ollm__fa3_smem(int hd) { return 1024u + 128u * (unsigned)hd * 2u * 7u; }
static ollm_result ollm__cu_attention(ollm__backend *b, ollm__buf o, ollm__buf q, ollm__buf k, ollm__buf v,
                                      ollm__buf k_cache, ollm__buf v_cache, const ollm__attn_args *a) {
    ollm__cu *c = (ollm__cu *)b; void *args[19];
    int T = a->T, pos0 = a->pos0, nh = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim, window = a->window, fa2, dec;
    int ring = a->ring, width = nkv * hd; float scale = a->scale; const void *sinks = a->sinks ? a->sinks->data.ptr : NULL;
    int sink_dt = a->sinks ? a->sinks->dtype : 0, L = pos0 + T, ns = 0;
    long long n = (long long)T * width; uint64_t rows = k_cache.bytes < v_cache.bytes ? k_cache.bytes : v_cache.bytes;
    OLLM__CU_ENTER(c);
    if (T <= 0) return OLLM_OK;
    if (nkv <= 0 || nh % nkv || hd <= 0 || hd % 2 || pos0 < 0)
        return ollm__fail(b->log, OLLM_ERR_INVALID_ARG, "CUDA attention: %d heads, %d kv heads, head_dim %d", nh, nkv, hd);
    if (a->sinks && ollm__cu_wk(sink_dt, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "attention sinks", sink_dt);
    rows /= (uint64_t)width * 2;
    if (!ollm__attn_fits(a, rows))
        return ollm__fail(b->log, OLLM_ERR_INVALID_ARG, "CUDA attention: positions %d..%d (window %d) do not fit a KV "
                          "cache of %llu rows%s", pos0, L - 1, window, (unsigned long long)rows, ring ? " used as a ring" : "");
    fa2 = T >= 16 && (hd == 64 || hd == 128) && ollm__al16(q.ptr) && ollm__al16(k_cache.ptr) && ollm__al16(v_cache.ptr);
    dec = !fa2 && (hd == 64 || hd == 128) && T * (nh / nkv) <= 16 && ollm__al16(q.ptr) && ollm__al16(k.ptr) &&
          ollm__al16(v.ptr) && ollm__al16(k_cache.ptr) && ollm__al16(v_cache.ptr) &&
          (ns = c->dec_ns[hd == 128]) > 0;
    /* 1. k, v (fp32) into the bf16 caches at pos0 (in a ring: the rows of the positions): by the decode kernel as it
          reads them, else appended first */
    if (ring) { ollm__cu_wrote(c, k_cache.ptr, k_cache.bytes); ollm__cu_wrote(c, v_cache.ptr, v_cache.bytes); }
    else {
        ollm__cu_wrote(c, (char *)k_cache.ptr + (uint64_t)pos0 * width * 2, (uint64_t)n * 2);
        ollm__cu_wrote(c, (char *)v_cache.ptr + (uint64_t)pos0 * width * 2, (uint64_t)n * 2);
    }
    if (!dec) {
        args[0] = &k_cache.ptr; args[1] = &v_cache.ptr; args[2] = &k.ptr; args[3] = &v.ptr; args[4] = &pos0; args[5] = &n;
        args[6] = &width; args[7] = &ring;
        OLLM__TRY(ollm__cu_launch(c, OLLM__K_kv_append, ollm__cu_grid(n, 256, 8192), 1, 256, 0, args));
    }
    ollm__cu_wrote(c, o.ptr, (uint64_t)T * nh * hd * 4);
    /* 2. prefill: on sm_90a the wgmma kernel (128 queries a block), else FlashAttention-2 (64) on mma.sync; the same
          arguments */
    if (fa2) {
        unsigned fsmem = (unsigned)((64 + 4 * 64) * (hd + 8) * 2);
        args[0] = &o.ptr; args[1] = &q.ptr; args[2] = &k_cache.ptr; args[3] = &v_cache.ptr; args[4] = &T; args[5] = &pos0;
        args[6] = &nh; args[7] = &nkv; args[8] = &window; args[9] = &ring; args[10] = &scale; args[11] = (void *)&sinks;
        args[12] = &sink_dt;
        if (c->fa3)
            return ollm__cu_launch(c, hd == 64 ? OLLM__K_fa3_64 : OLLM__K_fa3_128, (unsigned)((T + 127) / 128), (unsigned)nh,
                                   256, ollm__fa3_smem(hd), args);
        return ollm__cu_launch(c, hd == 64 ? OLLM__K_fa2_64 : OLLM__K_fa2_128, (unsigned)((T + 63) / 64), (unsigned)nh,
                               128, fsmem, args);
    }
    /* 3. decode (at most 16 query rows per kv head): flash-decoding on the tensor cores, the keys split across blocks;
          the block whose split holds the new positions takes their keys and values from k, v and writes them */
    if (dec) {
        int lo = window > 0 && pos0 - window + 1 > 0 ? pos0 - window + 1 : 0, span = L - lo, per = 32 * OLLM__DEC_WARPS;
        int nsplit = (c->n_sm * c->dec_bps[hd == 128]) / nkv, kps;       /* one wave of blocks */
        unsigned smem = c->dec_smem[hd == 128];
        if (nsplit > (span + per - 1) / per) nsplit = (span + per - 1) / per;   /* at least a tile of keys per warp */
        if (nsplit > 1024) nsplit = 1024;                               /* bounds the partials' scratch */
        if (nsplit < 1) nsplit = 1;
        kps = (span + nsplit - 1) / nsplit;
        kps = (kps + 31) / 32 * 32;
        nsplit = (span + kps - 1) / kps;
        if (nsplit > 1) OLLM__TRY(ollm__cu_scratch(c, &c->part, (uint64_t)nsplit * T * nh * (hd + 2) * 4));
        args[0] = &o.ptr; args[1] = &c->part.ptr; args[2] = &q.ptr; args[3] = &k_cache.ptr; args[4] = &v_cache.ptr;
        args[5] = &T; args[6] = &pos0; args[7] = &nh; args[8] = &nkv; args[9] = &window; args[10] = &ring;
        args[11] = &scale; args[12] = (void *)&sinks; args[13] = &sink_dt; args[14] = &nsplit; args[15] = &kps;
        args[16] = &ns; args[17] = &k.ptr; args[18] = &v.ptr;
        OLLM__TRY(ollm__cu_launch(c, hd == 64 ? OLLM__K_attn_dec_64 : OLLM__K_attn_dec_128, (unsigned)nkv,
                                  (unsigned)nsplit, 32 * OLLM__DEC_WARPS, smem, args));
        if (nsplit > 1) {
            args[0] = &o.ptr; args[1] = &c->part.ptr; args[2] = &T; args[3] = &nh; args[4] = &hd; args[5] = &nsplit;
            args[6] = (void *)&sinks; args[7] = &sink_dt;
            OLLM__TRY(ollm__cu_launch(c, OLLM__K_attn_combine, (unsigned)(T * nh), 1, 128, 0, args));
        }
        return OLLM_OK;
    }
    /* 4. otherwise (other head sizes, many rows per kv head): CUDA cores, keys split when few blocks would run */
    {
        int g = nh / nkv, R = 4096 / hd, nrb, base, nsplit, kps, span; unsigned smem;
        if (R > 64) R = 64;
        if (R > T * g) R = T * g;
        if (R < 1) return ollm__fail(b->log, OLLM_ERR_UNSUPPORTED, "CUDA attention: head_dim %d > 4096", hd);
        smem = (unsigned)((R * hd + 2 * OLLM__AS_BK * (hd + 1) + R * (OLLM__AS_BK + 1) + 3 * R) * 4);
        if (smem > (unsigned)c->smem_optin)
            return ollm__fail(b->log, OLLM_ERR_UNSUPPORTED, "CUDA attention: head_dim %d needs %u bytes of shared memory",
                              hd, smem);
        nrb = (T * g + R - 1) / R; base = nkv * nrb;
        span = window > 0 && window < L ? window + T : L;   /* keys one block may see */
        nsplit = base >= 2 * c->n_sm ? 1 : (4 * c->n_sm + base - 1) / base;
        if (nsplit > (span + 255) / 256) nsplit = (span + 255) / 256;   /* at least 256 keys a split */
        if (nsplit > 1024) nsplit = 1024;                               /* bounds the partials' scratch */
        if (nsplit < 1) nsplit = 1;
        kps = (L + nsplit - 1) / nsplit;
        kps = (kps + OLLM__AS_BK - 1) / OLLM__AS_BK * OLLM__AS_BK;
        nsplit = (L + kps - 1) / kps;
        if (nsplit > 1) OLLM__TRY(ollm__cu_scratch(c, &c->part, (uint64_t)nsplit * T * nh * (hd + 2) * 4));
        args[0] = &o.ptr; args[1] = &c->part.ptr; args[2] = &q.ptr; args[3] = &k_cache.ptr; args[4] = &v_cache.ptr;
        args[5] = &T; args[6] = &pos0; args[7] = &nh; args[8] = &nkv; args[9] = &hd; args[10] = &window; args[11] = &ring;
        args[12] = &scale; args[13] = (void *)&sinks; args[14] = &sink_dt; args[15] = &R; args[16] = &nsplit;
        args[17] = &kps;
        OLLM__TRY(ollm__cu_launch(c, OLLM__K_attn_split, (unsigned)base, (unsigned)nsplit, 128, smem, args));
        if (nsplit > 1) {
            args[0] = &o.ptr; args[1] = &c->part.ptr; args[2] = &T; args[3] = &nh; args[4] = &hd; args[5] = &nsplit;
            args[6] = (void *)&sinks; args[7] = &sink_dt;
            OLLM__TRY(ollm__cu_launch(c, OLLM__K_attn_combine, (unsigned)(T * nh), 1, 128, 0, args));
        }
        return OLLM_OK;
    }
}

/* Greedy decoding: the largest logit's index found on the device (ollm_k_argmax), so 8 bytes come back, not v. */
static ollm_result ollm__cu_argmax(ollm__backend *b, ollm__buf v, int64_t n, int32_t *out) {
    ollm__cu *c = (ollm__cu *)b; void *args[3]; long long nn = n; uint64_t key = 0; unsigned grid;
    OLLM__CU_ENTER(c);
    *out = 0;
    if (n <= 0) return OLLM_OK;
    if (!c->amax.ptr) OLLM__TRY(ollm__cu_alloc(b, 8, &c->amax));
    OLLM__CU(c, cuMemsetD8Async(ollm__dp(c->amax), 0, 8, c->st));
    grid = (unsigned)((n + 255) / 256 < 4 * c->n_sm ? (n + 255) / 256 : 4 * c->n_sm);
    args[0] = &v.ptr; args[1] = &nn; args[2] = &c->amax.ptr;
    OLLM__TRY(ollm__cu_launch(c, OLLM__K_argmax, grid, 1, 256, 0, args));
    OLLM__TRY(ollm__cu_download(b, &key, c->amax, 8));
    *out = key ? (int32_t)(0xffffffffu - (uint32_t)key) : 0;
    return OLLM_OK;
}

static void ollm__cu_destroy(ollm__backend *b) {
    ollm__cu *c = (ollm__cu *)b; int i;
    if (!c) return;
    if (c->have_ctx) {
        c->cu.cuCtxSetCurrent(c->ctx);
        ollm__cu_release(b, &c->ids); ollm__cu_release(b, &c->abf); ollm__cu_release(b, &c->part);
        ollm__cu_release(b, &c->idx); ollm__cu_release(b, &c->wbf); ollm__cu_release(b, &c->amax);
        if (c->st) c->cu.cuStreamSynchronize(c->st);
        if (c->pin) c->cu.cuMemFreeHost(c->pin);
        if (c->ev_read) c->cu.cuEventDestroy(c->ev_read);
        if (c->prof) {
            ollm__cu_prof_flush(c);
            for (i = 0; i < 2 * OLLM__PROF_CAP; i++) if (c->prof->ev[i]) c->cu.cuEventDestroy(c->prof->ev[i]);
            if (c->prof->t0) c->cu.cuEventDestroy(c->prof->t0);
        }
        if (c->used) ollm__logf(b->log, OLLM_LOG_DEBUG, "CUDA backend closed with %llu bytes still allocated",
                                (unsigned long long)c->used);
        if (c->mod) c->cu.cuModuleUnload(c->mod);
        if (c->st) c->cu.cuStreamDestroy(c->st);
        if (c->copy_st) { c->cu.cuStreamSynchronize(c->copy_st); c->cu.cuStreamDestroy(c->copy_st); }
        for (i = 0; i < OLLM__SLOTS; i++) {
            if (c->ev_copy[i]) c->cu.cuEventDestroy(c->ev_copy[i]);
            if (c->ev_done[i]) c->cu.cuEventDestroy(c->ev_done[i]);
        }
        c->cu.cuDevicePrimaryCtxRelease(c->dev);
    }
    if (c->prof && c->prof->trace) {
        int bad = ferror(c->prof->trace);
        if (fclose(c->prof->trace) != 0 || bad)
            ollm__logf(b->log, OLLM_LOG_WARN, "OLLM_PROFILE: the trace could not be written in full (%s)", strerror(errno));
    }
    OLLM_FREE(c->prof);
    ollm__nvrtc_unload(&c->nv);
    if (c->cu.lib) dlclose(c->cu.lib);
    OLLM_FREE(c);
}

/* Opens device 0: driver, NVRTC, primary context, stream, the kernels (cache or compile), the budget.
   OLLM_ERR_NO_DEVICE with *why when no driver, GPU or NVRTC is usable (AUTO then takes the CPU). */
static ollm_result ollm__cuda_create(const ollm_model_config *cfg, ollm__log *lg, ollm__backend **out, const char **why) {
    ollm__cu *c; ollm__cu_result e; int n = 0, i, drv = 0, how = 0; void *cubin = NULL; size_t nbytes = 0;
    size_t free_b = 0, total_b = 0; ollm_result r; double t0 = ollm__now();
    ollm_model_config defcfg;
    *out = NULL; *why = ollm__cu_why; ollm__cu_why[0] = 0;
    if (!cfg) { memset(&defcfg, 0, sizeof defcfg); cfg = &defcfg; }
    c = (ollm__cu *)ollm__calloc(1, sizeof *c);
    if (!c) { *why = "out of host memory"; return OLLM_ERR_NO_MEMORY; }
    c->b.log = lg;
#define OLLM__CU_NODEV(...) do { snprintf(ollm__cu_why, sizeof ollm__cu_why, __VA_ARGS__); ollm__cu_destroy(&c->b); \
                                 return OLLM_ERR_NO_DEVICE; } while (0)
    if (!ollm__cuda_load(&c->cu, ollm__cu_why, sizeof ollm__cu_why)) { ollm__cu_destroy(&c->b); return OLLM_ERR_NO_DEVICE; }
    if ((e = c->cu.cuInit(0)) != 0) OLLM__CU_NODEV("cuInit: %s", ollm__cu_errname(c, e));
    if ((e = c->cu.cuDeviceGetCount(&n)) != 0 || n < 1) OLLM__CU_NODEV("no CUDA GPU visible");
    if ((e = c->cu.cuDeviceGet(&c->dev, 0)) != 0) OLLM__CU_NODEV("cuDeviceGet: %s", ollm__cu_errname(c, e));
    c->cu.cuDriverGetVersion(&drv);
    c->cu.cuDeviceGetName(c->dev_name, sizeof c->dev_name - 1, c->dev);
    c->cu.cuDeviceGetAttribute(&c->cc_major, OLLM__CU_ATTR_CC_MAJOR, c->dev);
    c->cu.cuDeviceGetAttribute(&c->cc_minor, OLLM__CU_ATTR_CC_MINOR, c->dev);
    c->cu.cuDeviceGetAttribute(&c->n_sm, OLLM__CU_ATTR_MULTIPROCESSOR_COUNT, c->dev);
    c->cu.cuDeviceGetAttribute(&c->smem_optin, OLLM__CU_ATTR_SMEM_OPTIN, c->dev);
    if (c->cc_major < 8)   /* mma.sync bf16, cp.async, ldmatrix */
        OLLM__CU_NODEV("%s is sm_%d%d; the kernels need sm_80 or newer", c->dev_name, c->cc_major, c->cc_minor);
    if (c->n_sm < 1) c->n_sm = 1;
    /* sm_90 builds for sm_90a, which has wgmma: the CUBIN is for this exact device anyway */
    snprintf(c->arch, sizeof c->arch, "sm_%d%d%s", c->cc_major, c->cc_minor, c->cc_major == 9 && c->cc_minor == 0 ? "a" : "");
    {   /* OLLM_GEMM=mma keeps prefill GEMMs on mma.sync (a comparison, or a fallback) */
        const char *g = getenv("OLLM_GEMM");
        c->wgmma = c->cc_major == 9 && c->cc_minor == 0 && c->cu.cuTensorMapEncodeTiled && !(g && strcmp(g, "mma") == 0);
        g = getenv("OLLM_ATTN");
        c->fa3 = c->cc_major == 9 && c->cc_minor == 0 && !(g && strcmp(g, "fa2") == 0);
        g = getenv("OLLM_PDL");   /* every kernel starts with griddepcontrol.wait on sm_90+ (kernels.cu.inc) */
        c->pdl = c->cc_major >= 9 && c->cu.cuLaunchKernelEx && !(g && strcmp(g, "0") == 0);
    }
    c->dn_chunk = 64;
    {   /* OLLM_PROFILE=1: the device's timeline, logged after each prefill and generation; OLLM_PROFILE=FILE: also
           written op by op */
        const char *pf = getenv("OLLM_PROFILE");
        if (pf && *pf && strcmp(pf, "0") != 0 && c->cu.cuEventElapsedTime &&
            (c->prof = (ollm__cu_prof *)ollm__calloc(1, sizeof *c->prof)) != NULL && strcmp(pf, "1") != 0 &&
            !(c->prof->trace = fopen(pf, "w")))
            ollm__logf(lg, OLLM_LOG_WARN, "OLLM_PROFILE: cannot write %s (%s): profiling without the trace", pf,
                       strerror(errno));
    }
    {
        char err[1024];
        if (!ollm__nvrtc_load(&c->nv, cfg->nvrtc_path, err, sizeof err)) OLLM__CU_NODEV("%s", err);
    }
    if ((e = c->cu.cuDevicePrimaryCtxRetain(&c->ctx, c->dev)) != 0) OLLM__CU_NODEV("cuDevicePrimaryCtxRetain: %s", ollm__cu_errname(c, e));
    c->have_ctx = 1;
    if ((e = c->cu.cuCtxSetCurrent(c->ctx)) != 0) OLLM__CU_NODEV("cuCtxSetCurrent: %s", ollm__cu_errname(c, e));
    if ((e = c->cu.cuStreamCreate(&c->st, OLLM__CU_STREAM_NON_BLOCKING)) != 0) OLLM__CU_NODEV("cuStreamCreate: %s", ollm__cu_errname(c, e));
    /* the kernels */
    r = ollm__cuda_build(&c->nv, c->arch, cfg->cache_dir, lg, &cubin, &nbytes, &how, NULL, 0);
    if (r != OLLM_OK) { snprintf(ollm__cu_why, sizeof ollm__cu_why, "%s", lg->err); ollm__cu_destroy(&c->b); return r; }
    e = c->cu.cuModuleLoadData(&c->mod, cubin);
    if (e != 0 && how == OLLM__CACHE_HIT) {   /* a cached CUBIN the driver refuses: rebuild, never do worse than no cache */
        ollm__logf(lg, OLLM_LOG_INFO, "kernel cache: the driver refused the cached CUBIN (%s); recompiling", ollm__cu_errname(c, e));
        OLLM_FREE(cubin); cubin = NULL;
        {
            char *src = ollm__kernel_program();
            r = src ? ollm__nvrtc_compile(&c->nv, src, c->arch, lg, &cubin, &nbytes) : OLLM_ERR_NO_MEMORY;
            OLLM_FREE(src);
        }
        if (r != OLLM_OK) { snprintf(ollm__cu_why, sizeof ollm__cu_why, "%s", lg->err); ollm__cu_destroy(&c->b); return r; }
        e = c->cu.cuModuleLoadData(&c->mod, cubin);
    }
    OLLM_FREE(cubin);
    if (e != 0) {
        c->mod = NULL;
        r = ollm__fail(lg, OLLM_ERR_DEVICE, "cuModuleLoadData (kernels for %s): %s", c->arch, ollm__cu_errname(c, e));
        snprintf(ollm__cu_why, sizeof ollm__cu_why, "%s", lg->err); ollm__cu_destroy(&c->b); return r;
    }
    c->mx_smem = c->smem_optin;   /* lowered below if a kernel refuses it */
    for (i = 0; i < OLLM__K_COUNT; i++) {
        if ((e = c->cu.cuModuleGetFunction(&c->fn[i], c->mod, ollm__knames[i])) != 0) {
            r = ollm__fail(lg, OLLM_ERR_DEVICE, "cuModuleGetFunction(%s): %s", ollm__knames[i], ollm__cu_errname(c, e));
            snprintf(ollm__cu_why, sizeof ollm__cu_why, "%s", lg->err); ollm__cu_destroy(&c->b); return r;
        }
        /* kernels with dynamic shared memory may take all the device allows; the MXFP4 GEMVs, refused, the default
           48 KiB */
        {
            int mx = i == OLLM__K_gemv_mxfp4_1 || i == OLLM__K_gemv_mxfp4_8 || i == OLLM__K_gemv_group_mxfp4_1 ||
                     i == OLLM__K_gemv_group_mxfp4_8;
            if ((mx || i == OLLM__K_gemm_bf16 || i == OLLM__K_fa2_64 || i == OLLM__K_fa2_128 || i == OLLM__K_attn_split ||
                 i == OLLM__K_attn_dec_64 || i == OLLM__K_attn_dec_128 || i == OLLM__K_dn_chunk_32 ||
                 i == OLLM__K_dn_chunk_64) &&
                c->cu.cuFuncSetAttribute(c->fn[i], OLLM__CU_FUNC_MAX_DYNAMIC_SMEM, c->smem_optin) != 0 && mx)
                c->mx_smem = 48 << 10;
        }
        /* the wgmma attention's Q and three stages of K and V: without them, FlashAttention-2 */
        if ((i == OLLM__K_fa3_64 || i == OLLM__K_fa3_128) && c->fa3 &&
            c->cu.cuFuncSetAttribute(c->fn[i], OLLM__CU_FUNC_MAX_DYNAMIC_SMEM, (int)ollm__fa3_smem(i == OLLM__K_fa3_128 ? 128 : 64)) != 0) {
            ollm__logf(lg, OLLM_LOG_INFO, "CUDA: %u bytes of shared memory for the wgmma attention refused; using "
                       "FlashAttention-2", ollm__fa3_smem(i == OLLM__K_fa3_128 ? 128 : 64));
            c->fa3 = 0;
        }
        /* the Hopper GEMM's ring (beside its static barriers): without it, mma.sync */
        if (i == OLLM__K_gemm_wgmma && c->wgmma &&
            c->cu.cuFuncSetAttribute(c->fn[i], OLLM__CU_FUNC_MAX_DYNAMIC_SMEM, OLLM__WGMMA_SMEM) != 0) {
            ollm__logf(lg, OLLM_LOG_INFO, "CUDA: %d bytes of shared memory for the wgmma GEMM refused; using mma.sync",
                       OLLM__WGMMA_SMEM);
            c->wgmma = 0;
        }
    }
    for (i = 0; i < 2; i++) c->dec_ns[i] = ollm__cu_dec_stages(c, 64 << i, &c->dec_smem[i], &c->dec_bps[i]);
    /* the budget */
    if ((e = c->cu.cuMemGetInfo(&free_b, &total_b)) != 0) OLLM__CU_NODEV("cuMemGetInfo: %s", ollm__cu_errname(c, e));
    /* the budget covers every allocation, and 64 MiB is set aside for what the driver holds for the library (the
       kernel module, streams, events), which no allocation of ours counts */
    if (cfg->vram_bytes) c->budget = cfg->vram_bytes >= ((uint64_t)128 << 20) ? cfg->vram_bytes - ((uint64_t)64 << 20) : 0;
    else c->budget = free_b > ((size_t)576 << 20) ? (uint64_t)free_b - ((uint64_t)576 << 20) : 0;
    if (!c->budget) OLLM__CU_NODEV("a GPU memory budget of %llu bytes is too small (at least 128 MiB)",
                                   (unsigned long long)cfg->vram_bytes);
#undef OLLM__CU_NODEV
    c->b.name = "cuda"; c->b.device = c->dev_name; c->b.host = 0; c->b.kv_elem = 2;
    c->b.destroy = ollm__cu_destroy; c->b.alloc = ollm__cu_alloc; c->b.release = ollm__cu_release;
    c->b.upload = ollm__cu_upload; c->b.download = ollm__cu_download; c->b.embed = ollm__cu_embed;
    c->b.rmsnorm = ollm__cu_rmsnorm; c->b.matmul = ollm__cu_matmul; c->b.rope = ollm__cu_rope;
    c->b.attention = ollm__cu_attention; c->b.silu_mul = ollm__cu_silu_mul; c->b.sync = ollm__cu_sync;
    c->b.add_bias = ollm__cu_add_bias; c->b.gather = ollm__cu_gather; c->b.combine = ollm__cu_combine;
    c->b.swiglu_clamp = ollm__cu_swiglu_clamp; c->b.split_cols = ollm__cu_split_cols;
    c->b.matmul_grouped = ollm__cu_matmul_grouped; c->b.matmul_n = ollm__cu_matmul_n; c->b.argmax = ollm__cu_argmax;
    c->b.sigmoid_mul = ollm__cu_sigmoid_mul; c->b.dn_split = ollm__cu_dn_split; c->b.dn_conv = ollm__cu_dn_conv;
    c->b.dn_rule = ollm__cu_dn_rule; c->b.norm_gated = ollm__cu_norm_gated;
    c->b.mem_budget = c->budget; c->b.host_alloc = ollm__cu_host_alloc; c->b.host_free = ollm__cu_host_free;
    c->b.upload_async = ollm__cu_upload_async; c->b.slot_wait = ollm__cu_slot_wait;
    c->b.slot_release = ollm__cu_slot_release; c->b.slot_sync = ollm__cu_slot_sync; c->b.slot_ready = ollm__cu_slot_ready;
    c->b.read_start = ollm__cu_read_start; c->b.read_poll = ollm__cu_read_poll;
    if (c->prof) c->b.profile = ollm__cu_profile;
    ollm__logf(lg, OLLM_LOG_INFO, "CUDA backend: %s (%s, %d SMs, %.1f GiB), driver %d.%d, NVRTC %d.%d (%s); kernels %s "
               "in %.2f s; memory budget %.2f GiB%s", c->dev_name, c->arch, c->n_sm, (double)total_b / 1073741824.0,
               drv / 1000, drv % 1000 / 10, c->nv.major, c->nv.minor, c->nv.path,
               how == OLLM__CACHE_HIT ? "from the cache" : "compiled", ollm__now() - t0, (double)c->budget / 1073741824.0,
               cfg->vram_bytes ? "" : " (free memory minus 512 MiB)");
    *out = &c->b;
    *why = "";
    return OLLM_OK;
}

/* ==== @model ==== model and session state; tensors loaded and checked against the config ================= */

typedef struct ollm__family ollm__family;
typedef struct ollm__tent {   /* a bound tensor */
    ollm__w *w; const ollm__tensor *t; int layer;
    int expert;                  /* OLLM__X_DENSE, OLLM__X_STACKED ([E, ...], one slice per expert), or the expert's index */
    uint64_t off;                /* offset in its layer's block, or (expert tensors) in one expert's block */
} ollm__tent;
enum { OLLM__X_DENSE = -1, OLLM__X_STACKED = -2 };
typedef struct ollm__streamer ollm__streamer;
typedef struct ollm__xcache ollm__xcache;

struct ollm_model {
    ollm__log log;               /* first member: the last error lives here */
    ollm_model_config cfg;
    ollm_model_info info;
    ollm__desc d;
    const ollm__family *fam;
    ollm__st st;
    ollm__backend *B;
    ollm_tokenizer *tok;         /* NULL when the directory has no tokenizer.json */
    void *fw;                    /* the family's weights (ollm__llama, ...) */
    ollm__buf *owned; int n_owned, cap_owned;   /* every buffer the model allocated */
    ollm__buf inv_freq; int rot_dim; float mscale;
    uint64_t loaded_bytes;
    uint64_t fingerprint;        /* hash of config.json and every tensor's name, dtype, shape: keys session folders */
    int32_t chunk, group;        /* the sessions' default prefill chunk and chunks a pass (prefill_group) */
    ollm__tent *ent; int n_ent, cap_ent;        /* every bound tensor, in binding order */
    ollm__streamer *stream;      /* NULL when every layer is resident */
    ollm__xcache *xc;            /* the expert cache (MoE families on a GPU), or NULL */
    const ollm__tensor *embed_file;   /* on a GPU, an untied embedding table left in its file (its rows read as tokens
                                         come: ollm__embed), or NULL */
    uint64_t load_total, load_done, load_said;   /* the open's progress (ollm__load_progress) */
};

struct ollm_session {
    ollm_model *m;
    ollm_session_config cfg;
    int32_t n_ctx, chunk, group; /* group: chunks a forward pass takes at most (prefill_group) */
    uint64_t prog_done, prog_total; int prog_on, prog_stop;   /* progress within a pass (ollm__forward_chunks) */
    int64_t n_past;              /* tokens whose state (K and V, or recurrent state) is in the session */
    int32_t *tokens;             /* the context's ids (repetition penalty, rewind) */
    ollm__buf *k_cache, *v_cache;             /* per layer; empty for layers without KV, or when kv_host */
    int kv_host;                 /* the KV cache lives in host memory: */
    char **host_k, **host_v;     /*   per layer [n_ctx, kv row]; */
    uint8_t *host_pinned;        /*   from the backend's host_alloc; */
    ollm__buf stage_k[2], stage_v[2];         /*   device buffers a layer's cache is uploaded into, alternately, */
    int kv_staged[2];            /*   and the layer whose rows each holds or is receiving (-1: none) */
    ollm__buf x, xn, q, k, v, o, g, u, logits;   /* activations for one chunk; x is the current chunk's rows of */
    ollm__buf xs;                /*   the residual streams of a group of chunks [group * chunk, hidden] (ollm__chunk_at) */
    ollm__buf gx;                /* MoE on a GPU with expert_guess: [OLLM__GROUP_ROWS, hidden], the next layer's MoE
                                    input when decoding, to guess its experts (ollm__guess_next) */
    ollm__buf erows;             /* m->embed_file: a chunk's rows of the table on the device, */
    char *erows_h; int32_t *eids;   /*   read into host memory first; their indices 0.. */
    float *last_logits; int has_logits;
    int logits_row;              /* >= 0: last_logits is not read back yet; they are row logits_row of s->logits */
    int32_t pending;             /* a generated token not yet fed, or -1 */
    void *fs;                    /* the family's own session state, or NULL */
    int kv_fd;                   /* the session folder's record log (kv.bin), or -1 */
    uint64_t log_end;            /* bytes of kv.bin the committed header covers */
    int64_t disk_len;            /* tokens the committed header holds */
    int64_t state_len;           /* tokens the saved recurrent state (state.bin) holds, or -1: none */
    int32_t ring;                /* rows of each sliding-window layer's KV ring (position j in row j % ring), or 0 */
    int64_t ring_lo;             /* the rings hold the keys of positions [ring_lo, n_past) */
    int64_t state_at;            /* tokens the family's recurrent state holds (-1: unknown, after a failed pass) */
    void *snap; int64_t snap_len;   /* that state after snap_len tokens, the end of a prefill call (-1: none) */
};

/* A model family: how to read its config, which tensors it needs, the session state it keeps and its forward pass.
   Adding a family is adding one of these to ollm__families. */
/* Binds one tensor: its exact shape and the dtypes it may have (a mask of 1u << OLLM__*). Loading passes
   ollm__bind_shaped; tools/make_random_checkpoint.c passes a recorder that writes it in one of those dtypes. */
typedef ollm_result (*ollm__tensor_fn)(ollm_model *m, ollm__w *slot, const char *name, unsigned dtypes, int ndim,
                                       const int64_t *shape);
struct ollm__family {
    const char *model_type;                                                           /* config.json model_type */
    ollm_result (*config)(const ollm__json *j, ollm__desc *d, ollm__log *lg);         /* the family's fields */
    size_t (*weights_size)(const ollm__desc *d);                                      /* bytes of its weight struct */
    ollm_result (*tensors)(ollm_model *m, ollm__tensor_fn fn);                        /* bind every tensor */
    ollm_result (*session_init)(ollm_session *s);                                     /* caches and activations */
    void (*session_free)(ollm_session *s);                                            /* NULL: nothing of its own */
    ollm_result (*forward)(ollm_session *s, const int32_t *ids, int T, float *logits_all);
    /* recurrent state beside the KV cache, saved in session folders (NULL: none): its bytes, and a copy of it into
       buf (put 0, after a forward pass) or from buf (put 1: the state after the session's first n_past tokens) */
    uint64_t (*state_bytes)(const ollm_session *s);
    ollm_result (*state_io)(ollm_session *s, void *buf, int put);
};

OLLM_API ollm_model_config ollm_model_config_default(void) { ollm_model_config c; memset(&c, 0, sizeof c); return c; }

static void ollm__shape_str(char *out, size_t cap, int ndim, const int64_t *shape) {
    int i; size_t n;
    snprintf(out, cap, "[");
    for (i = 0; i < ndim; i++) { n = strlen(out); snprintf(out + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]); }
    n = strlen(out); snprintf(out + n, cap - n, "]");
}

/* Remembers a buffer the model owns, so that closing releases each exactly once. */
static ollm_result ollm__own(ollm_model *m, ollm__buf b) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 64;
        ollm__buf *o = (ollm__buf *)OLLM_REALLOC(m->owned, (size_t)cap * sizeof *o);
        if (!o) { m->B->release(m->B, &b); return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory"); }
        m->owned = o; m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = b;
    return OLLM_OK;
}

/* Finds tensor `name`, checks its dtype (a bit mask of 1 << OLLM__*) and its shape against what config.json implies,
   and loads it. rows/cols of the result: the first dimension and the product of the others. */
static ollm_result ollm__bind_shaped(ollm_model *m, ollm__w *w, const char *name, unsigned dtypes, int ndim,
                                     const int64_t *shape) {
    const ollm__tensor *t = ollm__st_find(&m->st, name); int i, same;
    memset(w, 0, sizeof *w);
    if (!t) return ollm__fail(&m->log, OLLM_ERR_FORMAT, "missing tensor '%s'", name);
    if (!(dtypes & (1u << t->dtype)))
        return ollm__fail(&m->log, OLLM_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, not one this model accepts",
                          m->st.file_names[t->file], name, ollm__dtype_names[t->dtype]);
    same = t->ndim == ndim;
    for (i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[160], want[160];
        ollm__shape_str(got, sizeof got, t->ndim, t->shape); ollm__shape_str(want, sizeof want, ndim, shape);
        return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: tensor '%s' has shape %s, config.json implies %s",
                          m->st.file_names[t->file], name, got, want);
    }
    w->dtype = t->dtype; w->rows = ndim > 1 ? shape[0] : 1; w->cols = 1;
    for (i = ndim > 1 ? 1 : 0; i < ndim; i++) w->cols *= shape[i];
    w->data.bytes = t->nbytes;   /* the bytes arrive when the tier planner places the tensor (ollm__tiers_place) */
    if (m->n_ent == m->cap_ent) {
        int cap = m->cap_ent ? m->cap_ent * 2 : 256;
        ollm__tent *e = (ollm__tent *)OLLM_REALLOC(m->ent, (size_t)cap * sizeof *e);
        if (!e) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
        m->ent = e; m->cap_ent = cap;
    }
    m->ent[m->n_ent].w = w; m->ent[m->n_ent].t = t;
    m->ent[m->n_ent].layer = strncmp(name, "model.layers.", 13) == 0 ? atoi(name + 13) : -1;
    m->ent[m->n_ent].expert = OLLM__X_DENSE;
    if (m->ent[m->n_ent].layer >= m->d.n_layers) m->ent[m->n_ent].layer = -1;
    m->n_ent++;
    return OLLM_OK;
}
#define OLLM__FLOAT_DTYPES ((1u << OLLM__BF16) | (1u << OLLM__F16) | (1u << OLLM__F32))
/* The common case through a family's tensor walker: a floating-point matrix [rows, cols], or a vector [rows] when
   cols == 0 (bound as rows 1, cols n). */
static ollm_result ollm__bind_fn(ollm_model *m, ollm__tensor_fn fn, ollm__w *w, const char *name, int64_t rows,
                                 int64_t cols) {
    int64_t shape[2]; shape[0] = rows; shape[1] = cols;
    return fn(m, w, name, OLLM__FLOAT_DTYPES, cols ? 2 : 1, shape);
}

/* The automatic rule for kv_host 0: the whole cache would take more than half the GPU budget. */
static int ollm__kv_host_auto(const ollm_model *m, int64_t ctx, int64_t chunk) {
    uint64_t kv = ollm__kv_bytes(&m->d, ctx, chunk < ctx ? chunk : ctx, m->B->kv_elem);
    return !m->B->host && m->B->mem_budget && kv > m->B->mem_budget / 2;
}
/* The backend's scratch for chunks of T tokens, grown as ops first need it: a bf16 copy of the widest matmul input,
   attention partials, index tables and, with experts, a bf16 copy of one. The GPU weight planner leaves room for it,
   and a session opens only where it still fits beside the session's own buffers (ollm_session_open). */
static uint64_t ollm__scratch_bytes(const ollm_model *m, uint64_t T) {
    const ollm__desc *c = &m->d;
    return T * 2 * (uint64_t)(c->ffn > c->hidden ? c->ffn : c->hidden) + T * 2 * (uint64_t)c->n_heads * c->head_dim +
           (32ull << 20) + (c->n_experts ? 4ull * c->moe_ffn * c->hidden : 0);
}

/* ==== @tiers ==== where each weight lives: resident, or streamed per layer (per expert) from RAM or disk ====== */
/* Tensors outside model.layers.N (embeddings, final norm, head) are resident on the compute device, but for an untied
   embedding table on a GPU: only its rows of the tokens at hand are ever read, so it stays in its file and they are
   read from there per chunk (ollm__embed; 1.16 GB of VRAM for GPT-OSS-20B, 1.05 GB for Llama-3.1-8B). A layer's
   tensors form one block (on a GPU, its routed experts are blocks of their own: the expert cache below). The planner
   keeps as many blocks resident as the budget allows (first layers first); the rest stream through `depth` slots: an I/O thread reads layer l+1.. into free slots while layer l computes, so
   compute waits only when the disk is slower than the math. Slots keep their layer until reused, so when the
   streamed layers fit the slots they are read once. What is read from disk while running (layers, experts) goes
   through ollm__pread_direct: past the page cache with O_DIRECT unless cfg.direct_io is -1, each reading thread with a
   bounce buffer of its own (ollm__direct_setup). */

#define OLLM__ALIGN 256u
enum { OLLM__SLOT_FREE, OLLM__SLOT_LOADING, OLLM__SLOT_READY, OLLM__SLOT_IN_USE, OLLM__SLOT_ERROR };

struct ollm__streamer {
    int n_slots;
    ollm__buf slot[8];             /* backend memory the layer is computed from */
    char *stage[8];                /* host memory the I/O thread reads into (== slot memory on host backends) */
    uint8_t stage_pinned[8];       /* stage[k] came from the backend's host_alloc */
    int slot_layer[8], slot_state[8], slot_errno[8];
    const ollm__tent *slot_bad[8];  /* the entry whose read failed (OLLM__SLOT_ERROR) */
    uint64_t slot_tick[8], tick;
    int *block_first, *block_count; /* entries of each layer in m->ent (sorted by layer) */
    uint64_t *block_bytes;
    uint8_t *resident;              /* per layer */
    char **host_copy;               /* per streamed layer: its block in host RAM (the RAM tier), or NULL (disk) */
    uint8_t *host_pinned;           /* per layer: host_copy came from the backend's host_alloc */
    int slot_uploaded[8];           /* the layer whose bytes the device slot holds (non-host backends), or -1 */
    const ollm_model *m;
    pthread_t io; pthread_mutex_t mu; pthread_cond_t cv; int quit, started;
    ollm__bounce bounce;            /* the I/O thread's direct reads (no buffer: buffered reads) */
    uint64_t bytes_read, bytes_uploaded; double wait_s;
};

static ollm_result ollm__read_tensor(ollm_model *m, const ollm__tensor *t, void *dst) {
    if (ollm__pread_all(m->st.files[t->file].fd, dst, t->nbytes, t->offset) != OLLM_OK)
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot read tensor '%s' (%s)", m->st.file_names[t->file], t->name,
                          strerror(errno));
    return OLLM_OK;
}

/* Direct reads for what is read from disk while running: opens the shards' O_DIRECT descriptors (the first call; it
   logs how that went) and n bounce buffers for reads of up to `largest` bytes, one per reading thread. Returns n, or 0
   (reads stay buffered) with direct_io -1, when no shard takes O_DIRECT, or short of memory. */
static int ollm__direct_setup(ollm_model *m, const char *dir, ollm__bounce *b, int n, uint64_t largest) {
    int i, on = 0, tried = 0, refused = -1; char path[4096];
    if (m->cfg.direct_io < 0) return 0;
    for (i = 0; i < m->st.n_files; i++) {
        ollm__file *f = &m->st.files[i];
        if (f->dfd < 0 && !f->dio_err) {
            tried++;
            if (snprintf(path, sizeof path, "%s/%s", dir, m->st.file_names[i]) >= (int)sizeof path) f->dio_err = ENAMETOOLONG;
            else ollm__file_open_direct(f, path);
            if (f->dio_err && refused < 0) refused = i;
        }
        on += f->dfd >= 0;
    }
    if (tried && refused >= 0)
        ollm__logf(&m->log, OLLM_LOG_INFO, "direct I/O: %s refuses O_DIRECT (%s): %d of %d shards are read through the "
                   "page cache", m->st.file_names[refused], strerror(m->st.files[refused].dio_err), m->st.n_files - on,
                   m->st.n_files);
    else if (tried)
        ollm__logf(&m->log, OLLM_LOG_DEBUG, "direct I/O: streamed reads bypass the page cache (O_DIRECT, %d of %d shards)",
                   on, m->st.n_files);
    if (!on) return 0;
    for (i = 0; i < n; i++)
        if (!ollm__bounce_init(&b[i], largest)) {
            while (i-- > 0) ollm__bounce_free(&b[i]);
            ollm__logf(&m->log, OLLM_LOG_INFO, "direct I/O: no memory for its bounce buffers: reads are buffered");
            return 0;
        }
    return n;
}

/* The error for a failed read of tensor t's bytes for `what` ("layer 3"): names the file, and says so when it is now
   shorter than the tensor. */
static ollm_result ollm__read_failed(ollm_model *m, const ollm__tensor *t, const char *what, int err) {
    struct stat sb; char why[160]; const ollm__file *f = &m->st.files[t->file];
    if (fstat(f->fd, &sb) == 0 && (uint64_t)sb.st_size < t->offset + t->nbytes)
        snprintf(why, sizeof why, "the file is now %llu bytes, %llu when opened: truncated?", (unsigned long long)sb.st_size,
                 (unsigned long long)f->size);
    else snprintf(why, sizeof why, "%s", strerror(err ? err : EIO));
    return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot read %s from disk: tensor '%s' (%s)", m->st.file_names[t->file],
                      what, t->name, why);
}

/* The open's progress: bytes read so far out of the bound tensors' bytes, passed to cfg.progress every 1/64 of the
   total and at the end (end: what was not read stays on disk or in the file). A nonzero answer cancels the open. */
static ollm_result ollm__load_progress(ollm_model *m, uint64_t bytes, int end) {
    m->load_done = end ? m->load_total : m->load_done + bytes;
    if (!m->cfg.progress || (!end && m->load_done - m->load_said < m->load_total / 64) ||
        (end && m->load_said == m->load_total && m->load_total)) return OLLM_OK;   /* said already */
    m->load_said = m->load_done;
    if (m->cfg.progress(m->cfg.progress_user, m->load_done < m->load_total ? m->load_done : m->load_total, m->load_total))
        return ollm__fail(&m->log, OLLM_ERR_CANCELLED, "model open stopped by the progress callback after %.2f of %.2f GB",
                          (double)m->load_done / 1e9, (double)m->load_total / 1e9);
    return OLLM_OK;
}

/* Allocates and fills one tensor on the compute device. */
static ollm_result ollm__load_resident(ollm_model *m, ollm__tent *e) {
    ollm_result r; const ollm__tensor *t = e->t;
    if ((r = m->B->alloc(m->B, t->nbytes, &e->w->data)) != OLLM_OK)
        return ollm__fail(&m->log, r, "no memory for tensor '%s' (%llu bytes)%s", t->name, (unsigned long long)t->nbytes,
                          r == OLLM_ERR_BUDGET ? ": over the memory budget" : "");
    OLLM__TRY(ollm__own(m, e->w->data));
    m->loaded_bytes += t->nbytes;
    if (m->B->host) r = ollm__read_tensor(m, t, e->w->data.ptr);
    else {
        void *tmp = OLLM_MALLOC((size_t)t->nbytes ? (size_t)t->nbytes : 1);
        if (!tmp) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "no host memory to stage tensor '%s'", t->name);
        r = ollm__read_tensor(m, t, tmp);
        if (r == OLLM_OK && (r = m->B->upload(m->B, e->w->data, tmp, t->nbytes)) != OLLM_OK)
            ollm__fail(&m->log, r, "cannot upload tensor '%s'", t->name);
        OLLM_FREE(tmp);
    }
    return r == OLLM_OK ? ollm__load_progress(m, t->nbytes, 0) : r;
}

static void *ollm__io_main(void *arg) {
    ollm__streamer *st = (ollm__streamer *)arg; const ollm_model *m = st->m; int k, i;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        int job = -1;
        for (k = 0; k < st->n_slots && job < 0; k++) if (st->slot_state[k] == OLLM__SLOT_LOADING) job = k;
        if (job < 0) { if (st->quit) break; pthread_cond_wait(&st->cv, &st->mu); continue; }
        {
            int l = st->slot_layer[job], err = 0; char *dst = st->stage[job]; const ollm__tent *bad = NULL;
            pthread_mutex_unlock(&st->mu);
            for (i = st->block_first[l]; i < st->block_first[l] + st->block_count[l] && !err; i++) {
                const ollm__tent *e = &m->ent[i];
                errno = 0;
                if (ollm__pread_direct(&m->st.files[e->t->file], dst + e->off, e->t->nbytes, e->t->offset,
                                       &st->bounce) != OLLM_OK) { err = errno ? errno : EIO; bad = e; }
            }
            pthread_mutex_lock(&st->mu);
            st->slot_errno[job] = err; st->slot_bad[job] = bad;
            st->slot_state[job] = err ? OLLM__SLOT_ERROR : OLLM__SLOT_READY;
            st->bytes_read += err ? 0 : st->block_bytes[l];
            pthread_cond_broadcast(&st->cv);
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static int ollm__ent_layer_cmp(const void *a, const void *b) {   /* by layer; a layer's dense tensors before its experts */
    const ollm__tent *x = (const ollm__tent *)a, *y = (const ollm__tent *)b;
    int xe = x->expert != OLLM__X_DENSE, ye = y->expert != OLLM__X_DENSE;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    if (xe != ye) return xe - ye;
    return x->t < y->t ? -1 : x->t > y->t;
}

/* ---- the expert cache: routed experts of MoE layers on a GPU ----
   Every tensor under `model.layers.N.mlp.experts.` but the biases is an expert tensor: stacked ([E, ...], GPT-OSS)
   or one expert's own (`experts.J.`, Qwen3-Next). Expert e of layer l is one block (its slices of the stacked tensors
   and its own tensors), uploaded into one of n_slots device slots when a token picks it and kept there, least
   recently used evicted first (most recently used in prefill, which cycles through more experts than fit); the host
   keeps every block in (pinned) RAM while ram_bytes lasts, the rest is read from disk when picked. Once a layer's
   router has run (the compute stream idle after its read-back), the missing experts upload on the copy stream into
   slots no picked expert holds (ollm__experts_prefetch); the rest one by one on the compute stream, so a slot is
   overwritten only after the kernels that read it (ollm__expert_fetch). A layer's small copies on the compute stream
   (the gather's routing table) go before its uploads are queued: the copy engine takes host-to-device copies of both
   streams in order, so one queued after them waits for them (prefill at 10K tokens ran 30% slower so). */
/* Guessed experts go up in chunks of OLLM__GUESS_CHUNK bytes, at most OLLM__GUESS_DEPTH of them in flight at once,
   so a wrong guess holds up the next layer's own uploads by at most that much (ollm__guess_pump). */
#define OLLM__GUESS_CHUNK ((uint64_t)2 << 20)
#define OLLM__GUESS_DEPTH 2
/* Each row's guess is its OLLM__GUESS_WIDE * k likeliest experts, best first: the copy stream would be idle anyway, and
   the picks the first k miss are often among the next */
#define OLLM__GUESS_WIDE 2
static uint64_t ollm__guess_chunk = OLLM__GUESS_CHUNK;   /* tests make it smaller than their experts */
struct ollm__xcache {
    int L, E, n_slots;
    int *first, *count;          /* per layer: its expert entries in m->ent (after its dense ones) */
    uint64_t *xbytes;            /* per layer: one expert's block */
    uint64_t slot_bytes;
    char **host; uint8_t *host_pinned;   /* per layer: its E blocks in host RAM, or NULL (read from disk) */
    ollm__buf pool;              /* n_slots x slot_bytes of device memory */
    int32_t *slot_le;            /* per slot: l * E + e held, or -1 */
    uint64_t *slot_tick, tick;
    int32_t *where;              /* per (l, e): its slot, or -1 */
    int8_t *pending;             /* per slot: the upload slot (OLLM__X_SLOT..) of its upload in flight, or -1 */
    int ring;                    /* the next upload slot of the ring */
    char *stage; int stage_pinned;   /* one block read from disk */
    /* the disk tier's read-ahead: a layer's picked experts that got a slot in ollm__experts_prefetch but have no RAM
       copy are queued (pending -2), then read in batches by the io threads into pinned buffers and uploaded */
    ollm__pool io; int io_started;
    char **rstage; int n_rstage, next_rstage;   /* pinned buffers of slot_bytes */
    int8_t *rstage_up;           /* per buffer: the upload slot still copying from it, or -1 */
    int32_t *queue; int q_head, q_len, q_layer;
    uint8_t *guessed;            /* per slot: uploaded on a guess, not yet picked by its layer's router */
    uint64_t *gbytes;            /* per slot: of a guessed expert, the bytes uploaded so far (partial until xbytes) */
    int32_t *glist; int gl_n, gl_i, gl_layer;   /* the last guess: gl_n experts of layer gl_layer (2 x
                                                   ollm__glist_cap), best first; those before gl_i are done with */
    int g_slot; uint64_t g_before;   /* the guess being uploaded (-1: none); slots stamped since g_before are taken */
    int8_t g_fly[OLLM__GUESS_DEPTH]; int g_nfly;   /* upload slots of guessed chunks maybe still in flight */
    ollm__bounce *bounce; int n_bounce;   /* direct reads: one per io thread (the caller's, [0], also serves the
                                             reads outside the pool); none: buffered reads */
    uint64_t hits, misses, uploaded, read;
    uint64_t guesses, guess_hits, guess_bytes, guess_used;   /* uploads on guesses; picked; their bytes (all, picked) */
    int scan; uint64_t scan_before;   /* the current layer's picks are a scan (ollm__xslot_victim); its first stamp */
};
enum { OLLM__X_QUEUED = -2 };

/* MoE layers run a layer's experts as grouped products (one launch per projection for all of them) while no expert
   has more rows than this (decode), else expert by expert (prefill). */
#define OLLM__GROUP_ROWS 8
static size_t ollm__glist_cap(const ollm_model *m) {   /* the experts one guess names at most */
    return (size_t)OLLM__GROUP_ROWS * OLLM__GUESS_WIDE * (m->d.n_experts_per_tok > 0 ? m->d.n_experts_per_tok : 1);
}
/* Grouped products fetch all of a layer's experts first: only when the cache holds them all at once. */
static int ollm__moe_grouped(const ollm_model *m, int most_rows, int n_active) {
    return most_rows <= OLLM__GROUP_ROWS && (!m->xc || n_active <= m->xc->n_slots);
}

/* The k largest of v[n] into out[k], largest first; on a tie the lower index comes first (as repeated argmax). */
static void ollm__topk(const float *v, int n, int k, int32_t *out) {
    int e, i, have = 0;
    for (e = 0; e < n; e++) {
        if (have == k && !(v[e] > v[out[k - 1]])) continue;
        i = have < k ? have++ : k - 1;
        while (i > 0 && v[e] > v[out[i - 1]]) { out[i] = out[i - 1]; i--; }
        out[i] = e;
    }
}

/* expert index of tensor `name` (OLLM__X_STACKED for [E, ...] tensors), or OLLM__X_DENSE */
static int ollm__expert_of(const char *name) {
    const char *p = strstr(name, ".mlp.experts."); size_t n = strlen(name);
    if (!p || (n >= 5 && strcmp(name + n - 5, "_bias") == 0)) return OLLM__X_DENSE;
    p += 13;
    return *p >= '0' && *p <= '9' ? atoi(p) : OLLM__X_STACKED;
}

static void ollm__xcache_free(ollm_model *m) {
    ollm__xcache *x = m->xc; int l;
    if (!x) return;
    for (l = 0; x->host && l < x->L; l++)
        if (x->host[l]) { if (x->host_pinned[l]) m->B->host_free(m->B, x->host[l]); else OLLM_FREE(x->host[l]); }
    if (x->stage) { if (x->stage_pinned) m->B->host_free(m->B, x->stage); else OLLM_FREE(x->stage); }
    if (x->io_started) ollm__pool_free(&x->io);
    for (l = 0; l < x->n_rstage; l++) if (x->rstage[l]) m->B->host_free(m->B, x->rstage[l]);
    for (l = 0; l < x->n_bounce; l++) ollm__bounce_free(&x->bounce[l]);
    OLLM_FREE(x->rstage); OLLM_FREE(x->rstage_up); OLLM_FREE(x->queue); OLLM_FREE(x->bounce);
    m->B->release(m->B, &x->pool);
    OLLM_FREE(x->first); OLLM_FREE(x->count); OLLM_FREE(x->xbytes); OLLM_FREE(x->host); OLLM_FREE(x->host_pinned);
    OLLM_FREE(x->slot_le); OLLM_FREE(x->slot_tick); OLLM_FREE(x->where); OLLM_FREE(x->pending);
    OLLM_FREE(x->guessed); OLLM_FREE(x->gbytes); OLLM_FREE(x->glist);
    OLLM_FREE(x); m->xc = NULL;
}

/* The disk read-ahead's pieces (ollm__xqueue_pump): an expert of `bytes` is read as ollm__xr_parts pieces of about
   OLLM_XR_PIECE bytes (at most OLLM__XR_PARTS), piece p the span [p, p + 1) * ollm__xr_span of its block layout. */
#ifndef OLLM_XR_PIECE
#define OLLM_XR_PIECE (1u << 20)
#endif
#define OLLM__XR_PARTS 16
static int ollm__xr_parts(uint64_t bytes) {
    uint64_t p = (bytes + OLLM_XR_PIECE - 1) / OLLM_XR_PIECE;
    return p < 1 ? 1 : p > OLLM__XR_PARTS ? OLLM__XR_PARTS : (int)p;
}
static uint64_t ollm__xr_span(uint64_t bytes, int parts) {   /* whole direct-I/O blocks */
    uint64_t span = (bytes + (uint64_t)parts - 1) / (uint64_t)parts;
    return (span + OLLM__DIO_ALIGN - 1) / OLLM__DIO_ALIGN * OLLM__DIO_ALIGN;
}

/* Expert e of layer l from the checkpoint into dst (its block layout), with bounce buffer b (NULL: buffered reads), or
   only piece `part` of `parts` (equal spans of the block layout, whatever tensors they cross, so the io threads share
   a batch's reads evenly): 0, or the errno of the failed read with *bad the tensor (safe on the io threads: it logs
   nothing). */
static int ollm__expert_pread(const ollm_model *m, int l, int e, char *dst, const ollm__bounce *b, const ollm__tent **bad,
                              int part, int parts) {
    const ollm__xcache *x = m->xc; int i;
    uint64_t span = ollm__xr_span(x->xbytes[l], parts), lo = (uint64_t)part * span, hi = lo + span;
    for (i = x->first[l]; i < x->first[l] + x->count[l]; i++) {
        const ollm__tent *en = &m->ent[i]; const ollm__tensor *t = en->t;
        uint64_t n = en->expert == OLLM__X_STACKED ? t->nbytes / (uint64_t)x->E : t->nbytes;
        uint64_t at = t->offset + (en->expert == OLLM__X_STACKED ? (uint64_t)e * n : 0);
        uint64_t a = en->off > lo ? en->off : lo, z = en->off + n < hi ? en->off + n : hi;
        if ((en->expert != OLLM__X_STACKED && en->expert != e) || a >= z) continue;
        errno = 0;
        if (ollm__pread_direct(&m->st.files[t->file], dst + a, z - a, at + (a - en->off), b) != OLLM_OK) {
            *bad = en; return errno ? errno : EIO;
        }
    }
    return 0;
}
static ollm_result ollm__expert_read_failed(ollm_model *m, int l, int e, const ollm__tent *bad, int err) {
    char what[64];
    snprintf(what, sizeof what, "expert %d of layer %d", e, l);
    return ollm__read_failed(m, bad->t, what, err);
}
static ollm_result ollm__expert_read(ollm_model *m, int l, int e, char *dst) {   /* on the calling thread */
    const ollm__tent *bad = NULL;
    int err = ollm__expert_pread(m, l, e, dst, m->xc->n_bounce ? &m->xc->bounce[0] : NULL, &bad, 0, 1);
    return err ? ollm__expert_read_failed(m, l, e, bad, err) : OLLM_OK;
}

/* Marks the expert tensors (non-host backends: the CPU reads experts where they lie) and returns about one expert's
   bytes, the largest over the layers (0: no experts), for the planner. */
static uint64_t ollm__xcache_classify(ollm_model *m) {
    int i, L = m->d.n_layers, E = m->d.n_experts, l; uint64_t mx = 0, *per;
    if (m->B->host || E <= 0) return 0;
    if (!(per = (uint64_t *)ollm__calloc((size_t)L, sizeof(uint64_t)))) return 0;
    for (i = 0; i < m->n_ent; i++) {
        ollm__tent *e = &m->ent[i]; uint64_t a;
        if (e->layer < 0) continue;
        e->expert = ollm__expert_of(e->t->name);
        if (e->expert >= E) e->expert = OLLM__X_DENSE;   /* not an expert this config knows: a plain tensor */
        if (e->expert == OLLM__X_STACKED && (e->t->ndim < 1 || e->t->shape[0] != E || e->t->nbytes % (uint64_t)E))
            e->expert = OLLM__X_DENSE;
        if (e->expert == OLLM__X_DENSE) continue;
        a = e->expert == OLLM__X_STACKED ? e->t->nbytes / (uint64_t)E : e->t->nbytes / (uint64_t)E + 1;
        per[e->layer] += (a + OLLM__ALIGN - 1) / OLLM__ALIGN * OLLM__ALIGN;   /* own tensors: spread over the E */
    }
    for (l = 0; l < L; l++) if (per[l] > mx) mx = per[l];
    OLLM_FREE(per);
    return mx;
}

/* After the sort: per layer, expert entries' offsets in the block and the block size; then the cache itself with as
   many slots as `avail` bytes hold (at most every expert), and the host copies while ram_bytes lasts. dir: the
   model's, where the shards are opened again for direct reads. */
static ollm_result ollm__xcache_place(ollm_model *m, const char *dir, uint64_t avail, uint64_t *ram_used) {
    int L = m->d.n_layers, E = m->d.n_experts, i, l, e; ollm__xcache *x; uint64_t *cur;
    for (i = 0; i < m->n_ent; i++) if (m->ent[i].expert != OLLM__X_DENSE) break;
    if (i == m->n_ent) return OLLM_OK;   /* no expert tensors */
    if (!(x = (ollm__xcache *)ollm__calloc(1, sizeof *x))) return OLLM_ERR_NO_MEMORY;
    m->xc = x; x->L = L; x->E = E;
    x->first = (int *)ollm__calloc((size_t)L, sizeof(int)); x->count = (int *)ollm__calloc((size_t)L, sizeof(int));
    x->xbytes = (uint64_t *)ollm__calloc((size_t)L, sizeof(uint64_t)); cur = (uint64_t *)ollm__calloc((size_t)E, sizeof(uint64_t));
    x->host = (char **)ollm__calloc((size_t)L, sizeof(char *)); x->host_pinned = (uint8_t *)ollm__calloc((size_t)L, 1);
    x->where = (int32_t *)OLLM_MALLOC((size_t)L * E * sizeof(int32_t));
    if (!x->first || !x->count || !x->xbytes || !cur || !x->host || !x->host_pinned || !x->where) {
        OLLM_FREE(cur); return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    }
    for (i = 0; i < L * E; i++) x->where[i] = -1;
    for (i = 0; i < m->n_ent; i++)   /* sorted: a layer's expert entries are contiguous, after its dense ones */
        if (m->ent[i].expert != OLLM__X_DENSE && x->count[m->ent[i].layer]++ == 0) x->first[m->ent[i].layer] = i;
    for (l = 0; l < L; l++) {
        uint64_t stacked = 0;
        for (i = x->first[l]; i < x->first[l] + x->count[l]; i++)   /* the stacked slices first, then each expert's own */
            if (m->ent[i].expert == OLLM__X_STACKED) {
                m->ent[i].off = stacked; m->ent[i].w->xoff = stacked; m->ent[i].w->in_xc = 1;
                stacked += (m->ent[i].t->nbytes / (uint64_t)E + OLLM__ALIGN - 1) / OLLM__ALIGN * OLLM__ALIGN;
            }
        for (e = 0; e < E; e++) cur[e] = stacked;
        for (i = x->first[l]; i < x->first[l] + x->count[l]; i++)
            if (m->ent[i].expert >= 0) {
                m->ent[i].off = cur[m->ent[i].expert]; m->ent[i].w->xoff = cur[m->ent[i].expert]; m->ent[i].w->in_xc = 1;
                cur[m->ent[i].expert] += (m->ent[i].t->nbytes + OLLM__ALIGN - 1) / OLLM__ALIGN * OLLM__ALIGN;
            }
        for (e = 0; e < E; e++) if (cur[e] > x->xbytes[l]) x->xbytes[l] = cur[e];
        if (x->xbytes[l] > x->slot_bytes) x->slot_bytes = x->xbytes[l];
    }
    OLLM_FREE(cur);
    if (!x->slot_bytes) { ollm__xcache_free(m); return OLLM_OK; }
    x->n_slots = avail / x->slot_bytes > (uint64_t)L * E ? L * E : (int)(avail / x->slot_bytes);
    if (m->cfg.expert_slots > 0 && x->n_slots > m->cfg.expert_slots) x->n_slots = m->cfg.expert_slots;
    if (x->n_slots < 1)
        return ollm__fail(&m->log, OLLM_ERR_BUDGET, "no room for one expert (%.1f MB) in the GPU budget",
                          (double)x->slot_bytes / 1e6);
    x->slot_le = (int32_t *)OLLM_MALLOC((size_t)x->n_slots * sizeof(int32_t));
    x->slot_tick = (uint64_t *)ollm__calloc((size_t)x->n_slots, sizeof(uint64_t));
    x->pending = (int8_t *)OLLM_MALLOC((size_t)x->n_slots);
    x->guessed = (uint8_t *)ollm__calloc((size_t)x->n_slots, 1);
    x->gbytes = (uint64_t *)ollm__calloc((size_t)x->n_slots, sizeof(uint64_t)); x->g_slot = -1;
    x->glist = (int32_t *)OLLM_MALLOC(2 * ollm__glist_cap(m) * sizeof(int32_t));   /* a guess, and one ranked again */
    if (!x->slot_le || !x->slot_tick || !x->pending || !x->guessed || !x->gbytes || !x->glist) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    for (i = 0; i < x->n_slots; i++) { x->slot_le[i] = -1; x->pending[i] = -1; }
    {
        ollm_result r = m->B->alloc(m->B, (uint64_t)x->n_slots * x->slot_bytes, &x->pool);
        if (r != OLLM_OK) return ollm__fail(&m->log, r, "no memory for %d expert slots of %.1f MB", x->n_slots,
                                            (double)x->slot_bytes / 1e6);
    }
    x->stage = m->B->host_alloc ? (char *)m->B->host_alloc(m->B, x->slot_bytes) : NULL;
    x->stage_pinned = x->stage != NULL;
    if (!x->stage && !(x->stage = (char *)OLLM_MALLOC((size_t)x->slot_bytes)))
        return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "no host memory to stage an expert");
    /* the RAM tier: every expert block of a layer in (pinned) host memory while ram_bytes lasts */
    for (l = 0; l < L; l++) {
        uint64_t bytes = x->xbytes[l] * (uint64_t)E; char *h;
        if (!bytes || (m->cfg.ram_bytes && *ram_used + bytes > m->cfg.ram_bytes)) continue;
        h = m->B->host_alloc ? (char *)m->B->host_alloc(m->B, bytes) : NULL;
        x->host_pinned[l] = h != NULL;
        if (!h && !(h = (char *)OLLM_MALLOC((size_t)bytes))) break;   /* out of RAM: the rest stay on disk */
        x->host[l] = h; *ram_used += bytes;
        for (e = 0; e < E; e++) {
            OLLM__TRY(ollm__expert_read(m, l, e, h + (uint64_t)e * x->xbytes[l]));
            OLLM__TRY(ollm__load_progress(m, x->xbytes[l], 0));
        }
    }
    /* the disk tier's read-ahead, when some layer has no RAM copy and the backend uploads asynchronously */
    for (l = 0; l < L && x->host[l]; l++) {}
    if (l < L && m->B->upload_async && m->B->host_alloc) {
        int want = 16;
        x->rstage = (char **)ollm__calloc((size_t)want, sizeof(char *)); x->rstage_up = (int8_t *)OLLM_MALLOC((size_t)want);
        x->queue = (int32_t *)OLLM_MALLOC((size_t)E * sizeof(int32_t));
        if (!x->rstage || !x->rstage_up || !x->queue) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
        for (i = 0; i < want && (x->rstage[i] = (char *)m->B->host_alloc(m->B, x->slot_bytes)) != NULL; i++) x->rstage_up[i] = -1;
        x->n_rstage = i;
        if (x->n_rstage) { ollm__pool_init(&x->io, m->cfg.io_threads > 0 ? m->cfg.io_threads : 8); x->io_started = 1; }
    }
    if (l < L) {   /* experts read from disk while running: a bounce buffer per io thread for direct reads, each as
                      large as the read-ahead's largest piece (the one for reads on the calling thread: an expert) */
        int nb = x->io_started ? x->io.n_threads : 1; uint64_t piece = 0, p;
        for (i = 0; i < L; i++)
            if ((p = ollm__xr_span(x->xbytes[i], ollm__xr_parts(x->xbytes[i]))) > piece) piece = p;
        if (!(x->bounce = (ollm__bounce *)ollm__calloc((size_t)nb, sizeof *x->bounce)))
            return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
        x->n_bounce = ollm__direct_setup(m, dir, x->bounce, nb, x->io_started ? piece : x->slot_bytes);
    }
    m->info.expert_slots = x->n_slots; m->info.expert_bytes = x->slot_bytes;
    ollm__logf(&m->log, OLLM_LOG_INFO, "experts: %d of %d in a GPU cache of %.2f GB (%.1f MB each); host RAM holds %.2f GB "
               "of them, the rest is read from disk when picked", x->n_slots, L * E,
               (double)x->n_slots * x->slot_bytes / 1e9, (double)x->slot_bytes / 1e6, (double)*ram_used / 1e9);
    return OLLM_OK;
}

/* The least recently used expert slot stamped before `before` (so holding none of the experts stamped since), or -1. */
static int ollm__xslot_lru(const ollm__xcache *x, uint64_t before) {
    int k, best = -1;
    for (k = 0; k < x->n_slots; k++)
        if (x->slot_tick[k] < before && (best < 0 || x->slot_tick[k] < x->slot_tick[best])) best = k;
    return best;
}
/* The slot a missing expert of a layer's picks takes, stamped before `before` (-1: none). Decoding: the least
   recently used. A scan (x->scan: prefill, whose chunks pick nearly every expert of every layer in turn, more than
   the cache holds): a free slot, else the most recently used (the layer before's), so that all but about a layer's
   worth of slots keep the same experts for every chunk to find; least recently used would evict just the experts the
   next layers need and find none. GPT-OSS-20B's shape, 255 slots, four 16-token chunks (CPU, staged): 0 hits and
   24.7 GB uploaded before, 536 hits and 17.6 GB after. */
static int ollm__xslot_victim(const ollm__xcache *x, uint64_t before) {
    int k, best = -1;
    if (!x->scan) return ollm__xslot_lru(x, before);
    for (k = 0; k < x->n_slots; k++) {
        if (x->slot_tick[k] >= before) continue;
        if (x->slot_le[k] < 0) return k;
        if (best < 0 || x->slot_tick[k] > x->slot_tick[best]) best = k;
    }
    return best;
}
/* Slot k to expert le (l * E + e), stamped t; the expert it held is evicted. */
static void ollm__xslot_give(ollm__xcache *x, int k, int32_t le, uint64_t t) {
    if (x->slot_le[k] >= 0) x->where[x->slot_le[k]] = -1;
    x->slot_le[k] = le; x->where[le] = k; x->slot_tick[k] = t; x->guessed[k] = 0;
}
/* n bytes at src into expert slot k at byte off, on the copy stream; the ring's next upload slot becomes k's pending
   upload (the copy stream runs in order: it lands after any earlier part). */
static ollm_result ollm__xslot_upload(ollm_model *m, int k, uint64_t off, const void *src, uint64_t n) {
    ollm__xcache *x = m->xc;
    x->pending[k] = (int8_t)(OLLM__X_SLOT + x->ring);
    x->ring = (x->ring + 1) % (OLLM__SLOTS - OLLM__X_SLOT);
    return m->B->upload_async(m->B, x->pending[k], ollm__view(x->pool, (uint64_t)k * x->slot_bytes + off, n), src, n);
}

/* Reads the next batch of queued experts (one per free pinned buffer) on the io threads, in parallel, and starts
   their uploads on the copy stream. Each expert is `parts` pieces of about OLLM_XR_PIECE bytes (at most
   OLLM__XR_PARTS), which the io threads take one at a time as they finish the last, so a batch's reads end together
   and each thread keeps one read in flight; task t (t < the pool's threads) alone uses bounce buffer t. */
typedef struct ollm__xread {
    const ollm_model *m; int l, k0, n, parts, next, err[16 * OLLM__XR_PARTS]; const ollm__tent *bad[16 * OLLM__XR_PARTS];
} ollm__xread;
static void ollm__xread_task(void *vctx, int64_t t) {
    ollm__xread *c = (ollm__xread *)vctx; const ollm__xcache *x = c->m->xc; int w;
    while ((w = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED)) < c->n * c->parts) {
        int j = w / c->parts;
        c->err[w] = ollm__expert_pread(c->m, c->l, x->queue[x->q_head + j], x->rstage[(c->k0 + j) % x->n_rstage],
                                       x->n_bounce ? &x->bounce[t] : NULL, &c->bad[w], w % c->parts, c->parts);
    }
}
static ollm_result ollm__xqueue_pump(ollm_model *m) {
    ollm__xcache *x = m->xc; ollm__xread c; int n = x->q_len - x->q_head, j, l = x->q_layer;
    if (n <= 0) return OLLM_OK;
    if (n > x->n_rstage) n = x->n_rstage;
    for (j = 0; j < n; j++) {   /* a buffer is free once its last upload has left it */
        int8_t *up = &x->rstage_up[(x->next_rstage + j) % x->n_rstage];
        if (*up >= 0) { OLLM__TRY(m->B->slot_sync(m->B, *up)); *up = -1; }
    }
    c.m = m; c.l = l; c.k0 = x->next_rstage; c.n = n; c.next = 0;
    c.parts = ollm__xr_parts(x->xbytes[l]);
    ollm__pool_run(&x->io, n * c.parts < x->io.n_threads ? n * c.parts : x->io.n_threads, ollm__xread_task, &c);
    for (j = 0; j < n * c.parts; j++)
        if (c.err[j]) return ollm__expert_read_failed(m, l, x->queue[x->q_head + j / c.parts], c.bad[j], c.err[j]);
    for (j = 0; j < n; j++) {
        int e = x->queue[x->q_head + j], k = x->where[l * x->E + e], b = (x->next_rstage + j) % x->n_rstage;
        OLLM__TRY(ollm__xslot_upload(m, k, 0, x->rstage[b], x->xbytes[l]));
        x->rstage_up[b] = x->pending[k]; x->read += x->xbytes[l];
    }
    x->q_head += n; x->next_rstage = (x->next_rstage + n) % x->n_rstage;
    return OLLM_OK;
}

/* The picked experts of layer l (all of them known once the router has run, and the compute stream idle): protects
   those already cached from eviction and gives the missing ones slots no expert of this layer holds: from the RAM
   tier their uploads start at once on the copy stream, from disk they are queued and read ahead in batches on the io
   threads (the first batch now, the next when compute reaches it), so the copies overlap the experts' compute.
   Experts it cannot place (no free slot, or no read-ahead) are fetched one by one by ollm__expert_fetch. Guesses of
   this layer's picks stop here: a picked one is a miss whose upload started early (the rest of a partial one goes up
   now); one not picked is the first slot to go, or holds nothing when only part of it went up. */
static ollm_result ollm__experts_prefetch(ollm_model *m, int l, const int32_t *list, int n, int scan) {
    ollm__xcache *x = m->xc; int i, k; uint64_t stamp, bytes;
    if (!x || x->count[l] == 0) return OLLM_OK;
    x->scan = scan && x->n_slots < x->L * x->E; x->scan_before = x->tick + 1;   /* this layer's stamps come after */
    if (!m->B->upload_async || (!x->host[l] && !x->n_rstage)) return OLLM_OK;
    for (i = x->q_head; i < x->q_len; i++) {   /* left queued by a pass that failed: those slots hold nothing */
        int32_t le = x->q_layer * x->E + x->queue[i]; k = x->where[le];
        x->where[le] = -1; x->slot_le[k] = -1; x->pending[k] = -1;
    }
    x->q_head = x->q_len = 0; x->q_layer = l;
    stamp = ++x->tick; bytes = x->xbytes[l];
    if (x->gl_layer == l) { x->gl_i = x->gl_n; x->g_slot = -1; }   /* no more guessed chunks of this layer */
    for (i = 0; i < n; i++) {
        if ((k = x->where[l * x->E + list[i]]) < 0) continue;
        x->slot_tick[k] = stamp;
        if (x->guessed[k]) {   /* a guess come true */
            uint64_t got = x->gbytes[k];
            x->guessed[k] = 0; x->guess_hits++; x->guess_used += got; x->misses++;
            if (got < bytes) {
                x->uploaded += bytes - got;
                OLLM__TRY(ollm__xslot_upload(m, k, got, x->host[l] + (uint64_t)list[i] * bytes + got, bytes - got));
            }
        }
    }
    for (i = 0; x->gl_layer == l && i < x->gl_n; i++)   /* guessed for this layer, not picked: the first to go */
        if ((k = x->where[l * x->E + x->glist[i]]) >= 0 && x->guessed[k]) {
            x->slot_tick[k] = 0; x->guessed[k] = 0;
            if (x->gbytes[k] < bytes) { x->where[x->slot_le[k]] = -1; x->slot_le[k] = -1; }   /* only part of it */
        }
    x->gl_n = x->gl_i = 0;
    for (i = 0; i < n; i++) {
        int32_t le = l * x->E + list[i]; int best;
        if (x->where[le] >= 0) continue;
        if ((best = ollm__xslot_victim(x, stamp)) < 0) break;   /* every slot holds a picked expert of this layer */
        ollm__xslot_give(x, best, le, stamp);
        x->misses++; x->uploaded += bytes;
        if (!x->host[l]) { x->pending[best] = OLLM__X_QUEUED; x->queue[x->q_len++] = list[i]; continue; }
        OLLM__TRY(ollm__xslot_upload(m, best, 0, x->host[l] + (uint64_t)list[i] * bytes, bytes));
    }
    return ollm__xqueue_pump(m);
}

/* Makes expert e of layer l usable: a no-op without a cache; else finds its slot (reading its queue batch, or waiting
   for an upload the prefetch started) or uploads it into the least recently used one (in a scan, the slot
   ollm__xslot_victim gives, when one holds none of this layer's picks). */
static ollm_result ollm__expert_fetch(ollm_model *m, int l, int e) {
    ollm__xcache *x = m->xc; int k, best = 0; int32_t le; const char *src;
    if (!x || x->count[l] == 0) return OLLM_OK;
    le = l * x->E + e; x->tick++;
    if ((k = x->where[le]) >= 0) {
        x->slot_tick[k] = x->tick;
        while (x->pending[k] == OLLM__X_QUEUED) OLLM__TRY(ollm__xqueue_pump(m));
        if (x->pending[k] < 0) { x->hits++; return OLLM_OK; }
        best = x->pending[k]; x->pending[k] = -1;   /* counted as a miss when it started */
        return m->B->slot_wait(m->B, best);
    }
    x->misses++;
    if ((best = x->scan ? ollm__xslot_victim(x, x->scan_before) : -1) < 0) best = ollm__xslot_lru(x, UINT64_MAX);
    while (x->pending[best] == OLLM__X_QUEUED) OLLM__TRY(ollm__xqueue_pump(m));
    if (x->pending[best] >= 0) {   /* an upload nobody consumed: let it land before the slot is rewritten */
        OLLM__TRY(m->B->slot_wait(m->B, x->pending[best])); x->pending[best] = -1;
    }
    if (x->slot_le[best] >= 0) x->where[x->slot_le[best]] = -1;
    x->slot_le[best] = -1; x->slot_tick[best] = x->tick; x->guessed[best] = 0;
    if (x->host[l]) src = x->host[l] + (uint64_t)e * x->xbytes[l];
    else { OLLM__TRY(ollm__expert_read(m, l, e, x->stage)); src = x->stage; x->read += x->xbytes[l]; }
    OLLM__TRY(m->B->upload(m->B, ollm__view(x->pool, (uint64_t)best * x->slot_bytes, x->xbytes[l]), src, x->xbytes[l]));
    x->uploaded += x->xbytes[l];
    x->slot_le[best] = le; x->where[le] = best;
    return OLLM_OK;
}

/* Whether layer l's MoE also guesses layer l + 1's picks for ollm__experts_guess (expert_guess >= 0): decoding, layer
   l + 1's experts streamed from the RAM tier (not all cached), and its norm and router resident. */
static int ollm__guess_next(ollm_model *m, int l, int T) {
    ollm__xcache *x = m->xc;
    return x && m->cfg.expert_guess >= 0 && T <= OLLM__GROUP_ROWS && l + 1 < x->L && x->count[l + 1] && x->host[l + 1] &&
           x->n_slots < x->L * x->E && m->B->upload_async && (!m->stream || m->stream->resident[l + 1]);
}
/* Uploads the current guess a chunk at a time while fewer than OLLM__GUESS_DEPTH guessed chunks are in flight, so the
   copy stream has work while it would be idle (the layer's own uploads done, the next router not yet run) and a
   router that picks otherwise waits for at most that many chunks. Each guessed expert, best first, gets when its
   first chunk goes the least recently used slot stamped before the guess (so holding none of the current layer's
   picks). Cheap to call when there is nothing to do. */
static int ollm__guess_left(const ollm__xcache *x) { return x && (x->g_slot >= 0 || x->gl_i < x->gl_n); }
static ollm_result ollm__guess_pump(ollm_model *m) {
    ollm__xcache *x = m->xc; ollm__backend *B = m->B; int i, j, l; uint64_t bytes;
    if (!ollm__guess_left(x)) return OLLM_OK;
    l = x->gl_layer; bytes = x->xbytes[l];
    for (;;) {
        uint64_t n;
        for (i = j = 0; i < x->g_nfly; i++)   /* the chunks still in flight (a backend that cannot tell: none) */
            if (B->slot_ready && !B->slot_ready(B, x->g_fly[i])) x->g_fly[j++] = x->g_fly[i];
        if ((x->g_nfly = j) >= OLLM__GUESS_DEPTH) return OLLM_OK;
        if (x->g_slot < 0) {   /* the next guess neither cached nor on its way */
            int32_t le; int best;
            while (x->gl_i < x->gl_n && x->where[l * x->E + x->glist[x->gl_i]] >= 0) x->gl_i++;
            if (x->gl_i >= x->gl_n) return OLLM_OK;
            le = l * x->E + x->glist[x->gl_i++];
            if ((best = ollm__xslot_lru(x, x->g_before)) < 0) { x->gl_i = x->gl_n; return OLLM_OK; }
            ollm__xslot_give(x, best, le, x->g_before);
            x->guessed[best] = 1; x->gbytes[best] = 0; x->guesses++; x->g_slot = best;
        }
        i = x->g_slot; n = bytes - x->gbytes[i] < ollm__guess_chunk ? bytes - x->gbytes[i] : ollm__guess_chunk;
        OLLM__TRY(ollm__xslot_upload(m, i, x->gbytes[i], x->host[l] + (uint64_t)(x->slot_le[i] - l * x->E) * bytes +
                                     x->gbytes[i], n));
        x->g_fly[x->g_nfly++] = x->pending[i];
        x->gbytes[i] += n; x->guess_bytes += n; x->uploaded += n;
        if (x->gbytes[i] == bytes) x->g_slot = -1;
    }
}
/* A guess of layer l's picks, made while layer l - 1 computes: layer l's router applied to layer l - 1's MoE input
   (ollm__guess_next), logits[T, stride] (the first E of each row). The union of each row's OLLM__GUESS_WIDE k
   likeliest experts, best first, is uploaded from the RAM tier by ollm__guess_pump, now and whenever the host waits,
   behind the current layer's own uploads. A guess that comes true counts as a miss when its layer picks it; the
   bytes of those not picked are copied for nothing (guess_bytes - guess_used). Called only where
   ollm__guess_next(m, l - 1, T) said so, after layer l - 1's prefetch. again (ollm__guess_refine): the guess of layer
   l ranked anew from better logits: the uploads from here on follow the new order, the expert on its way goes on only
   if a row's k likeliest still include it, and the experts the old list got slots for stay listed (after the new
   ones, so that the prefetch settles them as it does every guessed expert). */
static ollm_result ollm__experts_guess(ollm_model *m, int l, const float *logits, int T, int stride, int again) {
    ollm__xcache *x = m->xc; int t, i, j, n = 0, n_old = 0, kk = m->d.n_experts_per_tok * OLLM__GUESS_WIDE, keep = 0;
    int32_t *old = x->glist + ollm__glist_cap(m), on_way = again && x->g_slot >= 0 ? x->slot_le[x->g_slot] - l * x->E : -1;
    if (kk > x->E) kk = x->E;
    if (x->q_head < x->q_len) return OLLM_OK;   /* the current layer's disk reads still queued go first */
    if (again) {
        if (x->gl_layer != l || x->gl_n == 0) return OLLM_OK;   /* nothing was guessed for layer l */
        for (i = 0; i < x->gl_n; i++) {   /* the old list's experts that hold a slot as guesses */
            int k = x->where[l * x->E + x->glist[i]];
            if (k >= 0 && x->guessed[k] && n_old < (int)ollm__glist_cap(m)) old[n_old++] = x->glist[i];
        }
    }
    for (t = 0; t < T; t++) {   /* the union of the rows' top kk, first occurrences in order */
        int32_t *pk = x->glist + n; int n0 = n;
        ollm__topk(logits + (int64_t)t * stride, x->E, kk, pk);
        for (i = 0; i < kk; i++) {
            int32_t e = pk[i];
            if (i < m->d.n_experts_per_tok && e == on_way) keep = 1;
            for (j = 0; j < n0 && x->glist[j] != e; j++) {}
            if (j == n0) x->glist[n++] = e;
        }
    }
    if (again && !keep) x->g_slot = -1;   /* the expert on its way goes on only if a row's top k still names it */
    for (i = 0; i < n_old; i++) {
        for (j = 0; j < n && x->glist[j] != old[i]; j++) {}
        if (j == n) x->glist[n++] = old[i];
    }
    x->gl_n = n; x->gl_i = 0;
    if (!again) { x->gl_layer = l; x->g_slot = -1; x->g_before = x->tick; }
    return ollm__guess_pump(m);
}
/* A router's logits back to the host: while they are on their way, guessed uploads keep the copy stream busy. */
static ollm_result ollm__read_router(ollm_model *m, float *dst, ollm__buf src, uint64_t n) {
    ollm__backend *B = m->B; const ollm__xcache *x = m->xc; int done = 0;
    if (!B->read_start || !ollm__guess_left(x)) return B->download(B, dst, src, n);
    OLLM__TRY(B->read_start(B, src, n));
    for (;;) {
        OLLM__TRY(B->read_poll(B, dst, n, 0, &done));
        if (done) return OLLM_OK;
        OLLM__TRY(ollm__guess_pump(m));
        if (!ollm__guess_left(x)) return B->read_poll(B, dst, n, 1, &done);   /* nothing left to send */
    }
}

/* expert_guess 2: once layer l's MoE has added to x, layer l + 1's router on its norm of x (which lacks only layer
   l + 1's attention) ranks the guess of its picks again, read back while the guessed uploads go on. Called after the
   combine. On GPT-OSS-20B's shape with random weights the new ranking is much better (tools/BENCHMARKS.md: of its
   first 4, 0.94 picked against 0.78), but it comes after part of the copy window is spent: in a window of 0.6
   experts with the first 0.25 on the old ranking, 0.77 of the guessed bytes were picked against 0.72. On the H200 it
   was no faster (GPT-OSS-20B at 10K: 7.7 ms a token against 7.5), hence not the default. */
static ollm_result ollm__guess_refine(ollm_session *s, int l, int T, const ollm__w *norm, int unit_offset,
                                      const ollm__w *router, const ollm__w *bias, ollm__buf dev, float *host) {
    ollm_model *m = s->m; ollm__backend *B = m->B; int E = m->d.n_experts;
    if (m->cfg.expert_guess < 2 || !m->xc || m->xc->gl_layer != l + 1 || !ollm__guess_left(m->xc)) return OLLM_OK;
    OLLM__TRY(B->rmsnorm(B, s->gx, s->x, norm, T, (int)m->d.hidden, (float)m->d.rms_eps, unit_offset));
    OLLM__TRY(B->matmul(B, dev, s->gx, router, bias, T, 0));
    OLLM__TRY(ollm__read_router(m, host, dev, (uint64_t)T * E * 4));
    return ollm__experts_guess(m, l + 1, host, T, E, 1);
}

/* The memory of expert e's part w (a stacked [E, ...] tensor when `stacked`, else the expert's own tensor) of layer
   l: in the cache after ollm__expert_fetch, else in the tensor itself. */
static ollm__buf ollm__expert_data(const ollm_model *m, int l, int e, const ollm__w *w, int stacked) {
    const ollm__xcache *x = m->xc;
    uint64_t n = stacked ? w->data.bytes / (uint64_t)m->d.n_experts : w->data.bytes;
    if (x && x->count[l] && w->in_xc)
        return ollm__view(x->pool, (uint64_t)x->where[l * x->E + e] * x->slot_bytes + w->xoff, n);
    return stacked ? ollm__view(w->data, (uint64_t)e * n, n) : w->data;
}

/* A context of max_context tokens, or for 0 the default: min(max_position_embeddings, 8192) (the model config's, for
   the planner, and the session config's) */
static int32_t ollm__ctx(int32_t max_context, const ollm__desc *d) {
    return max_context > 0 ? max_context : d->max_pos < 8192 ? d->max_pos : 8192;
}
/* The device bytes a session of the planned context needs beside the weights when a prefill pass takes G chunks of
   m->chunk tokens: its KV cache (or the staging pair of one in host RAM), activations, the family's state and scratch,
   and the backend's scratch (ollm__scratch_bytes). */
static uint64_t ollm__session_reserve(const ollm_model *m, int group) {
    const ollm__desc *c = &m->d; uint64_t reserve, T = (uint64_t)m->chunk, G = (uint64_t)group;
    uint64_t ctx = (uint64_t)ollm__ctx(m->cfg.max_context, c); int l, L = c->n_layers;
    uint64_t kv, dn_layers = 0, rows = G * T < ctx ? G * T : ctx;   /* rows: a forward pass's at most */
    for (l = 0; l < L; l++) dn_layers += c->layer_kind[l] == OLLM__LAYER_LINEAR;
    kv = ollm__kv_host_auto(m, (int64_t)ctx, (int64_t)rows)   /* in host RAM: the two staging caches */
         ? 4ull * m->B->kv_elem * (uint64_t)c->n_kv_heads * c->head_dim * ctx
         : ollm__kv_bytes(c, (int64_t)ctx, (int64_t)rows, m->B->kv_elem);
    reserve = kv + ollm__scratch_bytes(m, T) + rows * 4 * (uint64_t)c->hidden +   /* the group's residual streams */
              T * 4 * ((uint64_t)c->hidden + 2ull * c->n_heads * c->head_dim + 2ull * c->n_kv_heads * c->head_dim +
                       2ull * (c->ffn > c->moe_ffn ? c->ffn : c->moe_ffn)) + 4ull * c->vocab +
              (m->embed_file ? T * (m->embed_file->nbytes / (uint64_t)c->vocab) : 0);   /* a chunk's embedding rows */
    if (c->n_experts)   /* routed rows (k per token, through 2I-wide gate/up), router logits */
        reserve += T * (uint64_t)c->n_experts_per_tok * 4 * ((uint64_t)c->hidden + 3ull * c->moe_ffn) +
                   T * 4 * (uint64_t)c->n_experts +
                   OLLM__GROUP_ROWS * 4ull * (c->hidden + c->n_experts);   /* guessing the next layer's */
    if (dn_layers) {   /* Gated DeltaNet: states per layer; chunk scratch; gated q; the shared expert's rows */
        uint64_t Kd = (uint64_t)c->lin_k_heads * c->lin_k_dim, nv = (uint64_t)c->lin_v_heads, Vd = nv * c->lin_v_dim;
        uint64_t C = 2 * Kd + Vd, I = (uint64_t)(c->moe_ffn > c->shared_ffn ? c->moe_ffn : c->shared_ffn);
        reserve += dn_layers * 4 * (nv * c->lin_k_dim * c->lin_v_dim + (uint64_t)(c->conv_kernel - 1) * C + 1) +
                   T * 4 * (2 * Kd + 2 * Vd + 2 * nv + 2 * C + 2 * Vd + 2 * nv + 3ull * c->n_heads * c->head_dim) +
                   T * 4 * ((uint64_t)c->hidden + 2 * I + 1);
    }
    return reserve;
}

static void ollm__streamer_free(ollm_model *m) {
    ollm__streamer *st = m->stream; int k;
    if (!st) return;
    if (st->started) {
        pthread_mutex_lock(&st->mu); st->quit = 1; pthread_cond_broadcast(&st->cv); pthread_mutex_unlock(&st->mu);
        pthread_join(st->io, NULL);
        pthread_mutex_destroy(&st->mu); pthread_cond_destroy(&st->cv);
    }
    for (k = 0; k < st->n_slots; k++) {
        if (st->stage_pinned[k]) m->B->host_free(m->B, st->stage[k]);
        else if (!m->B->host) OLLM_FREE(st->stage[k]);
        m->B->release(m->B, &st->slot[k]);
    }
    for (k = 0; st->host_copy && k < m->d.n_layers; k++)
        if (st->host_copy[k]) { if (st->host_pinned[k]) m->B->host_free(m->B, st->host_copy[k]); else OLLM_FREE(st->host_copy[k]); }
    OLLM_FREE(st->host_copy); OLLM_FREE(st->host_pinned);
    ollm__bounce_free(&st->bounce);
    OLLM_FREE(st->block_first); OLLM_FREE(st->block_count); OLLM_FREE(st->block_bytes); OLLM_FREE(st->resident);
    OLLM_FREE(st); m->stream = NULL;
}

/* Places every bound tensor: global ones and the resident layers on the compute device, the others streamed. dir: the
   model's (direct reads open its shards again). */
static ollm_result ollm__tiers_place(ollm_model *m, const char *dir) {
    int L = m->d.n_layers, i, l, k, n_stream = 0, depth = m->cfg.stream_depth > 0 ? m->cfg.stream_depth : 2;
    uint64_t budget = m->B->host ? m->cfg.ram_bytes : 0, global = 0, all = 0, max_block = 0, used, ram_used = 0;
    uint64_t reserve = 0;   /* on a GPU: what a session needs beside the weights (ollm__session_reserve) */
    ollm__streamer *st;
    uint64_t xb = ollm__xcache_classify(m), xmin;
    if (depth > 8) depth = 8;
    qsort(m->ent, (size_t)m->n_ent, sizeof *m->ent, ollm__ent_layer_cmp);   /* globals (-1) first, then by layer */
    for (i = 0; i < m->n_ent; i++) m->load_total += m->ent[i].t->nbytes;
    for (i = 0; i < m->n_ent && !m->B->host && !m->d.tie_embeddings; i++)   /* the table only gathers: it stays in its file */
        if (m->ent[i].layer < 0 && strcmp(m->ent[i].t->name, "model.embed_tokens.weight") == 0) m->embed_file = m->ent[i].t;
    xmin = xb * 2 * (uint64_t)(m->d.n_experts_per_tok > 0 ? m->d.n_experts_per_tok : 1);   /* the least expert cache */
    if (!(st = (ollm__streamer *)ollm__calloc(1, sizeof *st))) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    m->stream = st; st->m = m;
    st->block_first = (int *)ollm__calloc((size_t)L, sizeof(int)); st->block_count = (int *)ollm__calloc((size_t)L, sizeof(int));
    st->block_bytes = (uint64_t *)ollm__calloc((size_t)L, sizeof(uint64_t)); st->resident = (uint8_t *)ollm__calloc((size_t)L, 1);
    if (!st->block_first || !st->block_count || !st->block_bytes || !st->resident)
        return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    for (i = 0; i < m->n_ent; i++) {
        ollm__tent *e = &m->ent[i];
        if (e->layer < 0) { global += e->t == m->embed_file ? 0 : e->t->nbytes; continue; }
        if (e->expert != OLLM__X_DENSE) continue;   /* in the expert cache, not the layer's block */
        if (st->block_count[e->layer]++ == 0) st->block_first[e->layer] = i;
        e->off = st->block_bytes[e->layer];
        st->block_bytes[e->layer] += (e->t->nbytes + OLLM__ALIGN - 1) / OLLM__ALIGN * OLLM__ALIGN;
    }
    for (l = 0; l < L; l++) { all += st->block_bytes[l]; if (st->block_bytes[l] > max_block) max_block = st->block_bytes[l]; }
    if (!m->B->host && m->B->mem_budget) {
        /* the GPU holds weights within its budget less what sessions need (KV cache, activations, scratch) */
        reserve = ollm__session_reserve(m, m->group);
        budget = m->B->mem_budget > reserve ? m->B->mem_budget - reserve : 1;
    }
    if (m->cfg.prefill_group == 0 && budget && global + all + xmin > budget) {
        /* layers will stream: prefill runs several chunks through each of them, as many as the context holds, up to
           16, in passes of equal size; on a GPU also up to a sixteenth of the budget for what they add, and only where
           the least streaming plan still fits beside them (on the CPU they take RAM the weights' budget leaves out) */
        uint64_t ctx = (uint64_t)ollm__ctx(m->cfg.max_context, &m->d), g, passes;
        uint64_t nch = (ctx + (uint64_t)m->chunk - 1) / (uint64_t)m->chunk;
        for (g = nch < 16 ? nch : 16; g > 1 && !m->B->host; g--) {
            uint64_t r = ollm__session_reserve(m, (int)g);
            if (r - reserve <= m->B->mem_budget / 16 && r < m->B->mem_budget &&
                global + (uint64_t)depth * max_block + xmin <= m->B->mem_budget - r) break;
        }
        passes = (nch + g - 1) / g;
        m->group = (int32_t)((nch + passes - 1) / passes);
        if (!m->B->host) {
            reserve = ollm__session_reserve(m, m->group);
            budget = m->B->mem_budget > reserve ? m->B->mem_budget - reserve : 1;
        }
        if (m->group > 1)
            ollm__logf(&m->log, OLLM_LOG_INFO, "tiers: layers stream, so a prefill pass takes %d chunks of %d "
                       "(prefill_group)", (int)m->group, (int)m->chunk);
    }
    /* resident first layers while the rest, plus the slots, still fit */
    used = global;
    if (budget && global + all + xmin > budget) {
        if (global + (uint64_t)depth * max_block + xmin > budget)
            return ollm__fail(&m->log, OLLM_ERR_BUDGET, "weights budget %.1f MB is less than the %.1f MB of embeddings and "
                              "head plus %d streaming slots of %.1f MB%s", (double)budget / 1e6, (double)global / 1e6, depth,
                              (double)max_block / 1e6, xmin ? " plus room for the picked experts" : "");
        for (l = 0; l < L; l++)
            if (used + st->block_bytes[l] + (uint64_t)depth * max_block + xmin <= budget) { st->resident[l] = 1; used += st->block_bytes[l]; }
            else break;
    } else { memset(st->resident, 1, (size_t)L); used = global + all; }
    for (i = 0; i < m->n_ent; i++)
        if ((m->ent[i].layer < 0 || st->resident[m->ent[i].layer]) && m->ent[i].expert == OLLM__X_DENSE &&
            m->ent[i].t != m->embed_file)
            OLLM__TRY(ollm__load_resident(m, &m->ent[i]));
    if (m->embed_file)
        ollm__logf(&m->log, OLLM_LOG_INFO, "tiers: the embedding table (%.2f GB) stays in %s: a chunk's rows are read from "
                   "it", (double)m->embed_file->nbytes / 1e9, m->st.file_names[m->embed_file->file]);
    for (l = 0; l < L; l++) n_stream += !st->resident[l];
    m->info.resident_layers = L - n_stream; m->info.streamed_layers = n_stream; m->info.resident_bytes = used;
    m->info.prefill_chunk = m->chunk; m->info.prefill_group = m->group;
    if (n_stream == 0) {
        ollm__streamer_free(m);
        return ollm__xcache_place(m, dir, budget ? budget - used : UINT64_MAX, &ram_used);
    }
    if (!m->B->host) {
        /* the RAM tier: streamed layers kept in (page-locked) host memory while the RAM budget lasts */
        st->host_copy = (char **)ollm__calloc((size_t)L, sizeof(char *));
        st->host_pinned = (uint8_t *)ollm__calloc((size_t)L, 1);
        if (!st->host_copy || !st->host_pinned) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
        for (l = 0; l < L; l++) {
            char *h;
            if (st->resident[l] || (m->cfg.ram_bytes && ram_used + st->block_bytes[l] > m->cfg.ram_bytes)) continue;
            h = m->B->host_alloc ? (char *)m->B->host_alloc(m->B, st->block_bytes[l]) : NULL;
            st->host_pinned[l] = h != NULL;
            if (!h && !(h = (char *)OLLM_MALLOC((size_t)st->block_bytes[l]))) break;   /* out of RAM: the rest stay on disk */
            st->host_copy[l] = h;
            for (i = st->block_first[l]; i < st->block_first[l] + st->block_count[l]; i++) {
                OLLM__TRY(ollm__read_tensor(m, m->ent[i].t, h + m->ent[i].off));
                OLLM__TRY(ollm__load_progress(m, m->ent[i].t->nbytes, 0));
            }
            ram_used += st->block_bytes[l]; m->info.ram_layers++;
        }
        m->info.ram_bytes = ram_used;
    }
    st->n_slots = depth < n_stream ? depth : n_stream;
    for (k = 0; k < st->n_slots; k++) {
        ollm_result r = m->B->alloc(m->B, max_block, &st->slot[k]);
        if (r != OLLM_OK) return ollm__fail(&m->log, r, "no memory for a streaming slot of %.2f GB", (double)max_block / 1e9);
        st->stage[k] = m->B->host ? (char *)st->slot[k].ptr : m->B->host_alloc ? (char *)m->B->host_alloc(m->B, max_block) : NULL;
        st->stage_pinned[k] = st->stage[k] != NULL && !m->B->host;
        if (!st->stage[k]) st->stage[k] = (char *)OLLM_MALLOC((size_t)max_block);
        if (!st->stage[k]) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "no host memory to stage a layer");
        st->slot_layer[k] = -1; st->slot_uploaded[k] = -1;
    }
    if (m->B->host || m->info.ram_layers < n_stream)   /* some layers are read from disk while running */
        ollm__direct_setup(m, dir, &st->bounce, 1, max_block);
    pthread_mutex_init(&st->mu, NULL); pthread_cond_init(&st->cv, NULL);
    if (pthread_create(&st->io, NULL, ollm__io_main, st) != 0) {
        pthread_mutex_destroy(&st->mu); pthread_cond_destroy(&st->cv);
        return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "cannot start the I/O thread");
    }
    st->started = 1;
    m->info.stream_slots = st->n_slots; m->info.slot_bytes = max_block;
    OLLM__TRY(ollm__xcache_place(m, dir, budget ? budget - used - (uint64_t)st->n_slots * max_block : UINT64_MAX, &ram_used));
    ollm__logf(&m->log, OLLM_LOG_INFO, "tiers: %d of %d layers resident (%.2f GB with embeddings and head), %d streamed "
               "(%d from RAM, %.2f GB; %d from disk) through %d slots of %.2f GB", L - n_stream, L, (double)used / 1e9,
               n_stream, m->info.ram_layers, (double)ram_used / 1e9, n_stream - m->info.ram_layers, st->n_slots,
               (double)max_block / 1e9);
    return OLLM_OK;
}

/* Asks the I/O thread for layer l in the least recently used slot that is not in use; called with mu held. */
static void ollm__stream_request(ollm__streamer *st, int l, uint64_t priority) {
    int k, best = -1;
    for (k = 0; k < st->n_slots; k++) if (st->slot_layer[k] == l && st->slot_state[k] != OLLM__SLOT_ERROR) return;
    for (k = 0; k < st->n_slots; k++)
        if ((st->slot_state[k] == OLLM__SLOT_FREE || st->slot_state[k] == OLLM__SLOT_READY) &&
            (best < 0 || st->slot_tick[k] < st->slot_tick[best])) best = k;
    if (best < 0 || st->slot_tick[best] >= priority) return;   /* every slot is busy or holds something needed sooner */
    if (st->slot_uploaded[best] >= 0 && st->m->B->slot_sync) st->m->B->slot_sync(st->m->B, best);   /* stage reusable */
    st->slot_layer[best] = l; st->slot_tick[best] = priority; st->slot_uploaded[best] = -1;
    if (st->host_copy && st->host_copy[l]) { st->slot_state[best] = OLLM__SLOT_READY; return; }   /* already in RAM */
    st->slot_state[best] = OLLM__SLOT_LOADING;
    pthread_cond_broadcast(&st->cv);
}

/* Starts (or does) the upload of slot k's layer to the device, unless the slot already holds it. */
static ollm_result ollm__stream_upload(ollm_model *m, ollm__streamer *st, int k) {
    int l = st->slot_layer[k]; ollm_result r; const char *src;
    if (m->B->host || st->slot_uploaded[k] == l) return OLLM_OK;
    src = st->host_copy && st->host_copy[l] ? st->host_copy[l] : st->stage[k];
    r = ollm__upload_slot(m->B, k, st->slot[k], src, st->block_bytes[l]);
    if (r == OLLM_OK) { st->slot_uploaded[k] = l; st->bytes_uploaded += st->block_bytes[l]; }
    return r;
}

/* Makes layer l's weights usable: a no-op for resident layers; otherwise waits for its slot (requesting it if no
   prefetch did), points the layer's tensors into it, and prefetches the next streamed layers. */
static ollm_result ollm__layer_acquire(ollm_model *m, int l) {
    ollm__streamer *st = m->stream; int k, slot = -1, i, n, next; ollm_result r = OLLM_OK; double t0;
    if (!st || st->resident[l]) return OLLM_OK;
    pthread_mutex_lock(&st->mu);
    for (k = 0; k < st->n_slots; k++)   /* one layer computes at a time: any other still marked in use is done */
        if (st->slot_state[k] == OLLM__SLOT_IN_USE && st->slot_layer[k] != l) {
            st->slot_state[k] = OLLM__SLOT_READY;
            if (m->B->slot_release) m->B->slot_release(m->B, k);
        }
    st->tick += (uint64_t)m->d.n_layers + 1;
    ollm__stream_request(st, l, st->tick);
    t0 = ollm__now();
    for (;;) {
        for (k = 0; k < st->n_slots; k++) if (st->slot_layer[k] == l) slot = k;
        if (slot >= 0 && st->slot_state[slot] != OLLM__SLOT_LOADING) break;
        if (slot < 0) ollm__stream_request(st, l, st->tick);
        pthread_cond_wait(&st->cv, &st->mu);
    }
    st->wait_s += ollm__now() - t0;
    if (st->slot_state[slot] == OLLM__SLOT_ERROR) {
        int e = st->slot_errno[slot]; const ollm__tent *bad = st->slot_bad[slot]; char what[32];
        st->slot_state[slot] = OLLM__SLOT_FREE; st->slot_layer[slot] = -1;
        pthread_mutex_unlock(&st->mu);
        snprintf(what, sizeof what, "layer %d", l);
        return ollm__read_failed(m, bad->t, what, e);
    }
    st->slot_state[slot] = OLLM__SLOT_IN_USE;
    /* prefetch the next streamed layers, in order of use, into the other slots */
    for (n = 1, next = l; n < st->n_slots; n++) {
        do next = (next + 1) % m->d.n_layers; while (st->resident[next] && next != l);
        if (next == l) break;
        ollm__stream_request(st, next, st->tick + (uint64_t)(m->d.n_layers - n));
    }
    pthread_mutex_unlock(&st->mu);
    r = ollm__stream_upload(m, st, slot);
    if (r == OLLM_OK && m->B->slot_wait) r = m->B->slot_wait(m->B, slot);
    /* uploads of prefetched layers already in host memory start now, behind this layer's compute */
    if (m->B->upload_async)
        for (k = 0; r == OLLM_OK && k < st->n_slots; k++)
            if (k != slot && st->slot_state[k] == OLLM__SLOT_READY && st->slot_layer[k] >= 0) r = ollm__stream_upload(m, st, k);
    for (i = st->block_first[l]; i < st->block_first[l] + st->block_count[l]; i++)
        m->ent[i].w->data.ptr = (char *)st->slot[slot].ptr + m->ent[i].off;
    return r;
}
static void ollm__layer_release(ollm_model *m, int l) {
    ollm__streamer *st = m->stream; int k;
    if (!st || st->resident[l]) return;
    pthread_mutex_lock(&st->mu);
    for (k = 0; k < st->n_slots; k++)
        if (st->slot_layer[k] == l && st->slot_state[k] == OLLM__SLOT_IN_USE) {
            st->slot_state[k] = OLLM__SLOT_READY;
            if (m->B->slot_release) m->B->slot_release(m->B, k);   /* an upload into k waits for this layer's kernels */
        }
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* The ring rows of layer l (ollm__attn_args.ring), or 0 when its cache holds a row per position. */
static int ollm__kv_ring(const ollm_session *s, int l) {
    return s->m->d.layer_kind[l] == OLLM__LAYER_SLIDING ? s->ring : 0;
}
/* The first contiguous run of the rows holding positions [start, start + n) of layer l: its first row, and how many
   positions it covers (all n, or in a ring up to the ring's last row; the rest continue from row 0). */
static int64_t ollm__kv_run(const ollm_session *s, int l, int64_t start, int64_t n, int64_t *row) {
    int R = ollm__kv_ring(s, l);
    *row = R ? start % R : start;
    return R && *row + n > R ? R - *row : n;
}

/* Session buffers every family uses: the KV cache of layer l (ollm__kv_layer_rows), and the activations of one chunk
   (x, xn: hidden; q, o: qw; k, v: kvw; g, u: ffw; logits: vocab). */
static ollm_result ollm__session_kv(ollm_session *s, int l) {
    ollm__backend *B = s->m->B; uint64_t row = (uint64_t)s->m->d.n_kv_heads * s->m->d.head_dim * B->kv_elem;
    int64_t rows = ollm__kv_layer_rows(&s->m->d, l, s->n_ctx, (int64_t)s->group * s->chunk);
    uint64_t bytes = row * (uint64_t)rows; ollm_result r = OLLM_OK; int i;
    if (rows < s->n_ctx) s->ring = (int32_t)rows;
    if (!s->kv_host) {
        r = B->alloc(B, bytes, &s->k_cache[l]);
        if (r == OLLM_OK) r = B->alloc(B, bytes, &s->v_cache[l]);
        return r;
    }
    for (i = 0; i < 2 && r == OLLM_OK; i++)   /* the staging pair, once, for the largest cache (a row per position) */
        if (!s->stage_k[i].ptr && (r = B->alloc(B, row * (uint64_t)s->n_ctx, &s->stage_k[i])) == OLLM_OK)
            r = B->alloc(B, row * (uint64_t)s->n_ctx, &s->stage_v[i]);
    if (r != OLLM_OK) return r;
    s->host_k[l] = B->host_alloc ? (char *)B->host_alloc(B, bytes) : NULL;
    s->host_v[l] = B->host_alloc ? (char *)B->host_alloc(B, bytes) : NULL;
    s->host_pinned[l] = s->host_k[l] && s->host_v[l];
    if (!s->host_pinned[l]) {
        if (s->host_k[l]) B->host_free(B, s->host_k[l]);
        if (s->host_v[l]) B->host_free(B, s->host_v[l]);
        s->host_k[l] = (char *)OLLM_MALLOC((size_t)bytes); s->host_v[l] = (char *)OLLM_MALLOC((size_t)bytes);
        if (!s->host_k[l] || !s->host_v[l]) return OLLM_ERR_NO_MEMORY;
    }
    return OLLM_OK;
}
static int ollm__kv_has(const ollm_session *s, int l) { return s->k_cache[l].bytes || (s->kv_host && s->host_k[l]); }
/* K and V rows of positions [start, start + n) of layer l copied out of (get) or into (put) the cache, wherever it
   lives; in a ring (n <= its rows) the positions that wrap are the second of two pieces. */
static ollm_result ollm__kv_rows(ollm_session *s, int l, int64_t start, int64_t n, char *k, char *v, int put) {
    ollm__backend *B = s->m->B; uint64_t row = (uint64_t)s->m->d.n_kv_heads * s->m->d.head_dim * B->kv_elem;
    int64_t r0, n1 = ollm__kv_run(s, l, start, n, &r0); uint64_t off = (uint64_t)r0 * row, bytes = (uint64_t)n * row;
    ollm_result r;
    if (n1 < n) {   /* wraps in a ring */
        OLLM__TRY(ollm__kv_rows(s, l, start, n1, k, v, put));
        return ollm__kv_rows(s, l, start + n1, n - n1, k + (uint64_t)n1 * row, v + (uint64_t)n1 * row, put);
    }
    if (s->kv_host) {
        if (put) { memcpy(s->host_k[l] + off, k, (size_t)bytes); memcpy(s->host_v[l] + off, v, (size_t)bytes); }
        else { memcpy(k, s->host_k[l] + off, (size_t)bytes); memcpy(v, s->host_v[l] + off, (size_t)bytes); }
        return OLLM_OK;
    }
    if (put) {
        if ((r = B->upload(B, ollm__view(s->k_cache[l], off, bytes), k, bytes)) != OLLM_OK) return r;
        return B->upload(B, ollm__view(s->v_cache[l], off, bytes), v, bytes);
    }
    if ((r = B->download(B, k, ollm__view(s->k_cache[l], off, bytes), bytes)) != OLLM_OK) return r;
    return B->download(B, v, ollm__view(s->v_cache[l], off, bytes), bytes);
}
/* The caches layer l's attention reads and appends to: the layer's own, or (kv_host) a staging pair on the device
   holding the layer's first pos0 rows, uploaded here; ollm__kv_end copies the rows attention appended back. */
/* Starts copying layer l's first pos0 K and V rows into its staging pair (compute waits for it in ollm__kv_begin). */
/* The staging pair of layer l: layers with a KV cache take the two pairs in turn (hybrid models skip the others). */
static int ollm__kv_pair(const ollm_session *s, int l) {
    int i, n = 0;
    for (i = 0; i < l; i++) n += s->host_k[i] != NULL;
    return n & 1;
}
static ollm_result ollm__kv_upload(ollm_session *s, int l, int pos0) {
    ollm__backend *B = s->m->B; int R = ollm__kv_ring(s, l), k = ollm__kv_pair(s, l);
    uint64_t bytes = (uint64_t)(R && pos0 > R ? R : pos0) * s->m->d.n_kv_heads * s->m->d.head_dim * B->kv_elem;
    if (s->kv_staged[k] == l) return OLLM_OK;
    s->kv_staged[k] = l;
    if (!bytes) return OLLM_OK;
    OLLM__TRY(ollm__upload_slot(B, OLLM__KV_SLOT + k, s->stage_k[k], s->host_k[l], bytes));
    return ollm__upload_slot(B, OLLM__KV_SLOT + k, s->stage_v[k], s->host_v[l], bytes);
}
static ollm_result ollm__kv_begin(ollm_session *s, int l, int pos0, ollm__buf *kc, ollm__buf *vc) {
    ollm__backend *B = s->m->B; int L = s->m->d.n_layers, k = 0, n;
    if (!s->kv_host) { *kc = s->k_cache[l]; *vc = s->v_cache[l]; return OLLM_OK; }
    k = ollm__kv_pair(s, l);
    *kc = s->stage_k[k]; *vc = s->stage_v[k];
    for (n = 0; n < l && !s->host_k[n]; n++) {}
    if (n == l) s->kv_staged[0] = s->kv_staged[1] = -1;   /* a new pass: nothing staged is for its pos0 (after an error) */
    OLLM__TRY(ollm__kv_upload(s, l, pos0));
    if (B->slot_wait) OLLM__TRY(B->slot_wait(B, OLLM__KV_SLOT + k));
    /* the next cached layer's rows go up while this layer computes (its pair's previous user is done) */
    for (n = l + 1; n < L && !s->host_k[n]; n++) {}
    if (n < L) OLLM__TRY(ollm__kv_upload(s, n, pos0));
    return OLLM_OK;
}
static ollm_result ollm__kv_end(ollm_session *s, int l, int pos0, int T) {
    ollm__backend *B = s->m->B; uint64_t row = (uint64_t)s->m->d.n_kv_heads * s->m->d.head_dim * B->kv_elem;
    int k, done = 0;
    if (!s->kv_host) return OLLM_OK;
    k = ollm__kv_pair(s, l);
    while (done < T) {   /* the rows attention appended (in a ring, two runs where it wraps) */
        int64_t r0, n = ollm__kv_run(s, l, pos0 + done, T - done, &r0);
        uint64_t off = (uint64_t)r0 * row, bytes = (uint64_t)n * row;
        OLLM__TRY(B->download(B, s->host_k[l] + off, ollm__view(s->stage_k[k], off, bytes), bytes));
        OLLM__TRY(B->download(B, s->host_v[l] + off, ollm__view(s->stage_v[k], off, bytes), bytes));
        done += (int)n;
    }
    s->kv_staged[k] = -1;   /* the pair may now take the cached layer after next */
    if (B->slot_release) OLLM__TRY(B->slot_release(B, OLLM__KV_SLOT + k));
    return OLLM_OK;
}
static ollm_result ollm__session_acts(ollm_session *s, int64_t qw, int64_t kvw, int64_t ffw) {
    ollm__backend *B = s->m->B; const ollm__desc *c = &s->m->d; uint64_t T = (uint64_t)s->chunk; ollm_result r = OLLM_OK;
#define OLLM__ACT(buf, width) if (r == OLLM_OK) r = B->alloc(B, T * (uint64_t)(width) * 4, &s->buf)
    if (r == OLLM_OK) r = B->alloc(B, (uint64_t)s->group * T * (uint64_t)c->hidden * 4, &s->xs);
    if (r == OLLM_OK) s->x = ollm__view(s->xs, 0, T * (uint64_t)c->hidden * 4);
    OLLM__ACT(xn, c->hidden); OLLM__ACT(q, qw); OLLM__ACT(o, qw);
    OLLM__ACT(k, kvw); OLLM__ACT(v, kvw); OLLM__ACT(g, ffw); OLLM__ACT(u, ffw);
#undef OLLM__ACT
    if (r == OLLM_OK) r = B->alloc(B, (uint64_t)c->vocab * 4, &s->logits);   /* one row; grown when all are asked for */
    if (r == OLLM_OK && s->m->embed_file) {   /* a chunk of embedding rows on their way from the file */
        uint64_t rb = s->m->embed_file->nbytes / (uint64_t)c->vocab, i;
        r = B->alloc(B, T * rb, &s->erows);
        s->erows_h = (char *)OLLM_MALLOC((size_t)(T * rb)); s->eids = (int32_t *)OLLM_MALLOC((size_t)T * sizeof(int32_t));
        if (r == OLLM_OK && (!s->erows_h || !s->eids)) r = OLLM_ERR_NO_MEMORY;
        for (i = 0; r == OLLM_OK && i < T; i++) s->eids[i] = (int32_t)i;   /* row i of erows is token i's */
    }
    if (r == OLLM_OK && s->m->xc && s->m->cfg.expert_guess >= 0)   /* ollm__guess_next's input */
        r = B->alloc(B, (uint64_t)OLLM__GROUP_ROWS * c->hidden * 4, &s->gx);
    return r;
}
/* Room for `rows` rows of logits (prefill asking for every position's logits). */
static ollm_result ollm__session_logits_rows(ollm_session *s, int rows) {
    ollm__backend *B = s->m->B; uint64_t need = (uint64_t)rows * s->m->d.vocab * 4;
    if (s->logits.bytes >= need) return OLLM_OK;
    B->release(B, &s->logits);
    return B->alloc(B, need, &s->logits);
}
/* The first op of every family's forward pass: s->x[T, hidden] = the embedding rows of ids, gathered on the device,
   or for a table left in its file (m->embed_file) read from the file (the page cache keeps the rows in use), uploaded
   and converted as a table of their own. */
static ollm_result ollm__embed(ollm_session *s, const ollm__w *table, const int32_t *ids, int T) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__tensor *t = m->embed_file; ollm__w rows; uint64_t rb;
    int i;
    if (!t) return B->embed(B, s->x, table, ids, T);
    rb = t->nbytes / (uint64_t)m->d.vocab;
    for (i = 0; i < T; i++) {
        errno = 0;
        if (ollm__pread_all(m->st.files[t->file].fd, s->erows_h + (uint64_t)i * rb, rb, t->offset + (uint64_t)ids[i] * rb) != OLLM_OK)
            return ollm__read_failed(m, t, "an embedding row", errno);
    }
    OLLM__TRY(B->upload(B, s->erows, s->erows_h, (uint64_t)T * rb));
    rows = *table; rows.data = ollm__view(s->erows, 0, (uint64_t)T * rb); rows.rows = T;
    return B->embed(B, s->x, &rows, s->eids, T);
}
/* The last position's logits where the forward pass left them (row logits_row >= 0 of s->logits), and last_logits
   read back from there if they are not yet. */
static ollm__buf ollm__logits_dev(const ollm_session *s) {
    uint64_t n = (uint64_t)s->m->d.vocab * 4;
    return ollm__view(s->logits, (uint64_t)s->logits_row * n, n);
}
static ollm_result ollm__logits_host(ollm_session *s) {
    if (s->logits_row < 0) return OLLM_OK;
    OLLM__TRY(s->m->B->download(s->m->B, s->last_logits, ollm__logits_dev(s), (uint64_t)s->m->d.vocab * 4));
    s->logits_row = -1;
    return OLLM_OK;
}
/* The end of every family's forward pass: the final norm and the head on the rows whose logits are wanted (the last
   `rows` of T: all of them, or the last), into s->logits; every row's copied to logits_all when asked for. The last
   row's are read back into last_logits now, or where the backend can sample greedily and this is a decoded token,
   when first needed (ollm__logits_host): greedy decoding (ollm__backend.argmax) reads back one index instead. */
static ollm_result ollm__head(ollm_session *s, const ollm__w *norm, const ollm__w *head, int T, int rows, float eps,
                              int unit_offset, float *logits_all) {
    ollm__backend *B = s->m->B; int64_t H = s->m->d.hidden;
    OLLM__TRY(B->rmsnorm(B, s->xn, ollm__view(s->x, (uint64_t)(T - rows) * H * 4, (uint64_t)rows * H * 4), norm, rows,
                         (int)H, eps, unit_offset));
    OLLM__TRY(B->matmul(B, s->logits, s->xn, head, NULL, rows, 0));
    if (logits_all) OLLM__TRY(B->download(B, logits_all, s->logits, (uint64_t)rows * s->m->d.vocab * 4));
    s->logits_row = rows - 1;
    return B->argmax && T == 1 ? OLLM_OK : ollm__logits_host(s);
}

/* The forward pass over T tokens of up to s->group chunks, every family's: each chunk embedded into its rows of
   s->xs, then per layer every chunk in turn (layer: T of a chunk's tokens from position pos0, on s->x), then the
   final norm and the head on the rows whose logits are wanted. A layer's weights (and a MoE layer's experts) are
   acquired once for all the chunks. Chunk by chunk the same operations as one chunk a pass, so the same results. */
typedef ollm_result (*ollm__layer_fn)(ollm_session *s, int l, int T, int pos0);
static int ollm__chunk_at(ollm_session *s, int i, int T) {   /* s->x = chunk i's rows; returns its tokens */
    uint64_t H = (uint64_t)s->m->d.hidden; int r0 = i * s->chunk, n = T - r0 < s->chunk ? T - r0 : s->chunk;
    s->x = ollm__view(s->xs, (uint64_t)r0 * H * 4, (uint64_t)n * H * 4);
    return n;
}
static ollm_result ollm__forward_chunks(ollm_session *s, const int32_t *ids, int T, float *logits_all, ollm__layer_fn layer,
                                        const ollm__w *embed, const ollm__w *norm, const ollm__w *head, int unit_offset) {
    ollm_model *m = s->m; int nc = (T + s->chunk - 1) / s->chunk, i, l, n; float eps = (float)m->d.rms_eps;
    for (i = 0; i < nc; i++) { n = ollm__chunk_at(s, i, T); OLLM__TRY(ollm__embed(s, embed, ids + (int64_t)i * s->chunk, n)); }
    for (l = 0; l < m->d.n_layers; l++) {
        OLLM__TRY(ollm__layer_acquire(m, l));                                       /* waits only if still in flight */
        for (i = 0; i < nc; i++) { n = ollm__chunk_at(s, i, T); OLLM__TRY(layer(s, l, n, (int)s->n_past + i * s->chunk)); }
        ollm__layer_release(m, l);                                                  /* its slot may take layer l + depth */
        if (s->prog_on && nc > 1 && l + 1 < m->d.n_layers &&   /* a long pass: progress by the layer, a stop at its end */
            s->cfg.progress(s->cfg.progress_user, s->prog_done + (uint64_t)T * (uint64_t)(l + 1) / (uint64_t)m->d.n_layers,
                            s->prog_total))
            s->prog_stop = 1;
    }
    for (i = logits_all ? 0 : nc - 1; i < nc; i++) {
        n = ollm__chunk_at(s, i, T);
        OLLM__TRY(ollm__head(s, norm, head, n, logits_all ? n : 1, eps, unit_offset,
                             logits_all ? logits_all + (int64_t)i * s->chunk * m->d.vocab : NULL));
    }
    return OLLM_OK;
}

/* ==== @graph-llama ==== the Llama-3 forward pass (transformers modeling_llama.py) ========================== */

typedef struct ollm__llama_layer {
    ollm__w input_layernorm, q_proj, k_proj, v_proj, o_proj;
    ollm__w post_attention_layernorm, gate_proj, up_proj, down_proj;
} ollm__llama_layer;
typedef struct ollm__llama {
    ollm__w embed_tokens, norm, lm_head;   /* lm_head is unused when tied: the head is embed_tokens */
    ollm__llama_layer layers[1];           /* n_layers of them */
} ollm__llama;

static ollm_result ollm__llama_config(const ollm__json *j, ollm__desc *d, ollm__log *lg) {
    OLLM__TRY(ollm__cfg_int(j, 1, "intermediate_size", 1, OLLM__MAX_DIM, &d->ffn, lg));
    if (!d->ffn) return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: intermediate_size is required");
    return OLLM_OK;
}
static size_t ollm__llama_weights_size(const ollm__desc *d) {
    return sizeof(ollm__llama) + (size_t)d->n_layers * sizeof(ollm__llama_layer);
}

/* Every tensor a Llama checkpoint must hold, with the shape config.json implies ([rows] when cols is 0), and the slot
   it loads into. Loading (ollm__bind_shaped) and the random-checkpoint writer (tools/) both walk this one list. */
static ollm_result ollm__llama_tensors(ollm_model *m, ollm__tensor_fn fn) {
    const ollm__desc *c = &m->d; char name[256]; int l; ollm__llama *w = (ollm__llama *)m->fw;
    int64_t H = c->hidden, qw = (int64_t)c->n_heads * c->head_dim, kw = (int64_t)c->n_kv_heads * c->head_dim;
    OLLM__TRY(ollm__bind_fn(m, fn, &w->embed_tokens, "model.embed_tokens.weight", c->vocab, H));
    OLLM__TRY(ollm__bind_fn(m, fn, &w->norm, "model.norm.weight", H, 0));
    if (!c->tie_embeddings) OLLM__TRY(ollm__bind_fn(m, fn, &w->lm_head, "lm_head.weight", c->vocab, H));
    for (l = 0; l < c->n_layers; l++) {
        ollm__llama_layer *L = &w->layers[l];
#define OLLM__T(field, suffix, rows, cols) \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        OLLM__TRY(ollm__bind_fn(m, fn, &L->field, name, rows, cols))
        OLLM__T(input_layernorm, "input_layernorm.weight", H, 0);
        OLLM__T(q_proj, "self_attn.q_proj.weight", qw, H);
        OLLM__T(k_proj, "self_attn.k_proj.weight", kw, H);
        OLLM__T(v_proj, "self_attn.v_proj.weight", kw, H);
        OLLM__T(o_proj, "self_attn.o_proj.weight", H, qw);
        OLLM__T(post_attention_layernorm, "post_attention_layernorm.weight", H, 0);
        OLLM__T(gate_proj, "mlp.gate_proj.weight", c->ffn, H);
        OLLM__T(up_proj, "mlp.up_proj.weight", c->ffn, H);
        OLLM__T(down_proj, "mlp.down_proj.weight", H, c->ffn);
#undef OLLM__T
    }
    return OLLM_OK;
}

static ollm_result ollm__llama_session_init(ollm_session *s) {
    const ollm__desc *c = &s->m->d; int l;
    for (l = 0; l < c->n_layers; l++) OLLM__TRY(ollm__session_kv(s, l));
    return ollm__session_acts(s, c->n_heads * c->head_dim, c->n_kv_heads * c->head_dim, c->ffn);
}
/* Layer l over T tokens at positions pos0.. (s->x: their rows): h = x + Wo Attn(RoPE(Wq n1), RoPE(Wk n1), Wv n1),
   n1 = RMSNorm(x); x = h + Wd (silu(Wg n2) * Wu n2), n2 = RMSNorm(h). ollm__forward_chunks runs it for each layer
   and chunk, then the final norm and the head on the rows asked for. */
static ollm_result ollm__llama_pass(ollm_session *s, int l, int T, int pos0) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; const ollm__llama *w = (const ollm__llama *)m->fw;
    const ollm__llama_layer *L = &w->layers[l]; int H = c->hidden; float eps = (float)c->rms_eps;
    ollm__attn_args a; ollm__buf kc, vc;
    memset(&a, 0, sizeof a);
    a.T = T; a.pos0 = pos0; a.n_heads = c->n_heads; a.n_kv_heads = c->n_kv_heads; a.head_dim = c->head_dim;
    a.scale = 1.0f / sqrtf((float)c->head_dim);
    OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->input_layernorm, T, H, eps, 0));
    {   /* q, k, v: three products of xn */
        ollm__buf y[3]; const ollm__w *W[3];
        y[0] = s->q; y[1] = s->k; y[2] = s->v; W[0] = &L->q_proj; W[1] = &L->k_proj; W[2] = &L->v_proj;
        OLLM__TRY(B->matmul_n(B, 3, y, s->xn, W, NULL, T));
    }
    OLLM__TRY(B->rope(B, s->q, c->n_heads, s->k, c->n_kv_heads, T, c->head_dim, m->rot_dim, a.pos0, m->inv_freq,
                      m->mscale));
    OLLM__TRY(ollm__kv_begin(s, l, a.pos0, &kc, &vc));                         /* the layer's KV cache */
    OLLM__TRY(B->attention(B, s->o, s->q, s->k, s->v, kc, vc, &a));
    OLLM__TRY(ollm__kv_end(s, l, a.pos0, T));
    OLLM__TRY(B->matmul(B, s->x, s->o, &L->o_proj, NULL, T, 1));               /* x += o Wo^T */
    OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->post_attention_layernorm, T, H, eps, 0));
    {   /* gate and up: two products of xn */
        ollm__buf y[2]; const ollm__w *W[2];
        y[0] = s->g; y[1] = s->u; W[0] = &L->gate_proj; W[1] = &L->up_proj;
        OLLM__TRY(B->matmul_n(B, 2, y, s->xn, W, NULL, T));
    }
    OLLM__TRY(B->silu_mul(B, s->g, s->u, (int64_t)T * c->ffn));
    OLLM__TRY(B->matmul(B, s->x, s->g, &L->down_proj, NULL, T, 1));            /* x += mlp */
    return OLLM_OK;
}
static ollm_result ollm__llama_forward(ollm_session *s, const int32_t *ids, int T, float *logits_all) {
    const ollm__llama *w = (const ollm__llama *)s->m->fw;
    return ollm__forward_chunks(s, ids, T, logits_all, ollm__llama_pass, &w->embed_tokens, &w->norm,
                                s->m->d.tie_embeddings ? &w->embed_tokens : &w->lm_head, 0);
}

/* ==== @graph-gpt-oss ==== the GPT-OSS forward pass: MXFP4 experts, sinks, sliding windows ================= */
/* The GPT-OSS forward pass (transformers models/gpt_oss/modeling_gpt_oss.py, integrations/mxfp4.py).

   Per layer: h = x + Wo Attn(RoPE(Wq n1 + bq), RoPE(Wk n1 + bk), Wv n1 + bv) + bo, n1 = RMSNorm(x), attention with one
   sink logit per head and, on "sliding_attention" layers, a window of sliding_window keys; x = h + MoE(RMSNorm(h)).
   MoE: router logits W_r n2 + b_r, top-k, softmax over those k; each picked expert e computes gu = W_gu,e n2 + b_gu,e,
   gate = min(gu[0::2], limit), up = clamp(gu[1::2], -limit, limit), y = (up + 1) * gate * sigmoid(1.702 gate),
   out_e = W_d,e y + b_d,e; the result is sum_e weight_e out_e. YaRN RoPE scales cos and sin by m->mscale.

   Experts come in two layouts, told apart by the tensor names of layer 0:
   - MXFP4 (the hub checkpoints): `mlp.experts.{gate_up,down}_proj_{blocks,scales}` U8 plus `_bias`; each block is 32
     values of one output row along the input dimension, 16 bytes of two E2M1 codes (low nibble first) and one scale
     byte s meaning 2^(s - 127). Dequantised row by row inside the matrix product, never as a whole.
   - packed floats (bf16 re-publications, what transformers holds after dequantising): `mlp.experts.gate_up_proj
     [E, H, 2I]` and `mlp.experts.down_proj [E, I, H]`, input-major (transposed relative to a Linear).

   Both backends: the graph calls backend ops only. Routing is decided on the host (the router logits are read back,
   T x E floats), so only the picked experts' weights are touched. Full-attention layers keep a KV row per position;
   sliding layers a ring of sliding_window + chunk - 1 rows (ollm__kv_layer_rows), so their cache does not grow with
   the context. */

typedef struct ollm__gptoss_layer {
    ollm__w input_layernorm, q_proj, q_proj_bias, k_proj, k_proj_bias, v_proj, v_proj_bias, o_proj, o_proj_bias, sinks;
    ollm__w post_attention_layernorm, router, router_bias;
    ollm__w gate_up_proj_blocks, gate_up_proj_scales, down_proj_blocks, down_proj_scales;   /* MXFP4 layout */
    ollm__w gate_up_proj, down_proj;                                                         /* packed float layout */
    ollm__w gate_up_proj_bias, down_proj_bias;                                               /* both layouts */
} ollm__gptoss_layer;
typedef struct ollm__gptoss {
    ollm__w embed_tokens, norm, lm_head;     /* lm_head unbound when tied */
    int mxfp4;                              /* experts stored as MXFP4 blocks and scales; else packed floats */
    ollm__gptoss_layer layers[1];           /* n_layers of them */
} ollm__gptoss;

/* GptOssConfig (configuration_gpt_oss.py): its dataclass defaults apply to fields config.json leaves out. */
static ollm_result ollm__gptoss_config(const ollm__json *j, ollm__desc *d, ollm__log *lg) {
    uint32_t lt = ollm__json_get(j, 1, "layer_types"), e; int l; double alpha = 1.702;
    if (!ollm__json_get(j, 1, "head_dim")) d->head_dim = 64;                       /* not hidden / heads */
    if (!ollm__json_get(j, 1, "num_key_value_heads")) d->n_kv_heads = 8;
    if (!ollm__json_get(j, 1, "rms_norm_eps")) d->rms_eps = 1e-5;
    if (!ollm__json_get(j, 1, "max_position_embeddings")) d->max_pos = 131072;
    if (d->n_heads % d->n_kv_heads || (int64_t)d->n_heads * d->head_dim > OLLM__MAX_DIM)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: %d heads of %d do not fit %d kv heads", d->n_heads,
                          d->head_dim, d->n_kv_heads);
    if (!ollm__json_is(j, ollm__json_get(j, 1, "rope_parameters"), OLLM__J_OBJ) &&
        !ollm__json_is(j, ollm__json_get(j, 1, "rope_scaling"), OLLM__J_OBJ)) {
        double theta = d->rope.theta;   /* GptOssConfig.__post_init__'s rope_parameters */
        memset(&d->rope, 0, sizeof d->rope);
        d->rope.type = OLLM__ROPE_YARN; d->rope.factor = 32; d->rope.beta_fast = 32; d->rope.beta_slow = 1;
        d->rope.truncate = 0; d->rope.original_max_position_embeddings = 4096; d->rope.partial_rotary_factor = 1;
        d->rope.theta = theta;
    }
    if (!ollm__json_get(j, 1, "rope_theta") &&
        !ollm__json_get(j, ollm__json_get(j, 1, "rope_parameters"), "rope_theta"))
        d->rope.theta = 150000.0;                                                   /* GptOssConfig.default_theta */
    OLLM__TRY(ollm__cfg_int(j, 1, "intermediate_size", 1, OLLM__MAX_DIM, &d->moe_ffn, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "num_local_experts", 1, 65536, &d->n_experts, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "experts_per_token", 1, 65536, &d->n_experts_per_tok, lg));   /* older files */
    OLLM__TRY(ollm__cfg_int(j, 1, "num_experts_per_tok", 1, 65536, &d->n_experts_per_tok, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "sliding_window", 0, 1 << 30, &d->sliding_window, lg));
    d->attention_bias = 1;
    OLLM__TRY(ollm__cfg_bool(j, 1, "attention_bias", &d->attention_bias, lg));
    d->swiglu_limit = 7.0;
    OLLM__TRY(ollm__cfg_num(j, 1, "swiglu_limit", 0, 1e30, &d->swiglu_limit, lg));
    OLLM__TRY(ollm__cfg_num(j, 1, "swiglu_alpha", 0, 1e30, &alpha, lg));
    if (alpha != 1.702)   /* modeling_gpt_oss.py's GptOssExperts.alpha; ollm__desc has no field for another value */
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "config.json: swiglu_alpha %g is not supported (only 1.702)", alpha);
    if (!d->moe_ffn || !d->n_experts || !d->n_experts_per_tok)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: intermediate_size, num_local_experts and "
                          "num_experts_per_tok (or experts_per_token) are required");
    if (d->n_experts_per_tok > d->n_experts)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: num_experts_per_tok %d exceeds num_local_experts %d",
                          d->n_experts_per_tok, d->n_experts);
    if (lt && j->v[lt].type != OLLM__J_NULL) {
        if (!ollm__json_is(j, lt, OLLM__J_ARR) || (int32_t)j->v[lt].n != d->n_layers)
            return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: \"layer_types\" must list %d layers", d->n_layers);
        for (e = ollm__json_first(j, lt), l = 0; e; e = ollm__json_next(j, e), l++) {
            const char *t = ollm__json_str(j, e);
            if (t && strcmp(t, "sliding_attention") == 0) d->layer_kind[l] = OLLM__LAYER_SLIDING;
            else if (t && strcmp(t, "full_attention") == 0) d->layer_kind[l] = OLLM__LAYER_FULL;
            else return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "config.json: layer_types[%d] is \"%s\", not "
                                   "\"sliding_attention\" or \"full_attention\"", l, t ? t : "(not a string)");
        }
    } else
        for (l = 0; l < d->n_layers; l++)   /* GptOssConfig: sliding when (i + 1) % 2, so layers 0, 2, 4, ... */
            d->layer_kind[l] = (l + 1) % 2 ? OLLM__LAYER_SLIDING : OLLM__LAYER_FULL;
    return OLLM_OK;
}
static size_t ollm__gptoss_weights_size(const ollm__desc *d) {
    return sizeof(ollm__gptoss) + (size_t)d->n_layers * sizeof(ollm__gptoss_layer);
}

static ollm_result ollm__gptoss_tensors(ollm_model *m, ollm__tensor_fn fn) {
    const ollm__desc *c = &m->d; char name[256]; int l; ollm__gptoss *w = (ollm__gptoss *)m->fw;
    int64_t H = c->hidden, qw = (int64_t)c->n_heads * c->head_dim, kw = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t E = c->n_experts, I = c->moe_ffn, sh[4];
    /* the layout: packed floats when layer 0 has them, else MXFP4 (also what a writer with no checkpoint gets) */
    w->mxfp4 = !ollm__st_find(&m->st, "model.layers.0.mlp.experts.gate_up_proj");
    if (fn == ollm__bind_shaped && w->mxfp4 && (H % 32 || I % 32))
        return ollm__fail(&m->log, OLLM_ERR_FORMAT, "MXFP4 experts need hidden_size (%lld) and intermediate_size "
                          "(%lld) to be multiples of 32", (long long)H, (long long)I);
    OLLM__TRY(ollm__bind_fn(m, fn, &w->embed_tokens, "model.embed_tokens.weight", c->vocab, H));
    OLLM__TRY(ollm__bind_fn(m, fn, &w->norm, "model.norm.weight", H, 0));
    if (!c->tie_embeddings) OLLM__TRY(ollm__bind_fn(m, fn, &w->lm_head, "lm_head.weight", c->vocab, H));   /* gpt-oss: untied */
    for (l = 0; l < c->n_layers; l++) {
        ollm__gptoss_layer *L = &w->layers[l];
#define OLLM__T(field, suffix, rows, cols) \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        OLLM__TRY(ollm__bind_fn(m, fn, &L->field, name, rows, cols))
#define OLLM__TS(field, suffix, dtypes, ndim) \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        OLLM__TRY(fn(m, &L->field, name, dtypes, ndim, sh))
        OLLM__T(input_layernorm, "input_layernorm.weight", H, 0);
        OLLM__T(q_proj, "self_attn.q_proj.weight", qw, H);
        OLLM__T(k_proj, "self_attn.k_proj.weight", kw, H);
        OLLM__T(v_proj, "self_attn.v_proj.weight", kw, H);
        OLLM__T(o_proj, "self_attn.o_proj.weight", H, qw);
        if (c->attention_bias) {
            OLLM__T(q_proj_bias, "self_attn.q_proj.bias", qw, 0);
            OLLM__T(k_proj_bias, "self_attn.k_proj.bias", kw, 0);
            OLLM__T(v_proj_bias, "self_attn.v_proj.bias", kw, 0);
            OLLM__T(o_proj_bias, "self_attn.o_proj.bias", H, 0);
        }
        OLLM__T(sinks, "self_attn.sinks", c->n_heads, 0);
        OLLM__T(post_attention_layernorm, "post_attention_layernorm.weight", H, 0);
        OLLM__T(router, "mlp.router.weight", E, H);
        OLLM__T(router_bias, "mlp.router.bias", E, 0);
        if (w->mxfp4) {
            sh[0] = E; sh[1] = 2 * I; sh[2] = H / 32; sh[3] = 16;
            OLLM__TS(gate_up_proj_blocks, "mlp.experts.gate_up_proj_blocks", 1u << OLLM__U8, 4);
            OLLM__TS(gate_up_proj_scales, "mlp.experts.gate_up_proj_scales", 1u << OLLM__U8, 3);
            sh[0] = E; sh[1] = H; sh[2] = I / 32; sh[3] = 16;
            OLLM__TS(down_proj_blocks, "mlp.experts.down_proj_blocks", 1u << OLLM__U8, 4);
            OLLM__TS(down_proj_scales, "mlp.experts.down_proj_scales", 1u << OLLM__U8, 3);
        } else {
            sh[0] = E; sh[1] = H; sh[2] = 2 * I;
            OLLM__TS(gate_up_proj, "mlp.experts.gate_up_proj", OLLM__FLOAT_DTYPES, 3);
            sh[0] = E; sh[1] = I; sh[2] = H;
            OLLM__TS(down_proj, "mlp.experts.down_proj", OLLM__FLOAT_DTYPES, 3);
        }
        OLLM__T(gate_up_proj_bias, "mlp.experts.gate_up_proj_bias", E, 2 * I);
        OLLM__T(down_proj_bias, "mlp.experts.down_proj_bias", E, H);
#undef OLLM__T
#undef OLLM__TS
    }
    return OLLM_OK;
}

/* ---- the experts ---- */

/* Expert e's gate_up (which 0: [2I, H]) or down (which 1: [H, I]) weight of layer l: views into the stacked tensors,
   or into the expert cache (after ollm__expert_fetch). */
static ollm__w ollm__gptoss_expert(const ollm_model *m, int l, int which, int64_t e, int64_t N, int64_t K) {
    const ollm__gptoss *w = (const ollm__gptoss *)m->fw; const ollm__gptoss_layer *L = &w->layers[l];
    ollm__w W; memset(&W, 0, sizeof W);
    W.rows = N; W.cols = K;
    if (w->mxfp4) {
        W.fmt = OLLM__W_MXFP4; W.dtype = OLLM__U8;
        W.data = ollm__expert_data(m, l, (int)e, which ? &L->down_proj_blocks : &L->gate_up_proj_blocks, 1);
        W.scales = ollm__expert_data(m, l, (int)e, which ? &L->down_proj_scales : &L->gate_up_proj_scales, 1);
    } else {
        const ollm__w *pk = which ? &L->down_proj : &L->gate_up_proj;
        W.fmt = OLLM__W_KMAJOR; W.dtype = pk->dtype;
        W.data = ollm__expert_data(m, l, (int)e, pk, 1);
    }
    return W;
}
/* A bias for matmul: the tensor when the checkpoint has it, else none. */
#define OLLM__BIAS(w) ((w).data.ptr ? &(w) : NULL)
/* Row e of a stacked [E, n] bias. */
static ollm__w ollm__w_row_view(const ollm__w *b, int64_t e, int64_t n) {
    ollm__w v = *b; uint64_t es = ollm__dtype_size[b->dtype];
    v.data = ollm__view(b->data, (uint64_t)(e * n) * es, (uint64_t)n * es); v.rows = n; v.cols = 0;
    return v;
}

/* Session scratch for the experts of one chunk: backend buffers for the routed rows, host arrays for the routing. */
typedef struct ollm__gptoss_sess {
    ollm__buf router;            /* [chunk, E] router logits; decoding, T more rows: the next layer's guessed */
    ollm__buf xg;                /* [chunk * k, H] routed rows (grouped by expert); then the experts' outputs */
    ollm__buf gu, act;           /* [chunk * k, 2I], [chunk * k, I] */
    float *logits;               /* the router logits on the host, as `router` */
    int32_t *pick;               /* [chunk, k] experts picked per token */
    float *weight;               /* [chunk, k] their softmax weights */
    int32_t *count, *start, *fill, *active;   /* [E] each */
    int32_t *row_tok;            /* [chunk * k] token of each routed row */
    int32_t *tok_row;            /* [chunk, k] routed row of each pick */
    int32_t *row0, *rows;        /* [E]: the rows of each active expert, in active order (grouped products) */
    int32_t *xrow;               /* [E] zeros: decoding one token, every expert's input is row 0 of xn */
    ollm__w *Wgu, *Wd, *Bgu, *Bd;   /* [E]: their weights and biases */
} ollm__gptoss_sess;

static void ollm__gptoss_session_free(ollm_session *s) {
    ollm__gptoss_sess *f = (ollm__gptoss_sess *)s->fs; ollm__backend *B = s->m->B;
    if (!f) return;
    B->release(B, &f->router); B->release(B, &f->xg); B->release(B, &f->gu); B->release(B, &f->act);
    OLLM_FREE(f->logits); OLLM_FREE(f->pick); OLLM_FREE(f->weight); OLLM_FREE(f->count); OLLM_FREE(f->start);
    OLLM_FREE(f->fill); OLLM_FREE(f->active); OLLM_FREE(f->row_tok); OLLM_FREE(f->tok_row);
    OLLM_FREE(f->row0); OLLM_FREE(f->rows); OLLM_FREE(f->xrow); OLLM_FREE(f->Wgu); OLLM_FREE(f->Wd); OLLM_FREE(f->Bgu); OLLM_FREE(f->Bd);
    OLLM_FREE(f);
    s->fs = NULL;
}
static ollm_result ollm__gptoss_session_init(ollm_session *s) {
    ollm_model *m = s->m; const ollm__desc *c = &m->d; ollm__backend *B = m->B; ollm__gptoss_sess *f; int l;
    uint64_t T = (uint64_t)s->chunk, E = (uint64_t)c->n_experts, R = T * (uint64_t)c->n_experts_per_tok;
    uint64_t H = (uint64_t)c->hidden, I = (uint64_t)c->moe_ffn;
    for (l = 0; l < c->n_layers; l++) OLLM__TRY(ollm__session_kv(s, l));   /* sliding layers: a ring */
    OLLM__TRY(ollm__session_acts(s, (int64_t)c->n_heads * c->head_dim, (int64_t)c->n_kv_heads * c->head_dim, 1));
    if (!(f = (ollm__gptoss_sess *)ollm__calloc(1, sizeof *f))) return OLLM_ERR_NO_MEMORY;
    s->fs = f;
    OLLM__TRY(B->alloc(B, (T + OLLM__GROUP_ROWS) * E * 4, &f->router));   /* then a guess of the next layer's */
    OLLM__TRY(B->alloc(B, R * H * 4, &f->xg));
    OLLM__TRY(B->alloc(B, R * 2 * I * 4, &f->gu));
    OLLM__TRY(B->alloc(B, R * I * 4, &f->act));
    f->logits = (float *)ollm__calloc((size_t)((T + OLLM__GROUP_ROWS) * E), 4); f->pick = (int32_t *)ollm__calloc((size_t)R, 4);
    f->weight = (float *)ollm__calloc((size_t)R, 4); f->count = (int32_t *)ollm__calloc((size_t)E, 4);
    f->start = (int32_t *)ollm__calloc((size_t)E, 4); f->fill = (int32_t *)ollm__calloc((size_t)E, 4);
    f->active = (int32_t *)ollm__calloc((size_t)E, 4); f->row_tok = (int32_t *)ollm__calloc((size_t)R, 4);
    f->tok_row = (int32_t *)ollm__calloc((size_t)R, 4);
    f->row0 = (int32_t *)ollm__calloc((size_t)E, 4); f->rows = (int32_t *)ollm__calloc((size_t)E, 4);
    f->xrow = (int32_t *)ollm__calloc((size_t)E, 4);
    f->Wgu = (ollm__w *)ollm__calloc((size_t)E, sizeof(ollm__w)); f->Wd = (ollm__w *)ollm__calloc((size_t)E, sizeof(ollm__w));
    f->Bgu = (ollm__w *)ollm__calloc((size_t)E, sizeof(ollm__w)); f->Bd = (ollm__w *)ollm__calloc((size_t)E, sizeof(ollm__w));
    if (!f->logits || !f->pick || !f->weight || !f->count || !f->start || !f->fill || !f->active || !f->row_tok ||
        !f->tok_row || !f->row0 || !f->rows || !f->xrow || !f->Wgu || !f->Wd || !f->Bgu || !f->Bd)
        return OLLM_ERR_NO_MEMORY;
    return OLLM_OK;
}

/* x[T, H] += MoE(xn) (GptOssMLP): route on the host, gather each picked expert's rows, run only those experts, add
   their weighted outputs to x. */
static ollm_result ollm__gptoss_moe(ollm_session *s, int l, int T) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; ollm__gptoss_sess *f = (ollm__gptoss_sess *)s->fs;
    const ollm__gptoss_layer *L = &((const ollm__gptoss *)m->fw)->layers[l];
    int E = c->n_experts, k = c->n_experts_per_tok, t, i, e, n_active = 0, R = 0, most = 0, grouped;
    int guess = ollm__guess_next(m, l, T);
    int64_t H = c->hidden, I = c->moe_ffn;
    /* router logits = xn W_r^T + b_r (GptOssTopKRouter: F.linear), read back for the routing decision */
    OLLM__TRY(B->matmul(B, f->router, s->xn, &L->router, &L->router_bias, T, 0));
    if (guess) {   /* the next layer's router on its norm of this layer's MoE input (x before the MoE adds to it) */
        OLLM__TRY(B->rmsnorm(B, s->gx, s->x, &L[1].post_attention_layernorm, T, (int)H, (float)c->rms_eps, 0));
        OLLM__TRY(B->matmul(B, ollm__view(f->router, (uint64_t)T * E * 4, (uint64_t)T * E * 4), s->gx, &L[1].router,
                            &L[1].router_bias, T, 0));
    }
    OLLM__TRY(ollm__read_router(m, f->logits, f->router, (uint64_t)(guess ? 2 : 1) * T * E * 4));
    /* top-k (largest first; the lower id on a tie), softmax over those k only */
    memset(f->count, 0, (size_t)E * 4);
    for (t = 0; t < T; t++) {
        const float *lg = f->logits + (int64_t)t * E; int32_t *pk = f->pick + t * k; float *wt = f->weight + t * k, sum = 0;
        ollm__topk(lg, E, k, pk);
        for (i = 0; i < k; i++) f->count[pk[i]]++;
        for (i = 0; i < k; i++) { wt[i] = expf(lg[pk[i]] - lg[pk[0]]); sum += wt[i]; }
        for (i = 0; i < k; i++) wt[i] /= sum;
    }
    /* routed rows grouped by expert, in expert order */
    for (e = 0; e < E; e++) {
        f->start[e] = R; f->fill[e] = R; R += f->count[e];
        if (f->count[e]) f->active[n_active++] = e;
    }
    for (t = 0; t < T; t++)
        for (i = 0; i < k; i++) {
            int r = f->fill[f->pick[t * k + i]]++;
            f->row_tok[r] = t; f->tok_row[t * k + i] = r;
        }
    for (i = 0; i < n_active; i++) if (f->count[f->active[i]] > most) most = f->count[f->active[i]];
    grouped = ollm__moe_grouped(m, most, n_active);
    if (!grouped || T > 1) OLLM__TRY(B->gather(B, f->xg, s->xn, f->row_tok, R, H));   /* one token: its row of xn */
    OLLM__TRY(ollm__experts_prefetch(m, l, f->active, n_active, !grouped));   /* missing experts start uploading */
    if (guess) OLLM__TRY(ollm__experts_guess(m, l + 1, f->logits + (int64_t)T * E, T, E, 0));   /* then the next layer's */
    /* per picked expert: gu = xg W_gu^T + b_gu; act = clamped SwiGLU(gu); out = act W_d^T + b_d, over its rows (the
       outputs overwrite the rows' inputs in xg). Decode-sized groups: one product per projection for all the experts
       (and one activation); larger ones expert by expert, each computing while the next one's upload lands. */
    if (grouped) {
        for (i = 0; i < n_active; i++) {
            e = f->active[i]; f->row0[i] = f->start[e]; f->rows[i] = f->count[e];
            OLLM__TRY(ollm__expert_fetch(m, l, e));
            f->Wgu[i] = ollm__gptoss_expert(m, l, 0, e, 2 * I, H); f->Wd[i] = ollm__gptoss_expert(m, l, 1, e, H, I);
            f->Bgu[i] = ollm__w_row_view(&L->gate_up_proj_bias, e, 2 * I); f->Bd[i] = ollm__w_row_view(&L->down_proj_bias, e, H);
        }
        OLLM__TRY(B->matmul_grouped(B, f->gu, T > 1 ? f->xg : s->xn, f->Wgu, f->Bgu, f->row0, T > 1 ? NULL : f->xrow,
                                    f->rows, n_active));
        OLLM__TRY(B->swiglu_clamp(B, f->act, f->gu, R, I, (float)c->swiglu_limit, 1.702f));
        OLLM__TRY(B->matmul_grouped(B, f->xg, f->act, f->Wd, f->Bd, f->row0, NULL, f->rows, n_active));
    } else
        for (i = 0; i < n_active; i++) {
            ollm__w W, b; ollm__buf xe, gue, ae; uint64_t r0, n;
            e = f->active[i]; r0 = (uint64_t)f->start[e]; n = (uint64_t)f->count[e];
            xe = ollm__view(f->xg, r0 * H * 4, n * H * 4);              /* the expert's rows: inputs, then outputs */
            gue = ollm__view(f->gu, r0 * 2 * I * 4, n * 2 * I * 4);
            ae = ollm__view(f->act, r0 * I * 4, n * I * 4);
            OLLM__TRY(ollm__expert_fetch(m, l, e));
            W = ollm__gptoss_expert(m, l, 0, e, 2 * I, H); b = ollm__w_row_view(&L->gate_up_proj_bias, e, 2 * I);
            OLLM__TRY(B->matmul(B, gue, xe, &W, &b, (int)n, 0));
            OLLM__TRY(B->swiglu_clamp(B, ae, gue, (int64_t)n, I, (float)c->swiglu_limit, 1.702f));
            W = ollm__gptoss_expert(m, l, 1, e, H, I); b = ollm__w_row_view(&L->down_proj_bias, e, H);
            OLLM__TRY(B->matmul(B, xe, ae, &W, &b, (int)n, 0));
        }
    OLLM__TRY(ollm__guess_pump(m));   /* the copy stream may be done with this layer's uploads by now */
    /* x[t] += sum over its k picks of weight * out */
    OLLM__TRY(B->combine(B, s->x, f->xg, f->tok_row, f->weight, T, k, H));
    return guess ? ollm__guess_refine(s, l, T, &L[1].post_attention_layernorm, 0, &L[1].router, &L[1].router_bias,
                                      ollm__view(f->router, (uint64_t)T * E * 4, (uint64_t)T * E * 4), f->logits + (int64_t)T * E)
                 : OLLM_OK;
}

/* Layer l over T tokens at positions pos0.. (s->x: their rows), as ollm__forward_chunks runs it; after the last
   layer, the final norm and the (untied) head on the rows asked for. */
static ollm_result ollm__gptoss_pass(ollm_session *s, int l, int T, int pos0) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d;
    const ollm__gptoss *w = (const ollm__gptoss *)m->fw; const ollm__gptoss_layer *L = &w->layers[l];
    int H = c->hidden; float eps = (float)c->rms_eps;
    ollm__attn_args a; ollm__buf kc, vc;
    memset(&a, 0, sizeof a);
    a.T = T; a.pos0 = pos0; a.n_heads = c->n_heads; a.n_kv_heads = c->n_kv_heads; a.head_dim = c->head_dim;
    a.scale = 1.0f / sqrtf((float)c->head_dim);
    a.window = c->layer_kind[l] == OLLM__LAYER_SLIDING ? c->sliding_window : 0;
    a.ring = ollm__kv_ring(s, l);
    a.sinks = &L->sinks;
    OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->input_layernorm, T, H, eps, 0));
    {   /* q, k, v (+ their biases: attention_bias): three products of xn */
        ollm__buf y[3]; const ollm__w *W[3], *bs[3];
        y[0] = s->q; y[1] = s->k; y[2] = s->v; W[0] = &L->q_proj; W[1] = &L->k_proj; W[2] = &L->v_proj;
        bs[0] = OLLM__BIAS(L->q_proj_bias); bs[1] = OLLM__BIAS(L->k_proj_bias); bs[2] = OLLM__BIAS(L->v_proj_bias);
        OLLM__TRY(B->matmul_n(B, 3, y, s->xn, W, bs, T));
    }
    OLLM__TRY(B->rope(B, s->q, c->n_heads, s->k, c->n_kv_heads, T, c->head_dim, m->rot_dim, a.pos0, m->inv_freq,
                      m->mscale));
    OLLM__TRY(ollm__kv_begin(s, l, a.pos0, &kc, &vc));                         /* the layer's KV cache */
    OLLM__TRY(B->attention(B, s->o, s->q, s->k, s->v, kc, vc, &a));           /* sinks, window */
    OLLM__TRY(ollm__kv_end(s, l, a.pos0, T));
    OLLM__TRY(B->matmul(B, s->x, s->o, &L->o_proj, OLLM__BIAS(L->o_proj_bias), T, 1));   /* x += o Wo^T + bo */
    OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->post_attention_layernorm, T, H, eps, 0));
    OLLM__TRY(ollm__gptoss_moe(s, l, T));                                       /* x += MoE(xn) */
    return OLLM_OK;
}
static ollm_result ollm__gptoss_forward(ollm_session *s, const int32_t *ids, int T, float *logits_all) {
    const ollm__gptoss *w = (const ollm__gptoss *)s->m->fw;
    return ollm__forward_chunks(s, ids, T, logits_all, ollm__gptoss_pass, &w->embed_tokens, &w->norm,
                                s->m->d.tie_embeddings ? &w->embed_tokens : &w->lm_head, 0);
}


/* ==== @graph-qwen3-next ==== Gated DeltaNet + gated attention + MoE ====================================== */
/* Qwen3-Next (transformers models/qwen3_next/modeling_qwen3_next.py): a hybrid of Gated DeltaNet layers and gated
   full attention, every layer followed by a sparse MoE with a shared expert. Backend-generic: the DeltaNet is the
   backend's dn_* ops, the routed experts go through gather / combine and the expert cache like GPT-OSS's.

   Per layer:  h = x + Mixer(RMSNorm0(x));  x = h + MoE(RMSNorm0(h)),  RMSNorm0(x) = x_hat * (1 + w) (zero-centred).
   Mixer is Gated DeltaNet (layer_kind OLLM__LAYER_LINEAR) or gated attention (OLLM__LAYER_FULL).
   Session state: K/V caches for the full-attention layers only; per DeltaNet layer the last K-1 conv inputs and the
   recurrent state S [value heads][dk][dv] (fp32). That state cannot be undone: a rewind below it continues from a
   snapshot (ollm__state_resume, in @kvstore). */

typedef struct ollm__qn_layer {
    ollm__w input_layernorm, post_attention_layernorm;
    ollm__w q_proj, k_proj, v_proj, o_proj, q_norm, k_norm;                  /* self_attn (full attention) */
    ollm__w in_proj_qkvz, in_proj_ba, conv1d, dt_bias, A_log, norm, out_proj; /* linear_attn (Gated DeltaNet) */
    ollm__w gate, shared_gate_proj, shared_up_proj, shared_down_proj, shared_expert_gate;  /* mlp */
    ollm__w *experts;           /* mlp.experts.{j}.{gate,up,down}_proj at [3j], [3j + 1], [3j + 2] */
} ollm__qn_layer;
typedef struct ollm__qn {
    ollm__w embed_tokens, norm, lm_head;
    ollm__qn_layer layers[1];   /* n_layers of them, then n_layers * n_experts * 3 expert weights */
} ollm__qn;

/* ---- config ---- */

static ollm_result ollm__qn_config(const ollm__json *j, ollm__desc *d, ollm__log *lg) {
    int32_t interval = 4, step = 1, l; uint32_t lt, e, mol; const char *act; int dense = -1;
    /* Qwen3NextConfig's defaults where config.json is silent (configuration_qwen3_next.py) */
    if (!ollm__json_get(j, 1, "head_dim")) d->head_dim = 256;
    if (!ollm__json_get(j, 1, "num_key_value_heads")) d->n_kv_heads = 2;
    if (!ollm__json_get(j, 1, "max_position_embeddings")) d->max_pos = 32768;
    /* __post_init__: kwargs.setdefault("partial_rotary_factor", 0.25); a value in rope_parameters wins */
    {
        uint32_t rp = ollm__json_get(j, 1, "rope_parameters"), rs = ollm__json_get(j, 1, "rope_scaling");
        uint32_t src = ollm__json_is(j, rp, OLLM__J_OBJ) ? rp : ollm__json_is(j, rs, OLLM__J_OBJ) ? rs : 0;
        if (!ollm__json_get(j, 1, "partial_rotary_factor") && !ollm__json_get(j, src, "partial_rotary_factor"))
            d->rope.partial_rotary_factor = 0.25;
    }
    d->n_experts = 512; d->n_experts_per_tok = 10; d->moe_ffn = 512; d->shared_ffn = 512; d->norm_topk_prob = 1;
    d->lin_k_heads = 16; d->lin_v_heads = 32; d->lin_k_dim = 128; d->lin_v_dim = 128; d->conv_kernel = 4;
    OLLM__TRY(ollm__cfg_int(j, 1, "num_experts", 0, 1 << 16, &d->n_experts, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "num_experts_per_tok", 1, 1 << 16, &d->n_experts_per_tok, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "moe_intermediate_size", 1, OLLM__MAX_DIM, &d->moe_ffn, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "shared_expert_intermediate_size", 1, OLLM__MAX_DIM, &d->shared_ffn, lg));
    OLLM__TRY(ollm__cfg_bool(j, 1, "norm_topk_prob", &d->norm_topk_prob, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "linear_num_key_heads", 1, 4096, &d->lin_k_heads, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "linear_num_value_heads", 1, 4096, &d->lin_v_heads, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "linear_key_head_dim", 1, 4096, &d->lin_k_dim, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "linear_value_head_dim", 1, 4096, &d->lin_v_dim, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "linear_conv_kernel_dim", 1, 64, &d->conv_kernel, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "full_attention_interval", 1, OLLM__MAX_LAYERS, &interval, lg));
    OLLM__TRY(ollm__cfg_int(j, 1, "decoder_sparse_step", 1, OLLM__MAX_LAYERS, &step, lg));
    act = ollm__json_str(j, ollm__json_get(j, 1, "hidden_act"));
    if (act && strcmp(act, "silu") != 0)
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "config.json: hidden_act \"%s\" is not supported (silu)", act);
    {
        int bias = 0;
        OLLM__TRY(ollm__cfg_bool(j, 1, "attention_bias", &bias, lg));
        if (bias) return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "config.json: Qwen3-Next with attention_bias is not supported");
    }
    if (d->lin_v_heads % d->lin_k_heads)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: linear_num_value_heads %d is not a multiple of "
                          "linear_num_key_heads %d", d->lin_v_heads, d->lin_k_heads);
    if (d->n_heads % d->n_kv_heads)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: num_attention_heads %d is not a multiple of "
                          "num_key_value_heads %d", d->n_heads, d->n_kv_heads);
    if (d->n_experts_per_tok > d->n_experts)
        return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: num_experts_per_tok %d > num_experts %d",
                          d->n_experts_per_tok, d->n_experts);
    /* layer_types (legacy names remapped as configuration_utils.remap_legacy_layer_types), else the interval rule */
    lt = ollm__json_get(j, 1, "layer_types");
    if (lt && j->v[lt].type != OLLM__J_NULL) {
        if (!ollm__json_is(j, lt, OLLM__J_ARR) || (int32_t)j->v[lt].n != d->n_layers)
            return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: \"layer_types\" must be a list of %d strings", d->n_layers);
        for (l = 0, e = ollm__json_first(j, lt); e; e = ollm__json_next(j, e), l++) {
            const char *t = ollm__json_str(j, e);
            if (t && (strcmp(t, "linear_attention") == 0 || strcmp(t, "mamba") == 0)) d->layer_kind[l] = OLLM__LAYER_LINEAR;
            else if (t && (strcmp(t, "full_attention") == 0 || strcmp(t, "attention") == 0)) d->layer_kind[l] = OLLM__LAYER_FULL;
            else return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "config.json: layer_types[%d] \"%s\" is not supported "
                                   "(linear_attention, full_attention)", (int)l, t ? t : "(not a string)");
        }
    } else
        for (l = 0; l < d->n_layers; l++) d->layer_kind[l] = (l + 1) % interval == 0 ? OLLM__LAYER_FULL : OLLM__LAYER_LINEAR;
    /* Qwen3NextDecoderLayer: the MLP is the sparse MoE unless the layer is in mlp_only_layers, num_experts is 0 or
       (layer + 1) % decoder_sparse_step != 0; those dense layers (Qwen3NextMLP) are not supported yet */
    for (l = 0; l < d->n_layers && dense < 0; l++)
        if (d->n_experts == 0 || (l + 1) % step != 0) dense = l;
    mol = ollm__json_get(j, 1, "mlp_only_layers");
    if (mol && j->v[mol].type != OLLM__J_NULL) {
        if (!ollm__json_is(j, mol, OLLM__J_ARR))
            return ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: \"mlp_only_layers\" must be a list");
        for (e = ollm__json_first(j, mol); e && dense < 0; e = ollm__json_next(j, e))
            if (j->v[e].type == OLLM__J_NUM && j->v[e].num >= 0 && j->v[e].num < d->n_layers) dense = (int)j->v[e].num;
    }
    if (dense >= 0)
        return ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "config.json: layer %d of this Qwen3-Next has a dense MLP "
                          "(mlp_only_layers / decoder_sparse_step / num_experts 0); only sparse-MoE layers are supported",
                          dense);
    return OLLM_OK;
}
static size_t ollm__qn_weights_size(const ollm__desc *d) {
    return sizeof(ollm__qn) + (size_t)d->n_layers * sizeof(ollm__qn_layer) +
           (size_t)d->n_layers * (size_t)d->n_experts * 3 * sizeof(ollm__w);
}

/* ---- tensors ---- */

/* Every tensor a Qwen3-Next checkpoint must hold, in the hub layout (one tensor per expert); `mtp.*` (the
   multi-token-prediction head) is not read. */
static ollm_result ollm__qn_tensors(ollm_model *m, ollm__tensor_fn fn) {
    const ollm__desc *c = &m->d; char name[256]; int l, e; ollm__qn *w = (ollm__qn *)m->fw;
    ollm__w *experts = (ollm__w *)(void *)(w->layers + c->n_layers);
    int64_t H = c->hidden, hd = c->head_dim, qw = (int64_t)c->n_heads * hd, kw = (int64_t)c->n_kv_heads * hd;
    int64_t Kd = (int64_t)c->lin_k_heads * c->lin_k_dim, Vd = (int64_t)c->lin_v_heads * c->lin_v_dim;
    OLLM__TRY(ollm__bind_fn(m, fn, &w->embed_tokens, "model.embed_tokens.weight", c->vocab, H));
    OLLM__TRY(ollm__bind_fn(m, fn, &w->norm, "model.norm.weight", H, 0));
    if (!c->tie_embeddings) OLLM__TRY(ollm__bind_fn(m, fn, &w->lm_head, "lm_head.weight", c->vocab, H));
    for (l = 0; l < c->n_layers; l++) {
        ollm__qn_layer *L = &w->layers[l];
        L->experts = experts + (size_t)l * c->n_experts * 3;
#define OLLM__T(field, suffix, rows, cols) \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        OLLM__TRY(ollm__bind_fn(m, fn, &L->field, name, rows, cols))
        OLLM__T(input_layernorm, "input_layernorm.weight", H, 0);
        OLLM__T(post_attention_layernorm, "post_attention_layernorm.weight", H, 0);
        if (c->layer_kind[l] == OLLM__LAYER_FULL) {
            OLLM__T(q_proj, "self_attn.q_proj.weight", 2 * qw, H);       /* per head: [query hd | gate hd] */
            OLLM__T(k_proj, "self_attn.k_proj.weight", kw, H);
            OLLM__T(v_proj, "self_attn.v_proj.weight", kw, H);
            OLLM__T(o_proj, "self_attn.o_proj.weight", H, qw);
            OLLM__T(q_norm, "self_attn.q_norm.weight", hd, 0);
            OLLM__T(k_norm, "self_attn.k_norm.weight", hd, 0);
        } else {
            OLLM__T(in_proj_qkvz, "linear_attn.in_proj_qkvz.weight", 2 * Kd + 2 * Vd, H);
            OLLM__T(in_proj_ba, "linear_attn.in_proj_ba.weight", 2 * (int64_t)c->lin_v_heads, H);
            {   /* nn.Conv1d, depthwise: [conv_dim, 1, K] */
                int64_t sh[3]; sh[0] = 2 * Kd + Vd; sh[1] = 1; sh[2] = c->conv_kernel;
                snprintf(name, sizeof name, "model.layers.%d.linear_attn.conv1d.weight", l);
                OLLM__TRY(fn(m, &L->conv1d, name, OLLM__FLOAT_DTYPES, 3, sh));
            }
            OLLM__T(dt_bias, "linear_attn.dt_bias", c->lin_v_heads, 0);  /* BF16 or F32 in real checkpoints */
            OLLM__T(A_log, "linear_attn.A_log", c->lin_v_heads, 0);
            OLLM__T(norm, "linear_attn.norm.weight", c->lin_v_dim, 0);
            OLLM__T(out_proj, "linear_attn.out_proj.weight", H, Vd);
        }
        OLLM__T(gate, "mlp.gate.weight", c->n_experts, H);
        for (e = 0; e < c->n_experts; e++) {
            char suffix[96];
            snprintf(suffix, sizeof suffix, "mlp.experts.%d.gate_proj.weight", e);
            OLLM__T(experts[3 * e], suffix, c->moe_ffn, H);
            snprintf(suffix, sizeof suffix, "mlp.experts.%d.up_proj.weight", e);
            OLLM__T(experts[3 * e + 1], suffix, c->moe_ffn, H);
            snprintf(suffix, sizeof suffix, "mlp.experts.%d.down_proj.weight", e);
            OLLM__T(experts[3 * e + 2], suffix, H, c->moe_ffn);
        }
        OLLM__T(shared_gate_proj, "mlp.shared_expert.gate_proj.weight", c->shared_ffn, H);
        OLLM__T(shared_up_proj, "mlp.shared_expert.up_proj.weight", c->shared_ffn, H);
        OLLM__T(shared_down_proj, "mlp.shared_expert.down_proj.weight", H, c->shared_ffn);
        OLLM__T(shared_expert_gate, "mlp.shared_expert_gate.weight", 1, H);
#undef OLLM__T
    }
    return OLLM_OK;
}

/* ---- session state ---- */

typedef struct ollm__qn_state {
    int64_t pos;                 /* tokens absorbed into the DeltaNet states; -1 after a failed forward */
    ollm__buf *conv;             /* per DeltaNet layer: the last K-1 conv inputs [K-1, C], oldest first */
    ollm__buf *S;                /* per DeltaNet layer: [value heads][dk][dv] */
    /* one chunk's scratch (T = s->chunk rows), backend buffers */
    ollm__buf qg, gate;                                  /* attention: q_proj output [T, 2 nh hd]; the gate [T, nh hd] */
    ollm__buf qkvz, ba, mix, conv_out, z, beta, g, core;   /* DeltaNet */
    ollm__buf router, xg, hg, hu;                        /* MoE: logits [T, E + 1], rows [(k + 1) T, .] */
    /* the routing, on the host */
    float *logits, *weight;                              /* [T, E + 1], [T, k + 1] */
    int32_t *pick, *count, *start, *fill, *active, *row_tok, *tok_row;
    int32_t *start_active, *count_active;                /* [E + 1]: the rows of each active expert, in active order */
    int32_t *xrow;                                       /* [E + 1] zeros: one token's experts all read row 0 of xn */
    ollm__w *Wg, *Wu, *Wd;                               /* [E + 1]: their weights, for grouped products (then the
                                                            shared expert's, when it joins them) */
} ollm__qn_state;

static void ollm__qn_session_free(ollm_session *s) {
    ollm__qn_state *st = (ollm__qn_state *)s->fs; ollm__backend *B = s->m->B; int l;
    if (!st) return;
    for (l = 0; l < s->m->d.n_layers; l++) {
        if (st->conv) B->release(B, &st->conv[l]);
        if (st->S) B->release(B, &st->S[l]);
    }
    OLLM_FREE(st->conv); OLLM_FREE(st->S);
    B->release(B, &st->qg); B->release(B, &st->gate); B->release(B, &st->qkvz); B->release(B, &st->ba);
    B->release(B, &st->mix); B->release(B, &st->conv_out); B->release(B, &st->z); B->release(B, &st->beta);
    B->release(B, &st->g); B->release(B, &st->core); B->release(B, &st->router);
    B->release(B, &st->xg); B->release(B, &st->hg); B->release(B, &st->hu);
    OLLM_FREE(st->logits); OLLM_FREE(st->weight); OLLM_FREE(st->pick); OLLM_FREE(st->count);
    OLLM_FREE(st->start); OLLM_FREE(st->fill); OLLM_FREE(st->active); OLLM_FREE(st->row_tok); OLLM_FREE(st->tok_row);
    OLLM_FREE(st->start_active); OLLM_FREE(st->count_active); OLLM_FREE(st->xrow); OLLM_FREE(st->Wg); OLLM_FREE(st->Wu); OLLM_FREE(st->Wd);
    OLLM_FREE(st);
    s->fs = NULL;
}

static ollm__dn_dims ollm__qn_dims(const ollm__desc *c) {
    ollm__dn_dims d; d.nk = c->lin_k_heads; d.nv = c->lin_v_heads; d.dk = c->lin_k_dim; d.dv = c->lin_v_dim;
    d.K = c->conv_kernel; return d;
}
/* Clears the DeltaNet states of every layer (a fresh context). */
static ollm_result ollm__qn_clear(ollm_session *s) {
    ollm__qn_state *st = (ollm__qn_state *)s->fs; ollm__backend *B = s->m->B; uint64_t most = 0; void *zero; int l;
    ollm_result r = OLLM_OK;
    for (l = 0; l < s->m->d.n_layers; l++) {
        if (st->S[l].bytes > most) most = st->S[l].bytes;
        if (st->conv[l].bytes > most) most = st->conv[l].bytes;
    }
    if (!most) return OLLM_OK;
    if (!(zero = ollm__calloc(1, (size_t)most))) return ollm__fail(&s->m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    for (l = 0; l < s->m->d.n_layers && r == OLLM_OK; l++) {
        if (st->S[l].bytes) r = B->upload(B, st->S[l], zero, st->S[l].bytes);
        if (r == OLLM_OK && st->conv[l].bytes) r = B->upload(B, st->conv[l], zero, st->conv[l].bytes);
    }
    if (r == OLLM_OK) r = B->sync(B);   /* the zeros' host memory goes away */
    OLLM_FREE(zero);
    return r;
}

static ollm_result ollm__qn_session_init(ollm_session *s) {
    ollm_model *m = s->m; const ollm__desc *c = &m->d; ollm__backend *B = m->B; ollm__qn_state *st; int l;
    uint64_t T = (uint64_t)s->chunk, H = (uint64_t)c->hidden, E = (uint64_t)c->n_experts, k = (uint64_t)c->n_experts_per_tok;
    uint64_t qw = (uint64_t)c->n_heads * c->head_dim, Kd = (uint64_t)c->lin_k_heads * c->lin_k_dim;
    uint64_t nv = (uint64_t)c->lin_v_heads, Vd = nv * c->lin_v_dim, C = 2 * Kd + Vd, K = (uint64_t)c->conv_kernel;
    uint64_t R = T * (k + 1), I = (uint64_t)(c->moe_ffn > c->shared_ffn ? c->moe_ffn : c->shared_ffn);
    ollm_result r = OLLM_OK;
    if (!(st = (ollm__qn_state *)ollm__calloc(1, sizeof *st))) return OLLM_ERR_NO_MEMORY;
    s->fs = st;
    st->conv = (ollm__buf *)ollm__calloc((size_t)c->n_layers, sizeof(ollm__buf));
    st->S = (ollm__buf *)ollm__calloc((size_t)c->n_layers, sizeof(ollm__buf));
    if (!st->conv || !st->S) return OLLM_ERR_NO_MEMORY;
    for (l = 0; l < c->n_layers; l++) {
        if (c->layer_kind[l] == OLLM__LAYER_FULL) { OLLM__TRY(ollm__session_kv(s, l)); continue; }
        OLLM__TRY(B->alloc(B, ((K - 1) * C + 1) * 4, &st->conv[l]));
        OLLM__TRY(B->alloc(B, nv * c->lin_k_dim * c->lin_v_dim * 4, &st->S[l]));
    }
    /* x, xn, q, o [T, nh hd], k, v [T, nkv hd], logits; g and u are unused (the MoE has its own buffers) */
    OLLM__TRY(ollm__session_acts(s, (int64_t)qw, (int64_t)c->n_kv_heads * c->head_dim, 1));
#define OLLM__QB(buf, n) if (r == OLLM_OK) r = B->alloc(B, (uint64_t)(n) * 4, &st->buf)
    OLLM__QB(qg, T * 2 * qw); OLLM__QB(gate, T * qw);
    OLLM__QB(qkvz, T * (2 * Kd + 2 * Vd)); OLLM__QB(ba, T * 2 * nv); OLLM__QB(mix, T * C); OLLM__QB(conv_out, T * C);
    OLLM__QB(z, T * Vd); OLLM__QB(beta, T * nv); OLLM__QB(g, T * nv); OLLM__QB(core, T * Vd);
    OLLM__QB(router, (T + OLLM__GROUP_ROWS) * (E + 1));   /* the router logits [T, E], the shared expert's gate logits [T];
                                                              decoding, [T, E] more: the next layer's, guessed */ OLLM__QB(xg, R * H); OLLM__QB(hg, R * I); OLLM__QB(hu, R * I);
#undef OLLM__QB
    if (r != OLLM_OK) return r;
#define OLLM__QA(ptr, type, n) if (!((st->ptr) = (type *)ollm__calloc((size_t)(n), sizeof(type)))) return OLLM_ERR_NO_MEMORY
    OLLM__QA(logits, float, (T + OLLM__GROUP_ROWS) * (E + 1)); OLLM__QA(weight, float, R);
    OLLM__QA(pick, int32_t, T * k); OLLM__QA(count, int32_t, E); OLLM__QA(start, int32_t, E); OLLM__QA(fill, int32_t, E);
    OLLM__QA(active, int32_t, E); OLLM__QA(row_tok, int32_t, R); OLLM__QA(tok_row, int32_t, R);
    OLLM__QA(start_active, int32_t, E + 1); OLLM__QA(count_active, int32_t, E + 1); OLLM__QA(xrow, int32_t, E + 1);
    OLLM__QA(Wg, ollm__w, E + 1); OLLM__QA(Wu, ollm__w, E + 1); OLLM__QA(Wd, ollm__w, E + 1);
#undef OLLM__QA
    return ollm__qn_clear(s);
}

/* ---- the layers ---- */

/* Gated DeltaNet (Qwen3NextGatedDeltaNet.forward): x += out_proj(RMSNormGated(DeltaRule(conv(q, k, v)), z)). */
static ollm_result ollm__qn_deltanet(ollm_session *s, int l, int T) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; ollm__qn_state *st = (ollm__qn_state *)s->fs;
    const ollm__qn_layer *L = &((const ollm__qn *)m->fw)->layers[l];
    ollm__dn_dims d = ollm__qn_dims(c); int C = 2 * d.nk * d.dk + d.nv * d.dv;
    {   /* the fused projections qkvz and ba: two products of xn */
        ollm__buf y[2]; const ollm__w *W[2];
        y[0] = st->qkvz; y[1] = st->ba; W[0] = &L->in_proj_qkvz; W[1] = &L->in_proj_ba;
        OLLM__TRY(B->matmul_n(B, 2, y, s->xn, W, NULL, T));
    }
    /* fix_query_key_value_ordering, beta = sigmoid(b), g = -exp(A_log) softplus(a + dt_bias) */
    OLLM__TRY(B->dn_split(B, st->mix, st->z, st->beta, st->g, st->qkvz, st->ba, &L->A_log, &L->dt_bias, &d, T));
    OLLM__TRY(B->dn_conv(B, st->conv_out, st->conv[l], st->mix, &L->conv1d, T, C, d.K));   /* causal conv1d, SiLU */
    OLLM__TRY(B->dn_rule(B, st->core, st->conv_out, st->beta, st->g, st->S[l], &d, T));   /* l2norm, delta rule */
    OLLM__TRY(B->norm_gated(B, st->core, st->z, &L->norm, (int64_t)T * d.nv, d.dv, (float)c->rms_eps));
    return B->matmul(B, s->x, st->core, &L->out_proj, NULL, T, 1);
}

/* Gated full attention (Qwen3NextAttention.forward): x += o_proj(Attn(RoPE(q_norm(q)), RoPE(k_norm(k)), v) * sigmoid(gate)). */
static ollm_result ollm__qn_attention(ollm_session *s, int l, int T, int pos0) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; ollm__qn_state *st = (ollm__qn_state *)s->fs;
    const ollm__qn_layer *L = &((const ollm__qn *)m->fw)->layers[l];
    int nh = c->n_heads, hd = c->head_dim; float eps = (float)c->rms_eps;
    ollm__attn_args a; ollm__buf kc, vc;
    memset(&a, 0, sizeof a);
    a.T = T; a.pos0 = pos0; a.n_heads = nh; a.n_kv_heads = c->n_kv_heads; a.head_dim = hd;
    a.scale = 1.0f / sqrtf((float)hd);
    {   /* q (with its gate), k, v: three products of xn */
        ollm__buf y[3]; const ollm__w *W[3];
        y[0] = st->qg; y[1] = s->k; y[2] = s->v; W[0] = &L->q_proj; W[1] = &L->k_proj; W[2] = &L->v_proj;
        OLLM__TRY(B->matmul_n(B, 3, y, s->xn, W, NULL, T));
    }
    OLLM__TRY(B->split_cols(B, s->q, st->gate, st->qg, (int64_t)T * nh, hd, hd));   /* per head: [query hd | gate hd] */
    OLLM__TRY(B->rmsnorm(B, s->q, s->q, &L->q_norm, T * nh, hd, eps, 1));            /* per head, 1 + w */
    OLLM__TRY(B->rmsnorm(B, s->k, s->k, &L->k_norm, T * c->n_kv_heads, hd, eps, 1));
    OLLM__TRY(B->rope(B, s->q, nh, s->k, c->n_kv_heads, T, hd, m->rot_dim, a.pos0, m->inv_freq, m->mscale));   /* partial */
    OLLM__TRY(ollm__kv_begin(s, l, a.pos0, &kc, &vc));
    OLLM__TRY(B->attention(B, s->o, s->q, s->k, s->v, kc, vc, &a));
    OLLM__TRY(ollm__kv_end(s, l, a.pos0, T));
    OLLM__TRY(B->sigmoid_mul(B, s->o, st->gate, (int64_t)T * nh * hd));
    return B->matmul(B, s->x, s->o, &L->o_proj, NULL, T, 1);
}

/* Expert e's gate (which 0), up (1) or down (2) projection of layer l: the checkpoint's tensor, or its copy in the
   expert cache after ollm__expert_fetch. */
static ollm__w ollm__qn_expert(const ollm_model *m, int l, int e, int which) {
    const ollm__w *src = &((const ollm__qn *)m->fw)->layers[l].experts[3 * e + which]; ollm__w W = *src;
    W.data = ollm__expert_data(m, l, e, src, 0);
    return W;
}

/* Sparse MoE block (Qwen3NextSparseMoeBlock): p = softmax(all router logits), top-k, renormalised when
   norm_topk_prob; x += sum_e p_e expert_e(xn) + sigmoid(shared_expert_gate xn) shared_expert(xn). Routing is
   decided on the host; the rows routed to each expert are gathered and run through that expert only, the shared
   expert runs on all T rows, and one combine adds each token's k + 1 weighted outputs to x. */
static ollm_result ollm__qn_moe(ollm_session *s, int l, int T) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; ollm__qn_state *st = (ollm__qn_state *)s->fs;
    const ollm__qn_layer *L = &((const ollm__qn *)m->fw)->layers[l];
    int E = c->n_experts, k = c->n_experts_per_tok, t, i, e, n_active = 0, R = 0, most = 0, grouped, shared_in;
    int guess = ollm__guess_next(m, l, T);
    int64_t H = c->hidden, I = c->moe_ffn > c->shared_ffn ? c->moe_ffn : c->shared_ffn, W = (int64_t)T * (E + 1);
    /* one read-back: the router logits [T, E] and the shared expert's gate logits [T] after them; decoding, the next
       layer's router logits on its norm of this layer's MoE input (x before the MoE adds to it) after those */
    OLLM__TRY(B->matmul(B, st->router, s->xn, &L->gate, NULL, T, 0));
    OLLM__TRY(B->matmul(B, ollm__view(st->router, (uint64_t)T * E * 4, (uint64_t)T * 4), s->xn, &L->shared_expert_gate, NULL, T, 0));
    if (guess) {
        OLLM__TRY(B->rmsnorm(B, s->gx, s->x, &L[1].post_attention_layernorm, T, (int)H, (float)c->rms_eps, 1));
        OLLM__TRY(B->matmul(B, ollm__view(st->router, (uint64_t)W * 4, (uint64_t)T * E * 4), s->gx, &L[1].gate, NULL, T, 0));
    }
    OLLM__TRY(ollm__read_router(m, st->logits, st->router, (uint64_t)(W + (guess ? (int64_t)T * E : 0)) * 4));
    /* Qwen3NextTopKRouter: softmax in fp32 over all E, then the top k of the probabilities */
    memset(st->count, 0, (size_t)E * 4);
    for (t = 0; t < T; t++) {
        float *p = st->logits + (int64_t)t * E, mx = -INFINITY, sum = 0, ksum = 0; int32_t *pk = st->pick + t * k;
        float *wt = st->weight + t * (k + 1);
        for (e = 0; e < E; e++) if (p[e] > mx) mx = p[e];
        for (e = 0; e < E; e++) { p[e] = expf(p[e] - mx); sum += p[e]; }
        ollm__topk(p, E, k, pk);
        for (i = 0; i < k; i++) { wt[i] = p[pk[i]] / sum; ksum += wt[i]; st->count[pk[i]]++; }
        if (c->norm_topk_prob) for (i = 0; i < k; i++) wt[i] /= ksum;   /* router_top_value /= sum */
        wt[k] = ollm__sigmoid(st->logits[(int64_t)T * E + t]);         /* the shared expert's gate */
    }
    /* routed rows grouped by expert, in expert order; the shared expert's T rows after them */
    for (e = 0; e < E; e++) {
        st->start[e] = R; st->fill[e] = R;
        if (st->count[e]) { st->start_active[n_active] = R; st->count_active[n_active] = st->count[e]; st->active[n_active++] = e; }
        R += st->count[e];
    }
    for (t = 0; t < T; t++) {
        for (i = 0; i < k; i++) {
            int r = st->fill[st->pick[t * k + i]]++;
            st->row_tok[r] = t; st->tok_row[t * (k + 1) + i] = r;
        }
        st->tok_row[t * (k + 1) + k] = R + t;
    }
    /* per expert: down(silu(gate x) * up x) over its rows (hg, hu rows of moe_ffn; the outputs overwrite the inputs
       in xg). Decode-sized groups go in one product per projection for all the experts, the shared expert too when
       its size is theirs (its T rows gathered after the routed ones); larger ones expert by expert, so each computes
       while the next one's upload lands. */
    for (i = 0; i < n_active; i++) if (st->count[st->active[i]] > most) most = st->count[st->active[i]];
    grouped = ollm__moe_grouped(m, most > T ? most : T, n_active);
    if ((shared_in = grouped && c->shared_ffn == c->moe_ffn) != 0) {   /* and the same kind of weight */
        const ollm__w *w0 = &L->experts[3 * st->active[0]];
        shared_in = w0->fmt == L->shared_gate_proj.fmt && w0->dtype == L->shared_gate_proj.dtype;
    }
    for (t = 0; shared_in && t < T; t++) st->row_tok[R + t] = t;
    if (!grouped || T > 1) OLLM__TRY(B->gather(B, st->xg, s->xn, st->row_tok, shared_in ? R + T : R, H));   /* one token: its row of xn */
    OLLM__TRY(ollm__experts_prefetch(m, l, st->active, n_active, !grouped));   /* missing experts start uploading */
    if (guess) OLLM__TRY(ollm__experts_guess(m, l + 1, st->logits + W, T, E, 0));   /* then the next layer's */
    if (grouped) {
        int G = n_active;
        for (i = 0; i < n_active; i++) {
            e = st->active[i];
            OLLM__TRY(ollm__expert_fetch(m, l, e));
            st->Wg[i] = ollm__qn_expert(m, l, e, 0); st->Wu[i] = ollm__qn_expert(m, l, e, 1); st->Wd[i] = ollm__qn_expert(m, l, e, 2);
        }
        if (shared_in) {
            st->Wg[G] = L->shared_gate_proj; st->Wu[G] = L->shared_up_proj; st->Wd[G] = L->shared_down_proj;
            st->start_active[G] = R; st->count_active[G] = T; G++;
        }
        ollm__buf xin = T > 1 ? st->xg : s->xn; const int32_t *xr = T > 1 ? NULL : st->xrow;
        OLLM__TRY(B->matmul_grouped(B, st->hg, xin, st->Wg, NULL, st->start_active, xr, st->count_active, G));
        OLLM__TRY(B->matmul_grouped(B, st->hu, xin, st->Wu, NULL, st->start_active, xr, st->count_active, G));
        OLLM__TRY(B->silu_mul(B, st->hg, st->hu, (int64_t)(shared_in ? R + T : R) * c->moe_ffn));
        OLLM__TRY(B->matmul_grouped(B, st->xg, st->hg, st->Wd, NULL, st->start_active, NULL, st->count_active, G));
    } else
        for (i = 0; i < n_active; i++) {
            ollm__w Wg, Wu, Wd; uint64_t r0, n, F = (uint64_t)c->moe_ffn; ollm__buf xe, he, ue;
            e = st->active[i]; r0 = (uint64_t)st->start[e]; n = (uint64_t)st->count[e];
            OLLM__TRY(ollm__expert_fetch(m, l, e));
            Wg = ollm__qn_expert(m, l, e, 0); Wu = ollm__qn_expert(m, l, e, 1); Wd = ollm__qn_expert(m, l, e, 2);
            xe = ollm__view(st->xg, r0 * H * 4, n * H * 4);
            he = ollm__view(st->hg, r0 * F * 4, n * F * 4); ue = ollm__view(st->hu, r0 * F * 4, n * F * 4);
            OLLM__TRY(B->matmul(B, he, xe, &Wg, NULL, (int)n, 0));
            OLLM__TRY(B->matmul(B, ue, xe, &Wu, NULL, (int)n, 0));
            OLLM__TRY(B->silu_mul(B, he, ue, (int64_t)(n * F)));
            OLLM__TRY(B->matmul(B, xe, he, &Wd, NULL, (int)n, 0));
        }
    if (!shared_in) {   /* the shared expert on all T rows of xn, into xg's rows R.. (its hidden rows after the routed ones) */
        ollm__buf he = ollm__view(st->hg, (uint64_t)R * I * 4, (uint64_t)T * c->shared_ffn * 4);
        ollm__buf ue = ollm__view(st->hu, (uint64_t)R * I * 4, (uint64_t)T * c->shared_ffn * 4);
        OLLM__TRY(B->matmul(B, he, s->xn, &L->shared_gate_proj, NULL, T, 0));
        OLLM__TRY(B->matmul(B, ue, s->xn, &L->shared_up_proj, NULL, T, 0));
        OLLM__TRY(B->silu_mul(B, he, ue, (int64_t)T * c->shared_ffn));
        OLLM__TRY(B->matmul(B, ollm__view(st->xg, (uint64_t)R * H * 4, (uint64_t)T * H * 4), he, &L->shared_down_proj, NULL, T, 0));
    }
    OLLM__TRY(ollm__guess_pump(m));   /* the copy stream may be done with this layer's uploads by now */
    /* x[t] += sum over its k picks and the shared expert of weight * out */
    OLLM__TRY(B->combine(B, s->x, st->xg, st->tok_row, st->weight, T, k + 1, H));
    return guess ? ollm__guess_refine(s, l, T, &L[1].post_attention_layernorm, 1, &L[1].gate, NULL,
                                      ollm__view(st->router, (uint64_t)W * 4, (uint64_t)T * E * 4), st->logits + W)
                 : OLLM_OK;
}

/* Layer l over T tokens at positions pos0.. (s->x: their rows), as ollm__forward_chunks runs it. */
static ollm_result ollm__qn_pass(ollm_session *s, int l, int T, int pos0) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; const ollm__qn *w = (const ollm__qn *)m->fw;
    const ollm__qn_layer *L = &w->layers[l]; int H = c->hidden; float eps = (float)c->rms_eps;
    OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->input_layernorm, T, H, eps, 1));
    if (c->layer_kind[l] == OLLM__LAYER_FULL) OLLM__TRY(ollm__qn_attention(s, l, T, pos0));
    else OLLM__TRY(ollm__qn_deltanet(s, l, T));
    OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->post_attention_layernorm, T, H, eps, 1));
    return ollm__qn_moe(s, l, T);
}
/* T tokens at positions n_past.. The DeltaNet states hold exactly the tokens fed so far (st->pos); after a rewind
   ollm__feed brings them back to n_past first (ollm__state_resume), and at 0 they are cleared here. */
static ollm_result ollm__qn_forward(ollm_session *s, const int32_t *ids, int T, float *logits_all) {
    ollm_model *m = s->m; const ollm__desc *c = &m->d; const ollm__qn *w = (const ollm__qn *)m->fw;
    ollm__qn_state *st = (ollm__qn_state *)s->fs;
    if (st->pos != s->n_past) {
        if (s->n_past != 0)
            return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "Qwen3-Next: the DeltaNet state holds %lld tokens, the "
                              "session %lld%s", (long long)(st->pos < 0 ? 0 : st->pos), (long long)s->n_past,
                              st->pos < 0 ? " (after a failed forward pass)" : "");
        OLLM__TRY(ollm__qn_clear(s));
    }
    st->pos = -1;                               /* until this pass completes */
    OLLM__TRY(ollm__forward_chunks(s, ids, T, logits_all, ollm__qn_pass, &w->embed_tokens, &w->norm,
                                   c->tie_embeddings ? &w->embed_tokens : &w->lm_head, 1));
    st->pos = s->n_past + T;
    return OLLM_OK;
}


/* The DeltaNet states of every layer, in layer order: conv [K-1, C] then S [nv, dk, dv], fp32. */
static uint64_t ollm__qn_state_bytes(const ollm_session *s) {
    const ollm__desc *c = &s->m->d; uint64_t n = 0; int l;
    uint64_t C = 2ull * c->lin_k_heads * c->lin_k_dim + (uint64_t)c->lin_v_heads * c->lin_v_dim;
    for (l = 0; l < c->n_layers; l++)
        if (c->layer_kind[l] != OLLM__LAYER_FULL)
            n += 4 * ((uint64_t)(c->conv_kernel - 1) * C + (uint64_t)c->lin_v_heads * c->lin_k_dim * c->lin_v_dim);
    return n;
}
static ollm_result ollm__qn_state_io(ollm_session *s, void *buf, int put) {
    const ollm__desc *c = &s->m->d; ollm__backend *B = s->m->B; ollm__qn_state *st = (ollm__qn_state *)s->fs;
    uint64_t C = 2ull * c->lin_k_heads * c->lin_k_dim + (uint64_t)c->lin_v_heads * c->lin_v_dim; char *p = (char *)buf;
    int l;
    if (!put && st->pos != s->n_past) return OLLM_ERR_INVALID_ARG;   /* the states do not match the tokens */
    for (l = 0; l < c->n_layers; l++) {
        uint64_t nc = 4ull * (uint64_t)(c->conv_kernel - 1) * C, ns = st->S[l].bytes;
        if (c->layer_kind[l] == OLLM__LAYER_FULL) continue;
        OLLM__TRY(put ? B->upload(B, st->conv[l], p, nc) : B->download(B, p, st->conv[l], nc));
        OLLM__TRY(put ? B->upload(B, st->S[l], p + nc, ns) : B->download(B, p + nc, st->S[l], ns));
        p += nc + ns;
    }
    if (put) { OLLM__TRY(B->sync(B)); st->pos = s->n_past; }
    return OLLM_OK;
}

/* ==== @kvstore ==== sessions in a folder: crash-consistent K/V records and an atomically replaced header ====== */
/* kv.bin is an append-only log of records; session.hdr is the commit point. A record holds the ids and, for every
   layer with a KV cache, the K and V rows of tokens [start, start + n): appending after a rewind simply starts lower.
   A commit writes the record at the end of the log, fsyncs it, then replaces session.hdr (temp file, fsync, rename,
   fsync of the folder). A crash at any moment leaves the old header or the new one, each pointing only at durable
   records; bytes past the header's log length are ignored and overwritten. Each record and the header carry a hash,
   and the header the model's fingerprint and the layout, so a torn, foreign or corrupted folder is refused, never
   trusted. */

#define OLLM__KV_MAGIC 0x564b4c4fu    /* "OLKV" */
#define OLLM__HDR_MAGIC 0x48534c4fu   /* "OLSH" */
#define OLLM__KV_VERSION 1u

typedef struct ollm__kv_rec { uint32_t magic, version; uint64_t start, n, payload_bytes, payload_hash, hash; } ollm__kv_rec;
typedef struct ollm__kv_hdr {
    uint32_t magic, version; uint64_t fingerprint;
    uint32_t n_layers, kv_row_bytes, vocab, has_logits;
    uint64_t n_tokens, log_bytes, logits_hash, hash;
} ollm__kv_hdr;

static uint64_t ollm__kv_row(const ollm_session *s) { return (uint64_t)s->m->d.n_kv_heads * s->m->d.head_dim * s->m->B->kv_elem; }

/* Replaces file `name` of the session folder with the bytes a then b, atomically: temp file, fsync, rename, fsync of
   the folder. A crash leaves the old file or the new one. */
static ollm_result ollm__store_replace(ollm_session *s, const char *name, const void *a, uint64_t na, const void *b,
                                       uint64_t nb) {
    char path[4200], tmp[4300]; int fd, dfd; ollm_result r;
    snprintf(path, sizeof path, "%s/%s", s->cfg.dir, name);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return ollm__fail(&s->m->log, OLLM_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    r = ollm__pwrite_all(fd, a, na, 0);
    if (r == OLLM_OK) r = ollm__pwrite_all(fd, b, nb, na);
    if (r == OLLM_OK) r = ollm__fsync(fd);
    close(fd);
    if (r != OLLM_OK || rename(tmp, path) != 0) {
        int e = errno; unlink(tmp);
        return ollm__fail(&s->m->log, OLLM_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    if ((dfd = open(s->cfg.dir, O_RDONLY | O_CLOEXEC)) >= 0) { fsync(dfd); close(dfd); }   /* make the rename durable */
    return OLLM_OK;
}

static ollm_result ollm__store_header(ollm_session *s, int64_t n_tokens, int has_logits) {
    ollm_model *m = s->m; ollm__kv_hdr h;
    if (has_logits) OLLM__TRY(ollm__logits_host(s));   /* the header keeps them */
    memset(&h, 0, sizeof h);
    h.magic = OLLM__HDR_MAGIC; h.version = OLLM__KV_VERSION; h.fingerprint = m->fingerprint;
    h.n_layers = (uint32_t)m->d.n_layers; h.kv_row_bytes = (uint32_t)ollm__kv_row(s); h.vocab = (uint32_t)m->d.vocab;
    h.has_logits = (uint32_t)!!has_logits; h.n_tokens = (uint64_t)n_tokens; h.log_bytes = s->log_end;
    h.logits_hash = ollm__fnv1a64(OLLM__FNV_INIT, s->last_logits, (size_t)m->d.vocab * 4);
    h.hash = ollm__fnv1a64(OLLM__FNV_INIT, &h, offsetof(ollm__kv_hdr, hash));
    OLLM__TRY(ollm__store_replace(s, "session.hdr", &h, sizeof h, s->last_logits, (uint64_t)m->d.vocab * 4));
    s->disk_len = n_tokens;
    return OLLM_OK;
}

/* state.bin: the family's recurrent state after the first n_tokens tokens (those of the log, by hash). It is
   written after the header that commits those tokens, at most every OLLM__STATE_EVERY tokens of decoding (always
   after a prefill chunk and at close), so it may lag behind the header: reopening loads it and feeds the tokens
   after it again, from the log. */
#define OLLM__STATE_MAGIC 0x54534c4fu   /* "OLST" */
#define OLLM__STATE_EVERY 256
typedef struct ollm__state_hdr {
    uint32_t magic, version; uint64_t fingerprint, n_tokens, tokens_hash, bytes, payload_hash, hash;
} ollm__state_hdr;

static ollm_result ollm__store_state_as(ollm_session *s, const char *name) {
    ollm_model *m = s->m; ollm__state_hdr h; uint64_t n = m->fam->state_bytes(s); void *buf; ollm_result r;
    if (!(buf = OLLM_MALLOC((size_t)n))) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    if ((r = m->fam->state_io(s, buf, 0)) != OLLM_OK) { OLLM_FREE(buf); return ollm__fail(&m->log, r, "session: cannot read the recurrent state back"); }
    memset(&h, 0, sizeof h);
    h.magic = OLLM__STATE_MAGIC; h.version = OLLM__KV_VERSION; h.fingerprint = m->fingerprint;
    h.n_tokens = (uint64_t)s->n_past; h.bytes = n;
    h.tokens_hash = ollm__fnv1a64(OLLM__FNV_INIT, s->tokens, (size_t)s->n_past * 4);
    h.payload_hash = ollm__fnv1a64(OLLM__FNV_INIT, buf, (size_t)n);
    h.hash = ollm__fnv1a64(OLLM__FNV_INIT, &h, offsetof(ollm__state_hdr, hash));
    r = ollm__store_replace(s, name, &h, sizeof h, buf, n);
    OLLM_FREE(buf);
    return r;
}
static ollm_result ollm__store_state(ollm_session *s) {
    OLLM__TRY(ollm__store_state_as(s, "state.bin"));
    s->state_len = s->n_past;
    return OLLM_OK;
}

/* Snapshots of the recurrent state at the end of a prefill call of at least OLLM__SNAP_MIN tokens (shorter calls,
   token-by-token input, would each copy the whole state): the last in memory, and in a folder state-N.bin, the state
   after N tokens (a hard link to that state.bin, or a copy where the folder takes no links). A rewind removes those
   past its end; at most OLLM__SNAP_KEEP files stay, the oldest removed first. They let a rewind below the live state
   (a question after a document) continue from the latest snapshot at or below it instead of token 0. */
#define OLLM__SNAP_KEEP 8
#define OLLM__SNAP_MIN 16
static int ollm__snap_list(const ollm_session *s, int64_t *ns, int cap) {   /* token counts of the snapshots */
    DIR *d = opendir(s->cfg.dir); struct dirent *e; int k = 0;
    while (d && (e = readdir(d)) != NULL && k < cap) {
        long long v; char tail;
        if (sscanf(e->d_name, "state-%lld.bi%c", &v, &tail) == 2 && tail == 'n' && v > 0) {
            char canon[64]; snprintf(canon, sizeof canon, "state-%lld.bin", v);
            if (strcmp(canon, e->d_name) == 0) ns[k++] = (int64_t)v;
        }
    }
    if (d) closedir(d);
    return k;
}
static void ollm__snap_remove(const ollm_session *s, int64_t n) {
    char path[4200]; snprintf(path, sizeof path, "%s/state-%lld.bin", s->cfg.dir, (long long)n); unlink(path);
}
/* Removes the snapshots past `end`, and the oldest beyond OLLM__SNAP_KEEP. */
static void ollm__snap_prune(const ollm_session *s, int64_t end) {
    int64_t ns[256]; int k = ollm__snap_list(s, ns, 256), i, kept = 0;
    for (i = 0; i < k; i++) if (ns[i] > end) { ollm__snap_remove(s, ns[i]); ns[i] = 0; } else kept++;
    while (kept > OLLM__SNAP_KEEP) {
        int lo = -1;
        for (i = 0; i < k; i++) if (ns[i] && (lo < 0 || ns[i] < ns[lo])) lo = i;
        ollm__snap_remove(s, ns[lo]); ns[lo] = 0; kept--;
    }
}
/* At the end of a prefill call of `fed` tokens: the state in memory, and in the folder as state-N.bin. */
static ollm_result ollm__snap_take(ollm_session *s, size_t fed) {
    ollm_model *m = s->m; char from[4200], to[4200];
    if (fed < OLLM__SNAP_MIN) return OLLM_OK;
    if (!s->snap && !(s->snap = OLLM_MALLOC((size_t)m->fam->state_bytes(s)))) {
        ollm__logf(&m->log, OLLM_LOG_WARN, "session: no memory for a snapshot of the recurrent state");
        return OLLM_OK;
    }
    s->snap_len = -1;
    OLLM__TRY(m->fam->state_io(s, s->snap, 0));
    s->snap_len = s->n_past;
    if (s->kv_fd < 0) return OLLM_OK;
    /* the file is a convenience (the tokens are committed already): failing to write it is a warning */
    snprintf(from, sizeof from, "%s/state.bin", s->cfg.dir);
    snprintf(to, sizeof to, "%s/state-%lld.bin", s->cfg.dir, (long long)s->n_past);
    unlink(to);
    if (s->state_len != s->n_past && ollm__store_state(s) != OLLM_OK) {
        ollm__logf(&m->log, OLLM_LOG_WARN, "session: no snapshot of the recurrent state: %s", m->log.err);
        m->log.err[0] = 0;
        return OLLM_OK;
    }
    if (link(from, to) != 0) {
        char name[64]; snprintf(name, sizeof name, "state-%lld.bin", (long long)s->n_past);
        if (ollm__store_state_as(s, name) != OLLM_OK) {
            ollm__logf(&m->log, OLLM_LOG_WARN, "session: no snapshot of the recurrent state: %s", m->log.err);
            m->log.err[0] = 0;
        }
    }
    ollm__snap_prune(s, s->n_past);
    return OLLM_OK;
}

static ollm_result ollm__feed(ollm_session *s, const int32_t *ids, size_t n, float *logits_all, int report);
/* Feeds the session's own tokens [from, n_past) through the model again (KV rows and recurrent state are rewritten
   with the same values; nothing is logged, the session folder holds them already). */
static ollm_result ollm__refeed(ollm_session *s, int64_t from) {
    int64_t all = s->n_past; int32_t *ids; int fd = s->kv_fd; ollm_result r;
    if (from >= all) return OLLM_OK;
    if (!(ids = (int32_t *)OLLM_MALLOC((size_t)(all - from) * 4))) return ollm__fail(&s->m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    memcpy(ids, s->tokens + from, (size_t)(all - from) * 4);
    s->n_past = from; s->kv_fd = -1;
    r = ollm__feed(s, ids, (size_t)(all - from), NULL, 0);
    s->kv_fd = fd; OLLM_FREE(ids);
    return r;
}

/* The saved state of the folder (state.bin or a snapshot) that holds the most of the session's first `limit` tokens,
   checked against their hash, loaded into the session if it holds more than *have (then *have is its length, and
   *was_state_bin, where given, whether it came from state.bin). A damaged or foreign file is passed over with a
   warning. n_past is restored. */
static ollm_result ollm__state_pick(ollm_session *s, int64_t limit, int64_t *have, int *was_state_bin) {
    ollm_model *m = s->m; ollm__state_hdr h; ollm__file f; char path[4200]; uint64_t n = m->fam->state_bytes(s);
    int64_t len[257], keep = s->n_past; int k = 0, i, best; void *buf = NULL; ollm_result r = OLLM_OK;
    /* the candidates and the tokens each claims: state.bin by its header, the snapshots by their names */
    snprintf(path, sizeof path, "%s/state.bin", s->cfg.dir);
    if (ollm__file_open(&f, path) == OLLM_OK) {
        len[k++] = f.size >= sizeof h && ollm__pread_all(f.fd, &h, sizeof h, 0) == OLLM_OK ? (int64_t)h.n_tokens : 0;
        ollm__file_close(&f);
    } else len[k++] = 0;
    k += ollm__snap_list(s, len + 1, 256);
    for (;;) {   /* the longest untried one that fits, until one loads */
        for (i = 0, best = -1; i < k; i++) if (len[i] > *have && len[i] <= limit && (best < 0 || len[i] > len[best])) best = i;
        if (best < 0) break;
        if (best == 0) snprintf(path, sizeof path, "%s/state.bin", s->cfg.dir);
        else snprintf(path, sizeof path, "%s/state-%lld.bin", s->cfg.dir, (long long)len[best]);
        if (ollm__file_open(&f, path) == OLLM_OK && f.size == sizeof h + n && ollm__pread_all(f.fd, &h, sizeof h, 0) == OLLM_OK &&
            h.magic == OLLM__STATE_MAGIC && h.version == OLLM__KV_VERSION &&
            h.hash == ollm__fnv1a64(OLLM__FNV_INIT, &h, offsetof(ollm__state_hdr, hash)) && h.fingerprint == m->fingerprint &&
            h.bytes == n && (int64_t)h.n_tokens == len[best] &&
            h.tokens_hash == ollm__fnv1a64(OLLM__FNV_INIT, s->tokens, (size_t)h.n_tokens * 4) &&
            (buf || (buf = OLLM_MALLOC((size_t)n)) != NULL) && ollm__pread_all(f.fd, buf, n, sizeof h) == OLLM_OK &&
            h.payload_hash == ollm__fnv1a64(OLLM__FNV_INIT, buf, (size_t)n)) {
            s->n_past = len[best];
            if ((r = m->fam->state_io(s, buf, 1)) == OLLM_OK) {
                *have = len[best]; s->state_at = len[best];
                if (was_state_bin) *was_state_bin = best == 0;
            }
            ollm__file_close(&f);
            break;
        }
        ollm__logf(&m->log, OLLM_LOG_WARN, "%s: not a state of this session's tokens: passed over", path);
        ollm__file_close(&f);
        len[best] = 0;
    }
    OLLM_FREE(buf);
    s->n_past = keep;
    return r == OLLM_OK ? OLLM_OK : ollm__fail(&m->log, r, "session: cannot restore the recurrent state");
}

/* After the log is replayed (n_past = the header's tokens): the saved state that matches the longest prefix of those
   tokens, else a fresh one; then the tokens after it are fed again (their KV rows are rewritten with the same values). */
static ollm_result ollm__state_load(ollm_session *s) {
    int64_t have = 0, all = s->n_past; int from_state_bin = 0; ollm_result r;
    OLLM__TRY(ollm__state_pick(s, all, &have, &from_state_bin));
    s->state_len = from_state_bin ? have : 0;   /* 0: state.bin holds no prefix of the tokens (rewritten at close) */
    s->state_at = have;
    if (have == all) return OLLM_OK;
    ollm__logf(&s->m->log, OLLM_LOG_INFO, "%s: feeding tokens %lld..%lld again to rebuild the recurrent state",
               s->cfg.dir, (long long)have, (long long)all - 1);
    r = ollm__refeed(s, have);
    return r == OLLM_OK ? ollm__store_state(s) : r;
}

/* The recurrent state after a rewind below it (it cannot be undone): the latest snapshot at or below the session's
   length, in memory or in the folder, then the tokens after it fed again; without one, every token again. */
static ollm_result ollm__state_resume(ollm_session *s) {
    ollm_model *m = s->m; int64_t want = s->n_past, have = 0;
    if (!m->fam->state_bytes || want == 0 || s->state_at == want) return OLLM_OK;
    if (s->snap && s->snap_len > 0 && s->snap_len <= want) {
        s->n_past = s->snap_len;
        if (m->fam->state_io(s, s->snap, 1) == OLLM_OK) { have = s->snap_len; s->state_at = have; }
        s->n_past = want;
    }
    if (s->kv_fd >= 0) OLLM__TRY(ollm__state_pick(s, want, &have, NULL));
    if (have == want)
        ollm__logf(&m->log, OLLM_LOG_INFO, "session: rewound below the recurrent state: continuing from its snapshot "
                   "at token %lld", (long long)want);
    else
        ollm__logf(&m->log, OLLM_LOG_INFO, "session: rewound below the recurrent state: feeding tokens %lld..%lld again "
                   "from %s", (long long)have, (long long)want - 1, have ? "a snapshot" : "the start");
    return ollm__refeed(s, have);
}

/* Commits tokens [start, start + n): called after their forward pass, before n_past moves past them. */
static ollm_result ollm__store_commit(ollm_session *s, int64_t start, int64_t n) {
    ollm_model *m = s->m; uint64_t row = ollm__kv_row(s), bytes = 0, off, h = OLLM__FNV_INIT;
    ollm__kv_rec rec; char *buf, *p; int l; ollm_result r;
    for (l = 0; l < m->d.n_layers; l++) if (ollm__kv_has(s, l)) bytes += 2 * row * (uint64_t)n;
    bytes += (uint64_t)n * 4;
    if (!(buf = (char *)OLLM_MALLOC((size_t)bytes))) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    p = buf;
    memcpy(p, s->tokens + start, (size_t)n * 4); p += n * 4;
    for (l = 0; l < m->d.n_layers; l++) {
        if (!ollm__kv_has(s, l)) continue;
        if ((r = ollm__kv_rows(s, l, start, n, p, p + row * (uint64_t)n, 0)) != OLLM_OK) {
            OLLM_FREE(buf); return ollm__fail(&m->log, r, "session: cannot read back the KV cache");
        }
        p += 2 * row * (uint64_t)n;
    }
    memset(&rec, 0, sizeof rec);
    rec.magic = OLLM__KV_MAGIC; rec.version = OLLM__KV_VERSION; rec.start = (uint64_t)start; rec.n = (uint64_t)n;
    rec.payload_bytes = bytes; rec.payload_hash = ollm__fnv1a64(h, buf, (size_t)bytes);
    rec.hash = ollm__fnv1a64(OLLM__FNV_INIT, &rec, offsetof(ollm__kv_rec, hash));
    off = s->log_end;
    r = ollm__pwrite_all(s->kv_fd, &rec, sizeof rec, off);
    if (r == OLLM_OK) r = ollm__pwrite_all(s->kv_fd, buf, bytes, off + sizeof rec);
    if (r == OLLM_OK) r = ollm__fsync(s->kv_fd);
    OLLM_FREE(buf);
    if (r != OLLM_OK)
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s/kv.bin: cannot commit tokens %lld..%lld: %s", s->cfg.dir,
                          (long long)start, (long long)(start + n - 1), strerror(errno));
    s->log_end = off + sizeof rec + bytes;
    if ((r = ollm__store_header(s, start + n, 1)) != OLLM_OK) { s->log_end = off; return r; }
    return OLLM_OK;
}
/* After a commit of tokens up to n_past: the recurrent state too, when it is due. */
static ollm_result ollm__store_state_due(ollm_session *s, int T) {
    if (s->kv_fd < 0 || !s->m->fam->state_bytes) return OLLM_OK;
    if (T == 1 && s->n_past - s->state_len < OLLM__STATE_EVERY) return OLLM_OK;
    return ollm__store_state(s);
}

/* Replays the log's records below byte log_bytes into the caches, in order, so that a later record of a position
   wins (appending after a rewind starts lower). Sliding layers' rings take only the positions [hi - ring, hi) they
   can hold; other layers (skipped when ring_only) take every position, and the ids go back into s->tokens.
   *cur: where the last record ends (the next may start at most there). */
static ollm_result ollm__store_replay(ollm_session *s, uint64_t log_bytes, int64_t hi, int ring_only, int64_t *cur) {
    ollm_model *m = s->m; const char *dir = s->cfg.dir; uint64_t row = ollm__kv_row(s), off = 0; char *buf = NULL;
    int64_t ring_from = s->ring && hi > s->ring ? hi - s->ring : 0; ollm_result r = OLLM_OK;
    *cur = 0;
    while (off < log_bytes) {
        ollm__kv_rec rec; uint64_t want = 0, n; int l; char *p;
        if (log_bytes - off < sizeof rec || ollm__pread_all(s->kv_fd, &rec, sizeof rec, off) != OLLM_OK ||
            rec.magic != OLLM__KV_MAGIC || rec.hash != ollm__fnv1a64(OLLM__FNV_INIT, &rec, offsetof(ollm__kv_rec, hash)) ||
            rec.start > (uint64_t)*cur || rec.n == 0 || rec.n > (uint64_t)s->n_ctx - rec.start) {
            r = ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s/kv.bin: damaged record at byte %llu", dir, (unsigned long long)off);
            break;
        }
        n = rec.n;
        for (l = 0; l < m->d.n_layers; l++) if (ollm__kv_has(s, l)) want += 2 * row * n;
        want += n * 4;
        if (rec.payload_bytes != want || want > log_bytes - off - sizeof rec) {
            r = ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s/kv.bin: record at byte %llu has the wrong size", dir, (unsigned long long)off);
            break;
        }
        OLLM_FREE(buf);
        if (!(buf = (char *)OLLM_MALLOC((size_t)want))) { r = ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory"); break; }
        if (ollm__pread_all(s->kv_fd, buf, want, off + sizeof rec) != OLLM_OK ||
            rec.payload_hash != ollm__fnv1a64(OLLM__FNV_INIT, buf, (size_t)want)) {
            r = ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s/kv.bin: record at byte %llu fails its checksum", dir, (unsigned long long)off);
            break;
        }
        p = buf;
        if (!ring_only) memcpy(s->tokens + rec.start, p, (size_t)n * 4);
        p += n * 4;
        for (l = 0; l < m->d.n_layers && r == OLLM_OK; l++) {
            int64_t a = (int64_t)rec.start, b = a + (int64_t)n;
            if (!ollm__kv_has(s, l)) continue;
            if (ollm__kv_ring(s, l)) { if (a < ring_from) a = ring_from; if (b > hi) b = hi; }
            else if (ring_only) b = a;
            if (a < b) r = ollm__kv_rows(s, l, a, b - a, p + (uint64_t)(a - (int64_t)rec.start) * row,
                                         p + row * n + (uint64_t)(a - (int64_t)rec.start) * row, 1);
            p += 2 * row * n;
        }
        if (r != OLLM_OK) { ollm__fail(&m->log, r, "session: cannot place the KV cache"); break; }
        *cur = (int64_t)(rec.start + n);
        off += sizeof rec + want;
    }
    OLLM_FREE(buf);
    if (r == OLLM_OK && s->ring) s->ring_lo = ring_from;
    return r;
}

/* Opens (creating if needed) the session folder; an existing session is checked and loaded. */
static ollm_result ollm__store_open(ollm_session *s) {
    ollm_model *m = s->m; const char *dir = s->cfg.dir; char path[4200];
    ollm__kv_hdr h; ollm__file hf; uint64_t row = ollm__kv_row(s); int64_t cur = 0; ollm_result r = OLLM_OK;
    s->state_len = -1;
    if (strlen(dir) > 4000) return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "session folder path too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot create the session folder: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/kv.bin", dir);
    if ((s->kv_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/session.hdr", dir);
    if (ollm__file_open(&hf, path) != OLLM_OK) {
        if (errno != ENOENT) return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        s->log_end = 0; s->state_len = 0;
        return ollm__store_header(s, 0, 0);   /* a new, empty session */
    }
    if (hf.size < sizeof h || ollm__pread_all(hf.fd, &h, sizeof h, 0) != OLLM_OK) {
        ollm__file_close(&hf);
        return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: not a session header of this model (size %llu)", path,
                          (unsigned long long)hf.size);
    }
    if (h.magic != OLLM__HDR_MAGIC || h.version != OLLM__KV_VERSION ||
        h.hash != ollm__fnv1a64(OLLM__FNV_INIT, &h, offsetof(ollm__kv_hdr, hash))) {
        ollm__file_close(&hf); return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: damaged session header", path);
    }
    if (h.fingerprint != m->fingerprint || h.n_layers != (uint32_t)m->d.n_layers || h.kv_row_bytes != row ||
        h.vocab != (uint32_t)m->d.vocab) {
        ollm__file_close(&hf);
        return ollm__fail(&m->log, OLLM_ERR_MISMATCH, "%s: the session was written by another model, or with another "
                          "backend's cache layout", dir);
    }
    if (hf.size != sizeof h + (uint64_t)m->d.vocab * 4) {
        ollm__file_close(&hf); return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: damaged session header (size)", path);
    }
    if (h.n_tokens > (uint64_t)s->n_ctx) {
        ollm__file_close(&hf);
        return ollm__fail(&m->log, OLLM_ERR_CONTEXT_FULL, "%s: the session holds %llu tokens, more than max_context %d",
                          dir, (unsigned long long)h.n_tokens, s->n_ctx);
    }
    s->logits_row = -1;
    r = ollm__pread_all(hf.fd, s->last_logits, (uint64_t)m->d.vocab * 4, sizeof h);
    ollm__file_close(&hf);
    if (r != OLLM_OK || h.logits_hash != ollm__fnv1a64(OLLM__FNV_INIT, s->last_logits, (size_t)m->d.vocab * 4))
        return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: damaged logits in the session header", path);
    /* replay the records the header covers */
    OLLM__TRY(ollm__store_replay(s, h.log_bytes, (int64_t)h.n_tokens, 0, &cur));
    if ((uint64_t)cur < h.n_tokens)
        return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: header claims %llu tokens, the records hold %lld", dir,
                          (unsigned long long)h.n_tokens, (long long)cur);
    for (cur = 0; cur < (int64_t)h.n_tokens; cur++)
        if (s->tokens[cur] < 0 || s->tokens[cur] >= m->d.vocab)
            return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: token %lld is outside the vocabulary", dir, (long long)cur);
    s->log_end = h.log_bytes; s->n_past = s->disk_len = (int64_t)h.n_tokens; s->has_logits = h.has_logits && h.n_tokens;
    if (m->fam->state_bytes) OLLM__TRY(ollm__state_load(s));
    ollm__logf(&m->log, OLLM_LOG_INFO, "%s: resumed a session of %lld tokens", dir, (long long)s->n_past);
    return OLLM_OK;
}

/* ==== @open ==== the family table; opening and closing models and sessions =============================== */

static const ollm__family ollm__families[] = {
    { "llama", ollm__llama_config, ollm__llama_weights_size, ollm__llama_tensors, ollm__llama_session_init, NULL,
      ollm__llama_forward, NULL, NULL },
    { "gpt_oss", ollm__gptoss_config, ollm__gptoss_weights_size, ollm__gptoss_tensors, ollm__gptoss_session_init,
      ollm__gptoss_session_free, ollm__gptoss_forward, NULL, NULL },
    { "qwen3_next", ollm__qn_config, ollm__qn_weights_size, ollm__qn_tensors, ollm__qn_session_init,
      ollm__qn_session_free, ollm__qn_forward, ollm__qn_state_bytes, ollm__qn_state_io },
};

static ollm_result ollm__desc_parse(ollm__desc *d, const ollm__family **fam, const char *text, size_t len,
                                    ollm__log *lg) {
    ollm__json j; const char *mt; ollm_result r; size_t i; char known[256] = "";
    memset(d, 0, sizeof *d);
    *fam = NULL;
    if (!ollm__json_parse(&j, text, len)) {
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: %s", j.err);
        ollm__json_free(&j); return r;
    }
    if (!ollm__json_is(&j, 1, OLLM__J_OBJ)) { r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: not an object"); goto done; }
    mt = ollm__json_str(&j, ollm__json_get(&j, 1, "model_type"));
    if (!mt) { r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: no \"model_type\""); goto done; }
    for (i = 0; i < sizeof ollm__families / sizeof ollm__families[0]; i++) {
        if (strcmp(mt, ollm__families[i].model_type) == 0) *fam = &ollm__families[i];
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", ollm__families[i].model_type);
    }
    if (!*fam) { r = ollm__fail(lg, OLLM_ERR_UNSUPPORTED, "config.json: model_type \"%s\" is not supported (%s)", mt, known); goto done; }
    snprintf(d->model_type, sizeof d->model_type, "%s", mt);
    if ((r = ollm__desc_common(&j, d, lg)) == OLLM_OK) r = (*fam)->config(&j, d, lg);
    /* head_dim: from config.json, the family's default, or hidden / heads */
    if (r == OLLM_OK && d->head_dim < 0)
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d and "
                       "head_dim is absent", d->hidden, d->n_heads);
    else if (r == OLLM_OK && d->head_dim % 2)
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: head_dim %d is odd", d->head_dim);
    else if (r == OLLM_OK && (int64_t)d->n_heads * d->head_dim > OLLM__MAX_DIM)
        r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: heads x head_dim too large");
    if (r == OLLM_OK && d->rope.type == OLLM__ROPE_YARN) {   /* after the family, which may set its own yarn */
        /* transformers _compute_yarn_parameters: original_max_position_embeddings, else max_position_embeddings */
        if (d->rope.original_max_position_embeddings == 0) d->rope.original_max_position_embeddings = d->max_pos;
        /* the correction range divides by log(theta): at theta 1 transformers raises ZeroDivisionError and
           ollm__rope_freqs computed NaN frequencies (tests/fuzz/fuzz_config checks they are finite) */
        if (!(d->rope.theta > 1.0))
            r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: yarn rope needs rope_theta > 1, not %g", d->rope.theta);
    }
done:
    ollm__json_free(&j);
    return r;
}

/* For tests only (they include the implementation): called on every backend a model creates, before anything is
   placed. tests/test_fixtures.c --staged makes the CPU backend stage weights as a device does (so the tiers and the
   expert cache run without a GPU). */
static void (*ollm__backend_hook)(ollm__backend *b);

static ollm_result ollm__backend_create(ollm_model *m) {
    ollm_backend want = m->cfg.backend;
    if (want == OLLM_BACKEND_CUDA || want == OLLM_BACKEND_AUTO) {
        const char *why = "";
        ollm_result r = ollm__cuda_create(&m->cfg, &m->log, &m->B, &why);
        if (r == OLLM_OK) return OLLM_OK;
        if (want == OLLM_BACKEND_CUDA) {
            if (m->log.err[0] == 0 || r == OLLM_ERR_NO_DEVICE) return ollm__fail(&m->log, r, "CUDA backend: %s", why);
            return r;
        }
        ollm__logf(&m->log, OLLM_LOG_INFO, "CUDA unavailable: %s; using the CPU backend", why);
        m->log.err[0] = 0;
    }
    if (ollm__cpu_create(m->cfg.threads, &m->log, &m->B) != OLLM_OK)
        return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    return OLLM_OK;
}

OLLM_API ollm_result ollm_model_open(const char *dir, const ollm_model_config *cfg, ollm_model **out) {
    ollm_model *m; char path[4096], *text = NULL; size_t len; ollm_result r; float *inv; int l; double t0 = ollm__now();
    struct stat st;
    if (!out) return OLLM_ERR_INVALID_ARG;
    *out = m = (ollm_model *)ollm__calloc(1, sizeof *m);
    if (!m) return OLLM_ERR_NO_MEMORY;
    if (cfg) m->cfg = *cfg;
    m->log.fn = m->cfg.log; m->log.user = m->cfg.log_user;
    if (!dir || !dir[0]) return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "no model directory given");
    if (strlen(dir) > 3000) return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "model directory path too long");
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: not a readable directory (%s)", dir,
                          stat(dir, &st) != 0 ? strerror(errno) : "not a directory");
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((r = ollm__read_file(path, 16u << 20, &text, &len)) != OLLM_OK)
        return ollm__fail(&m->log, r, "%s: cannot read (%s)", path, r == OLLM_ERR_IO ? strerror(errno) : "too large");
    r = ollm__desc_parse(&m->d, &m->fam, text, len, &m->log);
    m->fingerprint = ollm__fnv1a64(OLLM__FNV_INIT, text, len);
    OLLM_FREE(text);
    if (r != OLLM_OK) return r;
    if ((r = ollm__tok_load(dir, &m->log, &m->tok)) != OLLM_OK) return r;
    if ((r = ollm__st_open_dir(&m->st, dir, &m->log)) != OLLM_OK) return r;
    if ((r = ollm__backend_create(m)) != OLLM_OK) return r;
    if (ollm__backend_hook) ollm__backend_hook(m->B);
    m->chunk = m->cfg.prefill_chunk > 0 ? m->cfg.prefill_chunk : m->B->host ? 256 : 1024;
    m->group = m->cfg.prefill_group > 1 ? m->cfg.prefill_group : 1;
    {
        uint32_t k;
        for (k = 0; k < m->st.n; k++) {
            const ollm__tensor *t = &m->st.t[k];
            m->fingerprint = ollm__fnv1a64(m->fingerprint, t->name, strlen(t->name) + 1);
            m->fingerprint = ollm__fnv1a64(m->fingerprint, &t->dtype, 1);
            m->fingerprint = ollm__fnv1a64(m->fingerprint, t->shape, sizeof t->shape);
        }
    }
    if (!(m->fw = ollm__calloc(1, m->fam->weights_size(&m->d)))) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    if ((r = m->fam->tensors(m, ollm__bind_shaped)) != OLLM_OK) return r;
    if ((r = ollm__tiers_place(m, dir)) != OLLM_OK || (r = ollm__load_progress(m, 0, 1)) != OLLM_OK) return r;
    /* RoPE frequencies, computed once on the host (modeling_rope_utils.py) */
    inv = (float *)ollm__calloc((size_t)m->d.head_dim / 2 + 1, sizeof *inv);
    if (!inv) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    ollm__rope_freqs(&m->d.rope, m->d.head_dim, inv, &m->rot_dim, &m->mscale);
    r = m->B->alloc(m->B, (uint64_t)(m->d.head_dim / 2 + 1) * 4, &m->inv_freq);
    if (r == OLLM_OK) r = m->B->upload(m->B, m->inv_freq, inv, (uint64_t)(m->d.head_dim / 2 + 1) * 4);
    OLLM_FREE(inv);
    if (r == OLLM_OK) r = ollm__own(m, m->inv_freq);
    if (r != OLLM_OK) return ollm__fail(&m->log, r, "cannot place the RoPE table");
    /* what ollm_model_get_info reports */
    m->info.arch = m->fam->model_type; m->info.backend = m->B->name; m->info.device = m->B->device;
    m->info.n_layers = m->d.n_layers; m->info.hidden = m->d.hidden; m->info.n_heads = m->d.n_heads;
    m->info.n_kv_heads = m->d.n_kv_heads; m->info.head_dim = m->d.head_dim; m->info.ffn = m->d.ffn;
    m->info.vocab = m->d.vocab; m->info.max_context = m->d.max_pos; m->info.bos_id = m->d.bos_id;
    m->info.n_eos = m->d.n_eos;
    for (l = 0; l < m->d.n_eos; l++) m->info.eos_ids[l] = m->d.eos[l];
    {
        uint32_t k;
        for (k = 0; k < m->st.n; k++) {
            uint64_t e = 1; int d;
            for (d = 0; d < m->st.t[k].ndim; d++) e *= (uint64_t)m->st.t[k].shape[d];
            m->info.n_params += e; m->info.weight_bytes += m->st.t[k].nbytes;
        }
    }
    ollm__logf(&m->log, OLLM_LOG_INFO, "%s: %s, %d layers, hidden %d, %d/%d heads x %d, vocab %d; %.2f GB of weights "
               "loaded in %.2f s (%s backend)", dir, m->fam->model_type, m->d.n_layers, m->d.hidden, m->d.n_heads, m->d.n_kv_heads,
               m->d.head_dim, m->d.vocab, (double)m->loaded_bytes / 1e9, ollm__now() - t0, m->B->name);
    return OLLM_OK;
}

OLLM_API void ollm_model_close(ollm_model *m) {
    int i;
    if (!m) return;
    if (m->B) { ollm__streamer_free(m); ollm__xcache_free(m); }
    for (i = 0; m->B && i < m->n_owned; i++) m->B->release(m->B, &m->owned[i]);
    OLLM_FREE(m->ent);
    OLLM_FREE(m->owned); OLLM_FREE(m->fw);
    if (m->B) m->B->destroy(m->B);
    ollm__tok_free(m->tok);
    ollm__st_free(&m->st);
    OLLM_FREE(m);
}
OLLM_API const char *ollm_model_last_error(const ollm_model *m) { return m ? m->log.err : "out of memory"; }
OLLM_API ollm_tokenizer *ollm_model_tokenizer(const ollm_model *m) { return m ? m->tok : NULL; }
OLLM_API const ollm_model_info *ollm_model_get_info(const ollm_model *m) {
    ollm__streamer *st;
    if (!m || !m->info.arch) return NULL;
    ((ollm_model_info *)&m->info)->device_peak_bytes = m->B->mem_peak;
    ((ollm_model_info *)&m->info)->kernel_launches = m->B->n_launch;
    ((ollm_model_info *)&m->info)->device_waits = m->B->n_wait;
    ((ollm_model_info *)&m->info)->device_wait_s = m->B->wait_s;
    if ((st = m->stream) != NULL) {   /* refresh the counters the I/O thread keeps */
        ollm_model_info *info = (ollm_model_info *)&m->info;
        pthread_mutex_lock(&st->mu);
        info->disk_bytes_read = st->bytes_read; info->stream_wait_s = st->wait_s; info->upload_bytes = st->bytes_uploaded;
        pthread_mutex_unlock(&st->mu);
    }
    if (m->xc) {   /* the expert cache's traffic adds to the layers' */
        ollm_model_info *info = (ollm_model_info *)&m->info;
        if (!m->stream) info->disk_bytes_read = info->upload_bytes = 0;
        info->expert_hits = m->xc->hits; info->expert_misses = m->xc->misses;
        info->disk_bytes_read += m->xc->read; info->upload_bytes += m->xc->uploaded;
        info->expert_guesses = m->xc->guesses; info->expert_guess_hits = m->xc->guess_hits;
        info->expert_guess_waste = m->xc->guess_bytes - m->xc->guess_used;
    }
    return &m->info;
}

OLLM_API ollm_session_config ollm_session_config_default(void) { ollm_session_config c; memset(&c, 0, sizeof c); return c; }

OLLM_API void ollm_session_close(ollm_session *s) {
    int l; ollm__backend *B;
    if (!s) return;
    B = s->m->B;
    if (s->kv_fd >= 0 && s->m->fam->state_bytes && s->state_len >= 0 && s->state_len < s->n_past && s->fs &&
        ollm__store_state(s) != OLLM_OK)   /* else reopening feeds the tokens after the saved state again */
        ollm__logf(&s->m->log, OLLM_LOG_WARN, "session: %s", s->m->log.err);
    if (s->k_cache) for (l = 0; l < s->m->d.n_layers; l++) { B->release(B, &s->k_cache[l]); B->release(B, &s->v_cache[l]); }
    OLLM_FREE(s->k_cache); OLLM_FREE(s->v_cache);
    for (l = 0; s->host_k && l < s->m->d.n_layers; l++) {
        if (s->host_pinned[l]) { B->host_free(B, s->host_k[l]); B->host_free(B, s->host_v[l]); }
        else { OLLM_FREE(s->host_k[l]); OLLM_FREE(s->host_v[l]); }
    }
    OLLM_FREE(s->host_k); OLLM_FREE(s->host_v); OLLM_FREE(s->host_pinned);
    for (l = 0; l < 2; l++) { B->release(B, &s->stage_k[l]); B->release(B, &s->stage_v[l]); }
    B->release(B, &s->xs); B->release(B, &s->xn); B->release(B, &s->q); B->release(B, &s->k); B->release(B, &s->v);
    B->release(B, &s->o); B->release(B, &s->g); B->release(B, &s->u); B->release(B, &s->logits); B->release(B, &s->gx);
    B->release(B, &s->erows); OLLM_FREE(s->erows_h); OLLM_FREE(s->eids);
    if (s->fs && s->m->fam->session_free) s->m->fam->session_free(s);
    if (s->kv_fd >= 0) close(s->kv_fd);
    OLLM_FREE(s->last_logits); OLLM_FREE(s->tokens); OLLM_FREE(s->snap);
    OLLM_FREE(s);
}

OLLM_API ollm_result ollm_session_open(ollm_model *m, const ollm_session_config *cfg, ollm_session **out) {
    ollm_session *s; const ollm__desc *c; ollm_result r = OLLM_OK;
    if (!out) return OLLM_ERR_INVALID_ARG;
    *out = NULL;
    if (!m || !m->info.arch) return OLLM_ERR_INVALID_ARG;
    c = &m->d;
    m->log.err[0] = 0;
    s = (ollm_session *)ollm__calloc(1, sizeof *s);
    if (!s) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    s->m = m; s->pending = -1; s->kv_fd = -1; s->kv_staged[0] = s->kv_staged[1] = -1; s->snap_len = -1;
    if (cfg) s->cfg = *cfg;
    if (s->cfg.max_context < 0 || s->cfg.prefill_chunk < 0 || s->cfg.prefill_group < 0) {
        OLLM_FREE(s);
        return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "session: negative max_context, prefill_chunk or prefill_group");
    }
    s->n_ctx = ollm__ctx(s->cfg.max_context, c);
    s->chunk = s->cfg.prefill_chunk ? s->cfg.prefill_chunk : m->chunk;
    if (s->chunk > s->n_ctx) s->chunk = s->n_ctx;
    s->group = s->cfg.prefill_group > 1 ? s->cfg.prefill_group : s->cfg.prefill_group == 1 ? 1 : m->group;
    if ((int64_t)s->group * s->chunk > s->n_ctx) s->group = (s->n_ctx + s->chunk - 1) / s->chunk;
    s->k_cache = (ollm__buf *)ollm__calloc((size_t)c->n_layers, sizeof(ollm__buf));
    s->v_cache = (ollm__buf *)ollm__calloc((size_t)c->n_layers, sizeof(ollm__buf));
    s->tokens = (int32_t *)ollm__calloc((size_t)s->n_ctx, sizeof(int32_t));
    s->last_logits = (float *)ollm__calloc((size_t)c->vocab, sizeof(float));
    s->logits_row = -1;
    if (!s->k_cache || !s->v_cache || !s->tokens || !s->last_logits) r = OLLM_ERR_NO_MEMORY;
    s->kv_host = s->cfg.kv_host > 0 || (s->cfg.kv_host == 0 && ollm__kv_host_auto(m, s->n_ctx, (int64_t)s->group * s->chunk));
    if (s->kv_host) {
        s->host_k = (char **)ollm__calloc((size_t)c->n_layers, sizeof(char *));
        s->host_v = (char **)ollm__calloc((size_t)c->n_layers, sizeof(char *));
        s->host_pinned = (uint8_t *)ollm__calloc((size_t)c->n_layers, 1);
        if (!s->host_k || !s->host_v || !s->host_pinned) r = OLLM_ERR_NO_MEMORY;
        else ollm__logf(&m->log, OLLM_LOG_INFO, "session: the KV cache of %d tokens (%.2f GB) lives in host memory", s->n_ctx,
                        (double)ollm__kv_bytes(c, s->n_ctx, (int64_t)s->group * s->chunk, m->B->kv_elem) / 1e9);
    }
    if (r == OLLM_OK) r = m->fam->session_init(s);
    if (r == OLLM_OK && m->B->mem_budget && m->B->mem_used) {   /* and room left for the scratch ops grow into */
        uint64_t need = ollm__scratch_bytes(m, (uint64_t)s->chunk), held = m->B->mem_scratch;
        if (m->B->mem_used - held + (need > held ? need : held) > m->B->mem_budget) r = OLLM_ERR_BUDGET;
    }
    if (r == OLLM_ERR_BUDGET && (s->group > 1 || s->chunk > 64)) {   /* activations too large for the budget: fewer
                                                                          chunks a pass, then smaller ones */
        ollm_session_config smaller = s->cfg; int g = s->group, ch = s->chunk;
        if (g > 1) smaller.prefill_group = g / 2; else smaller.prefill_chunk = ch / 2;
        ollm_session_close(s);
        ollm__logf(&m->log, OLLM_LOG_WARN, "session: %d prefill chunks of %d a pass do not fit the memory budget; trying "
                   "%d of %d", g, ch, g > 1 ? g / 2 : 1, g > 1 ? ch : ch / 2);
        return ollm_session_open(m, &smaller, out);
    }
    if (r != OLLM_OK) {
        int32_t n_ctx = s->n_ctx, chunk = s->group * s->chunk;
        ollm_session_close(s);
        if (r != OLLM_ERR_NO_MEMORY && r != OLLM_ERR_BUDGET && m->log.err[0]) return r;   /* the family said why */
        return ollm__fail(&m->log, r, "session: cannot allocate the KV cache (%.1f MB), activations and scratch for "
                          "%d tokens", (double)ollm__kv_bytes(c, n_ctx, chunk, m->B->kv_elem) / 1e6, (int)n_ctx);
    }
    if (s->cfg.dir && (r = ollm__store_open(s)) != OLLM_OK) { ollm_session_close(s); return r; }
    *out = s;
    return OLLM_OK;
}

/* The sliding layers' rings after a rewind: the next token needs the keys of its window, [n_past - window + 1,
   n_past); a rewind by more than a chunk has overwritten some of them. They are read back from the session folder's
   log, or, without a folder, computed again from the session's tokens. */
static ollm_result ollm__ring_check(ollm_session *s) {
    int64_t need = s->n_past - (s->m->d.sliding_window - 1), cur;
    if (!s->ring) return OLLM_OK;
    if (s->n_past == 0) { s->ring_lo = 0; return OLLM_OK; }
    if ((need > 0 ? need : 0) >= s->ring_lo) return OLLM_OK;
    if (s->kv_fd >= 0 && s->disk_len >= s->n_past)
        return ollm__store_replay(s, s->log_end, s->n_past, 1, &cur);
    ollm__logf(&s->m->log, OLLM_LOG_INFO, "session: rewound to token %lld, before the keys the sliding-window layers "
               "keep: computing tokens 0..%lld again", (long long)s->n_past, (long long)s->n_past - 1);
    return ollm__refeed(s, 0);
}

/* Runs ids through the model in chunks; n_past advances per completed chunk, so an error or a cancel leaves the
   session valid up to the last completed chunk. */
static ollm_result ollm__feed(ollm_session *s, const int32_t *ids, size_t n, float *logits_all, int report) {
    ollm_model *m = s->m; size_t done = 0; ollm_result r;
    OLLM__TRY(ollm__state_resume(s));
    OLLM__TRY(ollm__ring_check(s));
    while (done < n) {
        size_t most = (size_t)s->group * (size_t)s->chunk;
        int T = (int)(n - done < most ? n - done : most);   /* a group of chunks (one unless prefill_group) */
        m->log.err[0] = 0;
        if (s->ring && s->n_past + T - s->ring > s->ring_lo) s->ring_lo = s->n_past + T - s->ring;   /* overwritten now */
        r = ollm__session_logits_rows(s, logits_all ? (T < s->chunk ? T : s->chunk) : 1);   /* the families write
                                                                                              s->logits [rows, vocab] */
        s->prog_on = report && s->cfg.progress; s->prog_done = done; s->prog_total = n; s->prog_stop = 0;
        if (r == OLLM_OK) r = m->fam->forward(s, ids + done, T, logits_all ? logits_all + done * (size_t)m->d.vocab : NULL);
        s->prog_on = 0;
        if (r != OLLM_OK) {
            s->has_logits = 0; s->logits_row = -1; s->state_at = -1;
            if (m->log.err[0] == 0) ollm__fail(&m->log, r, "forward pass failed at token %lld: %s", (long long)s->n_past,
                                               ollm_result_string(r));
            return r;
        }
        s->state_at = s->n_past + T;
        memcpy(s->tokens + s->n_past, ids + done, (size_t)T * sizeof *ids);
        if (s->kv_fd >= 0 && (r = ollm__store_commit(s, s->n_past, T)) != OLLM_OK) {
            /* not durable: the session steps back to its last committed token */
            if (s->disk_len < s->n_past) s->n_past = s->disk_len;
            s->has_logits = 0;
            return r;
        }
        s->n_past += T; done += (size_t)T; s->has_logits = 1;
        OLLM__TRY(ollm__store_state_due(s, T));
        if (report && s->cfg.progress && (s->cfg.progress(s->cfg.progress_user, done, n) || s->prog_stop))
            return ollm__fail(&m->log, OLLM_ERR_CANCELLED, "prefill stopped by the progress callback after %llu of %llu tokens",
                              (unsigned long long)done, (unsigned long long)n);
    }
    return OLLM_OK;
}

static ollm_result ollm__flush_pending(ollm_session *s) {
    int32_t t = s->pending;
    if (t < 0) return OLLM_OK;
    s->pending = -1;
    return ollm__feed(s, &t, 1, NULL, 0);
}

OLLM_API ollm_result ollm_session_prefill(ollm_session *s, const int32_t *ids, size_t n, float *logits) {
    ollm_model *m; size_t i;
    if (!s) return OLLM_ERR_INVALID_ARG;
    m = s->m;
    if (!ids && n) return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "prefill: ids is NULL");
    if ((uint64_t)s->n_past + (s->pending >= 0) + n > (uint64_t)s->n_ctx)
        return ollm__fail(&m->log, OLLM_ERR_CONTEXT_FULL, "prefill: %llu + %llu tokens exceed the session's context of %d",
                          (unsigned long long)(s->n_past + (s->pending >= 0)), (unsigned long long)n, s->n_ctx);
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->d.vocab)
            return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "prefill: token %d at index %llu is outside the vocabulary "
                              "(0..%d)", ids[i], (unsigned long long)i, m->d.vocab - 1);
    OLLM__TRY(ollm__flush_pending(s));
    OLLM__TRY(ollm__feed(s, ids, n, logits, 1));
    if (m->B->profile) m->B->profile(m->B, "prefill");
    return m->fam->state_bytes && n ? ollm__snap_take(s, n) : OLLM_OK;   /* a rewind back here resumes from it */
}
OLLM_API const float *ollm_session_logits(const ollm_session *s) {
    if (!s || !s->has_logits || s->pending >= 0) return NULL;
    return ollm__logits_host((ollm_session *)s) == OLLM_OK ? s->last_logits : NULL;   /* read back on first use */
}
OLLM_API size_t ollm_session_length(const ollm_session *s) { return s ? (size_t)s->n_past + (s->pending >= 0) : 0; }
OLLM_API ollm_result ollm_session_rewind(ollm_session *s, size_t n) {
    if (!s || n > ollm_session_length(s)) return OLLM_ERR_INVALID_ARG;
    if (n == ollm_session_length(s)) return OLLM_OK;
    if (s->pending >= 0) {
        s->pending = -1;
        if (n == (size_t)s->n_past) return OLLM_OK;   /* only the unfed token goes; its logits stay valid */
    }
    s->n_past = (int64_t)n;
    if (s->state_len > s->n_past) s->state_len = 0;   /* state.bin is past the new end: no longer a prefix */
    if (s->snap_len > s->n_past) s->snap_len = -1;    /* nor the snapshots past it */
    if (s->kv_fd >= 0 && s->m->fam->state_bytes) ollm__snap_prune(s, s->n_past);
    s->has_logits = 0; s->logits_row = -1;   /* the logits after token n - 1 are gone; the next prefill recomputes them */
    if (s->kv_fd >= 0 && s->disk_len > s->n_past) return ollm__store_header(s, s->n_past, 0);
    return OLLM_OK;
}

/* ==== @generate ==== samplers and the generation loop ==================================================== */

OLLM_API ollm_generate_config ollm_generate_config_default(void) {
    ollm_generate_config g; memset(&g, 0, sizeof g);
    g.top_p = 1.0f; g.repetition_penalty = 1.0f;
    return g;
}

static uint64_t ollm__rng_next(uint64_t *state) {   /* splitmix64 */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
typedef struct ollm__cand { float logit; int32_t id; } ollm__cand;
static int ollm__cand_desc(const void *a, const void *b) {
    const ollm__cand *x = (const ollm__cand *)a, *y = (const ollm__cand *)b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Whether g changes the logits by a repetition penalty before sampling. */
static int ollm__penalized(const ollm_generate_config *g) {
    return g->repetition_penalty > 0 && g->repetition_penalty != 1.0f;
}
/* Picks the next token from logits[vocab] in transformers' order of logits processors: repetition penalty,
   temperature, top-k, top-p, min-p; greedy (argmax, lowest id on ties) at temperature 0. The logits are read in
   place; a repetition penalty applies to their copy in work[vocab]. */
static int32_t ollm__sample(const float *in, float *work, int32_t vocab, const int32_t *history,
                            int64_t n_hist, const ollm_generate_config *g, uint64_t *rng, ollm__cand *cand,
                            uint8_t *seen) {
    int32_t i, n = vocab; int64_t h; const float *logits = in;
    if (ollm__penalized(g)) {
        /* CTRL rule (RepetitionPenaltyLogitsProcessor): each distinct token of the context once */
        memcpy(work, in, (size_t)vocab * sizeof *work);
        logits = work;
        memset(seen, 0, (size_t)vocab);
        for (h = 0; h < n_hist; h++) {
            int32_t t = history[h];
            if (t < 0 || t >= vocab || seen[t]) continue;
            seen[t] = 1;
            work[t] = work[t] < 0 ? work[t] * g->repetition_penalty : work[t] / g->repetition_penalty;
        }
    }
    if (!(g->temperature > 0)) return ollm__argmax(logits, vocab);
    for (i = 0; i < vocab; i++) { cand[i].logit = logits[i] / g->temperature; cand[i].id = i; }
    qsort(cand, (size_t)vocab, sizeof *cand, ollm__cand_desc);
    if (g->top_k > 0 && g->top_k < n) n = g->top_k;
    {
        double mx = cand[0].logit, sum = 0, cum = 0, u; int32_t keep = n;
        for (i = 0; i < n; i++) { cand[i].logit = (float)exp((double)cand[i].logit - mx); sum += cand[i].logit; }
        if (g->top_p > 0 && g->top_p < 1) {       /* smallest prefix whose mass reaches top_p; at least one */
            for (i = 0; i < n; i++) { cum += cand[i].logit / sum; if (cum >= g->top_p) { keep = i + 1; break; } }
            n = keep;
        }
        if (g->min_p > 0) {                        /* drop tokens under min_p x the top probability */
            for (i = 1; i < n; i++) if (cand[i].logit < g->min_p * cand[0].logit) { n = i; break; }
        }
        for (sum = 0, i = 0; i < n; i++) sum += cand[i].logit;
        u = (double)(ollm__rng_next(rng) >> 11) * (1.0 / 9007199254740992.0) * sum;
        for (cum = 0, i = 0; i < n - 1; i++) { cum += cand[i].logit; if (u < cum) break; }
        return cand[i].id;
    }
}

/* Emits whole UTF-8 sequences only: bytes of a character split across tokens wait for the rest. */
typedef struct ollm__utf8_stream { char held[8]; int n_held; } ollm__utf8_stream;
static size_t ollm__utf8_complete(const char *p, size_t n) {   /* length of the prefix that ends on a boundary */
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)p[i - 1] & 0xc0) == 0x80) { i--; back++; }
    if (i > 0) {
        unsigned char c = (unsigned char)p[i - 1];
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (c >= 0xc0 && back + 1 < need) return i - 1;   /* the lead byte's sequence is not finished */
    }
    return n;
}

OLLM_API ollm_result ollm_session_generate(ollm_session *s, const ollm_generate_config *gc, int32_t *out_ids,
                                           size_t cap, size_t *n_out) {
    ollm_model *m; ollm_generate_config g; ollm__cand *cand; float *work; uint8_t *seen; uint64_t rng; size_t n = 0;
    int32_t i;
    ollm_result r = OLLM_OK; ollm__utf8_stream us; char buf[1024 + 8];
    if (n_out) *n_out = 0;
    if (!s) return OLLM_ERR_INVALID_ARG;
    m = s->m;
    g = gc ? *gc : ollm_generate_config_default();
    if (g.max_tokens < 0) return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "generate: negative max_tokens");
    OLLM__TRY(ollm__flush_pending(s));
    if (!s->has_logits) return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "generate: feed a prompt first (no logits yet)");
    cand = (ollm__cand *)ollm__calloc((size_t)m->d.vocab, sizeof *cand);
    work = (float *)ollm__calloc((size_t)m->d.vocab, sizeof *work);
    seen = (uint8_t *)ollm__calloc((size_t)m->d.vocab, 1);
    if (!cand || !work || !seen) {
        OLLM_FREE(cand); OLLM_FREE(work); OLLM_FREE(seen);
        return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    }
    rng = g.seed ^ 0x6f6c6c6d2e68ull;
    memset(&us, 0, sizeof us);
    for (;;) {
        int32_t tok; int is_eos = 0, stop;
        if (g.max_tokens && n >= (size_t)g.max_tokens) break;
        /* greedy, logits as they are: picked where they lie (one index comes back) */
        if (!(g.temperature > 0) && !ollm__penalized(&g) && m->B->argmax && s->logits_row >= 0)
            r = m->B->argmax(m->B, ollm__logits_dev(s), m->d.vocab, &tok);
        else if ((r = ollm__logits_host(s)) == OLLM_OK)
            tok = ollm__sample(s->last_logits, work, m->d.vocab, s->tokens, s->n_past, &g, &rng, cand, seen);
        if (r != OLLM_OK) break;
        for (i = 0; i < m->d.n_eos; i++) is_eos |= tok == m->d.eos[i];
        if (out_ids && n < cap) out_ids[n] = tok;
        n++;
        s->pending = tok;   /* in the context from now on; fed lazily so the last token costs nothing */
        if (g.on_token) {
            size_t len = (size_t)us.n_held, whole;
            memcpy(buf, us.held, (size_t)us.n_held);
            len += ollm__tok_bytes(m->tok, tok, 1, buf + len, sizeof buf - 8 - len);
            whole = ollm__utf8_complete(buf, len);
            us.n_held = (int)(len - whole);
            memcpy(us.held, buf + whole, len - whole);
            buf[whole] = 0;
            stop = g.on_token(g.user, tok, buf, whole);
            if (stop) { r = ollm__fail(&m->log, OLLM_ERR_CANCELLED, "generation stopped by the token callback"); break; }
        }
        if (is_eos && !g.ignore_eos) break;
        if (g.max_tokens && n >= (size_t)g.max_tokens) break;    /* the last token stays pending: fed only if needed */
        if ((size_t)s->n_past + 1 >= (size_t)s->n_ctx) break;   /* no room to feed this token and sample another */
        if ((r = ollm__flush_pending(s)) != OLLM_OK) break;
    }
    if (g.on_token && us.n_held && r == OLLM_OK) g.on_token(g.user, -1, us.held, (size_t)us.n_held);  /* invalid tail */
    OLLM_FREE(cand); OLLM_FREE(work); OLLM_FREE(seen);
    if (n_out) *n_out = n;
    if (m->B->profile) m->B->profile(m->B, "generation");
    return r;
}

#endif /* OLLM__IMPLEMENTED */
#endif /* OLLM_IMPLEMENTATION */

/*
MIT License. Copyright (c) 2026 The ollm.h authors. Permission is hereby granted, free of charge, to any person
obtaining a copy of this software and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense,
and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
following conditions: The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
*/
