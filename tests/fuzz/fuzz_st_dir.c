/* libFuzzer harness: a checkpoint directory (@safetensors ollm__st_open_dir). The input is split at FUZZ_SEP lines:
   part 0 is model.safetensors.index.json (absent when the part is empty: then part 1 is model.safetensors), parts
   1..7 are the shards model-0000<i>-of-00004.safetensors, each written by fuzz_write_st (first byte: raw file or
   JSON header with a sparse data section). */
#define OLLM_IMPLEMENTATION
#include "../../ollm.h"
#include "fuzz_common.h"

static ollm__st st;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = fuzz_subdir("dir"); char d[600], name[64]; ollm__log lg; fuzz_part parts[FUZZ_MAX_PARTS];
    int n = fuzz_split(data, size, parts), i; uint32_t k;
    snprintf(d, sizeof d, "%s", dir);
    memset(&lg, 0, sizeof lg);
    if (parts[0].n) fuzz_write(d, "model.safetensors.index.json", parts[0].p, parts[0].n);
    for (i = 1; i < n; i++) {
        if (parts[0].n) snprintf(name, sizeof name, "model-%05d-of-00004.safetensors", i);
        else snprintf(name, sizeof name, i == 1 ? "model.safetensors" : "extra-%d.safetensors", i);
        fuzz_write_st(d, name, parts[i].p, parts[i].n);
    }
    if (ollm__st_open_dir(&st, d, &lg) == OLLM_OK) {
        FUZZ_CHECK(st.n_files >= 1 && st.sorted != NULL);
        for (k = 0; k < st.n; k++) {
            const ollm__tensor *t = &st.t[k];
            FUZZ_CHECK(t->file < st.n_files);
            FUZZ_CHECK(t->offset <= st.files[t->file].size && t->nbytes <= st.files[t->file].size - t->offset);
            FUZZ_CHECK(ollm__st_find(&st, t->name) == t);
        }
    } else FUZZ_CHECK(lg.err[0] != 0);
    fuzz_say("st_dir", lg.err);
    ollm__st_free(&st);
    return 0;
}
