/* tools/bench_host.c: the host's side of MoE decoding, without a GPU: a checkpoint opened on the CPU backend staged as
   a device (tests/staged.h), so the expert cache is built as on a GPU, then the time to resolve one token's expert
   weights (top-k experts x 3 parts per layer, as the Qwen3-Next graph does) into cache views.
   Build: cc -O2 tools/bench_host.c -o bench_host -lm -lpthread -ldl.  Run: ./bench_host DIR (a Qwen3-Next checkpoint,
   e.g. tools/configs/qwen3-next-80b-a3b.json written small by tools/make_random_checkpoint.c). */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include "../tests/staged.h"

int main(int argc, char **argv) {
    ollm_model *m; ollm_model_config mc = ollm_model_config_default(); int it, l, j, w, k; double t0, t1; uintptr_t acc = 0;
    if (argc < 2) { fprintf(stderr, "usage: bench_host QWEN3_NEXT_DIR\n"); return 1; }
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
