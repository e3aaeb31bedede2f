/* libFuzzer harness: config.json -> model description (@config ollm__desc_parse, every family in ollm__families),
   then what ollm_model_open derives from it: the RoPE table (ollm__rope_freqs) and the weight-struct size. Checks
   that an accepted description obeys the limits the rest of the library relies on. */
#define OLLM_IMPLEMENTATION
#include "../../ollm.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ollm__desc d; const ollm__family *fam = NULL; ollm__log lg; ollm_result r;
    memset(&lg, 0, sizeof lg);
    r = ollm__desc_parse(&d, &fam, (const char *)data, size, &lg);
    if (r == OLLM_OK) {
        float *inv; int rot = -1, i; float mscale = 0;
        FUZZ_CHECK(fam != NULL);
        FUZZ_CHECK(d.hidden >= 1 && d.hidden <= OLLM__MAX_DIM);
        FUZZ_CHECK(d.n_layers >= 1 && d.n_layers <= OLLM__MAX_LAYERS);
        FUZZ_CHECK(d.n_heads >= 1 && d.n_kv_heads >= 1 && d.n_heads % d.n_kv_heads == 0);
        FUZZ_CHECK(d.head_dim >= 2 && d.head_dim % 2 == 0);
        FUZZ_CHECK((int64_t)d.n_heads * d.head_dim <= OLLM__MAX_DIM);
        FUZZ_CHECK(d.vocab >= 1 && d.vocab <= OLLM__MAX_DIM);
        FUZZ_CHECK(d.max_pos >= 1);
        FUZZ_CHECK(d.n_eos >= 0 && d.n_eos <= 8);
        FUZZ_CHECK(d.rms_eps > 0 && d.rms_eps <= 1);
        FUZZ_CHECK(fam->weights_size(&d) > 0);
        /* exactly what ollm_model_open allocates and computes */
        inv = (float *)ollm__calloc((size_t)d.head_dim / 2 + 1, sizeof *inv);
        FUZZ_CHECK(inv != NULL);
        ollm__rope_freqs(&d.rope, d.head_dim, inv, &rot, &mscale);
        FUZZ_CHECK(rot >= 0 && rot <= d.head_dim && rot % 2 == 0);
        FUZZ_CHECK(isfinite(mscale));
        for (i = 0; i < rot / 2; i++) FUZZ_CHECK(isfinite(inv[i]));
        OLLM_FREE(inv);
    } else {
        FUZZ_CHECK(lg.err[0] != 0);
    }
    fuzz_say("config", lg.err);
    return 0;
}
