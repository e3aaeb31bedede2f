/* tests/test_cuda_compile.c: CI, no GPU needed. Compiles every kernel of kernels.cu.inc with NVRTC for sm_80, sm_86,
   sm_89, sm_90 and sm_90a (what an sm_90 GPU builds: it has wgmma) and exercises the CUBIN cache: a miss publishes
   an entry, the next build hits it, a corrupt or truncated entry and one written for another key are detected and
   rebuilt, an unusable cache folder is only an INFO line, NVRTC errors come back with the compiler's log, and
   without a driver the backend says why.
   Build: cc -O1 tests/test_cuda_compile.c -lm -lpthread -ldl.  No NVRTC on the machine: "skipped: no NVRTC". */
#define OLLM_IMPLEMENTATION
#include "../ollm.h"
#include <sys/wait.h>

#ifdef __cplusplus
extern "C"
#endif
const char *__lsan_default_suppressions(void);
/* NVRTC keeps a buffer of its own until exit; LeakSanitizer (tests/run.sh builds with ASan) would report it */
const char *__lsan_default_suppressions(void) { return "leak:libnvrtc\n"; }

static int pass, fail;
#define CHECK(c, what) ((c) ? (void)pass++ : (void)(fail++, printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, what)))

static int n_info, n_error;
static void on_log(void *user, ollm_log_level level, const char *msg) {
    (void)user;
    if (level == OLLM_LOG_INFO) n_info++;
    if (level == OLLM_LOG_ERROR) n_error++;
    if (getenv("OLLM_TEST_VERBOSE")) fprintf(stderr, "[%d] %s\n", (int)level, msg);
}

static int flip_byte(const char *path, long off) {   /* off < 0: from the end */
    FILE *f = fopen(path, "r+b"); int ch;
    if (!f) return 0;
    if (fseek(f, off, off < 0 ? SEEK_END : SEEK_SET) != 0 || (ch = fgetc(f)) == EOF) { fclose(f); return 0; }
    fseek(f, -1, SEEK_CUR); fputc(ch ^ 0x5a, f); fclose(f);
    return 1;
}

static int reap_ok(void) {   /* waits for a child: it exited with status 0 */
    int st;
    return wait(&st) >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void) {
    static const char *const archs[] = { "sm_80", "sm_86", "sm_89", "sm_90", "sm_90a" };   /* Hopper builds sm_90a */
    char dir[] = "/tmp/ollm-test-cache-XXXXXX", path[4200], path2[4200], err[1024], cmd[4300];
    ollm__nvrtc nv; ollm__log lg; void *cubin = NULL; size_t n = 0; int how, i, nk;
    ollm_result r;
    memset(&lg, 0, sizeof lg); lg.fn = on_log;
    if (!ollm__nvrtc_load(&nv, NULL, err, sizeof err)) {
        printf("skipped: no NVRTC (%s)\n0 passed, 0 failed\n", err);
        return 0;
    }
    printf("NVRTC %d.%d from %s; %d kernels\n", nv.major, nv.minor, nv.path, OLLM__K_COUNT);
    (void)dlopen(nv.path, RTLD_NOW | RTLD_LOCAL);   /* stays loaded, so leak reports can name it (suppressed) */
    if (!mkdtemp(dir)) { printf("FAIL: mkdtemp\n1 passed, 1 failed\n"); return 1; }

    /* every kernel, every architecture, through the public entry point (ollm kernels --arch ...): one child process
       an architecture, as many at once as there are cores (NVRTC compiles on one thread), into the one cache folder */
    {
        long cores = sysconf(_SC_NPROCESSORS_ONLN), running = 0;
        fflush(stdout);
        for (i = 0; i < 5; i++) {
            pid_t pid;
            if (running >= cores && running > 0) { CHECK(reap_ok(), "every kernel compiles for sm_80/86/89/90/90a"); running--; }
            if ((pid = fork()) == 0) {
                double t0 = ollm__now();
                r = ollm_cuda_compile_kernels(archs[i], dir, NULL, &nk, err, sizeof err);
                printf("%s: %s, %d kernels, %.1f s\n", archs[i], ollm_result_string(r), nk, ollm__now() - t0);
                if (r != OLLM_OK) printf("  %s\n", err);
                fflush(stdout);
                _exit(r == OLLM_OK && nk == OLLM__K_COUNT ? 0 : 1);
            }
            if (pid < 0) CHECK(0, "fork a compiling child"); else running++;
        }
        for (; running > 0; running--) CHECK(reap_ok(), "every kernel compiles for sm_80/86/89/90/90a");
    }
    r = ollm_cuda_compile_kernels("compute_90", dir, NULL, &nk, err, sizeof err);
    CHECK(r == OLLM_ERR_INVALID_ARG && strstr(err, "compute_90"), "a virtual architecture is refused (no CUBIN)");

    /* the cache: a hit now for the real kernels (compiled above) */
    r = ollm__cuda_build(&nv, "sm_90", dir, &lg, &cubin, &n, &how, path, sizeof path);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_HIT && n > 0, "second build of sm_90 is a cache hit");
    OLLM_FREE(cubin); cubin = NULL;
    /* the entry's life cycle, on a small program (the same code path, without minutes of compiling) */
#define SMALL ollm__strdup("extern \"C\" __global__ void ollm_k_small(float *x) { x[threadIdx.x] *= 2.0f; }\n")
    r = ollm__cuda_build_src(&nv, SMALL, "sm_90", dir, &lg, &cubin, &n, &how, path, sizeof path);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_COMPILED && n > 0, "a new program: compiled and published");
    OLLM_FREE(cubin); cubin = NULL;
    r = ollm__cuda_build_src(&nv, SMALL, "sm_90", dir, &lg, &cubin, &n, &how, NULL, 0);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_HIT, "then a hit");
    OLLM_FREE(cubin); cubin = NULL;
    /* a corrupt byte in the CUBIN: checksum mismatch, rebuilt, then a hit again */
    CHECK(flip_byte(path, -100), "corrupt the cache entry");
    n_info = 0;
    r = ollm__cuda_build_src(&nv, SMALL, "sm_90", dir, &lg, &cubin, &n, &how, NULL, 0);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_BAD && n_info > 0, "a corrupt entry is detected (INFO) and rebuilt");
    OLLM_FREE(cubin); cubin = NULL;
    r = ollm__cuda_build_src(&nv, SMALL, "sm_90", dir, &lg, &cubin, &n, &how, NULL, 0);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_HIT, "the rebuilt entry is a hit");
    OLLM_FREE(cubin); cubin = NULL;
    /* a key that is not ours in the header (another build's file under this name) */
    CHECK(flip_byte(path, (long)offsetof(ollm__cubin_hdr, key)), "rewrite the entry's key");
    r = ollm__cuda_build_src(&nv, SMALL, "sm_90", dir, &lg, &cubin, &n, &how, NULL, 0);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_FOREIGN, "a foreign key is detected and rebuilt");
    OLLM_FREE(cubin); cubin = NULL;
    /* a truncated entry (a torn write from an older version: rename makes them impossible now) */
    snprintf(cmd, sizeof cmd, "truncate -s 100 '%s'", path);
    CHECK(system(cmd) == 0, "truncate the entry");
    r = ollm__cuda_build_src(&nv, SMALL, "sm_90", dir, &lg, &cubin, &n, &how, NULL, 0);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_BAD, "a truncated entry is detected and rebuilt");
    OLLM_FREE(cubin); cubin = NULL;
    r = ollm__cuda_build_src(&nv, SMALL, "sm_90", dir, &lg, &cubin, &n, &how, path2, sizeof path2);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_HIT && strcmp(path, path2) == 0, "hit again, same file");
    OLLM_FREE(cubin); cubin = NULL;
    /* an unusable cache folder (below a regular file: fails even for root) is an INFO line, not an error */
    snprintf(path2, sizeof path2, "%s/not-a-dir", dir);
    { FILE *f = fopen(path2, "w"); if (f) fclose(f); }
    snprintf(path2, sizeof path2, "%s/not-a-dir/cache", dir);
    n_info = 0; n_error = 0;
    r = ollm__cuda_build_src(&nv, SMALL, "sm_86", path2, &lg, &cubin, &n, &how, NULL, 0);
    CHECK(r == OLLM_OK && how == OLLM__CACHE_COMPILED && n > 0 && n_info > 0 && n_error == 0,
          "an unwritable cache folder: compiled anyway, one INFO line, no error");
    OLLM_FREE(cubin); cubin = NULL;
    /* NVRTC errors carry the log */
    r = ollm__nvrtc_compile(&nv, "#line 7 \"kernels.cu.inc\"\nextern \"C\" __global__ void f() { undefined_thing = 1; }\n",
                            "sm_90", &lg, &cubin, &n);
    CHECK(r == OLLM_ERR_DEVICE && strstr(lg.err, "undefined_thing") && strstr(lg.err, "kernels.cu.inc(7)"),
          "a compile error is reported with NVRTC's log and our line numbers");
    /* the cache key moves with the architecture and the source */
    {
        char *src = ollm__kernel_program();
        CHECK(src && ollm__kernel_key(src, "sm_90", &nv) != ollm__kernel_key(src, "sm_89", &nv), "key depends on arch");
        OLLM_FREE(src);
    }
    /* the decode attention's shared memory on each architecture's opt-in limit (sm_80 163 KiB, sm_86/89 99 KiB,
       sm_90 227 KiB): at least 2 stages fit, the blocks an SM holds is what the sizes give, and two blocks share an
       SM wherever a depth allows it */
    {
        static ollm__cu c; static const int optin[] = { 166912, 101376, 232448 }; int a, hd;
        for (a = 0; a < 3; a++)
            for (hd = 64; hd <= 128; hd += 64) {
                unsigned smem = 0; int bps = 0, ns, two = 0, d;
                memset(&c, 0, sizeof c); c.smem_optin = optin[a];
                ns = ollm__cu_dec_stages(&c, hd, &smem, &bps);
                for (d = 2; d <= 4; d++)
                    two |= 2 * (16 * (hd + 8) * 2 + OLLM__DEC_WARPS * d * 2 * 32 * (hd + 8) * 2 + 1024) <= optin[a] + 1024;
                CHECK(ns >= 2 && ns <= 4 && smem <= (unsigned)optin[a] && bps >= 1 &&
                      bps == (optin[a] + 1024) / (int)(smem + 1024) && (!two || bps >= 2),
                      "decode attention: its stages fit the architecture's shared memory");
            }
    }
    /* no driver here (CI): the backend says why and AUTO would fall back */
    {
        ollm_model_config cfg = ollm_model_config_default(); ollm__backend *B = NULL; const char *why = NULL;
        void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        cfg.cache_dir = dir;
        r = ollm__cuda_create(&cfg, &lg, &B, &why);
        if (!h) CHECK(r == OLLM_ERR_NO_DEVICE && why && strstr(why, "libcuda"), "no driver: OLLM_ERR_NO_DEVICE, why names libcuda");
        else {
            printf("(a driver is present: create gave %s%s%s)\n", ollm_result_string(r), why && why[0] ? ": " : "", why ? why : "");
            if (r == OLLM_OK) B->destroy(B);
            dlclose(h);
        }
    }
    ollm__nvrtc_unload(&nv);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("(could not remove %s)\n", dir);
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
}
