/* tools/disk_read.c: the disk's direct-read rate (O_DIRECT, past the page cache), the floor of the benchmarks' disk
   rows. THREADS readers at once, each reading BLOCK-byte requests one after another from a region of its own (MB
   megabytes in all, the regions side by side from START MB into FILE). Prints `disk_read THREADS BLOCK_KB GB/s`.
   Build: cc -O2 tools/disk_read.c -o disk_read -lpthread.  Run: ./disk_read FILE THREADS BLOCK_KB MB [START_MB]
   (Linux; FILE at least START_MB + MB megabytes). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct { int fd; long long at, n, block; int err; } reader;

static void *read_region(void *v) {
    reader *r = (reader *)v; void *buf; long long done = 0;
    if (posix_memalign(&buf, 4096, (size_t)r->block) != 0) { r->err = ENOMEM; return NULL; }
    while (done < r->n) {
        long long want = r->n - done < r->block ? r->n - done : r->block;
        ssize_t got = pread(r->fd, buf, (size_t)want, (off_t)(r->at + done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EINVAL) { r->err = EINVAL; break; }   /* the file system refuses aligned direct reads */
        if (got <= 0) { r->err = got < 0 ? errno : EIO; break; }
        done += got;
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv) {
    int threads, i, fd; long long block, total, start, each; reader *r; pthread_t *th; struct timespec t0, t1; struct stat st; double s;
    if (argc < 5) { fprintf(stderr, "usage: %s FILE THREADS BLOCK_KB MB [START_MB]\n", argv[0]); return 2; }
    threads = atoi(argv[2]); block = atoll(argv[3]) * 1024; total = atoll(argv[4]) << 20;
    start = argc > 5 ? atoll(argv[5]) << 20 : 0;
    if (threads < 1 || block < 4096 || block % 4096 || total < block * threads) {
        fprintf(stderr, "disk_read: THREADS >= 1, BLOCK_KB a multiple of 4 and MB at least THREADS blocks\n");
        return 2;
    }
    if ((fd = open(argv[1], O_RDONLY | O_DIRECT)) < 0) {
        fprintf(stderr, "disk_read: %s: %s\n", argv[1], errno == EINVAL ? "the file system refuses O_DIRECT" : strerror(errno));
        return 1;
    }
    if (fstat(fd, &st) != 0 || st.st_size < start + total) {
        fprintf(stderr, "disk_read: %s holds %lld MB, fewer than START_MB + MB = %lld\n", argv[1],
                (long long)st.st_size >> 20, (start + total) >> 20);
        return 1;
    }
    each = total / threads / block * block;
    r = (reader *)calloc((size_t)threads, sizeof *r); th = (pthread_t *)calloc((size_t)threads, sizeof *th);
    if (!r || !th) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < threads; i++) {
        r[i].fd = fd; r[i].at = start + i * each; r[i].n = each; r[i].block = block;
        if (pthread_create(&th[i], NULL, read_region, &r[i]) != 0) { fprintf(stderr, "disk_read: no thread\n"); return 1; }
    }
    for (i = 0; i < threads; i++) pthread_join(th[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (i = 0; i < threads; i++)
        if (r[i].err) {
            fprintf(stderr, "disk_read: %s: %s\n", argv[1],
                    r[i].err == EINVAL ? "the file system refuses O_DIRECT" : strerror(r[i].err));
            return 1;
        }
    s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("disk_read %d %lld %.2f\n", threads, block / 1024, (double)(each * threads) / s / 1e9);
    close(fd);
    return 0;
}
