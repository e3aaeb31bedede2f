/* libFuzzer harness: session folders (@kvstore ollm__store_open via ollm_session_open with cfg.dir). The tiny
   fixture model tests/fixtures/llama_gqa1 (or $OLLM_FUZZ_MODEL) is opened once. Input: byte 0 holds flags, the rest
   is split at a FUZZ_SEP line into session.hdr and kv.bin. The flags let the fuzzer past the checksums, so that it
   reaches the record replay rather than stopping at the first hash:
     1   stamp this model's fingerprint, layer count, KV row size and vocab into the header
     2   recompute the header's logits hash          4   recompute the header hash (done last)
     8   recompute every record's payload hash and header hash, walking kv.bin as the replay does
     16  max_context 16 (else the default, 256)       32  set the header's log_bytes to kv.bin's size
     64  on success, prefill a token, generate two, rewind: commits into the resumed folder
     128 a mixture-of-experts fixture instead, picked by byte 1's bit 0 (0: tests/fixtures/gptoss_mxfp4, whose
         sliding layers then keep rings of window + 4 g - 1 rows: prefill chunks of 4, g = 1 + bits 1-2 of byte 1 of
         them a pass; 1: tests/fixtures/qwen3next_new, whose recurrent state is rebuilt from the records); the
         folder's files follow byte 1
   fsync is compiled out (a no-op) here: it costs milliseconds per commit and is not what is under test. */
#define _GNU_SOURCE
#include <unistd.h>
#define fsync(fd) ((void)(fd), 0)
#define OLLM_IMPLEMENTATION
#include "../../ollm.h"
#include "fuzz_common.h"

static ollm_model *models[3], *model;   /* the Llama fixture (or $OLLM_FUZZ_MODEL), GPT-OSS, Qwen3-Next */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dirs[3] = { getenv("OLLM_FUZZ_MODEL"), "tests/fixtures/gptoss_mxfp4", "tests/fixtures/qwen3next_new" };
    ollm_model_config cfg = ollm_model_config_default(); int i;
    (void)argc; (void)argv;
    if (!dirs[0]) dirs[0] = "tests/fixtures/llama_gqa1";
    cfg.backend = OLLM_BACKEND_CPU; cfg.threads = 1;
    for (i = 0; i < 3; i++)
        if (ollm_model_open(dirs[i], &cfg, &models[i]) != OLLM_OK) {
            fprintf(stderr, "fuzz_session: cannot open %s: %s (run from the repository root)\n", dirs[i],
                    ollm_model_last_error(models[i]));
            exit(1);
        }
    return 0;
}

static void put_hdr_hashes(uint8_t *hdr, size_t n, int flags) {
    ollm__kv_hdr h;
    if (n < sizeof h) return;
    memcpy(&h, hdr, sizeof h);
    if (flags & 1) {
        h.fingerprint = model->fingerprint; h.n_layers = (uint32_t)model->d.n_layers; h.vocab = (uint32_t)model->d.vocab;
        h.kv_row_bytes = (uint32_t)((uint64_t)model->d.n_kv_heads * model->d.head_dim * model->B->kv_elem);
    }
    if ((flags & 2) && n >= sizeof h + (size_t)model->d.vocab * 4)
        h.logits_hash = ollm__fnv1a64(OLLM__FNV_INIT, hdr + sizeof h, (size_t)model->d.vocab * 4);
    if (flags & 4) h.hash = ollm__fnv1a64(OLLM__FNV_INIT, &h, offsetof(ollm__kv_hdr, hash));
    memcpy(hdr, &h, sizeof h);
}
static void put_rec_hashes(uint8_t *kv, size_t n) {
    uint64_t off = 0; ollm__kv_rec rec;
    while (n - off >= sizeof rec) {
        memcpy(&rec, kv + off, sizeof rec);
        if (rec.payload_bytes > n - off - sizeof rec) break;
        rec.payload_hash = ollm__fnv1a64(OLLM__FNV_INIT, kv + off + sizeof rec, (size_t)rec.payload_bytes);
        rec.hash = ollm__fnv1a64(OLLM__FNV_INIT, &rec, offsetof(ollm__kv_rec, hash));
        memcpy(kv + off, &rec, sizeof rec);
        off += sizeof rec + rec.payload_bytes;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_part parts[FUZZ_MAX_PARTS]; int n, flags; const char *dir; uint8_t *hdr, *kv; size_t hn, kn;
    ollm_session_config sc = ollm_session_config_default(); ollm_session *s = NULL; ollm_result r;
    if (size < 1) return 0;
    flags = data[0]; data++; size--;
    model = models[0];
    if (flags & 128) {
        if (size < 1) return 0;
        model = models[1 + (data[0] & 1)];
        sc.prefill_chunk = 4; sc.prefill_group = 1 + ((data[0] >> 1) & 3);   /* rings sized for 1..4 chunks a pass */
        data++; size--;
    }
    n = fuzz_split(data, size, parts);
    hn = parts[0].n; kn = n > 1 ? parts[1].n : 0;
    hdr = (uint8_t *)malloc(hn + 1); kv = (uint8_t *)malloc(kn + 1);
    memcpy(hdr, parts[0].p, hn); if (kn) memcpy(kv, parts[1].p, kn);
    if (flags & 8) put_rec_hashes(kv, kn);
    if ((flags & 32) && hn >= sizeof(ollm__kv_hdr)) { uint64_t lb = kn; memcpy(hdr + offsetof(ollm__kv_hdr, log_bytes), &lb, 8); }
    put_hdr_hashes(hdr, hn, flags);
    dir = fuzz_subdir("session");
    fuzz_write(dir, "session.hdr", hdr, hn);
    if (n > 1) fuzz_write(dir, "kv.bin", kv, kn);
    free(hdr); free(kv);
    sc.dir = dir; sc.max_context = flags & 16 ? 16 : 0;
    model->log.err[0] = 0;
    r = ollm_session_open(model, &sc, &s);
    fuzz_say("session", r == OLLM_OK ? "" : model->log.err);
    if (r == OLLM_OK) {
        size_t len = ollm_session_length(s), i;
        FUZZ_CHECK(s != NULL && len <= (size_t)s->n_ctx);
        for (i = 0; i < len; i++) FUZZ_CHECK(s->tokens[i] >= 0 && s->tokens[i] < model->d.vocab);
        if (flags & 64) {
            int32_t id = 1; ollm_generate_config g = ollm_generate_config_default(); int32_t out[4]; size_t got = 0;
            g.max_tokens = 2; g.ignore_eos = 1;
            if (ollm_session_prefill(s, &id, 1, NULL) == OLLM_OK) {
                FUZZ_CHECK(ollm_session_logits(s) != NULL);
                r = ollm_session_generate(s, &g, out, 4, &got);
                FUZZ_CHECK(r == OLLM_OK || r == OLLM_ERR_CONTEXT_FULL);
                FUZZ_CHECK(ollm_session_rewind(s, len) == OLLM_OK);
            } else FUZZ_CHECK(len + 1 > (size_t)s->n_ctx);
        }
        ollm_session_close(s);
    } else {
        FUZZ_CHECK(s == NULL && model->log.err[0] != 0);
    }
    return 0;
}
