/* tools/bench_host.c: the host's side of decoding, without a GPU.
   1. Greedy sampling: ollm__argmax over 201,088 logits (GPT-OSS's vocabulary) against the plain loop
      `if (v[i] > v[best]) best = i` it replaced, and the copy of the logits the sampler made before.
   2. With DIR: a checkpoint opened on the CPU backend staged as a device (tests/staged.h), so the expert cache is built
      as on a GPU, then the time to resolve one token's expert weights (top-k experts x 3 parts per layer, as the
      Qwen3-Next graph does) into cache views.
   Build: cc -O2 tools/bench_host.c -o bench_host -lm -lpthread -ldl.  Run: ./bench_host [DIR] (a Qwen3-Next
   checkpoint, e.g. tools/configs/qwen3-next-80b-a3b.json written small by tools/make_random_checkpoint.c). */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include "../tests/staged.h"

static void bench_argmax(void) {
    enum { V = 201088, IT = 200 };
    static float v[V], work[V]; int32_t i, it, best, sum = 0; double t0, t1, t2, t3;
    for (i = 0; i < V; i++) v[i] = (float)((i * 7919) % 100003) / 1000.0f;
    t0 = ollm__now();
    for (it = 0; it < IT; it++) {   /* each pass moves one value, so no pass can be skipped */
        v[(it * 1013) % V] += 1e-3f;
        for (best = 0, i = 1; i < V; i++) if (v[i] > v[best]) best = i;
        sum += best;
    }
    t1 = ollm__now();
    for (it = 0; it < IT; it++) { v[(it * 1013) % V] += 1e-3f; sum += ollm__argmax(v, V); }
    t2 = ollm__now();
    for (it = 0; it < IT; it++) { memcpy(work, v, sizeof v); sum += (int32_t)work[it]; }
    t3 = ollm__now();
    printf("greedy over %d logits: the loop %.1f us, ollm__argmax %.1f us; copying the logits %.1f us (%d)\n", V,
           (t1 - t0) * 1e6 / IT, (t2 - t1) * 1e6 / IT, (t3 - t2) * 1e6 / IT, (int)(sum & 1));
}

int main(int argc, char **argv) {
    ollm_model *m; ollm_model_config mc = ollm_model_config_default(); int it, l, j, w, k; double t0, t1; uintptr_t acc = 0;
    bench_argmax();
    if (argc < 2) return 0;
    ollm__backend_hook = staged_backend; mc.backend = OLLM_BACKEND_CPU; mc.threads = 1; mc.max_context = 256;
    mc.expert_slots = 400;
    if (ollm_model_open(argv[1], &mc, &m) != OLLM_OK) { fprintf(stderr, "%s\n", ollm_model_last_error(m)); return 1; }
    if (strcmp(ollm_model_get_info(m)->arch, "qwen3_next") != 0 || !m->xc) {
        fprintf(stderr, "bench_host: a Qwen3-Next checkpoint with routed experts is needed\n"); ollm_model_close(m); return 1;
    }
    k = m->d.n_experts_per_tok;
    t0 = ollm__now();
    for (it = 0; it < 200; it++)
        for (l = 0; l < m->d.n_layers; l++)
            for (j = 0; j < k; j++)
                for (w = 0; w < 3; w++) acc += (uintptr_t)ollm__qn_expert(m, l, (j * 53 + it * 7) % m->d.n_experts, w).data.ptr;
    t1 = ollm__now();
    printf("expert weights of a token (%d layers x %d experts x 3 parts, %d experts a layer): %.1f us (%d)\n",
           m->d.n_layers, k, m->d.n_experts, (t1 - t0) * 1e6 / 200, (int)(acc & 1));
    ollm_model_close(m);
    return 0;
}
