/*
 * nodelab-readtime: how long reading a file takes, in one process.
 *
 *   nodelab-readtime N FILE...   reads each FILE whole N times (open, read to
 *                                EOF, close) and prints one line per FILE:
 *                                "FILE MIN_US MEDIAN_US MEAN_US MAX_US BYTES"
 *
 * For the cost of a kernel-generated file such as cgroup v1 memory.stat,
 * whose contents the kernel computes on every read: timing N reads inside
 * one process keeps fork and exec (milliseconds under emulation) out of the
 * figure, which a shell loop around cat(1) would not. The minimum is the
 * read's own cost: a busy neighbour (kubelet cleaning up after a wave of
 * pods, under emulation) can only stretch a read, never shorten it, and it
 * stretched the median of 200 reads by a third on a 6.1 node where the
 * kernel's work does not change; the median and the mean are printed too.
 * Exit 2 on bad usage,
 * 1 when a FILE cannot be read.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static long read_whole(const char *path)
{
    static char buf[1 << 16];
    long total = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    close(fd);
    return n < 0 ? -1 : total;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3 || atoi(argv[1]) < 1) {
        fprintf(stderr, "usage: nodelab-readtime N FILE...\n");
        return 2;
    }
    int reads = atoi(argv[1]);
    double *took = calloc(reads, sizeof *took);
    if (took == NULL)
        return 1;
    for (int f = 2; f < argc; f++) {
        double sum = 0;
        long bytes = 0;
        for (int i = 0; i < reads; i++) {
            double t0 = now_us();
            bytes = read_whole(argv[f]);
            took[i] = now_us() - t0;
            if (bytes < 0) {
                perror(argv[f]);
                return 1;
            }
            sum += took[i];
        }
        qsort(took, reads, sizeof *took, by_value);
        printf("%s %.1f %.1f %.1f %.1f %ld\n", argv[f], took[0], took[reads / 2], sum / reads, took[reads - 1],
               bytes);
    }
    free(took);
    return 0;
}
