/* The VRAM ceiling, checked against the driver: with a budget B, everything the library puts on the GPU (weights,
   streaming slots, KV cache, activations, scratch, the kernel module) stays within B as cuMemGetInfo sees it, while a
   model that does not fit streams its layers and a long session keeps its KV cache in host RAM.
   Skips (0 passed, 0 failed) without an NVIDIA driver. Run from the repository root.
   usage: test_vram [MODEL_DIR BUDGET_BYTES]   (a model that streams at that budget: its layers must stream) */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include "check.h"

static ollm__cuda cu;
static size_t free0;

static size_t device_free(void) { size_t f = 0, t = 0; cu.cuMemGetInfo(&f, &t); return f; }

/* opens DIR under budget, runs a prompt and a few tokens, and returns the most device memory in use (free0 - free);
   group > 0: sessions of that many 32-token chunks a pass, asked of the session alone (the model planned for one) */
static void run(const char *dir, uint64_t budget, int ctx, int kv_host, int group, const char *what) {
    ollm_model *m; ollm_session *s; ollm_model_config mc = ollm_model_config_default();
    ollm_session_config sc = ollm_session_config_default(); ollm_generate_config g = ollm_generate_config_default();
    int32_t ids[200]; int i; size_t used = 0, f; char msg[1800];
    for (i = 0; i < 200; i++) ids[i] = (i * 7 + 1) % 256;
    mc.backend = OLLM_BACKEND_CUDA; mc.vram_bytes = budget; mc.max_context = ctx;
    if (ollm_model_open(dir, &mc, &m) != OLLM_OK) {
        snprintf(msg, sizeof msg, "%s: open: %s", what, ollm_model_last_error(m)); CHECK(0, msg); ollm_model_close(m); return;
    }
    f = device_free(); if (free0 - f > used) used = free0 - f;
    sc.max_context = ctx; sc.kv_host = kv_host;
    if (group) { sc.prefill_chunk = 32; sc.prefill_group = group; }
    if (ollm_session_open(m, &sc, &s) != OLLM_OK) {
        snprintf(msg, sizeof msg, "%s: session: %s", what, ollm_model_last_error(m)); CHECK(0, msg); ollm_model_close(m); return;
    }
    f = device_free(); if (free0 - f > used) used = free0 - f;
    CHECK(ollm_session_prefill(s, ids, 200, NULL) == OLLM_OK, "prefill under the budget");
    f = device_free(); if (free0 - f > used) used = free0 - f;
    g.max_tokens = 8; g.ignore_eos = 1;
    CHECK(ollm_session_generate(s, &g, NULL, 0, NULL) == OLLM_OK, "generation under the budget");
    f = device_free(); if (free0 - f > used) used = free0 - f;
    snprintf(msg, sizeof msg, "%s: the driver sees %.1f MiB in use, budget %.1f MiB (library's own count: peak %.1f MiB, "
             "%d of %d layers streamed, %d chunks of %d a pass)", what, (double)used / 1048576.0, (double)budget / 1048576.0,
             (double)ollm_model_get_info(m)->device_peak_bytes / 1048576.0, ollm_model_get_info(m)->streamed_layers,
             ollm_model_get_info(m)->n_layers, s->group, s->chunk);
    CHECK(used <= budget && ollm_model_get_info(m)->device_peak_bytes <= budget, msg);
    if (strstr(what, "layers streamed")) CHECK(ollm_model_get_info(m)->streamed_layers > 0, "layers stream at this budget");
    CHECK(used <= ollm_model_get_info(m)->device_peak_bytes + (64u << 20),
          "the library's own count covers what the driver sees, but for the 64 MiB set aside for kernels and streams");
    printf("  %s\n", msg);
    ollm_session_close(s); ollm_model_close(m);
    f = device_free();
    /* what remains is the driver's: once kernels have run, the context keeps a few MiB (local memory, pools) */
    snprintf(msg, sizeof msg, "%s: everything is returned on close (%.1f MiB still in use by the context)", what,
             (double)(free0 - f) / 1048576.0);
    CHECK(free0 - f <= (8u << 20), msg);
}

int main(int argc, char **argv) {
    char err[256]; ollm__cu_device dev; ollm__cu_context ctx;
    if (!ollm__cuda_load(&cu, err, sizeof err) || cu.cuInit(0) != 0 || cu.cuDeviceGet(&dev, 0) != 0 ||
        cu.cuDevicePrimaryCtxRetain(&ctx, dev) != 0 || cu.cuCtxSetCurrent(ctx) != 0) {
        printf("skipped: no CUDA driver or GPU\n0 passed, 0 failed\n");
        return 0;
    }
    /* the primary context exists (the library shares it): from here on, memory in use is the library's */
    free0 = device_free();
    {   /* the smallest budget (1 MB steps) at which the shipped model opens */
        ollm_model *m = NULL; ollm_model_config mc = ollm_model_config_default(); uint64_t b; char what[160];
        mc.backend = OLLM_BACKEND_CUDA; mc.max_context = 512;
        for (b = 100000000u; b < 400000000u; b += 1000000u) {
            mc.vram_bytes = b;
            if (ollm_model_open("examples/models/fortune-llama", &mc, &m) == OLLM_OK) break;
            ollm_model_close(m); m = NULL;
        }
        CHECK(m != NULL, "a budget at which the model opens");
        ollm_model_close(m);
        snprintf(what, sizeof what, "fortune-llama, the smallest budget that opens (%.0f MB)", (double)b / 1e6);
        run("examples/models/fortune-llama", b, 512, 0, 0, what);
        snprintf(what, sizeof what, "fortune-llama, the smallest budget that opens (%.0f MB), a session asking for 16 "
                 "chunks a pass (fewer fit)", (double)b / 1e6);
        run("examples/models/fortune-llama", b, 512, 0, 16, what);
    }
    if (argc == 3) {   /* a larger model and a budget at which its layers stream (tests/gpu.sh: a random 1B) */
        char what[600];
        snprintf(what, sizeof what, "%s, %s bytes, layers streamed", argv[1], argv[2]);
        run(argv[1], strtoull(argv[2], NULL, 10), 512, 0, 0, what);
        snprintf(what, sizeof what, "%s, %s bytes, layers streamed, 8 chunks a pass", argv[1], argv[2]);
        run(argv[1], strtoull(argv[2], NULL, 10), 512, 0, 8, what);
    }
    run("examples/models/fortune-llama", 300u << 20, 2048, 1, 0, "fortune-llama, 300 MiB, KV cache in host RAM");
    run("tests/fixtures/llama_untied_gqa2_sharded", 280u << 20, 256, 0, 0, "sharded fixture, 280 MiB");
    cu.cuDevicePrimaryCtxRelease(dev);
    return check_report();
}
