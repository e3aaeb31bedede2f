/* Writes a full-size checkpoint with random weights in the exact Hugging Face layout from a real config.json, for
   benchmarks without downloads: shards of at most 5 GB named model-0000X-of-0000N.safetensors plus
   model.safetensors.index.json (or one model.safetensors when it fits), BF16 (U8 for MXFP4 blocks and scales), the
   tensor list ollm.h itself expects.
   Build:  cc -O2 -o make_random_checkpoint tools/make_random_checkpoint.c -lm -lpthread -ldl
   Usage:  make_random_checkpoint CONFIG.json OUT_DIR [--seed N] [--shard-gb G]
   Weights are uniform in +-sqrt(3)*std with std 0.02 (norm weights near 1): the numbers are meaningless but have
   the magnitudes of a trained model, so kernels see realistic data. */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include <stdio.h>

typedef struct entry { char name[128]; int ndim, dtype; int64_t shape[OLLM__MAX_DIMS]; uint64_t bytes; int shard; uint64_t off; } entry;
static entry *entries; static int n_entries, cap_entries;

/* BF16 when the family accepts it, else U8 (MXFP4 blocks and scales), else F32 */
static ollm_result record(ollm_model *m, ollm__w *slot, const char *name, unsigned dtypes, int ndim,
                          const int64_t *shape) {
    entry *e; int d; (void)m; (void)slot;
    if (n_entries == cap_entries) {
        cap_entries = cap_entries ? cap_entries * 2 : 256;
        entries = (entry *)realloc(entries, (size_t)cap_entries * sizeof *entries);
        if (!entries) return OLLM_ERR_NO_MEMORY;
    }
    e = &entries[n_entries++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->dtype = dtypes & (1u << OLLM__BF16) ? OLLM__BF16 : dtypes & (1u << OLLM__U8) ? OLLM__U8 : OLLM__F32;
    e->ndim = ndim; e->bytes = ollm__dtype_size[e->dtype];
    for (d = 0; d < ndim; d++) { e->shape[d] = shape[d]; e->bytes *= (uint64_t)shape[d]; }
    return OLLM_OK;
}

static uint64_t rng = 1;
static uint64_t next_random(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; z ^= z >> 27;
    return z;
}
/* n values of entry e into p: BF16/F32 uniform (norms near 1), U8 random codes, or MXFP4 scale bytes 118..122
   (2^-9..2^-5: E2M1 codes have rms 2.9, so weights of rms ~0.02 as above) */
static void fill(void *p, uint64_t n, const entry *e) {
    uint64_t i; int is_norm = e->ndim == 1, scales = strstr(e->name, "_scales") != NULL;
    for (i = 0; i < n; i++) {
        uint64_t z = next_random();
        float u = (float)((double)(z >> 40) / 16777216.0 * 2.0 - 1.0);   /* uniform in [-1, 1) */
        float v = is_norm ? 1.0f + 0.1f * u : 0.0346f * u;
        if (e->dtype == OLLM__U8) ((uint8_t *)p)[i] = (uint8_t)(scales ? 118 + (z >> 40) % 5 : (z >> 40) & 255);
        else if (e->dtype == OLLM__BF16) ((uint16_t *)p)[i] = ollm__f32_to_bf16(v);
        else ((float *)p)[i] = v;
    }
}

int main(int argc, char **argv) {
    ollm_model *m; char *text; size_t len; char path[4096]; int i, s, n_shards = 1; uint64_t shard_max = 5000000000ull;
    uint64_t cur = 0; FILE *idx;
    if (argc < 3) { fprintf(stderr, "usage: make_random_checkpoint CONFIG.json OUT_DIR [--seed N] [--shard-gb G]\n"); return 1; }
    for (i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0) rng = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--shard-gb") == 0) shard_max = (uint64_t)(atof(argv[i + 1]) * 1e9);
    }
    m = (ollm_model *)ollm__calloc(1, sizeof *m);
    if (ollm__read_file(argv[1], 16u << 20, &text, &len) != OLLM_OK) { fprintf(stderr, "cannot read %s\n", argv[1]); return 1; }
    if (ollm__desc_parse(&m->d, &m->fam, text, len, &m->log) != OLLM_OK) { fprintf(stderr, "%s\n", m->log.err); return 1; }
    m->fw = ollm__calloc(1, m->fam->weights_size(&m->d));
    if (!m->fw || m->fam->tensors(m, record) != OLLM_OK) { fprintf(stderr, "out of memory\n"); return 1; }
    /* assign shards in order, each under shard_max */
    for (i = 0, s = 0; i < n_entries; i++) {
        if (cur > 0 && cur + entries[i].bytes > shard_max) { s++; cur = 0; }
        entries[i].shard = s; entries[i].off = cur; cur += entries[i].bytes;
    }
    n_shards = s + 1;
    snprintf(path, sizeof path, "mkdir -p '%s' && cp '%s' '%s/config.json'", argv[2], argv[1], argv[2]);
    if (system(path) != 0) { fprintf(stderr, "cannot create %s\n", argv[2]); return 1; }
    for (s = 0; s < n_shards; s++) {
        size_t hl = 0, cap = 64; unsigned char lb[8]; FILE *f; int first = 1; char *hdr;
        for (i = 0; i < n_entries; i++)   /* the header's room: each entry's name, dtype, shape and offsets */
            if (entries[i].shard == s) cap += strlen(entries[i].name) + 64 + 21 * (size_t)entries[i].ndim + 42;
        if (!(hdr = (char *)malloc(cap + 8))) { fprintf(stderr, "out of memory\n"); return 1; }
        hl += (size_t)snprintf(hdr + hl, cap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (i = 0; i < n_entries; i++) {
            if (entries[i].shard != s) continue;
            int d;
            hl += (size_t)snprintf(hdr + hl, cap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", entries[i].name,
                                   ollm__dtype_names[entries[i].dtype]);
            for (d = 0; d < entries[i].ndim; d++)
                hl += (size_t)snprintf(hdr + hl, cap - hl, "%s%lld", d ? "," : "", (long long)entries[i].shape[d]);
            hl += (size_t)snprintf(hdr + hl, cap - hl, "],\"data_offsets\":[%llu,%llu]}",
                                   (unsigned long long)entries[i].off, (unsigned long long)(entries[i].off + entries[i].bytes));
            first = 0;
        }
        (void)first;
        hdr[hl++] = '}';
        while (hl % 8) hdr[hl++] = ' ';
        for (i = 0; i < 8; i++) lb[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        if (n_shards == 1) snprintf(path, sizeof path, "%s/model.safetensors", argv[2]);
        else snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", argv[2], s + 1, n_shards);
        if (!(f = fopen(path, "wb"))) { fprintf(stderr, "cannot write %s\n", path); return 1; }
        fwrite(lb, 1, 8, f); fwrite(hdr, 1, hl, f);
        for (i = 0; i < n_entries; i++) {
            size_t es = ollm__dtype_size[entries[i].dtype]; uint64_t n = entries[i].bytes / es, done = 0;
            static float buf[1 << 20];
            if (entries[i].shard != s) continue;
            while (done < n) {
                uint64_t k = n - done < (1 << 20) ? n - done : (1 << 20);
                fill(buf, k, &entries[i]);
                if (fwrite(buf, es, (size_t)k, f) != (size_t)k) { fprintf(stderr, "write failed: %s\n", path); return 1; }
                done += k;
            }
        }
        if (fclose(f) != 0) { fprintf(stderr, "write failed: %s\n", path); return 1; }
        fprintf(stderr, "wrote %s\n", path);
        free(hdr);
    }
    if (n_shards > 1) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", argv[2]);
        idx = fopen(path, "w");
        fprintf(idx, "{\"metadata\":{},\"weight_map\":{");
        for (i = 0; i < n_entries; i++)
            fprintf(idx, "%s\"%s\":\"model-%05d-of-%05d.safetensors\"", i ? "," : "", entries[i].name, entries[i].shard + 1, n_shards);
        fprintf(idx, "}}\n");
        fclose(idx);
    }
    free(entries); free(m->fw); free(m); free(text);
    return 0;
}
