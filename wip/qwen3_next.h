/* Qwen3-Next (transformers models/qwen3_next/modeling_qwen3_next.py): a hybrid of Gated DeltaNet layers and gated
   full attention, every layer followed by a sparse MoE with a shared expert. CPU reference only: the recurrent
   DeltaNet and the routed experts are static helpers here that run on the CPU backend's thread pool.

   Per layer:  h = x + Mixer(RMSNorm0(x));  x = h + MoE(RMSNorm0(h)),  RMSNorm0(x) = x_hat * (1 + w) (zero-centred).
   Mixer is Gated DeltaNet (layer_kind OLLM__LAYER_LINEAR) or gated attention (OLLM__LAYER_FULL).
   Session state: K/V caches for the full-attention layers only; per DeltaNet layer the last K-1 conv inputs and the
   recurrent state S [value heads][dk][dv] (fp32). That state cannot be rewound: see ollm__qn_forward. */

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

/* linear_attn.conv1d.weight is [conv_dim, 1, K] (nn.Conv1d, depthwise). ollm__tensor_fn speaks only [rows, cols], so
   other walkers of the list (tools/make_random_checkpoint.c) get [conv_dim, K]; loading accepts that 2-D form too
   (same bytes, same meaning). */
static ollm_result ollm__qn_conv_weight(ollm_model *m, ollm__tensor_fn fn, ollm__w *slot, const char *name,
                                        int64_t channels, int64_t K) {
    const ollm__tensor *t;
    int64_t shape[3];
    if (fn != ollm__bind) return fn(m, slot, name, channels, K);
    t = ollm__st_find(&m->st, name);
    if (t && t->ndim == 2) return ollm__bind(m, slot, name, channels, K);
    shape[0] = channels; shape[1] = 1; shape[2] = K;
    return ollm__bind_shaped(m, slot, name, OLLM__FLOAT_DTYPES, 3, shape);
}

/* Every tensor a Qwen3-Next checkpoint must hold, in the hub layout (one tensor per expert); `mtp.*` (the
   multi-token-prediction head) is not read. */
static ollm_result ollm__qn_tensors(ollm_model *m, ollm__tensor_fn fn) {
    const ollm__desc *c = &m->d; char name[256]; int l, e; ollm__qn *w = (ollm__qn *)m->fw;
    ollm__w *experts = (ollm__w *)(void *)(w->layers + c->n_layers);
    int64_t H = c->hidden, hd = c->head_dim, qw = (int64_t)c->n_heads * hd, kw = (int64_t)c->n_kv_heads * hd;
    int64_t Kd = (int64_t)c->lin_k_heads * c->lin_k_dim, Vd = (int64_t)c->lin_v_heads * c->lin_v_dim;
    OLLM__TRY(fn(m, &w->embed_tokens, "model.embed_tokens.weight", c->vocab, H));
    OLLM__TRY(fn(m, &w->norm, "model.norm.weight", H, 0));
    if (c->tie_embeddings) w->lm_head = w->embed_tokens;
    else OLLM__TRY(fn(m, &w->lm_head, "lm_head.weight", c->vocab, H));
    for (l = 0; l < c->n_layers; l++) {
        ollm__qn_layer *L = &w->layers[l];
        L->experts = experts + (size_t)l * c->n_experts * 3;
#define OLLM__T(field, suffix, rows, cols) \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix); \
        OLLM__TRY(fn(m, &L->field, name, rows, cols))
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
            snprintf(name, sizeof name, "model.layers.%d.linear_attn.conv1d.weight", l);
            OLLM__TRY(ollm__qn_conv_weight(m, fn, &L->conv1d, name, 2 * Kd + Vd, c->conv_kernel));
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
    float **conv;                /* per DeltaNet layer: the last K-1 conv inputs [K-1][conv_dim], oldest first */
    float **S;                   /* per DeltaNet layer: [value heads][dk][dv] */
    /* one chunk's scratch (T = s->chunk rows) */
    float *qg, *gate;            /* attention: q_proj output [T, 2 nh hd]; the gate [T, nh hd] */
    float *qkvz, *ba, *mix, *conv_out, *z, *beta, *g, *core, *wconv, *wnorm;   /* DeltaNet */
    float *router, *moe, *sg, *xg, *hg, *hu, *yd, *slot_w;                     /* MoE */
    int32_t *sel, *slot_tok, *count, *off, *fill;
    ollm__mm_ctx *jobs; int64_t *first;
} ollm__qn_state;

static void ollm__qn_session_free(ollm_session *s) {
    ollm__qn_state *st = (ollm__qn_state *)s->fs; int l;
    if (!st) return;
    for (l = 0; l < s->m->d.n_layers; l++) {
        if (st->conv) OLLM_FREE(st->conv[l]);
        if (st->S) OLLM_FREE(st->S[l]);
    }
    OLLM_FREE(st->conv); OLLM_FREE(st->S);
    OLLM_FREE(st->qg); OLLM_FREE(st->gate); OLLM_FREE(st->qkvz); OLLM_FREE(st->ba); OLLM_FREE(st->mix);
    OLLM_FREE(st->conv_out); OLLM_FREE(st->z); OLLM_FREE(st->beta); OLLM_FREE(st->g); OLLM_FREE(st->core);
    OLLM_FREE(st->wconv); OLLM_FREE(st->router); OLLM_FREE(st->moe); OLLM_FREE(st->sg); OLLM_FREE(st->xg);
    OLLM_FREE(st->hg); OLLM_FREE(st->hu); OLLM_FREE(st->yd); OLLM_FREE(st->slot_w); OLLM_FREE(st->sel);
    OLLM_FREE(st->slot_tok); OLLM_FREE(st->count); OLLM_FREE(st->jobs); OLLM_FREE(st->first);
    OLLM_FREE(st->wnorm); OLLM_FREE(st->off); OLLM_FREE(st->fill);
    OLLM_FREE(st);
    s->fs = NULL;
}

static ollm_result ollm__qn_session_init(ollm_session *s) {
    ollm_model *m = s->m; const ollm__desc *c = &m->d; ollm__qn_state *st; int l;
    size_t T = (size_t)s->chunk, H = (size_t)c->hidden, E = (size_t)c->n_experts, k = (size_t)c->n_experts_per_tok;
    size_t qw = (size_t)c->n_heads * c->head_dim, Kd = (size_t)c->lin_k_heads * c->lin_k_dim;
    size_t Vd = (size_t)c->lin_v_heads * c->lin_v_dim, C = 2 * Kd + Vd, K = (size_t)c->conv_kernel;
    size_t slots = T * (k + 1), I = (size_t)(c->moe_ffn > c->shared_ffn ? c->moe_ffn : c->shared_ffn);
    if (!m->B->host) return ollm__fail(&m->log, OLLM_ERR_UNSUPPORTED, "Qwen3-Next needs the CPU backend for now");
    st = (ollm__qn_state *)ollm__calloc(1, sizeof *st);
    if (!st) return OLLM_ERR_NO_MEMORY;
    s->fs = st;
    st->conv = (float **)ollm__calloc((size_t)c->n_layers, sizeof(float *));
    st->S = (float **)ollm__calloc((size_t)c->n_layers, sizeof(float *));
    if (!st->conv || !st->S) return OLLM_ERR_NO_MEMORY;
    for (l = 0; l < c->n_layers; l++) {
        if (c->layer_kind[l] == OLLM__LAYER_FULL) { OLLM__TRY(ollm__session_kv(s, l, s->n_ctx)); continue; }
        st->conv[l] = (float *)ollm__calloc((K - 1) * C + 1, sizeof(float));
        st->S[l] = (float *)ollm__calloc((size_t)c->lin_v_heads * c->lin_k_dim * c->lin_v_dim, sizeof(float));
        if (!st->conv[l] || !st->S[l]) return OLLM_ERR_NO_MEMORY;
    }
    /* x, xn, q, o [T, nh hd], k, v [T, nkv hd], logits; g and u are unused (the MoE has its own buffers) */
    OLLM__TRY(ollm__session_acts(s, (int64_t)qw, (int64_t)c->n_kv_heads * c->head_dim, 1));
#define OLLM__QA(ptr, type, n) if (!((st->ptr) = (type *)ollm__calloc((n), sizeof(type)))) return OLLM_ERR_NO_MEMORY
    OLLM__QA(qg, float, T * 2 * qw); OLLM__QA(gate, float, T * qw);
    OLLM__QA(qkvz, float, T * (2 * Kd + 2 * Vd)); OLLM__QA(ba, float, T * 2 * (size_t)c->lin_v_heads);
    OLLM__QA(mix, float, (T + K - 1) * C); OLLM__QA(conv_out, float, T * C); OLLM__QA(z, float, T * Vd);
    OLLM__QA(beta, float, T * (size_t)c->lin_v_heads); OLLM__QA(g, float, T * (size_t)c->lin_v_heads);
    OLLM__QA(core, float, T * Vd); OLLM__QA(wconv, float, C * K); OLLM__QA(wnorm, float, (size_t)c->lin_v_dim);
    OLLM__QA(router, float, T * E); OLLM__QA(moe, float, T * H); OLLM__QA(sg, float, T);
    OLLM__QA(xg, float, slots * H); OLLM__QA(hg, float, slots * I); OLLM__QA(hu, float, slots * I);
    OLLM__QA(yd, float, slots * H); OLLM__QA(slot_w, float, slots);
    OLLM__QA(sel, int32_t, T * k); OLLM__QA(slot_tok, int32_t, slots); OLLM__QA(count, int32_t, E + 1);
    OLLM__QA(off, int32_t, E + 2); OLLM__QA(fill, int32_t, E + 1);
    OLLM__QA(jobs, ollm__mm_ctx, 2 * (E + 1)); OLLM__QA(first, int64_t, 2 * (E + 1) + 1);
#undef OLLM__QA
    return OLLM_OK;
}

/* ---- CPU helpers ---- */

/* Several matrix products in one parallel-for: task i is row block i - first[j] of job j (ollm__mm_task). */
typedef struct ollm__qn_multi { ollm__mm_ctx *jobs; const int64_t *first; int n; } ollm__qn_multi;
static void ollm__qn_multi_task(void *vctx, int64_t i) {
    ollm__qn_multi *c = (ollm__qn_multi *)vctx; int lo = 0, hi = c->n - 1;
    while (lo < hi) { int mid = (lo + hi + 1) / 2; if (c->first[mid] <= i) lo = mid; else hi = mid - 1; }
    ollm__mm_task(&c->jobs[lo], i - c->first[lo]);
}
static ollm_result ollm__qn_run_jobs(ollm_model *m, ollm__mm_ctx *jobs, int64_t *first, int n) {
    ollm__qn_multi c; int j;
    first[0] = 0;
    for (j = 0; j < n; j++) first[j + 1] = first[j] + (jobs[j].W->rows + OLLM__MM_ROWS - 1) / OLLM__MM_ROWS;
    c.jobs = jobs; c.first = first; c.n = n;
    ollm__pool_run(&((ollm__cpu *)m->B)->pool, first[n], ollm__qn_multi_task, &c);
    for (j = 0; j < n; j++) if (jobs[j].failed) return OLLM_ERR_NO_MEMORY;
    return OLLM_OK;
}
static void ollm__qn_job(ollm__mm_ctx *job, const ollm__w *W, const float *x, float *y, int T) {
    job->W = W; job->x = x; job->y = y; job->T = T; job->accumulate = 0; job->failed = 0;
}
static float ollm__qn_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static float ollm__qn_buf_f32(const ollm__w *w, int64_t i) {   /* one element of a small vector weight */
    float f; ollm__to_f32((const char *)w->data.ptr + (uint64_t)i * ollm__dtype_size[w->dtype], w->dtype, &f, 1);
    return f;
}
static ollm__buf ollm__qn_hbuf(void *p, uint64_t bytes) { ollm__buf b; b.ptr = p; b.bytes = bytes; return b; }

/* The gated delta rule, recurrent form (torch_recurrent_gated_delta_rule), one task per value head h over the T
   tokens: S <- S exp(g_t); kv = S^T k_t; delta = (v_t - kv) beta_t; S <- S + k_t delta^T; o_t = S^T q_t. The chunked
   form transformers uses for prefill (torch_chunk_gated_delta_rule) computes the same in exact arithmetic. */
typedef struct ollm__qn_dn_ctx {
    const float *qkv, *beta, *g; float *core, *S;
    int T, C, Kd, nv, r, dk, dv;
} ollm__qn_dn_ctx;
static void ollm__qn_dn_task(void *vctx, int64_t hv) {
    const ollm__qn_dn_ctx *c = (const ollm__qn_dn_ctx *)vctx;
    int kh = (int)hv / c->r, t, i, jj, dk = c->dk, dv = c->dv;   /* repeat_interleave: value head hv uses key head hv / r */
    float *S = c->S + hv * (int64_t)dk * dv;
    for (t = 0; t < c->T; t++) {
        const float *row = c->qkv + (int64_t)t * c->C;
        const float *q = row + kh * dk, *k = row + c->Kd + kh * dk, *v = row + 2 * c->Kd + hv * dv;
        float decay = expf(c->g[t * c->nv + hv]), beta = c->beta[t * c->nv + hv];
        float *o = c->core + (int64_t)t * c->nv * dv + hv * dv;
        for (jj = 0; jj < dv; jj++) o[jj] = 0;
        for (i = 0; i < dk * dv; i++) S[i] *= decay;
        for (i = 0; i < dk; i++) {                      /* o temporarily holds kv = S^T k */
            const float *Si = S + (int64_t)i * dv; float ki = k[i];
            for (jj = 0; jj < dv; jj++) o[jj] += Si[jj] * ki;
        }
        for (jj = 0; jj < dv; jj++) o[jj] = (v[jj] - o[jj]) * beta;   /* delta */
        for (i = 0; i < dk; i++) {
            float *Si = S + (int64_t)i * dv; float ki = k[i];
            for (jj = 0; jj < dv; jj++) Si[jj] += ki * o[jj];
        }
        for (jj = 0; jj < dv; jj++) o[jj] = 0;
        for (i = 0; i < dk; i++) {
            const float *Si = S + (int64_t)i * dv; float qi = q[i];
            for (jj = 0; jj < dv; jj++) o[jj] += Si[jj] * qi;
        }
    }
}

/* Gated DeltaNet (Qwen3NextGatedDeltaNet.forward): x += out_proj(RMSNormGated(DeltaRule(conv(q, k, v)), z)). */
static ollm_result ollm__qn_deltanet(ollm_session *s, int l, int T) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; ollm__qn_state *st = (ollm__qn_state *)s->fs;
    const ollm__qn_layer *L = &((const ollm__qn *)m->fw)->layers[l];
    int nk = c->lin_k_heads, nv = c->lin_v_heads, dk = c->lin_k_dim, dv = c->lin_v_dim, r = nv / nk, K = c->conv_kernel;
    int Kd = nk * dk, Vd = nv * dv, C = 2 * Kd + Vd, G = 2 * dk + 2 * r * dv, t, h, i, jj;
    float eps = (float)c->rms_eps, qscale = 1.0f / sqrtf((float)dk), *conv_state = st->conv[l];
    ollm__qn_dn_ctx dn;
    OLLM__TRY(B->matmul(B, ollm__qn_hbuf(st->qkvz, (uint64_t)T * (2 * Kd + 2 * Vd) * 4), s->xn, &L->in_proj_qkvz, T, 0));
    OLLM__TRY(B->matmul(B, ollm__qn_hbuf(st->ba, (uint64_t)T * 2 * nv * 4), s->xn, &L->in_proj_ba, T, 0));
    /* fix_query_key_value_ordering: per key head the projection holds [q dk | k dk | v r dv | z r dv] and [b r | a r].
       mix rows: the K-1 remembered conv inputs, then this chunk's concat(q, k, v) */
    memcpy(st->mix, conv_state, (size_t)(K - 1) * C * 4);
    for (t = 0; t < T; t++) {
        const float *p = st->qkvz + (int64_t)t * (2 * Kd + 2 * Vd), *pb = st->ba + (int64_t)t * 2 * nv;
        float *mx = st->mix + (int64_t)(K - 1 + t) * C, *z = st->z + (int64_t)t * Vd;
        for (h = 0; h < nk; h++) {
            const float *ph = p + (int64_t)h * G;
            memcpy(mx + h * dk, ph, (size_t)dk * 4);
            memcpy(mx + Kd + h * dk, ph + dk, (size_t)dk * 4);
            memcpy(mx + 2 * Kd + h * r * dv, ph + 2 * dk, (size_t)(r * dv) * 4);
            memcpy(z + h * r * dv, ph + 2 * dk + r * dv, (size_t)(r * dv) * 4);
            for (jj = 0; jj < r; jj++) {
                int hv = h * r + jj;
                float b = pb[h * 2 * r + jj], a = pb[h * 2 * r + r + jj];
                float sp = a + ollm__qn_buf_f32(&L->dt_bias, hv);
                sp = sp > 20.0f ? sp : log1pf(expf(sp));            /* F.softplus, threshold 20 */
                st->beta[t * nv + hv] = ollm__qn_sigmoid(b);
                st->g[t * nv + hv] = -expf(ollm__qn_buf_f32(&L->A_log, hv)) * sp;
            }
        }
    }
    /* causal depthwise conv1d (kernel K, left padding K-1 = the remembered inputs), then SiLU */
    ollm__to_f32(L->conv1d.data.ptr, L->conv1d.dtype, st->wconv, (int64_t)C * K);
    for (t = 0; t < T; t++) {
        float *out = st->conv_out + (int64_t)t * C;
        for (i = 0; i < C; i++) {
            float acc = 0; const float *w = st->wconv + (int64_t)i * K;
            for (jj = 0; jj < K; jj++) acc += w[jj] * st->mix[(int64_t)(t + jj) * C + i];
            out[i] = acc / (1.0f + expf(-acc));
        }
    }
    memcpy(conv_state, st->mix + (int64_t)T * C, (size_t)(K - 1) * C * 4);   /* the last K-1 inputs */
    /* l2norm (eps 1e-6 inside the rsqrt of the sum of squares) of q and k per key head; q scaled by 1/sqrt(dk) */
    for (t = 0; t < T; t++)
        for (h = 0; h < 2 * nk; h++) {
            float *v = st->conv_out + (int64_t)t * C + (int64_t)h * dk, ss = 0, inv;
            for (i = 0; i < dk; i++) ss += v[i] * v[i];
            inv = 1.0f / sqrtf(ss + 1e-6f);
            if (h < nk) inv *= qscale;
            for (i = 0; i < dk; i++) v[i] *= inv;
        }
    dn.qkv = st->conv_out; dn.beta = st->beta; dn.g = st->g; dn.core = st->core; dn.S = st->S[l];
    dn.T = T; dn.C = C; dn.Kd = Kd; dn.nv = nv; dn.r = r; dn.dk = dk; dn.dv = dv;
    ollm__pool_run(&((ollm__cpu *)B)->pool, nv, ollm__qn_dn_task, &dn);
    /* RMSNormGated per value head: w * x_hat * silu(z), plain weight (not 1 + w) */
    ollm__to_f32(L->norm.data.ptr, L->norm.dtype, st->wnorm, dv);
    for (t = 0; t < T; t++)
        for (h = 0; h < nv; h++) {
            float *o = st->core + (int64_t)t * Vd + (int64_t)h * dv; const float *z = st->z + (int64_t)t * Vd + (int64_t)h * dv;
            float ss = 0, inv;
            for (i = 0; i < dv; i++) ss += o[i] * o[i];
            inv = 1.0f / sqrtf(ss / (float)dv + eps);
            for (i = 0; i < dv; i++) o[i] = st->wnorm[i] * (o[i] * inv) * (z[i] / (1.0f + expf(-z[i])));
        }
    return B->matmul(B, s->x, ollm__qn_hbuf(st->core, (uint64_t)T * Vd * 4), &L->out_proj, T, 1);
}

/* Gated full attention (Qwen3NextAttention.forward): x += o_proj(Attn(RoPE(q_norm(q)), RoPE(k_norm(k)), v) * sigmoid(gate)). */
static ollm_result ollm__qn_attention(ollm_session *s, int l, int T) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; ollm__qn_state *st = (ollm__qn_state *)s->fs;
    const ollm__qn_layer *L = &((const ollm__qn *)m->fw)->layers[l];
    int nh = c->n_heads, hd = c->head_dim, t, h; int64_t i, n = (int64_t)T * nh * hd; float eps = (float)c->rms_eps;
    float *q = (float *)s->q.ptr, *o = (float *)s->o.ptr;
    ollm__attn_args a;
    memset(&a, 0, sizeof a);
    a.T = T; a.pos0 = (int)s->n_past; a.n_heads = nh; a.n_kv_heads = c->n_kv_heads; a.head_dim = hd;
    a.scale = 1.0f / sqrtf((float)hd);
    OLLM__TRY(B->matmul(B, ollm__qn_hbuf(st->qg, (uint64_t)T * 2 * nh * hd * 4), s->xn, &L->q_proj, T, 0));
    for (t = 0; t < T; t++)                     /* q_proj per head: [query hd | gate hd] */
        for (h = 0; h < nh; h++) {
            const float *p = st->qg + ((int64_t)t * nh + h) * 2 * hd;
            memcpy(q + ((int64_t)t * nh + h) * hd, p, (size_t)hd * 4);
            memcpy(st->gate + ((int64_t)t * nh + h) * hd, p + hd, (size_t)hd * 4);
        }
    OLLM__TRY(B->matmul(B, s->k, s->xn, &L->k_proj, T, 0));
    OLLM__TRY(B->matmul(B, s->v, s->xn, &L->v_proj, T, 0));
    OLLM__TRY(B->rmsnorm(B, s->q, s->q, &L->q_norm, T * nh, hd, eps, 1));            /* per head, 1 + w */
    OLLM__TRY(B->rmsnorm(B, s->k, s->k, &L->k_norm, T * c->n_kv_heads, hd, eps, 1));
    OLLM__TRY(B->rope(B, s->q, T, nh, hd, m->rot_dim, a.pos0, m->inv_freq, m->mscale));   /* partial: first rot_dim */
    OLLM__TRY(B->rope(B, s->k, T, c->n_kv_heads, hd, m->rot_dim, a.pos0, m->inv_freq, m->mscale));
    OLLM__TRY(B->attention(B, s->o, s->q, s->k, s->v, s->k_cache[l], s->v_cache[l], &a));
    for (i = 0; i < n; i++) o[i] *= ollm__qn_sigmoid(st->gate[i]);
    return B->matmul(B, s->x, s->o, &L->o_proj, T, 1);
}

/* Sparse MoE block (Qwen3NextSparseMoeBlock): p = softmax(all router logits), top-k, renormalised when
   norm_topk_prob; x += sum_e p_e expert_e(xn) + sigmoid(shared_expert_gate xn) shared_expert(xn). The (token,
   expert) pairs are grouped by expert (the shared expert last, with all T tokens), so each expert's weights are
   read once per chunk; the products of all experts share one parallel-for. */
static ollm_result ollm__qn_moe(ollm_session *s, int l, int T) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; ollm__qn_state *st = (ollm__qn_state *)s->fs;
    const ollm__qn_layer *L = &((const ollm__qn *)m->fw)->layers[l];
    int E = c->n_experts, k = c->n_experts_per_tok, H = c->hidden, t, e, i, n_jobs, slot;
    int64_t I = c->moe_ffn > c->shared_ffn ? c->moe_ffn : c->shared_ffn, d;
    const float *xn = (const float *)s->xn.ptr; float *x = (float *)s->x.ptr;
    int32_t *off;
    OLLM__TRY(B->matmul(B, ollm__qn_hbuf(st->router, (uint64_t)T * E * 4), s->xn, &L->gate, T, 0));
    OLLM__TRY(B->matmul(B, ollm__qn_hbuf(st->sg, (uint64_t)T * 4), s->xn, &L->shared_expert_gate, T, 0));
    /* Qwen3NextTopKRouter: softmax in fp32 over all E, then top-k of the probabilities (lowest index on ties) */
    for (t = 0; t < T; t++) {
        float *p = st->router + (int64_t)t * E, mx = -INFINITY, sum = 0, ksum = 0; int32_t *sel = st->sel + (int64_t)t * k;
        for (e = 0; e < E; e++) if (p[e] > mx) mx = p[e];
        for (e = 0; e < E; e++) { p[e] = expf(p[e] - mx); sum += p[e]; }
        for (e = 0; e < E; e++) p[e] /= sum;
        for (i = 0; i < k; i++) {
            int best = -1;
            for (e = 0; e < E; e++) {
                int taken = 0, q;
                for (q = 0; q < i; q++) taken |= sel[q] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            sel[i] = best; ksum += p[best];
        }
        if (c->norm_topk_prob) for (i = 0; i < k; i++) p[sel[i]] /= ksum;   /* router_top_value /= sum */
    }
    /* group the (token, expert) pairs by expert: slots [off[e], off[e] + count[e]) */
    memset(st->count, 0, (size_t)(E + 1) * sizeof *st->count);
    for (i = 0; i < T * k; i++) st->count[st->sel[i]]++;
    st->count[E] = T;
    off = st->off; off[0] = 0;
    for (e = 0; e <= E; e++) off[e + 1] = off[e] + st->count[e];
    for (e = 0; e <= E; e++) st->fill[e] = off[e];
    for (t = 0; t < T; t++)                      /* tokens ascending within each expert, as index_add_ sees them */
        for (i = 0; i < k; i++) {
            e = st->sel[t * k + i]; slot = st->fill[e]++;
            st->slot_tok[slot] = t; st->slot_w[slot] = st->router[(int64_t)t * E + e];
        }
    for (t = 0; t < T; t++) {
        slot = st->fill[E]++;
        st->slot_tok[slot] = t; st->slot_w[slot] = ollm__qn_sigmoid(st->sg[t]);
    }
    for (slot = 0; slot < off[E + 1]; slot++)
        memcpy(st->xg + (int64_t)slot * H, xn + (int64_t)st->slot_tok[slot] * H, (size_t)H * 4);
    /* gate and up of every expert with tokens, then silu(gate) * up, then down */
    n_jobs = 0;
    for (e = 0; e <= E; e++) {
        const ollm__w *Wg = e < E ? &L->experts[3 * e] : &L->shared_gate_proj, *Wu = e < E ? &L->experts[3 * e + 1] : &L->shared_up_proj;
        if (!st->count[e]) continue;
        ollm__qn_job(&st->jobs[n_jobs++], Wg, st->xg + (int64_t)off[e] * H, st->hg + (int64_t)off[e] * I, st->count[e]);
        ollm__qn_job(&st->jobs[n_jobs++], Wu, st->xg + (int64_t)off[e] * H, st->hu + (int64_t)off[e] * I, st->count[e]);
    }
    OLLM__TRY(ollm__qn_run_jobs(m, st->jobs, st->first, n_jobs));
    n_jobs = 0;
    for (e = 0; e <= E; e++) {
        const ollm__w *Wd = e < E ? &L->experts[3 * e + 2] : &L->shared_down_proj;
        int64_t n = (int64_t)st->count[e] * Wd->cols;
        float *gp = st->hg + (int64_t)off[e] * I; const float *up = st->hu + (int64_t)off[e] * I;
        if (!st->count[e]) continue;
        for (d = 0; d < n; d++) gp[d] = gp[d] / (1.0f + expf(-gp[d])) * up[d];
        ollm__qn_job(&st->jobs[n_jobs++], Wd, gp, st->yd + (int64_t)off[e] * H, st->count[e]);
    }
    OLLM__TRY(ollm__qn_run_jobs(m, st->jobs, st->first, n_jobs));
    /* moe = sum over experts in index order of w * y, plus the gated shared expert; then the residual add */
    memset(st->moe, 0, (size_t)T * H * 4);
    for (slot = 0; slot < off[E + 1]; slot++) {
        float *yt = st->moe + (int64_t)st->slot_tok[slot] * H, w = st->slot_w[slot];
        const float *y = st->yd + (int64_t)slot * H;
        for (d = 0; d < H; d++) yt[d] += w * y[d];
    }
    for (d = 0; d < (int64_t)T * H; d++) x[d] += st->moe[d];
    return OLLM_OK;
}

/* T tokens at positions n_past.. The DeltaNet states hold exactly the tokens fed so far (st->pos): a session rewound
   below that (ollm_session_rewind) cannot continue, since the recurrent state cannot be undone; rewinding to 0 starts
   afresh (the states are cleared). */
static ollm_result ollm__qn_forward(ollm_session *s, const int32_t *ids, int T, float *logits_all) {
    ollm_model *m = s->m; ollm__backend *B = m->B; const ollm__desc *c = &m->d; const ollm__qn *w = (const ollm__qn *)m->fw;
    ollm__qn_state *st = (ollm__qn_state *)s->fs;
    int H = c->hidden, l, rows = logits_all ? T : 1; float eps = (float)c->rms_eps;
    if (st->pos != s->n_past) {
        if (s->n_past != 0)
            return ollm__fail(&m->log, OLLM_ERR_UNSUPPORTED, "Qwen3-Next: the session was rewound to token %lld, but "
                              "the DeltaNet recurrent state cannot be rewound (it holds %lld tokens%s); rewind to 0 "
                              "and feed the context again", (long long)s->n_past, (long long)(st->pos < 0 ? 0 : st->pos),
                              st->pos < 0 ? " after a failed forward pass" : "");
        for (l = 0; l < c->n_layers; l++) {
            if (c->layer_kind[l] == OLLM__LAYER_FULL) continue;
            memset(st->conv[l], 0, (size_t)(c->conv_kernel - 1) * (2 * c->lin_k_heads * c->lin_k_dim +
                   c->lin_v_heads * c->lin_v_dim) * 4);
            memset(st->S[l], 0, (size_t)c->lin_v_heads * c->lin_k_dim * c->lin_v_dim * 4);
        }
    }
    st->pos = -1;                               /* until this pass completes */
    OLLM__TRY(B->embed(B, s->x, &w->embed_tokens, ids, T));
    for (l = 0; l < c->n_layers; l++) {
        const ollm__qn_layer *L = &w->layers[l];
        OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->input_layernorm, T, H, eps, 1));
        if (c->layer_kind[l] == OLLM__LAYER_FULL) OLLM__TRY(ollm__qn_attention(s, l, T));
        else OLLM__TRY(ollm__qn_deltanet(s, l, T));
        OLLM__TRY(B->rmsnorm(B, s->xn, s->x, &L->post_attention_layernorm, T, H, eps, 1));
        OLLM__TRY(ollm__qn_moe(s, l, T));
    }
    OLLM__TRY(B->rmsnorm(B, s->xn, ollm__view(s->x, (uint64_t)(T - rows) * H * 4, (uint64_t)rows * H * 4),
                         &w->norm, rows, H, eps, 1));
    OLLM__TRY(B->matmul(B, s->logits, s->xn, &w->lm_head, rows, 0));
    if (logits_all) OLLM__TRY(B->download(B, logits_all, s->logits, (uint64_t)rows * c->vocab * 4));
    OLLM__TRY(B->download(B, s->last_logits, ollm__view(s->logits, (uint64_t)(rows - 1) * c->vocab * 4,
                                                         (uint64_t)c->vocab * 4), (uint64_t)c->vocab * 4));
    st->pos = s->n_past + T;
    return OLLM_OK;
}

/* cpu_only: the DeltaNet, the routed experts and the conv have no CUDA kernels yet */
#define OLLM__FAMILIES_WIP_QWEN3_NEXT \
    { "qwen3_next", ollm__qn_config, ollm__qn_weights_size, ollm__qn_tensors, ollm__qn_session_init, \
      ollm__qn_session_free, ollm__qn_forward, 1 },
