/*
 * nodelab-stallprobe: how long a small process on the node waits when it
 * asks for nothing but a 100 ms nap, and what the kernel's memory reclaim is
 * doing meanwhile.
 *
 *   nodelab-stallprobe OUT [INTERVAL_MS]
 *
 * Sleeps INTERVAL_MS (default 100) over and over and measures how late each
 * wake-up comes; once a second appends one line to OUT:
 *
 *   T_S WORST_GAP_MS PGMAJFAULT KSWAPD_TICKS MEMAVAIL_KIB SOME_AVG10 FULL_AVG10
 *
 * T_S is seconds since the probe started, WORST_GAP_MS the longest time
 * between two wake-ups in that second (INTERVAL_MS when nothing stalls),
 * PGMAJFAULT the kernel's major page faults so far (/proc/vmstat),
 * KSWAPD_TICKS kswapd0's CPU so far (utime + stime, clock ticks),
 * MEMAVAIL_KIB /proc/meminfo's MemAvailable, and the two pressure figures
 * /proc/pressure/memory's some and full avg10 (-1 where the kernel has no
 * PSI, before 4.20). It does not lock itself in memory: like a monitoring
 * agent, its own text can be reclaimed and faulted back, so its gaps are what
 * such an agent lives through. Runs until killed; exit 2 on bad usage, 1
 * when OUT cannot be opened.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long field(const char *path, const char *fmt)
{
    char line[512];
    long value = -1;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &value) == 1)
            break;
    fclose(f);
    return value;
}

static void pressure(double *some, double *full)
{
    char line[512];
    *some = *full = -1;
    FILE *f = fopen("/proc/pressure/memory", "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "some avg10=%lf", some);
        sscanf(line, "full avg10=%lf", full);
    }
    fclose(f);
}

static char kswapd_stat[300];

static void find_kswapd(void)
{
    char path[300], comm[64];
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(comm, sizeof comm, f) && strcmp(comm, "kswapd0\n") == 0)
            snprintf(kswapd_stat, sizeof kswapd_stat, "/proc/%s/stat", e->d_name);
        fclose(f);
    }
    if (d)
        closedir(d);
}

static long kswapd_ticks(void)
{
    char buf[1024];
    unsigned long utime, stime;
    FILE *f = kswapd_stat[0] ? fopen(kswapd_stat, "r") : NULL;
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (long)(utime + stime);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: nodelab-stallprobe OUT [INTERVAL_MS]\n");
        return 2;
    }
    long interval = argc == 3 ? atol(argv[2]) : 100;
    if (interval < 1) {
        fprintf(stderr, "nodelab-stallprobe: INTERVAL_MS must be at least 1\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "a");
    if (out == NULL) {
        perror(argv[1]);
        return 1;
    }
    setvbuf(out, NULL, _IOLBF, 0);
    find_kswapd();
    struct timespec nap = {interval / 1000, (interval % 1000) * 1000000L};
    double start = now_ms(), last = start, second = start, worst = 0;
    for (;;) {
        nanosleep(&nap, NULL);
        double t = now_ms();
        if (t - last > worst)
            worst = t - last;
        last = t;
        if (t - second >= 1000) {
            double some, full;
            pressure(&some, &full);
            fprintf(out, "%.1f %.0f %ld %ld %ld %.2f %.2f\n", (t - start) / 1e3, worst,
                    field("/proc/vmstat", "pgmajfault %ld"), kswapd_ticks(),
                    field("/proc/meminfo", "MemAvailable: %ld kB"), some, full);
            second = t;
            worst = 0;
        }
    }
}
