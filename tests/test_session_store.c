/* Sessions in a folder: save and resume without recomputing, rewinds, foreign and damaged folders refused, injected
   I/O faults (short reads and writes, EINTR, ENOSPC, EIO on read and fsync), and a writer killed at every point of a commit: the
   folder always reopens at its last complete token with the same logits as an uninterrupted run. */
#define OLLM_FAULT_INJECTION
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include "check.h"
#include <signal.h>
#include <sys/wait.h>

#define FX "tests/fixtures/llama_gqa1"
#define N_IDS 100
#define CHUNK 16
static int32_t ids[N_IDS];
static float *ref;              /* uninterrupted logits after every position, [N_IDS, vocab] */
static int vocab;
static char dir[256];

static ollm_model *open_model(const char *path) {
    ollm_model *m; ollm_model_config c = ollm_model_config_default();
    c.backend = OLLM_BACKEND_CPU; c.threads = 1;
    if (ollm_model_open(path, &c, &m) != OLLM_OK) { printf("cannot open %s: %s\n", path, ollm_model_last_error(m)); exit(1); }
    return m;
}
static ollm_result open_session(ollm_model *m, ollm_session **s) {
    ollm_session_config sc = ollm_session_config_default();
    sc.max_context = 128; sc.prefill_chunk = CHUNK; sc.dir = dir;
    return ollm_session_open(m, &sc, s);
}
static int logits_match(const float *l, int64_t pos) {
    return l && memcmp(l, ref + pos * vocab, (size_t)vocab * 4) == 0;
}

/* fault hooks */
static int writes, fail_at, fail_errno, kill_at, shorten, eintr_every, reads, read_short, read_fail_at;
static int hook(int op, int fd, size_t *n) {
    (void)fd;
    if (op == 'r') {   /* reads: shortened, interrupted, or failing from the read_fail_at-th on */
        reads++;
        if (read_fail_at && reads >= read_fail_at) return EIO;
        if (read_short && reads % 3 == 0) return EINTR;
        if (read_short && *n > 1) *n = *n / 3 + 1;
        return 0;
    }
    if (op == 's') return fail_errno == EIO && fail_at < 0 ? EIO : 0;
    writes++;
    if (kill_at && writes == kill_at) kill(getpid(), SIGKILL);
    if (fail_at > 0 && writes >= fail_at) return fail_errno;
    if (eintr_every && writes % eintr_every == 0) { writes++; return EINTR; }
    if (shorten && *n > 1) *n /= 2;
    return 0;
}
static void reset_faults(void) {
    writes = 0; fail_at = 0; fail_errno = 0; kill_at = 0; shorten = 0; eintr_every = 0; reads = 0; read_short = 0;
    read_fail_at = 0; ollm__io_fault = NULL;
}
static void clear_dir(void) { char cmd[512]; snprintf(cmd, sizeof cmd, "rm -rf %s", dir); if (system(cmd)) {} }

static void test_save_resume(ollm_model *m) {
    ollm_session *s; int32_t g1[6], g2[6]; size_t n1, n2; ollm_generate_config g = ollm_generate_config_default();
    clear_dir();
    CHECK(open_session(m, &s) == OLLM_OK, "store: new session folder");
    CHECK(ollm_session_prefill(s, ids, 40, NULL) == OLLM_OK, "store: prefill 40");
    CHECK(logits_match(ollm_session_logits(s), 39), "store: logits identical to the in-memory run");
    ollm_session_close(s);
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_length(s) == 40, "store: reopened with 40 tokens");
    CHECK(logits_match(ollm_session_logits(s), 39), "store: the reopened session has the last logits");
    g.max_tokens = 6; g.ignore_eos = 1;
    CHECK(ollm_session_generate(s, &g, g1, 6, &n1) == OLLM_OK && n1 == 6, "store: generate after reopening");
    ollm_session_close(s);
    {   /* the same continuation from a session that never left memory */
        ollm_session *t; ollm_session_config sc = ollm_session_config_default(); sc.max_context = 128;
        ollm_session_open(m, &sc, &t); ollm_session_prefill(t, ids, 40, NULL);
        ollm_session_generate(t, &g, g2, 6, &n2);
        CHECK(n2 == 6 && memcmp(g1, g2, sizeof g1) == 0, "store: continuation identical to an uninterrupted session");
        ollm_session_close(t);
    }
    /* the 5 fed generated tokens were committed; the 6th is pending and not */
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_length(s) == 45, "store: generated tokens are committed as fed");
    CHECK(ollm_session_rewind(s, 20) == OLLM_OK, "store: rewind");
    ollm_session_close(s);
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_length(s) == 20 && ollm_session_logits(s) == NULL,
          "store: a rewind is durable");
    CHECK(ollm_session_prefill(s, ids + 20, 30, NULL) == OLLM_OK && logits_match(ollm_session_logits(s), 49),
          "store: refeeding after a rewind");
    ollm_session_close(s);
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_length(s) == 50 && logits_match(ollm_session_logits(s), 49),
          "store: records after a rewind replay in order");
    ollm_session_close(s);
}

/* The KV cache in host memory (what a GPU session does when the cache would not fit): the same logits, saved and
   resumed the same way. */
static void test_kv_host(ollm_model *m) {
    ollm_session *s; ollm_session_config sc = ollm_session_config_default();
    sc.max_context = 128; sc.prefill_chunk = CHUNK; sc.dir = dir; sc.kv_host = 1;
    clear_dir();
    CHECK(ollm_session_open(m, &sc, &s) == OLLM_OK && s->kv_host && s->host_k[0], "kv_host: the cache lives in host memory");
    CHECK(ollm_session_prefill(s, ids, 40, NULL) == OLLM_OK && logits_match(ollm_session_logits(s), 39),
          "kv_host: logits identical to the device cache");
    ollm_session_close(s);
    CHECK(ollm_session_open(m, &sc, &s) == OLLM_OK && ollm_session_length(s) == 40 && logits_match(ollm_session_logits(s), 39),
          "kv_host: a saved session resumes");
    CHECK(ollm_session_prefill(s, ids + 40, N_IDS - 40, NULL) == OLLM_OK && logits_match(ollm_session_logits(s), N_IDS - 1),
          "kv_host: and continues with identical logits");
    ollm_session_close(s);
}

static void test_refusals(ollm_model *m) {
    ollm_session *s; ollm_model *other; char path[512], cmd[600]; FILE *f;
    clear_dir();
    open_session(m, &s); ollm_session_prefill(s, ids, 40, NULL); ollm_session_close(s);
    other = open_model("tests/fixtures/llama_tied_gqa4");
    CHECK(open_session(other, &s) == OLLM_ERR_MISMATCH && strstr(ollm_model_last_error(other), "another model"),
          "store: a folder of another model is refused");
    ollm_model_close(other);
    /* garbage after the committed log (a torn append) is ignored */
    snprintf(path, sizeof path, "%s/kv.bin", dir);
    f = fopen(path, "ab"); fwrite("torn record", 1, 11, f); fclose(f);
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_length(s) == 40, "store: bytes past the commit are ignored");
    ollm_session_close(s);
    /* a flipped byte inside a committed record is caught */
    f = fopen(path, "r+b");
    { int c; fseek(f, 200, SEEK_SET); c = fgetc(f); fseek(f, 200, SEEK_SET); fputc(c ^ 0xff, f); }
    fclose(f);
    CHECK(open_session(m, &s) == OLLM_ERR_FORMAT && strstr(ollm_model_last_error(m), "checksum"),
          "store: a corrupted record is refused, not trusted");
    /* a truncated log */
    clear_dir(); open_session(m, &s); ollm_session_prefill(s, ids, 40, NULL); ollm_session_close(s);
    snprintf(cmd, sizeof cmd, "truncate -s 1000 %s", path); if (system(cmd)) {}
    CHECK(open_session(m, &s) == OLLM_ERR_FORMAT, "store: a truncated log is refused");
    /* a damaged header */
    clear_dir(); open_session(m, &s); ollm_session_prefill(s, ids, 40, NULL); ollm_session_close(s);
    snprintf(path, sizeof path, "%s/session.hdr", dir);
    f = fopen(path, "r+b"); fseek(f, 30, SEEK_SET); fputc(0x77, f); fclose(f);
    CHECK(open_session(m, &s) == OLLM_ERR_FORMAT && strstr(ollm_model_last_error(m), "header"), "store: a damaged header is refused");
    snprintf(cmd, sizeof cmd, "truncate -s 10 %s", path); if (system(cmd)) {}
    CHECK(open_session(m, &s) == OLLM_ERR_FORMAT, "store: a short header is refused");
}

static void test_faults(ollm_model *m) {
    ollm_session *s; ollm_result r;
    /* short writes and EINTR are retried transparently */
    clear_dir(); reset_faults(); ollm__io_fault = hook; shorten = 1; eintr_every = 3;
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_prefill(s, ids, 40, NULL) == OLLM_OK, "faults: short writes and EINTR survive");
    ollm_session_close(s); reset_faults();
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_length(s) == 40 && logits_match(ollm_session_logits(s), 39),
          "faults: what short writes committed reads back");
    ollm_session_close(s);
    /* a full disk mid-prefill: an error naming the cause; the session keeps its last committed token and resumes */
    clear_dir(); reset_faults();
    open_session(m, &s);
    ollm__io_fault = hook; fail_at = 6; fail_errno = ENOSPC;   /* each commit writes 4 times: fails in the 2nd chunk */
    r = ollm_session_prefill(s, ids, 60, NULL);
    CHECK(r == OLLM_ERR_IO && strstr(ollm_model_last_error(m), "No space left"), "faults: ENOSPC is OLLM_ERR_IO with the cause");
    CHECK(ollm_session_length(s) == CHUNK, "faults: the session stays at its last complete chunk");
    reset_faults();
    CHECK(ollm_session_prefill(s, ids + CHUNK, 60 - CHUNK, NULL) == OLLM_OK && logits_match(ollm_session_logits(s), 59),
          "faults: after space is freed the session resumes with identical logits");
    ollm_session_close(s);
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_length(s) == 60 && logits_match(ollm_session_logits(s), 59),
          "faults: nothing committed was lost");
    ollm_session_close(s);
    /* reads: short and interrupted reads are retried; a failing read is an error, never garbage */
    clear_dir(); reset_faults(); open_session(m, &s); ollm_session_prefill(s, ids, 40, NULL); ollm_session_close(s);
    ollm__io_fault = hook; read_short = 1;
    CHECK(open_session(m, &s) == OLLM_OK && ollm_session_length(s) == 40 && logits_match(ollm_session_logits(s), 39),
          "faults: short and interrupted reads resume the session exactly");
    ollm_session_close(s);
    {
        ollm_model *m2; ollm_model_config c = ollm_model_config_default(); ollm_result r2;
        c.backend = OLLM_BACKEND_CPU;
        r2 = ollm_model_open(FX, &c, &m2);
        CHECK(r2 == OLLM_OK, "faults: a model opens through short and interrupted reads");
        ollm_model_close(m2);
        reset_faults(); ollm__io_fault = hook; read_fail_at = 4;
        r2 = ollm_model_open(FX, &c, &m2);
        CHECK(r2 != OLLM_OK && ollm_model_last_error(m2)[0], "faults: EIO while opening a model is an error with a message");
        ollm_model_close(m2);
        reset_faults(); ollm__io_fault = hook; read_fail_at = 3;
        CHECK(open_session(m, &s) != OLLM_OK && ollm_model_last_error(m)[0], "faults: EIO while reopening a session is an error");
        reset_faults();
    }
    /* fsync failing (EIO) */
    clear_dir(); reset_faults(); open_session(m, &s);
    ollm__io_fault = hook; fail_at = -1; fail_errno = EIO;
    CHECK(ollm_session_prefill(s, ids, 20, NULL) == OLLM_ERR_IO && ollm_session_length(s) == 0, "faults: EIO on fsync is an error, nothing claimed");
    reset_faults(); ollm_session_close(s);
}

/* A child prefills into the folder and is killed at its k-th write; the parent reopens. */
static void test_crashes(ollm_model *m) {
    int k, resumed_ok = 0, trials = 0, lengths_ok = 0;
    for (k = 1; k <= 26; k++) {
        pid_t pid; int status; ollm_session *s;
        clear_dir(); reset_faults();
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            ollm_session *cs;
            if (open_session(m, &cs) != OLLM_OK) _exit(3);
            ollm__io_fault = hook; kill_at = k;
            ollm_session_prefill(cs, ids, N_IDS, NULL);
            _exit(0);
        }
        waitpid(pid, &status, 0);
        trials++;
        if (open_session(m, &s) != OLLM_OK) { printf("  crash at write %d: reopen failed: %s\n", k, ollm_model_last_error(m)); continue; }
        {
            size_t len = ollm_session_length(s);
            if (len % CHUNK == 0 || len == N_IDS) lengths_ok++;
            if ((len == 0 || logits_match(ollm_session_logits(s), (int64_t)len - 1)) &&
                ollm_session_prefill(s, ids + len, N_IDS - len, NULL) == OLLM_OK && logits_match(ollm_session_logits(s), N_IDS - 1))
                resumed_ok++;
            else printf("  crash at write %d: resumed at %zu with different logits\n", k, len);
        }
        ollm_session_close(s);
    }
    CHECK(lengths_ok == trials, "crash: every killed writer leaves a whole number of committed chunks");
    CHECK(resumed_ok == trials, "crash: every folder reopens at its last complete token and resumes to identical logits");
    printf("  %d kills, one at each write of a 100-token prefill, all resumed exactly\n", resumed_ok);
}

/* The MoE families in a folder: GPT-OSS (K and V only) and Qwen3-Next, whose DeltaNet state goes to state.bin beside
   the log. A reopened folder holds the state
   after its last token: saved after prefill chunks and at close, and a state that lags the log (decode tokens since,
   a killed writer) or is missing or damaged is rebuilt by feeding the logged tokens again. Same logits every way. */
static void test_moe_family(const char *fx) {
    ollm_model *q = open_model(fx); ollm_session *s; ollm_session_config sc = ollm_session_config_default();
    int qv = ollm_model_get_info(q)->vocab, i, n = 60; int32_t qi[60]; float *qr = (float *)malloc((size_t)n * qv * 4);
    char path[600]; FILE *f; pid_t pid; int status;
#define QMATCH(l, pos) ((l) && memcmp((l), qr + (int64_t)(pos) * qv, (size_t)qv * 4) == 0)
    for (i = 0; i < n; i++) qi[i] = (i * 31 + 5) % qv;
    sc.max_context = 128; sc.prefill_chunk = CHUNK;
    ollm_session_open(q, &sc, &s);
    CHECK(ollm_session_prefill(s, qi, (size_t)n, qr) == OLLM_OK, "moe family: reference run");
    ollm_session_close(s);
    sc.dir = dir;
    clear_dir();
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_prefill(s, qi, 40, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), 39), "moe family: prefill 40 into a folder");
    for (i = 40; i < 45; i++) ollm_session_prefill(s, qi + i, 1, NULL);   /* single tokens: state not due yet */
    ollm_session_close(s);                                                /* saved at close */
    snprintf(path, sizeof path, "%s/state.bin", dir);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 45 && (!q->fam->state_bytes || s->state_len == 45) &&
          QMATCH(ollm_session_logits(s), 44), "moe family: reopened with the state after 45 tokens, same logits");
    CHECK(ollm_session_prefill(s, qi + 45, (size_t)n - 45, NULL) == OLLM_OK && QMATCH(ollm_session_logits(s), n - 1),
          "moe family: continues with identical logits");
    ollm_session_close(s);
    /* a writer killed after single tokens: the log holds 50, state.bin 45 */
    clear_dir();
    ollm_session_open(q, &sc, &s); ollm_session_prefill(s, qi, 45, NULL); ollm_session_close(s);
    fflush(stdout);
    if ((pid = fork()) == 0) {
        ollm_session *cs;
        if (ollm_session_open(q, &sc, &cs) != OLLM_OK) _exit(3);
        for (i = 45; i < 50; i++) ollm_session_prefill(cs, qi + i, 1, NULL);
        _exit(0);   /* no close: state.bin stays at 45 */
    }
    waitpid(pid, &status, 0);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 50 && (!q->fam->state_bytes || s->state_len == 50) &&
          QMATCH(ollm_session_logits(s), 49), "moe family: a state behind the log is caught up from the log");
    ollm_session_close(s);
    /* damaged, then missing state.bin: rebuilt from token 0 */
    if ((f = fopen(path, "r+b"))) { fseek(f, 100, SEEK_SET); fputc(0x5a, f); fputc(0xa5, f); fclose(f); }
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 50 && QMATCH(ollm_session_logits(s), 49),
          "moe family: a damaged state.bin is rebuilt");
    ollm_session_close(s);
    unlink(path);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 50 && QMATCH(ollm_session_logits(s), 49),
          "moe family: a missing state.bin is rebuilt");
    /* rewound to 0 and fed other tokens: the old state.bin is not a prefix of them */
    CHECK(ollm_session_rewind(s, 0) == OLLM_OK, "moe family: rewind to 0");
    for (i = 0; i < 20; i++) ollm_session_prefill(s, qi + i, 1, NULL);
    ollm_session_close(s);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 20 && QMATCH(ollm_session_logits(s), 19),
          "moe family: after a rewind and refeeding, the state matches the new tokens");
    ollm_session_close(s);
#undef QMATCH
    free(qr); ollm_model_close(q);
}

/* GPT-OSS's sliding layers keep a ring of window + chunk - 1 rows, not a row per position: a rewind within a chunk
   continues from the ring, one past it reads the window's keys back from the folder's log or, without a folder,
   computes the tokens again; the logits are those of an uninterrupted run every time. */
static void test_ring(const char *path) {
    ollm_model *q = open_model(path); ollm_session *s; ollm_session_config sc = ollm_session_config_default();
    int qv = ollm_model_get_info(q)->vocab, i, n = 60; int32_t qi[60]; float *qr = (float *)malloc((size_t)n * qv * 4);
#define QMATCH(l, pos) ((l) && memcmp((l), qr + (int64_t)(pos) * qv, (size_t)qv * 4) == 0)
    for (i = 0; i < n; i++) qi[i] = (i * 37 + 11) % qv;
    sc.max_context = 128; sc.prefill_chunk = CHUNK;
    ollm_session_open(q, &sc, &s);
    CHECK(ollm_session_prefill(s, qi, (size_t)n, qr) == OLLM_OK, "ring: reference run");
    CHECK(s->ring == q->d.sliding_window + CHUNK - 1 && s->ring < sc.max_context && s->k_cache[0].bytes ==
          (uint64_t)s->ring * ollm__kv_row(s) && s->k_cache[1].bytes == (uint64_t)sc.max_context * ollm__kv_row(s),
          "ring: sliding layers hold window + chunk - 1 rows, full layers a row per position");
    CHECK(ollm_session_rewind(s, 50) == OLLM_OK && ollm_session_prefill(s, qi + 50, 10, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), 59), "ring: a rewind within a chunk continues from the ring");
    CHECK(ollm_session_rewind(s, 12) == OLLM_OK && ollm_session_prefill(s, qi + 12, 1, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), 12), "ring: a rewind past the ring (no folder) computes the window again");
    CHECK(ollm_session_prefill(s, qi + 13, (size_t)n - 13, NULL) == OLLM_OK && QMATCH(ollm_session_logits(s), n - 1),
          "ring: and continues exactly");
    ollm_session_close(s);
    sc.dir = dir;
    clear_dir();
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_prefill(s, qi, (size_t)n, NULL) == OLLM_OK,
          "ring: prefill into a folder");
    ollm_session_close(s);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == (size_t)n &&
          QMATCH(ollm_session_logits(s), n - 1), "ring: reopened from the folder");
    CHECK(ollm_session_rewind(s, 20) == OLLM_OK && ollm_session_prefill(s, qi + 20, 5, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), 24), "ring: a rewind past the ring reads the window's keys from the log");
    CHECK(ollm_session_rewind(s, 9) == OLLM_OK && ollm_session_prefill(s, qi + 9, 30, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), 38), "ring: again, over records written after a rewind");
    ollm_session_close(s);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 39 &&
          QMATCH(ollm_session_logits(s), 38) && ollm_session_prefill(s, qi + 39, (size_t)n - 39, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), n - 1), "ring: reopened after rewinds, continues exactly");
    ollm_session_close(s);
#undef QMATCH
    free(qr); ollm_model_close(q);
}

/* Qwen3-Next's recurrent state cannot be undone: a rewind below it continues from the state at the end of the last
   prefill call (in memory), from a snapshot state-N.bin in the folder, or from token 0 — the logits are those of an
   uninterrupted run every time. The document-then-questions pattern: prefill the document, close; each question
   reopens, rewinds to the document's end and continues from its snapshot. */
static int resumed_from_snapshot;   /* the library said it continued from a snapshot */
static int count_snapshots(void) {   /* state-N.bin files in the session folder */
    DIR *d = opendir(dir); struct dirent *e; int k = 0;
    while (d && (e = readdir(d)) != NULL) k += strncmp(e->d_name, "state-", 6) == 0;
    if (d) closedir(d);
    return k;
}
static void on_resume_log(void *user, ollm_log_level level, const char *msg) {
    (void)user; (void)level;
    if (strstr(msg, "from a snapshot") || strstr(msg, "from its snapshot")) resumed_from_snapshot++;
}
static void test_state_rewind(const char *path) {
    ollm_model *q = open_model(path); ollm_session *s; ollm_session_config sc = ollm_session_config_default();
    ollm_generate_config g = ollm_generate_config_default();
    int qv = ollm_model_get_info(q)->vocab, i, n = 60; int32_t qi[60], out[10]; size_t n_out = 0;
    float *qr = (float *)malloc((size_t)n * qv * 4); char snap[600], path_state[600]; struct stat st;
#define QMATCH(l, pos) ((l) && memcmp((l), qr + (int64_t)(pos) * qv, (size_t)qv * 4) == 0)
    q->log.fn = on_resume_log;
    for (i = 0; i < n; i++) qi[i] = (i * 29 + 3) % qv;
    sc.max_context = 128; sc.prefill_chunk = CHUNK;
    /* 40 prompt tokens, then 10 generated ones: the reference is all 50 in one prefill */
    ollm_session_open(q, &sc, &s);
    g.max_tokens = 10; g.ignore_eos = 1;
    CHECK(ollm_session_prefill(s, qi, 40, NULL) == OLLM_OK && ollm_session_generate(s, &g, out, 10, &n_out) == OLLM_OK &&
          n_out == 10, "state rewind: 10 tokens generated after 40");
    ollm_session_close(s);
    for (i = 0; i < 10; i++) qi[40 + i] = out[i];
    ollm_session_open(q, &sc, &s);
    CHECK(ollm_session_prefill(s, qi, (size_t)n, qr) == OLLM_OK, "state rewind: reference run");
    ollm_session_close(s);
    ollm_session_open(q, &sc, &s);
    CHECK(ollm_session_prefill(s, qi, 40, NULL) == OLLM_OK && ollm_session_generate(s, &g, out, 10, &n_out) == OLLM_OK,
          "state rewind: prefill 40 (the state kept in memory), generate 10");
    resumed_from_snapshot = 0;
    CHECK(ollm_session_rewind(s, 45) == OLLM_OK && ollm_session_prefill(s, qi + 45, 5, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), 49) && resumed_from_snapshot == 1,
          "state rewind: into generated tokens, from the prompt's state in memory");
    resumed_from_snapshot = 0;
    CHECK(ollm_session_rewind(s, 30) == OLLM_OK && ollm_session_prefill(s, qi + 30, (size_t)n - 30, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), n - 1) && resumed_from_snapshot == 0,
          "state rewind: below every snapshot (no folder): from token 0");
    ollm_session_close(s);
    /* the folder: a document, then questions that rewind to its end */
    sc.dir = dir;
    clear_dir();
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_prefill(s, qi, 40, NULL) == OLLM_OK,
          "state rewind: the document (40 tokens) into a folder");
    ollm_session_close(s);
    snprintf(snap, sizeof snap, "%s/state-40.bin", dir);
    CHECK(stat(snap, &st) == 0, "state rewind: a snapshot of the state after the document");
    for (i = 0; i < 2; i++) {   /* two questions, each with its own tokens after the document */
        int32_t qq[24]; int j;
        for (j = 0; j < 24; j++) qq[j] = (j * 7 + 11 * (i + 1)) % qv;
        CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_rewind(s, 40) == OLLM_OK &&
              ollm_session_prefill(s, qq, 20, NULL) == OLLM_OK, "state rewind: a question after the document");
        for (j = 20; j < 24; j++) ollm_session_prefill(s, qq + j, 1, NULL);   /* too short for snapshots in the folder */
        ollm_session_close(s);
    }
    snprintf(snap, sizeof snap, "%s/state-60.bin", dir);
    CHECK(stat(snap, &st) == 0 && count_snapshots() == 2,
          "state rewind: the document's and the last question's snapshots are there, no others");
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 64 && ollm_session_rewind(s, 40) == OLLM_OK &&
          stat(snap, &st) != 0, "state rewind: a rewind removes the snapshots past its end");
    resumed_from_snapshot = 0;
    CHECK(ollm_session_prefill(s, qi + 40, (size_t)n - 40, NULL) == OLLM_OK && QMATCH(ollm_session_logits(s), n - 1) &&
          resumed_from_snapshot == 1, "state rewind: the document's own continuation, from its snapshot, exactly");
    ollm_session_close(s);
    /* a snapshot that cannot be written (a folder in its place) is a warning, not a failed prefill */
    clear_dir();
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK, "state rewind: a fresh folder");
    snprintf(snap, sizeof snap, "%s/state-40.bin", dir);
    CHECK(mkdir(snap, 0755) == 0 && ollm_session_prefill(s, qi, 40, NULL) == OLLM_OK,
          "state rewind: the prefill succeeds where its snapshot cannot be written");
    ollm_session_close(s);
    snprintf(path_state, sizeof path_state, "%s/state.bin", dir);
    unlink(path_state);   /* reopening then finds only the unreadable snapshot: passed over, the state rebuilt */
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 40 &&
          ollm_session_prefill(s, qi + 40, (size_t)n - 40, NULL) == OLLM_OK && QMATCH(ollm_session_logits(s), n - 1),
          "state rewind: an unreadable snapshot is passed over");
    ollm_session_close(s);
    rmdir(snap);
#undef QMATCH
    free(qr); ollm_model_close(q);
}

/* The KV cache in host memory (kv_host) for the other families: GPT-OSS's full layers and sliding rings, Qwen3-Next's
   gated-attention layers beside its recurrent state: logits identical to the cache on the device, through a folder's
   reopen and (GPT-OSS) a rewind past the ring. */
static void test_kv_host_family(const char *path) {
    ollm_model *q = open_model(path); ollm_session *s; ollm_session_config sc = ollm_session_config_default();
    int qv = ollm_model_get_info(q)->vocab, i, n = 60; int32_t qi[60]; char what[200];
    float *qr = (float *)malloc((size_t)n * qv * 4), *qh = (float *)malloc((size_t)n * qv * 4);
    for (i = 0; i < n; i++) qi[i] = (i * 41 + 7) % qv;
    sc.max_context = 128; sc.prefill_chunk = CHUNK;
    ollm_session_open(q, &sc, &s); ollm_session_prefill(s, qi, (size_t)n, qr); ollm_session_close(s);
    sc.kv_host = 1;
    snprintf(what, sizeof what, "kv_host %s: every position's logits identical to the device cache", path);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && s->kv_host && ollm_session_prefill(s, qi, (size_t)n, qh) == OLLM_OK &&
          memcmp(qr, qh, (size_t)n * qv * 4) == 0, what);
    snprintf(what, sizeof what, "kv_host %s: a rewind (past the sliding ring where there is one) continues exactly", path);
    CHECK(ollm_session_rewind(s, 12) == OLLM_OK && ollm_session_prefill(s, qi + 12, (size_t)n - 12, NULL) == OLLM_OK &&
          memcmp(ollm_session_logits(s), qr + (int64_t)(n - 1) * qv, (size_t)qv * 4) == 0, what);
    ollm_session_close(s);
    sc.dir = dir;
    clear_dir();
    ollm_session_open(q, &sc, &s); ollm_session_prefill(s, qi, 40, NULL); ollm_session_close(s);
    snprintf(what, sizeof what, "kv_host %s: reopened from a folder, rewound past the ring, continues exactly", path);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == 40 && ollm_session_rewind(s, 20) == OLLM_OK &&
          ollm_session_prefill(s, qi + 20, (size_t)n - 20, NULL) == OLLM_OK &&
          memcmp(ollm_session_logits(s), qr + (int64_t)(n - 1) * qv, (size_t)qv * 4) == 0, what);
    ollm_session_close(s);
    free(qr); free(qh); ollm_model_close(q);
}

/* Prefill in groups of 3 chunks a pass over the layers (prefill_group) into a folder: the sliding layers' ring holds
   a whole group (its rows are committed after the pass), the folder reopens with the same logits, and rewinds past
   the ring read the window back from the log, as with one chunk a pass. */
typedef struct prog_rec { uint64_t v[64]; int n, stop_at; } prog_rec;
static int on_prog(void *user, uint64_t done, uint64_t total) {
    prog_rec *p = (prog_rec *)user; (void)total;
    if (p->n < 64) p->v[p->n] = done;
    p->n++;
    return p->stop_at > 0 && p->n >= p->stop_at;
}
static void test_group(const char *path) {
    ollm_model *q = open_model(path); ollm_session *s; ollm_session_config sc = ollm_session_config_default();
    int qv = ollm_model_get_info(q)->vocab, i, n = 60; int32_t qi[60]; float *qr = (float *)malloc((size_t)n * qv * 4);
#define QMATCH(l, pos) ((l) && memcmp((l), qr + (int64_t)(pos) * qv, (size_t)qv * 4) == 0)
    for (i = 0; i < n; i++) qi[i] = (i * 41 + 3) % qv;
    sc.max_context = 128; sc.prefill_chunk = CHUNK;
    ollm_session_open(q, &sc, &s);
    CHECK(ollm_session_prefill(s, qi, (size_t)n, qr) == OLLM_OK, "group: reference run, one chunk a pass");
    ollm_session_close(s);
    sc.prefill_group = 3; sc.dir = dir;
    clear_dir();
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_prefill(s, qi, (size_t)n, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), n - 1), "group: 3 chunks a pass into a folder, the same logits");
    if (q->d.sliding_window > 0)
        CHECK(s->ring == q->d.sliding_window + 3 * CHUNK - 1, "group: the sliding layers' ring holds a whole group");
    ollm_session_close(s);
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_length(s) == (size_t)n && QMATCH(ollm_session_logits(s), n - 1),
          "group: the folder reopens with the same logits");
    CHECK(ollm_session_rewind(s, 12) == OLLM_OK && ollm_session_prefill(s, qi + 12, 1, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), 12), "group: a rewind past the ring continues with the same logits");
    CHECK(ollm_session_prefill(s, qi + 13, (size_t)n - 13, NULL) == OLLM_OK && QMATCH(ollm_session_logits(s), n - 1),
          "group: and so does the rest, fed again in groups");
    ollm_session_close(s);
    sc.dir = NULL; sc.kv_host = 1;   /* the KV cache in host memory, each layer's uploaded for each chunk's attention */
    CHECK(ollm_session_open(q, &sc, &s) == OLLM_OK && ollm_session_prefill(s, qi, (size_t)n, NULL) == OLLM_OK &&
          QMATCH(ollm_session_logits(s), n - 1), "group: with the KV cache in host memory, the same logits");
    ollm_session_close(s);
    {   /* progress within a pass of 3 chunks: after each layer, never backwards, ending at the prompt's length; a stop
           asked for mid-pass takes effect at the pass's end, the session then holding the pass's tokens */
        prog_rec pr; int k, mono = 1, L = ollm_model_get_info(q)->n_layers; ollm_session_config sp = sc; char what[200];
        memset(&pr, 0, sizeof pr);
        sp.dir = NULL; sp.kv_host = 0; sp.prefill_group = 3; sp.progress = on_prog; sp.progress_user = &pr;
        CHECK(ollm_session_open(q, &sp, &s) == OLLM_OK && ollm_session_prefill(s, qi, (size_t)n, NULL) == OLLM_OK,
              "group: a prefill with progress");
        for (k = 1; k < pr.n && k < 64; k++) mono &= pr.v[k] >= pr.v[k - 1];
        snprintf(what, sizeof what, "group: progress after each of the %d layers of a 3-chunk pass (%d calls), never "
                 "backwards, ending at %d", L, pr.n, n);
        CHECK(pr.n == L + 1 && mono && pr.v[pr.n - 1] == (uint64_t)n && pr.v[0] > 0 && pr.v[0] < 3 * CHUNK, what);
        ollm_session_close(s);
        memset(&pr, 0, sizeof pr); pr.stop_at = 1;
        CHECK(ollm_session_open(q, &sp, &s) == OLLM_OK && ollm_session_prefill(s, qi, (size_t)n, NULL) == OLLM_ERR_CANCELLED &&
              ollm_session_length(s) == 3 * CHUNK && QMATCH(ollm_session_logits(s), 3 * CHUNK - 1),
              "group: a stop asked for after a pass's first layer ends the prefill after that pass, its logits kept");
        ollm_session_close(s);
    }
    {   /* the model config's prefill_group: the sessions' default, unless a session asks for its own */
        ollm_model *g = NULL; ollm_model_config c = ollm_model_config_default();
        c.backend = OLLM_BACKEND_CPU; c.threads = 1; c.prefill_group = 3;
        sc.kv_host = 0; sc.prefill_group = 0;
        CHECK(ollm_model_open(path, &c, &g) == OLLM_OK && ollm_session_open(g, &sc, &s) == OLLM_OK && s->group == 3 &&
              ollm_session_prefill(s, qi, (size_t)n, NULL) == OLLM_OK && QMATCH(ollm_session_logits(s), n - 1),
              "group: the model config's 3 chunks a pass, the sessions' default, the same logits");
        if (s) ollm_session_close(s);
        sc.prefill_group = 1; s = NULL;
        CHECK(g && ollm_session_open(g, &sc, &s) == OLLM_OK && s->group == 1, "group: a session's 1 overrides the model's");
        if (s) ollm_session_close(s);
        ollm_model_close(g);
    }
#undef QMATCH
    free(qr); ollm_model_close(q);
}

int main(void) {
    ollm_model *m; ollm_session *s; ollm_session_config sc = ollm_session_config_default(); int i;
    snprintf(dir, sizeof dir, "/tmp/ollm_test_store_%d", (int)getpid());
    m = open_model(FX);
    vocab = ollm_model_get_info(m)->vocab;
    for (i = 0; i < N_IDS; i++) ids[i] = (i * 53 + 7) % vocab;
    ref = (float *)malloc((size_t)N_IDS * vocab * 4);
    sc.max_context = 128; sc.prefill_chunk = CHUNK;
    ollm_session_open(m, &sc, &s);
    CHECK(ollm_session_prefill(s, ids, N_IDS, ref) == OLLM_OK, "reference run");
    ollm_session_close(s);
    test_save_resume(m);
    test_kv_host(m);
    test_refusals(m);
    test_faults(m);
    test_crashes(m);
    test_moe_family("tests/fixtures/gptoss_mxfp4");
    test_moe_family("tests/fixtures/qwen3next_new");
    test_ring("tests/fixtures/gptoss_mxfp4");
    test_state_rewind("tests/fixtures/qwen3next_new");
    test_kv_host_family("tests/fixtures/gptoss_mxfp4");
    test_kv_host_family("tests/fixtures/qwen3next_new");
    test_group("tests/fixtures/gptoss_mxfp4");
    test_group("tests/fixtures/qwen3next_new");
    test_group(FX);
    clear_dir();
    ollm_model_close(m);
    free(ref);
    return check_report();
}
