/* The CPU backend as a device, for tests: set ollm__backend_hook = staged_backend before opening a model. Its buffers
   are then not host memory to the library (host = 0): weights are copied into its allocations, layers stream through
   upload slots under staged_budget (0: no budget), experts go through the expert cache, and the "async" uploads are
   copies made at once. So the GPU's host-side paths (tiers, expert cache, guesses, disk read-ahead) run against the
   CPU reference without a GPU. Include after ollm.h with OLLM_IMPLEMENTATION. */
#include <stdlib.h>
#include <string.h>
static uint64_t staged_budget;
/* An upload "lands" (slot_ready) once the clock has moved on since, and the clock moves at each poll of a read back,
   which is done at its second poll: so the paced guesses see chunks in flight; guessed chunks are smaller than the
   fixtures' experts. */
static uint64_t staged_fly[OLLM__SLOTS], staged_clock;
static int staged_read_polls;
static ollm_result staged_upload_async(ollm__backend *b, int k, ollm__buf dst, const void *src, uint64_t n) {
    if (k >= 0 && k < OLLM__SLOTS) staged_fly[k] = staged_clock + 1;
    return b->upload(b, dst, src, n);
}
static int staged_slot_ready(ollm__backend *b, int k) {
    (void)b;
    return k < 0 || k >= OLLM__SLOTS || staged_clock >= staged_fly[k];
}
static ollm__buf staged_read_src;
static ollm_result staged_read_start(ollm__backend *b, ollm__buf src, uint64_t n) {
    (void)b; (void)n; staged_read_src = src; staged_read_polls = 1; return OLLM_OK;
}
static ollm_result staged_read_poll(ollm__backend *b, void *dst, uint64_t n, int wait, int *done) {
    *done = 0; staged_clock++;
    if (!wait && staged_read_polls-- > 0) return OLLM_OK;
    *done = 1;
    return b->download(b, dst, staged_read_src, n);
}
static ollm_result staged_slot(ollm__backend *b, int k) { (void)b; (void)k; return OLLM_OK; }
static void *staged_host_alloc(ollm__backend *b, uint64_t n) { (void)b; return malloc((size_t)n); }
static void staged_host_free(ollm__backend *b, void *p) { (void)b; free(p); }
static void staged_backend(ollm__backend *b) {
    if (strcmp(b->name, "cpu") != 0) return;
    b->host = 0; b->upload_async = staged_upload_async; b->mem_budget = staged_budget;
    b->slot_wait = staged_slot; b->slot_release = staged_slot; b->slot_sync = staged_slot;
    b->host_alloc = staged_host_alloc; b->host_free = staged_host_free;   /* "pinned" memory: the disk read-ahead's */
    b->slot_ready = staged_slot_ready; b->read_start = staged_read_start; b->read_poll = staged_read_poll;
    ollm__guess_chunk = 1024;
}
