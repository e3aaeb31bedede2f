/* libFuzzer harness: the JSON parser (@json). Parses the input, then walks every node and checks the tree's
   invariants (children in document order, counts, keys only in objects, strings NUL-terminated in the arena).
   Build: clang -g -O1 -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_json.c -lm -lpthread -ldl */
#define OLLM_IMPLEMENTATION
#include "../../ollm.h"
#include "fuzz_common.h"

static uint32_t walk(const ollm__json *j, uint32_t id, int depth) {
    const ollm__jnode *v = &j->v[id]; uint32_t c, count = 0, last = id;
    FUZZ_CHECK(id > 0 && id < j->n);
    FUZZ_CHECK(v->type >= OLLM__J_NULL && v->type <= OLLM__J_OBJ);
    FUZZ_CHECK(depth <= OLLM__JSON_MAX_DEPTH + 1);
    if (v->type == OLLM__J_STR) {
        FUZZ_CHECK(v->s >= j->arena && v->s + v->len < j->arena + j->src_len + 1);
        FUZZ_CHECK(v->s[v->len] == 0);
    }
    if (v->type == OLLM__J_ARR || v->type == OLLM__J_OBJ) {
        for (c = ollm__json_first(j, id); c; c = ollm__json_next(j, c)) {
            FUZZ_CHECK(c > last);                      /* document order */
            if (v->type == OLLM__J_OBJ) {
                char key[64];
                FUZZ_CHECK(j->v[c].key != NULL && j->v[c].key[j->v[c].key_len] == 0);
                /* a lookup by this key finds this member or a later duplicate */
                if (j->v[c].key_len < sizeof key && strlen(j->v[c].key) == j->v[c].key_len) {
                    uint32_t g;
                    memcpy(key, j->v[c].key, j->v[c].key_len + 1);
                    g = ollm__json_get(j, id, key);
                    FUZZ_CHECK(g >= c);
                }
            } else FUZZ_CHECK(j->v[c].key == NULL);
            last = walk(j, c, depth + 1);
            count++;
        }
        FUZZ_CHECK(count == v->n);
    }
    return last;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ollm__json j;
    if (ollm__json_parse(&j, (const char *)data, size)) {
        uint32_t last = walk(&j, 1, 0);
        FUZZ_CHECK(last == j.n - 1);                   /* every node is reachable from the root */
        FUZZ_CHECK(ollm__json_get(&j, 1, "model_type") < j.n);
        FUZZ_CHECK(ollm__json_get(&j, 0, "x") == 0 && ollm__json_first(&j, 0) == 0 && ollm__json_next(&j, 0) == 0);
    } else {
        FUZZ_CHECK(j.err[0] != 0);
    }
    ollm__json_free(&j);
    return 0;
}
