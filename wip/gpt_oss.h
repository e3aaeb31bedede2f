/* @graph-gpt-oss: the GPT-OSS forward pass (transformers models/gpt_oss/modeling_gpt_oss.py, integrations/mxfp4.py).
   Included by ollm.h after @graph-llama; defines OLLM__FAMILIES_WIP_GPT_OSS, the family's entry in ollm__families.

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

   CPU only for now: the ops below are host loops on the CPU backend's pool; there are no CUDA kernels for the experts
   yet, so opening a GPT-OSS model on the CUDA backend fails with OLLM_ERR_UNSUPPORTED. Every layer keeps a KV cache of
   the whole context, sliding ones included (a ring of sliding_window rows would do: a later optimisation). */

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

/* A tensor of any dtype and rank. ollm__tensor_fn only carries [rows, cols] of a float tensor, so only the loader
   (ollm__bind) can check these exactly; another walker (tools/make_random_checkpoint.c) gets [shape0, the rest]. */
static ollm_result ollm__gptoss_bind(ollm_model *m, ollm__tensor_fn fn, ollm__w *w, const char *name, unsigned dtypes,
                                     int ndim, const int64_t *shape) {
    int64_t cols = 1; int i;
    if (fn == ollm__bind) return ollm__bind_shaped(m, w, name, dtypes, ndim, shape);
    for (i = 1; i < ndim; i++) cols *= shape[i];
    return fn(m, w, name, shape[0], cols);
}

static ollm_result ollm__gptoss_tensors(ollm_model *m, ollm__tensor_fn fn) {
    const ollm__desc *c = &m->d; char name[256]; int l; ollm__gptoss *w = (ollm__gptoss *)m->fw;
    int64_t H = c->hidden, qw = (int64_t)c->n_heads * c->head_dim, kw = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t E = c->n_experts, I = c->moe_ffn, sh[4];
    if (fn == ollm__bind && !m->B->host)
        return ollm__fail(&m->log, OLLM_ERR_UNSUPPORTED, "GPT-OSS needs the CPU backend for now (--backend cpu): "
                          "the %s backend has no kernels for its experts yet", m->B->name);
    /* the layout: packed floats when layer 0 has them, else MXFP4 (also what a writer with no checkpoint gets) */
    w->mxfp4 = !ollm__st_find(&m->st, "model.layers.0.mlp.experts.gate_up_proj");
    if (fn == ollm__bind && w->mxfp4 && (H % 32 || I % 32))
        return ollm__fail(&m->log, OLLM_ERR_FORMAT, "MXFP4 experts need hidden_size (%lld) and intermediate_size "
                          "(%lld) to be multiples of 32", (long long)H, (long long)I);
    OLLM__TRY(fn(m, &w->embed_tokens, "model.embed_tokens.weight", c->vocab, H));
    OLLM__TRY(fn(m, &w->norm, "model.norm.weight", H, 0));
    if (!c->tie_embeddings) OLLM__TRY(fn(m, &w->lm_head, "lm_head.weight", c->vocab, H));   /* gpt-oss: untied */
    for (l = 0; l < c->n_layers; l++) {
        ollm__gptoss_layer *L = &w->layers[l];
#define OLLM__T(field, suffix, rows, cols) \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        OLLM__TRY(fn(m, &L->field, name, rows, cols))
#define OLLM__TS(field, suffix, dtypes, ndim) \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        OLLM__TRY(ollm__gptoss_bind(m, fn, &L->field, name, dtypes, ndim, sh))
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

/* ---- CPU ops of the family: host loops on the CPU backend's pool ---- */

/* y[T, n] += b[n] (the Linear biases; b may be empty when attention_bias is false) */
static ollm_result ollm__gptoss_add_bias(ollm__buf y, const ollm__w *b, int T, int64_t n) {
    float *bf, *yp = (float *)y.ptr; int t; int64_t i;
    if (!b->data.ptr) return OLLM_OK;
    if (!(bf = (float *)OLLM_MALLOC((size_t)n * 4))) return OLLM_ERR_NO_MEMORY;
    ollm__to_f32(b->data.ptr, b->dtype, bf, n);
    for (t = 0; t < T; t++) for (i = 0; i < n; i++) yp[(int64_t)t * n + i] += bf[i];
    OLLM_FREE(bf);
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

/* One expert product Y[rows of e] = X[rows of e] W_e^T + b_e for every picked expert: one task per (expert, block of
   16 output features); the block is dequantised to fp32 once and used for every row routed to that expert. */
typedef struct ollm__xmm_ctx {
    const float *x; float *y;                 /* [routed rows, K], [routed rows, N], grouped by expert */
    int64_t K, N, nb;                         /* nb = blocks of OLLM__MM_ROWS features per expert */
    const int32_t *active, *start, *count;    /* picked experts; their first routed row and number of rows */
    const ollm__w *blocks, *scales;           /* MXFP4 [E, N, K/32, 16] and [E, N, K/32]; or */
    const ollm__w *packed;                    /* floats [E, K, N], input-major */
    const ollm__w *bias;                      /* [E, N] */
    int failed;
} ollm__xmm_ctx;
static void ollm__xmm_task(void *vctx, int64_t task) {
    ollm__xmm_ctx *c = (ollm__xmm_ctx *)vctx;
    int64_t e = c->active[task / c->nb], K = c->K, N = c->N, n0 = (task % c->nb) * OLLM__MM_ROWS, r, k, t;
    int64_t nr = N - n0 < OLLM__MM_ROWS ? N - n0 : OLLM__MM_ROWS;
    float *wf = (float *)OLLM_MALLOC((size_t)(nr * K + nr + OLLM__MM_ROWS) * 4), *bf = wf + nr * K, *tmp = bf + nr;
    if (!wf) { c->failed = 1; return; }   /* a benign race: every writer stores 1 */
    if (c->blocks) {
        const uint8_t *bl = (const uint8_t *)c->blocks->data.ptr, *sc = (const uint8_t *)c->scales->data.ptr;
        for (r = 0; r < nr; r++)
            ollm__mxfp4_row(bl + ((e * N + n0 + r) * (K / 32)) * 16, sc + (e * N + n0 + r) * (K / 32), K / 32, wf + r * K);
    } else {
        size_t es = ollm__dtype_size[c->packed->dtype];
        for (k = 0; k < K; k++) {   /* feature n is column n of the expert's [K, N] matrix: nr adjacent values per k */
            ollm__to_f32((const char *)c->packed->data.ptr + ((e * K + k) * N + n0) * es, c->packed->dtype, tmp, nr);
            for (r = 0; r < nr; r++) wf[r * K + k] = tmp[r];
        }
    }
    ollm__to_f32((const char *)c->bias->data.ptr + (e * N + n0) * ollm__dtype_size[c->bias->dtype], c->bias->dtype,
                 bf, nr);
    for (t = c->start[e]; t < c->start[e] + c->count[e]; t++)
        for (r = 0; r < nr; r++)
            c->y[t * N + n0 + r] = ollm__dot(wf + r * K, c->x + t * K, K) + bf[r];   /* bmm, then + bias */
    OLLM_FREE(wf);
}

/* The clamped SwiGLU of GptOssExperts on one routed row: gu[2I] interleaved (gate, up) -> y[I]. */
typedef struct ollm__glu_ctx { const float *gu; float *y; int64_t I; float limit; } ollm__glu_ctx;
static void ollm__glu_task(void *vctx, int64_t t) {
    ollm__glu_ctx *c = (ollm__glu_ctx *)vctx; const float *gu = c->gu + t * 2 * c->I; float *y = c->y + t * c->I;
    int64_t i;
    for (i = 0; i < c->I; i++) {
        float gate = gu[2 * i], up = gu[2 * i + 1];
        gate = gate > c->limit ? c->limit : gate;                            /* clamp(max=limit) only */
        up = up > c->limit ? c->limit : up < -c->limit ? -c->limit : up;
        y[i] = (up + 1.0f) * (gate * (1.0f / (1.0f + expf(-gate * 1.702f))));   /* (up + 1) * glu */
    }
}

/* Session scratch for the experts of one chunk (host memory: the family runs on the CPU backend only). */
typedef struct ollm__gptoss_sess {
    float *router;               /* [chunk, E] router logits */
    int32_t *pick;               /* [chunk, k] experts picked per token */
    float *weight;               /* [chunk, k] their softmax weights */
    int32_t *count, *start, *fill, *active;   /* [E] each */
    int32_t *row_tok;            /* [chunk * k] token of each routed row, rows grouped by expert */
    float *row_w;                /* [chunk * k] routing weight of each routed row */
    float *xg, *gu, *y, *out;    /* [chunk * k, H], [chunk * k, 2I], [chunk * k, I], [chunk * k, H] */
    float *acc;                  /* [chunk, H] sum of the weighted expert outputs */
} ollm__gptoss_sess;

static void ollm__gptoss_session_free(ollm_session *s) {
    ollm__gptoss_sess *f = (ollm__gptoss_sess *)s->fs;
    if (!f) return;
    OLLM_FREE(f->router); OLLM_FREE(f->pick); OLLM_FREE(f->weight); OLLM_FREE(f->count); OLLM_FREE(f->start);
    OLLM_FREE(f->fill); OLLM_FREE(f->active); OLLM_FREE(f->row_tok); OLLM_FREE(f->row_w); OLLM_FREE(f->xg);
    OLLM_FREE(f->gu); OLLM_FREE(f->y); OLLM_FREE(f->out); OLLM_FREE(f->acc);
    OLLM_FREE(f);
    s->fs = NULL;
}
static ollm_result ollm__gptoss_session_init(ollm_session *s) {
    ollm_model *m = s->m; const ollm__desc *c = &m->d; ollm__gptoss_sess *f; int l;
    size_t T = (size_t)s->chunk, E = (size_t)c->n_experts, R = T * (size_t)c->n_experts_per_tok;
    size_t H = (size_t)c->hidden, I = (size_t)c->moe_ffn;
    if (!m->B->host)
        return ollm__fail(&m->log, OLLM_ERR_UNSUPPORTED, "GPT-OSS needs the CPU backend for now (--backend cpu)");
    for (l = 0; l < c->n_layers; l++) OLLM__TRY(ollm__session_kv(s, l, s->n_ctx));   /* sliding layers too, for now */
    OLLM__TRY(ollm__session_acts(s, (int64_t)c->n_heads * c->head_dim, (int64_t)c->n_kv_heads * c->head_dim, 1));
    if (!(f = (ollm__gptoss_sess *)ollm__calloc(1, sizeof *f))) return OLLM_ERR_NO_MEMORY;
    s->fs = f;
    f->router = (float *)ollm__calloc(T * E, 4); f->pick = (int32_t *)ollm__calloc(R, 4);
    f->weight = (float *)ollm__calloc(R, 4); f->count = (int32_t *)ollm__calloc(E, 4);
    f->start = (int32_t *)ollm__calloc(E, 4); f->fill = (int32_t *)ollm__calloc(E, 4);
    f->active = (int32_t *)ollm__calloc(E, 4); f->row_tok = (int32_t *)ollm__calloc(R, 4);
    f->row_w = (float *)ollm__calloc(R, 4); f->xg = (float *)ollm__calloc(R * H, 4);
    f->gu = (float *)ollm__calloc(R * 2 * I, 4); f->y = (float *)ollm__calloc(R * I, 4);
    f->out = (float *)ollm__calloc(R * H, 4); f->acc = (float *)ollm__calloc(T * H, 4);
    if (!f->router || !f->pick || !f->weight || !f->count || !f->start || !f->fill || !f->active || !f->row_tok ||
        !f->row_w || !f->xg || !f->gu || !f->y || !f->out || !f->acc)
        return OLLM_ERR_NO_MEMORY;
    return OLLM_OK;
}

/* x[T, H] += MoE(xn) (GptOssMLP): route, run only the picked experts, sum their weighted outputs, add to x. */
static ollm_result ollm__gptoss_moe(ollm_session *s, const ollm__gptoss_layer *L, int T) {
    ollm_model *m = s->m; const ollm__desc *c = &m->d; ollm__gptoss_sess *f = (ollm__gptoss_sess *)s->fs;
    ollm__pool *pool = &((ollm__cpu *)m->B)->pool; const ollm__gptoss *w = (const ollm__gptoss *)m->fw;
    int E = c->n_experts, k = c->n_experts_per_tok, t, i, e, n_active = 0, R = 0;
    int64_t H = c->hidden, I = c->moe_ffn;
    const float *xn = (const float *)s->xn.ptr; float *x = (float *)s->x.ptr;
    ollm__xmm_ctx mm; ollm__glu_ctx glu; ollm__buf rb;
    /* router logits = xn W_r^T + b_r (GptOssTopKRouter: F.linear) */
    rb.ptr = f->router; rb.bytes = (uint64_t)T * E * 4;
    OLLM__TRY(m->B->matmul(m->B, rb, s->xn, &L->router, T, 0));
    OLLM__TRY(ollm__gptoss_add_bias(rb, &L->router_bias, T, E));
    /* top-k (largest first; the lower id on a tie), softmax over those k only */
    memset(f->count, 0, (size_t)E * 4);
    for (t = 0; t < T; t++) {
        const float *lg = f->router + (int64_t)t * E; int32_t *pk = f->pick + t * k; float *wt = f->weight + t * k, sum = 0;
        for (i = 0; i < k; i++) {
            int best = -1, j;
            for (e = 0; e < E; e++) {
                for (j = 0; j < i && pk[j] != e; j++) {}
                if (j == i && (best < 0 || lg[e] > lg[best])) best = e;
            }
            pk[i] = best; f->count[best]++;
        }
        for (i = 0; i < k; i++) { wt[i] = expf(lg[pk[i]] - lg[pk[0]]); sum += wt[i]; }
        for (i = 0; i < k; i++) wt[i] /= sum;
    }
    /* routed rows grouped by expert, in expert order; each row a copy of its token's xn */
    for (e = 0; e < E; e++) {
        f->start[e] = R; f->fill[e] = R; R += f->count[e];
        if (f->count[e]) f->active[n_active++] = e;
    }
    for (t = 0; t < T; t++)
        for (i = 0; i < k; i++) {
            int r = f->fill[f->pick[t * k + i]]++;
            f->row_tok[r] = t; f->row_w[r] = f->weight[t * k + i];
            memcpy(f->xg + (int64_t)r * H, xn + (int64_t)t * H, (size_t)H * 4);
        }
    /* gu = xg W_gu^T + b_gu; y = clamped SwiGLU(gu); out = y W_d^T + b_d */
    memset(&mm, 0, sizeof mm);
    mm.active = f->active; mm.start = f->start; mm.count = f->count;
    mm.x = f->xg; mm.y = f->gu; mm.K = H; mm.N = 2 * I; mm.nb = (mm.N + OLLM__MM_ROWS - 1) / OLLM__MM_ROWS;
    if (w->mxfp4) { mm.blocks = &L->gate_up_proj_blocks; mm.scales = &L->gate_up_proj_scales; }
    else mm.packed = &L->gate_up_proj;
    mm.bias = &L->gate_up_proj_bias;
    ollm__pool_run(pool, (int64_t)n_active * mm.nb, ollm__xmm_task, &mm);
    if (mm.failed) return OLLM_ERR_NO_MEMORY;
    glu.gu = f->gu; glu.y = f->y; glu.I = I; glu.limit = (float)c->swiglu_limit;
    ollm__pool_run(pool, R, ollm__glu_task, &glu);
    mm.x = f->y; mm.y = f->out; mm.K = I; mm.N = H; mm.nb = (mm.N + OLLM__MM_ROWS - 1) / OLLM__MM_ROWS;
    if (w->mxfp4) { mm.blocks = &L->down_proj_blocks; mm.scales = &L->down_proj_scales; }
    else mm.packed = &L->down_proj;
    mm.bias = &L->down_proj_bias;
    ollm__pool_run(pool, (int64_t)n_active * mm.nb, ollm__xmm_task, &mm);
    if (mm.failed) return OLLM_ERR_NO_MEMORY;
    /* sum over experts (in expert order) of weight * out, then the residual add */
    memset(f->acc, 0, (size_t)T * H * 4);
    for (i = 0; i < R; i++) {
        float *a = f->acc + (int64_t)f->row_tok[i] * H; const float *o = f->out + (int64_t)i * H; float wr = f->row_w[i];
        int64_t d;
        for (d = 0; d < H; d++) a[d] += o[d] * wr;
    }
    for (i = 0; i < T * H; i++) x[i] += f->acc[i];
    return OLLM_OK;
}

/* T tokens at positions n_past.. ; then the final norm and the (untied) head on the rows asked for. */
static ollm_result ollm__gptoss_forward(ollm_session *s, const int32_t *ids, int T, float *logits_all) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d;
    const ollm__gptoss *w = (const ollm__gptoss *)m->fw;
    int H = c->hidden, l, rows = logits_all ? T : 1; float eps = (float)c->rms_eps;
    int64_t qw = (int64_t)c->n_heads * c->head_dim, kw = (int64_t)c->n_kv_heads * c->head_dim;
    ollm__attn_args a;
    memset(&a, 0, sizeof a);
    a.T = T; a.pos0 = (int)s->n_past; a.n_heads = c->n_heads; a.n_kv_heads = c->n_kv_heads; a.head_dim = c->head_dim;
    a.scale = 1.0f / sqrtf((float)c->head_dim);
    OLLM__TRY(B->embed(B, s->x, &w->embed_tokens, ids, T));
    for (l = 0; l < c->n_layers; l++) {
        const ollm__gptoss_layer *L = &w->layers[l];
        OLLM__TRY(ollm__layer_acquire(m, l));                                       /* waits only if still in flight */
        a.window = c->layer_kind[l] == OLLM__LAYER_SLIDING ? c->sliding_window : 0;
        a.sinks = &L->sinks;
        OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->input_layernorm, T, H, eps, 0));
        OLLM__TRY(B->matmul(B, s->q, s->xn, &L->q_proj, T, 0));
        OLLM__TRY(ollm__gptoss_add_bias(s->q, &L->q_proj_bias, T, qw));
        OLLM__TRY(B->matmul(B, s->k, s->xn, &L->k_proj, T, 0));
        OLLM__TRY(ollm__gptoss_add_bias(s->k, &L->k_proj_bias, T, kw));
        OLLM__TRY(B->matmul(B, s->v, s->xn, &L->v_proj, T, 0));
        OLLM__TRY(ollm__gptoss_add_bias(s->v, &L->v_proj_bias, T, kw));
        OLLM__TRY(B->rope(B, s->q, T, c->n_heads, c->head_dim, m->rot_dim, a.pos0, m->inv_freq, m->mscale));
        OLLM__TRY(B->rope(B, s->k, T, c->n_kv_heads, c->head_dim, m->rot_dim, a.pos0, m->inv_freq, m->mscale));
        OLLM__TRY(B->attention(B, s->o, s->q, s->k, s->v, s->k_cache[l], s->v_cache[l], &a));   /* sinks, window */
        OLLM__TRY(B->matmul(B, s->x, s->o, &L->o_proj, T, 1));                     /* x += o Wo^T */
        OLLM__TRY(ollm__gptoss_add_bias(s->x, &L->o_proj_bias, T, H));              /* x += bo */
        OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->post_attention_layernorm, T, H, eps, 0));
        OLLM__TRY(ollm__gptoss_moe(s, L, T));                                       /* x += MoE(xn) */
        ollm__layer_release(m, l);                                                  /* its slot may take layer l + depth */
    }
    OLLM__TRY(B->rmsnorm(B, s->xn, ollm__view(s->x, (uint64_t)(T - rows) * H * 4, (uint64_t)rows * H * 4),
                         &w->norm, rows, H, eps, 0));
    OLLM__TRY(B->matmul(B, s->logits, s->xn, c->tie_embeddings ? &w->embed_tokens : &w->lm_head, rows, 0));
    if (logits_all) OLLM__TRY(B->download(B, logits_all, s->logits, (uint64_t)rows * c->vocab * 4));
    OLLM__TRY(B->download(B, s->last_logits, ollm__view(s->logits, (uint64_t)(rows - 1) * c->vocab * 4,
                                                         (uint64_t)c->vocab * 4), (uint64_t)c->vocab * 4));
    return OLLM_OK;
}

#define OLLM__FAMILIES_WIP_GPT_OSS \
    { "gpt_oss", ollm__gptoss_config, ollm__gptoss_weights_size, ollm__gptoss_tensors, ollm__gptoss_session_init, \
      ollm__gptoss_session_free, ollm__gptoss_forward, 1 },
