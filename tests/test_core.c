/* Unit tests of the core: JSON, safetensors and config validation, bad model directories, every CPU op against a
   naive double-precision loop, samplers and session behaviour, streamed and direct (O_DIRECT) reads. Run from the
   repository root. */
#define OLLM_FAULT_INJECTION
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include "check.h"
#include "staged.h"

static char tmp_root[256];

/* ---- JSON ---- */
static int json_ok(const char *text) {
    ollm__json j; int ok = ollm__json_parse(&j, text, strlen(text)); ollm__json_free(&j); return ok;
}
static void test_json(void) {
    ollm__json j; uint32_t v; char deep[600]; int i;
    const char *doc = "{\"a\": 1e-05, \"b\": [1, -2.5, 500000.0, 1E3, 0], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"t\": true, "
                      "\"n\": null, \"a\": 7}";
    CHECK(ollm__json_parse(&j, doc, strlen(doc)), "json: a valid document parses");
    v = ollm__json_get(&j, 1, "a");
    CHECK(v && j.v[v].num == 7, "json: the last duplicate key wins");
    v = ollm__json_get(&j, 1, "b");
    CHECK(j.v[v].n == 5 && j.v[v + 1].num == 1 && j.v[v + 2].num == -2.5 && j.v[v + 3].num == 500000.0 &&
          j.v[v + 4].num == 1000, "json: numbers");
    CHECK(ollm__json_str(&j, ollm__json_get(&j, 1, "s")) &&
          strcmp(ollm__json_str(&j, ollm__json_get(&j, 1, "s")), "x\xc3\xa9\xf0\x9f\x98\x80\n") == 0,
          "json: escapes and surrogate pairs decode to UTF-8");
    CHECK(ollm__json_get(&j, ollm__json_get(&j, 1, "missing"), "x") == 0, "json: lookups through a missing member are 0");
    ollm__json_free(&j);
    CHECK(ollm__json_parse(&j, "1e-05", 5) && j.v[1].num == 1e-05, "json: 1e-05 is exact");
    ollm__json_free(&j);
    CHECK(ollm__json_parse(&j, "0.02", 4) && j.v[1].num == 0.02, "json: 0.02 is exact");
    ollm__json_free(&j);
    CHECK(!json_ok("{\"a\": 1,}"), "json: trailing comma rejected");
    CHECK(!json_ok("{\"a\": 01}"), "json: leading zero rejected");
    CHECK(!json_ok("[1] x"), "json: trailing garbage rejected");
    CHECK(!json_ok("\"\xff\""), "json: invalid UTF-8 rejected");
    CHECK(!json_ok("\"\xc0\xaf\""), "json: overlong UTF-8 rejected");
    CHECK(!json_ok("\"\xed\xa0\x80\""), "json: encoded surrogate rejected");
    CHECK(!json_ok("\"\\ud800\""), "json: lone surrogate escape rejected");
    CHECK(!json_ok("\"a\tb\""), "json: raw control character rejected");
    CHECK(!json_ok("{\"a\" 1}"), "json: missing colon rejected");
    CHECK(!json_ok(""), "json: empty input rejected");
    CHECK(!json_ok("[1, 2"), "json: truncated input rejected");
    CHECK(!json_ok("nul"), "json: truncated literal rejected");
    for (i = 0; i < 300; i++) deep[i] = '[';
    for (i = 0; i < 300; i++) deep[300 + i] = ']';
    deep[599] = 0;   /* 300 opens, 299 closes: also unbalanced, but depth fails first */
    CHECK(!json_ok(deep), "json: nesting deeper than the limit rejected");
    CHECK(json_ok("[[[[[[[[[[1]]]]]]]]]]"), "json: moderate nesting accepted");
}

/* ---- safetensors ---- */
static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb"); fwrite(data, 1, n, f); fclose(f);
}
/* a safetensors file with the given header text and `data_bytes` bytes of data */
static void write_st(const char *path, const char *hdr, size_t data_bytes, long long claimed_len) {
    size_t hl = strlen(hdr), i; unsigned char *buf = (unsigned char *)calloc(8 + hl + data_bytes + 1, 1);
    unsigned long long L = claimed_len >= 0 ? (unsigned long long)claimed_len : hl;
    for (i = 0; i < 8; i++) buf[i] = (unsigned char)(L >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    for (i = 0; i < data_bytes; i++) buf[8 + hl + i] = (unsigned char)(i * 7);
    write_file(path, buf, 8 + hl + data_bytes);
    free(buf);
}
static ollm_result st_parse(const char *path, char *err, size_t cap) {
    ollm__st st; ollm__log lg; ollm_result r;
    memset(&st, 0, sizeof st); memset(&lg, 0, sizeof lg);
    r = ollm__st_add_file(&st, path, "x.safetensors", &lg);
    if (r == OLLM_OK) r = ollm__st_index(&st, &lg);
    snprintf(err, cap, "%s", lg.err);
    ollm__st_free(&st);
    return r;
}
static void test_safetensors(void) {
    char p[512], err[1024];
    snprintf(p, sizeof p, "%s/t.safetensors", tmp_root);
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},\"__metadata__\":{\"format\":\"pt\"}}", 12, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_OK, "safetensors: a valid file parses");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 6, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "past the end"), "safetensors: truncated data is OLLM_ERR_FORMAT");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12, 1000000);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "header length"), "safetensors: header length past EOF");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "overlap"), "safetensors: overlapping tensors rejected");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,8],\"data_offsets\":[0,64]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[40,44]}}", 64, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT, "safetensors: a tensor inside another rejected");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}", 12, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "needs"), "safetensors: byte length != dtype x shape");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,12]}}", 12, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT, "safetensors: overflowing shape rejected");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,-3],\"data_offsets\":[0,12]}}", 12, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT, "safetensors: negative dimension rejected");
    write_st(p, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_UNSUPPORTED && strstr(err, "Q4"), "safetensors: unknown dtype named");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,0]}}", 4, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT, "safetensors: reversed offsets rejected");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2]", 4, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "JSON"), "safetensors: header that is not JSON");
    write_st(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2]}}", 4, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "data_offsets"), "safetensors: missing data_offsets");
    write_file(p, "abc", 3);
    CHECK(st_parse(p, err, sizeof err) == OLLM_ERR_FORMAT, "safetensors: 3-byte file rejected");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, -1);
    CHECK(st_parse(p, err, sizeof err) == OLLM_OK, "safetensors: scalar tensor accepted");
}

/* ---- bad model directories: each a copy of a fixture with one thing wrong ---- */
static int sh(const char *cmd) { return system(cmd); }
static ollm_result open_dir(const char *dir, char *err, size_t cap) {
    ollm_model *m; ollm_model_config c = ollm_model_config_default(); ollm_result r;
    c.backend = OLLM_BACKEND_CPU;
    r = ollm_model_open(dir, &c, &m);
    snprintf(err, cap, "%s", ollm_model_last_error(m));
    ollm_model_close(m);
    return r;
}
static void fresh_copy(const char *src, const char *dst) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", dst, src, dst);
    if (sh(cmd) != 0) printf("cannot copy %s\n", src);
}
static void edit_config(const char *dir, const char *sed_expr) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sed -i '%s' %s/config.json", sed_expr, dir);
    if (sh(cmd) != 0) printf("sed failed\n");
}
static void test_bad_dirs(void) {
    char d[512], d2[512], err[1024], cmd[2048]; const char *fx = "tests/fixtures/llama_gqa1";
    const char *sharded = "tests/fixtures/llama_untied_gqa2_sharded";
    snprintf(d, sizeof d, "%s/m", tmp_root);
    CHECK(open_dir(fx, err, sizeof err) == OLLM_OK, "fixture opens");
    CHECK(open_dir("/nonexistent/dir", err, sizeof err) == OLLM_ERR_IO && strstr(err, "/nonexistent/dir"), "missing directory named");
    fresh_copy(fx, d);
    snprintf(cmd, sizeof cmd, "truncate -s -1000 %s/model.safetensors", d); sh(cmd);
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "truncated"), "truncated checkpoint is OLLM_ERR_FORMAT");
    fresh_copy(fx, d); edit_config(d, "s/\"model_type\": \"llama\"/\"model_type\": \"mamba\"/");
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_UNSUPPORTED && strstr(err, "mamba"), "unknown architecture named");
    fresh_copy(fx, d); edit_config(d, "s/\"intermediate_size\": 192/\"intermediate_size\": 200/");
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "gate_proj") && strstr(err, "shape"),
          "shape disagreeing with the config names the tensor");
    fresh_copy(fx, d); edit_config(d, "s/\"num_hidden_layers\": 3/\"num_hidden_layers\": 4/");
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "missing tensor 'model.layers.3."), "missing tensor named");
    fresh_copy(fx, d); edit_config(d, "s/\"hidden_size\": 64,/\"hidden_size\": 64,,/");
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "config.json"), "malformed config.json");
    fresh_copy(fx, d); edit_config(d, "s/\"llama\"/\"ll\\xffama\"/");
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "UTF-8"), "non-UTF-8 config.json");
    fresh_copy(fx, d); edit_config(d, "s/\"num_key_value_heads\": 4/\"num_key_value_heads\": 3/");
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_FORMAT, "heads not a multiple of kv heads");
    fresh_copy(fx, d); snprintf(cmd, sizeof cmd, "rm %s/model.safetensors", d); sh(cmd);
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_IO && strstr(err, "model.safetensors"), "no weights file");
    fresh_copy(fx, d); snprintf(cmd, sizeof cmd, "rm %s/config.json", d); sh(cmd);
    CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_IO && strstr(err, "config.json"), "no config.json");
    snprintf(d2, sizeof d2, "%s/s", tmp_root);
    fresh_copy(sharded, d2); snprintf(cmd, sizeof cmd, "rm %s/model-00002-of-00004.safetensors", d2); sh(cmd);
    CHECK(open_dir(d2, err, sizeof err) == OLLM_ERR_IO && strstr(err, "model-00002-of-00004"), "missing shard named");
    fresh_copy(sharded, d2);
    snprintf(cmd, sizeof cmd, "sed -i 's/model-00001-of-00004.safetensors/..\\/..\\/x/' %s/model.safetensors.index.json", d2); sh(cmd);
    CHECK(open_dir(d2, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "bad file"), "path traversal in the index rejected");
    fresh_copy(sharded, d2);   /* an index whose weight_map names nothing, beside its shards */
    snprintf(cmd, sizeof cmd, "printf '{\"metadata\": {}, \"weight_map\": {}}' > %s/model.safetensors.index.json", d2); sh(cmd);
    CHECK(open_dir(d2, err, sizeof err) == OLLM_ERR_FORMAT && strstr(err, "lists no tensors"), "empty weight_map rejected");
    fresh_copy(fx, d); snprintf(cmd, sizeof cmd, "chmod 000 %s/model.safetensors", d); sh(cmd);
    if (geteuid() != 0) CHECK(open_dir(d, err, sizeof err) == OLLM_ERR_IO, "unreadable shard");
    snprintf(cmd, sizeof cmd, "chmod 644 %s/model.safetensors", d); sh(cmd);
}

/* ---- CPU ops against naive double-precision loops ---- */
static uint64_t rng_state = 42;
static float frand(void) { return (float)((double)(ollm__rng_next(&rng_state) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }
static ollm__w make_w(int dtype, int64_t rows, int64_t cols, float scale) {
    ollm__w w; int64_t i, n = rows * cols;
    w.dtype = (uint8_t)dtype; w.rows = rows; w.cols = cols;
    w.data.bytes = (uint64_t)n * ollm__dtype_size[dtype];
    w.data.ptr = malloc((size_t)w.data.bytes);
    for (i = 0; i < n; i++) {
        float v = frand() * scale;
        if (dtype == OLLM__F32) ((float *)w.data.ptr)[i] = v;
        else if (dtype == OLLM__BF16) ((uint16_t *)w.data.ptr)[i] = ollm__f32_to_bf16(v);
        else {   /* f16 from a value exactly representable: bf16-rounded, small exponent */
            float r = ollm__bf16_to_f32(ollm__f32_to_bf16(v)); uint32_t u; uint16_t h;
            if (fabsf(r) < 6.2e-5f) r = 0;   /* below the f16 normal range */
            memcpy(&u, &r, 4);
            h = (uint16_t)(((u >> 16) & 0x8000) | (r == 0 ? 0 : ((((u >> 23) & 0xff) - 112) << 10) | ((u >> 13) & 0x3ff)));
            ((uint16_t *)w.data.ptr)[i] = h;
        }
    }
    return w;
}
static double wval(const ollm__w *w, int64_t i) {
    const void *p = w->data.ptr;
    return w->dtype == OLLM__F32 ? ((const float *)p)[i] : w->dtype == OLLM__BF16 ? ollm__bf16_to_f32(((const uint16_t *)p)[i])
                                                                                  : ollm__f16_to_f32(((const uint16_t *)p)[i]);
}
static float *rand_vec(int64_t n, float scale) { float *v = (float *)malloc((size_t)n * 4); int64_t i; for (i = 0; i < n; i++) v[i] = frand() * scale; return v; }
static ollm__buf hb(void *p, uint64_t bytes) { ollm__buf b; b.ptr = p; b.bytes = bytes; return b; }
static double rel_err(const float *got, const double *ref, int64_t n) {
    double num = 0, den = 0; int64_t i;
    for (i = 0; i < n; i++) { double d = got[i] - ref[i]; num += d * d; den += ref[i] * ref[i]; }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void test_cpu_ops(ollm__backend *B) {
    int dt, t; char what[256];
    /* f16 conversion: exact values */
    CHECK(ollm__f16_to_f32(0x3c00) == 1.0f && ollm__f16_to_f32(0xc000) == -2.0f && ollm__f16_to_f32(0x0001) == 5.9604644775390625e-8f &&
          isinf(ollm__f16_to_f32(0x7c00)), "f16 conversion");
    CHECK(ollm__bf16_to_f32(ollm__f32_to_bf16(1.00390625f)) == 1.0f, "bf16 rounding to nearest even");
    for (dt = 0; dt < 3; dt++) {
        static const int dts[] = { OLLM__BF16, OLLM__F16, OLLM__F32 };
        static const int shapes[][3] = { { 1, 37, 29 }, { 5, 64, 130 }, { 33, 17, 200 } };   /* T, rows, cols */
        int si;
        for (si = 0; si < 3; si++) {
            int T = shapes[si][0], N = shapes[si][1], K = shapes[si][2], acc;
            ollm__w W = make_w(dts[dt], N, K, 0.5f); float *x = rand_vec((int64_t)T * K, 1.0f);
            for (acc = 0; acc < 2; acc++) {
                float *y = rand_vec((int64_t)T * N, 1.0f); double *ref = (double *)malloc((size_t)T * N * 8); int n, k;
                for (t = 0; t < T; t++)
                    for (n = 0; n < N; n++) {
                        double s = acc ? y[(int64_t)t * N + n] : 0;
                        for (k = 0; k < K; k++) s += wval(&W, (int64_t)n * K + k) * x[(int64_t)t * K + k];
                        ref[(int64_t)t * N + n] = s;
                    }
                B->matmul(B, hb(y, 0), hb(x, 0), &W, NULL, T, acc);
                snprintf(what, sizeof what, "matmul %s T=%d N=%d K=%d accumulate=%d", ollm__dtype_names[dts[dt]], T, N, K, acc);
                CHECK(rel_err(y, ref, (int64_t)T * N) < 1e-5, what);
                free(y); free(ref);
            }
            free(W.data.ptr); free(x);
        }
    }
    for (dt = 0; dt < 3; dt++) {   /* one token (read where the rows lie) is bit for bit a row of several tokens */
        static const int dts[] = { OLLM__BF16, OLLM__F16, OLLM__F32 };
        int N = 45, K = 1003, acc; ollm__w W = make_w(dts[dt], N, K, 0.5f); float *x = rand_vec(3 * (int64_t)K, 1.0f);
        for (acc = 0; acc < 2; acc++) {
            float *y3 = rand_vec(3 * N, 1.0f), *y1 = (float *)malloc((size_t)N * 4);
            memcpy(y1, y3 + N, (size_t)N * 4);
            B->matmul(B, hb(y3, 0), hb(x, 0), &W, NULL, 3, acc);
            B->matmul(B, hb(y1, 0), hb(x + K, 0), &W, NULL, 1, acc);
            snprintf(what, sizeof what, "matmul %s T=1 equals a row of T=3 exactly (accumulate=%d)", ollm__dtype_names[dts[dt]], acc);
            CHECK(memcmp(y1, y3 + N, (size_t)N * 4) == 0, what);
            free(y3); free(y1);
        }
        free(W.data.ptr); free(x);
    }
    {   /* the same for MXFP4 blocks */
        int N = 45, K = 1024, i; ollm__w W; float *x = rand_vec(3 * (int64_t)K, 1.0f), *y3 = rand_vec(3 * N, 1.0f);
        float *y1 = (float *)malloc((size_t)N * 4); uint8_t *bl = (uint8_t *)malloc((size_t)N * K / 2), *sc = (uint8_t *)malloc((size_t)N * K / 32);
        for (i = 0; i < N * K / 2; i++) bl[i] = (uint8_t)(frand() * 128.0f + 128.0f);
        for (i = 0; i < N * K / 32; i++) sc[i] = (uint8_t)(118 + (int)(frand() * 8.0f + 8.0f));
        memset(&W, 0, sizeof W); W.fmt = OLLM__W_MXFP4; W.dtype = OLLM__U8; W.rows = N; W.cols = K;
        W.data = hb(bl, (uint64_t)N * K / 2); W.scales = hb(sc, (uint64_t)N * K / 32);
        B->matmul(B, hb(y3, 0), hb(x, 0), &W, NULL, 3, 0);
        B->matmul(B, hb(y1, 0), hb(x + K, 0), &W, NULL, 1, 0);
        CHECK(memcmp(y1, y3 + N, (size_t)N * 4) == 0, "matmul MXFP4 T=1 equals a row of T=3 exactly");
        free(x); free(y3); free(y1); free(bl); free(sc);
    }
    {   /* rmsnorm, both weight conventions */
        int T = 3, n = 77, uo, i; ollm__w w = make_w(OLLM__BF16, 1, n, 1.0f); float *x = rand_vec(T * n, 3.0f), *y = rand_vec(T * n, 1);
        double ref[3 * 77];
        for (uo = 0; uo < 2; uo++) {
            for (t = 0; t < T; t++) {
                double ss = 0; for (i = 0; i < n; i++) ss += (double)x[t * n + i] * x[t * n + i];
                for (i = 0; i < n; i++) ref[t * n + i] = (uo + wval(&w, i)) * x[t * n + i] / sqrt(ss / n + 1e-5);
            }
            B->rmsnorm(B, hb(y, 0), hb(x, 0), &w, T, n, 1e-5f, uo);
            CHECK(rel_err(y, ref, T * n) < 1e-6, uo ? "rmsnorm (1 + w)" : "rmsnorm");
        }
        free(w.data.ptr); free(x); free(y);
    }
    {   /* rope: rotate-half over the first rot dims, mscale */
        int T = 4, nh = 3, hd = 16, rot = 12, pos0 = 1000, h, i; float inv[8]; double ref[4 * 3 * 16];
        float *x = rand_vec(T * nh * hd, 1.0f);
        for (i = 0; i < rot / 2; i++) inv[i] = (float)pow(10000.0, -2.0 * i / rot);
        for (t = 0; t < T; t++) for (h = 0; h < nh; h++) for (i = 0; i < hd; i++) {
            const float *xh = x + (t * nh + h) * hd; double v;
            if (i < rot) {
                int pi = i % (rot / 2); double ang = (double)(float)((float)(pos0 + t) * inv[pi]);
                double other = i < rot / 2 ? -xh[i + rot / 2] : xh[i - rot / 2];
                v = (xh[i] * cos(ang) + other * sin(ang)) * 1.25;
            } else v = xh[i];
            ref[(t * nh + h) * hd + i] = v;
        }
        {   /* the same heads as q (the first 2 of each token) and k (the last) in one call */
            float *q = (float *)malloc(sizeof(float) * T * 2 * hd), *k = (float *)malloc(sizeof(float) * T * hd);
            double *rq = (double *)malloc(sizeof(double) * T * 2 * hd), *rk = (double *)malloc(sizeof(double) * T * hd);
            for (t = 0; t < T; t++) {
                memcpy(q + t * 2 * hd, x + t * nh * hd, sizeof(float) * 2 * hd); memcpy(k + t * hd, x + (t * nh + 2) * hd, sizeof(float) * hd);
                memcpy(rq + t * 2 * hd, ref + t * nh * hd, sizeof(double) * 2 * hd); memcpy(rk + t * hd, ref + (t * nh + 2) * hd, sizeof(double) * hd);
            }
            B->rope(B, hb(q, 0), 2, hb(k, 0), 1, T, hd, rot, pos0, hb(inv, 0), 1.25f);
            CHECK(rel_err(q, rq, T * 2 * hd) < 1e-5 && rel_err(k, rk, T * hd) < 1e-5, "rope: q and k heads in one call");
            free(q); free(k); free(rq); free(rk);
        }
        B->rope(B, hb(x, 0), nh, hb(x, 0), 0, T, hd, rot, pos0, hb(inv, 0), 1.25f);
        CHECK(rel_err(x, ref, T * nh * hd) < 1e-5, "rope: partial rotary, mscale, large positions");
        free(x);
    }
    {   /* attention: GQA, causal with a past, sliding window, sinks */
        int cases[][5] = { { 1, 9, 0, 0, 0 }, { 7, 0, 0, 0, 1 }, { 5, 20, 4, 1, 0 }, { 6, 3, 2, 1, 1 } };   /* T, pos0, window, sinks, ... */
        int ci;
        for (ci = 0; ci < 4; ci++) {
            int T = cases[ci][0], pos0 = cases[ci][1], win = cases[ci][2], nh = 4, nkv = 2, hd = 24, ctx = 64, h, i, j, d;
            ollm__attn_args a; ollm__w sinks = make_w(OLLM__BF16, 1, nh, 2.0f);
            float *q = rand_vec(T * nh * hd, 1), *k = rand_vec(T * nkv * hd, 1), *v = rand_vec(T * nkv * hd, 1);
            float *kc = rand_vec(ctx * nkv * hd, 1), *vc = rand_vec(ctx * nkv * hd, 1), *o = rand_vec(T * nh * hd, 1);
            double *ref = (double *)calloc((size_t)T * nh * hd, 8);
            memset(&a, 0, sizeof a);
            a.T = T; a.pos0 = pos0; a.n_heads = nh; a.n_kv_heads = nkv; a.head_dim = hd; a.window = win;
            a.scale = 1.0f / sqrtf((float)hd); a.sinks = cases[ci][3] ? &sinks : NULL;
            CHECK(B->attention(B, hb(o, 0), hb(q, 0), hb(k, 0), hb(v, 0), hb(kc, (uint64_t)(pos0 + T) * nkv * hd * 4 - 4),
                               hb(vc, (uint64_t)ctx * nkv * hd * 4), &a) == OLLM_ERR_INVALID_ARG,
                  "attention refuses a cache without room for positions pos0 + T - 1");
            CHECK(B->attention(B, hb(o, 0), hb(q, 0), hb(k, 0), hb(v, 0), hb(kc, (uint64_t)ctx * nkv * hd * 4),
                               hb(vc, (uint64_t)ctx * nkv * hd * 4), &a) == OLLM_OK, "attention runs");
            for (t = 0; t < T; t++) for (h = 0; h < nh; h++) {
                int pos = pos0 + t, kvh = h / (nh / nkv); double s[128], mx = -1e300, sum = 0;
                for (j = 0; j <= pos; j++) {
                    const float *kj = kc + (j * nkv + kvh) * hd;   /* the cache now holds the new k too */
                    double dd = 0; for (d = 0; d < hd; d++) dd += (double)q[(t * nh + h) * hd + d] * kj[d];
                    s[j] = dd / sqrt((double)hd);
                    if (win && j <= pos - win) s[j] = -1e300;
                    if (s[j] > mx) mx = s[j];
                }
                if (a.sinks && wval(&sinks, h) > mx) mx = wval(&sinks, h);
                for (j = 0; j <= pos; j++) { s[j] = s[j] < -1e299 ? 0 : exp(s[j] - mx); sum += s[j]; }
                if (a.sinks) sum += exp(wval(&sinks, h) - mx);
                for (j = 0; j <= pos; j++) for (d = 0; d < hd; d++)
                    ref[(t * nh + h) * hd + d] += s[j] / sum * vc[(j * nkv + kvh) * hd + d];
            }
            for (i = 0; i < T * nkv * hd; i++) if (kc[pos0 * nkv * hd + i] != k[i]) break;
            CHECK(i == T * nkv * hd, "attention appends k to the cache at pos0");
            snprintf(what, sizeof what, "attention T=%d pos0=%d window=%d sinks=%d", T, pos0, win, cases[ci][3]);
            CHECK(rel_err(o, ref, T * nh * hd) < 1e-5, what);
            if (win) {   /* the same through a ring of win + T - 1 rows holding the positions it can */
                int R = win + T - 1, kvw = nkv * hd; float *kr = rand_vec(R * kvw, 1), *vr = rand_vec(R * kvw, 1);
                float *o2 = rand_vec(T * nh * hd, 1);
                for (j = pos0 + T > R ? pos0 + T - R : 0; j < pos0; j++) {
                    memcpy(kr + (j % R) * kvw, kc + j * kvw, (size_t)kvw * 4); memcpy(vr + (j % R) * kvw, vc + j * kvw, (size_t)kvw * 4);
                }
                a.ring = R - 1;
                CHECK(B->attention(B, hb(o2, 0), hb(q, 0), hb(k, 0), hb(v, 0), hb(kr, (uint64_t)R * kvw * 4),
                                   hb(vr, (uint64_t)R * kvw * 4), &a) == OLLM_ERR_INVALID_ARG,
                      "attention refuses a ring shorter than window + T - 1");
                a.ring = R;
                CHECK(B->attention(B, hb(o2, 0), hb(q, 0), hb(k, 0), hb(v, 0), hb(kr, (uint64_t)R * kvw * 4),
                                   hb(vr, (uint64_t)R * kvw * 4), &a) == OLLM_OK, "attention runs on a ring");
                for (i = 0; i < T * kvw; i++) if (kr[((pos0 + i / kvw) % R) * kvw + i % kvw] != k[i]) break;
                CHECK(i == T * kvw, "attention appends k to the ring at the rows of its positions");
                CHECK(memcmp(o, o2, (size_t)T * nh * hd * 4) == 0, "attention through a ring: identical output");
                free(kr); free(vr); free(o2);
            }
            free(q); free(k); free(v); free(kc); free(vc); free(o); free(ref); free(sinks.data.ptr);
        }
    }
    {   /* silu_mul and embed */
        int n = 101, i; float *g = rand_vec(n, 4), *u = rand_vec(n, 1); double ref[101];
        ollm__w table = make_w(OLLM__BF16, 10, 33, 1.0f); int32_t ids[3] = { 9, 0, 4 }; float x[3 * 33]; double eref[3 * 33];
        for (i = 0; i < n; i++) ref[i] = g[i] / (1 + exp(-(double)g[i])) * u[i];
        B->silu_mul(B, hb(g, 0), hb(u, 0), n);
        CHECK(rel_err(g, ref, n) < 1e-6, "silu_mul");
        for (t = 0; t < 3; t++) for (i = 0; i < 33; i++) eref[t * 33 + i] = wval(&table, ids[t] * 33 + i);
        B->embed(B, hb(x, 0), &table, ids, 3);
        CHECK(rel_err(x, eref, 99) == 0, "embed");
        free(g); free(u); free(table.data.ptr);
    }
}

/* ---- RoPE tables ---- */
static void test_rope_tables(void) {
    ollm__rope rp; float inv[64]; int rot; float ms; double pi = 3.14159265358979323846;
    memset(&rp, 0, sizeof rp);
    rp.type = OLLM__ROPE_LLAMA3; rp.theta = 500000; rp.factor = 8; rp.low_freq_factor = 1; rp.high_freq_factor = 4;
    rp.original_max_position_embeddings = 8192; rp.partial_rotary_factor = 1;
    ollm__rope_freqs(&rp, 128, inv, &rot, &ms);
    CHECK(rot == 128 && ms == 1.0f, "llama3: full rotation, no scaling of cos/sin");
    CHECK(fabs(inv[0] - 1.0) < 1e-7, "llama3: highest frequency unchanged");
    CHECK(fabs(inv[63] / (pow(500000.0, -126.0 / 128) / 8) - 1) < 1e-6, "llama3: lowest frequency divided by factor");
    {   /* a medium frequency is the smooth mix */
        int i; for (i = 0; i < 64; i++) {
            double base = pow(500000.0, -2.0 * i / 128), wl = 2 * pi / base;
            if (wl >= 8192 / 4.0 && wl <= 8192 / 1.0) {
                double sm = (8192 / wl - 1) / 3, want = (1 - sm) * base / 8 + sm * base;
                CHECK(fabs(inv[i] - want) < 1e-6 * want, "llama3: medium band smoothed");
                break;
            }
        }
    }
    rp.type = OLLM__ROPE_YARN; rp.theta = 150000; rp.factor = 32; rp.beta_fast = 32; rp.beta_slow = 1;
    rp.original_max_position_embeddings = 4096; rp.truncate = 0;
    ollm__rope_freqs(&rp, 64, inv, &rot, &ms);
    CHECK(fabs(ms - (0.1 * log(32.0) + 1)) < 1e-6, "yarn: attention factor 0.1 ln(factor) + 1");
    CHECK(fabs(inv[0] - 1.0) < 1e-7 && fabs(inv[31] / (pow(150000.0, -62.0 / 64) / 32) - 1) < 1e-6, "yarn: extrapolated and interpolated ends");
    memset(&rp, 0, sizeof rp); rp.theta = 10000000; rp.factor = 1; rp.partial_rotary_factor = 0.25;
    ollm__rope_freqs(&rp, 256, inv, &rot, &ms);
    CHECK(rot == 64 && fabs(inv[1] / pow(1e7, -2.0 / 64) - 1) < 1e-6, "partial rotary: 64 of 256 dims, frequencies over 64");
}

/* ---- sampling and sessions on a fixture ---- */
static int stop_after_first(void *user, uint64_t done, uint64_t total) { (void)total; *(uint64_t *)user = done; return 1; }
static int count_tokens(void *user, int32_t tok, const char *piece, size_t len) { (void)tok; (void)piece; (void)len; return ++*(int *)user >= 3; }
static void test_session(void) {
    ollm_model *m; ollm_session *s; ollm_model_config mc = ollm_model_config_default();
    ollm_session_config sc = ollm_session_config_default(); ollm_generate_config g = ollm_generate_config_default();
    int32_t ids[64], out1[16], out2[16], out3[16]; size_t n1, n2, n3; int i, calls = 0; float l1[320], l2[320];
    uint64_t done = 0;
    mc.backend = OLLM_BACKEND_CPU;
    if (ollm_model_open("tests/fixtures/llama_gqa1", &mc, &m) != OLLM_OK) { CHECK(0, "fixture opens"); ollm_model_close(m); return; }
    for (i = 0; i < 64; i++) ids[i] = (i * 37 + 11) % 320;
    sc.max_context = 48; sc.prefill_chunk = 16;
    CHECK(ollm_session_open(m, &sc, &s) == OLLM_OK, "session opens");
    CHECK(ollm_session_generate(s, &g, out1, 16, &n1) == OLLM_ERR_INVALID_ARG, "generate before any prompt is an error");
    CHECK(ollm_session_prefill(s, ids, 49, NULL) == OLLM_ERR_CONTEXT_FULL && ollm_session_length(s) == 0,
          "a prompt longer than the context is refused, nothing fed");
    ids[3] = 320;
    CHECK(ollm_session_prefill(s, ids, 40, NULL) == OLLM_ERR_INVALID_ARG && strstr(ollm_model_last_error(m), "vocabulary"),
          "an id outside the vocabulary is refused");
    ids[3] = 5;
    CHECK(ollm_session_prefill(s, ids, 40, NULL) == OLLM_OK && ollm_session_length(s) == 40, "prefill of 40 tokens");
    memcpy(l1, ollm_session_logits(s), sizeof l1);
    /* rewind and refeed gives the same logits */
    CHECK(ollm_session_rewind(s, 25) == OLLM_OK && ollm_session_length(s) == 25 && ollm_session_logits(s) == NULL, "rewind");
    CHECK(ollm_session_prefill(s, ids + 25, 15, NULL) == OLLM_OK, "refeed after rewind");
    memcpy(l2, ollm_session_logits(s), sizeof l2);
    CHECK(memcmp(l1, l2, sizeof l1) == 0, "rewind + refeed reproduces the logits exactly");
    /* greedy generation stops at the context end */
    g.max_tokens = 16; g.ignore_eos = 1;
    CHECK(ollm_session_generate(s, &g, out1, 16, &n1) == OLLM_OK && n1 == 8, "generation stops when the context is full");
    /* seeded sampling is reproducible; top_k = 1 is greedy */
    ollm_session_rewind(s, 40); ollm_session_prefill(s, NULL, 0, NULL);
    ollm_session_rewind(s, 39); ollm_session_prefill(s, ids + 39, 1, NULL);
    g.max_tokens = 5; g.temperature = 0; n1 = 0;
    ollm_session_generate(s, &g, out1, 16, &n1);
    ollm_session_rewind(s, 39); ollm_session_prefill(s, ids + 39, 1, NULL);
    g.temperature = 1.5f; g.top_k = 1;
    ollm_session_generate(s, &g, out2, 16, &n2);
    CHECK(n1 == 5 && n2 == 5 && memcmp(out1, out2, 5 * sizeof(int32_t)) == 0, "top_k = 1 equals greedy");
    {   /* greedy decoding picks where the logits are (ollm__backend.argmax, before any read back): the same tokens
           as the host's argmax over the logits ollm_session_logits reads back, step by step */
        ollm_generate_config g1 = ollm_generate_config_default(); int same = 1;
        g1.max_tokens = 1; g1.ignore_eos = 1;
        ollm_session_rewind(s, 39); ollm_session_prefill(s, ids + 39, 1, NULL);
        for (i = 0; i < 5; i++) {
            const float *lg = ollm_session_logits(s); int32_t t1 = -1; size_t n = 0;
            same &= lg && ollm_session_generate(s, &g1, &t1, 1, &n) == OLLM_OK && n == 1 && t1 == ollm__argmax(lg, 320) &&
                    t1 == out1[i];
            ollm_session_prefill(s, NULL, 0, NULL);   /* feeds the pending token */
        }
        CHECK(same, "greedy tokens picked by the backend equal the host's argmax of the read-back logits");
    }
    g.top_k = 0; g.top_p = 0.9f; g.min_p = 0.01f; g.repetition_penalty = 1.3f; g.seed = 1234;
    ollm_session_rewind(s, 39); ollm_session_prefill(s, ids + 39, 1, NULL);
    ollm_session_generate(s, &g, out2, 16, &n2);
    ollm_session_rewind(s, 39); ollm_session_prefill(s, ids + 39, 1, NULL);
    ollm_session_generate(s, &g, out3, 16, &n3);
    CHECK(n2 == 5 && n3 == 5 && memcmp(out2, out3, 5 * sizeof(int32_t)) == 0, "a fixed seed reproduces the sample");
    /* the token callback can stop generation; the session stays usable */
    g = ollm_generate_config_default(); g.max_tokens = 8; g.ignore_eos = 1; g.on_token = count_tokens; g.user = &calls;
    ollm_session_rewind(s, 39); ollm_session_prefill(s, ids + 39, 1, NULL);
    CHECK(ollm_session_generate(s, &g, out1, 16, &n1) == OLLM_ERR_CANCELLED && n1 == 3 && calls == 3, "token callback stops generation");
    CHECK(ollm_session_length(s) == 43, "the tokens generated before the stop stay in the context");
    ollm_session_close(s);
    /* the progress callback cancels prefill after a chunk; the session holds that chunk and resumes */
    sc.progress = stop_after_first; sc.progress_user = &done;
    CHECK(ollm_session_open(m, &sc, &s) == OLLM_OK, "session with progress opens");
    CHECK(ollm_session_prefill(s, ids, 40, NULL) == OLLM_ERR_CANCELLED && done == 16 && ollm_session_length(s) == 16,
          "progress callback cancels prefill after the first chunk");
    s->cfg.progress = NULL;
    CHECK(ollm_session_prefill(s, ids + 16, 24, NULL) == OLLM_OK, "the cancelled session resumes");
    memcpy(l2, ollm_session_logits(s), sizeof l2);
    CHECK(memcmp(l1, l2, sizeof l1) == 0, "resumed prefill gives the same logits as an uninterrupted one");
    ollm_session_close(s);
    ollm_model_close(m);
}

/* ---- the open's progress: monotone, ends at its total; a nonzero answer cancels the open ---- */
typedef struct load_seen { int calls, stop_at, backwards; uint64_t last, total; } load_seen;
static int on_load(void *user, uint64_t done, uint64_t total) {
    load_seen *v = (load_seen *)user;
    v->calls++; v->backwards |= done < v->last || done > total; v->last = done; v->total = total;
    return v->stop_at && v->calls >= v->stop_at;
}
static void test_open_progress(void) {
    static const char *dirs[] = { "tests/fixtures/llama_untied_gqa2_sharded", "tests/fixtures/gptoss_mxfp4" };
    int i, staged; char what[1400];
    for (i = 0; i < 2; i++)
        for (staged = 0; staged < 2; staged++) {
            ollm_model *m; ollm_model_config mc = ollm_model_config_default(); load_seen v; ollm_result r;
            memset(&v, 0, sizeof v);
            mc.backend = OLLM_BACKEND_CPU; mc.progress = on_load; mc.progress_user = &v;
            if (staged) { ollm__backend_hook = staged_backend; mc.ram_bytes = 300000; }   /* some of it stays on disk */
            r = ollm_model_open(dirs[i], &mc, &m);
            snprintf(what, sizeof what, "%s%s: open reports progress to its total (%d calls, %llu of %llu bytes)", dirs[i],
                     staged ? " (staged, RAM tier of 300 KB)" : "", v.calls, (unsigned long long)v.last,
                     (unsigned long long)v.total);
            CHECK(r == OLLM_OK && v.calls >= 3 && !v.backwards && v.last == v.total && v.total > 0 &&
                  v.total <= ollm_model_get_info(m)->weight_bytes, what);
            ollm_model_close(m);
            memset(&v, 0, sizeof v); v.stop_at = 2;
            r = ollm_model_open(dirs[i], &mc, &m);
            snprintf(what, sizeof what, "%s%s: a nonzero answer cancels the open (%s)", dirs[i], staged ? " (staged)" : "",
                     ollm_model_last_error(m));
            CHECK(r == OLLM_ERR_CANCELLED && v.calls == 2 && strstr(ollm_model_last_error(m), "progress callback"), what);
            ollm_model_close(m);
            ollm__backend_hook = NULL;
        }
}

/* ---- streamed layers give bit-identical logits to resident ones ---- */
static void test_streaming(void) {
    static const uint64_t budgets[] = { 1, 300000, 500000, 650000 };
    ollm_model *m; ollm_session *s; ollm_model_config mc = ollm_model_config_default();
    ollm_session_config sc = ollm_session_config_default(); int32_t ids[40]; int i, d, bi, streamed = 0, refused = 0;
    char what[1400];
    float *ref = (float *)malloc(40 * 320 * 4), *got = (float *)malloc(40 * 320 * 4);
    for (i = 0; i < 40; i++) ids[i] = (i * 31 + 3) % 320;
    mc.backend = OLLM_BACKEND_CPU; sc.max_context = 64; sc.prefill_chunk = 16;
    ollm_model_open("tests/fixtures/llama_gqa1", &mc, &m);
    ollm_session_open(m, &sc, &s); ollm_session_prefill(s, ids, 40, ref); ollm_session_close(s); ollm_model_close(m);
    for (bi = 0; bi < 4; bi++)
        for (d = 1; d <= 3; d++) {
            ollm_result r;
            mc.ram_bytes = budgets[bi]; mc.stream_depth = d;
            r = ollm_model_open("tests/fixtures/llama_gqa1", &mc, &m);
            if (r == OLLM_ERR_BUDGET) {   /* embeddings + head + d slots of one layer (about 200 KB) do not fit */
                snprintf(what, sizeof what, "streaming: budget %llu, depth %d refused with the numbers: %s",
                         (unsigned long long)budgets[bi], d, ollm_model_last_error(m));
                CHECK(budgets[bi] < 82000 + (uint64_t)d * 210000 && strstr(ollm_model_last_error(m), "budget"), what);
                refused++; ollm_model_close(m); continue;
            }
            snprintf(what, sizeof what, "streaming: opens with %llu bytes, depth %d (%s)", (unsigned long long)budgets[bi], d,
                     ollm_model_last_error(m));
            CHECK(r == OLLM_OK, what);
            if (r != OLLM_OK) { ollm_model_close(m); continue; }
            streamed += m->stream != NULL;
            ollm_session_open(m, &sc, &s);
            memset(got, 0, 40 * 320 * 4);
            CHECK(ollm_session_prefill(s, ids, 40, got) == OLLM_OK, "streaming: prefill");
            snprintf(what, sizeof what, "streaming: logits identical with budget %llu, depth %d", (unsigned long long)budgets[bi], d);
            CHECK(memcmp(ref, got, 40 * 320 * 4) == 0, what);
            ollm_session_close(s); ollm_model_close(m);
        }
    {   /* a shard truncated while the model is open: the next streamed read fails cleanly */
        char cmd[1200], dir[300]; ollm_result r;
        snprintf(dir, sizeof dir, "%s/trunc", tmp_root);
        snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r tests/fixtures/llama_gqa1 %s", dir, dir); sh(cmd);
        mc.ram_bytes = 300000; mc.stream_depth = 1;
        CHECK(ollm_model_open(dir, &mc, &m) == OLLM_OK && m->stream, "truncated while open: streams from disk");
        snprintf(cmd, sizeof cmd, "truncate -s 100000 %s/model.safetensors", dir); sh(cmd);
        ollm_session_open(m, &sc, &s);
        r = ollm_session_prefill(s, ids, 40, NULL);
        snprintf(what, sizeof what, "truncated while open: prefill is OLLM_ERR_IO (%s)", ollm_model_last_error(m));
        CHECK(r == OLLM_ERR_IO && strstr(ollm_model_last_error(m), "cannot read layer"), what);
        ollm_session_close(s); ollm_model_close(m);
    }
    {   /* a prefill's chunks pick every expert of every layer in turn, more than the staged cache's 12 slots hold: the
           cache keeps the experts one layer does not need, which each later chunk finds (least recently used would
           find none), and the logits are the CPU's, bit for bit */
        ollm_model_config xc = ollm_model_config_default(); ollm_session_config xs = ollm_session_config_default();
        int32_t xid[40]; float *a = (float *)malloc(40 * 256 * 4), *b = (float *)malloc(40 * 256 * 4);   /* vocab 256 */ int i, ok = 0;
        uint64_t hits = 0;
        for (i = 0; i < 40; i++) xid[i] = (i * 7 + 3) % 200;
        xs.prefill_chunk = 10; xs.max_context = 64;
        if (ollm_model_open("tests/fixtures/gptoss_mxfp4", &xc, &m) == OLLM_OK && ollm_session_open(m, &xs, &s) == OLLM_OK)
            ok = ollm_session_prefill(s, xid, 40, a) == OLLM_OK;
        ollm_session_close(s); ollm_model_close(m);
        ollm__backend_hook = staged_backend; xc.expert_slots = 12;
        if (ok && ollm_model_open("tests/fixtures/gptoss_mxfp4", &xc, &m) == OLLM_OK && ollm_session_open(m, &xs, &s) == OLLM_OK) {
            ok = ollm_session_prefill(s, xid, 40, b) == OLLM_OK && m->xc && m->xc->n_slots == 12;
            hits = m->xc ? m->xc->hits : 0;
        } else ok = 0;
        ollm__backend_hook = NULL;
        snprintf(what, sizeof what, "staged, 12 expert slots: a chunked prefill finds cached experts (%llu hits) and its "
                 "logits are the CPU's", (unsigned long long)hits);
        CHECK(ok && hits >= 3 * (12 - 8) && memcmp(a, b, 40 * 256 * 4) == 0, what);
        printf("  %s\n", what);
        ollm_session_close(s); ollm_model_close(m); free(a); free(b);
    }
    {   /* experts read from disk (no RAM tier) on the staged backend, the shard truncated while open: the read-ahead's
           failure is OLLM_ERR_IO naming the expert, and the model closes cleanly */
        char cmd[1200], dir[300]; ollm_result r; ollm_model_config xc = ollm_model_config_default();
        int32_t xid[20]; int i;
        for (i = 0; i < 20; i++) xid[i] = (i * 7 + 3) % 200;
        snprintf(dir, sizeof dir, "%s/xtrunc", tmp_root);
        snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r tests/fixtures/gptoss_mxfp4 %s", dir, dir); sh(cmd);
        uint64_t keep;
        ollm__backend_hook = staged_backend; xc.ram_bytes = 1; xc.expert_slots = 12;
        CHECK(ollm_model_open(dir, &xc, &m) == OLLM_OK && m->xc && !m->xc->host[0], "staged: experts read from disk");
        CHECK(m->embed_file, "staged: the untied embedding table stays in its file");
        keep = m->embed_file ? m->embed_file->offset + m->embed_file->nbytes : 1000;   /* its rows stay readable */
        snprintf(cmd, sizeof cmd, "truncate -s %llu %s/model.safetensors", (unsigned long long)keep, dir); sh(cmd);
        ollm_session_open(m, &sc, &s);
        r = ollm_session_prefill(s, xid, 20, NULL);
        snprintf(what, sizeof what, "staged, truncated while open: prefill is OLLM_ERR_IO naming an expert (%s)",
                 ollm_model_last_error(m));
        CHECK(r == OLLM_ERR_IO && strstr(ollm_model_last_error(m), "expert"), what);
        printf("  %s\n", what);
        ollm_session_close(s); ollm_model_close(m);
        /* the same file cut short of the embedding rows: their read fails cleanly, naming the table */
        snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r tests/fixtures/gptoss_mxfp4 %s", dir, dir); sh(cmd);
        CHECK(ollm_model_open(dir, &xc, &m) == OLLM_OK, "staged: opens again");
        ollm__backend_hook = NULL;
        snprintf(cmd, sizeof cmd, "truncate -s 1000 %s/model.safetensors", dir); sh(cmd);
        ollm_session_open(m, &sc, &s);
        r = ollm_session_prefill(s, xid, 20, NULL);
        snprintf(what, sizeof what, "staged, truncated while open: prefill is OLLM_ERR_IO naming the embedding table (%s)",
                 ollm_model_last_error(m));
        CHECK(r == OLLM_ERR_IO && strstr(ollm_model_last_error(m), "model.embed_tokens.weight"), what);
        ollm_session_close(s); ollm_model_close(m);
    }
    snprintf(what, sizeof what, "streaming: %d configurations streamed layers, %d refused for budget", streamed, refused);
    CHECK(streamed >= 4 && refused >= 3, what);
    printf("  %s\n", what);
    free(ref); free(got);
}

/* ---- direct reads: streamed layers through O_DIRECT give the resident logits; every fallback and error path ---- */
static int dio_reads, buf_reads, dio_fail_at, dio_fail_errno, dio_short;
static int dio_hook(int op, int fd, size_t *n) {   /* counts reads by descriptor kind; faults on the direct ones */
    int direct = 0;
    if (op != 'r') return 0;
#ifdef O_DIRECT
    direct = (fcntl(fd, F_GETFL) & O_DIRECT) != 0;
#else
    (void)fd;
#endif
    if (!direct) { buf_reads++; return 0; }
    dio_reads++;
    if (dio_fail_at && dio_reads == dio_fail_at) return dio_fail_errno;
    if (dio_short && dio_reads % 4 == 0) return EINTR;
    if (dio_short && *n > 1) *n = *n / 3 + 1;
    return 0;
}
static void dio_reset(void) { dio_reads = buf_reads = dio_fail_at = dio_fail_errno = dio_short = 0; ollm__io_fault = dio_hook; }
static char dio_log[1024];
static void dio_log_cb(void *user, ollm_log_level level, const char *msg) {
    size_t n = strlen(dio_log);
    (void)user; (void)level;
    if (strstr(msg, "direct I/O")) snprintf(dio_log + n, sizeof dio_log - n, "%s\n", msg);
}
/* Opens dir streaming its layers from disk, prefills 40 ids into logits; *direct: whether the shard took O_DIRECT,
   *dreads / *breads: direct and buffered reads during the prefill. */
static ollm_result dio_run(const char *dir, int32_t direct_io, const int32_t *ids, float *logits, int *direct,
                           int *dreads, int *breads, char *err, size_t cap) {
    ollm_model *m; ollm_session *s; ollm_model_config mc = ollm_model_config_default(); ollm_result r;
    ollm_session_config sc = ollm_session_config_default();
    mc.backend = OLLM_BACKEND_CPU; mc.ram_bytes = 650000; mc.stream_depth = 2; mc.direct_io = direct_io;
    mc.log = dio_log_cb; sc.max_context = 64; sc.prefill_chunk = 16;
    dio_log[0] = 0; err[0] = 0; *direct = 0; *dreads = *breads = 0;
    if ((r = ollm_model_open(dir, &mc, &m)) != OLLM_OK || !m->stream) {
        snprintf(err, cap, "does not stream: %s", ollm_model_last_error(m)); ollm_model_close(m); return OLLM_ERR_INVALID_ARG;
    }
    *direct = m->st.files[0].dfd >= 0;
    if (*direct != (m->stream->bounce.buf != NULL)) snprintf(err, cap, "bounce buffer without O_DIRECT, or O_DIRECT without one");
    *dreads = dio_reads; *breads = buf_reads;
    ollm_session_open(m, &sc, &s);
    memset(logits, 0, 40 * 320 * 4);
    r = ollm_session_prefill(s, ids, 40, logits);
    *dreads = dio_reads - *dreads; *breads = buf_reads - *breads;
    if (r != OLLM_OK || !err[0]) snprintf(err, cap, "%s", ollm_model_last_error(m));
    ollm_session_close(s); ollm_model_close(m);
    return r;
}
static void test_direct_io(void) {
    static const char *fx = "tests/fixtures/llama_gqa1";
    ollm_model *m; ollm_session *s; ollm_model_config mc = ollm_model_config_default();
    ollm_session_config sc = ollm_session_config_default(); int32_t ids[40]; int i, direct, engaged, dr, br, shm = -1;
    char what[3000], err[1100], dir[300], cmd[1200]; ollm_result r;
    float *ref = (float *)malloc(40 * 320 * 4), *got = (float *)malloc(40 * 320 * 4);
    for (i = 0; i < 40; i++) ids[i] = (i * 31 + 3) % 320;
    mc.backend = OLLM_BACKEND_CPU; sc.max_context = 64; sc.prefill_chunk = 16;
    ollm_model_open(fx, &mc, &m);
    ollm_session_open(m, &sc, &s); ollm_session_prefill(s, ids, 40, ref); ollm_session_close(s); ollm_model_close(m);

    /* default: O_DIRECT where the file system takes it (else the logged fallback), bit-identical logits */
    dio_reset();
    r = dio_run(fx, 0, ids, got, &engaged, &dr, &br, err, sizeof err);
    snprintf(what, sizeof what, "direct: streamed prefill (%s)", err);
    CHECK(r == OLLM_OK && memcmp(ref, got, 40 * 320 * 4) == 0, what);
    snprintf(what, sizeof what, "direct: %s (%d direct, %d buffered reads while streaming; log: %s)",
             engaged ? "every streamed read went through O_DIRECT" : "the refusal is logged", dr, br, dio_log);
    CHECK(engaged ? dr > 0 && br == 0 && strstr(dio_log, "bypass the page cache (O_DIRECT") : dr == 0 && strstr(dio_log, "refuses O_DIRECT") != NULL, what);
    /* direct_io -1: buffered, the same logits */
    dio_reset();
    r = dio_run(fx, -1, ids, got, &direct, &dr, &br, err, sizeof err);
    snprintf(what, sizeof what, "direct_io -1: buffered reads only (%d direct, %d buffered; %s)", dr, br, err);
    CHECK(r == OLLM_OK && !direct && dr == 0 && br > 0 && !dio_log[0] && memcmp(ref, got, 40 * 320 * 4) == 0, what);
    /* the first aligned read refused with EINVAL (as some file systems do): buffered, logged once */
    dio_reset(); dio_fail_at = 1; dio_fail_errno = EINVAL;
    r = dio_run(fx, 0, ids, got, &direct, &dr, &br, err, sizeof err);
    snprintf(what, sizeof what, "direct: a refused first read falls back to buffered reads, logged once (%s; log: %s)", err, dio_log);
    CHECK(r == OLLM_OK && !direct && dr == 0 && br > 0 && memcmp(ref, got, 40 * 320 * 4) == 0 &&
          strstr(dio_log, engaged ? "model.safetensors refuses O_DIRECT (Invalid argument)" : "model.safetensors refuses O_DIRECT (") &&
          !strchr(strchr(dio_log, '\n') + 1, '\n'), what);
    if (engaged) {
        /* EINVAL from a later direct read: that read is done buffered */
        dio_reset(); dio_fail_at = 3; dio_fail_errno = EINVAL;
        r = dio_run(fx, 0, ids, got, &direct, &dr, &br, err, sizeof err);
        snprintf(what, sizeof what, "direct: EINVAL on a streamed read finishes it buffered (%d direct, %d buffered; %s)", dr, br, err);
        CHECK(r == OLLM_OK && direct && br >= 1 && memcmp(ref, got, 40 * 320 * 4) == 0, what);
        /* short and interrupted direct reads are retried */
        dio_reset(); dio_short = 1;
        r = dio_run(fx, 0, ids, got, &direct, &dr, &br, err, sizeof err);
        snprintf(what, sizeof what, "direct: short and interrupted reads give the same logits (%d direct reads; %s)", dr, err);
        CHECK(r == OLLM_OK && direct && br == 0 && memcmp(ref, got, 40 * 320 * 4) == 0, what);
        /* EIO on a direct read: OLLM_ERR_IO naming the file and the tensor */
        dio_reset(); dio_fail_at = 5; dio_fail_errno = EIO;
        r = dio_run(fx, 0, ids, got, &direct, &dr, &br, err, sizeof err);
        snprintf(what, sizeof what, "direct: EIO is OLLM_ERR_IO naming the file (%s)", err);
        CHECK(r == OLLM_ERR_IO && strstr(err, "model.safetensors: cannot read layer") && strstr(err, "tensor 'model.layers.") &&
              strstr(err, strerror(EIO)), what);
        /* a shard truncated while the model is open, read through O_DIRECT */
        snprintf(dir, sizeof dir, "%s/dio_trunc", tmp_root);
        snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", dir, fx, dir); sh(cmd);
        dio_reset();
        mc.ram_bytes = 300000; mc.stream_depth = 1; mc.log = dio_log_cb;
        CHECK(ollm_model_open(dir, &mc, &m) == OLLM_OK && m->stream, "direct truncated: streams from disk");
        direct = m->st.files[0].dfd >= 0;   /* the copy's file system (tmp_root) may refuse O_DIRECT */
        snprintf(cmd, sizeof cmd, "truncate -s 100000 %s/model.safetensors", dir); sh(cmd);
        ollm_session_open(m, &sc, &s);
        r = ollm_session_prefill(s, ids, 40, NULL);
        snprintf(what, sizeof what, "direct truncated: prefill is OLLM_ERR_IO naming the file (%s; %s, %d direct reads)",
                 ollm_model_last_error(m), direct ? "O_DIRECT" : "buffered", dio_reads);
        CHECK(r == OLLM_ERR_IO && (!direct || dio_reads > 1) && strstr(ollm_model_last_error(m), "model.safetensors: cannot read layer") &&
              strstr(ollm_model_last_error(m), "truncated"), what);
        ollm_session_close(s); ollm_model_close(m);
    }
    /* tmpfs (/dev/shm): O_DIRECT or the fallback, the same logits either way */
    snprintf(dir, sizeof dir, "/dev/shm/ollm_test_core_%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s 2>/dev/null", dir, fx, dir);
    if (access("/dev/shm", W_OK) == 0 && sh(cmd) == 0) {
        dio_reset();
        r = dio_run(dir, 0, ids, got, &shm, &dr, &br, err, sizeof err);
        snprintf(what, sizeof what, "direct on /dev/shm: the same logits (%s)", err);
        CHECK(r == OLLM_OK && memcmp(ref, got, 40 * 320 * 4) == 0, what);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir); sh(cmd);
    }
    /* the read helper itself: odd offsets and lengths, pieces of a small bounce buffer, the file's unaligned end */
    {
        static const uint64_t span[][2] = { {0, 1}, {1, 4095}, {4095, 2}, {4096, 4096}, {123, 20000}, {8191, 8194},
                                            {200000, 777}, {0, 197385}, {5, 197380}, {197384, 1}, {190000, 7385} };
        uint64_t size = 197385, k; unsigned char *data = (unsigned char *)malloc(size), *buf = (unsigned char *)malloc(size + 1);
        ollm__file f; ollm__bounce b; char p[400]; int pass, ok = 1, fdirect;
        for (k = 0; k < size; k++) data[k] = (unsigned char)(k * 131 + (k >> 9));
        snprintf(p, sizeof p, "%s/dio.bin", tmp_root);
        write_file(p, data, size);
        CHECK(ollm__file_open(&f, p) == OLLM_OK && ollm__bounce_init(&b, 1) && b.cap == 2 * OLLM__DIO_ALIGN &&
              (uintptr_t)b.buf % OLLM__DIO_ALIGN == 0, "direct: an aligned bounce buffer of two blocks");
        fdirect = ollm__file_open_direct(&f, p) == 0;   /* tmp_root's file system may refuse it: then all is buffered */
        CHECK(fdirect == (f.dfd >= 0) && (fdirect || f.dio_err), "direct: the descriptor, or the errno that refused it");
        for (pass = 0; pass < 2; pass++) {
            dio_reset(); dio_short = pass;
            for (k = 0; k < sizeof span / sizeof span[0]; k++) {
                if (span[k][0] + span[k][1] > size) continue;
                memset(buf, 0xee, (size_t)size + 1);
                ok &= ollm__pread_direct(&f, buf, span[k][1], span[k][0], &b) == OLLM_OK &&
                      memcmp(buf, data + span[k][0], (size_t)span[k][1]) == 0 && buf[span[k][1]] == 0xee;
            }
            snprintf(what, sizeof what, "direct: the helper reads exact bytes at odd spans%s (%d direct, %d buffered reads)",
                     pass ? " through short and interrupted reads" : "", dio_reads, buf_reads);
            CHECK(ok && (fdirect ? dio_reads > 0 && buf_reads == 0 : dio_reads == 0), what);
        }
        dio_reset();
        CHECK(ollm__pread_direct(&f, buf, 10, size - 5, &b) == OLLM_ERR_IO && ollm__pread_direct(&f, buf, 10, size + 4096, &b) == OLLM_ERR_IO,
              "direct: reading past the end is OLLM_ERR_IO");
        dio_reset(); dio_fail_at = 1; dio_fail_errno = EIO;
        CHECK(!fdirect || (ollm__pread_direct(&f, buf, 100, 5, &b) == OLLM_ERR_IO && errno == EIO), "direct: EIO is returned, errno kept");
        ollm__bounce_free(&b); ollm__file_close(&f); free(data); free(buf);
    }
    ollm__io_fault = NULL;
    snprintf(what, sizeof what, "direct: O_DIRECT %s on %s%s", engaged ? "engaged" : "refused (buffered fallback)", fx,
             shm < 0 ? "" : shm ? "; engaged on /dev/shm" : "; refused on /dev/shm (buffered fallback)");
    printf("  %s\n", what);
    free(ref); free(got);
}

/* a tokenizer.json whose one id is far past its entries is refused before tables are sized by it */
static void test_tokenizer_limits(void) {
    char d[400], p[500], cmd[1100]; ollm_tokenizer *t = NULL; ollm__log lg; ollm_result r;
    memset(&lg, 0, sizeof lg);
    snprintf(d, sizeof d, "%s/tok", tmp_root);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", d); sh(cmd);
    snprintf(p, sizeof p, "%s/tokenizer.json", d);
    /* the fuzz regression input: its first line is the tokenizer.json */
    snprintf(cmd, sizeof cmd, "head -n 1 tests/fuzz/corpus/fuzz_tokenizer/regress-sparse-id-273MB > %s", p); sh(cmd);
    r = ollm__tok_load(d, &lg, &t);
    CHECK(r == OLLM_ERR_FORMAT && strstr(lg.err, "16777215"), "tokenizer: a sparse id far past the entries is refused");
    ollm__tok_free(t);
}

/* ollm__argmax against the loop it replaces (`if (v[i] > v[best]) best = i`): random lengths, ties, signed zeros, NaNs */
static void test_argmax(void) {
    static float v[1000]; int trial, bad = 0; uint64_t r = 12345;
    for (trial = 0; trial < 3000; trial++) {
        int32_t n = 1 + (int32_t)(trial % 997), i, best = 0, kind = trial % 5;
        for (i = 0; i < n; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            v[i] = kind == 0 ? (float)(r >> 40) / (float)(1 << 24) : (float)((r >> 33) % 7) - 3.0f;   /* few values: ties */
            if (kind == 2 && (r >> 20) % 9 == 0) v[i] = NAN;
            if (kind == 3 && v[i] == 0.0f && (r >> 21) & 1) v[i] = -0.0f;
            if (kind == 4) v[i] = -INFINITY;
        }
        if (trial % 50 == 7) v[0] = NAN;
        for (i = 1; i < n; i++) if (v[i] > v[best]) best = i;
        bad += ollm__argmax(v, n) != best;
    }
    CHECK(bad == 0, "argmax: the lowest index of the largest value, NaNs never winning (3000 random vectors)");
}

int main(void) {
    ollm__backend *B; ollm__log lg; char cmd[512];
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ollm_test_core_%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmp_root); sh(cmd);
    memset(&lg, 0, sizeof lg);
    test_json();
    test_safetensors();
    test_bad_dirs();
    CHECK(ollm__cpu_create(2, &lg, &B) == OLLM_OK, "CPU backend");
    test_cpu_ops(B);
    B->destroy(B);
    test_rope_tables();
    test_argmax();
    test_session();
    test_open_progress();
    test_streaming();
    test_direct_io();
    test_tokenizer_limits();
    CHECK(strcmp(ollm_result_string(OLLM_ERR_FORMAT), "file is malformed") == 0 &&
          strcmp(ollm_result_string((ollm_result)999), "unknown ollm_result") == 0, "result strings");
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root); sh(cmd);
    return check_report();
}
