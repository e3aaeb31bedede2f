/* tests/test_kernels.c: every op of the CUDA backend against the CPU backend (ollm.h @cpu), on random inputs of odd
   shapes: sizes that are not multiples of the tiles, T = 1, attention over 4K..32K keys with GQA, windows and sinks,
   BF16/F16/F32 weights, MXFP4 and input-major expert weights, the mixture-of-experts ops (bias, gather, combine,
   clamped SwiGLU), Qwen3-Next's Gated DeltaNet and gate ops. Error measure: ||gpu - cpu|| / ||cpu|| (bf16 tensor-core paths <= 1e-2, fp32 paths <= 1e-4);
   NaN never passes; outputs are poisoned with NaN before each op so an unwritten element fails. Also: the memory
   budget, the bf16 copy cache of matmul inputs, the KV append, and (OLLM_TEST_STICKY=1) a sticky device error.
   No GPU or driver: prints "skipped: no CUDA driver" and exits 0.
   Build: cc -O2 tests/test_kernels.c -lm -lpthread -ldl */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"

static int pass, fail;
static double worst_bf16, worst_f32;
#define CHECK(c, what) ((c) ? (void)pass++ : (void)(fail++, printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, what)))

static void on_log(void *user, ollm_log_level level, const char *msg) {
    (void)user;
    if (level <= OLLM_LOG_INFO || getenv("OLLM_TEST_VERBOSE")) fprintf(stderr, "[%s] %s\n",
        level == OLLM_LOG_ERROR ? "error" : level == OLLM_LOG_WARN ? "warn" : level == OLLM_LOG_INFO ? "info" : "debug", msg);
}

static ollm__backend *G, *C;   /* the CUDA backend under test, the CPU reference */
static ollm__log lg;

/* ---- random data ---- */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static float frand(void) {   /* uniform [-1, 1) */
    return (float)((rng_next() >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float bf16_round(float f) { return ollm__bf16_to_f32(ollm__f32_to_bf16(f)); }
static uint16_t f32_to_f16(float f) {   /* round to nearest even, finite normal range only (test data) */
    uint32_t u; int32_t e; uint32_t m, r;
    memcpy(&u, &f, 4);
    e = (int32_t)((u >> 23) & 0xff) - 127 + 15; m = u & 0x7fffff;
    if (e <= 0) return (uint16_t)((u >> 16) & 0x8000);
    r = (uint32_t)((u >> 16) & 0x8000) | ((uint32_t)e << 10) | (m >> 13);
    if ((m & 0x1fff) > 0x1000 || ((m & 0x1fff) == 0x1000 && (r & 1))) r++;
    return (uint16_t)r;
}

/* ---- a tensor on both backends ---- */
typedef struct pair { ollm__buf c, g; uint64_t bytes; } pair;
static pair mk(uint64_t bytes, const void *host) {
    pair p; memset(&p, 0, sizeof p); p.bytes = bytes;
    if (C->alloc(C, bytes, &p.c) != OLLM_OK || G->alloc(G, bytes, &p.g) != OLLM_OK) { printf("alloc %llu failed: %s\n", (unsigned long long)bytes, lg.err); exit(1); }
    if (host) { C->upload(C, p.c, host, bytes); G->upload(G, p.g, host, bytes); }
    return p;
}
static void rm(pair *p) { C->release(C, &p->c); G->release(G, &p->g); }
static pair mkf(int64_t n, float scale) {   /* n random floats */
    float *h = (float *)malloc((size_t)n * 4); int64_t i; pair p;
    for (i = 0; i < n; i++) h[i] = frand() * scale;
    p = mk((uint64_t)n * 4, h); free(h); return p;
}
typedef struct wpair { ollm__w c, g; } wpair;
static wpair mkw(int dtype, int64_t rows, int64_t cols, float scale) {
    int64_t n = rows * cols, i; size_t es = ollm__dtype_size[dtype]; void *h = malloc((size_t)n * es); wpair w; pair p;
    for (i = 0; i < n; i++) {
        float f = frand() * scale;
        if (dtype == OLLM__F32) ((float *)h)[i] = f;
        else if (dtype == OLLM__BF16) ((uint16_t *)h)[i] = ollm__f32_to_bf16(f);
        else ((uint16_t *)h)[i] = f32_to_f16(f);
    }
    p = mk((uint64_t)n * es, h); free(h);
    w.c.data = p.c; w.g.data = p.g; w.c.dtype = w.g.dtype = (uint8_t)dtype; w.c.rows = w.g.rows = rows; w.c.cols = w.g.cols = cols;
    return w;
}
static void rmw(wpair *w) { C->release(C, &w->c.data); G->release(G, &w->g.data); }
static void poison(ollm__buf g, uint64_t bytes) {   /* NaN everywhere: an element the kernel skips fails the check */
    void *h = malloc((size_t)bytes); memset(h, 0xff, (size_t)bytes); G->upload(G, g, h, bytes); free(h);
}

/* ||gpu - cpu|| / ||cpu|| over n floats; NaN or a size mismatch is +inf */
static double relerr(ollm__buf cb, ollm__buf gb, int64_t n, double *maxabs) {
    float *h = (float *)malloc((size_t)n * 4); const float *r = (const float *)cb.ptr; double num = 0, den = 0, mx = 0; int64_t i;
    ollm_result res = G->download(G, h, gb, (uint64_t)n * 4);
    if (res != OLLM_OK) { printf("download: %s\n", lg.err); free(h); return INFINITY; }
    for (i = 0; i < n; i++) {
        double d = (double)h[i] - r[i];
        if (h[i] != h[i]) { num = INFINITY; break; }
        num += d * d; den += (double)r[i] * r[i];
        if (fabs(d) > mx) mx = fabs(d);
    }
    free(h);
    if (maxabs) *maxabs = mx;
    return num == INFINITY ? INFINITY : den > 0 ? sqrt(num / den) : sqrt(num);
}
static void report(const char *what, double err, double mx, double tol) {
    int ok = err <= tol;
    printf("%s %-62s rel %.2e  max|d| %.2e  (tol %.0e)\n", ok ? "ok  " : "FAIL", what, err, mx, tol);
    CHECK(ok, what);
    if (tol >= 1e-3) { if (err > worst_bf16 && err != INFINITY) worst_bf16 = err; }
    else if (err > worst_f32 && err != INFINITY) worst_f32 = err;
}
static const char *dtn(int dt) { return ollm__dtype_names[dt]; }

/* ---- the ops ---- */
static void t_embed(int dt, int T, int64_t vocab, int64_t cols) {
    wpair tab = mkw(dt, vocab, cols, 1.0f); pair x = mk((uint64_t)T * cols * 4, NULL);
    int32_t *ids = (int32_t *)malloc((size_t)T * 4); int t; char what[128]; double e, mx;
    for (t = 0; t < T; t++) ids[t] = (int32_t)((frand() + 1.0f) * 0.5f * (float)vocab) % (int32_t)vocab;
    ids[0] = (int32_t)vocab - 1;
    poison(x.g, x.bytes);
    C->embed(C, x.c, &tab.c, ids, T);
    CHECK(G->embed(G, x.g, &tab.g, ids, T) == OLLM_OK, "embed runs");
    snprintf(what, sizeof what, "embed %s T=%d vocab=%lld cols=%lld", dtn(dt), T, (long long)vocab, (long long)cols);
    e = relerr(x.c, x.g, (int64_t)T * cols, &mx); report(what, e, mx, 1e-6);
    free(ids); rm(&x); rmw(&tab);
}

static void t_rmsnorm(int dt, int T, int n, int unit, int inplace) {
    wpair w = mkw(dt, 1, n, 1.0f); pair x = mkf((int64_t)T * n, 3.0f), y = mk((uint64_t)T * n * 4, NULL);
    char what[128]; double e, mx; float eps = 1e-5f;
    if (!inplace) poison(y.g, y.bytes);
    C->rmsnorm(C, inplace ? x.c : y.c, x.c, &w.c, T, n, eps, unit);
    CHECK(G->rmsnorm(G, inplace ? x.g : y.g, x.g, &w.g, T, n, eps, unit) == OLLM_OK, "rmsnorm runs");
    snprintf(what, sizeof what, "rmsnorm %s T=%d n=%d unit_offset=%d%s", dtn(dt), T, n, unit, inplace ? " in place" : "");
    e = inplace ? relerr(x.c, x.g, (int64_t)T * n, &mx) : relerr(y.c, y.g, (int64_t)T * n, &mx);
    report(what, e, mx, 1e-5);
    rm(&x); rm(&y); rmw(&w);
}

/* y (+)= x W^T (+ a bias of dtype bdt; -1: none). xoff: x starts this many floats into its buffer (unaligned views). */
static void t_matmul_b(int dt, int T, int N, int K, int acc, int xoff, int bdt) {
    wpair W = mkw(dt, N, K, 1.0f / sqrtf((float)K) * 1.7f), b = mkw(bdt < 0 ? OLLM__F32 : bdt, 1, N, 1.0f);
    pair xb = mkf((int64_t)T * K + xoff, 1.0f), y = mkf((int64_t)T * N, 1.0f);
    ollm__buf xc = ollm__view(xb.c, (uint64_t)xoff * 4, (uint64_t)T * K * 4), xg = ollm__view(xb.g, (uint64_t)xoff * 4, (uint64_t)T * K * 4);
    char what[128]; double e, mx, tol = (dt == OLLM__BF16 && T > 8 && K % 8 == 0 && N >= 64) ? 1e-2 : 1e-4;   /* N < 64: fp32 */
    if (!acc) poison(y.g, y.bytes);
    C->matmul(C, y.c, xc, &W.c, bdt < 0 ? NULL : &b.c, T, acc);
    CHECK(G->matmul(G, y.g, xg, &W.g, bdt < 0 ? NULL : &b.g, T, acc) == OLLM_OK, "matmul runs");
    snprintf(what, sizeof what, "matmul %s T=%d N=%d K=%d%s%s%s%s%s", dtn(dt), T, N, K, acc ? " y+=" : "", xoff ? " x unaligned" : "",
             bdt < 0 ? "" : " +bias ", bdt < 0 ? "" : dtn(bdt), ((ollm__cu *)G)->wgmma ? " (wgmma where it applies)" : "");
    e = relerr(y.c, y.g, (int64_t)T * N, &mx); report(what, e, mx, tol);
    rm(&xb); rm(&y); rmw(&W); rmw(&b);
}
static void t_matmul(int dt, int T, int N, int K, int acc, int xoff) { t_matmul_b(dt, T, N, K, acc, xoff, -1); }
/* prefill shapes through both tensor-core GEMMs where the device has two (Hopper: wgmma, and mma.sync) */
static void t_matmul_gemms(int T, int N, int K, int acc) {
    ollm__cu *g = (ollm__cu *)G; int had = g->wgmma;
    t_matmul(OLLM__BF16, T, N, K, acc, 0);
    if (had) { g->wgmma = 0; t_matmul(OLLM__BF16, T, N, K, acc, 0); g->wgmma = had; }
}

/* the bf16 copy of a matmul input: reused for the next weight, redone after x changes */
static void t_matmul_reuse(void) {
    int T = 40, N = 200, K = 256; double e, mx;
    wpair W1 = mkw(OLLM__BF16, N, K, 0.1f), W2 = mkw(OLLM__BF16, N + 8, K, 0.1f);
    pair x = mkf((int64_t)T * K, 1.0f), y1 = mk((uint64_t)T * N * 4, NULL), y2 = mk((uint64_t)T * (N + 8) * 4, NULL);
    float *h = (float *)malloc((size_t)T * K * 4); int i;
    C->matmul(C, y1.c, x.c, &W1.c, NULL, T, 0); G->matmul(G, y1.g, x.g, &W1.g, NULL, T, 0);
    C->matmul(C, y2.c, x.c, &W2.c, NULL, T, 0); G->matmul(G, y2.g, x.g, &W2.g, NULL, T, 0);   /* hits the copy */
    e = relerr(y2.c, y2.g, (int64_t)T * (N + 8), &mx); report("matmul bf16 reusing the bf16 copy of x", e, mx, 1e-2);
    for (i = 0; i < T * K; i++) h[i] = frand();
    C->upload(C, x.c, h, (uint64_t)T * K * 4); G->upload(G, x.g, h, (uint64_t)T * K * 4);   /* x changes: copy stale */
    C->matmul(C, y1.c, x.c, &W1.c, NULL, T, 0); G->matmul(G, y1.g, x.g, &W1.g, NULL, T, 0);
    e = relerr(y1.c, y1.g, (int64_t)T * N, &mx); report("matmul bf16 after x was re-uploaded", e, mx, 1e-2);
    C->silu_mul(C, x.c, x.c, (int64_t)T * K); G->silu_mul(G, x.g, x.g, (int64_t)T * K);     /* x changes by a kernel */
    C->matmul(C, y2.c, x.c, &W2.c, NULL, T, 0); G->matmul(G, y2.g, x.g, &W2.g, NULL, T, 0);
    e = relerr(y2.c, y2.g, (int64_t)T * (N + 8), &mx); report("matmul bf16 after a kernel rewrote x", e, mx, 1e-2);
    free(h); rm(&x); rm(&y1); rm(&y2); rmw(&W1); rmw(&W2);
}

/* y (+)= x W^T for the expert layouts: MXFP4 (random codes, scales 2^-8 .. 2^0) and input-major floats */
static void t_matmul_fmt(int fmt, int dt, int T, int N, int K, int acc, int bdt) {
    wpair W, bias = mkw(bdt < 0 ? OLLM__F32 : bdt, 1, N, 1.0f); pair xb = mkf((int64_t)T * K, 1.0f), y = mkf((int64_t)T * N, 1.0f), sc; char what[128]; double e, mx;
    double tol = T > 8 ? 1e-2 : 1e-4;
    if (fmt == OLLM__W_MXFP4) {
        uint8_t *bl = (uint8_t *)malloc((size_t)N * K / 2), *s = (uint8_t *)malloc((size_t)N * K / 32); int64_t i;
        pair b;
        for (i = 0; i < (int64_t)N * K / 2; i++) bl[i] = (uint8_t)(rng_next() & 0xff);
        for (i = 0; i < (int64_t)N * K / 32; i++) s[i] = (uint8_t)(119 + rng_next() % 9);
        b = mk((uint64_t)N * K / 2, bl); sc = mk((uint64_t)N * K / 32, s); free(bl); free(s);
        memset(&W, 0, sizeof W);
        W.c.data = b.c; W.g.data = b.g; W.c.scales = sc.c; W.g.scales = sc.g; W.c.dtype = W.g.dtype = OLLM__U8;
        tol = T > 8 ? 1e-2 : 1e-4;
    } else { W = mkw(dt, K, N, 1.0f / sqrtf((float)K)); memset(&sc, 0, sizeof sc); }
    W.c.fmt = W.g.fmt = (uint8_t)fmt; W.c.rows = W.g.rows = N; W.c.cols = W.g.cols = K;
    if (!acc) poison(y.g, y.bytes);
    C->matmul(C, y.c, xb.c, &W.c, bdt < 0 ? NULL : &bias.c, T, acc);
    CHECK(G->matmul(G, y.g, xb.g, &W.g, bdt < 0 ? NULL : &bias.g, T, acc) == OLLM_OK, "matmul (expert layout) runs");
    snprintf(what, sizeof what, "matmul %s T=%d N=%d K=%d%s%s", fmt == OLLM__W_MXFP4 ? "MXFP4" : dt == OLLM__BF16 ?
             "input-major BF16" : dt == OLLM__F16 ? "input-major F16" : "input-major F32", T, N, K, acc ? " y+=" : "",
             bdt < 0 ? "" : " +bias");
    e = relerr(y.c, y.g, (int64_t)T * N, &mx); report(what, e, mx, tol);
    rm(&xb); rm(&y); rmw(&W); rmw(&bias);
    if (fmt == OLLM__W_MXFP4) rm(&sc);
}

/* n products of one input in one call (q, k, v): weights of ns[i] rows, K columns, dtype dt (dt2 for the last one:
   another dtype takes the one-by-one path), biases of dtype bdt on the odd ones (bdt < 0: none) */
static void t_matmul_n(int n, const int *ns, int T, int K, int dt, int dt2, int bdt) {
    wpair W[4], Bw[4]; pair x = mkf((int64_t)T * K, 1.0f), y[4]; ollm__buf yc[4], yg[4]; const ollm__w *Wc[4], *Wg[4], *Bc[4], *Bg[4];
    int i; char what[128]; double e = 0, mx = 0;
    for (i = 0; i < n; i++) {
        W[i] = mkw(i == n - 1 ? dt2 : dt, ns[i], K, 1.0f / sqrtf((float)K)); Bw[i] = mkw(bdt < 0 ? OLLM__F32 : bdt, 1, ns[i], 1.0f);
        y[i] = mk((uint64_t)T * ns[i] * 4, NULL); poison(y[i].g, y[i].bytes);
        yc[i] = y[i].c; yg[i] = y[i].g; Wc[i] = &W[i].c; Wg[i] = &W[i].g;
        Bc[i] = bdt >= 0 && i % 2 ? &Bw[i].c : NULL; Bg[i] = bdt >= 0 && i % 2 ? &Bw[i].g : NULL;
    }
    C->matmul_n(C, n, yc, x.c, Wc, Bc, T);
    CHECK(G->matmul_n(G, n, yg, x.g, Wg, Bg, T) == OLLM_OK, "matmul_n runs");
    for (i = 0; i < n; i++) { double m1, e1 = relerr(y[i].c, y[i].g, (int64_t)T * ns[i], &m1); if (e1 > e) e = e1; if (m1 > mx) mx = m1; }
    snprintf(what, sizeof what, "matmul_n %d products T=%d K=%d %s%s%s%s", n, T, K, dtn(dt), dt2 != dt ? "+" : "",
             dt2 != dt ? dtn(dt2) : "", bdt < 0 ? "" : " +bias");
    report(what, e, mx, T > 8 ? 1e-2 : 1e-4);
    for (i = 0; i < n; i++) { rm(&y[i]); rmw(&W[i]); rmw(&Bw[i]); }
    rm(&x);
}

/* G experts' products in one call (a token's picks): dense or MXFP4 weights stacked [G, N, K], groups of 1..maxr
   consecutive rows (maxr > 8: the per-group loop); with an odd G each group reads its rows of x from a random start
   (xrow), as one decoded token's experts all read its row; more than 12 groups: descriptors uploaded, not by value */
/* maxr < 0: groups of 1 .. -maxr rows, every third one empty (it must write nothing: its row0 is the next group's) */
static void t_grouped(int fmt, int dt, int G_, int maxr, int N, int K, int bdt) {
    int32_t row0[64], rows[64], xrow[64], *xr = G_ % 2 ? xrow : NULL; int g, R = 0, empty = maxr < 0; ollm__w Wc[64], Wg[64], Bc[64], Bg[64]; char what[128]; double e, mx;
    wpair bias = mkw(bdt < 0 ? OLLM__F32 : bdt, G_, N, 1.0f); uint64_t bb = (uint64_t)N * ollm__dtype_size[bdt < 0 ? OLLM__F32 : bdt];
    uint64_t wb = fmt == OLLM__W_MXFP4 ? (uint64_t)N * K / 2 : (uint64_t)N * K * ollm__dtype_size[dt], sb = (uint64_t)N * K / 32;
    wpair W; pair sc, xb, y;
    if (empty) maxr = -maxr;
    for (g = 0; g < G_; g++) { row0[g] = R; rows[g] = empty && g % 3 == 1 ? 0 : 1 + (int)(rng_next() % (uint64_t)maxr); R += rows[g]; }
    for (g = 0; g < G_; g++) xrow[g] = (int32_t)(rng_next() % (uint64_t)(R - rows[g] + 1));
    xb = mkf((int64_t)R * K, 1.0f); y = mk((uint64_t)R * N * 4, NULL);
    memset(&sc, 0, sizeof sc);
    if (fmt == OLLM__W_MXFP4) {
        uint8_t *bl = (uint8_t *)malloc((size_t)(wb * G_)), *s8 = (uint8_t *)malloc((size_t)(sb * G_)); uint64_t i; pair b;
        for (i = 0; i < wb * G_; i++) bl[i] = (uint8_t)(rng_next() & 0xff);
        for (i = 0; i < sb * G_; i++) s8[i] = (uint8_t)(119 + rng_next() % 9);
        b = mk(wb * G_, bl); sc = mk(sb * G_, s8); free(bl); free(s8);
        memset(&W, 0, sizeof W); W.c.data = b.c; W.g.data = b.g; W.c.dtype = W.g.dtype = OLLM__U8;
    } else W = mkw(dt, (int64_t)N * G_, K, 1.0f / sqrtf((float)K));
    for (g = 0; g < G_; g++) {
        Wc[g] = W.c; Wg[g] = W.g;
        Wc[g].fmt = Wg[g].fmt = (uint8_t)fmt; Wc[g].rows = Wg[g].rows = N; Wc[g].cols = Wg[g].cols = K;
        Wc[g].data = ollm__view(W.c.data, g * wb, wb); Wg[g].data = ollm__view(W.g.data, g * wb, wb);
        if (fmt == OLLM__W_MXFP4) { Wc[g].scales = ollm__view(sc.c, g * sb, sb); Wg[g].scales = ollm__view(sc.g, g * sb, sb); }
        Bc[g] = bias.c; Bg[g] = bias.g; Bc[g].rows = Bg[g].rows = N; Bc[g].cols = Bg[g].cols = 0;   /* row g of [G, N] */
        Bc[g].data = ollm__view(bias.c.data, g * bb, bb); Bg[g].data = ollm__view(bias.g.data, g * bb, bb);
    }
    poison(y.g, y.bytes);
    C->matmul_grouped(C, y.c, xb.c, Wc, bdt < 0 ? NULL : Bc, row0, xr, rows, G_);
    CHECK(G->matmul_grouped(G, y.g, xb.g, Wg, bdt < 0 ? NULL : Bg, row0, xr, rows, G_) == OLLM_OK, "matmul_grouped runs");
    snprintf(what, sizeof what, "matmul_grouped %s G=%d rows<=%d N=%d K=%d%s%s%s%s", fmt == OLLM__W_MXFP4 ? "MXFP4" : dtn(dt),
             G_, maxr, N, K, bdt < 0 ? "" : " +bias ", bdt < 0 ? "" : dtn(bdt), xr ? " xrow" : "", empty ? " some empty" : "");
    e = relerr(y.c, y.g, (int64_t)R * N, &mx); report(what, e, mx, maxr > 8 ? 1e-2 : 1e-4);
    rm(&xb); rm(&y); rmw(&W); rmw(&bias);
    if (fmt == OLLM__W_MXFP4) rm(&sc);
}

/* the mixture-of-experts plumbing: bias rows, gathered rows, the weighted combine, GPT-OSS's clamped SwiGLU */
static void t_moe_ops(int T, int k, int64_t H, int64_t I, int bias_dt) {
    int R = T * k, i; int32_t *idx = (int32_t *)malloc((size_t)R * 4), *rows = (int32_t *)malloc((size_t)R * 4);
    float *w = (float *)malloc((size_t)R * 4); char what[128]; double e, mx;
    pair x = mkf((int64_t)T * H, 1.0f), xg = mk((uint64_t)R * H * 4, NULL), gu = mkf((int64_t)R * 2 * I, 9.0f);
    pair act = mk((uint64_t)R * I * 4, NULL), acc = mkf((int64_t)T * H, 1.0f);
    wpair b = mkw(bias_dt, 3, H, 1.0f); ollm__w bc = b.c, bg = b.g;
    for (i = 0; i < R; i++) { idx[i] = (int32_t)(rng_next() % (uint64_t)T); rows[i] = (i * 7 + 3) % R; w[i] = frand(); }
    poison(xg.g, xg.bytes);
    C->gather(C, xg.c, x.c, idx, R, H);
    CHECK(G->gather(G, xg.g, x.g, idx, R, H) == OLLM_OK, "gather runs");
    snprintf(what, sizeof what, "gather R=%d width=%lld", R, (long long)H);
    e = relerr(xg.c, xg.g, (int64_t)R * H, &mx); report(what, e, mx, 1e-7);
    bc.data = ollm__view(b.c.data, (uint64_t)H * ollm__dtype_size[bias_dt], (uint64_t)H * ollm__dtype_size[bias_dt]);
    bg.data = ollm__view(b.g.data, (uint64_t)H * ollm__dtype_size[bias_dt], (uint64_t)H * ollm__dtype_size[bias_dt]);
    C->add_bias(C, xg.c, &bc, R, H);
    CHECK(G->add_bias(G, xg.g, &bg, R, H) == OLLM_OK, "add_bias runs");
    snprintf(what, sizeof what, "add_bias %s rows=%d n=%lld (row 1 of a stacked bias)", dtn(bias_dt), R, (long long)H);
    e = relerr(xg.c, xg.g, (int64_t)R * H, &mx); report(what, e, mx, 1e-6);
    C->combine(C, acc.c, xg.c, rows, w, T, k, H);
    CHECK(G->combine(G, acc.g, xg.g, rows, w, T, k, H) == OLLM_OK, "combine runs");
    snprintf(what, sizeof what, "combine T=%d k=%d width=%lld", T, k, (long long)H);
    e = relerr(acc.c, acc.g, (int64_t)T * H, &mx); report(what, e, mx, 1e-5);
    poison(act.g, act.bytes);
    C->swiglu_clamp(C, act.c, gu.c, R, I, 7.0f, 1.702f);
    CHECK(G->swiglu_clamp(G, act.g, gu.g, R, I, 7.0f, 1.702f) == OLLM_OK, "swiglu_clamp runs");
    snprintf(what, sizeof what, "swiglu_clamp rows=%d I=%lld (inputs beyond the limit 7)", R, (long long)I);
    e = relerr(act.c, act.g, (int64_t)R * I, &mx); report(what, e, mx, 1e-5);
    free(idx); free(rows); free(w); rm(&x); rm(&xg); rm(&gu); rm(&act); rm(&acc); rmw(&b);
}

/* Qwen3-Next's ops: the q / gate split, the sigmoid gate, and the Gated DeltaNet chain (split of the projections,
   causal conv with its carried state, l2norm + delta rule with its carried state S, the gated RMSNorm) */
static void t_deltanet(int T, int nk, int r, int dk, int dv, int K, int w_dt) {
    ollm__dn_dims d; int nv = nk * r, GW = 2 * dk + 2 * r * dv, CH = 2 * nk * dk + nv * dv, i; char what[160]; double e, mx;
    pair qkvz = mkf((int64_t)T * nk * GW, 1.0f), ba = mkf((int64_t)T * 2 * nv, 2.0f), mix = mk((uint64_t)T * CH * 4, NULL);
    pair z = mk((uint64_t)T * nv * dv * 4, NULL), beta = mk((uint64_t)T * nv * 4, NULL), g = mk((uint64_t)T * nv * 4, NULL);
    pair y = mk((uint64_t)T * CH * 4, NULL), st = mkf((int64_t)(K - 1) * CH, 1.0f), S = mkf((int64_t)nv * dk * dv, 0.5f);
    pair o = mk((uint64_t)T * nv * dv * 4, NULL), a = mk((uint64_t)T * dv * 4, NULL), b2 = mk((uint64_t)T * dv * 4, NULL);
    wpair A = mkw(w_dt, nv, 1, 1.0f), dtb = mkw(w_dt, nv, 1, 1.0f), cw = mkw(w_dt, CH, K, 0.5f), nw = mkw(w_dt, dv, 1, 1.0f);
    d.nk = nk; d.nv = nv; d.dk = dk; d.dv = dv; d.K = K;
    poison(mix.g, mix.bytes); poison(z.g, z.bytes); poison(beta.g, beta.bytes); poison(g.g, g.bytes);
    C->dn_split(C, mix.c, z.c, beta.c, g.c, qkvz.c, ba.c, &A.c, &dtb.c, &d, T);
    CHECK(G->dn_split(G, mix.g, z.g, beta.g, g.g, qkvz.g, ba.g, &A.g, &dtb.g, &d, T) == OLLM_OK, "dn_split runs");
    snprintf(what, sizeof what, "dn_split %s T=%d nk=%d r=%d dk=%d dv=%d: mix, z, beta, g", dtn(w_dt), T, nk, r, dk, dv);
    e = relerr(mix.c, mix.g, (int64_t)T * CH, &mx); e = fmax(e, relerr(z.c, z.g, (int64_t)T * nv * dv, &mx));
    e = fmax(e, relerr(beta.c, beta.g, (int64_t)T * nv, &mx)); e = fmax(e, relerr(g.c, g.g, (int64_t)T * nv, &mx));
    report(what, e, mx, 1e-6);
    poison(y.g, y.bytes);
    C->dn_conv(C, y.c, st.c, mix.c, &cw.c, T, CH, K);
    CHECK(G->dn_conv(G, y.g, st.g, mix.g, &cw.g, T, CH, K) == OLLM_OK, "dn_conv runs");
    snprintf(what, sizeof what, "dn_conv %s T=%d C=%d K=%d: output and carried state", dtn(w_dt), T, CH, K);
    e = fmax(relerr(y.c, y.g, (int64_t)T * CH, &mx), relerr(st.c, st.g, (int64_t)(K - 1) * CH, &mx));
    report(what, e, mx, 1e-5);
    poison(o.g, o.bytes);
    C->dn_rule(C, o.c, y.c, beta.c, g.c, S.c, &d, T);
    CHECK(G->dn_rule(G, o.g, y.g, beta.g, g.g, S.g, &d, T) == OLLM_OK, "dn_rule runs");
    snprintf(what, sizeof what, "dn_rule T=%d nk=%d nv=%d dk=%d dv=%d: output, state S, normalised q/k", T, nk, nv, dk, dv);
    e = fmax(relerr(o.c, o.g, (int64_t)T * nv * dv, &mx), relerr(S.c, S.g, (int64_t)nv * dk * dv, &mx));
    e = fmax(e, relerr(y.c, y.g, (int64_t)T * CH, &mx));
    report(what, e, mx, 1e-4);
    C->norm_gated(C, o.c, z.c, &nw.c, (int64_t)T * nv, dv, 1e-6f);
    CHECK(G->norm_gated(G, o.g, z.g, &nw.g, (int64_t)T * nv, dv, 1e-6f) == OLLM_OK, "norm_gated runs");
    snprintf(what, sizeof what, "norm_gated %s rows=%d n=%d", dtn(w_dt), T * nv, dv);
    e = relerr(o.c, o.g, (int64_t)T * nv * dv, &mx); report(what, e, mx, 1e-5);
    /* the gated attention's q / gate split and sigmoid gate, on rows of [q dv | gate dv] */
    poison(a.g, a.bytes); poison(b2.g, b2.bytes);
    C->split_cols(C, a.c, b2.c, mix.c, T, dv, dv);
    CHECK(G->split_cols(G, a.g, b2.g, mix.g, T, dv, dv) == OLLM_OK, "split_cols runs");
    C->sigmoid_mul(C, a.c, b2.c, (int64_t)T * dv);
    CHECK(G->sigmoid_mul(G, a.g, b2.g, (int64_t)T * dv) == OLLM_OK, "sigmoid_mul runs");
    snprintf(what, sizeof what, "split_cols + sigmoid_mul rows=%d cols=%d+%d", T, dv, dv);
    e = fmax(relerr(a.c, a.g, (int64_t)T * dv, &mx), relerr(b2.c, b2.g, (int64_t)T * dv, &mx)); report(what, e, mx, 1e-6);
    (void)i;
    rm(&qkvz); rm(&ba); rm(&mix); rm(&z); rm(&beta); rm(&g); rm(&y); rm(&st); rm(&S); rm(&o); rm(&a); rm(&b2);
    rmw(&A); rmw(&dtb); rmw(&cw); rmw(&nw);
}

/* The delta rule alone, from a non-zero state, with Qwen3-Next's kinds of inputs: q, k, v as the conv's SiLU
   outputs, beta = sigmoid(b) in (0, 1), g = -exp(A_log) softplus(a + dt_bias) (about -0.03 .. -7). The CUDA
   backend takes chunks of at most `chunk` tokens (64, 32; 0: the recurrent kernel), checked against the CPU's
   recurrence on the output, the final state and the normalised q / k; two calls, so the state is carried. */
static void t_dn_chunk(int T, int nk, int r, int dk, int dv, int chunk) {
    ollm__cu *cu = (ollm__cu *)G; ollm__dn_dims d; int nv = nk * r, CH = 2 * nk * dk + nv * dv, T2 = T / 3 + 1, h, t;
    int64_t i, n = (int64_t)(T + T2) * CH; float *hq = (float *)malloc((size_t)n * 4), *hb = (float *)malloc((size_t)(T + T2) * nv * 4);
    float *hg = (float *)malloc((size_t)(T + T2) * nv * 4), Alog[64], dtb[64]; char what[160]; double e, mx; const char *path;
    pair qkv, beta, g, S = mkf((int64_t)nv * dk * dv, 0.5f), o = mk((uint64_t)(T + T2) * nv * dv * 4, NULL);
    for (i = 0; i < n; i++) { float x = 2.0f * frand(); hq[i] = x / (1.0f + expf(-x)); }
    for (h = 0; h < nv && h < 64; h++) { Alog[h] = frand(); dtb[h] = frand(); }
    for (t = 0; t < T + T2; t++)
        for (h = 0; h < nv; h++) {
            float a = 3.0f * frand() - 1.5f + dtb[h % 64], sp = a > 20.0f ? a : log1pf(expf(a));
            hg[t * nv + h] = -expf(Alog[h % 64]) * sp; hb[t * nv + h] = 1.0f / (1.0f + expf(-4.0f * frand()));
        }
    qkv = mk((uint64_t)n * 4, hq); beta = mk((uint64_t)(T + T2) * nv * 4, hb); g = mk((uint64_t)(T + T2) * nv * 4, hg);
    d.nk = nk; d.nv = nv; d.dk = dk; d.dv = dv; d.K = 4;
    poison(o.g, o.bytes);
    cu->dn_chunk = chunk;
    path = T < 64 || chunk == 0 ? "recurrent" :
           chunk >= 64 && ollm__cu_dn_chunk_smem(4, dk) <= (unsigned)cu->smem_optin ? "chunks of 64" :
           ollm__cu_dn_chunk_smem(2, dk) <= (unsigned)cu->smem_optin ? "chunks of 32" : "recurrent (shared memory)";
    C->dn_rule(C, o.c, qkv.c, beta.c, g.c, S.c, &d, T);
    CHECK(G->dn_rule(G, o.g, qkv.g, beta.g, g.g, S.g, &d, T) == OLLM_OK, "dn_rule runs");
    {   /* the next T2 tokens from the state the first call left */
        ollm__buf oc = ollm__view(o.c, (uint64_t)T * nv * dv * 4, (uint64_t)T2 * nv * dv * 4);
        ollm__buf og = ollm__view(o.g, (uint64_t)T * nv * dv * 4, (uint64_t)T2 * nv * dv * 4);
        ollm__buf qc = ollm__view(qkv.c, (uint64_t)T * CH * 4, (uint64_t)T2 * CH * 4), qg = ollm__view(qkv.g, (uint64_t)T * CH * 4, (uint64_t)T2 * CH * 4);
        ollm__buf bc = ollm__view(beta.c, (uint64_t)T * nv * 4, (uint64_t)T2 * nv * 4), bg = ollm__view(beta.g, (uint64_t)T * nv * 4, (uint64_t)T2 * nv * 4);
        ollm__buf gc = ollm__view(g.c, (uint64_t)T * nv * 4, (uint64_t)T2 * nv * 4), gg = ollm__view(g.g, (uint64_t)T * nv * 4, (uint64_t)T2 * nv * 4);
        C->dn_rule(C, oc, qc, bc, gc, S.c, &d, T2);
        CHECK(G->dn_rule(G, og, qg, bg, gg, S.g, &d, T2) == OLLM_OK, "dn_rule runs");
    }
    cu->dn_chunk = 64;
    snprintf(what, sizeof what, "dn_rule T=%d+%d nk=%d nv=%d dk=%d dv=%d, %s: o, S, q/k", T, T2, nk, nv, dk, dv, path);
    e = fmax(relerr(o.c, o.g, (int64_t)(T + T2) * nv * dv, &mx), relerr(S.c, S.g, (int64_t)nv * dk * dv, &mx));
    e = fmax(e, relerr(qkv.c, qkv.g, n, &mx));
    report(what, e, mx, 1e-4);
    free(hq); free(hb); free(hg); rm(&qkv); rm(&beta); rm(&g); rm(&S); rm(&o);
}

/* q's nh heads and k's nk (0: none) */
static void t_rope(int T, int nh, int nk, int hd, int rot, int pos0, float mscale) {
    float inv[512]; int i; pair f, x = mkf((int64_t)T * nh * hd, 2.0f), k = mkf((int64_t)T * (nk ? nk : 1) * hd, 2.0f);
    char what[128]; double e, ek, mx, mxk;
    for (i = 0; i < rot / 2; i++) inv[i] = (float)(1.0 / pow(500000.0, 2.0 * i / rot));
    f = mk((uint64_t)(rot / 2 + 1) * 4, inv);
    C->rope(C, x.c, nh, k.c, nk, T, hd, rot, pos0, f.c, mscale);
    CHECK(G->rope(G, x.g, nh, k.g, nk, T, hd, rot, pos0, f.g, mscale) == OLLM_OK, "rope runs");
    snprintf(what, sizeof what, "rope T=%d heads=%d+%d hd=%d rot=%d pos0=%d mscale=%g", T, nh, nk, hd, rot, pos0, mscale);
    e = relerr(x.c, x.g, (int64_t)T * nh * hd, &mx);
    ek = relerr(k.c, k.g, (int64_t)T * (nk ? nk : 1) * hd, &mxk);   /* nk = 0: k untouched on both */
    report(what, e > ek ? e : ek, mx > mxk ? mx : mxk, 1e-5);
    rm(&x); rm(&k); rm(&f);
}

static void t_silu(int64_t n, int off) {
    pair g = mkf(n + off, 6.0f), u = mkf(n, 2.0f); char what[128]; double e, mx;
    ollm__buf gc = ollm__view(g.c, (uint64_t)off * 4, (uint64_t)n * 4), gg = ollm__view(g.g, (uint64_t)off * 4, (uint64_t)n * 4);
    C->silu_mul(C, gc, u.c, n);
    CHECK(G->silu_mul(G, gg, u.g, n) == OLLM_OK, "silu_mul runs");
    snprintf(what, sizeof what, "silu_mul n=%lld%s", (long long)n, off ? " unaligned" : "");
    e = relerr(g.c, g.g, n + off, &mx); report(what, e, mx, 1e-5);
    rm(&g); rm(&u);
}

/* Greedy decoding's argmax on the device against ollm__argmax (the host's, which test_core checks against the plain
   loop): kind 0 random, 1 the maximum repeated (the first of them wins), 2 NaNs among the values, 3 v[0] NaN (0 wins),
   4 every value -inf, 5 a maximum of 0 with -0 before +0 (equal), 6 few distinct values (many ties). */
static void t_argmax(int64_t n, int kind) {
    float *h = (float *)malloc((size_t)n * 4); int64_t i; int32_t got = -1, want; char what[96]; pair p;
    for (i = 0; i < n; i++) {
        h[i] = frand() * 30.0f;
        if (kind == 6) h[i] = (float)(int)(h[i] / 10.0f);
        if (kind == 4) h[i] = -INFINITY;
        if (kind == 5) h[i] = -1.0f - h[i] * h[i];
        if (kind == 2 && rng_next() % 5 == 0) h[i] = NAN;
    }
    if (kind == 1) for (i = n / 3; i < n; i += n / 4 + 1) h[i] = 100.0f;
    if (kind == 3 || kind == 2) h[kind == 3 ? 0 : n - 1] = NAN;
    if (kind == 5) { h[n / 2] = -0.0f; h[n - 1] = 0.0f; }
    p = mk((uint64_t)n * 4, h);
    want = ollm__argmax(h, (int32_t)n);
    CHECK(G->argmax(G, p.g, n, &got) == OLLM_OK, "argmax runs");
    snprintf(what, sizeof what, "argmax n=%lld kind %d: %d (host %d)", (long long)n, kind, got, want);
    CHECK(got == want, what);
    if (got == want) printf("ok   %s\n", what);
    rm(&p); free(h);
}

/* Attention of T new queries at pos0 over a cache holding pos0 random earlier positions. Keys and values are bf16
   values, so the GPU's bf16 cache holds exactly what the CPU's fp32 cache holds. ring > 0: the GPU's cache is a
   sliding window's ring of that many rows (position j in row j % ring) holding the positions it can, the CPU's a
   row per position. */
static void t_attn_ring(int nh, int nkv, int hd, int T, int pos0, int window, int sinks, int ring) {
    int ctx = pos0 + T + 3, kvw = nkv * hd, grows = ring ? ring : ctx; int64_t i, j, npast = (int64_t)pos0 * kvw, nnew = (int64_t)T * kvw;
    float *h = (float *)malloc((size_t)(npast + nnew) * 4); uint16_t *hb = (uint16_t *)malloc((size_t)(npast + 1) * 2);
    pair kc, vc, q, k, v, o; wpair sk; ollm__attn_args a; char what[160]; double e, mx;
    kc.c.ptr = NULL;
    C->alloc(C, (uint64_t)ctx * kvw * 4, &kc.c); G->alloc(G, (uint64_t)grows * kvw * 2, &kc.g);
    C->alloc(C, (uint64_t)ctx * kvw * 4, &vc.c); G->alloc(G, (uint64_t)grows * kvw * 2, &vc.g);
    if (!kc.c.ptr || !kc.g.ptr || !vc.c.ptr || !vc.g.ptr) { printf("attention: alloc failed: %s\n", lg.err); exit(1); }
    for (int pass_ = 0; pass_ < 2; pass_++) {   /* the earlier positions, in both caches */
        pair *cache = pass_ ? &vc : &kc;
        for (i = 0; i < npast; i++) { h[i] = bf16_round(frand() * (pass_ ? 1.0f : 2.0f)); hb[i] = ollm__f32_to_bf16(h[i]); }
        if (npast) C->upload(C, cache->c, h, (uint64_t)npast * 4);
        if (npast && !ring) G->upload(G, cache->g, hb, (uint64_t)npast * 2);
        for (j = ring && pos0 + T > ring ? pos0 + T - ring : 0; ring && j < pos0; j++)   /* what the ring holds */
            G->upload(G, ollm__view(cache->g, (uint64_t)(j % ring) * kvw * 2, (uint64_t)kvw * 2), hb + j * kvw, (uint64_t)kvw * 2);
    }
    for (i = 0; i < nnew; i++) h[i] = bf16_round(frand() * 2.0f);
    k = mk((uint64_t)nnew * 4, h);
    for (i = 0; i < nnew; i++) h[i] = bf16_round(frand());
    v = mk((uint64_t)nnew * 4, h);
    q = mkf((int64_t)T * nh * hd, 2.0f);
    o = mk((uint64_t)T * nh * hd * 4, NULL);
    poison(o.g, o.bytes);
    memset(&a, 0, sizeof a);
    a.T = T; a.pos0 = pos0; a.n_heads = nh; a.n_kv_heads = nkv; a.head_dim = hd; a.window = window;
    a.scale = 1.0f / sqrtf((float)hd);
    if (sinks) { sk = mkw(OLLM__BF16, 1, nh, 2.0f); }
    a.ring = 0;                              /* the CPU's cache: a row per position */
    a.sinks = sinks ? &sk.c : NULL;
    C->attention(C, o.c, q.c, k.c, v.c, kc.c, vc.c, &a);
    a.sinks = sinks ? &sk.g : NULL;
    a.ring = ring;
    {   /* prefill on sm_90a: the wgmma kernel, then FlashAttention-2 on the same inputs (appending the same rows again) */
        ollm__cu *g = (ollm__cu *)G; int had = g->fa3, pass_, passes = had && T >= 16 && (hd == 64 || hd == 128) ? 2 : 1;
        for (pass_ = 0; pass_ < passes; pass_++) {
            g->fa3 = pass_ ? 0 : had;
            if (pass_) poison(o.g, o.bytes);
            CHECK(G->attention(G, o.g, q.g, k.g, v.g, kc.g, vc.g, &a) == OLLM_OK, "attention runs");
            snprintf(what, sizeof what, "attention heads %d/%d hd=%d T=%d pos0=%d window=%d%s ring=%d%s", nh, nkv, hd, T,
                     pos0, window, sinks ? " sinks" : "", ring, passes == 1 ? "" : pass_ ? " (FA2)" : " (wgmma)");
            e = relerr(o.c, o.g, (int64_t)T * nh * hd, &mx); report(what, e, mx, 1e-2);
        }
        g->fa3 = had;
    }
    {   /* the appended rows are exactly bf16(k), bf16(v), at their positions' rows */
        uint16_t *got = (uint16_t *)malloc((size_t)nnew * 2); int bad = 0; int pass_;
        for (pass_ = 0; pass_ < 2; pass_++) {
            const float *src = (const float *)(pass_ ? v.c.ptr : k.c.ptr);
            for (j = 0; j < T; j++)
                G->download(G, got + j * kvw, ollm__view(pass_ ? vc.g : kc.g, (uint64_t)((pos0 + j) % grows) * kvw * 2,
                            (uint64_t)kvw * 2), (uint64_t)kvw * 2);
            for (i = 0; i < nnew; i++) if (got[i] != ollm__f32_to_bf16(src[i])) bad++;
        }
        CHECK(bad == 0, "attention appends bf16(k), bf16(v) at the rows of positions pos0..");
        free(got);
    }
    if (sinks) rmw(&sk);
    C->release(C, &kc.c); G->release(G, &kc.g); C->release(C, &vc.c); G->release(G, &vc.g);
    rm(&q); rm(&k); rm(&v); rm(&o); free(h); free(hb);
}
static void t_attn(int nh, int nkv, int hd, int T, int pos0, int window, int sinks) {
    t_attn_ring(nh, nkv, hd, T, pos0, window, sinks, 0);
}

static void t_budget(void) {   /* a 128 MiB budget: 64 MiB of it set aside for kernels and streams, 64 for allocations */
    ollm_model_config cfg = ollm_model_config_default(); ollm__backend *B = NULL; const char *why = ""; ollm__buf a, b2;
    cfg.vram_bytes = (uint64_t)32 << 20;
    CHECK(ollm__cuda_create(&cfg, &lg, &B, &why) == OLLM_ERR_NO_DEVICE && strstr(why, "too small"),
          "a 32 MiB budget is refused with the reason");
    cfg.vram_bytes = (uint64_t)128 << 20;
    CHECK(ollm__cuda_create(&cfg, &lg, &B, &why) == OLLM_OK, "second CUDA backend with a 128 MiB budget");
    if (!B) return;
    CHECK(B->alloc(B, (uint64_t)100 << 20, &a) == OLLM_ERR_BUDGET && strstr(lg.err, "MiB") && a.ptr == NULL,
          "100 MiB over the 64 MiB left for allocations: OLLM_ERR_BUDGET with the numbers");
    printf("     budget message: %s\n", lg.err);
    CHECK(B->alloc(B, (uint64_t)40 << 20, &a) == OLLM_OK, "40 MiB fits");
    CHECK(B->alloc(B, (uint64_t)40 << 20, &b2) == OLLM_ERR_BUDGET, "another 40 MiB does not");
    B->release(B, &a);
    CHECK(B->alloc(B, (uint64_t)40 << 20, &b2) == OLLM_OK, "after a release it does");
    B->release(B, &b2);
    B->destroy(B);
}

static void t_sticky(void) {   /* an illegal address: this op, and every later one, fails with the same message */
    ollm__buf bad, ok; char first[1024]; ollm_result r;
    bad.ptr = (void *)(uintptr_t)0x100; bad.bytes = 4096;
    G->silu_mul(G, bad, bad, 1024);
    r = G->sync(G);
    snprintf(first, sizeof first, "%s", lg.err);
    printf("     sticky error: %s\n", first);
    CHECK(r == OLLM_ERR_DEVICE && strstr(first, "CUDA_ERROR_"), "a bad address: OLLM_ERR_DEVICE with the CUDA error name");
    CHECK(G->alloc(G, 1024, &ok) == OLLM_ERR_DEVICE && strcmp(lg.err, first) == 0, "later work fails the same way");
}

int main(void) {
    ollm_model_config cfg = ollm_model_config_default(); const char *why = ""; ollm_result r; double t0 = ollm__now();
    int small;
    memset(&lg, 0, sizeof lg); lg.fn = on_log;
    cfg.cache_dir = getenv("OLLM_TEST_CACHE");
    r = ollm__cuda_create(&cfg, &lg, &G, &why);
    if (r == OLLM_ERR_NO_DEVICE) { printf("skipped: no CUDA driver (%s)\n0 passed, 0 failed\n", why); return 0; }
    if (r != OLLM_OK) { printf("FAIL: CUDA backend: %s\n0 passed, 1 failed\n", lg.err); return 1; }
    if (ollm__cpu_create(0, &lg, &C) != OLLM_OK) { printf("FAIL: CPU backend\n0 passed, 1 failed\n"); return 1; }

    /* OLLM_TEST_SMALL (compute-sanitizer racecheck, which serialises every access) leaves out the largest shapes */
    small = getenv("OLLM_TEST_SMALL") != NULL;
    t_embed(OLLM__BF16, 5, 1000, 4096); t_embed(OLLM__F16, 3, 50, 77); t_embed(OLLM__F32, 2, 10, 33);
    t_rmsnorm(OLLM__BF16, 1, 4096, 0, 0); t_rmsnorm(OLLM__F16, 3, 77, 1, 0); t_rmsnorm(OLLM__F32, 17, 1000, 0, 0);
    t_rmsnorm(OLLM__BF16, 4, 96, 0, 1);
    t_rope(7, 4, 2, 64, 64, 0, 1.0f); t_rope(3, 8, 0, 128, 64, 100000, 1.2f); t_rope(2, 3, 1, 32, 32, 5, 1.0f);
    t_rope(1, 64, 8, 64, 64, 10239, 1.3f);
    t_silu(1, 0); t_silu(1000003, 0); t_silu(4096 * 7, 1);
    {   /* the vocabularies of the three families, and small and odd sizes */
        static const int64_t ns[] = { 1, 7, 1000, 128256, 151936, 201088 }; int a, k;
        for (a = 0; a < 6; a++) for (k = 0; k < 7; k++) t_argmax(ns[a], k);
    }
    /* decode shapes (GEMV) */
    t_matmul(OLLM__BF16, 1, 4096, 4096, 0, 0); t_matmul(OLLM__BF16, 1, 4096, 4096, 1, 0);
    if (!small) t_matmul(OLLM__BF16, 1, 1024, 14336, 1, 0);
    t_matmul(OLLM__BF16, 1, 77, 100, 0, 0);
    t_matmul(OLLM__BF16, 3, 515, 1024, 0, 1); t_matmul(OLLM__F16, 2, 300, 256, 0, 0);
    t_matmul(OLLM__F32, 3, 1000, 512, 1, 0); t_matmul(OLLM__F16, 5, 257, 96, 1, 0);
    t_matmul(OLLM__BF16, 8, 1024, 4096, 1, 0); t_matmul(OLLM__F32, 7, 33, 65, 0, 0);
    /* prefill shapes (tensor-core GEMM; F16/F32 and odd K on the CUDA cores) */
    t_matmul(OLLM__BF16, 9, 130, 264, 0, 0); t_matmul(OLLM__BF16, 130, 1000, 1024, 1, 0);
    t_matmul(OLLM__BF16, 257, 520, 4096, 0, 0); t_matmul(OLLM__BF16, 64, 77, 100, 0, 0);
    t_matmul(OLLM__BF16, 33, 96, 128, 0, 3); t_matmul(OLLM__F16, 17, 300, 256, 0, 0);
    t_matmul(OLLM__F32, 100, 129, 200, 1, 0);
    t_matmul(OLLM__BF16, 100, 32, 300, 0, 0);   /* a router in prefill: N < 64 stays on the CUDA cores in fp32 */
    /* N <= 32 with 16-byte rows: the narrow kernel (8 rows of x a block; rows past M, n past N) */
    t_matmul_b(OLLM__BF16, 100, 32, 2880, 0, 0, OLLM__BF16); t_matmul(OLLM__BF16, 37, 1, 256, 1, 0);
    t_matmul(OLLM__BF16, 9, 20, 64, 0, 0); t_matmul(OLLM__BF16, 203, 31, 2048, 1, 0);
    t_matmul(OLLM__BF16, 64, 32, 8, 0, 0); t_matmul(OLLM__BF16, 17, 24, 136, 0, 3);   /* K of one vector; x unaligned */
    if (!small) t_matmul_b(OLLM__BF16, 2048, 32, 2880, 0, 0, OLLM__BF16);           /* GPT-OSS's router, a chunk */
    printf("     prefill GEMM: %s\n", ((ollm__cu *)G)->wgmma ? "wgmma (sm_90a) and mma.sync" : "mma.sync");
    t_matmul_gemms(128, 256, 64, 0); t_matmul_gemms(200, 300, 136, 0); t_matmul_gemms(130, 1000, 1024, 1);
    t_matmul_gemms(257, 520, 4096, 0); t_matmul_gemms(333, 2880, 2880, 1);
    t_matmul_gemms(17, 512, 256, 1); t_matmul_gemms(64, 300, 136, 0);   /* fewer rows than a wgmma tile */
    if (!small) t_matmul_gemms(100, 5760, 2880, 0);                      /* a GPT-OSS expert's gate_up in prefill */
    if (!small) { t_matmul_gemms(512, 4096, 4096, 1); t_matmul_gemms(2048, 1024, 4096, 0); }
    t_matmul_reuse();
    /* a bias added as the GEMV writes (T <= 8), or in a pass of its own after a GEMM; its dtypes */
    t_matmul_b(OLLM__BF16, 1, 2880, 2880, 0, 0, OLLM__BF16); t_matmul_b(OLLM__BF16, 3, 515, 1024, 1, 0, OLLM__F32);
    t_matmul_b(OLLM__F16, 2, 300, 256, 0, 0, OLLM__F16); t_matmul_b(OLLM__BF16, 1, 32, 2880, 0, 0, OLLM__BF16);
    t_matmul_b(OLLM__BF16, 130, 1000, 1024, 1, 0, OLLM__BF16); t_matmul_b(OLLM__F32, 9, 33, 65, 0, 0, OLLM__BF16);
    t_matmul_b(OLLM__BF16, 100, 520, 256, 1, 0, OLLM__F32);    /* the biases in each GEMM's epilogue: mma.sync (M < 128), */
    t_matmul_b(OLLM__BF16, 300, 600, 512, 0, 0, OLLM__BF16);   /* wgmma on sm_90a (mma.sync elsewhere), */
    t_matmul_b(OLLM__BF16, 100, 32, 2880, 0, 0, OLLM__BF16);   /* the CUDA cores (a router) */
    /* expert layouts: MXFP4 GEMV (T <= 8) and via a bf16 copy (T > 8); input-major floats likewise */
    t_matmul_fmt(OLLM__W_MXFP4, 0, 1, 5760, 2880, 0, -1); t_matmul_fmt(OLLM__W_MXFP4, 0, 3, 2880, 2880, 1, -1);
    t_matmul_fmt(OLLM__W_MXFP4, 0, 8, 100, 64, 0, -1); t_matmul_fmt(OLLM__W_MXFP4, 0, 37, 320, 2880, 0, -1);
    t_matmul_fmt(OLLM__W_MXFP4, 0, 200, 96, 256, 1, -1);
    t_matmul_fmt(OLLM__W_MXFP4, 0, 6, 320, 2880, 0, -1);   /* x of 6 rows staged past the default 48 KiB of shared memory */
    /* the GEMV's ring of 8-block stages: K of one block, of exactly one and two stages, and of one stage and a block */
    t_matmul_fmt(OLLM__W_MXFP4, 0, 1, 40, 32, 0, -1); t_matmul_fmt(OLLM__W_MXFP4, 0, 1, 70, 256, 1, OLLM__BF16);
    t_matmul_fmt(OLLM__W_MXFP4, 0, 2, 33, 512, 0, -1); t_matmul_fmt(OLLM__W_MXFP4, 0, 5, 96, 288, 0, -1);
    t_matmul_fmt(OLLM__W_MXFP4, 0, 8, 64, 7168, 0, OLLM__BF16);   /* x past any device's shared memory: the bf16 copy,
                                                                    and the bias still added */
    t_matmul_fmt(OLLM__W_MXFP4, 0, 1, 5760, 2880, 0, OLLM__BF16); t_matmul_fmt(OLLM__W_MXFP4, 0, 3, 2880, 2880, 1, OLLM__F32);
    t_matmul_fmt(OLLM__W_MXFP4, 0, 37, 320, 2880, 0, OLLM__BF16); t_matmul_fmt(OLLM__W_KMAJOR, OLLM__BF16, 2, 130, 64, 0, OLLM__BF16);
    t_matmul_fmt(OLLM__W_KMAJOR, OLLM__BF16, 1, 5760, 2880, 0, -1); t_matmul_fmt(OLLM__W_KMAJOR, OLLM__F32, 5, 77, 100, 1, -1);
    t_matmul_fmt(OLLM__W_KMAJOR, OLLM__F16, 2, 130, 64, 0, -1); t_matmul_fmt(OLLM__W_KMAJOR, OLLM__BF16, 40, 250, 96, 0, -1);
    t_matmul_fmt(OLLM__W_KMAJOR, OLLM__BF16, 130, 2880, 2880, 1, -1);
    /* a token's picked experts in one launch: Qwen3-Next (10 + 1 of 512 x 2048), GPT-OSS-20B (4 MXFP4), odd sizes */
    t_grouped(OLLM__W_DENSE, OLLM__BF16, 11, 1, 512, 2048, -1); t_grouped(OLLM__W_DENSE, OLLM__BF16, 10, 1, 2048, 512, -1);
    t_grouped(OLLM__W_DENSE, OLLM__BF16, 7, -1, 300, 256, -1); t_grouped(OLLM__W_MXFP4, 0, 7, -1, 300, 256, -1);
    t_grouped(OLLM__W_DENSE, OLLM__BF16, 6, -3, 64, 128, OLLM__BF16); t_grouped(OLLM__W_MXFP4, 0, 6, -3, 64, 128, OLLM__BF16);
    t_grouped(OLLM__W_DENSE, OLLM__BF16, 7, 5, 96, 200, -1); t_grouped(OLLM__W_DENSE, OLLM__F32, 3, 8, 33, 64, -1);
    t_grouped(OLLM__W_DENSE, OLLM__F16, 5, 2, 130, 100, -1); t_grouped(OLLM__W_DENSE, OLLM__BF16, 4, 40, 128, 256, -1);
    t_grouped(OLLM__W_MXFP4, 0, 4, 1, 5760, 2880, -1); t_grouped(OLLM__W_MXFP4, 0, 6, 8, 64, 96, -1);
    t_grouped(OLLM__W_MXFP4, 0, 3, 6, 320, 2880, -1);
    {   /* q, k, v of GPT-OSS-20B and Llama-3.1-8B; DeltaNet's qkvz and ba; odd sizes; a mixed set (one by one) */
        static const int g20[3] = { 4096, 512, 512 }, l8[3] = { 4096, 1024, 1024 }, dn[2] = { 12288, 64 }, odd[3] = { 37, 5, 130 };
        t_matmul_n(3, g20, 1, 2880, OLLM__BF16, OLLM__BF16, OLLM__BF16); t_matmul_n(3, l8, 1, 4096, OLLM__BF16, OLLM__BF16, -1);
        t_matmul_n(2, dn, 1, 2048, OLLM__BF16, OLLM__BF16, -1); t_matmul_n(3, odd, 5, 200, OLLM__F32, OLLM__F32, OLLM__F16);
        t_matmul_n(3, odd, 8, 96, OLLM__F16, OLLM__F16, -1); t_matmul_n(3, odd, 3, 64, OLLM__BF16, OLLM__F32, OLLM__BF16);
        t_matmul_n(2, odd, 40, 128, OLLM__BF16, OLLM__BF16, -1);
    }
    t_grouped(OLLM__W_DENSE, OLLM__BF16, 21, 1, 96, 128, -1); t_grouped(OLLM__W_DENSE, OLLM__BF16, 16, 3, 64, 96, OLLM__BF16);
    t_grouped(OLLM__W_MXFP4, 0, 17, 1, 64, 96, OLLM__BF16); t_grouped(OLLM__W_MXFP4, 0, 13, 4, 64, 128, -1);
    t_grouped(OLLM__W_MXFP4, 0, 4, 1, 5760, 2880, OLLM__BF16); t_grouped(OLLM__W_MXFP4, 0, 4, 1, 2880, 2880, OLLM__BF16);
    t_grouped(OLLM__W_MXFP4, 0, 6, 8, 64, 96, OLLM__F32); t_grouped(OLLM__W_DENSE, OLLM__BF16, 7, 5, 96, 200, OLLM__F16);
    t_grouped(OLLM__W_DENSE, OLLM__BF16, 4, 40, 128, 256, OLLM__BF16);
    /* Gated DeltaNet: decode (T = 1 < K - 1: the conv state shifts), prefill, Qwen3-Next-80B's heads, odd sizes */
    t_deltanet(1, 16, 2, 128, 128, 4, OLLM__BF16); t_deltanet(2, 2, 2, 16, 40, 4, OLLM__F32);
    t_deltanet(300, 2, 3, 128, 128, 4, OLLM__BF16); t_deltanet(37, 1, 1, 256, 70, 3, OLLM__F16);
    if (!small) t_deltanet(1000, 16, 2, 128, 128, 4, OLLM__BF16);
    /* the delta rule in chunks (T >= 64): whole and ragged last chunks at Qwen3-Next-80B's heads, the fixtures'
       heads at their prompt length (qwen3next_hub, qwen3next_new: T = 130), odd sizes; chunks of 32; and the
       recurrent kernel on long inputs (where shared memory holds no chunk) */
    t_dn_chunk(64, 16, 2, 128, 128, 64); t_dn_chunk(65, 16, 2, 128, 128, 64); t_dn_chunk(130, 16, 2, 128, 128, 64);
    t_dn_chunk(200, 16, 2, 128, 128, 64); if (!small) t_dn_chunk(1000, 16, 2, 128, 128, 64);
    t_dn_chunk(130, 2, 2, 16, 16, 64); t_dn_chunk(130, 1, 3, 24, 16, 64);
    t_dn_chunk(333, 3, 1, 21, 33, 64); t_dn_chunk(100, 1, 1, 256, 70, 64); t_dn_chunk(77, 2, 3, 40, 40, 64);
    t_dn_chunk(200, 16, 2, 128, 128, 32); t_dn_chunk(333, 3, 1, 21, 33, 32); t_dn_chunk(100, 1, 1, 256, 70, 32);
    t_dn_chunk(200, 16, 2, 128, 128, 0); t_dn_chunk(65, 1, 1, 256, 70, 0);
    t_moe_ops(1, 4, 2880, 2880, OLLM__BF16); t_moe_ops(37, 4, 100, 33, OLLM__F32); t_moe_ops(9, 11, 64, 512, OLLM__F16);
    t_moe_ops(8, 4, 520, 64, OLLM__F32); t_moe_ops(3, 11, 300, 40, OLLM__BF16);   /* combine tables by value at most 32 */
    /* attention: decode (split over keys), prefill (tensor cores for hd 64/128), odd head sizes, windows, sinks */
    t_attn(4, 4, 64, 1, 0, 0, 0);
    t_attn(4, 1, 64, 37, 0, 0, 0);      /* the shapes of tests/fixtures/llama_tied_gqa4 */
    t_attn(4, 1, 64, 24, 96, 0, 0);
    t_attn(4, 1, 64, 1, 130, 0, 0);
    t_attn(4, 1, 64, 2, 5000, 0, 1);
    if (!small) t_attn(16, 2, 64, 1, 9000, 1000, 1);
    t_attn(8, 1, 128, 1, 100, 0, 0);
    t_attn(4, 2, 128, 4, 3000, 0, 0);
    if (!small) t_attn(4, 1, 64, 1, 60000, 0, 1);   /* hundreds of splits through ollm_k_attn_combine */
    t_attn(8, 2, 128, 1, 4095, 0, 0);
    t_attn(8, 2, 128, 3, 1000, 0, 1);
    if (!small) t_attn(32, 8, 128, 1, 32767, 0, 0);
    if (!small) t_attn(32, 8, 128, 2, 20000, 4096, 1);
    t_attn(8, 8, 128, 9, 3000, 64, 1);
    if (!small) t_attn(8, 2, 128, 2048, 0, 0, 0);
    if (!small) t_attn(8, 2, 128, 2100, 0, 300, 1);
    t_attn(4, 1, 64, 200, 50, 0, 0);
    t_attn(4, 4, 128, 129, 0, 0, 0);     /* prefill blocks of 128 queries (sm_90a): one row past the first */
    t_attn(8, 2, 128, 300, 200, 0, 1);
    t_attn(4, 2, 128, 260, 40, 100, 1);  /* a window: tiles before a warpgroup's window masked whole */
    t_attn(4, 1, 64, 64, 5000, 0, 0);
    t_attn(6, 3, 64, 17, 0, 5, 0);
    t_attn(4, 2, 64, 300, 1000, 128, 1);
    t_attn(4, 2, 32, 100, 7, 0, 1);
    t_attn(4, 2, 64, 130, 0, 8, 1);     /* the shapes of tests/fixtures/gptoss_*: a window from position 0, sinks */
    t_attn(2, 1, 64, 130, 0, 8, 1);
    t_attn(2, 1, 36, 20, 5, 10, 0);
    t_attn(4, 4, 256, 5, 700, 0, 0);
    t_attn(2, 1, 320, 2, 3000, 0, 1);    /* a head wider than 256: the combine's thread-a-dimension path, sinks */
    t_attn(16, 1, 128, 1, 777, 0, 1);    /* 16 query rows: a full m16 tile of the tensor-core decode */
    t_attn(5, 1, 64, 3, 2000, 0, 0);     /* 15 rows, 3 positions */
    t_attn(4, 4, 64, 15, 370, 0, 0);     /* the new positions in two splits (keys 0..384 split at 128, 256, 384) */
    t_attn(4, 2, 128, 4, 381, 0, 1);     /* the same (split at 384), 8 rows, sinks */
    /* sliding layers' rings (GPT-OSS: window 128, rows window + chunk - 1): decode, prefill chunks that wrap */
    t_attn_ring(64, 8, 64, 1, 5000, 128, 1, 128);
    t_attn_ring(64, 8, 64, 1, 300, 128, 1, 1151);
    t_attn_ring(64, 8, 64, 1024, 3000, 128, 1, 1151);
    t_attn_ring(64, 8, 64, 700, 100, 128, 1, 1151);
    t_attn_ring(4, 2, 64, 48, 130, 8, 1, 55);
    t_attn_ring(4, 2, 64, 9, 40, 8, 1, 16);
    t_attn_ring(14, 2, 64, 2, 300, 100, 1, 101);   /* 14 rows in a ring that wraps */
    t_attn_ring(2, 1, 36, 20, 33, 10, 0, 29);    /* the CUDA-core path */
    t_budget();
    if (getenv("OLLM_TEST_STICKY")) t_sticky();
    printf("worst relative error: %.2e on bf16 paths (tol 1e-2), %.2e on fp32 paths; %.1f s\n", worst_bf16, worst_f32,
           ollm__now() - t0);
    if (!getenv("OLLM_TEST_STICKY")) { G->destroy(G); }
    C->destroy(C);
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
}
