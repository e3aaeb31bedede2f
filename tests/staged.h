/* The CPU backend as a device, for tests: set ollm__backend_hook = staged_backend before opening a model. Its buffers
   are then not host memory to the library (host = 0): weights are copied into its allocations, layers stream through
   upload slots under staged_budget (0: no budget), experts go through the expert cache, and the "async" uploads are
   copies made at once. So the GPU's host-side paths (tiers, expert cache, guesses, disk read-ahead) run against the
   CPU reference without a GPU. Include after ollm.h with OLLM_IMPLEMENTATION. */
#include <stdlib.h>
#include <string.h>
static uint64_t staged_budget;
static ollm_result staged_upload_async(ollm__backend *b, int k, ollm__buf dst, const void *src, uint64_t n) {
    (void)k; return b->upload(b, dst, src, n);
}
static ollm_result staged_slot(ollm__backend *b, int k) { (void)b; (void)k; return OLLM_OK; }
static void *staged_host_alloc(ollm__backend *b, uint64_t n) { (void)b; return malloc((size_t)n); }
static void staged_host_free(ollm__backend *b, void *p) { (void)b; free(p); }
static void staged_backend(ollm__backend *b) {
    if (strcmp(b->name, "cpu") != 0) return;
    b->host = 0; b->upload_async = staged_upload_async; b->mem_budget = staged_budget;
    b->slot_wait = staged_slot; b->slot_release = staged_slot; b->slot_sync = staged_slot;
    b->host_alloc = staged_host_alloc; b->host_free = staged_host_free;   /* "pinned" memory: the disk read-ahead's */
}
