/* tools/bench.c: the CUDA backend's kernels at Llama-3.1-8B shapes (and Qwen3-Next's DeltaNet), each beside the machine's ceiling measured in
   the same run. Build: cc -O2 tools/bench.c -o bench -lm -lpthread -ldl.
   Run: ./bench [quick | decode | mxfp4 | attn | moe]
   (decode: the rows of decode steps alone, no GEMM or prefill attention; mxfp4: the copy ceiling and the grouped
   MXFP4 GEMV rows alone; attn: the copy ceiling and the attention rows alone, prefill at T = 8192 and 32768; moe: the copy
   ceiling and GPT-OSS-20B prefill's small products alone; the last three e.g. under ncu)
   Ceilings: copy = device-to-device cuMemcpyDtoD of 1 GiB (bytes read + written per second); dense bf16 =
   $OLLM_BENCH_CEIL_TFLOPS when set (e.g. torch.matmul measured in the same command), else our best GEMM.
   Timing: CUDA events around batches of launches after a warm-up; the median of 5 batches. Inputs are random (never
   zeros); GEMV weights rotate over copies larger than L2 so the figure is DRAM bandwidth, not cache. */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"

static ollm__backend *B;
static ollm__cu *CU;
static uint64_t rng = 88172645463325252ull;
static float frand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f; }

static void die(const char *what) { fprintf(stderr, "bench: %s: %s\n", what, B && B->log ? B->log->err : ""); exit(1); }
static ollm__buf dev_rand(uint64_t n, int bf16, float scale) {   /* n random elements (fp32 or bf16) on the device */
    ollm__buf b; uint64_t i, es = bf16 ? 2 : 4, chunk = (uint64_t)1 << 24; void *h = malloc((size_t)(chunk * es));
    if (B->alloc(B, n * es, &b) != OLLM_OK) die("alloc");
    for (i = 0; i < n; i += chunk) {
        uint64_t m = n - i < chunk ? n - i : chunk, j;
        for (j = 0; j < m; j++) {
            float f = frand() * scale;
            if (bf16) ((uint16_t *)h)[j] = ollm__f32_to_bf16(f); else ((float *)h)[j] = f;
        }
        if (B->upload(B, ollm__view(b, i * es, m * es), h, m * es) != OLLM_OK) die("upload");
    }
    free(h);
    return b;
}

typedef void (*bench_fn)(void *ctx, int i);
static double time_it(bench_fn fn, void *ctx, int reps) {   /* seconds per call: median of 5 batches */
    double t[5]; int b, i;
    ollm__cu_event e0, e1;
    for (i = 0; i < 2; i++) fn(ctx, i);
    if (B->sync(B) != OLLM_OK) die("warm-up");
    CU->cu.cuEventCreate(&e0, 0); CU->cu.cuEventCreate(&e1, 0);
    for (b = 0; b < 5; b++) {
        float ms = 0; double h0 = ollm__now();
        CU->cu.cuEventRecord(e0, CU->st);
        for (i = 0; i < reps; i++) fn(ctx, i);
        CU->cu.cuEventRecord(e1, CU->st);
        CU->cu.cuEventSynchronize(e1);
        if (CU->cu.cuEventElapsedTime) CU->cu.cuEventElapsedTime(&ms, e0, e1);
        else ms = (float)((ollm__now() - h0) * 1e3);
        t[b] = ms * 1e-3 / reps;
    }
    CU->cu.cuEventDestroy(e0); CU->cu.cuEventDestroy(e1);
    if (B->sync(B) != OLLM_OK) die("timed run");
    for (b = 0; b < 5; b++) for (i = b + 1; i < 5; i++) if (t[i] < t[b]) { double x = t[i]; t[i] = t[b]; t[b] = x; }
    return t[2];
}

/* ---- what is timed ---- */
typedef struct copy_ctx { ollm__buf a, b; uint64_t n; } copy_ctx;
static void f_copy(void *v, int i) { copy_ctx *c = (copy_ctx *)v; (void)i; CU->cu.cuMemcpyDtoDAsync(ollm__dp(c->b), ollm__dp(c->a), (size_t)c->n, CU->st); }

typedef struct mm_ctx { ollm__buf y, x; ollm__w w[8]; const ollm__w *bias; int nw, T, cvt; } mm_ctx;
static void f_mm(void *v, int i) {
    mm_ctx *c = (mm_ctx *)v;
    if (c->cvt) ollm__cu_wrote(CU, c->x.ptr, c->x.bytes);   /* count the fp32 -> bf16 pass of x every time */
    if (B->matmul(B, c->y, c->x, &c->w[i % c->nw], c->bias, c->T, 0) != OLLM_OK) die("matmul");
}

typedef struct mmn_ctx { ollm__buf y[3], x; ollm__w w[8][3]; int n, nw; } mmn_ctx;
static void f_mmn(void *v, int i) {   /* n products of one input in one launch, as a decode layer runs q/k/v, gate/up */
    mmn_ctx *c = (mmn_ctx *)v; const ollm__w *W[3]; int j;
    for (j = 0; j < c->n; j++) W[j] = &c->w[i % c->nw][j];
    if (B->matmul_n(B, c->n, c->y, c->x, W, NULL, 1) != OLLM_OK) die("matmul_n");
}

typedef struct grp_ctx { ollm__buf y, x, blocks, scales; ollm__w w[32]; int32_t row0[4], rows[4]; } grp_ctx;
static void f_grp(void *v, int i) {   /* 4 of the 32 experts, a different 4 each call */
    grp_ctx *c = (grp_ctx *)v;
    if (B->matmul_grouped(B, c->y, c->x, &c->w[(i % 8) * 4], NULL, c->row0, NULL, c->rows, 4) != OLLM_OK) die("matmul_grouped");
}

typedef struct at_ctx { ollm__buf o, q, k, v, kc, vc; ollm__attn_args a; } at_ctx;
static void f_at(void *v, int i) { at_ctx *c = (at_ctx *)v; (void)i; if (B->attention(B, c->o, c->q, c->k, c->v, c->kc, c->vc, &c->a) != OLLM_OK) die("attention"); }

typedef struct dn_ctx { ollm__buf o, qkv, beta, g, S; ollm__dn_dims d; int T; } dn_ctx;
static void f_dn(void *v, int i) {
    dn_ctx *c = (dn_ctx *)v; (void)i;
    if (B->dn_rule(B, c->o, c->qkv, c->beta, c->g, c->S, &c->d, c->T) != OLLM_OK) die("dn_rule");
}

static FILE *out_md;
static void row(const char *op, const char *shape, double sec, double rate, const char *unit, double ceil, const char *ceil_name) {
    if (ceil <= 0) {   /* no ceiling measured in this run */
        printf("%-22s %-28s %10.1f us %9.1f %-7s %s\n", op, shape, sec * 1e6, rate, unit, ceil_name);
        if (out_md) fprintf(out_md, "| %s | %s | %.1f | %.1f %s | |\n", op, shape, sec * 1e6, rate, unit);
        fflush(stdout);
        return;
    }
    printf("%-22s %-28s %10.1f us %9.1f %-7s %6.1f%% of %s\n", op, shape, sec * 1e6, rate, unit, 100.0 * rate / ceil, ceil_name);
    if (out_md) fprintf(out_md, "| %s | %s | %.1f | %.1f %s | %.0f%% of %s |\n", op, shape, sec * 1e6, rate, unit, 100.0 * rate / ceil, ceil_name);
    fflush(stdout);
}

int main(int argc, char **argv) {
    static ollm__log lg; ollm_model_config cfg = ollm_model_config_default(); const char *why;
    int quick = argc > 1 && strcmp(argv[1], "quick") == 0, only_mxfp4 = argc > 1 && strcmp(argv[1], "mxfp4") == 0;
    int decode = argc > 1 && strcmp(argv[1], "decode") == 0, only_attn = argc > 1 && strcmp(argv[1], "attn") == 0;
    int only_moe = argc > 1 && strcmp(argv[1], "moe") == 0;
    double copy_bw, gemm_ceil = 0, best_gemm = 0; char shape[64], ceil_name[64];
    const char *env_ceil = getenv("OLLM_BENCH_CEIL_TFLOPS");
    int i, j;
    cfg.cache_dir = getenv("OLLM_TEST_CACHE");
    if (ollm__cuda_create(&cfg, &lg, &B, &why) != OLLM_OK) { printf("skipped: no CUDA backend (%s %s)\n", why, lg.err); return 0; }
    CU = (ollm__cu *)B;
    out_md = getenv("OLLM_BENCH_MD") ? fopen(getenv("OLLM_BENCH_MD"), "w") : NULL;
    printf("device: %s (%s, %d SMs)\n", CU->dev_name, CU->arch, CU->n_sm);

    {   /* ceiling 1: device-to-device copy */
        copy_ctx c; c.n = (uint64_t)1 << 30;
        if (B->alloc(B, c.n, &c.a) != OLLM_OK || B->alloc(B, c.n, &c.b) != OLLM_OK) die("alloc copy");
        CU->cu.cuMemsetD8Async(ollm__dp(c.a), 0x3c, (size_t)c.n, CU->st);
        copy_bw = 2.0 * (double)c.n / time_it(f_copy, &c, 5) / 1e9;
        printf("ceiling: cuMemcpyDtoD %.0f GB/s (read + write)\n", copy_bw);
        if (out_md) fprintf(out_md, "| copy (ceiling) | cuMemcpyDtoD 1 GiB | | %.0f GB/s | |\n", copy_bw);
        B->release(B, &c.a); B->release(B, &c.b);
    }

    if (!only_mxfp4 && !only_attn && !only_moe) {   /* GEMV, T = 1: Llama-3.1-8B decode shapes and GPT-OSS-20B's head; weights rotate over
                            >= 256 MiB */
        static const int nk[][2] = { { 4096, 4096 }, { 1024, 4096 }, { 14336, 4096 }, { 4096, 14336 }, { 128256, 4096 },
                                     { 201088, 2880 } };
        static const char *names[] = { "q/o_proj", "k/v_proj", "gate/up_proj", "down_proj", "lm_head", "20B lm_head" };
        for (i = 0; i < 6; i++) {
            mm_ctx c; uint64_t wb = (uint64_t)nk[i][0] * nk[i][1] * 2; double s;
            memset(&c, 0, sizeof c);
            c.nw = (int)((((uint64_t)256 << 20) + wb - 1) / wb); if (c.nw > 8) c.nw = 8; if (c.nw < 1) c.nw = 1;
            c.T = 1; c.x = dev_rand((uint64_t)nk[i][1], 0, 1.0f); c.y = dev_rand((uint64_t)nk[i][0], 0, 1.0f);
            for (j = 0; j < c.nw; j++) {
                c.w[j].data = dev_rand(wb / 2, 1, 0.02f); c.w[j].dtype = OLLM__BF16; c.w[j].rows = nk[i][0]; c.w[j].cols = nk[i][1];
            }
            s = time_it(f_mm, &c, 50);
            snprintf(shape, sizeof shape, "%s %dx%d", names[i], nk[i][0], nk[i][1]);
            row("gemv bf16 T=1", shape, s, (double)(wb + nk[i][1] * 4 + nk[i][0] * 4) / s / 1e9, "GB/s", copy_bw, "copy");
            for (j = 0; j < c.nw; j++) B->release(B, &c.w[j].data);
            B->release(B, &c.x); B->release(B, &c.y);
        }
    }

    if (!only_mxfp4 && !only_attn && !only_moe) {   /* the same GEMVs as a Llama-3.1-8B decode layer launches them: q, k, v in one launch, gate
                            and up in one (ollm__backend.matmul_n) */
        static const int fn[2][3] = { { 4096, 1024, 1024 }, { 14336, 14336, 0 } };
        static const char *names[] = { "q+k+v 6144x4096", "gate+up 28672x4096" };
        for (i = 0; i < 2; i++) {
            mmn_ctx c; uint64_t wb = 0; int k; double s;
            memset(&c, 0, sizeof c);
            c.n = fn[i][2] ? 3 : 2;
            for (k = 0; k < c.n; k++) wb += (uint64_t)fn[i][k] * 4096 * 2;
            c.nw = (int)((((uint64_t)256 << 20) + wb - 1) / wb); if (c.nw > 8) c.nw = 8; if (c.nw < 2) c.nw = 2;
            c.x = dev_rand(4096, 0, 1.0f);
            for (k = 0; k < c.n; k++) c.y[k] = dev_rand((uint64_t)fn[i][k], 0, 1.0f);
            for (j = 0; j < c.nw; j++)
                for (k = 0; k < c.n; k++) {
                    ollm__w *w = &c.w[j][k];
                    w->data = dev_rand((uint64_t)fn[i][k] * 4096, 1, 0.02f); w->dtype = OLLM__BF16; w->rows = fn[i][k]; w->cols = 4096;
                }
            s = time_it(f_mmn, &c, 50);
            row("gemv bf16 T=1 fused", names[i], s, (double)(wb + 4096 * 4 + (wb / 8192) * 4) / s / 1e9, "GB/s", copy_bw, "copy");
            for (j = 0; j < c.nw; j++) for (k = 0; k < c.n; k++) B->release(B, &c.w[j][k].data);
            for (k = 0; k < c.n; k++) B->release(B, &c.y[k]);
            B->release(B, &c.x);
        }
    }

    if (!only_attn && !only_moe) {   /* the experts of one GPT-OSS-20B decode token: 4 MXFP4 experts' gate_up [5760, 2880] and down [2880, 2880] in
           one grouped GEMV each (blocks and scales as stored: 17 bytes per 32 weights); stacks of 32 experts rotate
           so the figure is DRAM, not L2 */
        static const int nk[][2] = { { 5760, 2880 }, { 2880, 2880 } };
        for (i = 0; i < 2; i++) {
            grp_ctx c; int N = nk[i][0], K = nk[i][1], g; uint64_t wb = (uint64_t)N * K / 2, sb = (uint64_t)N * K / 32; double s;
            memset(&c, 0, sizeof c);
            c.blocks = dev_rand(32 * wb / 4, 0, 1.0f);
            if (B->alloc(B, 32 * sb, &c.scales) != OLLM_OK) die("alloc scales");
            CU->cu.cuMemsetD8Async(ollm__dp(c.scales), 120, (size_t)(32 * sb), CU->st);
            c.x = dev_rand((uint64_t)4 * K, 0, 1.0f); c.y = dev_rand((uint64_t)4 * N, 0, 1.0f);
            for (g = 0; g < 32; g++) {
                c.w[g].fmt = OLLM__W_MXFP4; c.w[g].dtype = OLLM__U8; c.w[g].rows = N; c.w[g].cols = K;
                c.w[g].data = ollm__view(c.blocks, g * wb, wb); c.w[g].scales = ollm__view(c.scales, g * sb, sb);
            }
            for (g = 0; g < 4; g++) { c.row0[g] = g; c.rows[g] = 1; }
            s = time_it(f_grp, &c, 50);
            snprintf(shape, sizeof shape, "4 x %dx%d", N, K);
            row("gemv MXFP4 grouped", shape, s, (double)(4 * (wb + sb) + 4 * K * 4 + 4 * N * 4) / s / 1e9, "GB/s", copy_bw, "copy");
            B->release(B, &c.blocks); B->release(B, &c.scales); B->release(B, &c.x); B->release(B, &c.y);
        }
    }
    if (only_mxfp4) { if (out_md) fclose(out_md); return 0; }

    if (!decode && !only_attn && !only_moe) {   /* GEMM: prefill shapes */
        static const int nk[][2] = { { 4096, 4096 }, { 14336, 4096 }, { 4096, 14336 } };
        static const int Ts[] = { 512, 1024, 2048, 4096, 8192 };
        double res[3][5][3];   /* the default GEMM, the same with the fp32 -> bf16 pass of x, mma.sync (on Hopper) */
        int wg = CU->wgmma;
        for (i = 0; i < 3; i++) {
            mm_ctx c; memset(&c, 0, sizeof c);
            c.nw = 1; c.w[0].data = dev_rand((uint64_t)nk[i][0] * nk[i][1], 1, 0.02f); c.w[0].dtype = OLLM__BF16;
            c.w[0].rows = nk[i][0]; c.w[0].cols = nk[i][1];
            c.x = dev_rand((uint64_t)8192 * nk[i][1], 0, 1.0f); c.y = dev_rand((uint64_t)8192 * nk[i][0], 0, 1.0f);
            for (j = 0; j < 5; j++) {
                double fl = 2.0 * Ts[j] * nk[i][0] * nk[i][1], s0, s1;
                res[i][j][0] = res[i][j][1] = res[i][j][2] = 0;
                if (quick && Ts[j] != 2048 && Ts[j] != 8192) continue;
                c.T = Ts[j]; c.x.bytes = (uint64_t)Ts[j] * nk[i][1] * 4;
                c.cvt = 0; s0 = time_it(f_mm, &c, 5);
                c.cvt = 1; s1 = time_it(f_mm, &c, 5);
                res[i][j][0] = fl / s0 / 1e12; res[i][j][1] = fl / s1 / 1e12;
                if (wg) { CU->wgmma = 0; c.cvt = 0; res[i][j][2] = fl / time_it(f_mm, &c, 5) / 1e12; CU->wgmma = wg; }
                if (res[i][j][0] > best_gemm) best_gemm = res[i][j][0];
            }
            B->release(B, &c.w[0].data); B->release(B, &c.x); B->release(B, &c.y);
        }
        gemm_ceil = env_ceil ? atof(env_ceil) : best_gemm;
        snprintf(ceil_name, sizeof ceil_name, env_ceil ? "torch bf16" : "own best");
        if (env_ceil) printf("ceiling: dense bf16 matmul (torch, same command) %.0f TFLOP/s\n", gemm_ceil);
        if (out_md && env_ceil) fprintf(out_md, "| dense bf16 (ceiling) | torch.matmul 8192^3 | | %.0f TFLOP/s | |\n", gemm_ceil);
        for (i = 0; i < 3; i++)
            for (j = 0; j < 5; j++) {
                double fl = 2.0 * Ts[j] * nk[i][0] * nk[i][1];
                if (res[i][j][0] == 0) continue;
                snprintf(shape, sizeof shape, "T=%d N=%d K=%d", Ts[j], nk[i][0], nk[i][1]);
                row(wg ? "gemm bf16 wgmma" : "gemm bf16", shape, fl / res[i][j][0] / 1e12, res[i][j][0], "TFLOP/s", gemm_ceil, ceil_name);
                row("gemm bf16 +x->bf16", shape, fl / res[i][j][1] / 1e12, res[i][j][1], "TFLOP/s", gemm_ceil, ceil_name);
                if (wg) row("gemm bf16 mma.sync", shape, fl / res[i][j][2] / 1e12, res[i][j][2], "TFLOP/s", gemm_ceil, ceil_name);
            }
    }

    if (only_attn || only_moe) {   /* no GEMM ran: the ceiling of the rows in TFLOP/s is torch's when given, else none */
        gemm_ceil = env_ceil ? atof(env_ceil) : 0.0;
        snprintf(ceil_name, sizeof ceil_name, env_ceil ? "torch bf16" : "(no ceiling: OLLM_BENCH_CEIL_TFLOPS)");
    }
    if (!decode && !only_attn) {   /* GPT-OSS-20B prefill's small products, as a chunk of 2048 tokens runs them: the
                                      router (N = 32: the CUDA cores, fp32), and one expert's gate_up with its bias
                                      for 100 and 256 tokens, its weights in bf16, then as stored (MXFP4: each call
                                      converts them to bf16 first, as prefill does); every input is converted to
                                      bf16 each time, as in a forward pass */
        static const int sh[][4] = { { 2048, 32, 2880, 0 }, { 100, 5760, 2880, 0 }, { 256, 5760, 2880, 0 },
                                     { 100, 5760, 2880, 1 }, { 256, 5760, 2880, 1 } };
        static const char *names[] = { "router", "expert gate_up", "expert gate_up", "MXFP4 gate_up", "MXFP4 gate_up" };
        for (i = 0; i < 5; i++) {
            mm_ctx c; ollm__w bias; int T = sh[i][0], N = sh[i][1], K = sh[i][2]; double s, fl = 2.0 * T * N * K;
            double bytes = (double)T * K * 4 + (double)N * K * 2 + (double)T * N * 4;
            ollm__buf scales; memset(&scales, 0, sizeof scales);
            memset(&c, 0, sizeof c); memset(&bias, 0, sizeof bias);
            c.nw = 1; c.w[0].rows = N; c.w[0].cols = K;
            if (sh[i][3]) {   /* random codes, scales 2^-7 */
                c.w[0].fmt = OLLM__W_MXFP4; c.w[0].dtype = OLLM__U8; c.w[0].data = dev_rand((uint64_t)N * K / 8, 0, 1.0f);
                if (B->alloc(B, (uint64_t)N * K / 32, &scales) != OLLM_OK) die("alloc scales");
                CU->cu.cuMemsetD8Async(ollm__dp(scales), 120, (size_t)N * K / 32, CU->st);
                c.w[0].scales = scales;
            } else { c.w[0].data = dev_rand((uint64_t)N * K, 1, 0.02f); c.w[0].dtype = OLLM__BF16; }
            bias.data = dev_rand((uint64_t)N, 1, 0.1f); bias.dtype = OLLM__BF16; bias.rows = N; c.bias = &bias;
            c.x = dev_rand((uint64_t)T * K, 0, 1.0f); c.y = dev_rand((uint64_t)T * N, 0, 1.0f); c.T = T; c.cvt = 1;
            s = time_it(f_mm, &c, 20);
            snprintf(shape, sizeof shape, "%s T=%d %dx%d +bias", names[i], T, N, K);
            if (N < 64) row("gemm (CUDA cores)", shape, s, bytes / s / 1e9, "GB/s", copy_bw, "copy");
            else row("gemm bf16 small M", shape, s, fl / s / 1e12, "TFLOP/s", gemm_ceil, ceil_name);
            B->release(B, &c.w[0].data); B->release(B, &bias.data); B->release(B, &c.x); B->release(B, &c.y);
            if (sh[i][3]) B->release(B, &scales);
        }
        if (only_moe) { if (out_md) fclose(out_md); return 0; }
    }
    {   /* attention, Llama-3.1-8B heads: 32 query heads, 8 kv heads, head_dim 128 */
        static const int prefill_T[] = { 8192, 32768 }, decode_L[] = { 32768, 100000 };
        int nh = 32, nkv = 8, hd = 128, maxL = 100000 + 8;
        at_ctx c; memset(&c, 0, sizeof c);
        c.kc = dev_rand((uint64_t)maxL * nkv * hd, 1, 1.0f); c.vc = dev_rand((uint64_t)maxL * nkv * hd, 1, 1.0f);
        c.a.n_heads = nh; c.a.n_kv_heads = nkv; c.a.head_dim = hd; c.a.scale = 1.0f / sqrtf((float)hd);
        for (i = 0; i < 2; i++) {
            int T = prefill_T[i]; double s, fl = 2.0 * 2.0 * (double)T * T / 2 * hd * nh;   /* QK and PV, causal half */
            if ((quick && T > 8192) || decode) continue;
            c.q = dev_rand((uint64_t)T * nh * hd, 0, 1.0f); c.o = dev_rand((uint64_t)T * nh * hd, 0, 1.0f);
            c.k = dev_rand((uint64_t)T * nkv * hd, 0, 1.0f); c.v = dev_rand((uint64_t)T * nkv * hd, 0, 1.0f);
            c.a.T = T; c.a.pos0 = 0;
            {   /* on sm_90a the wgmma kernel, then FlashAttention-2; at T = 8192 also GPT-OSS-20B's heads (64 of 64
                   over the same 8 kv heads: the same FLOPs) */
                static const int heads[2][2] = { { 32, 128 }, { 64, 64 } };
                ollm__cu *g = CU; int had = g->fa3, pass, h, nheads = i == 0 && (only_attn || !quick) ? 2 : 1;
                for (h = 0; h < nheads; h++) {
                    c.a.n_heads = heads[h][0]; c.a.head_dim = heads[h][1]; c.a.scale = 1.0f / sqrtf((float)heads[h][1]);
                    snprintf(shape, sizeof shape, "prefill T=%d %d/8x%d", T, heads[h][0], heads[h][1]);
                    for (pass = had ? 0 : 1; pass < 2; pass++) {
                        g->fa3 = pass == 0;
                        s = time_it(f_at, &c, T > 8192 ? 1 : 3);
                        row(pass ? "attention (FA2)" : "attention (wgmma)", shape, s, fl / s / 1e12, "TFLOP/s", gemm_ceil, ceil_name);
                    }
                }
                g->fa3 = had; c.a.n_heads = nh; c.a.head_dim = hd; c.a.scale = 1.0f / sqrtf((float)hd);
            }
            B->release(B, &c.q); B->release(B, &c.o); B->release(B, &c.k); B->release(B, &c.v);
        }
        c.q = dev_rand((uint64_t)nh * hd, 0, 1.0f); c.o = dev_rand((uint64_t)nh * hd, 0, 1.0f);   /* = 64 x 64 */
        c.k = dev_rand((uint64_t)nkv * hd, 0, 1.0f); c.v = dev_rand((uint64_t)nkv * hd, 0, 1.0f);
        for (i = 0; i < 3; i++) {   /* the last: GPT-OSS-20B heads (64 query heads, 8 kv heads of 64) at 64K */
            int L = i < 2 ? decode_L[i] : 65536; double s, bytes;
            c.a.n_heads = i < 2 ? nh : 64; c.a.head_dim = i < 2 ? hd : 64; c.a.scale = 1.0f / sqrtf((float)c.a.head_dim);
            bytes = (double)L * nkv * c.a.head_dim * 2 * 2;
            c.a.T = 1; c.a.pos0 = L - 1;
            s = time_it(f_at, &c, 20);
            snprintf(shape, sizeof shape, "decode L=%d %d/8x%d", L, c.a.n_heads, c.a.head_dim);
            row("attention (decode)", shape, s, bytes / s / 1e9, "GB/s", copy_bw, "copy");
        }
        B->release(B, &c.q); B->release(B, &c.o); B->release(B, &c.k); B->release(B, &c.v);
        B->release(B, &c.kc); B->release(B, &c.vc);
    }
    if (only_attn) { if (out_md) fclose(out_md); return 0; }
    {   /* the host's side: what a decode step pays per kernel launched and per wait for a result, apart from the
           work itself (a 256-element silu_mul: one tiny kernel) */
        ollm__buf g = dev_rand(256, 0, 1.0f), u = dev_rand(256, 0, 1.0f); float h[4]; double t0, th, tg, tr; int n = 2000;
        if (B->sync(B) != OLLM_OK) die("sync");
        t0 = ollm__now();
        for (i = 0; i < n; i++) if (B->silu_mul(B, g, u, 256) != OLLM_OK) die("silu_mul");
        th = ollm__now() - t0;
        if (B->sync(B) != OLLM_OK) die("sync");
        tg = ollm__now() - t0;
        t0 = ollm__now();
        for (i = 0; i < 200; i++)
            if (B->silu_mul(B, g, u, 256) != OLLM_OK || B->download(B, h, g, 16) != OLLM_OK) die("read back");
        tr = (ollm__now() - t0) / 200;
        printf("%-22s %-28s %10.2f us issuing a launch, %.2f us a launch back to back on the GPU, %.1f us a launch "
               "and a read back\n", "host overhead", "tiny kernel", th / n * 1e6, tg / n * 1e6, tr * 1e6);
        if (out_md) fprintf(out_md, "| host overhead | tiny kernel | %.2f | %.2f us a launch on the GPU, %.1f us launch + "
                            "read back | |\n", th / n * 1e6, tg / n * 1e6, tr * 1e6);
        B->release(B, &g); B->release(B, &u);
    }
    {   /* Gated DeltaNet, Qwen3-Next-80B heads (16 key / 32 value heads of 128): the delta rule over one decode token
           and a prefill chunk of 2048, the latter both recurrent (one token after another) and in chunks of 64.
           Decode reads and writes the fp32 state S (4 MiB a layer): GB/s of that against copy. Prefill: 6 dk dv
           flops per token and value head (decay, S^T k, update, S^T q: the recurrence's count for both), in fp32. */
        ollm__dn_dims d; int Ts[] = { 1, 2048, 2048 }, chunk[] = { 0, 0, 64 }, C; ollm__buf qkv, o, beta, g, S;
        d.nk = 16; d.nv = 32; d.dk = 128; d.dv = 128; d.K = 4; C = 2 * d.nk * d.dk + d.nv * d.dv;
        qkv = dev_rand((uint64_t)2048 * C, 0, 1.0f); o = dev_rand((uint64_t)2048 * d.nv * d.dv, 0, 1.0f);
        beta = dev_rand((uint64_t)2048 * d.nv, 0, 0.5f); g = dev_rand((uint64_t)2048 * d.nv, 0, 0.1f);
        S = dev_rand((uint64_t)d.nv * d.dk * d.dv, 0, 0.01f);
        for (i = 0; i < 3; i++) {
            dn_ctx c; double s, fl = 6.0 * Ts[i] * d.nv * d.dk * d.dv, state = 2.0 * d.nv * d.dk * d.dv * 4;
            c.o = o; c.qkv = qkv; c.beta = beta; c.g = g; c.S = S; c.d = d; c.T = Ts[i];
            CU->dn_chunk = chunk[i];
            s = time_it(f_dn, &c, Ts[i] == 1 ? 50 : 3);
            CU->dn_chunk = 64;
            if (Ts[i] == 1) {
                snprintf(shape, sizeof shape, "T=%d 32x128x128", Ts[i]);
                row("deltanet decode", shape, s, state / s / 1e9, "GB/s", copy_bw, "copy");
            } else {
                snprintf(shape, sizeof shape, "T=%d 32x128x128 %s", Ts[i], chunk[i] ? "chunks 64" : "recurrent");
                printf("%-22s %-28s %10.1f us %9.2f us/token, %.2f TFLOP/s fp32\n", "deltanet prefill", shape, s * 1e6,
                       s * 1e6 / Ts[i], fl / s / 1e12);
                if (out_md) fprintf(out_md, "| deltanet prefill | %s | %.1f | %.2f us/token (%.2f TFLOP/s fp32) | %s |\n",
                                    shape, s * 1e6, s * 1e6 / Ts[i], fl / s / 1e12,
                                    chunk[i] ? "chunks of 64 tokens in order" : "sequential over tokens");
            }
        }
        B->release(B, &qkv); B->release(B, &o); B->release(B, &beta); B->release(B, &g); B->release(B, &S);
    }
    if (out_md) fclose(out_md);
    printf("peak device memory: %.2f GiB\n", (double)CU->peak / 1073741824.0);
    B->destroy(B);
    return 0;
}
