/* libFuzzer harness: one safetensors file (@safetensors). The input becomes a file (see fuzz_write_st in
   fuzz_common.h: the first byte picks raw bytes, or a JSON header with a sparse zero data section), which
   ollm__st_add_file parses and ollm__st_index sorts; every accepted tensor is then checked against the file and
   looked up by name, and its bytes are read. */
#define OLLM_IMPLEMENTATION
#include "../../ollm.h"
#include "fuzz_common.h"

static ollm__st st;   /* large (the shard table): static, not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = fuzz_subdir("st"); char path[600]; ollm__log lg; uint32_t k;
    memset(&lg, 0, sizeof lg);
    fuzz_write_st(dir, "model.safetensors", data, size);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    memset(&st, 0, sizeof st);
    if (ollm__st_add_file(&st, path, "model.safetensors", &lg) == OLLM_OK) {
        FUZZ_CHECK(st.n_files == 1);
        for (k = 0; k < st.n; k++) {
            const ollm__tensor *t = &st.t[k]; uint64_t e = 1; int d;
            FUZZ_CHECK(t->dtype < OLLM__DTYPE_COUNT && t->ndim <= OLLM__MAX_DIMS);
            for (d = 0; d < t->ndim; d++) { FUZZ_CHECK(t->shape[d] >= 0); FUZZ_CHECK(ollm__mul_ok(e, (uint64_t)t->shape[d], &e)); }
            FUZZ_CHECK(ollm__mul_ok(e, ollm__dtype_size[t->dtype], &e) && e == t->nbytes);
            FUZZ_CHECK(t->offset >= 8 && t->offset <= st.files[0].size && t->nbytes <= st.files[0].size - t->offset);
        }
        if (ollm__st_index(&st, &lg) == OLLM_OK) {
            for (k = 0; k < st.n; k++) {
                const ollm__tensor *t = ollm__st_find(&st, st.t[k].name);
                FUZZ_CHECK(t == &st.t[k]);
                if (t->nbytes && t->nbytes <= 4096) {
                    char buf[4096];
                    FUZZ_CHECK(ollm__pread_all(st.files[0].fd, buf, t->nbytes, t->offset) == OLLM_OK);
                }
            }
            FUZZ_CHECK(ollm__st_find(&st, "no.such.tensor") == NULL || strcmp(ollm__st_find(&st, "no.such.tensor")->name, "no.such.tensor") == 0);
        } else FUZZ_CHECK(lg.err[0] != 0);
    } else FUZZ_CHECK(lg.err[0] != 0);
    fuzz_say("safetensors", lg.err);
    ollm__st_free(&st);
    return 0;
}
