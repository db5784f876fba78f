/*
 * nodelab-memhog: a workload that takes a machine's memory to the edge of
 * OOM, not far past it, and keeps a file working set in use while it is there.
 *
 *   nodelab-memhog LEAVE_MIB STEP_MIB STEP_MS HOLD_S FILE FILE_MIB
 *
 * 1. writes FILE (FILE_MIB MiB, fsynced): its working set on disk;
 * 2. grows anonymous memory STEP_MIB at a time, every STEP_MS ms, touching
 *    every page, until /proc/meminfo's MemAvailable is at most LEAVE_MIB
 *    (in a container /proc/meminfo is the machine's, not the cgroup's);
 * 3. holds there for HOLD_S seconds: re-touches its pages and reads FILE
 *    over and over, topping up when MemAvailable rises above LEAVE + STEP.
 *    Without swap the kernel can only reclaim file pages, its own FILE's and
 *    every other program's text, which are read back in at once: the thrash
 *    that stalls a node before the OOM killer acts (or the OOM kill, or an
 *    eviction, whichever the node's configuration gives);
 * 4. exits 0, ending the pressure by itself (a node never needs a reset).
 *
 * One line per step and per second of the hold on stdout, e.g.
 * "grow 1024 MiB available 412 MiB" and "hold 12 s 1504 MiB passes 31
 * available 60 MiB", so the container log says how far it got.
 * Exit 2 on bad usage, 1 when FILE cannot be written or read.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)
#define PAGE 4096L
#define MAX_CHUNKS 4096

static char *chunks[MAX_CHUNKS];
static int nchunks;
static long step;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long available_mib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib / 1024;
}

static int grow(void)
{
    if (nchunks == MAX_CHUNKS)
        return -1;
    char *p = mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    for (long i = 0; i < step; i += PAGE)
        p[i] = (char)i | 1;
    chunks[nchunks++] = p;
    return 0;
}

static void touch_all(void)
{
    for (int c = 0; c < nchunks; c++)
        for (long i = 0; i < step; i += PAGE)
            chunks[c][i]++;
}

static int write_file(const char *path, long mib)
{
    static char buf[MIB];
    memset(buf, 'w', sizeof buf);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    for (long i = 0; i < mib; i++)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
            close(fd);
            return -1;
        }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Read up to `mib` MiB of the file from where the last call stopped. */
static int read_some(int fd, long file_mib, long mib)
{
    static char buf[MIB];
    static long at;
    for (long i = 0; i < mib; i++) {
        if (pread(fd, buf, sizeof buf, (at % file_mib) * MIB) <= 0)
            return -1;
        at++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7 || atol(argv[2]) < 1 || atol(argv[6]) < 1) {
        fprintf(stderr, "usage: nodelab-memhog LEAVE_MIB STEP_MIB STEP_MS HOLD_S FILE FILE_MIB\n");
        return 2;
    }
    long leave = atol(argv[1]), step_ms = atol(argv[3]), hold = atol(argv[4]), file_mib = atol(argv[6]);
    const char *file = argv[5];
    step = atol(argv[2]) * MIB;
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (write_file(file, file_mib) != 0) {
        perror(file);
        return 1;
    }
    int fd = open(file, O_RDONLY);
    if (fd < 0) {
        perror(file);
        return 1;
    }
    printf("file %s %ld MiB written; available %ld MiB\n", file, file_mib, available_mib());

    struct timespec pause = {step_ms / 1000, (step_ms % 1000) * 1000000L};
    long avail;
    while ((avail = available_mib()) > leave && grow() == 0) {
        printf("grow %ld MiB available %ld MiB\n", nchunks * step / MIB, available_mib());
        if (read_some(fd, file_mib, 4) != 0) {
            perror(file);
            return 1;
        }
        nanosleep(&pause, NULL);
    }
    printf("edge %ld MiB available %ld MiB\n", nchunks * step / MIB, avail);

    double start = now_s(), last = start;
    long passes = 0;
    while (now_s() - start < hold) {
        touch_all();
        if (read_some(fd, file_mib, file_mib) != 0) {
            perror(file);
            return 1;
        }
        passes++;
        if (available_mib() > leave + step / MIB)
            grow();
        if (now_s() - last >= 1) {
            last = now_s();
            printf("hold %.0f s %ld MiB passes %ld available %ld MiB\n", last - start, nchunks * step / MIB,
                   passes, available_mib());
        }
    }
    printf("done %ld MiB held %ld s\n", nchunks * step / MIB, hold);
    return 0;
}
