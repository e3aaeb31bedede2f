/* ==== @cuda ==== Driver API and NVRTC loaded at run time; kernels from kernels.cu.inc =====================
   libcuda.so.1 and NVRTC are dlopen'ed, so building needs no CUDA toolkit and no -lcuda. The few prototypes used are
   declared here with our own prefixed types (versioned symbols as cuda.h of CUDA 12.x and 13.0 maps them; no
   cuCtxCreate: the primary context). NVRTC compiles kernels.cu.inc for the device's exact sm_XY into a CUBIN, which
   is cached on disk under a key of everything that went into the compile. All device memory comes from one
   accounted allocator with a hard budget. Every op is asynchronous on one stream; download and sync wait. */

#if defined(__GNUC__)
#  define OLLM__TLS __thread
#else
#  define OLLM__TLS
#endif

typedef int ollm__cu_result;                 /* CUresult: 0 = CUDA_SUCCESS */
typedef int ollm__cu_device;
typedef struct ollm__cu_ctx_st *ollm__cu_context;
typedef struct ollm__cu_mod_st *ollm__cu_module;
typedef struct ollm__cu_func_st *ollm__cu_function;
typedef struct ollm__cu_stream_st *ollm__cu_stream;
typedef struct ollm__cu_event_st *ollm__cu_event;
typedef unsigned long long ollm__cu_ptr;     /* CUdeviceptr (64-bit) */

enum {   /* the CUDA enum values used here (cuda.h) */
    OLLM__CU_ATTR_MULTIPROCESSOR_COUNT = 16, OLLM__CU_ATTR_CC_MAJOR = 75, OLLM__CU_ATTR_CC_MINOR = 76,
    OLLM__CU_ATTR_SMEM_OPTIN = 97, OLLM__CU_FUNC_MAX_DYNAMIC_SMEM = 8, OLLM__CU_STREAM_NON_BLOCKING = 1,
    OLLM__CU_ERROR_OUT_OF_MEMORY = 2
};

/* The Driver API table: field, symbol (what cuda.h maps the name to in 12.x and 13.0), arguments. */
#define OLLM__CU_FUNCS(X) \
    X(cuInit,                    "cuInit",                       (unsigned flags)) \
    X(cuDriverGetVersion,        "cuDriverGetVersion",           (int *version)) \
    X(cuGetErrorName,            "cuGetErrorName",               (ollm__cu_result e, const char **name)) \
    X(cuDeviceGetCount,          "cuDeviceGetCount",             (int *n)) \
    X(cuDeviceGet,               "cuDeviceGet",                  (ollm__cu_device *dev, int ordinal)) \
    X(cuDeviceGetName,           "cuDeviceGetName",              (char *name, int len, ollm__cu_device dev)) \
    X(cuDeviceGetAttribute,      "cuDeviceGetAttribute",         (int *v, int attrib, ollm__cu_device dev)) \
    X(cuDevicePrimaryCtxRetain,  "cuDevicePrimaryCtxRetain",     (ollm__cu_context *ctx, ollm__cu_device dev)) \
    X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", (ollm__cu_device dev)) \
    X(cuCtxSetCurrent,           "cuCtxSetCurrent",              (ollm__cu_context ctx)) \
    X(cuMemGetInfo,              "cuMemGetInfo_v2",              (size_t *free_bytes, size_t *total_bytes)) \
    X(cuMemAlloc,                "cuMemAlloc_v2",                (ollm__cu_ptr *p, size_t bytes)) \
    X(cuMemFree,                 "cuMemFree_v2",                 (ollm__cu_ptr p)) \
    X(cuMemHostAlloc,            "cuMemHostAlloc",               (void **p, size_t bytes, unsigned flags)) \
    X(cuMemFreeHost,             "cuMemFreeHost",                (void *p)) \
    X(cuMemcpyHtoDAsync,         "cuMemcpyHtoDAsync_v2",         (ollm__cu_ptr d, const void *h, size_t n, ollm__cu_stream s)) \
    X(cuMemcpyDtoHAsync,         "cuMemcpyDtoHAsync_v2",         (void *h, ollm__cu_ptr d, size_t n, ollm__cu_stream s)) \
    X(cuMemcpyDtoDAsync,         "cuMemcpyDtoDAsync_v2",         (ollm__cu_ptr d, ollm__cu_ptr s_, size_t n, ollm__cu_stream s)) \
    X(cuMemsetD8Async,           "cuMemsetD8Async",              (ollm__cu_ptr d, unsigned char v, size_t n, ollm__cu_stream s)) \
    X(cuStreamCreate,            "cuStreamCreate",               (ollm__cu_stream *s, unsigned flags)) \
    X(cuStreamDestroy,           "cuStreamDestroy_v2",           (ollm__cu_stream s)) \
    X(cuStreamSynchronize,       "cuStreamSynchronize",          (ollm__cu_stream s)) \
    X(cuStreamWaitEvent,         "cuStreamWaitEvent",            (ollm__cu_stream s, ollm__cu_event e, unsigned flags)) \
    X(cuEventCreate,             "cuEventCreate",                (ollm__cu_event *e, unsigned flags)) \
    X(cuEventRecord,             "cuEventRecord",                (ollm__cu_event e, ollm__cu_stream s)) \
    X(cuEventSynchronize,        "cuEventSynchronize",           (ollm__cu_event e)) \
    X(cuEventDestroy,            "cuEventDestroy_v2",            (ollm__cu_event e)) \
    X(cuModuleLoadData,          "cuModuleLoadData",             (ollm__cu_module *m, const void *image)) \
    X(cuModuleUnload,            "cuModuleUnload",               (ollm__cu_module m)) \
    X(cuModuleGetFunction,       "cuModuleGetFunction",          (ollm__cu_function *f, ollm__cu_module m, const char *name)) \
    X(cuFuncSetAttribute,        "cuFuncSetAttribute",           (ollm__cu_function f, int attrib, int value)) \
    X(cuLaunchKernel,            "cuLaunchKernel",               (ollm__cu_function f, unsigned gx, unsigned gy, \
        unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned smem, ollm__cu_stream s, void **params, void **extra))
/* cuEventElapsedTime is cuEventElapsedTime_v2 in 13.0 and plain in 12.x (same arguments): looked up apart. */
#define OLLM__CU_FIELD(fn, sym, args) ollm__cu_result (*fn) args;
typedef struct ollm__cuda {
    void *lib;
    OLLM__CU_FUNCS(OLLM__CU_FIELD)
    ollm__cu_result (*cuEventElapsedTime)(float *ms, ollm__cu_event a, ollm__cu_event b);
} ollm__cuda;

/* NVRTC (nvrtc.h): every function returns nvrtcResult (0 = success) but nvrtcGetErrorString. */
typedef struct ollm__nvrtc_prog_st *ollm__nvrtc_prog;
#define OLLM__NVRTC_FUNCS(X) \
    X(nvrtcVersion,           (int *major, int *minor)) \
    X(nvrtcCreateProgram,     (ollm__nvrtc_prog *p, const char *src, const char *name, int n_headers, \
                               const char *const *headers, const char *const *include_names)) \
    X(nvrtcDestroyProgram,    (ollm__nvrtc_prog *p)) \
    X(nvrtcCompileProgram,    (ollm__nvrtc_prog p, int n_options, const char *const *options)) \
    X(nvrtcGetProgramLogSize, (ollm__nvrtc_prog p, size_t *n)) \
    X(nvrtcGetProgramLog,     (ollm__nvrtc_prog p, char *log)) \
    X(nvrtcGetCUBINSize,      (ollm__nvrtc_prog p, size_t *n)) \
    X(nvrtcGetCUBIN,          (ollm__nvrtc_prog p, char *cubin))
#define OLLM__NVRTC_FIELD(fn, args) int (*fn) args;
typedef struct ollm__nvrtc {
    void *lib;
    int major, minor;
    char path[256];
    OLLM__NVRTC_FUNCS(OLLM__NVRTC_FIELD)
    const char *(*nvrtcGetErrorString)(int r);
} ollm__nvrtc;

/* ---- the kernel table, from kernels.cu.inc (when merged into ollm.h: #include "kernels.cu.inc") ---- */
#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Woverlength-strings"   /* ISO C promises 4,095 chars per literal; GCC takes more */
#endif
#define OLLM__PRELUDE(line, text)
#define OLLM__KERNEL(op, line, text) OLLM__K_##op,
enum {
#include "../kernels.cu.inc"
    OLLM__K_COUNT
};
#undef OLLM__KERNEL
#define OLLM__KERNEL(op, line, text) "ollm_k_" #op,
static const char *const ollm__knames[OLLM__K_COUNT] = {
#include "../kernels.cu.inc"
};
#undef OLLM__PRELUDE
#undef OLLM__KERNEL
typedef struct ollm__kpiece { int line; const char *text; } ollm__kpiece;
#define OLLM__PRELUDE(line, text) { line, text },
#define OLLM__KERNEL(op, line, text) { line, text },
static const ollm__kpiece ollm__kpieces[] = {
#include "../kernels.cu.inc"
};
#undef OLLM__PRELUDE
#undef OLLM__KERNEL
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif

/* ---- loading the libraries ---- */

static OLLM__TLS char ollm__cu_why[1024];   /* *why of ollm__cuda_create when it has details to give */

static void *ollm__dlopen_any(const char *const *names, int n, char *tried, size_t cap) {
    int i;
    for (i = 0; i < n; i++) {
        void *h;
        if (!names[i] || !names[i][0]) continue;
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        if (tried && strlen(tried) + strlen(names[i]) + 3 < cap) {
            if (tried[0]) strcat(tried, ", ");
            strcat(tried, names[i]);
        }
    }
    return NULL;
}

/* NVRTC: `first` (cfg->nvrtc_path), $OLLM_NVRTC, the sonames CUDA 13/12/11.2 ship, then lib64 of each /usr/local/cuda folder. */
static int ollm__nvrtc_load(ollm__nvrtc *nv, const char *first, char *err, size_t cap) {
    static const char *const sonames[] = { "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so" };
    char tried[1024] = "", names[48][256]; const char *list[48]; int n = 0, i; void *p;
    DIR *dir;
    memset(nv, 0, sizeof *nv);
    if (first && first[0]) snprintf(names[n], 256, "%s", first), list[n] = names[n], n++;
    if (getenv("OLLM_NVRTC") && getenv("OLLM_NVRTC")[0]) snprintf(names[n], 256, "%s", getenv("OLLM_NVRTC")), list[n] = names[n], n++;
    for (i = 0; i < 4; i++) list[n++] = sonames[i];
    if ((dir = opendir("/usr/local")) != NULL) {   /* /usr/local/cuda, /usr/local/cuda-13.0, ... */
        struct dirent *e; char cands[8][64]; int nc = 0, j;
        while ((e = readdir(dir)) != NULL && nc < 8)
            if (strncmp(e->d_name, "cuda", 4) == 0 && strlen(e->d_name) < 48) snprintf(cands[nc++], 64, "%.60s", e->d_name);
        closedir(dir);
        for (j = 0; j < nc; j++) if (strcmp(cands[j], "cuda") == 0) { char t[64]; memcpy(t, cands[0], 64); memcpy(cands[0], cands[j], 64); memcpy(cands[j], t, 64); }
        for (j = 0; j < nc && n + 4 <= 48; j++)
            for (i = 0; i < 4; i++) {
                snprintf(names[n], 256, "/usr/local/%.60s/lib64/%s", cands[j], sonames[i]);
                list[n] = names[n]; n++;
            }
    }
    nv->lib = ollm__dlopen_any(list, n, tried, sizeof tried);
    if (!nv->lib) { snprintf(err, cap, "NVRTC not found (tried %s); set OLLM_NVRTC or nvrtc_path", tried); return 0; }
#define OLLM__NVRTC_LOAD(fn, args) \
    if (!(p = dlsym(nv->lib, #fn))) { snprintf(err, cap, "NVRTC library lacks %s", #fn); dlclose(nv->lib); nv->lib = NULL; return 0; } \
    memcpy(&nv->fn, &p, sizeof p);   /* memcpy: ISO C has no void* to function pointer conversion */
    OLLM__NVRTC_FUNCS(OLLM__NVRTC_LOAD)
#undef OLLM__NVRTC_LOAD
    if (!(p = dlsym(nv->lib, "nvrtcGetErrorString"))) { snprintf(err, cap, "NVRTC library lacks nvrtcGetErrorString"); dlclose(nv->lib); nv->lib = NULL; return 0; }
    memcpy(&nv->nvrtcGetErrorString, &p, sizeof p);
    if (nv->nvrtcVersion(&nv->major, &nv->minor) != 0) { snprintf(err, cap, "nvrtcVersion failed"); dlclose(nv->lib); nv->lib = NULL; return 0; }
    {
        Dl_info info;   /* which file the loader picked, for the log */
        memcpy(&p, &nv->nvrtcVersion, sizeof p);
        snprintf(nv->path, sizeof nv->path, "%s", dladdr(p, &info) && info.dli_fname ? info.dli_fname : "libnvrtc");
    }
    return 1;
}
static void ollm__nvrtc_unload(ollm__nvrtc *nv) { if (nv->lib) dlclose(nv->lib); nv->lib = NULL; }

static int ollm__cuda_load(ollm__cuda *cu, char *err, size_t cap) {
    static const char *const names[] = { "libcuda.so.1" };   /* not bare libcuda.so: that may be the toolkit's stub */
    void *p;
    memset(cu, 0, sizeof *cu);
    cu->lib = ollm__dlopen_any(names, 1, NULL, 0);
    if (!cu->lib) { snprintf(err, cap, "no NVIDIA driver (libcuda.so.1 not found)"); return 0; }
#define OLLM__CU_LOAD(fn, sym, args) \
    if (!(p = dlsym(cu->lib, sym))) { snprintf(err, cap, "NVIDIA driver too old: no %s", sym); dlclose(cu->lib); cu->lib = NULL; return 0; } \
    memcpy(&cu->fn, &p, sizeof p);
    OLLM__CU_FUNCS(OLLM__CU_LOAD)
#undef OLLM__CU_LOAD
    if (!(p = dlsym(cu->lib, "cuEventElapsedTime_v2"))) p = dlsym(cu->lib, "cuEventElapsedTime");
    if (p) memcpy(&cu->cuEventElapsedTime, &p, sizeof p);
    return 1;
}

/* ---- compiling kernels.cu.inc, and the CUBIN cache ---- */

/* The whole program: each piece behind a #line that points NVRTC's messages into kernels.cu.inc. */
static char *ollm__kernel_program(void) {
    size_t n = 1, i, off = 0; char *s;
    for (i = 0; i < sizeof ollm__kpieces / sizeof ollm__kpieces[0]; i++) n += strlen(ollm__kpieces[i].text) + 48;
    s = (char *)OLLM_MALLOC(n);
    if (!s) return NULL;
    for (i = 0; i < sizeof ollm__kpieces / sizeof ollm__kpieces[0]; i++) {
        off += (size_t)snprintf(s + off, n - off, "#line %d \"kernels.cu.inc\"\n", ollm__kpieces[i].line + 1);
        off += (size_t)snprintf(s + off, n - off, "%s", ollm__kpieces[i].text);
    }
    return s;
}

static int ollm__arch_ok(const char *arch) {   /* sm_<digits>[a-z]: a real architecture, which gives a CUBIN */
    const char *p;
    if (!arch || strncmp(arch, "sm_", 3) != 0 || !arch[3] || strlen(arch) > 8) return 0;
    for (p = arch + 3; *p >= '0' && *p <= '9'; p++) {}
    return p > arch + 3 && (*p == 0 || (p[0] >= 'a' && p[0] <= 'z' && p[1] == 0));
}

/* Compiles `src` for `arch` into a CUBIN (OLLM_MALLOC'd). The message (with NVRTC's log) goes to lg. */
#define OLLM__NVRTC_NOPT 2
static ollm_result ollm__nvrtc_compile(const ollm__nvrtc *nv, const char *src, const char *arch, ollm__log *lg,
                                       void **cubin, size_t *n) {
    char archopt[32]; const char *opts[OLLM__NVRTC_NOPT]; ollm__nvrtc_prog prog = NULL; int r; size_t logn = 0;
    *cubin = NULL; *n = 0;
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    opts[0] = archopt; opts[1] = "--std=c++17";
    if ((r = nv->nvrtcCreateProgram(&prog, src, "kernels.cu.inc", 0, NULL, NULL)) != 0)
        return ollm__fail(lg, OLLM_ERR_DEVICE, "nvrtcCreateProgram: %s", nv->nvrtcGetErrorString(r));
    r = nv->nvrtcCompileProgram(prog, OLLM__NVRTC_NOPT, opts);
    if (r != 0) {
        char *log = NULL;
        if (nv->nvrtcGetProgramLogSize(prog, &logn) == 0 && logn > 0 && (log = (char *)OLLM_MALLOC(logn + 1)) != NULL) {
            if (nv->nvrtcGetProgramLog(prog, log) != 0) log[0] = 0;
            log[logn] = 0;
        }
        ollm__fail(lg, OLLM_ERR_DEVICE, "NVRTC %d.%d could not compile kernels.cu.inc for %s (%s): %s", nv->major,
                   nv->minor, arch, nv->nvrtcGetErrorString(r), log ? log : "(no log)");
        OLLM_FREE(log);
        nv->nvrtcDestroyProgram(&prog);
        return OLLM_ERR_DEVICE;
    }
    if ((r = nv->nvrtcGetCUBINSize(prog, n)) != 0 || *n == 0 || (*cubin = OLLM_MALLOC(*n)) == NULL ||
        (r = nv->nvrtcGetCUBIN(prog, (char *)*cubin)) != 0) {
        OLLM_FREE(*cubin); *cubin = NULL; nv->nvrtcDestroyProgram(&prog);
        return ollm__fail(lg, r ? OLLM_ERR_DEVICE : OLLM_ERR_NO_MEMORY, "NVRTC gave no CUBIN for %s (%s)", arch,
                          r ? nv->nvrtcGetErrorString(r) : "empty or out of memory");
    }
    nv->nvrtcDestroyProgram(&prog);
    return OLLM_OK;
}

/* Cache entry: this header, then the CUBIN. A file whose magic, key, size or checksum is off is rebuilt. */
typedef struct ollm__cubin_hdr { char magic[8]; uint32_t version, hdr_bytes; uint64_t key, size, checksum; } ollm__cubin_hdr;
#define OLLM__CUBIN_MAGIC "OLLMCUBN"
enum { OLLM__CACHE_COMPILED, OLLM__CACHE_HIT, OLLM__CACHE_BAD, OLLM__CACHE_FOREIGN };   /* what a build found */

static uint64_t ollm__kernel_key(const char *src, const char *arch, const ollm__nvrtc *nv) {
    char ver[32]; uint64_t h = OLLM__FNV_INIT;
    h = ollm__fnv1a64(h, src, strlen(src) + 1);
    h = ollm__fnv1a64(h, arch, strlen(arch) + 1);
    h = ollm__fnv1a64(h, "--std=c++17", 12);   /* the options of ollm__nvrtc_compile besides the arch */
    snprintf(ver, sizeof ver, "nvrtc %d.%d", nv->major, nv->minor);
    return ollm__fnv1a64(h, ver, strlen(ver) + 1);
}

/* The cache folder: dir, else $XDG_CACHE_HOME/ollm, else $HOME/.cache/ollm; created if missing. 0 if none usable. */
static int ollm__cache_dir(const char *dir, char *out, size_t cap) {
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME"); char *p;
    if (dir && dir[0]) snprintf(out, cap, "%s", dir);
    else if (x && x[0] == '/') snprintf(out, cap, "%s/ollm", x);
    else if (home && home[0]) snprintf(out, cap, "%s/.cache/ollm", home);
    else return 0;
    if (strlen(out) + 64 >= cap) return 0;
    for (p = out + 1; *p; p++)   /* mkdir -p */
        if (*p == '/') { *p = 0; mkdir(out, 0755); *p = '/'; }
    mkdir(out, 0755);
    return 1;
}

static int ollm__cache_read(const char *path, uint64_t key, void **cubin, size_t *n) {
    ollm__file f; ollm__cubin_hdr h; void *buf;
    *cubin = NULL; *n = 0;
    if (ollm__file_open(&f, path) != OLLM_OK) return OLLM__CACHE_COMPILED;   /* no entry */
    if (f.size < sizeof h || ollm__pread_all(f.fd, &h, sizeof h, 0) != OLLM_OK || memcmp(h.magic, OLLM__CUBIN_MAGIC, 8) != 0 ||
        h.version != 1 || h.hdr_bytes != sizeof h || h.size != f.size - sizeof h || h.size == 0 || h.size > ((uint64_t)1 << 30)) {
        ollm__file_close(&f); return OLLM__CACHE_BAD;
    }
    if (h.key != key) { ollm__file_close(&f); return OLLM__CACHE_FOREIGN; }
    buf = OLLM_MALLOC((size_t)h.size);
    if (!buf || ollm__pread_all(f.fd, buf, h.size, sizeof h) != OLLM_OK ||
        ollm__fnv1a64(OLLM__FNV_INIT, buf, (size_t)h.size) != h.checksum) {
        OLLM_FREE(buf); ollm__file_close(&f); return OLLM__CACHE_BAD;
    }
    ollm__file_close(&f);
    *cubin = buf; *n = (size_t)h.size;
    return OLLM__CACHE_HIT;
}

/* Publishes an entry atomically: a temporary file (write, fsync, close), then rename. Failure is only an INFO line. */
static void ollm__cache_write(const char *path, uint64_t key, const void *cubin, size_t n, ollm__log *lg) {
    char tmp[4300]; ollm__cubin_hdr h; int fd; const char *what = NULL;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, OLLM__CUBIN_MAGIC, 8); h.version = 1; h.hdr_bytes = sizeof h; h.key = key; h.size = n;
    h.checksum = ollm__fnv1a64(OLLM__FNV_INIT, cubin, n);
    snprintf(tmp, sizeof tmp, "%.4200s.%ld.tmp", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) what = "create";
    else {
        const char *parts[2]; size_t lens[2]; int i;
        parts[0] = (const char *)&h; lens[0] = sizeof h; parts[1] = (const char *)cubin; lens[1] = n;
        for (i = 0; i < 2 && !what; i++) {
            size_t done = 0;
            while (done < lens[i]) {
                ssize_t w = write(fd, parts[i] + done, lens[i] - done);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) { what = "write"; break; }
                done += (size_t)w;
            }
        }
        if (!what && fsync(fd) != 0) what = "fsync";
        if (close(fd) != 0 && !what) what = "close";
        if (!what && rename(tmp, path) != 0) what = "rename";
        if (what) unlink(tmp);
    }
    if (what) ollm__logf(lg, OLLM_LOG_INFO, "kernel cache: cannot %s %s (%s); kernels stay uncached", what,
                         fd < 0 ? tmp : path, strerror(errno));
}

/* The CUBIN for arch: from the cache when a valid entry is there, else compiled (and published). *how: OLLM__CACHE_*;
   path (may be NULL) receives the entry's path, "" when no cache folder is usable. */
static ollm_result ollm__cuda_build_src(const ollm__nvrtc *nv, char *src, const char *arch, const char *cache_dir,
                                        ollm__log *lg, void **cubin, size_t *n, int *how, char *path, size_t path_cap);
static ollm_result ollm__cuda_build(const ollm__nvrtc *nv, const char *arch, const char *cache_dir, ollm__log *lg,
                                    void **cubin, size_t *n, int *how, char *path, size_t path_cap) {
    char *src;
    *cubin = NULL; *n = 0; *how = OLLM__CACHE_COMPILED;
    if (!(src = ollm__kernel_program())) return ollm__fail(lg, OLLM_ERR_NO_MEMORY, "out of memory");
    return ollm__cuda_build_src(nv, src, arch, cache_dir, lg, cubin, n, how, path, path_cap);
}
/* The same for any program text (the tests use a small one); takes ownership of src (OLLM_MALLOC'd). */
static ollm_result ollm__cuda_build_src(const ollm__nvrtc *nv, char *src, const char *arch, const char *cache_dir,
                                        ollm__log *lg, void **cubin, size_t *n, int *how, char *path, size_t path_cap) {
    char dir[4096], file[4200] = ""; uint64_t key; ollm_result r; double t0 = ollm__now();
    *cubin = NULL; *n = 0; *how = OLLM__CACHE_COMPILED;
    if (!ollm__arch_ok(arch)) {
        OLLM_FREE(src);
        return ollm__fail(lg, OLLM_ERR_INVALID_ARG, "kernel arch \"%s\": expected sm_XY (a real GPU; compute_XY gives no "
                          "CUBIN)", arch ? arch : "(null)");
    }
    key = ollm__kernel_key(src, arch, nv);
    if (ollm__cache_dir(cache_dir, dir, sizeof dir)) {
        snprintf(file, sizeof file, "%s/ollm-%016llx-%s.cubin", dir, (unsigned long long)key, arch);
        *how = ollm__cache_read(file, key, cubin, n);
        if (*how == OLLM__CACHE_HIT) {
            OLLM_FREE(src);
            if (path) snprintf(path, path_cap, "%s", file);
            ollm__logf(lg, OLLM_LOG_DEBUG, "kernel cache: %s", file);
            return OLLM_OK;
        }
        if (*how != OLLM__CACHE_COMPILED)
            ollm__logf(lg, OLLM_LOG_INFO, "kernel cache: %s is %s; rebuilding it", file,
                       *how == OLLM__CACHE_BAD ? "corrupt" : "for another build");
    } else ollm__logf(lg, OLLM_LOG_INFO, "kernel cache: no usable folder (cache_dir, $XDG_CACHE_HOME or $HOME); "
                      "kernels stay uncached");
    r = ollm__nvrtc_compile(nv, src, arch, lg, cubin, n);
    OLLM_FREE(src);
    if (r != OLLM_OK) return r;
    ollm__logf(lg, OLLM_LOG_INFO, "compiled the kernels for %s with NVRTC %d.%d in %.1f s (%llu bytes)", arch,
               nv->major, nv->minor, ollm__now() - t0, (unsigned long long)*n);
    if (file[0]) ollm__cache_write(file, key, *cubin, *n, lg);
    if (path) snprintf(path, path_cap, "%s", file);
    return OLLM_OK;
}

static int ollm__bytes_find(const void *hay, size_t n, const char *needle) {   /* memmem, with the NUL */
    size_t m = strlen(needle) + 1, i; const char *h = (const char *)hay;
    for (i = 0; i + m <= n; i++) if (h[i] == needle[0] && memcmp(h + i, needle, m) == 0) return 1;
    return 0;
}

OLLM_API ollm_result ollm_cuda_compile_kernels(const char *arch, const char *cache_dir, const char *nvrtc_path,
                                               int *n_kernels, char *err, size_t err_cap) {
    ollm__nvrtc nv; ollm__log lg; void *cubin = NULL; size_t n = 0; int how, i, found = 0; ollm_result r;
    memset(&lg, 0, sizeof lg);
    if (n_kernels) *n_kernels = 0;
    if (err && err_cap) err[0] = 0;
    if (!ollm__nvrtc_load(&nv, nvrtc_path, lg.err, sizeof lg.err)) {
        if (err && err_cap) snprintf(err, err_cap, "%s", lg.err);
        return OLLM_ERR_NO_DEVICE;
    }
    r = ollm__cuda_build(&nv, arch, cache_dir, &lg, &cubin, &n, &how, NULL, 0);
    if (r == OLLM_OK) {   /* every extern "C" kernel must be in the CUBIN's symbol table */
        for (i = 0; i < OLLM__K_COUNT; i++) {
            if (ollm__bytes_find(cubin, n, ollm__knames[i])) found++;
            else if (r == OLLM_OK) r = ollm__fail(&lg, OLLM_ERR_DEVICE, "the %s CUBIN has no kernel %s", arch, ollm__knames[i]);
        }
    }
    OLLM_FREE(cubin);
    ollm__nvrtc_unload(&nv);
    if (n_kernels) *n_kernels = found;
    if (r != OLLM_OK && err && err_cap) snprintf(err, err_cap, "%s", lg.err);
    return r;
}

/* ---- the backend ---- */

typedef struct ollm__cu {
    ollm__backend b;
    ollm__cuda cu;
    ollm__nvrtc nv;
    ollm__cu_device dev;
    ollm__cu_context ctx;
    ollm__cu_stream st;
    ollm__cu_stream copy_st;          /* weight uploads that overlap compute (created on first use) */
    ollm__cu_event ev_copy[8], ev_done[8];   /* per streaming slot: its upload finished; compute finished with it */
    ollm__cu_module mod;
    ollm__cu_function fn[OLLM__K_COUNT];
    int cc_major, cc_minor, n_sm, smem_optin, have_ctx;
    char arch[16], dev_name[128];
    uint64_t budget, used, peak;
    ollm__cu_result sticky;          /* a sticky CUDA error: every later call fails with sticky_msg */
    char sticky_msg[512];
    ollm__buf ids, abf, part;        /* scratch: token ids, bf16 copy of a matmul input, attention partials */
    uint64_t abf_src, abf_bytes;     /* abf holds bf16(x) for x = [abf_src, + abf_bytes) when abf_valid */
    int abf_valid;
} ollm__cu;

#define OLLM__CU_ALLOC_ALIGN 256u
static uint64_t ollm__cu_round(uint64_t b) { return (b + OLLM__CU_ALLOC_ALIGN - 1) / OLLM__CU_ALLOC_ALIGN * OLLM__CU_ALLOC_ALIGN; }

static int ollm__cu_is_sticky(ollm__cu_result e) {
    /* the context is unusable after these (cuda.h: "the process must be terminated and relaunched") */
    return e == 700 || e == 702 || e == 714 || e == 715 || e == 716 || e == 717 || e == 718 || e == 719 ||
           e == 999 || e == 214 || e == 4 || e == 46;
}
static const char *ollm__cu_errname(ollm__cu *c, ollm__cu_result e) {
    const char *s = NULL;
    if (c->cu.cuGetErrorName(e, &s) != 0 || !s) s = "CUDA_ERROR_UNKNOWN";
    return s;
}
static ollm_result ollm__cu_check(ollm__cu *c, ollm__cu_result e, const char *what) {
    char msg[512];
    if (e == 0) return OLLM_OK;
    snprintf(msg, sizeof msg, "%s: %s (%d)", what, ollm__cu_errname(c, e), e);
    if (ollm__cu_is_sticky(e) && !c->sticky) {
        c->sticky = e;
        snprintf(c->sticky_msg, sizeof c->sticky_msg, "%.440s; the GPU context is unusable, reopen the model", msg);
        return ollm__fail(c->b.log, OLLM_ERR_DEVICE, "%s", c->sticky_msg);
    }
    return ollm__fail(c->b.log, OLLM_ERR_DEVICE, "%s", msg);
}
#define OLLM__CU(c, call) do { ollm_result r_ = ollm__cu_check((c), (c)->cu.call, #call); if (r_ != OLLM_OK) return r_; } while (0)
/* Every op starts here: a sticky error fails it the same way; the context is made current for this thread. */
#define OLLM__CU_ENTER(c) do { \
    if ((c)->sticky) return ollm__fail((c)->b.log, OLLM_ERR_DEVICE, "%s", (c)->sticky_msg); \
    OLLM__CU((c), cuCtxSetCurrent((c)->ctx)); } while (0)

static ollm__cu_ptr ollm__dp(ollm__buf b) { return (ollm__cu_ptr)(uintptr_t)b.ptr; }
static int ollm__al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* A write to [p, p + n) makes a bf16 copy of overlapping memory stale. */
static void ollm__cu_wrote(ollm__cu *c, const void *p, uint64_t n) {
    uint64_t a = (uint64_t)(uintptr_t)p;
    if (c->abf_valid && a < c->abf_src + c->abf_bytes && c->abf_src < a + n) c->abf_valid = 0;
}

/* The one allocator: every device byte is counted against the budget first. */
static ollm_result ollm__cu_alloc(ollm__backend *b, uint64_t bytes, ollm__buf *out) {
    ollm__cu *c = (ollm__cu *)b; ollm__cu_ptr p = 0; uint64_t need = ollm__cu_round(bytes ? bytes : 1);
    ollm__cu_result e;
    out->ptr = NULL; out->bytes = 0;
    OLLM__CU_ENTER(c);
    if (need > c->budget || c->used > c->budget - need)
        return ollm__fail(b->log, OLLM_ERR_BUDGET, "GPU memory budget: %llu bytes (%.1f MiB) requested with %.1f of %.1f "
                          "MiB in use", (unsigned long long)bytes, (double)bytes / 1048576.0, (double)c->used / 1048576.0,
                          (double)c->budget / 1048576.0);
    if ((e = c->cu.cuMemAlloc(&p, (size_t)need)) != 0) {
        if (ollm__cu_is_sticky(e)) return ollm__cu_check(c, e, "cuMemAlloc");
        return ollm__fail(b->log, OLLM_ERR_DEVICE, "cuMemAlloc(%llu bytes): %s (budget %.1f MiB, %.1f MiB used)",
                          (unsigned long long)need, ollm__cu_errname(c, e), (double)c->budget / 1048576.0,
                          (double)c->used / 1048576.0);
    }
    c->used += need;
    if (c->used > c->peak) c->peak = c->b.mem_peak = c->used;
    out->ptr = (void *)(uintptr_t)p; out->bytes = bytes;
    return OLLM_OK;
}
static void ollm__cu_release(ollm__backend *b, ollm__buf *buf) {
    ollm__cu *c = (ollm__cu *)b;
    if (!buf->ptr) return;
    ollm__cu_wrote(c, buf->ptr, buf->bytes);
    if (!c->sticky) {
        c->cu.cuCtxSetCurrent(c->ctx);
        c->cu.cuStreamSynchronize(c->st);   /* no kernel still using it */
        if (c->copy_st) c->cu.cuStreamSynchronize(c->copy_st);   /* and no upload into it */
        c->cu.cuMemFree(ollm__dp(*buf));
    }
    c->used -= ollm__cu_round(buf->bytes ? buf->bytes : 1);
    buf->ptr = NULL; buf->bytes = 0;
}
/* Scratch that grows on demand (and counts against the budget like everything else). */
static ollm_result ollm__cu_scratch(ollm__cu *c, ollm__buf *s, uint64_t bytes) {
    if (s->ptr && s->bytes >= bytes) return OLLM_OK;
    if (s == &c->abf) c->abf_valid = 0;
    ollm__cu_release(&c->b, s);
    return ollm__cu_alloc(&c->b, (bytes + 0xfffff) & ~(uint64_t)0xfffff, s);
}

/* Page-locked host memory for the RAM tier: uploads from it run at the bus's speed. NULL when the driver refuses. */
static void *ollm__cu_host_alloc(ollm__backend *b, uint64_t bytes) {
    ollm__cu *c = (ollm__cu *)b; void *p = NULL;
    if (c->sticky || c->cu.cuCtxSetCurrent(c->ctx) != 0 || c->cu.cuMemHostAlloc(&p, (size_t)bytes, 0) != 0) return NULL;
    return p;
}
static void ollm__cu_host_free(ollm__backend *b, void *p) {
    ollm__cu *c = (ollm__cu *)b;
    if (!p) return;
    c->cu.cuCtxSetCurrent(c->ctx);
    c->cu.cuMemFreeHost(p);
}

/* Streaming slots (@tiers): an upload into slot k runs on the copy stream once compute has finished with k's
   previous layer (ev_done), and compute waits for it (ev_copy) only when it reaches the layer. */
static ollm_result ollm__cu_slot_events(ollm__cu *c, int k) {
    if (k < 0 || k >= 8) return ollm__fail(c->b.log, OLLM_ERR_INVALID_ARG, "streaming slot %d out of range", k);
    if (!c->copy_st) OLLM__CU(c, cuStreamCreate(&c->copy_st, OLLM__CU_STREAM_NON_BLOCKING));
    if (!c->ev_copy[k]) OLLM__CU(c, cuEventCreate(&c->ev_copy[k], 2));   /* CU_EVENT_DISABLE_TIMING */
    if (!c->ev_done[k]) OLLM__CU(c, cuEventCreate(&c->ev_done[k], 2));
    return OLLM_OK;
}
static ollm_result ollm__cu_upload_async(ollm__backend *b, int k, ollm__buf dst, const void *src, uint64_t n) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__TRY(ollm__cu_slot_events(c, k));
    ollm__cu_wrote(c, dst.ptr, n);
    OLLM__CU(c, cuStreamWaitEvent(c->copy_st, c->ev_done[k], 0));
    OLLM__CU(c, cuMemcpyHtoDAsync(ollm__dp(dst), src, (size_t)n, c->copy_st));
    OLLM__CU(c, cuEventRecord(c->ev_copy[k], c->copy_st));
    return OLLM_OK;
}
static ollm_result ollm__cu_slot_wait(ollm__backend *b, int k) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__TRY(ollm__cu_slot_events(c, k));
    OLLM__CU(c, cuStreamWaitEvent(c->st, c->ev_copy[k], 0));
    return OLLM_OK;
}
static ollm_result ollm__cu_slot_release(ollm__backend *b, int k) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__TRY(ollm__cu_slot_events(c, k));
    OLLM__CU(c, cuEventRecord(c->ev_done[k], c->st));
    return OLLM_OK;
}
static ollm_result ollm__cu_slot_sync(ollm__backend *b, int k) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__TRY(ollm__cu_slot_events(c, k));
    OLLM__CU(c, cuEventSynchronize(c->ev_copy[k]));
    return OLLM_OK;
}

static ollm_result ollm__cu_upload(ollm__backend *b, ollm__buf dst, const void *src, uint64_t n) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    if (!n) return OLLM_OK;
    ollm__cu_wrote(c, dst.ptr, n);
    OLLM__CU(c, cuMemcpyHtoDAsync(ollm__dp(dst), src, (size_t)n, c->st));
    OLLM__CU(c, cuStreamSynchronize(c->st));
    return OLLM_OK;
}
static ollm_result ollm__cu_download(ollm__backend *b, void *dst, ollm__buf src, uint64_t n) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    if (!n) return OLLM_OK;
    OLLM__CU(c, cuMemcpyDtoHAsync(dst, ollm__dp(src), (size_t)n, c->st));
    OLLM__CU(c, cuStreamSynchronize(c->st));
    return OLLM_OK;
}
static ollm_result ollm__cu_sync(ollm__backend *b) {
    ollm__cu *c = (ollm__cu *)b;
    OLLM__CU_ENTER(c);
    OLLM__CU(c, cuStreamSynchronize(c->st));
    return OLLM_OK;
}

static ollm_result ollm__cu_launch(ollm__cu *c, int k, unsigned gx, unsigned gy, unsigned block, unsigned smem, void **args) {
    ollm__cu_result e = c->cu.cuLaunchKernel(c->fn[k], gx, gy, 1, block, 1, 1, smem, c->st, args, NULL);
    if (e != 0) {
        char what[96]; snprintf(what, sizeof what, "cuLaunchKernel(%s)", ollm__knames[k]);
        return ollm__cu_check(c, e, what);
    }
    return OLLM_OK;
}
static unsigned ollm__cu_grid(int64_t n, int per, unsigned cap) {   /* blocks for n elements, per per block */
    int64_t g = (n + per - 1) / per;
    return g < 1 ? 1u : g > (int64_t)cap ? cap : (unsigned)g;
}
static int ollm__cu_wk(int dtype, int k_f32, int k_f16, int k_bf16) {   /* a kernel by weight dtype; -1 unsupported */
    return dtype == OLLM__F32 ? k_f32 : dtype == OLLM__F16 ? k_f16 : dtype == OLLM__BF16 ? k_bf16 : -1;
}
static ollm_result ollm__cu_bad_dtype(ollm__cu *c, const char *op, int dtype) {
    return ollm__fail(c->b.log, OLLM_ERR_UNSUPPORTED, "CUDA %s: weight dtype %s (BF16, F16 or F32 expected)", op,
                      dtype < OLLM__DTYPE_COUNT ? ollm__dtype_names[dtype] : "?");
}

static ollm_result ollm__cu_embed(ollm__backend *b, ollm__buf x, const ollm__w *table, const int32_t *ids, int T) {
    ollm__cu *c = (ollm__cu *)b; int k = ollm__cu_wk(table->dtype, OLLM__K_embed_f32, OLLM__K_embed_f16, OLLM__K_embed_bf16);
    long long rows = table->rows, cols = table->cols; void *idp; void *args[6];
    OLLM__CU_ENTER(c);
    if (k < 0) return ollm__cu_bad_dtype(c, "embed", table->dtype);
    if (T <= 0) return OLLM_OK;
    OLLM__TRY(ollm__cu_scratch(c, &c->ids, (uint64_t)T * 4));
    OLLM__CU(c, cuMemcpyHtoDAsync(ollm__dp(c->ids), ids, (size_t)T * 4, c->st));   /* pageable: staged before return */
    idp = c->ids.ptr;
    args[0] = &x.ptr; args[1] = (void *)&table->data.ptr; args[2] = &idp; args[3] = &T; args[4] = &rows; args[5] = &cols;
    ollm__cu_wrote(c, x.ptr, (uint64_t)T * cols * 4);
    return ollm__cu_launch(c, k, (unsigned)T, 1, 256, 0, args);
}

static ollm_result ollm__cu_rmsnorm(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *w, int T, int n,
                                    float eps, int unit_offset) {
    ollm__cu *c = (ollm__cu *)b; void *args[6];
    int k = ollm__cu_wk(w->dtype, OLLM__K_rmsnorm_f32, OLLM__K_rmsnorm_f16, OLLM__K_rmsnorm_bf16);
    OLLM__CU_ENTER(c);
    if (k < 0) return ollm__cu_bad_dtype(c, "rmsnorm", w->dtype);
    if (T <= 0) return OLLM_OK;
    args[0] = &y.ptr; args[1] = &x.ptr; args[2] = (void *)&w->data.ptr; args[3] = &n; args[4] = &eps; args[5] = &unit_offset;
    ollm__cu_wrote(c, y.ptr, (uint64_t)T * n * 4);
    return ollm__cu_launch(c, k, (unsigned)T, 1, 256, 0, args);
}

#define OLLM__GEMM_SMEM (4 * (128 + 128) * 40 * 2)     /* GB_ST * (GB_M + GB_N) * GB_LD * sizeof(bf16) */
#define OLLM__ABF_MAX ((uint64_t)64 << 20)             /* bf16 copies of matmul inputs: at most this, in row chunks */
static ollm_result ollm__cu_matmul(ollm__backend *b, ollm__buf y, ollm__buf x, const ollm__w *W, int T, int accumulate) {
    ollm__cu *c = (ollm__cu *)b; int N = (int)W->rows, K = (int)W->cols, dt = W->dtype; void *args[9];
    uint64_t esz = ollm__dtype_size[dt < OLLM__DTYPE_COUNT ? dt : 0];
    OLLM__CU_ENTER(c);
    if (ollm__cu_wk(dt, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "matmul", dt);
    if (T <= 0 || N <= 0) return OLLM_OK;
    ollm__cu_wrote(c, y.ptr, (uint64_t)T * N * 4);
    if (T <= 8) {   /* decode: bound by reading W once */
        static const int kg[3][4] = {
            { OLLM__K_gemv_f32_1, OLLM__K_gemv_f32_2, OLLM__K_gemv_f32_4, OLLM__K_gemv_f32_8 },
            { OLLM__K_gemv_f16_1, OLLM__K_gemv_f16_2, OLLM__K_gemv_f16_4, OLLM__K_gemv_f16_8 },
            { OLLM__K_gemv_bf16_1, OLLM__K_gemv_bf16_2, OLLM__K_gemv_bf16_4, OLLM__K_gemv_bf16_8 } };
        int tt = T <= 1 ? 0 : T <= 2 ? 1 : T <= 4 ? 2 : 3;
        int vec = ollm__al16(W->data.ptr) && ollm__al16(x.ptr) && ((uint64_t)K * esz) % 16 == 0 && K % 4 == 0, wpr = 1;
        while (wpr < 8 && (int64_t)N * wpr < (int64_t)c->n_sm * 64) wpr *= 2;   /* a full GPU of warps streaming W */
        args[0] = &y.ptr; args[1] = &x.ptr; args[2] = (void *)&W->data.ptr; args[3] = &T; args[4] = &N; args[5] = &K;
        args[6] = &accumulate; args[7] = &vec; args[8] = &wpr;
        return ollm__cu_launch(c, kg[dt][tt], ollm__cu_grid(N, 8 / wpr, 0x7fffffff), 1, 256, 0, args);
    }
    if (dt == OLLM__BF16 && K % 8 == 0 && ollm__al16(W->data.ptr)) {   /* prefill: tensor cores */
        uint64_t row_bytes = (uint64_t)K * 2;
        int chunk = (int)(OLLM__ABF_MAX / row_bytes) / 128 * 128, m0;
        if (chunk < 128) chunk = 128;
        if (chunk > T) chunk = T;
        for (m0 = 0; m0 < T; m0 += chunk) {
            int M = T - m0 < chunk ? T - m0 : chunk, tiles;
            const float *xs = (const float *)x.ptr + (int64_t)m0 * K;
            float *ys = (float *)y.ptr + (int64_t)m0 * N;
            void *ap;
            if (!(c->abf_valid && c->abf_src == (uint64_t)(uintptr_t)xs && c->abf_bytes == (uint64_t)M * K * 4)) {
                long long n = (long long)M * K;
                OLLM__TRY(ollm__cu_scratch(c, &c->abf, (uint64_t)M * row_bytes));
                args[0] = &c->abf.ptr; args[1] = (void *)&xs; args[2] = &n;
                OLLM__TRY(ollm__cu_launch(c, OLLM__K_to_bf16, ollm__cu_grid(n, 256, 8192), 1, 256, 0, args));
                c->abf_valid = 1; c->abf_src = (uint64_t)(uintptr_t)xs; c->abf_bytes = (uint64_t)M * K * 4;
            }
            ap = c->abf.ptr;
            tiles = ((M + 127) / 128) * ((N + 127) / 128);
            args[0] = (void *)&ys; args[1] = &ap; args[2] = (void *)&W->data.ptr; args[3] = &M; args[4] = &N; args[5] = &K;
            args[6] = &accumulate;
            OLLM__TRY(ollm__cu_launch(c, OLLM__K_gemm_bf16, (unsigned)tiles, 1, 256, OLLM__GEMM_SMEM, args));
        }
        return OLLM_OK;
    }
    {   /* F16 / F32 weights, or shapes the tensor-core path cannot take: fp32 FMA tiles */
        int k = ollm__cu_wk(dt, OLLM__K_gemm_simt_f32, OLLM__K_gemm_simt_f16, OLLM__K_gemm_simt_bf16);
        args[0] = &y.ptr; args[1] = &x.ptr; args[2] = (void *)&W->data.ptr; args[3] = &T; args[4] = &N; args[5] = &K;
        args[6] = &accumulate;
        return ollm__cu_launch(c, k, (unsigned)((N + 63) / 64), (unsigned)((T + 63) / 64), 256, 0, args);
    }
}

static ollm_result ollm__cu_rope(ollm__backend *b, ollm__buf x, int T, int n_heads, int head_dim, int rot_dim,
                                 int pos0, ollm__buf inv_freq, float mscale) {
    ollm__cu *c = (ollm__cu *)b; void *args[7];
    OLLM__CU_ENTER(c);
    if (T <= 0 || rot_dim < 2) return OLLM_OK;
    args[0] = &x.ptr; args[1] = &n_heads; args[2] = &head_dim; args[3] = &rot_dim; args[4] = &pos0; args[5] = &inv_freq.ptr;
    args[6] = &mscale;
    ollm__cu_wrote(c, x.ptr, (uint64_t)T * n_heads * head_dim * 4);
    return ollm__cu_launch(c, OLLM__K_rope, (unsigned)T, 1, 128, 0, args);
}

static ollm_result ollm__cu_silu_mul(ollm__backend *b, ollm__buf g, ollm__buf u, int64_t n) {
    ollm__cu *c = (ollm__cu *)b; long long nn = n; void *args[3];
    OLLM__CU_ENTER(c);
    if (n <= 0) return OLLM_OK;
    args[0] = &g.ptr; args[1] = &u.ptr; args[2] = &nn;
    ollm__cu_wrote(c, g.ptr, (uint64_t)n * 4);
    return ollm__cu_launch(c, OLLM__K_silu_mul, ollm__cu_grid(n, 1024, 8192), 1, 256, 0, args);
}

#define OLLM__AS_BK 32
static ollm_result ollm__cu_attention(ollm__backend *b, ollm__buf o, ollm__buf q, ollm__buf k, ollm__buf v,
                                      ollm__buf k_cache, ollm__buf v_cache, const ollm__attn_args *a) {
    ollm__cu *c = (ollm__cu *)b; void *args[17];
    int T = a->T, pos0 = a->pos0, nh = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim, window = a->window;
    float scale = a->scale; const void *sinks = a->sinks ? a->sinks->data.ptr : NULL;
    int sink_dt = a->sinks ? a->sinks->dtype : 0, L = pos0 + T;
    long long off = (long long)pos0 * nkv * hd, n = (long long)T * nkv * hd;
    OLLM__CU_ENTER(c);
    if (T <= 0) return OLLM_OK;
    if (nkv <= 0 || nh % nkv || hd <= 0 || hd % 2 || pos0 < 0)
        return ollm__fail(b->log, OLLM_ERR_INVALID_ARG, "CUDA attention: %d heads, %d kv heads, head_dim %d", nh, nkv, hd);
    if (a->sinks && ollm__cu_wk(sink_dt, 0, 0, 0) < 0) return ollm__cu_bad_dtype(c, "attention sinks", sink_dt);
    if ((uint64_t)L * nkv * hd * 2 > k_cache.bytes || (uint64_t)L * nkv * hd * 2 > v_cache.bytes)
        return ollm__fail(b->log, OLLM_ERR_INVALID_ARG, "CUDA attention: positions up to %d do not fit the KV cache "
                          "(%llu bytes)", L, (unsigned long long)k_cache.bytes);
    /* 1. append k, v (fp32) to the bf16 caches at pos0 */
    args[0] = &k_cache.ptr; args[1] = &v_cache.ptr; args[2] = &k.ptr; args[3] = &v.ptr; args[4] = &off; args[5] = &n;
    ollm__cu_wrote(c, (char *)k_cache.ptr + off * 2, (uint64_t)n * 2);
    ollm__cu_wrote(c, (char *)v_cache.ptr + off * 2, (uint64_t)n * 2);
    OLLM__TRY(ollm__cu_launch(c, OLLM__K_kv_append, ollm__cu_grid(n, 256, 8192), 1, 256, 0, args));
    ollm__cu_wrote(c, o.ptr, (uint64_t)T * nh * hd * 4);
    /* 2. prefill: FlashAttention-2 on the tensor cores */
    if (T >= 16 && (hd == 64 || hd == 128) && ollm__al16(q.ptr) && ollm__al16(k_cache.ptr) && ollm__al16(v_cache.ptr)) {
        unsigned smem = (unsigned)((64 + 4 * 64) * (hd + 8) * 2);
        args[0] = &o.ptr; args[1] = &q.ptr; args[2] = &k_cache.ptr; args[3] = &v_cache.ptr; args[4] = &T; args[5] = &pos0;
        args[6] = &nh; args[7] = &nkv; args[8] = &window; args[9] = &scale; args[10] = (void *)&sinks; args[11] = &sink_dt;
        return ollm__cu_launch(c, hd == 64 ? OLLM__K_fa2_64 : OLLM__K_fa2_128, (unsigned)((T + 63) / 64), (unsigned)nh,
                               128, smem, args);
    }
    /* 3. decode (a few query rows per kv head): flash-decoding, the keys split across blocks */
    if ((hd == 64 || hd == 128) && T * (nh / nkv) <= 8 && ollm__al16(q.ptr) && ollm__al16(k_cache.ptr) &&
        ollm__al16(v_cache.ptr)) {
        int rows = T * (nh / nkv), lo = window > 0 && pos0 - window + 1 > 0 ? pos0 - window + 1 : 0, span = L - lo;
        int nsplit = (8 * c->n_sm + nkv - 1) / nkv, kps, kern;       /* about 8 blocks of 4 warps per SM */
        if (nsplit > (span + 127) / 128) nsplit = (span + 127) / 128;   /* at least a tile of 32 keys per warp */
        if (nsplit > 1024) nsplit = 1024;                               /* ollm_k_attn_combine's limit */
        if (nsplit < 1) nsplit = 1;
        kps = (span + nsplit - 1) / nsplit;
        kps = (kps + 31) / 32 * 32;
        nsplit = (span + kps - 1) / kps;
        kern = hd == 64 ? (rows <= 4 ? OLLM__K_attn_dec_64_4 : OLLM__K_attn_dec_64_8)
                        : (rows <= 4 ? OLLM__K_attn_dec_128_4 : OLLM__K_attn_dec_128_8);
        if (nsplit > 1) OLLM__TRY(ollm__cu_scratch(c, &c->part, (uint64_t)nsplit * T * nh * (hd + 2) * 4));
        args[0] = &o.ptr; args[1] = &c->part.ptr; args[2] = &q.ptr; args[3] = &k_cache.ptr; args[4] = &v_cache.ptr;
        args[5] = &T; args[6] = &pos0; args[7] = &nh; args[8] = &nkv; args[9] = &window; args[10] = &scale;
        args[11] = (void *)&sinks; args[12] = &sink_dt; args[13] = &nsplit; args[14] = &kps;
        OLLM__TRY(ollm__cu_launch(c, kern, (unsigned)nkv, (unsigned)nsplit, 128, 0, args));
        if (nsplit > 1) {
            args[0] = &o.ptr; args[1] = &c->part.ptr; args[2] = &T; args[3] = &nh; args[4] = &hd; args[5] = &nsplit;
            args[6] = (void *)&sinks; args[7] = &sink_dt;
            OLLM__TRY(ollm__cu_launch(c, OLLM__K_attn_combine, (unsigned)(T * nh), 1, 128, 0, args));
        }
        return OLLM_OK;
    }
    /* 4. otherwise (other head sizes, many rows per kv head): CUDA cores, keys split when few blocks would run */
    {
        int g = nh / nkv, R = 4096 / hd, nrb, base, nsplit, kps, span; unsigned smem;
        if (R > 64) R = 64;
        if (R > T * g) R = T * g;
        if (R < 1) return ollm__fail(b->log, OLLM_ERR_UNSUPPORTED, "CUDA attention: head_dim %d > 4096", hd);
        smem = (unsigned)((R * hd + 2 * OLLM__AS_BK * (hd + 1) + R * (OLLM__AS_BK + 1) + 3 * R) * 4);
        if (smem > (unsigned)c->smem_optin)
            return ollm__fail(b->log, OLLM_ERR_UNSUPPORTED, "CUDA attention: head_dim %d needs %u bytes of shared memory",
                              hd, smem);
        nrb = (T * g + R - 1) / R; base = nkv * nrb;
        span = window > 0 && window < L ? window + T : L;   /* keys one block may see */
        nsplit = base >= 2 * c->n_sm ? 1 : (4 * c->n_sm + base - 1) / base;
        if (nsplit > (span + 255) / 256) nsplit = (span + 255) / 256;   /* at least 256 keys a split */
        if (nsplit > 1024) nsplit = 1024;                               /* ollm_k_attn_combine's limit */
        if (nsplit < 1) nsplit = 1;
        kps = (L + nsplit - 1) / nsplit;
        kps = (kps + OLLM__AS_BK - 1) / OLLM__AS_BK * OLLM__AS_BK;
        nsplit = (L + kps - 1) / kps;
        if (nsplit > 1) OLLM__TRY(ollm__cu_scratch(c, &c->part, (uint64_t)nsplit * T * nh * (hd + 2) * 4));
        args[0] = &o.ptr; args[1] = &c->part.ptr; args[2] = &q.ptr; args[3] = &k_cache.ptr; args[4] = &v_cache.ptr;
        args[5] = &T; args[6] = &pos0; args[7] = &nh; args[8] = &nkv; args[9] = &hd; args[10] = &window; args[11] = &scale;
        args[12] = (void *)&sinks; args[13] = &sink_dt; args[14] = &R; args[15] = &nsplit; args[16] = &kps;
        OLLM__TRY(ollm__cu_launch(c, OLLM__K_attn_split, (unsigned)base, (unsigned)nsplit, 128, smem, args));
        if (nsplit > 1) {
            args[0] = &o.ptr; args[1] = &c->part.ptr; args[2] = &T; args[3] = &nh; args[4] = &hd; args[5] = &nsplit;
            args[6] = (void *)&sinks; args[7] = &sink_dt;
            OLLM__TRY(ollm__cu_launch(c, OLLM__K_attn_combine, (unsigned)(T * nh), 1, 128, 0, args));
        }
        return OLLM_OK;
    }
}

static void ollm__cu_destroy(ollm__backend *b) {
    ollm__cu *c = (ollm__cu *)b; int i;
    if (!c) return;
    if (c->have_ctx) {
        c->cu.cuCtxSetCurrent(c->ctx);
        ollm__cu_release(b, &c->ids); ollm__cu_release(b, &c->abf); ollm__cu_release(b, &c->part);
        if (c->used) ollm__logf(b->log, OLLM_LOG_DEBUG, "CUDA backend closed with %llu bytes still allocated",
                                (unsigned long long)c->used);
        if (c->mod) c->cu.cuModuleUnload(c->mod);
        if (c->st) c->cu.cuStreamDestroy(c->st);
        if (c->copy_st) { c->cu.cuStreamSynchronize(c->copy_st); c->cu.cuStreamDestroy(c->copy_st); }
        for (i = 0; i < 8; i++) {
            if (c->ev_copy[i]) c->cu.cuEventDestroy(c->ev_copy[i]);
            if (c->ev_done[i]) c->cu.cuEventDestroy(c->ev_done[i]);
        }
        c->cu.cuDevicePrimaryCtxRelease(c->dev);
    }
    ollm__nvrtc_unload(&c->nv);
    if (c->cu.lib) dlclose(c->cu.lib);
    OLLM_FREE(c);
}

/* Opens device 0: driver, NVRTC, primary context, stream, the kernels (cache or compile), the budget.
   OLLM_ERR_NO_DEVICE with *why when no driver, GPU or NVRTC is usable (AUTO then takes the CPU). */
static ollm_result ollm__cuda_create(const ollm_model_config *cfg, ollm__log *lg, ollm__backend **out, const char **why) {
    ollm__cu *c; ollm__cu_result e; int n = 0, i, drv = 0, how = 0; void *cubin = NULL; size_t nbytes = 0;
    size_t free_b = 0, total_b = 0; ollm_result r; double t0 = ollm__now();
    ollm_model_config defcfg;
    *out = NULL; *why = ollm__cu_why; ollm__cu_why[0] = 0;
    if (!cfg) { memset(&defcfg, 0, sizeof defcfg); cfg = &defcfg; }
    c = (ollm__cu *)ollm__calloc(1, sizeof *c);
    if (!c) { *why = "out of host memory"; return OLLM_ERR_NO_MEMORY; }
    c->b.log = lg;
#define OLLM__CU_NODEV(...) do { snprintf(ollm__cu_why, sizeof ollm__cu_why, __VA_ARGS__); ollm__cu_destroy(&c->b); \
                                 return OLLM_ERR_NO_DEVICE; } while (0)
    if (!ollm__cuda_load(&c->cu, ollm__cu_why, sizeof ollm__cu_why)) { ollm__cu_destroy(&c->b); return OLLM_ERR_NO_DEVICE; }
    if ((e = c->cu.cuInit(0)) != 0) OLLM__CU_NODEV("cuInit: %s", ollm__cu_errname(c, e));
    if ((e = c->cu.cuDeviceGetCount(&n)) != 0 || n < 1) OLLM__CU_NODEV("no CUDA GPU visible");
    if ((e = c->cu.cuDeviceGet(&c->dev, 0)) != 0) OLLM__CU_NODEV("cuDeviceGet: %s", ollm__cu_errname(c, e));
    c->cu.cuDriverGetVersion(&drv);
    c->cu.cuDeviceGetName(c->dev_name, sizeof c->dev_name - 1, c->dev);
    c->cu.cuDeviceGetAttribute(&c->cc_major, OLLM__CU_ATTR_CC_MAJOR, c->dev);
    c->cu.cuDeviceGetAttribute(&c->cc_minor, OLLM__CU_ATTR_CC_MINOR, c->dev);
    c->cu.cuDeviceGetAttribute(&c->n_sm, OLLM__CU_ATTR_MULTIPROCESSOR_COUNT, c->dev);
    c->cu.cuDeviceGetAttribute(&c->smem_optin, OLLM__CU_ATTR_SMEM_OPTIN, c->dev);
    if (c->cc_major < 8)   /* mma.sync bf16, cp.async, ldmatrix */
        OLLM__CU_NODEV("%s is sm_%d%d; the kernels need sm_80 or newer", c->dev_name, c->cc_major, c->cc_minor);
    if (c->n_sm < 1) c->n_sm = 1;
    snprintf(c->arch, sizeof c->arch, "sm_%d%d", c->cc_major, c->cc_minor);
    {
        char err[1024];
        if (!ollm__nvrtc_load(&c->nv, cfg->nvrtc_path, err, sizeof err)) OLLM__CU_NODEV("%s", err);
    }
    if ((e = c->cu.cuDevicePrimaryCtxRetain(&c->ctx, c->dev)) != 0) OLLM__CU_NODEV("cuDevicePrimaryCtxRetain: %s", ollm__cu_errname(c, e));
    c->have_ctx = 1;
    if ((e = c->cu.cuCtxSetCurrent(c->ctx)) != 0) OLLM__CU_NODEV("cuCtxSetCurrent: %s", ollm__cu_errname(c, e));
    if ((e = c->cu.cuStreamCreate(&c->st, OLLM__CU_STREAM_NON_BLOCKING)) != 0) OLLM__CU_NODEV("cuStreamCreate: %s", ollm__cu_errname(c, e));
    /* the kernels */
    r = ollm__cuda_build(&c->nv, c->arch, cfg->cache_dir, lg, &cubin, &nbytes, &how, NULL, 0);
    if (r != OLLM_OK) { snprintf(ollm__cu_why, sizeof ollm__cu_why, "%s", lg->err); ollm__cu_destroy(&c->b); return r; }
    e = c->cu.cuModuleLoadData(&c->mod, cubin);
    if (e != 0 && how == OLLM__CACHE_HIT) {   /* a cached CUBIN the driver refuses: rebuild, never do worse than no cache */
        ollm__logf(lg, OLLM_LOG_INFO, "kernel cache: the driver refused the cached CUBIN (%s); recompiling", ollm__cu_errname(c, e));
        OLLM_FREE(cubin); cubin = NULL;
        {
            char *src = ollm__kernel_program();
            r = src ? ollm__nvrtc_compile(&c->nv, src, c->arch, lg, &cubin, &nbytes) : OLLM_ERR_NO_MEMORY;
            OLLM_FREE(src);
        }
        if (r != OLLM_OK) { snprintf(ollm__cu_why, sizeof ollm__cu_why, "%s", lg->err); ollm__cu_destroy(&c->b); return r; }
        e = c->cu.cuModuleLoadData(&c->mod, cubin);
    }
    OLLM_FREE(cubin);
    if (e != 0) {
        c->mod = NULL;
        r = ollm__fail(lg, OLLM_ERR_DEVICE, "cuModuleLoadData (kernels for %s): %s", c->arch, ollm__cu_errname(c, e));
        snprintf(ollm__cu_why, sizeof ollm__cu_why, "%s", lg->err); ollm__cu_destroy(&c->b); return r;
    }
    for (i = 0; i < OLLM__K_COUNT; i++) {
        if ((e = c->cu.cuModuleGetFunction(&c->fn[i], c->mod, ollm__knames[i])) != 0) {
            r = ollm__fail(lg, OLLM_ERR_DEVICE, "cuModuleGetFunction(%s): %s", ollm__knames[i], ollm__cu_errname(c, e));
            snprintf(ollm__cu_why, sizeof ollm__cu_why, "%s", lg->err); ollm__cu_destroy(&c->b); return r;
        }
        /* kernels with dynamic shared memory may take all the device allows */
        if (i == OLLM__K_gemm_bf16 || i == OLLM__K_fa2_64 || i == OLLM__K_fa2_128 || i == OLLM__K_attn_split)
            c->cu.cuFuncSetAttribute(c->fn[i], OLLM__CU_FUNC_MAX_DYNAMIC_SMEM, c->smem_optin);
    }
    /* the budget */
    if ((e = c->cu.cuMemGetInfo(&free_b, &total_b)) != 0) OLLM__CU_NODEV("cuMemGetInfo: %s", ollm__cu_errname(c, e));
    if (cfg->vram_bytes) c->budget = cfg->vram_bytes;
    else c->budget = free_b > ((size_t)512 << 20) ? (uint64_t)free_b - ((uint64_t)512 << 20) : 0;
#undef OLLM__CU_NODEV
    c->b.name = "cuda"; c->b.device = c->dev_name; c->b.host = 0; c->b.kv_elem = 2;
    c->b.destroy = ollm__cu_destroy; c->b.alloc = ollm__cu_alloc; c->b.release = ollm__cu_release;
    c->b.upload = ollm__cu_upload; c->b.download = ollm__cu_download; c->b.embed = ollm__cu_embed;
    c->b.rmsnorm = ollm__cu_rmsnorm; c->b.matmul = ollm__cu_matmul; c->b.rope = ollm__cu_rope;
    c->b.attention = ollm__cu_attention; c->b.silu_mul = ollm__cu_silu_mul; c->b.sync = ollm__cu_sync;
    c->b.mem_budget = c->budget; c->b.host_alloc = ollm__cu_host_alloc; c->b.host_free = ollm__cu_host_free;
    c->b.upload_async = ollm__cu_upload_async; c->b.slot_wait = ollm__cu_slot_wait;
    c->b.slot_release = ollm__cu_slot_release; c->b.slot_sync = ollm__cu_slot_sync;
    ollm__logf(lg, OLLM_LOG_INFO, "CUDA backend: %s (%s, %d SMs, %.1f GiB), driver %d.%d, NVRTC %d.%d (%s); kernels %s "
               "in %.2f s; memory budget %.2f GiB%s", c->dev_name, c->arch, c->n_sm, (double)total_b / 1073741824.0,
               drv / 1000, drv % 1000 / 10, c->nv.major, c->nv.minor, c->nv.path,
               how == OLLM__CACHE_HIT ? "from the cache" : "compiled", ollm__now() - t0, (double)c->budget / 1073741824.0,
               cfg->vram_bytes ? "" : " (free memory minus 512 MiB)");
    *out = &c->b;
    *why = "";
    return OLLM_OK;
}
