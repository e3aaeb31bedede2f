/* Shared by the libFuzzer harnesses in tests/fuzz: a per-process scratch folder, file writers, and the input
   splitter. Include after ollm.h (which defines _GNU_SOURCE and pulls in the POSIX headers). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parts of one input are separated by this line (a dictionary entry in every *.dict). */
#define FUZZ_UNUSED __attribute__((unused))
#define FUZZ_SEP "\n--8<--\n"
#define FUZZ_SEP_LEN 8
#define FUZZ_MAX_PARTS 8

/* A harness-side check of an invariant of the library: a failure is a bug, so crash where libFuzzer sees it. */
#define FUZZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "FUZZ_CHECK failed %s:%d: %s\n", __FILE__, __LINE__, #c); \
                                      __builtin_trap(); } } while (0)

static char fuzz_dir[256];

/* FUZZ_VERBOSE=1 in the environment: print why each input was refused (to check that seeds get far). */
FUZZ_UNUSED static void fuzz_say(const char *what, const char *msg) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "%s: %s\n", what, msg && *msg ? msg : "ok");
}

FUZZ_UNUSED static void fuzz_rm_tree(const char *dir, int keep_top) {
    DIR *d = opendir(dir); struct dirent *e; char p[1024]; struct stat st;
    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) fuzz_rm_tree(p, 0); else unlink(p);
        }
        closedir(d);
    }
    if (!keep_top) rmdir(dir);
}
FUZZ_UNUSED static void fuzz_cleanup(void) { if (fuzz_dir[0]) fuzz_rm_tree(fuzz_dir, 0); }

/* The scratch folder of this process ($TMPDIR or /tmp), created once and removed at exit. */
FUZZ_UNUSED static const char *fuzz_tmpdir(void) {
    if (!fuzz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/ollm-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir)) { perror("mkdtemp"); abort(); }
        atexit(fuzz_cleanup);
    }
    return fuzz_dir;
}
/* An empty sub-folder `name` of the scratch folder (emptied if it exists). */
FUZZ_UNUSED static const char *fuzz_subdir(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", fuzz_tmpdir(), name);
    mkdir(p, 0755);
    fuzz_rm_tree(p, 1);
    return p;
}

FUZZ_UNUSED static void fuzz_write(const char *dir, const char *name, const void *data, size_t n) {
    char p[1024]; int fd; const char *c = (const char *)data;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { perror(p); abort(); }
    while (n > 0) { ssize_t w = write(fd, c, n); if (w <= 0) { perror(p); abort(); } c += w; n -= (size_t)w; }
    close(fd);
}

/* A safetensors file from a fuzz part, in one of two shapes picked by its first byte `mode`:
     mode odd:  the rest is the whole file, byte for byte (header length, JSON header, data);
     mode even: the rest is the JSON header alone: its length is prepended and the data section is made
                (mode / 2) x 64 KiB of zeros, as a sparse file, so real headers reach the per-tensor checks
                without real-sized seeds. */
FUZZ_UNUSED static void fuzz_write_st(const char *dir, const char *name, const uint8_t *data, size_t n) {
    char p[1024]; int fd; unsigned char len8[8]; size_t i; uint64_t hl;
    if (n == 0) { fuzz_write(dir, name, "", 0); return; }
    if (data[0] & 1) { fuzz_write(dir, name, data + 1, n - 1); return; }
    hl = n - 1;
    for (i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    snprintf(p, sizeof p, "%s/%s", dir, name);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { perror(p); abort(); }
    if (write(fd, len8, 8) != 8 || (hl && write(fd, data + 1, hl) != (ssize_t)hl) ||
        ftruncate(fd, (off_t)(8 + hl + (uint64_t)(data[0] >> 1) * 65536)) != 0) { perror(p); abort(); }
    close(fd);
}

/* Splits data at every FUZZ_SEP into at most FUZZ_MAX_PARTS parts (the last part keeps any further separators). */
typedef struct fuzz_part { const uint8_t *p; size_t n; } fuzz_part;
FUZZ_UNUSED static int fuzz_split(const uint8_t *data, size_t n, fuzz_part *parts) {
    int k = 0; size_t start = 0, i = 0;
    while (k < FUZZ_MAX_PARTS - 1 && n >= FUZZ_SEP_LEN && i <= n - FUZZ_SEP_LEN) {
        if (data[i] == '\n' && memcmp(data + i, FUZZ_SEP, FUZZ_SEP_LEN) == 0) {
            parts[k].p = data + start; parts[k].n = i - start; k++;
            i += FUZZ_SEP_LEN; start = i;
        } else i++;
    }
    parts[k].p = data + start; parts[k].n = n - start; k++;
    return k;
}
#endif
