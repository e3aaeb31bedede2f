/* ollm: the command-line tool of ollm.h.
   Build:  cc -O2 -o ollm examples/ollm.c -lm -lpthread -ldl

   ollm run DIR (PROMPT | --ids LIST) [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]
                [--seed S] [--ignore-eos] [--print-ids] [--raw] [--backend cpu|cuda|auto] [--threads N] [--ctx N]
   ollm chat DIR [--system TEXT] [-n N] [--temp T] ...
   ollm logits DIR --ids LIST --out FILE [--backend ...]     logits after every position, as safetensors F32 [n, vocab]
   ollm tokenize DIR --file F [--add-special] [--parse-special] | ollm tokenize DIR --chat [--system TEXT] --user TEXT
   ollm decode DIR --ids LIST [--skip-special]
   ollm info DIR [--backend ...]
   ollm kernels --arch sm_XY [--cache DIR]

   Tokens go to stdout; progress, logs and statistics to stderr. Exit status 1 on failure, with one line naming what
   was wrong. File arguments accept - for standard input. */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct opts {
    const char *cmd, *dir, *prompt, *ids, *out, *file, *system, *user, *arch, *cache, *backend, *session;
    int n, top_k, threads, ctx, rewind, depth, chunk, group, kv_host, no_direct, guess, io_threads;
    double ram_gb, vram_gb;
    int print_ids, ignore_eos, add_special, parse_special, skip_special, chat, raw, verbose;
    float temp, top_p, min_p, repeat_penalty;
    unsigned long long seed;
} opts;

static int die(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "ollm: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 1;
}

static void log_cb(void *user, ollm_log_level level, const char *msg) {
    int verbose = *(int *)user;
    if (level == OLLM_LOG_ERROR) return;   /* errors are printed once, by the caller */
    if (level <= OLLM_LOG_WARN || (verbose && level <= OLLM_LOG_INFO) || verbose > 1)
        fprintf(stderr, "ollm: %s\n", msg);
}

static const char usage[] =
    "usage: ollm run DIR (PROMPT | --ids LIST) [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
    "                [--repeat-penalty R] [--seed S] [--ignore-eos] [--print-ids] [--raw] [--backend cpu|cuda|auto]\n"
    "                [--threads N] [--ctx N] [--session FOLDER [--rewind N]] [--ram-gb G] [--vram-gb G]\n"
    "                [--depth N] [--chunk N] [--group N] [--kv-host] [--no-direct] [--io-threads N]\n"
    "                [--no-guess | --refine-guess]\n"
    "                [-v]\n"
    "       ollm chat DIR [--system TEXT] [-n N] [sampling options as for run]\n"
    "       ollm logits DIR --ids LIST --out FILE [--backend ...]\n"
    "       ollm tokenize DIR --file F [--add-special] [--parse-special]\n"
    "       ollm tokenize DIR --chat [--system TEXT] --user TEXT\n"
    "       ollm decode DIR --ids LIST [--skip-special]\n"
    "       ollm info DIR [--backend ...]\n"
    "       ollm kernels --arch sm_XY [--cache DIR]\n"
    "\n"
    "run      generates a continuation of PROMPT (tokenized with the model's tokenizer; the chat format is not applied\n"
    "         unless --chat-format is implied by `chat`) or of the ids given with --ids. Sampling: --temp 0 (default)\n"
    "         is greedy. --print-ids prints only the generated ids on stdout. --raw: PROMPT without the BOS token.\n"
    "chat     an interactive conversation in the model's chat format; an empty line or end of input quits.\n"
    "         LIST is comma-separated ids, or @FILE to read them from FILE.\n"
    "logits   writes the logits after every position of --ids to FILE (safetensors, one F32 tensor `logits`).\n"
    "tokenize prints the ids of the bytes of file F (- = stdin) on one line, or of a rendered chat prompt.\n"
    "decode   writes the bytes the ids decode to, exactly.\n"
    "         --session FOLDER keeps the context on disk: a later run on the same folder resumes it without\n"
    "         recomputing (prefill a document once with -n 0, then ask with --rewind N to return to its N tokens).\n"
    "         --ram-gb / --vram-gb cap the memory for weights; layers that do not fit stream from disk, --depth N\n"
    "         layers at a time. --chunk N: prompt tokens per pass over the layers (default 256 on the CPU, 1024\n"
    "         on the GPU); --group N: N chunks through each layer before the next, so that streamed layers and\n"
    "         experts are copied once per N chunks (the same results; N chunks of residual stream kept;\n"
    "         default: where --ram-gb / --vram-gb stream layers, as many as --ctx holds, up to 16, else 1).\n"
    "         --kv-host keeps the KV cache in host RAM (automatic when it would take over half the\n"
    "         GPU budget). Layers and experts read from disk while running bypass the page cache (O_DIRECT)\n"
    "         where the file system allows; --no-direct reads them through it. Experts without a RAM copy are\n"
    "         read by --io-threads N threads at once (default 8). MoE models on the GPU also upload\n"
    "         the experts the next layer's router picks from the current layer's input while the copy stream\n"
    "         would be idle (a guess of the next layer's picks); --no-guess: only the picked ones;\n"
    "         --refine-guess: each guess ranked again once the layer's experts have run. -v logs the plan and,\n"
    "         on the GPU, the kernel launches and waits for the GPU of a generated token (-v -v: debug\n"
    "         messages too).\n"
    "info     prints the model description and the backend.\n"
    "kernels  compiles every CUDA kernel for an architecture into the cache (no GPU needed).\n";

static int parse_args(int argc, char **argv, opts *o) {
    int i;
    memset(o, 0, sizeof *o);
    o->top_p = 1.0f; o->repeat_penalty = 1.0f; o->n = -1; o->rewind = -1;
    if (argc < 2) return 0;
    o->cmd = argv[1];
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VAL(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 0;
        else if (VAL("--ids")) o->ids = v;
        else if (VAL("--out")) o->out = v;
        else if (VAL("--file")) o->file = v;
        else if (VAL("--system")) o->system = v;
        else if (VAL("--user")) o->user = v;
        else if (VAL("--arch")) o->arch = v;
        else if (VAL("--cache")) o->cache = v;
        else if (VAL("--backend")) o->backend = v;
        else if (VAL("--session")) o->session = v;
        else if (VAL("--ram-gb")) o->ram_gb = atof(v);
        else if (VAL("--vram-gb")) o->vram_gb = atof(v);
        else if (VAL("--depth")) o->depth = atoi(v);
        else if (VAL("--io-threads")) o->io_threads = atoi(v);
        else if (VAL("--chunk")) o->chunk = atoi(v);
        else if (VAL("--group")) o->group = atoi(v);
        else if (VAL("--rewind")) o->rewind = atoi(v);
        else if (VAL("-n")) o->n = atoi(v);
        else if (VAL("--temp")) o->temp = (float)atof(v);
        else if (VAL("--top-k")) o->top_k = atoi(v);
        else if (VAL("--top-p")) o->top_p = (float)atof(v);
        else if (VAL("--min-p")) o->min_p = (float)atof(v);
        else if (VAL("--repeat-penalty")) o->repeat_penalty = (float)atof(v);
        else if (VAL("--seed")) o->seed = strtoull(v, NULL, 10);
        else if (VAL("--threads")) o->threads = atoi(v);
        else if (VAL("--ctx")) o->ctx = atoi(v);
        else if (strcmp(a, "--print-ids") == 0) o->print_ids = 1;
        else if (strcmp(a, "--ignore-eos") == 0) o->ignore_eos = 1;
        else if (strcmp(a, "--add-special") == 0) o->add_special = 1;
        else if (strcmp(a, "--parse-special") == 0) o->parse_special = 1;
        else if (strcmp(a, "--skip-special") == 0) o->skip_special = 1;
        else if (strcmp(a, "--chat") == 0) o->chat = 1;
        else if (strcmp(a, "--raw") == 0) o->raw = 1;
        else if (strcmp(a, "--kv-host") == 0) o->kv_host = 1;
        else if (strcmp(a, "--no-direct") == 0) o->no_direct = 1;
        else if (strcmp(a, "--no-guess") == 0) o->guess = -1;
        else if (strcmp(a, "--refine-guess") == 0) o->guess = 2;
        else if (strcmp(a, "-v") == 0) o->verbose++;
        else if (a[0] == '-' && a[1] && strcmp(a, "-") != 0) { fprintf(stderr, "ollm: unknown or incomplete option %s\n", a); return -1; }
        else if (!o->dir && strcmp(o->cmd, "kernels") != 0) o->dir = a;
        else if (!o->prompt) o->prompt = a;
        else { fprintf(stderr, "ollm: unexpected argument %s\n", a); return -1; }
#undef VAL
    }
    return 1;
}

static char *read_all(const char *path, size_t *len);
static long parse_list(const char *s, int32_t **out);
/* "1,2,3" -> ids, or "@FILE": the list read from FILE (- = stdin); returns the count or -1 on a malformed list */
static long parse_ids(const char *s, int32_t **out) {
    if (s[0] == '@') {
        size_t len; char *text = read_all(s + 1, &len); long n;
        if (!text) return -1;
        { size_t i; for (i = 0; i < len; i++) if (text[i] == '\n' || text[i] == '\r' || text[i] == '\t') text[i] = ' '; }
        n = parse_ids(text, out);
        free(text);
        return n;
    }
    return parse_list(s, out);
}
static long parse_list(const char *s, int32_t **out) {
    long n = 0, cap = 16; int32_t *ids = (int32_t *)malloc((size_t)cap * sizeof *ids);
    const char *p = s;
    if (!ids) return -1;
    while (*p) {
        char *end; long v;
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 0x7fffffffL) { free(ids); return -1; }
        if (n == cap) { int32_t *t = (int32_t *)realloc(ids, (size_t)(cap *= 2) * sizeof *ids); if (!t) { free(ids); return -1; } ids = t; }
        ids[n++] = (int32_t)v;
        p = end;
        if (*p && *p != ',' && *p != ' ') { free(ids); return -1; }
    }
    *out = ids;
    return n;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL; size_t n = 0, cap = 0, r;
    if (!f) return NULL;
    for (;;) {
        if (cap - n < 65536) { char *t = (char *)realloc(buf, cap = cap * 2 + 65536); if (!t) { free(buf); buf = NULL; break; } buf = t; }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (buf && ferror(f)) { free(buf); buf = NULL; }
    if (f != stdin) fclose(f);
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

/* a progress bar on stderr: "\rWHAT [####......] " */
static void bar(const char *what, uint64_t done, uint64_t total) {
    int w = 30, k = total ? (int)((double)w * (double)done / (double)total) : w, i;
    fprintf(stderr, "\r%s [", what);
    for (i = 0; i < w; i++) fputc(i < k ? '#' : '.', stderr);
    fprintf(stderr, "] ");
}
/* the weights as they are read at open, on a terminal */
static int on_load(void *user, uint64_t done, uint64_t total) {
    (void)user;
    bar("loading", done, total);
    fprintf(stderr, "%.2f/%.2f GB ", (double)done / 1e9, (double)total / 1e9);
    if (done == total) fprintf(stderr, "\r%*s\r", 60, "");
    fflush(stderr);
    return 0;
}
static int model_open(const opts *o, ollm_model **m, int *verbose) {
    ollm_model_config cfg = ollm_model_config_default();
    cfg.log = log_cb; cfg.log_user = verbose; cfg.progress = isatty(2) ? on_load : NULL; cfg.threads = o->threads; cfg.stream_depth = o->depth;
    cfg.ram_bytes = (uint64_t)(o->ram_gb * 1e9); cfg.vram_bytes = (uint64_t)(o->vram_gb * 1e9); cfg.max_context = o->ctx;
    cfg.prefill_chunk = o->chunk; cfg.prefill_group = o->group; cfg.direct_io = o->no_direct ? -1 : 0; cfg.io_threads = o->io_threads; cfg.expert_guess = o->guess;
    if (o->backend) {
        if (strcmp(o->backend, "cpu") == 0) cfg.backend = OLLM_BACKEND_CPU;
        else if (strcmp(o->backend, "cuda") == 0) cfg.backend = OLLM_BACKEND_CUDA;
        else if (strcmp(o->backend, "auto") == 0) cfg.backend = OLLM_BACKEND_AUTO;
        else return die("unknown backend '%s' (cpu, cuda or auto)%s", o->backend, "");
    }
    if (ollm_model_open(o->dir, &cfg, m) != OLLM_OK) {
        int rc = die("%s%s", ollm_model_last_error(*m), "");
        ollm_model_close(*m); *m = NULL;
        return rc;
    }
    return 0;
}

/* ---- progress and token output ---- */
typedef struct progress { double t0; int tty; } progress;
static double now_s(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec; }
static int on_progress(void *user, uint64_t done, uint64_t total) {
    progress *p = (progress *)user; double dt = now_s() - p->t0, rate = dt > 0 ? (double)done / dt : 0;
    if (p->tty && total > 1) {
        bar("prefill", done, total);
        fprintf(stderr, "%llu/%llu tokens, %.1f tok/s, ETA %.0f s ", (unsigned long long)done, (unsigned long long)total,
                rate, rate > 0 ? (double)(total - done) / rate : 0.0);
        if (done == total) fprintf(stderr, "\r%*s\r", 90, "");
        fflush(stderr);
    }
    return 0;
}
typedef struct emit { int print_ids, count; } emit;
static int on_token(void *user, int32_t token, const char *piece, size_t len) {
    emit *e = (emit *)user;
    if (e->print_ids) { if (token >= 0) printf("%s%d", e->count++ ? " " : "", token); }
    else fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static ollm_generate_config gen_config(const opts *o, emit *e) {
    ollm_generate_config g = ollm_generate_config_default();
    g.max_tokens = o->n < 0 ? 128 : o->n;
    g.temperature = o->temp; g.top_k = o->top_k; g.top_p = o->top_p; g.min_p = o->min_p;
    g.repetition_penalty = o->repeat_penalty; g.seed = o->seed; g.ignore_eos = o->ignore_eos;
    g.on_token = on_token; g.user = e;
    return g;
}

static int tokenize_text(ollm_tokenizer *t, const char *text, size_t len, unsigned flags, int32_t **ids, size_t *n) {
    size_t need = 0;
    *ids = NULL; *n = 0;
    if (ollm_tokenize(t, text, len, flags, NULL, 0, &need) != OLLM_OK) return die("%s%s", ollm_tokenizer_last_error(t), "");
    *ids = (int32_t *)malloc((need ? need : 1) * sizeof **ids);
    if (!*ids) return die("out of memory%s%s", "", "");
    if (ollm_tokenize(t, text, len, flags, *ids, need, n) != OLLM_OK) return die("%s%s", ollm_tokenizer_last_error(t), "");
    return 0;
}

static int cmd_run(const opts *o, int *verbose) {
    ollm_model *m; ollm_session *s; ollm_session_config sc = ollm_session_config_default(); int32_t *ids = NULL;
    size_t n_ids = 0, n_gen = 0; long nl; progress pr; emit e; ollm_generate_config g; ollm_result r; double t0, t1, t2;
    uint64_t x_hits = 0, x_miss = 0, x_up = 0, x_gs = 0, x_gh = 0, x_gw = 0, x_launch = 0, x_waits = 0; double x_wait_s = 0;
    if (o->ids && o->prompt) return die("run: give a PROMPT or --ids LIST, not both%s%s", "", "");
    if (!o->ids && !o->prompt && !o->session) return die("run: give a PROMPT or --ids LIST%s%s", "", "");
    if (o->ids) {
        if ((nl = parse_ids(o->ids, &ids)) < 0) return die("run: malformed --ids '%s'%s", o->ids, "");
        n_ids = (size_t)nl;
        if (n_ids == 0 && !o->session) { free(ids); return die("run: --ids is empty%s%s", "", ""); }
    }
    if (model_open(o, &m, verbose)) { free(ids); return 1; }
    pr.t0 = now_s(); pr.tty = isatty(2);
    sc.max_context = o->ctx; sc.progress = on_progress; sc.progress_user = &pr; sc.dir = o->session;
    sc.prefill_chunk = o->chunk; sc.prefill_group = o->group; sc.kv_host = o->kv_host;
    if ((r = ollm_session_open(m, &sc, &s)) != OLLM_OK) {
        int rc = die("%s%s", ollm_model_last_error(m), ""); ollm_model_close(m); free(ids); return rc;
    }
    if (o->rewind >= 0 && ollm_session_rewind(s, (size_t)o->rewind) != OLLM_OK) {
        fprintf(stderr, "ollm: --rewind %d: the session holds only %zu tokens\n", o->rewind, ollm_session_length(s));
        ollm_session_close(s); ollm_model_close(m); free(ids); return 1;
    }
    if (o->prompt) {
        ollm_tokenizer *t = ollm_model_tokenizer(m);
        unsigned flags = o->raw || ollm_session_length(s) > 0 ? 0 : OLLM_TOKENIZE_ADD_SPECIAL;   /* BOS only at the start */
        if (!t) { ollm_session_close(s); ollm_model_close(m); return die("run: %s has no tokenizer.json; use --ids%s", o->dir, ""); }
        if (tokenize_text(t, o->prompt, strlen(o->prompt), flags, &ids, &n_ids)) {
            ollm_session_close(s); ollm_model_close(m); free(ids); return 1;
        }
        if (n_ids == 0 && ollm_session_length(s) == 0) {
            ollm_session_close(s); ollm_model_close(m); free(ids); return die("run: the prompt has no tokens%s%s", "", "");
        }
    }
    if (ollm_session_length(s) > 0) fprintf(stderr, "ollm: resuming a session of %zu tokens\n", ollm_session_length(s));
    memset(&e, 0, sizeof e); e.print_ids = o->print_ids;
    if (!o->print_ids && o->prompt) { fputs(o->prompt, stdout); fflush(stdout); }
    t0 = now_s();
    r = ollm_session_prefill(s, ids, n_ids, NULL);
    t1 = now_s();
    {   /* expert-cache counters at the end of prefill: the decode figures below are the difference */
        const ollm_model_info *mi = ollm_model_get_info(m);
        x_hits = mi->expert_hits; x_miss = mi->expert_misses; x_up = mi->upload_bytes;
        x_gs = mi->expert_guesses; x_gh = mi->expert_guess_hits; x_gw = mi->expert_guess_waste;
        x_launch = mi->kernel_launches; x_waits = mi->device_waits; x_wait_s = mi->device_wait_s;
    }
    if (r == OLLM_OK && o->n != 0) {                  /* -n 0: prefill only (e.g. a document into --session) */
        g = gen_config(o, &e);
        r = ollm_session_generate(s, &g, NULL, 0, &n_gen);
    }
    t2 = now_s();
    printf("\n");
    fflush(stdout);   /* the text before the figures on stderr, also when both go to one pipe */
    if (r != OLLM_OK) { int rc = die("%s%s", ollm_model_last_error(m), ""); ollm_session_close(s); ollm_model_close(m); free(ids); return rc; }
    {
        const ollm_model_info *mi = ollm_model_get_info(m);
        fprintf(stderr, "ollm: prompt %zu tokens in %.2f s (%.1f tok/s), generated %zu tokens in %.2f s (%.4f s/token over "
                "%zu forward passes), %s backend", n_ids, t1 - t0, (double)n_ids / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen,
                t2 - t1, n_gen > 1 ? (t2 - t1) / (double)(n_gen - 1) : 0.0, n_gen > 1 ? n_gen - 1 : 0, mi->backend);
        if (mi->device_peak_bytes) fprintf(stderr, ", peak VRAM %.2f GB", (double)mi->device_peak_bytes / 1e9);
        fprintf(stderr, "\n");
        if (*verbose && mi->kernel_launches && n_gen > 1) {   /* where a forward pass of generation goes on the host */
            double p = (double)(n_gen - 1);
            fprintf(stderr, "ollm: per generated token: %.0f kernel launches, %.1f waits for the GPU taking %.1f ms of "
                    "%.1f ms\n", (double)(mi->kernel_launches - x_launch) / p, (double)(mi->device_waits - x_waits) / p,
                    1e3 * (mi->device_wait_s - x_wait_s) / p, 1e3 * (t2 - t1) / p);
        }
    }
    if (ollm_model_get_info(m)->expert_slots) {
        const ollm_model_info *mi = ollm_model_get_info(m); uint64_t h = mi->expert_hits - x_hits, n = mi->expert_misses - x_miss;
        double p = n_gen > 1 ? (double)(n_gen - 1) : 0.0, up = (double)(mi->upload_bytes - x_up);
        double waste = (double)mi->expert_guess_waste - (double)x_gw;
        fprintf(stderr, "ollm: experts: a GPU cache of %d x %.1f MB; prefill %llu hits, %llu misses; generation %llu hits, "
                "%llu misses (hit rate %.1f%%), %.3f GB copied to the GPU per token, %.3f GB of it for picked experts "
                "(guessed ahead: %llu uploads, %llu of them picked)\n", mi->expert_slots,
                (double)mi->expert_bytes / 1e6, (unsigned long long)x_hits, (unsigned long long)x_miss,
                (unsigned long long)h, (unsigned long long)n, h + n ? 100.0 * (double)h / (double)(h + n) : 0.0,
                p > 0 ? up / 1e9 / p : 0.0, p > 0 ? (up - waste) / 1e9 / p : 0.0,
                (unsigned long long)(mi->expert_guesses - x_gs), (unsigned long long)(mi->expert_guess_hits - x_gh));
    }
    if (o->session) fprintf(stderr, "ollm: session %s holds %zu tokens\n", o->session, ollm_session_length(s));
    if (ollm_model_get_info(m)->streamed_layers)
        fprintf(stderr, "ollm: streamed layers: %.2f GB read from disk, %.2f GB copied to the GPU, compute waited %.2f s\n",
                (double)ollm_model_get_info(m)->disk_bytes_read / 1e9, (double)ollm_model_get_info(m)->upload_bytes / 1e9,
                ollm_model_get_info(m)->stream_wait_s);
    ollm_session_close(s); ollm_model_close(m); free(ids);
    return 0;
}

static int write_logits(const char *path, const float *logits, long n, int vocab) {
    char hdr[256]; size_t hl; unsigned long long bytes = (unsigned long long)n * (unsigned long long)vocab * 4, len8;
    unsigned char lenb[8]; int i; FILE *f;
    snprintf(hdr, sizeof hdr, "{\"logits\":{\"dtype\":\"F32\",\"shape\":[%ld,%d],\"data_offsets\":[0,%llu]}}", n, vocab, bytes);
    hl = strlen(hdr);
    while (hl % 8) hdr[hl++] = ' ';
    hdr[hl] = 0;
    len8 = hl;
    for (i = 0; i < 8; i++) lenb[i] = (unsigned char)(len8 >> (8 * i));
    f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f) return 1;
    if (fwrite(lenb, 1, 8, f) != 8 || fwrite(hdr, 1, hl, f) != hl || fwrite(logits, 4, (size_t)n * (size_t)vocab, f) != (size_t)n * (size_t)vocab) {
        if (f != stdout) fclose(f);
        return 1;
    }
    return f != stdout ? fclose(f) != 0 : fflush(f) != 0;
}

static int cmd_logits(const opts *o, int *verbose) {
    ollm_model *m; ollm_session *s; ollm_session_config sc = ollm_session_config_default(); int32_t *ids; long n;
    float *logits; int vocab, rc = 0;
    if (!o->ids || !o->out) return die("logits: --ids LIST and --out FILE are required%s%s", "", "");
    if ((n = parse_ids(o->ids, &ids)) <= 0) return die("logits: malformed or empty --ids '%s'%s", o->ids, "");
    if (model_open(o, &m, verbose)) { free(ids); return 1; }
    vocab = ollm_model_get_info(m)->vocab;
    sc.max_context = o->ctx ? o->ctx : (int32_t)n;
    logits = (float *)malloc((size_t)n * (size_t)vocab * sizeof(float));
    if (!logits) { ollm_model_close(m); free(ids); return die("logits: out of memory%s%s", "", ""); }
    if (ollm_session_open(m, &sc, &s) != OLLM_OK) rc = die("%s%s", ollm_model_last_error(m), "");
    else {
        if (ollm_session_prefill(s, ids, (size_t)n, logits) != OLLM_OK) rc = die("%s%s", ollm_model_last_error(m), "");
        else if (write_logits(o->out, logits, n, vocab)) rc = die("logits: cannot write %s%s", o->out, "");
        ollm_session_close(s);
    }
    free(logits); free(ids); ollm_model_close(m);
    return rc;
}

static int render_chat(ollm_tokenizer *t, const ollm_chat_message *msgs, size_t n, char **out, size_t *len) {
    size_t need = 0; ollm_chat_options co;
    memset(&co, 0, sizeof co);
    if (ollm_chat_render(t, msgs, n, &co, NULL, 0, &need) != OLLM_OK) return die("%s%s", ollm_tokenizer_last_error(t), "");
    *out = (char *)malloc(need + 1);
    if (!*out) return die("out of memory%s%s", "", "");
    if (ollm_chat_render(t, msgs, n, &co, *out, need + 1, len) != OLLM_OK) return die("%s%s", ollm_tokenizer_last_error(t), "");
    return 0;
}

static int cmd_tokenize(const opts *o) {
    ollm_tokenizer *t; char *text = NULL; size_t len = 0, n = 0, i; int32_t *ids = NULL; int rc = 0; unsigned flags;
    if (ollm_tokenizer_open(o->dir, &t) != OLLM_OK) { rc = die("%s%s", ollm_tokenizer_last_error(t), ""); ollm_tokenizer_close(t); return rc; }
    if (o->chat) {
        ollm_chat_message msgs[2]; size_t n_msgs = 0;
        if (o->system) { msgs[n_msgs].role = "system"; msgs[n_msgs].content = o->system; n_msgs++; }
        msgs[n_msgs].role = "user"; msgs[n_msgs].content = o->user; n_msgs++;
        if (!o->user) rc = die("tokenize --chat: --user TEXT is required%s%s", "", "");
        else rc = render_chat(t, msgs, n_msgs, &text, &len);
        flags = OLLM_TOKENIZE_PARSE_SPECIAL;   /* the rendered template's control tokens */
    } else {
        if (!o->file) rc = die("tokenize: --file F is required (- for stdin)%s%s", "", "");
        else if (!(text = read_all(o->file, &len))) rc = die("tokenize: cannot read %s%s", o->file, "");
        flags = (o->add_special ? OLLM_TOKENIZE_ADD_SPECIAL : 0) | (o->parse_special ? OLLM_TOKENIZE_PARSE_SPECIAL : 0);
    }
    if (!rc) rc = tokenize_text(t, text, len, flags, &ids, &n);
    if (!rc) { for (i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]); printf("\n"); }
    free(ids); free(text); ollm_tokenizer_close(t);
    return rc;
}

static int cmd_decode(const opts *o) {
    ollm_tokenizer *t; int32_t *ids; long n; size_t need = 0; char *out; int rc = 0;
    if (!o->ids) return die("decode: --ids LIST is required%s%s", "", "");
    if ((n = parse_ids(o->ids, &ids)) < 0) return die("decode: malformed --ids '%s'%s", o->ids, "");
    if (ollm_tokenizer_open(o->dir, &t) != OLLM_OK) { rc = die("%s%s", ollm_tokenizer_last_error(t), ""); ollm_tokenizer_close(t); free(ids); return rc; }
    unsigned flags = o->skip_special ? OLLM_DETOKENIZE_SKIP_SPECIAL : 0;
    if (ollm_detokenize(t, ids, (size_t)n, flags, NULL, 0, &need) != OLLM_OK) rc = die("%s%s", ollm_tokenizer_last_error(t), "");
    else if (!(out = (char *)malloc(need + 1))) rc = die("out of memory%s%s", "", "");
    else {
        if (ollm_detokenize(t, ids, (size_t)n, flags, out, need, &need) != OLLM_OK) rc = die("%s%s", ollm_tokenizer_last_error(t), "");
        else fwrite(out, 1, need, stdout);
        free(out);
    }
    free(ids); ollm_tokenizer_close(t);
    return rc;
}

static int cmd_info(const opts *o, int *verbose) {
    ollm_model *m; const ollm_model_info *i; int k;
    if (model_open(o, &m, verbose)) return 1;
    i = ollm_model_get_info(m);
    printf("directory      %s\narchitecture   %s\nbackend        %s (%s)\nlayers         %d\nhidden         %d\n"
           "heads          %d (kv %d, head_dim %d)\nffn            %d\nvocab          %d\nmax context    %d\n"
           "parameters     %llu\nweight bytes   %llu\nbos            %d\neos           ",
           o->dir, i->arch, i->backend, i->device, i->n_layers, i->hidden, i->n_heads, i->n_kv_heads, i->head_dim, i->ffn, i->vocab,
           i->max_context, (unsigned long long)i->n_params, (unsigned long long)i->weight_bytes, i->bos_id);
    for (k = 0; k < i->n_eos; k++) printf(" %d", i->eos_ids[k]);
    printf("\ntokenizer      %s\n", ollm_model_tokenizer(m) ? "yes" : "none");
    printf("tier plan      %d layers resident (%.3f GB with embeddings and head), %d streamed (%d from RAM, %.3f GB; "
           "%d from disk) through %d slots of %.3f GB\n", i->resident_layers, (double)i->resident_bytes / 1e9,
           i->streamed_layers, i->ram_layers, (double)i->ram_bytes / 1e9, i->streamed_layers - i->ram_layers,
           i->stream_slots, (double)i->slot_bytes / 1e9);
    printf("prefill        chunks of %d tokens, %d a pass over the layers\n", i->prefill_chunk, i->prefill_group);
    if (i->streamed_layers)
        printf("per token      %.3f GB read for streamed layers (less when slots still hold them)\n",
               (double)i->slot_bytes * i->streamed_layers / 1e9);
    if (i->expert_slots)
        printf("experts        a GPU cache of %d experts of %.1f MB; the others are uploaded when picked\n",
               i->expert_slots, (double)i->expert_bytes / 1e6);
    ollm_model_close(m);
    return 0;
}

/* Each turn renders the whole conversation with the model's chat format and feeds only what the session does not
   hold yet: the longest common prefix of the new ids and the ids already in the context stays cached. */
typedef struct collect { emit e; char *text; size_t len, cap; } collect;
static int on_chat_token(void *user, int32_t token, const char *piece, size_t len) {
    collect *c = (collect *)user;
    if (c->len + len + 1 > c->cap) {
        char *t = (char *)realloc(c->text, c->cap = (c->len + len + 1) * 2);
        if (!t) return 1;
        c->text = t;
    }
    memcpy(c->text + c->len, piece, len); c->len += len; c->text[c->len] = 0;
    return on_token(&c->e, token, piece, len);
}
static int cmd_chat(const opts *o, int *verbose) {
    ollm_model *m; ollm_session *s; ollm_session_config sc = ollm_session_config_default(); ollm_tokenizer *t;
    ollm_chat_message msgs[256]; char *texts[256]; size_t n_msgs = 0, n_hist = 0, k; int32_t hist[1 << 16];
    char line[8192]; int rc = 0, tty = isatty(0); ollm_generate_config g; collect c;
    if (model_open(o, &m, verbose)) return 1;
    if (!(t = ollm_model_tokenizer(m))) { ollm_model_close(m); return die("chat: %s has no tokenizer.json%s", o->dir, ""); }
    sc.max_context = o->ctx;
    if (ollm_session_open(m, &sc, &s) != OLLM_OK) { rc = die("%s%s", ollm_model_last_error(m), ""); ollm_model_close(m); return rc; }
    memset(&c, 0, sizeof c);
    g = gen_config(o, &c.e);
    g.on_token = on_chat_token; g.user = &c;
    if (o->n < 0) g.max_tokens = 512;
    if (o->system) { msgs[0].role = "system"; msgs[0].content = o->system; texts[0] = NULL; n_msgs = 1; }
    if (tty) fprintf(stderr, "ollm chat: an empty line or end of input quits.\n");
    while (n_msgs + 2 < 256) {
        char *prompt = NULL; size_t len = 0, n_ids = 0, p = 0, n_gen = 0; int32_t *ids = NULL, gen[4096]; ollm_result r;
        if (tty) { fprintf(stderr, "> "); fflush(stderr); }
        if (!fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) break;
        texts[n_msgs] = strdup(line);
        msgs[n_msgs].role = "user"; msgs[n_msgs].content = texts[n_msgs]; n_msgs++;
        if ((rc = render_chat(t, msgs, n_msgs, &prompt, &len))) break;
        if ((rc = tokenize_text(t, prompt, len, OLLM_TOKENIZE_PARSE_SPECIAL, &ids, &n_ids))) { free(prompt); break; }
        while (p < n_ids && p < n_hist && ids[p] == hist[p]) p++;
        if (p == n_ids) p--;                       /* refeed one token so that there are logits to sample from */
        r = ollm_session_rewind(s, p);
        if (r == OLLM_OK) r = ollm_session_prefill(s, ids + p, n_ids - p, NULL);
        c.len = 0;
        if (r == OLLM_OK) r = ollm_session_generate(s, &g, gen, sizeof gen / sizeof *gen, &n_gen);
        printf("\n"); fflush(stdout);
        if (r != OLLM_OK) { rc = die("%s%s", ollm_model_last_error(m), ""); free(prompt); free(ids); break; }
        n_hist = n_ids < sizeof hist / sizeof *hist ? n_ids : 0;
        memcpy(hist, ids, n_hist * sizeof *hist);
        for (k = 0; k < n_gen && n_hist < sizeof hist / sizeof *hist; k++) hist[n_hist++] = gen[k];
        texts[n_msgs] = strdup(c.text ? c.text : "");
        msgs[n_msgs].role = "assistant"; msgs[n_msgs].content = texts[n_msgs]; n_msgs++;
        free(prompt); free(ids);
    }
    for (k = o->system ? 1 : 0; k < n_msgs; k++) free(texts[k]);
    free(c.text);
    ollm_session_close(s); ollm_model_close(m);
    return rc;
}

static int cmd_kernels(const opts *o) {
    int n = 0; char err[4096];
    if (!o->arch) return die("kernels: --arch sm_XY is required%s%s", "", "");
    if (ollm_cuda_compile_kernels(o->arch, o->cache, NULL, &n, err, sizeof err) != OLLM_OK) return die("kernels: %s%s", err, "");
    printf("%d kernels compiled for %s\n", n, o->arch);
    return 0;
}

int main(int argc, char **argv) {
    opts o; int ok = parse_args(argc, argv, &o), verbose;
    if (ok > 0 && (strcmp(o.cmd, "--help") == 0 || strcmp(o.cmd, "-h") == 0 || strcmp(o.cmd, "help") == 0)) ok = 0, argc = 2;
    if (ok <= 0) { fputs(usage, ok < 0 || argc < 2 ? stderr : stdout); return ok < 0 || argc < 2; }
    verbose = o.verbose;
    if (strcmp(o.cmd, "kernels") == 0) return cmd_kernels(&o);
    if (!o.dir) return die("%s: a model directory is required%s", o.cmd, "");
    if (strcmp(o.cmd, "run") == 0) return cmd_run(&o, &verbose);
    if (strcmp(o.cmd, "logits") == 0) return cmd_logits(&o, &verbose);
    if (strcmp(o.cmd, "tokenize") == 0) return cmd_tokenize(&o);
    if (strcmp(o.cmd, "decode") == 0) return cmd_decode(&o);
    if (strcmp(o.cmd, "info") == 0) return cmd_info(&o, &verbose);
    if (strcmp(o.cmd, "chat") == 0) return cmd_chat(&o, &verbose);
    fprintf(stderr, "ollm: unknown command '%s'\n%s", o.cmd, usage);
    return 1;
}
