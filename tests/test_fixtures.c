/* The model fixtures against transformers: logits after every prompt position and a 20-token greedy continuation,
   for every directory under tests/fixtures that holds a reference.safetensors (written by tools/make_fixtures.py
   from transformers in float32), and the shipped examples/models/fortune-llama against the reference that
   tools/train_tiny.py wrote.
   usage: test_fixtures [--backend cpu|cuda] [--tol T] [--quantile Q] [--tight-experts [--refine-guess] |
                        --roomy-experts] [--staged [--stream] [--no-ram]] [DIR...] (default: cpu,
   1e-3 x max |logit|, every position: Q = 1; --tight-experts: MoE models with an expert cache of a quarter of all
   experts, so they are evicted, uploaded and guessed ahead all along; --roomy-experts: a cache of all but one
   token's picks, so guesses of a layer's experts, right or wrong, stay cached until that layer comes again (a guess
   only partly uploaded that was not picked must not); --refine-guess: each guess also ranked again once its layer's
   experts have run (expert_guess 2); --staged: the CPU backend staging weights as a
   device does; --stream: under the smallest budget at which the model opens, so its layers stream; --no-ram: no RAM
   tier, so streamed layers and experts are read from the checkpoint while running) */
/* the fixtures' experts are a few KB: read from disk in pieces of one direct-I/O block, they are split across their
   tensors as a real checkpoint's experts of a few MB are by the default 1 MiB pieces */
#define OLLM_XR_PIECE 4096u
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include "check.h"
#include "staged.h"

typedef struct ref { int32_t *ids, *greedy; float *logits; int64_t n, vocab, n_greedy; } ref;

static void *read_tensor(ollm__st *st, const char *name, int dtype, int64_t *shape0, int64_t *shape1) {
    const ollm__tensor *t = ollm__st_find(st, name); void *p;
    if (!t || t->dtype != dtype) return NULL;
    p = malloc((size_t)t->nbytes + 1);
    if (!p || ollm__pread_all(st->files[t->file].fd, p, t->nbytes, t->offset) != OLLM_OK) { free(p); return NULL; }
    *shape0 = t->shape[0];
    if (shape1) *shape1 = t->ndim > 1 ? t->shape[1] : 1;
    return p;
}

static int load_ref(const char *path, ref *r) {
    ollm__st st; ollm__log lg; int64_t n2, v2;
    memset(&lg, 0, sizeof lg); memset(r, 0, sizeof *r);
    memset(&st, 0, sizeof st);
    if (ollm__st_add_file(&st, path, path, &lg) != OLLM_OK || ollm__st_index(&st, &lg) != OLLM_OK) {
        printf("cannot read %s: %s\n", path, lg.err); ollm__st_free(&st); return 0;
    }
    r->ids = (int32_t *)read_tensor(&st, "ids", OLLM__I32, &r->n, NULL);
    r->logits = (float *)read_tensor(&st, "logits", OLLM__F32, &n2, &r->vocab);
    r->greedy = (int32_t *)read_tensor(&st, "greedy", OLLM__I32, &r->n_greedy, &v2);
    ollm__st_free(&st);
    return r->ids && r->logits && r->greedy && n2 == r->n;
}

static double quantile = 1.0;   /* --quantile Q: the check is on this quantile of the per-position errors */
static int tight;               /* --tight-experts (1), --roomy-experts (2) */

/* --staged --stream: the smallest such budget (1 KiB steps) at which DIR opens, so that its layers stream */
static int stream, no_ram;   /* --no-ram: ram_bytes of 1, so streamed layers and experts are read from disk */
static int refine;           /* --refine-guess: under --tight-experts, each guess ranked again (expert_guess 2) */
static uint64_t stream_budget(const char *dir, ollm_model_config mc) {
    ollm_model *m; uint64_t lo = 1u << 20, hi = 1u << 30;
    mc.ram_bytes = no_ram ? 1 : 0;
    while (hi - lo > 1024) {
        uint64_t mid = lo + (hi - lo) / 2; int ok;
        staged_budget = mid;
        ok = ollm_model_open(dir, &mc, &m) == OLLM_OK;
        ollm_model_close(m);
        if (ok) hi = mid; else lo = mid;
    }
    return hi;
}

/* Under --tight-experts: a cache of a quarter of the model's experts, at least three tokens' picks; --roomy-experts:
   all but one token's picks (0: no experts) */
static int tight_slots(const ollm__desc *d) {
    int want = tight == 2 ? d->n_layers * d->n_experts - d->n_experts_per_tok : d->n_layers * d->n_experts / 4;
    if (d->n_experts <= 0) return 0;
    return want < 3 * d->n_experts_per_tok ? 3 * d->n_experts_per_tok : want;
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y;
}
static void run_dir(const char *dir, const char *ref_path, ollm_backend backend, double tol) {
    char path[4096], what[4400]; ref r; ollm_model *m; ollm_session *s; ollm_model_config mc = ollm_model_config_default();
    ollm_session_config sc = ollm_session_config_default(); ollm_generate_config g = ollm_generate_config_default();
    float *logits; int32_t *out; size_t n_out = 0; int64_t i, k; double maxd = 0, maxl = 0;
    if (ref_path) snprintf(path, sizeof path, "%s", ref_path);
    else snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    if (!load_ref(path, &r)) { CHECK(0, path); return; }
    mc.backend = backend; mc.ram_bytes = no_ram ? 1 : 0;
    if (stream) staged_budget = stream_budget(dir, ollm_model_config_default());
    if (tight) {   /* the family's expert count, from a first open */
        if (ollm_model_open(dir, &mc, &m) != OLLM_OK || !(mc.expert_slots = tight_slots(&m->d))) {
            printf("  %s: no experts, skipped under --tight-experts\n", dir);
            ollm_model_close(m); free(r.ids); free(r.logits); free(r.greedy); return;
        }
        ollm_model_close(m);
        mc.expert_guess = refine ? 2 : 1;
    }
    if (ollm_model_open(dir, &mc, &m) != OLLM_OK) {
        snprintf(what, sizeof what, "%s opens: %s", dir, ollm_model_last_error(m));
        CHECK(0, what); ollm_model_close(m); return;
    }
    CHECK(ollm_model_get_info(m)->vocab == r.vocab, "fixture vocab matches the model");
    if (stream) {
        snprintf(what, sizeof what, "%s: %d of %d layers stream at the smallest budget (%.2f MB)", dir,
                 ollm_model_get_info(m)->streamed_layers, ollm_model_get_info(m)->n_layers, (double)staged_budget / 1e6);
        if (ollm_model_get_info(m)->n_layers > 2) CHECK(ollm_model_get_info(m)->streamed_layers > 0, what);   /* 2: as
            many as the streaming slots, so resident */
        printf("  %s\n", what);
    }
    sc.max_context = (int32_t)(r.n + r.n_greedy + 1);
    sc.prefill_chunk = 48;                     /* several chunks: exercises the chunked prefill */
    logits = (float *)malloc((size_t)(r.n * r.vocab) * sizeof *logits);
    out = (int32_t *)calloc((size_t)r.n_greedy, sizeof *out);
    CHECK(ollm_session_open(m, &sc, &s) == OLLM_OK, "session opens");
    CHECK(ollm_session_prefill(s, r.ids, (size_t)r.n, logits) == OLLM_OK, "prefill");
    {
        double *pos = (double *)calloc((size_t)r.n, sizeof *pos), q;
        for (i = 0; i < r.n * r.vocab; i++) {
            double d = fabs((double)logits[i] - r.logits[i]);
            if (!(d <= maxd)) maxd = d;            /* NaN propagates into maxd */
            if (!(d <= pos[i / r.vocab])) pos[i / r.vocab] = d;
            if (fabs(r.logits[i]) > maxl) maxl = fabs(r.logits[i]);
        }
        qsort(pos, (size_t)r.n, sizeof *pos, cmp_double);
        q = maxd != maxd ? maxd : pos[(int64_t)((double)(r.n - 1) * quantile)];
        if (quantile < 1.0)
            snprintf(what, sizeof what, "%s: %g-quantile of per-position max |dlogit| %.3g <= %.0e x max |logit| %.3g "
                     "(max %.3g) (%s)", dir, quantile, q, tol, maxl, maxd, ollm_model_get_info(m)->backend);
        else
            snprintf(what, sizeof what, "%s: max |dlogit| %.3g <= %.0e x max |logit| %.3g (%s)", dir, maxd, tol, maxl,
                     ollm_model_get_info(m)->backend);
        CHECK(q <= tol * maxl, what);
        free(pos);
    }
    printf("  %s\n", what);
    g.max_tokens = (int32_t)r.n_greedy; g.ignore_eos = 1;
    CHECK(ollm_session_generate(s, &g, out, (size_t)r.n_greedy, &n_out) == OLLM_OK, "greedy generation runs");
    snprintf(what, sizeof what, "%s: %lld greedy tokens identical to transformers", dir, (long long)r.n_greedy);
    CHECK(n_out == (size_t)r.n_greedy && memcmp(out, r.greedy, (size_t)r.n_greedy * sizeof *out) == 0, what);
    if (memcmp(out, r.greedy, (size_t)r.n_greedy * sizeof *out) != 0) {
        printf("    got     "); for (i = 0; i < r.n_greedy; i++) printf(" %d", out[i]);
        printf("\n    expected"); for (i = 0; i < r.n_greedy; i++) printf(" %d", r.greedy[i]); printf("\n");
    }
    {   /* chunks of 16 run through each layer 3 at a time (prefill_group) give what one chunk a pass gives, bit for
           bit, at every position, and the same greedy continuation */
        ollm_session *s1, *s3; float *l1 = (float *)malloc((size_t)(r.n * r.vocab) * sizeof *l1);
        float *l3 = (float *)malloc((size_t)(r.n * r.vocab) * sizeof *l3); int32_t *o3 = (int32_t *)calloc((size_t)r.n_greedy + 1, sizeof *o3);
        size_t n3 = 0; ollm_session_config sg = sc;
        sg.prefill_chunk = 16;
        CHECK(ollm_session_open(m, &sg, &s1) == OLLM_OK && ollm_session_prefill(s1, r.ids, (size_t)r.n, l1) == OLLM_OK,
              "prefill in chunks of 16");
        sg.prefill_group = 3;
        CHECK(ollm_session_open(m, &sg, &s3) == OLLM_OK && ollm_session_prefill(s3, r.ids, (size_t)r.n, l3) == OLLM_OK,
              "prefill in chunks of 16, 3 a pass over the layers");
        snprintf(what, sizeof what, "%s: 3 chunks a pass over the layers: every position's logits the same bit for bit", dir);
        CHECK(memcmp(l1, l3, (size_t)(r.n * r.vocab) * sizeof *l1) == 0, what);
        CHECK(ollm_session_generate(s3, &g, o3, (size_t)r.n_greedy, &n3) == OLLM_OK && n3 == (size_t)r.n_greedy &&
              memcmp(o3, r.greedy, (size_t)r.n_greedy * sizeof *o3) == 0, "and the greedy continuation after it");
        ollm_session_close(s1); ollm_session_close(s3); free(l1); free(l3); free(o3);
    }
    if (stream && ollm_model_get_info(m)->n_layers > 2) {   /* the automatic prefill_group: layers stream under a budget
        planned for chunks of 16 and this context, so a pass takes several (the same logits as one chunk a pass) */
        ollm_model_config ma = mc; ollm_model *ga = NULL; ollm_session *s1 = NULL, *sa = NULL; uint64_t keep = staged_budget;
        float *l1 = (float *)malloc((size_t)(r.n * r.vocab) * sizeof *l1), *la = (float *)malloc((size_t)(r.n * r.vocab) * sizeof *la);
        ollm_session_config sg = sc;
        ma.prefill_chunk = 16; ma.max_context = sc.max_context;
        int step;
        staged_budget = stream_budget(dir, ma);
        for (step = 0; step < 64; step++, staged_budget += 4096) {   /* the least budget (4 KiB steps) with room for a group */
            if (ollm_model_open(dir, &ma, &ga) != OLLM_OK || ollm_model_get_info(ga)->streamed_layers == 0 || ga->group > 1) break;
            ollm_model_close(ga); ga = NULL;
        }
        CHECK(ga != NULL, "opens under a budget planned for chunks of 16");
        snprintf(what, sizeof what, "%s: %d of %d layers stream, a prefill pass takes %d chunks of 16 (automatic)", dir,
                 ga ? ollm_model_get_info(ga)->streamed_layers : 0, ollm_model_get_info(m)->n_layers, ga ? ga->group : 0);
        CHECK(ga && ollm_model_get_info(ga)->streamed_layers > 0 && ga->group > 1, what);
        printf("  %s\n", what);
        sg.prefill_chunk = 0; sg.prefill_group = 1;
        CHECK(ga && ollm_session_open(ga, &sg, &s1) == OLLM_OK && ollm_session_prefill(s1, r.ids, (size_t)r.n, l1) == OLLM_OK,
              "prefill one chunk of 16 a pass");
        sg.prefill_group = 0;
        CHECK(ga && ollm_session_open(ga, &sg, &sa) == OLLM_OK && sa->group == ga->group &&
              ollm_session_prefill(sa, r.ids, (size_t)r.n, la) == OLLM_OK, "prefill with the model's automatic group");
        CHECK(s1 && sa && memcmp(l1, la, (size_t)(r.n * r.vocab) * sizeof *l1) == 0,
              "the automatic group: every position's logits the same bit for bit");
        if (s1) ollm_session_close(s1);
        if (sa) ollm_session_close(sa);
        ollm_model_close(ga); free(l1); free(la); staged_budget = keep;
    }
    /* one token at a time (the decode path), and 5 at a time (decode-sized groups: several rows an expert in the MoE
       families' grouped products), must give the same last logits as the chunked prefill */
    for (k = 1; k <= 5; k += 4) {
        ollm_session *s1; const float *l1; double d1 = 0;
        sc.prefill_chunk = k;
        CHECK(ollm_session_open(m, &sc, &s1) == OLLM_OK, "second session opens");
        for (i = 0; i < r.n; i += k) ollm_session_prefill(s1, &r.ids[i], (size_t)(r.n - i < k ? r.n - i : k), NULL);
        l1 = ollm_session_logits(s1);
        CHECK(l1 != NULL, "logits after feeding in small pieces");
        for (i = 0; l1 && i < r.vocab; i++) {
            double d = fabs((double)l1[i] - r.logits[(r.n - 1) * r.vocab + i]);
            if (!(d <= d1)) d1 = d;
        }
        snprintf(what, sizeof what, "%s: %s last logits within tolerance (%.3g)", dir, k == 1 ? "token-by-token" :
                 "5-token pieces:", d1);
        CHECK(d1 <= tol * maxl, what);
        ollm_session_close(s1);
    }
    if (ollm_model_get_info(m)->expert_slots) {
        const ollm_model_info *mi = ollm_model_get_info(m);
        printf("  %s: expert cache of %d slots (%d layers x %d experts): %llu hits, %llu misses, %llu guessed ahead, "
               "%llu of them picked; %.2f MB read from disk while running\n", dir, mi->expert_slots, m->d.n_layers,
               m->d.n_experts, (unsigned long long)mi->expert_hits, (unsigned long long)mi->expert_misses,
               (unsigned long long)mi->expert_guesses, (unsigned long long)mi->expert_guess_hits,
               (double)mi->disk_bytes_read / 1e6);
        if (tight == 1) CHECK(mi->expert_misses > (uint64_t)mi->expert_slots, "under --tight-experts experts are evicted");
        if (tight && !no_ram) CHECK(mi->expert_guesses > 0, "experts in RAM are guessed ahead");
        if (no_ram) CHECK(mi->disk_bytes_read > 0, "under --no-ram experts are read from disk while running");
    }
    ollm_session_close(s); ollm_model_close(m);
    free(logits); free(out); free(r.ids); free(r.logits); free(r.greedy);
}

int main(int argc, char **argv) {
    ollm_backend backend = OLLM_BACKEND_CPU; double tol = 1e-3; int i, ndirs = 0;
    const char *dirs[64];
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            i++; backend = strcmp(argv[i], "cuda") == 0 ? OLLM_BACKEND_CUDA : OLLM_BACKEND_CPU;
            if (backend == OLLM_BACKEND_CUDA) tol = 2e-2;
        } else if (strcmp(argv[i], "--tol") == 0 && i + 1 < argc) tol = atof(argv[++i]);
        else if (strcmp(argv[i], "--quantile") == 0 && i + 1 < argc) quantile = atof(argv[++i]);
        else if (strcmp(argv[i], "--tight-experts") == 0) tight = 1;
        else if (strcmp(argv[i], "--roomy-experts") == 0) tight = 2;
        else if (strcmp(argv[i], "--staged") == 0) ollm__backend_hook = staged_backend;
        else if (strcmp(argv[i], "--stream") == 0) stream = 1;
        else if (strcmp(argv[i], "--no-ram") == 0) no_ram = 1;
        else if (strcmp(argv[i], "--refine-guess") == 0) refine = 1;
        else if (ndirs < 64) dirs[ndirs++] = argv[i];
    }
    if (ndirs == 0) {
        static char found[64][512]; DIR *d = opendir("tests/fixtures"); struct dirent *e;
        while (d && (e = readdir(d)) != NULL && ndirs < 64) {
            char p[1024]; struct stat st;
            snprintf(p, sizeof p, "tests/fixtures/%s/reference.safetensors", e->d_name);
            if (e->d_name[0] != '.' && stat(p, &st) == 0) {
                snprintf(found[ndirs], sizeof found[ndirs], "tests/fixtures/%s", e->d_name);
                dirs[ndirs] = found[ndirs]; ndirs++;
            }
        }
        if (d) closedir(d);
    }
    CHECK(ndirs > 0, "fixtures found (run from the repository root)");
    for (i = 0; i < ndirs; i++) run_dir(dirs[i], NULL, backend, tol);
    /* the model the repository ships (examples/models), against its reference from tools/train_tiny.py */
    if (argc == 1 || (argc == 3 && strcmp(argv[1], "--backend") == 0))
        run_dir("examples/models/fortune-llama", "tests/fixtures/tiny_reference.safetensors", backend, tol);
    return check_report();
}
