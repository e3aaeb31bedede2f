/* ollm.h v0.1: run Hugging Face LLMs (Llama-3; GPT-OSS and Qwen3-Next in progress) from their checkpoint
   directories, in one C header. MIT licence (end of file).

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

   ERRORS    Every fallible call returns an ollm_result; ollm_model_last_error(m) holds a message naming the file,
             tensor or field at fault. The library never prints, exits or aborts; logs go to the callback in the
             config. Bad files (truncated, wrong shape, overlapping tensors, malformed JSON) are errors, not crashes.

   THREADS   One thread at a time per handle. Distinct models may be used from distinct threads.

   CONTENTS  @api        public declarations
             @platform   files (pread/pwrite), threads and a worker pool, clocks
             @util       errors, logging, half/bfloat conversion, hashing
             @json       strict JSON parser (UTF-8 validated, depth-limited)
             @safetensors  headers, shards and the index, validated against file sizes
             @config     config.json -> model description; RoPE frequency tables
             @backend    the op interface the model graphs call
             @cpu        the CPU reference backend (fp32 accumulation, pthreads)
             @model      opening a directory: weights checked against the config and loaded
             @graph-llama  the Llama-3 forward pass
             @session    context state, prefill and decode
             @generate   samplers and the generation loop
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
    uint64_t     vram_bytes;  /* GPU memory budget; 0 = free memory at open minus 512 MiB */
    uint64_t     ram_bytes;   /* host memory for weights (CPU backend) or the RAM tier (CUDA); 0 = no limit.
                                 Layers that do not fit are read from disk as they are needed */
    int32_t      stream_depth; /* layers in flight while one computes, when layers stream; 0 = 2 */
    int32_t      max_context;  /* the longest session you will open: the GPU weight planner leaves room for its KV
                                  cache and activations; 0 = min(max_position_embeddings, 8192) */
    int32_t      prefill_chunk; /* prompt tokens per pass over the layers, the sessions' default: weights stream
                                  once per chunk, activations grow with it; 0 = 256 (CPU) or 1024 (CUDA) */
    const char  *cache_dir;   /* compiled-kernel cache; NULL = $XDG_CACHE_HOME/ollm or ~/.cache/ollm */
    const char  *nvrtc_path;  /* NVRTC library to try first; NULL = $OLLM_NVRTC, then the usual names */
    ollm_log_fn  log;         /* receives every level; filter in the callback. NULL = silent */
    void        *log_user;
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
    uint64_t resident_bytes;   /* weights held on the compute device (RAM for the CPU backend) */
    uint64_t slot_bytes;       /* one streaming slot */
    int32_t  ram_layers;       /* streamed layers kept in host RAM (the rest are read from disk) */
    uint64_t ram_bytes;        /* host RAM holding them */
    uint64_t device_peak_bytes; /* most GPU memory allocated at once so far (0 for the CPU backend) */
    uint64_t disk_bytes_read;  /* layer bytes read from disk while running */
    uint64_t upload_bytes;     /* streamed layer bytes copied from host memory to the GPU while running */
    double   stream_wait_s;    /* time compute waited for a layer */
} ollm_model_info;

typedef struct ollm_session_config {
    int32_t          max_context;   /* tokens; 0 = min(model's max_position_embeddings, 8192) */
    int32_t          prefill_chunk; /* tokens per pass over the layers during prefill; 0 = the model config's */
    ollm_progress_fn progress;      /* called after each prefill chunk */
    void            *progress_user;
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
OLLM_API const float *ollm_session_logits(const ollm_session *s);       /* vocab floats; NULL before any token */
OLLM_API size_t      ollm_session_length(const ollm_session *s);        /* tokens in the context */
OLLM_API ollm_result ollm_session_rewind(ollm_session *s, size_t n);    /* keep the first n tokens (n <= length) */
/* Samples up to g->max_tokens tokens, feeding each back. out_ids (may be NULL) receives up to cap ids; *n_out (may be
   NULL) the number generated. Stops early on an eos token (unless ignore_eos), a full context, or a callback. */
OLLM_API ollm_result ollm_session_generate(ollm_session *s, const ollm_generate_config *g, int32_t *out_ids,
                                           size_t cap, size_t *n_out);

#include "wip/tokenizer_api.h"

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

typedef struct ollm__file { int fd; uint64_t size; } ollm__file;

static ollm_result ollm__file_open(ollm__file *f, const char *path) {
    struct stat st;
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);   /* a FIFO must not block the open: refused below */
    f->size = 0;
    if (f->fd < 0) return OLLM_ERR_IO;
    if (fstat(f->fd, &st) != 0) { close(f->fd); f->fd = -1; return OLLM_ERR_IO; }
    if (!S_ISREG(st.st_mode)) { close(f->fd); f->fd = -1; errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL; return OLLM_ERR_IO; }
    f->size = (uint64_t)st.st_size;
    return OLLM_OK;
}
static void ollm__file_close(ollm__file *f) { if (f->fd >= 0) close(f->fd); f->fd = -1; }

/* Reads exactly n bytes at off; EINTR and short reads are retried; end of file is OLLM_ERR_IO. */
static ollm_result ollm__pread_all(int fd, void *buf, uint64_t n, uint64_t off) {
    char *p = (char *)buf;
    while (n > 0) {
        size_t want = n > ((uint64_t)1 << 30) ? ((size_t)1 << 30) : (size_t)n;
        ssize_t r = pread(fd, p, want, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return OLLM_ERR_IO;
        p += r; n -= (uint64_t)r; off += (uint64_t)r;
    }
    return OLLM_OK;
}

/* Test-only fault injection (define OLLM_FAULT_INJECTION): the hook may shorten a write (*n), or fail it with an errno
   value (return nonzero). Production builds compile it away. */
#ifdef OLLM_FAULT_INJECTION
static int (*ollm__io_fault)(int op, int fd, size_t *n);   /* op: 'w' write, 's' sync */
#define OLLM__FAULT(op, fd, n) (ollm__io_fault ? ollm__io_fault((op), (fd), (n)) : 0)
#else
#define OLLM__FAULT(op, fd, n) 0
#endif

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
    if (d->head_dim < 0) {
        if (d->hidden % d->n_heads) { r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d and head_dim is absent", d->hidden, d->n_heads); goto done; }
        d->head_dim = d->hidden / d->n_heads;
    }
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
    if (d->head_dim % 2) { r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: head_dim %d is odd", d->head_dim); goto done; }
    if ((int64_t)d->n_heads * d->head_dim > OLLM__MAX_DIM) { r = ollm__fail(lg, OLLM_ERR_FORMAT, "config.json: heads x head_dim too large"); goto done; }
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

/* ==== @backend ==== the op interface the model graphs call ============================================ */
/* A buffer is memory of one backend: host memory for the CPU, a device address for CUDA. Graphs never touch the
   bytes; they pass buffers (or views into them) to ops. Activations are float32, row-major [T, width]; weights keep
   their checkpoint dtype (BF16, F16 or F32), a Linear weight stored [out, in] = [rows, cols]. */

typedef struct ollm__buf { void *ptr; uint64_t bytes; } ollm__buf;
typedef struct ollm__w { ollm__buf data; uint8_t dtype; int64_t rows, cols; } ollm__w;

static ollm__buf ollm__view(ollm__buf b, uint64_t off, uint64_t bytes) {
    ollm__buf v; v.ptr = (char *)b.ptr + off; v.bytes = bytes; return v;
}

typedef struct ollm__attn_args {
    int T, pos0;                    /* T new queries at positions pos0 .. pos0 + T - 1 */
    int n_heads, n_kv_heads, head_dim;
    int window;                     /* 0 = full causal; W = keys j with i - W < j <= i */
    float scale;                    /* softmax scale, 1/sqrt(head_dim) */
    const ollm__w *sinks;           /* NULL, or one logit per head that joins the softmax and takes no value */
} ollm__attn_args;

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
    /* y[T, W.rows] = x[T, W.cols] W^T, or y += that when accumulate (the residual add) */
    ollm_result (*matmul)(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W, int T, int accumulate);
    /* rotate-half RoPE in place on x[T, n_heads * head_dim], first rot_dim dims of each head, positions pos0 + t */
    ollm_result (*rope)(ollm__backend *b, ollm__buf x, int T, int n_heads, int head_dim, int rot_dim, int pos0,
                        ollm__buf inv_freq, float mscale);
    /* appends k, v [T, n_kv_heads * head_dim] at pos0 into the caches [ctx, n_kv_heads * head_dim] and computes
       o[T, n_heads * head_dim] = softmax(q k^T * scale, causal, window, sinks) v over positions 0 .. pos0 + T - 1 */
    ollm_result (*attention)(ollm__backend *b, ollm__buf o, ollm__buf q, ollm__buf k, ollm__buf v,
                             ollm__buf k_cache, ollm__buf v_cache, const ollm__attn_args *a);
    /* g[n] = silu(g) * u: the SwiGLU of LlamaMLP */
    ollm_result (*silu_mul)(ollm__backend *b, ollm__buf g, ollm__buf u, int64_t n);
    ollm_result (*sync)(ollm__backend *b);
    /* memory accounting: the device budget (0 = none) and the most ever allocated at once */
    uint64_t mem_budget, mem_peak;
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
};

/* ==== @cpu ==== the CPU reference backend: plain loops, fp32 accumulation, a pthread pool ================= */

typedef struct ollm__cpu { ollm__backend b; ollm__pool pool; } ollm__cpu;

static void ollm__to_f32(const void *src, uint8_t dtype, float *dst, int64_t n) {
    int64_t i;
    if (dtype == OLLM__F32) memcpy(dst, src, (size_t)n * 4);
    else if (dtype == OLLM__BF16) { const uint16_t *s = (const uint16_t *)src; for (i = 0; i < n; i++) dst[i] = ollm__bf16_to_f32(s[i]); }
    else { const uint16_t *s = (const uint16_t *)src; for (i = 0; i < n; i++) dst[i] = ollm__f16_to_f32(s[i]); }
}
static const void *ollm__w_row(const ollm__w *w, int64_t r) {
    return (const char *)w->data.ptr + (uint64_t)r * (uint64_t)w->cols * ollm__dtype_size[w->dtype];
}
static float ollm__dot(const float *a, const float *b, int64_t n) {
    float acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 }; int64_t i = 0; int j;
    for (; i + 8 <= n; i += 8)
        for (j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];   /* 8 independent sums: vectorisable, fp32 */
    for (; i < n; i++) acc[0] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
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

/* Matrix product: one task per block of 16 weight rows, converted to fp32 once and reused for every token. */
typedef struct ollm__mm_ctx { float *y; const float *x; const ollm__w *W; int T, accumulate, failed; } ollm__mm_ctx;
#define OLLM__MM_ROWS 16
static void ollm__mm_task(void *vctx, int64_t blk) {
    ollm__mm_ctx *c = (ollm__mm_ctx *)vctx;
    int64_t K = c->W->cols, N = c->W->rows, r0 = blk * OLLM__MM_ROWS, nr = N - r0 < OLLM__MM_ROWS ? N - r0 : OLLM__MM_ROWS, r;
    float *wf = (float *)OLLM_MALLOC((size_t)(nr * K) * 4);
    int t;
    if (!wf) { c->failed = 1; return; }   /* a benign race: every writer stores 1 */
    for (r = 0; r < nr; r++) ollm__to_f32(ollm__w_row(c->W, r0 + r), c->W->dtype, wf + r * K, K);
    for (t = 0; t < c->T; t++) {
        const float *xt = c->x + (int64_t)t * K; float *yt = c->y + (int64_t)t * N + r0;
        for (r = 0; r < nr; r++) {
            float d = ollm__dot(wf + r * K, xt, K);
            yt[r] = c->accumulate ? yt[r] + d : d;
        }
    }
    OLLM_FREE(wf);
}
static ollm_result ollm__cpu_matmul(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W, int T, int accumulate) {
    ollm__mm_ctx c;
    c.y = (float *)y.ptr; c.x = (const float *)x.ptr; c.W = W; c.T = T; c.accumulate = accumulate; c.failed = 0;
    ollm__pool_run(&((ollm__cpu *)b)->pool, (W->rows + OLLM__MM_ROWS - 1) / OLLM__MM_ROWS, ollm__mm_task, &c);
    return c.failed ? OLLM_ERR_NO_MEMORY : OLLM_OK;
}

static ollm_result ollm__cpu_rope(ollm__backend *b, ollm__buf x, int T, int n_heads, int head_dim, int rot_dim,
                                  int pos0, ollm__buf inv_freq, float mscale) {
    int t, h, i, half = rot_dim / 2; const float *inv = (const float *)inv_freq.ptr; (void)b;
    for (t = 0; t < T; t++)
        for (i = 0; i < half; i++) {
            float ang = (float)(pos0 + t) * inv[i];          /* fp32 angle, as transformers' position @ inv_freq */
            float c = cosf(ang) * mscale, s = sinf(ang) * mscale;
            for (h = 0; h < n_heads; h++) {
                float *xh = (float *)x.ptr + ((int64_t)t * n_heads + h) * head_dim;
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
    int kvh = h / (a->n_heads / a->n_kv_heads), kvw = a->n_kv_heads * hd, j0 = 0;
    const float *q = c->q + ((int64_t)t * a->n_heads + h) * hd;
    float *o = c->o + ((int64_t)t * a->n_heads + h) * hd, *p, mx = -INFINITY, sum = 0;
    if (a->window > 0 && i - a->window + 1 > 0) j0 = i - a->window + 1;
    p = (float *)OLLM_MALLOC((size_t)(i - j0 + 1) * 4);
    if (!p) { c->failed = 1; return; }
    for (j = j0; j <= i; j++) {
        p[j - j0] = ollm__dot(q, c->kc + (int64_t)j * kvw + kvh * hd, hd) * a->scale;
        if (p[j - j0] > mx) mx = p[j - j0];
    }
    if (c->sinks && c->sinks[h] > mx) mx = c->sinks[h];
    for (j = j0; j <= i; j++) { p[j - j0] = expf(p[j - j0] - mx); sum += p[j - j0]; }
    if (c->sinks) sum += expf(c->sinks[h] - mx);   /* the sink takes probability, adds no value */
    for (d = 0; d < hd; d++) o[d] = 0;
    for (j = j0; j <= i; j++) {
        const float *v = c->vc + (int64_t)j * kvw + kvh * hd; float w = p[j - j0] / sum;
        for (d = 0; d < hd; d++) o[d] += w * v[d];
    }
    OLLM_FREE(p);
}
static ollm_result ollm__cpu_attention(ollm__backend *b, ollm__buf o, ollm__buf q, ollm__buf k, ollm__buf v,
                                       ollm__buf k_cache, ollm__buf v_cache, const ollm__attn_args *a) {
    ollm__att_ctx c; uint64_t row = (uint64_t)a->n_kv_heads * a->head_dim * 4;
    float sinks[4096];
    memcpy((char *)k_cache.ptr + (uint64_t)a->pos0 * row, k.ptr, (size_t)(row * (uint64_t)a->T));
    memcpy((char *)v_cache.ptr + (uint64_t)a->pos0 * row, v.ptr, (size_t)(row * (uint64_t)a->T));
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
    *out = &c->b;
    ollm__logf(lg, OLLM_LOG_INFO, "CPU backend: %d threads", c->pool.n_threads);
    return OLLM_OK;
}

/* ==== @tokenizer ==== byte-level BPE from tokenizer.json, chat formats ===================================== */
#include "wip/tokenizer.h"

/* ==== @cuda ==== Driver API and NVRTC loaded at run time; kernels from kernels.cu.inc ===================== */
#include "wip/cuda.h"

/* ==== @model ==== model and session state; tensors loaded and checked against the config ================= */

typedef struct ollm__family ollm__family;
typedef struct ollm__tent { ollm__w *w; const ollm__tensor *t; int layer; uint64_t off; } ollm__tent;  /* bound tensor */
typedef struct ollm__streamer ollm__streamer;

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
    int32_t chunk;               /* the sessions' default prefill chunk */
    ollm__tent *ent; int n_ent, cap_ent;        /* every bound tensor, in binding order */
    ollm__streamer *stream;      /* NULL when every layer is resident */
};

struct ollm_session {
    ollm_model *m;
    ollm_session_config cfg;
    int32_t n_ctx, chunk;
    int64_t n_past;              /* tokens whose state (K and V, or recurrent state) is in the session */
    int32_t *tokens;             /* the context's ids (repetition penalty, rewind) */
    ollm__buf *k_cache, *v_cache;             /* per layer; empty for layers without KV */
    ollm__buf x, xn, q, k, v, o, g, u, logits;   /* activations for one chunk */
    float *last_logits; int has_logits;
    int32_t pending;             /* a generated token not yet fed, or -1 */
    void *fs;                    /* the family's own session state, or NULL */
    int kv_fd;                   /* the session folder's record log (kv.bin), or -1 */
    uint64_t log_end;            /* bytes of kv.bin the committed header covers */
    int64_t disk_len;            /* tokens the committed header holds */
};

/* A model family: how to read its config, which tensors it needs, the session state it keeps and its forward pass.
   Adding a family is adding one of these to ollm__families. */
typedef ollm_result (*ollm__tensor_fn)(ollm_model *m, ollm__w *slot, const char *name, int64_t rows, int64_t cols);
struct ollm__family {
    const char *model_type;                                                           /* config.json model_type */
    ollm_result (*config)(const ollm__json *j, ollm__desc *d, ollm__log *lg);         /* the family's fields */
    size_t (*weights_size)(const ollm__desc *d);                                      /* bytes of its weight struct */
    ollm_result (*tensors)(ollm_model *m, ollm__tensor_fn fn);                        /* bind every tensor */
    ollm_result (*session_init)(ollm_session *s);                                     /* caches and activations */
    void (*session_free)(ollm_session *s);                                            /* NULL: nothing of its own */
    ollm_result (*forward)(ollm_session *s, const int32_t *ids, int T, float *logits_all);
    int cpu_only;                /* its ops exist only in the CPU backend: AUTO picks the CPU */
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
    const ollm__tensor *t = ollm__st_find(&m->st, name); ollm_result r = OLLM_OK; int i, same;
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
    if (m->ent[m->n_ent].layer >= m->d.n_layers) m->ent[m->n_ent].layer = -1;
    m->n_ent++;
    (void)r;
    return OLLM_OK;
}
#define OLLM__FLOAT_DTYPES ((1u << OLLM__BF16) | (1u << OLLM__F16) | (1u << OLLM__F32))
/* A floating-point matrix [rows, cols], or a vector [rows] when cols == 0: the common case. */
static ollm_result ollm__bind(ollm_model *m, ollm__w *w, const char *name, int64_t rows, int64_t cols) {
    int64_t shape[2]; shape[0] = rows; shape[1] = cols;
    OLLM__TRY(ollm__bind_shaped(m, w, name, OLLM__FLOAT_DTYPES, cols ? 2 : 1, shape));
    if (!cols) { w->rows = 1; w->cols = rows; }
    return OLLM_OK;
}

/* ==== @tiers ==== where each weight lives: resident, or streamed per layer from RAM or disk ===================== */
/* Tensors outside model.layers.N (embeddings, final norm, head) are always resident on the compute device. A layer's
   tensors form one block. The planner keeps as many blocks resident as the budget allows (first layers first);
   the rest stream through `depth` slots: an I/O thread reads layer l+1.. into free slots while layer l computes, so
   compute waits only when the disk is slower than the math. Slots keep their layer until reused, so when the
   streamed layers fit the slots they are read once. */

#define OLLM__ALIGN 256u
enum { OLLM__SLOT_FREE, OLLM__SLOT_LOADING, OLLM__SLOT_READY, OLLM__SLOT_IN_USE, OLLM__SLOT_ERROR };

struct ollm__streamer {
    int n_slots;
    ollm__buf slot[8];             /* backend memory the layer is computed from */
    char *stage[8];                /* host memory the I/O thread reads into (== slot memory on host backends) */
    uint8_t stage_pinned[8];       /* stage[k] came from the backend's host_alloc */
    int slot_layer[8], slot_state[8], slot_errno[8];
    uint64_t slot_tick[8], tick;
    int *block_first, *block_count; /* entries of each layer in m->ent (sorted by layer) */
    uint64_t *block_bytes;
    uint8_t *resident;              /* per layer */
    char **host_copy;               /* per streamed layer: its block in host RAM (the RAM tier), or NULL (disk) */
    uint8_t *host_pinned;           /* per layer: host_copy came from the backend's host_alloc */
    int slot_uploaded[8];           /* the layer whose bytes the device slot holds (non-host backends), or -1 */
    const ollm_model *m;
    pthread_t io; pthread_mutex_t mu; pthread_cond_t cv; int quit, started;
    uint64_t bytes_read, bytes_uploaded; double wait_s;
};

static ollm_result ollm__read_tensor(ollm_model *m, const ollm__tensor *t, void *dst) {
    if (ollm__pread_all(m->st.files[t->file].fd, dst, t->nbytes, t->offset) != OLLM_OK)
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot read tensor '%s' (%s)", m->st.file_names[t->file], t->name,
                          strerror(errno));
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
    if (m->B->host) return ollm__read_tensor(m, t, e->w->data.ptr);
    {
        void *tmp = OLLM_MALLOC((size_t)t->nbytes ? (size_t)t->nbytes : 1);
        if (!tmp) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "no host memory to stage tensor '%s'", t->name);
        r = ollm__read_tensor(m, t, tmp);
        if (r == OLLM_OK && (r = m->B->upload(m->B, e->w->data, tmp, t->nbytes)) != OLLM_OK)
            ollm__fail(&m->log, r, "cannot upload tensor '%s'", t->name);
        OLLM_FREE(tmp);
        return r;
    }
}

static void *ollm__io_main(void *arg) {
    ollm__streamer *st = (ollm__streamer *)arg; const ollm_model *m = st->m; int k, i;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        int job = -1;
        for (k = 0; k < st->n_slots && job < 0; k++) if (st->slot_state[k] == OLLM__SLOT_LOADING) job = k;
        if (job < 0) { if (st->quit) break; pthread_cond_wait(&st->cv, &st->mu); continue; }
        {
            int l = st->slot_layer[job], err = 0; char *dst = st->stage[job];
            pthread_mutex_unlock(&st->mu);
            for (i = st->block_first[l]; i < st->block_first[l] + st->block_count[l] && !err; i++) {
                const ollm__tent *e = &m->ent[i];
                if (ollm__pread_all(m->st.files[e->t->file].fd, dst + e->off, e->t->nbytes, e->t->offset) != OLLM_OK)
                    err = errno ? errno : EIO;
            }
            pthread_mutex_lock(&st->mu);
            st->slot_errno[job] = err;
            st->slot_state[job] = err ? OLLM__SLOT_ERROR : OLLM__SLOT_READY;
            st->bytes_read += err ? 0 : st->block_bytes[l];
            pthread_cond_broadcast(&st->cv);
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static int ollm__ent_layer_cmp(const void *a, const void *b) {
    const ollm__tent *x = (const ollm__tent *)a, *y = (const ollm__tent *)b;
    return x->layer != y->layer ? (x->layer < y->layer ? -1 : 1) : (x->t < y->t ? -1 : x->t > y->t);
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
    OLLM_FREE(st->block_first); OLLM_FREE(st->block_count); OLLM_FREE(st->block_bytes); OLLM_FREE(st->resident);
    OLLM_FREE(st); m->stream = NULL;
}

/* Places every bound tensor: global ones and the resident layers on the compute device, the others streamed. */
static ollm_result ollm__tiers_place(ollm_model *m) {
    int L = m->d.n_layers, i, l, k, n_stream = 0, depth = m->cfg.stream_depth > 0 ? m->cfg.stream_depth : 2;
    uint64_t budget = m->B->host ? m->cfg.ram_bytes : 0, global = 0, all = 0, max_block = 0, used, ram_used = 0;
    ollm__streamer *st;
    if (depth > 8) depth = 8;
    qsort(m->ent, (size_t)m->n_ent, sizeof *m->ent, ollm__ent_layer_cmp);   /* globals (-1) first, then by layer */
    if (!(st = (ollm__streamer *)ollm__calloc(1, sizeof *st))) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    m->stream = st; st->m = m;
    st->block_first = (int *)ollm__calloc((size_t)L, sizeof(int)); st->block_count = (int *)ollm__calloc((size_t)L, sizeof(int));
    st->block_bytes = (uint64_t *)ollm__calloc((size_t)L, sizeof(uint64_t)); st->resident = (uint8_t *)ollm__calloc((size_t)L, 1);
    if (!st->block_first || !st->block_count || !st->block_bytes || !st->resident)
        return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    for (i = 0; i < m->n_ent; i++) {
        ollm__tent *e = &m->ent[i];
        if (e->layer < 0) { global += e->t->nbytes; continue; }
        if (st->block_count[e->layer]++ == 0) st->block_first[e->layer] = i;
        e->off = st->block_bytes[e->layer];
        st->block_bytes[e->layer] += (e->t->nbytes + OLLM__ALIGN - 1) / OLLM__ALIGN * OLLM__ALIGN;
    }
    for (l = 0; l < L; l++) { all += st->block_bytes[l]; if (st->block_bytes[l] > max_block) max_block = st->block_bytes[l]; }
    if (!m->B->host && m->B->mem_budget) {
        /* the GPU holds weights within its budget less what sessions need (KV cache, activations, scratch) */
        const ollm__desc *c = &m->d; uint64_t reserve, T = (uint64_t)m->chunk;
        uint64_t ctx = (uint64_t)(m->cfg.max_context > 0 ? m->cfg.max_context : c->max_pos < 8192 ? c->max_pos : 8192);
        reserve = 2ull * m->B->kv_elem * (uint64_t)c->n_kv_heads * c->head_dim * (uint64_t)L * ctx +
                  T * 4 * (2ull * c->hidden + 2ull * c->n_heads * c->head_dim + 2ull * c->n_kv_heads * c->head_dim +
                           2ull * (c->ffn > c->moe_ffn ? c->ffn : c->moe_ffn)) + 4ull * c->vocab + (256ull << 20);
        budget = m->B->mem_budget > reserve ? m->B->mem_budget - reserve : 1;
    }
    /* resident first layers while the rest, plus the slots, still fit */
    used = global;
    if (budget && global + all > budget) {
        if (global + (uint64_t)depth * max_block > budget)
            return ollm__fail(&m->log, OLLM_ERR_BUDGET, "weights budget %.2f GB is less than the %.2f GB of embeddings and head "
                              "plus %d streaming slots of %.2f GB", (double)budget / 1e9, (double)global / 1e9, depth,
                              (double)max_block / 1e9);
        for (l = 0; l < L; l++)
            if (used + st->block_bytes[l] + (uint64_t)depth * max_block <= budget) { st->resident[l] = 1; used += st->block_bytes[l]; }
            else break;
    } else memset(st->resident, 1, (size_t)L);
    for (i = 0; i < m->n_ent; i++)
        if (m->ent[i].layer < 0 || st->resident[m->ent[i].layer]) OLLM__TRY(ollm__load_resident(m, &m->ent[i]));
    for (l = 0; l < L; l++) n_stream += !st->resident[l];
    m->info.resident_layers = L - n_stream; m->info.streamed_layers = n_stream; m->info.resident_bytes = used;
    if (n_stream == 0) { ollm__streamer_free(m); m->info.resident_bytes = global + all; return OLLM_OK; }
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
            for (i = st->block_first[l]; i < st->block_first[l] + st->block_count[l]; i++)
                OLLM__TRY(ollm__read_tensor(m, m->ent[i].t, h + m->ent[i].off));
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
    pthread_mutex_init(&st->mu, NULL); pthread_cond_init(&st->cv, NULL);
    if (pthread_create(&st->io, NULL, ollm__io_main, st) != 0) {
        pthread_mutex_destroy(&st->mu); pthread_cond_destroy(&st->cv);
        return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "cannot start the I/O thread");
    }
    st->started = 1;
    m->info.stream_slots = st->n_slots; m->info.slot_bytes = max_block;
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
    r = m->B->upload_async ? m->B->upload_async(m->B, k, st->slot[k], src, st->block_bytes[l])
                           : m->B->upload(m->B, st->slot[k], src, st->block_bytes[l]);
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
        int e = st->slot_errno[slot];
        st->slot_state[slot] = OLLM__SLOT_FREE; st->slot_layer[slot] = -1;
        pthread_mutex_unlock(&st->mu);
        return ollm__fail(&m->log, OLLM_ERR_IO, "cannot read layer %d from disk: %s", l, strerror(e));
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

/* Session buffers every family uses: the KV cache of layer l for `rows` positions, and the activations of one chunk
   (x, xn: hidden; q, o: qw; k, v: kvw; g, u: ffw; logits: vocab). */
static ollm_result ollm__session_kv(ollm_session *s, int l, int64_t rows) {
    ollm__backend *B = s->m->B; uint64_t row = (uint64_t)s->m->d.n_kv_heads * s->m->d.head_dim * B->kv_elem;
    ollm_result r = B->alloc(B, row * (uint64_t)rows, &s->k_cache[l]);
    if (r == OLLM_OK) r = B->alloc(B, row * (uint64_t)rows, &s->v_cache[l]);
    return r;
}
static ollm_result ollm__session_acts(ollm_session *s, int64_t qw, int64_t kvw, int64_t ffw) {
    ollm__backend *B = s->m->B; const ollm__desc *c = &s->m->d; uint64_t T = (uint64_t)s->chunk; ollm_result r = OLLM_OK;
#define OLLM__ACT(buf, width) if (r == OLLM_OK) r = B->alloc(B, T * (uint64_t)(width) * 4, &s->buf)
    OLLM__ACT(x, c->hidden); OLLM__ACT(xn, c->hidden); OLLM__ACT(q, qw); OLLM__ACT(o, qw);
    OLLM__ACT(k, kvw); OLLM__ACT(v, kvw); OLLM__ACT(g, ffw); OLLM__ACT(u, ffw);
#undef OLLM__ACT
    if (r == OLLM_OK) r = B->alloc(B, (uint64_t)c->vocab * 4, &s->logits);   /* one row; grown when all are asked for */
    return r;
}
/* Room for `rows` rows of logits (prefill asking for every position's logits). */
static ollm_result ollm__session_logits_rows(ollm_session *s, int rows) {
    ollm__backend *B = s->m->B; uint64_t need = (uint64_t)rows * s->m->d.vocab * 4;
    if (s->logits.bytes >= need) return OLLM_OK;
    B->release(B, &s->logits);
    return B->alloc(B, need, &s->logits);
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
   it loads into. Loading (ollm__bind) and the random-checkpoint writer (tools/) both walk this one list. */
static ollm_result ollm__llama_tensors(ollm_model *m, ollm__tensor_fn fn) {
    const ollm__desc *c = &m->d; char name[256]; int l; ollm__llama *w = (ollm__llama *)m->fw;
    int64_t H = c->hidden, qw = (int64_t)c->n_heads * c->head_dim, kw = (int64_t)c->n_kv_heads * c->head_dim;
    OLLM__TRY(fn(m, &w->embed_tokens, "model.embed_tokens.weight", c->vocab, H));
    OLLM__TRY(fn(m, &w->norm, "model.norm.weight", H, 0));
    if (!c->tie_embeddings) OLLM__TRY(fn(m, &w->lm_head, "lm_head.weight", c->vocab, H));
    for (l = 0; l < c->n_layers; l++) {
        ollm__llama_layer *L = &w->layers[l];
#define OLLM__T(field, suffix, rows, cols) \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        OLLM__TRY(fn(m, &L->field, name, rows, cols))
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
    for (l = 0; l < c->n_layers; l++) OLLM__TRY(ollm__session_kv(s, l, s->n_ctx));
    return ollm__session_acts(s, c->n_heads * c->head_dim, c->n_kv_heads * c->head_dim, c->ffn);
}
/* T tokens at positions n_past.. : h = x + Wo Attn(RoPE(Wq n1), RoPE(Wk n1), Wv n1), n1 = RMSNorm(x);
   x = h + Wd (silu(Wg n2) * Wu n2), n2 = RMSNorm(h). Then the final norm and the head on the rows asked for. */
static ollm_result ollm__llama_forward(ollm_session *s, const int32_t *ids, int T, float *logits_all) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; const ollm__llama *w = (const ollm__llama *)m->fw;
    int H = c->hidden, l, rows = logits_all ? T : 1; float eps = (float)c->rms_eps;
    ollm__attn_args a;
    memset(&a, 0, sizeof a);
    a.T = T; a.pos0 = (int)s->n_past; a.n_heads = c->n_heads; a.n_kv_heads = c->n_kv_heads; a.head_dim = c->head_dim;
    a.scale = 1.0f / sqrtf((float)c->head_dim);
    OLLM__TRY(B->embed(B, s->x, &w->embed_tokens, ids, T));
    for (l = 0; l < c->n_layers; l++) {
        const ollm__llama_layer *L = &w->layers[l];
        OLLM__TRY(ollm__layer_acquire(m, l));                                       /* waits only if still in flight */
        OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->input_layernorm, T, H, eps, 0));
        OLLM__TRY(B->matmul(B, s->q, s->xn, &L->q_proj, T, 0));
        OLLM__TRY(B->matmul(B, s->k, s->xn, &L->k_proj, T, 0));
        OLLM__TRY(B->matmul(B, s->v, s->xn, &L->v_proj, T, 0));
        OLLM__TRY(B->rope(B, s->q, T, c->n_heads, c->head_dim, m->rot_dim, a.pos0, m->inv_freq, m->mscale));
        OLLM__TRY(B->rope(B, s->k, T, c->n_kv_heads, c->head_dim, m->rot_dim, a.pos0, m->inv_freq, m->mscale));
        OLLM__TRY(B->attention(B, s->o, s->q, s->k, s->v, s->k_cache[l], s->v_cache[l], &a));
        OLLM__TRY(B->matmul(B, s->x, s->o, &L->o_proj, T, 1));                     /* x += o Wo^T */
        OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->post_attention_layernorm, T, H, eps, 0));
        OLLM__TRY(B->matmul(B, s->g, s->xn, &L->gate_proj, T, 0));
        OLLM__TRY(B->matmul(B, s->u, s->xn, &L->up_proj, T, 0));
        OLLM__TRY(B->silu_mul(B, s->g, s->u, (int64_t)T * c->ffn));
        OLLM__TRY(B->matmul(B, s->x, s->g, &L->down_proj, T, 1));                  /* x += mlp */
        ollm__layer_release(m, l);                                                  /* its slot may take layer l + depth */
    }
    /* the head only on the rows whose logits are wanted: all of them, or the last */
    OLLM__TRY(B->rmsnorm(B, s->xn, ollm__view(s->x, (uint64_t)(T - rows) * H * 4, (uint64_t)rows * H * 4),
                         &w->norm, rows, H, eps, 0));
    OLLM__TRY(B->matmul(B, s->logits, s->xn, c->tie_embeddings ? &w->embed_tokens : &w->lm_head, rows, 0));
    if (logits_all) OLLM__TRY(B->download(B, logits_all, s->logits, (uint64_t)rows * c->vocab * 4));
    OLLM__TRY(B->download(B, s->last_logits, ollm__view(s->logits, (uint64_t)(rows - 1) * c->vocab * 4,
                                                         (uint64_t)c->vocab * 4), (uint64_t)c->vocab * 4));
    return OLLM_OK;
}

/* ==== @graph-gpt-oss ==== */
#include "wip/gpt_oss.h"

/* ==== @graph-qwen3-next ==== */
#include "wip/qwen3_next.h"

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

static ollm_result ollm__store_header(ollm_session *s, int64_t n_tokens, int has_logits) {
    ollm_model *m = s->m; char path[4200], tmp[4300]; ollm__kv_hdr h; int fd, dfd; ollm_result r;
    memset(&h, 0, sizeof h);
    h.magic = OLLM__HDR_MAGIC; h.version = OLLM__KV_VERSION; h.fingerprint = m->fingerprint;
    h.n_layers = (uint32_t)m->d.n_layers; h.kv_row_bytes = (uint32_t)ollm__kv_row(s); h.vocab = (uint32_t)m->d.vocab;
    h.has_logits = (uint32_t)!!has_logits; h.n_tokens = (uint64_t)n_tokens; h.log_bytes = s->log_end;
    h.logits_hash = ollm__fnv1a64(OLLM__FNV_INIT, s->last_logits, (size_t)m->d.vocab * 4);
    h.hash = ollm__fnv1a64(OLLM__FNV_INIT, &h, offsetof(ollm__kv_hdr, hash));
    snprintf(path, sizeof path, "%s/session.hdr", s->cfg.dir);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    r = ollm__pwrite_all(fd, &h, sizeof h, 0);
    if (r == OLLM_OK) r = ollm__pwrite_all(fd, s->last_logits, (uint64_t)m->d.vocab * 4, sizeof h);
    if (r == OLLM_OK) r = ollm__fsync(fd);
    close(fd);
    if (r != OLLM_OK || rename(tmp, path) != 0) {
        int e = errno; unlink(tmp);
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot write the session header: %s", path, strerror(e));
    }
    if ((dfd = open(s->cfg.dir, O_RDONLY | O_CLOEXEC)) >= 0) { fsync(dfd); close(dfd); }   /* make the rename durable */
    s->disk_len = n_tokens;
    return OLLM_OK;
}

/* Commits tokens [start, start + n): called after their forward pass, before n_past moves past them. */
static ollm_result ollm__store_commit(ollm_session *s, int64_t start, int64_t n) {
    ollm_model *m = s->m; ollm__backend *B = m->B; uint64_t row = ollm__kv_row(s), bytes = 0, off, h = OLLM__FNV_INIT;
    ollm__kv_rec rec; char *buf, *p; int l; ollm_result r;
    for (l = 0; l < m->d.n_layers; l++) if (s->k_cache[l].bytes) bytes += 2 * row * (uint64_t)n;
    bytes += (uint64_t)n * 4;
    if (!(buf = (char *)OLLM_MALLOC((size_t)bytes))) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    p = buf;
    memcpy(p, s->tokens + start, (size_t)n * 4); p += n * 4;
    for (l = 0; l < m->d.n_layers; l++) {
        if (!s->k_cache[l].bytes) continue;
        if ((r = B->download(B, p, ollm__view(s->k_cache[l], (uint64_t)start * row, row * (uint64_t)n), row * (uint64_t)n)) != OLLM_OK ||
            (r = B->download(B, p + row * (uint64_t)n, ollm__view(s->v_cache[l], (uint64_t)start * row, row * (uint64_t)n), row * (uint64_t)n)) != OLLM_OK) {
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

/* Opens (creating if needed) the session folder; an existing session is checked and loaded. */
static ollm_result ollm__store_open(ollm_session *s) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const char *dir = s->cfg.dir; char path[4200];
    ollm__kv_hdr h; ollm__file hf; uint64_t row = ollm__kv_row(s), off = 0; int64_t cur = 0; char *buf = NULL;
    ollm_result r = OLLM_OK;
    if (m->fam->session_free)
        return ollm__fail(&m->log, OLLM_ERR_UNSUPPORTED, "session folders are not supported for %s yet", m->fam->model_type);
    if (strlen(dir) > 4000) return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "session folder path too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot create the session folder: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/kv.bin", dir);
    if ((s->kv_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
        return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/session.hdr", dir);
    if (ollm__file_open(&hf, path) != OLLM_OK) {
        if (errno != ENOENT) return ollm__fail(&m->log, OLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        s->log_end = 0;
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
    r = ollm__pread_all(hf.fd, s->last_logits, (uint64_t)m->d.vocab * 4, sizeof h);
    ollm__file_close(&hf);
    if (r != OLLM_OK || h.logits_hash != ollm__fnv1a64(OLLM__FNV_INIT, s->last_logits, (size_t)m->d.vocab * 4))
        return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: damaged logits in the session header", path);
    /* replay the records the header covers */
    while (off < h.log_bytes) {
        ollm__kv_rec rec; uint64_t want = 0, n; int l; char *p;
        if (h.log_bytes - off < sizeof rec || ollm__pread_all(s->kv_fd, &rec, sizeof rec, off) != OLLM_OK ||
            rec.magic != OLLM__KV_MAGIC || rec.hash != ollm__fnv1a64(OLLM__FNV_INIT, &rec, offsetof(ollm__kv_rec, hash)) ||
            rec.start > (uint64_t)cur || rec.n == 0 || rec.n > (uint64_t)s->n_ctx - rec.start) {
            r = ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s/kv.bin: damaged record at byte %llu", dir, (unsigned long long)off);
            break;
        }
        n = rec.n;
        for (l = 0; l < m->d.n_layers; l++) if (s->k_cache[l].bytes) want += 2 * row * n;
        want += n * 4;
        if (rec.payload_bytes != want || want > h.log_bytes - off - sizeof rec) {
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
        memcpy(s->tokens + rec.start, p, (size_t)n * 4); p += n * 4;
        for (l = 0; l < (int)h.n_layers; l++) {
            if (!s->k_cache[l].bytes) continue;
            if ((r = B->upload(B, ollm__view(s->k_cache[l], rec.start * row, row * n), p, row * n)) != OLLM_OK ||
                (r = B->upload(B, ollm__view(s->v_cache[l], rec.start * row, row * n), p + row * n, row * n)) != OLLM_OK)
                break;
            p += 2 * row * n;
        }
        if (r != OLLM_OK) { ollm__fail(&m->log, r, "session: cannot place the KV cache"); break; }
        cur = (int64_t)(rec.start + n);
        off += sizeof rec + want;
    }
    OLLM_FREE(buf);
    if (r != OLLM_OK) return r;
    if ((uint64_t)cur < h.n_tokens)
        return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: header claims %llu tokens, the records hold %lld", dir,
                          (unsigned long long)h.n_tokens, (long long)cur);
    for (cur = 0; cur < (int64_t)h.n_tokens; cur++)
        if (s->tokens[cur] < 0 || s->tokens[cur] >= m->d.vocab)
            return ollm__fail(&m->log, OLLM_ERR_FORMAT, "%s: token %lld is outside the vocabulary", dir, (long long)cur);
    s->log_end = h.log_bytes; s->n_past = s->disk_len = (int64_t)h.n_tokens; s->has_logits = h.has_logits && h.n_tokens;
    ollm__logf(&m->log, OLLM_LOG_INFO, "%s: resumed a session of %lld tokens", dir, (long long)s->n_past);
    return OLLM_OK;
}

/* ==== @open ==== the family table; opening and closing models and sessions =============================== */

static const ollm__family ollm__families[] = {
    { "llama", ollm__llama_config, ollm__llama_weights_size, ollm__llama_tensors, ollm__llama_session_init, NULL,
      ollm__llama_forward, 0 },
    OLLM__FAMILIES_WIP_GPT_OSS OLLM__FAMILIES_WIP_QWEN3_NEXT
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

static ollm_result ollm__backend_create(ollm_model *m) {
    ollm_backend want = m->cfg.backend;
    if (want == OLLM_BACKEND_AUTO && m->fam->cpu_only)
        ollm__logf(&m->log, OLLM_LOG_INFO, "%s runs on the CPU backend only (no CUDA kernels for it yet)", m->fam->model_type);
    else if (want == OLLM_BACKEND_CUDA && m->fam->cpu_only)
        return ollm__fail(&m->log, OLLM_ERR_UNSUPPORTED, "%s has no CUDA kernels yet: use the CPU backend", m->fam->model_type);
    else if (want == OLLM_BACKEND_CUDA || want == OLLM_BACKEND_AUTO) {
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
    m->chunk = m->cfg.prefill_chunk > 0 ? m->cfg.prefill_chunk : m->B->host ? 256 : 1024;
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
    if ((r = m->fam->tensors(m, ollm__bind)) != OLLM_OK) return r;
    if ((r = ollm__tiers_place(m)) != OLLM_OK) return r;
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
    if (m->B) ollm__streamer_free(m);
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
    if ((st = m->stream) != NULL) {   /* refresh the counters the I/O thread keeps */
        ollm_model_info *info = (ollm_model_info *)&m->info;
        pthread_mutex_lock(&st->mu);
        info->disk_bytes_read = st->bytes_read; info->stream_wait_s = st->wait_s; info->upload_bytes = st->bytes_uploaded;
        pthread_mutex_unlock(&st->mu);
    }
    return &m->info;
}

OLLM_API ollm_session_config ollm_session_config_default(void) { ollm_session_config c; memset(&c, 0, sizeof c); return c; }

OLLM_API void ollm_session_close(ollm_session *s) {
    int l; ollm__backend *B;
    if (!s) return;
    B = s->m->B;
    if (s->k_cache) for (l = 0; l < s->m->d.n_layers; l++) { B->release(B, &s->k_cache[l]); B->release(B, &s->v_cache[l]); }
    OLLM_FREE(s->k_cache); OLLM_FREE(s->v_cache);
    B->release(B, &s->x); B->release(B, &s->xn); B->release(B, &s->q); B->release(B, &s->k); B->release(B, &s->v);
    B->release(B, &s->o); B->release(B, &s->g); B->release(B, &s->u); B->release(B, &s->logits);
    if (s->fs && s->m->fam->session_free) s->m->fam->session_free(s);
    if (s->kv_fd >= 0) close(s->kv_fd);
    OLLM_FREE(s->last_logits); OLLM_FREE(s->tokens);
    OLLM_FREE(s);
}

OLLM_API ollm_result ollm_session_open(ollm_model *m, const ollm_session_config *cfg, ollm_session **out) {
    ollm_session *s; const ollm__desc *c; ollm_result r = OLLM_OK; uint64_t kvrow;
    if (!out) return OLLM_ERR_INVALID_ARG;
    *out = NULL;
    if (!m || !m->info.arch) return OLLM_ERR_INVALID_ARG;
    c = &m->d;
    m->log.err[0] = 0;
    s = (ollm_session *)ollm__calloc(1, sizeof *s);
    if (!s) return ollm__fail(&m->log, OLLM_ERR_NO_MEMORY, "out of memory");
    s->m = m; s->pending = -1; s->kv_fd = -1;
    if (cfg) s->cfg = *cfg;
    if (s->cfg.max_context < 0 || s->cfg.prefill_chunk < 0) {
        OLLM_FREE(s); return ollm__fail(&m->log, OLLM_ERR_INVALID_ARG, "session: negative max_context or prefill_chunk");
    }
    s->n_ctx = s->cfg.max_context ? s->cfg.max_context : (c->max_pos < 8192 ? c->max_pos : 8192);
    s->chunk = s->cfg.prefill_chunk ? s->cfg.prefill_chunk : m->chunk;
    if (s->chunk > s->n_ctx) s->chunk = s->n_ctx;
    kvrow = (uint64_t)c->n_kv_heads * c->head_dim * m->B->kv_elem;
    s->k_cache = (ollm__buf *)ollm__calloc((size_t)c->n_layers, sizeof(ollm__buf));
    s->v_cache = (ollm__buf *)ollm__calloc((size_t)c->n_layers, sizeof(ollm__buf));
    s->tokens = (int32_t *)ollm__calloc((size_t)s->n_ctx, sizeof(int32_t));
    s->last_logits = (float *)ollm__calloc((size_t)c->vocab, sizeof(float));
    if (!s->k_cache || !s->v_cache || !s->tokens || !s->last_logits) r = OLLM_ERR_NO_MEMORY;
    if (r == OLLM_OK) r = m->fam->session_init(s);
    if (r == OLLM_ERR_BUDGET && s->chunk > 64) {   /* activations too large for the budget: smaller chunks */
        ollm_session_config smaller = s->cfg;
        smaller.prefill_chunk = s->chunk / 2;
        ollm_session_close(s);
        ollm__logf(&m->log, OLLM_LOG_WARN, "session: prefill chunk %d does not fit the memory budget; trying %d",
                   smaller.prefill_chunk * 2, smaller.prefill_chunk);
        return ollm_session_open(m, &smaller, out);
    }
    if (r != OLLM_OK) {
        int32_t n_ctx = s->n_ctx;
        ollm_session_close(s);
        if (r != OLLM_ERR_NO_MEMORY && r != OLLM_ERR_BUDGET && m->log.err[0]) return r;   /* the family said why */
        return ollm__fail(&m->log, r, "session: cannot allocate the KV cache (up to %.1f MB) and activations for %d tokens",
                          (double)kvrow * 2.0 * c->n_layers * (double)n_ctx / 1e6, (int)n_ctx);
    }
    if (s->cfg.dir && (r = ollm__store_open(s)) != OLLM_OK) { ollm_session_close(s); return r; }
    *out = s;
    return OLLM_OK;
}

/* Runs ids through the model in chunks; n_past advances per completed chunk, so an error or a cancel leaves the
   session valid up to the last completed chunk. */
static ollm_result ollm__feed(ollm_session *s, const int32_t *ids, size_t n, float *logits_all, int report) {
    ollm_model *m = s->m; size_t done = 0; ollm_result r;
    while (done < n) {
        int T = (int)(n - done < (size_t)s->chunk ? n - done : (size_t)s->chunk);
        m->log.err[0] = 0;
        r = ollm__session_logits_rows(s, logits_all ? T : 1);   /* the families write s->logits [rows, vocab] */
        if (r == OLLM_OK) r = m->fam->forward(s, ids + done, T, logits_all ? logits_all + done * (size_t)m->d.vocab : NULL);
        if (r != OLLM_OK) {
            s->has_logits = 0;
            if (m->log.err[0] == 0) ollm__fail(&m->log, r, "forward pass failed at token %lld: %s", (long long)s->n_past,
                                               ollm_result_string(r));
            return r;
        }
        memcpy(s->tokens + s->n_past, ids + done, (size_t)T * sizeof *ids);
        if (s->kv_fd >= 0 && (r = ollm__store_commit(s, s->n_past, T)) != OLLM_OK) {
            /* not durable: the session steps back to its last committed token */
            if (s->disk_len < s->n_past) s->n_past = s->disk_len;
            s->has_logits = 0;
            return r;
        }
        s->n_past += T; done += (size_t)T; s->has_logits = 1;
        if (report && s->cfg.progress && s->cfg.progress(s->cfg.progress_user, done, n))
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
    return ollm__feed(s, ids, n, logits, 1);
}
OLLM_API const float *ollm_session_logits(const ollm_session *s) {
    return s && s->has_logits && s->pending < 0 ? s->last_logits : NULL;
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
    s->has_logits = 0;   /* the logits after token n - 1 are gone; the next prefill recomputes them */
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

/* Picks the next token from logits[vocab] (modified in place) in transformers' order of logits processors:
   repetition penalty, temperature, top-k, top-p, min-p; greedy (argmax, lowest id on ties) at temperature 0. */
static int32_t ollm__sample(float *logits, int32_t vocab, const int32_t *history, int64_t n_hist,
                            const ollm_generate_config *g, uint64_t *rng, ollm__cand *cand, uint8_t *seen) {
    int32_t i, n = vocab, best = 0; int64_t h;
    if (g->repetition_penalty > 0 && g->repetition_penalty != 1.0f) {
        /* CTRL rule (RepetitionPenaltyLogitsProcessor): each distinct token of the context once */
        memset(seen, 0, (size_t)vocab);
        for (h = 0; h < n_hist; h++) {
            int32_t t = history[h];
            if (t < 0 || t >= vocab || seen[t]) continue;
            seen[t] = 1;
            logits[t] = logits[t] < 0 ? logits[t] * g->repetition_penalty : logits[t] / g->repetition_penalty;
        }
    }
    if (!(g->temperature > 0)) {
        for (i = 1; i < vocab; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
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
        memcpy(work, s->last_logits, (size_t)m->d.vocab * sizeof *work);
        tok = ollm__sample(work, m->d.vocab, s->tokens, s->n_past, &g, &rng, cand, seen);
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
