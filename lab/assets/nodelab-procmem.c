/*
 * nodelab-procmem: read another process's memory through /proc/PID/mem,
 * without ptrace-attaching to it (the process never stops).
 *
 *   nodelab-procmem scan PID LO HI   every 8-byte-aligned uint64 in [LO, HI]
 *                                    in PID's private writable memory (the
 *                                    heap and anonymous mappings), one
 *                                    "ADDR VALUE" line each (hex)
 *   nodelab-procmem read PID ADDR... the uint64 at each ADDR, "ADDR VALUE"
 *
 * The lab locates systemd's sd-bus cookie with it: the one counter whose
 * value tracks systemd's reply serials round after round. It never writes:
 * the cookie is written by gdb, PID 1 stopped for that one poke.
 * Numbers on the command line may be decimal or 0x-hex. Exit 2 on bad usage,
 * 1 when PID's memory cannot be read.
 */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1 << 20)
#define MAX_HITS 20000

static uint64_t number(const char *s)
{
    char *end;
    errno = 0;
    uint64_t v = strtoull(s, &end, 0);
    if (errno || *end || end == s) {
        fprintf(stderr, "nodelab-procmem: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

static int open_mem(const char *pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/mem", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "nodelab-procmem: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Private writable mappings with no file behind them: where malloc puts things. */
static int wanted(const char *perms, const char *name)
{
    return strcmp(perms, "rw-p") == 0 && (name[0] == '\0' || strcmp(name, "[heap]") == 0);
}

static int scan(const char *pid, uint64_t lo, uint64_t hi)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%s/maps", pid);
    FILE *maps = fopen(path, "r");
    if (!maps) {
        fprintf(stderr, "nodelab-procmem: %s: %s\n", path, strerror(errno));
        return 1;
    }
    int fd = open_mem(pid);
    static uint64_t buf[CHUNK / 8];
    int hits = 0;
    while (fgets(line, sizeof line, maps)) {
        uint64_t start, end;
        char perms[8] = "", name[4096] = "";
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %4095[^\n]", &start, &end, perms, name) < 3)
            continue;
        char *n = name;
        while (*n == ' ')
            n++;
        if (!wanted(perms, n))
            continue;
        for (uint64_t at = start; at < end; at += CHUNK) {
            size_t len = end - at < CHUNK ? end - at : CHUNK;
            ssize_t got = pread(fd, buf, len, (off_t)at);
            if (got <= 0)
                continue;   /* a page that cannot be read: skip it */
            for (size_t i = 0; i < (size_t)got / 8; i++) {
                if (buf[i] >= lo && buf[i] <= hi) {
                    printf("%" PRIx64 " %" PRIx64 "\n", at + i * 8, buf[i]);
                    if (++hits >= MAX_HITS) {
                        fprintf(stderr, "nodelab-procmem: more than %d values in range, stopped\n", MAX_HITS);
                        return 3;
                    }
                }
            }
        }
    }
    return 0;
}

static int read_at(const char *pid, int n, char **addrs)
{
    int fd = open_mem(pid), rc = 0;
    for (int i = 0; i < n; i++) {
        uint64_t addr = number(addrs[i]), value;
        if (pread(fd, &value, 8, (off_t)addr) != 8) {
            fprintf(stderr, "nodelab-procmem: cannot read %" PRIx64 ": %s\n", addr, strerror(errno));
            rc = 1;
            continue;
        }
        printf("%" PRIx64 " %" PRIx64 "\n", addr, value);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "scan") == 0)
        return scan(argv[2], number(argv[3]), number(argv[4]));
    if (argc >= 4 && strcmp(argv[1], "read") == 0)
        return read_at(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: nodelab-procmem scan PID LO HI | read PID ADDR...\n");
    return 2;
}
