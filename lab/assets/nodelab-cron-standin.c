/*
 * nodelab-cron-standin: a STAND-IN for supercronic <= 0.2.30, the cron runner
 * whose non-reaping PID 1 caused the zombie flood (supercronic PR #164 fixed it
 * in 0.2.31). The real binary is not in any package source the lab can reach;
 * `--param supercronic=/path/to/supercronic` runs the original instead.
 *
 * What it reproduces, and nothing more: it reads a supercronic crontab, runs
 * each due job as `/bin/sh -c COMMAND`, and waits for that job's own process
 * only (supercronic's cmd.Wait(), i.e. wait4(job_pid)). It never calls
 * waitpid(-1) and never sets SIGCHLD to SIG_IGN or SA_NOCLDWAIT, so when it is
 * a container's PID 1, processes a job leaves behind in the background are
 * re-parented to it when the job's shell exits and stay zombies forever.
 * Like supercronic, jobs do not overlap, and SIGTERM/SIGINT make it exit after
 * the running job.
 *
 * Built statically by the lab (gcc -static) so it runs in any image.
 */
// Schedules: supercronic accepts cron expressions with an optional seconds
// field; the stand-in supports the one form the lab uses, every N seconds:
// `*/N * * * * * * COMMAND` (7 fields) -- anything else is refused.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_term(int sig) { (void)sig; stopping = 1; }

static void logf_(const char *level, const char *msg, const char *extra) {
    char ts[32];
    time_t now = time(NULL);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    printf("time=\"%s\" level=%s msg=\"%s\" %s\n", ts, level, msg, extra ? extra : "");
    fflush(stdout);
}

// Parse "*/N * * * * * * command": returns N, sets *command; 0 when unsupported.
static int parse_line(char *line, char **command) {
    char *fields[7];
    char *p = line;
    for (int i = 0; i < 7; i++) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) return 0;
        fields[i] = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        if (*p) *p++ = '\0';
    }
    for (int i = 1; i < 7; i++)
        if (strcmp(fields[i], "*") != 0) return 0;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) return 0;
    *command = p;
    if (strcmp(fields[0], "*") == 0) return 1;
    if (strncmp(fields[0], "*/", 2) != 0) return 0;
    int n = atoi(fields[0] + 2);
    return n > 0 ? n : 0;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[argc - 1] : NULL;
    if (!path || path[0] == '-') {
        fprintf(stderr, "usage: %s CRONTAB\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return 2; }
    static char line[4096];
    char *command = NULL;
    int every = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '#') continue;
        every = parse_line(s, &command);
        if (!every) {
            fprintf(stderr, "%s: the stand-in supports only '*/N * * * * * * COMMAND' lines, not: %s\n",
                    argv[0], s);
            return 2;
        }
        break;   /* one job is all the lab's crontab holds */
    }
    fclose(f);
    if (!every) { fprintf(stderr, "%s: no job in %s\n", argv[0], path); return 2; }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* SIGCHLD keeps its default disposition: no automatic reaping. */

    char extra[4200];
    snprintf(extra, sizeof extra, "job.command=\"%s\" job.every=%ds", command, every);
    logf_("info", "read crontab (stand-in for supercronic <= 0.2.30: waits for its job only)", extra);
    unsigned long iteration = 0;
    while (!stopping) {
        pid_t pid = fork();
        if (pid < 0) {
            snprintf(extra, sizeof extra, "error=\"fork: %s\"", strerror(errno));
            logf_("error", "job failed to start", extra);
        } else if (pid == 0) {
            execl("/bin/sh", "sh", "-c", command, (char *)NULL);
            _exit(127);
        } else {
            int status;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}   /* this job only */
            iteration++;
            if (iteration % 30 == 1) {
                snprintf(extra, sizeof extra, "iteration=%lu status=%d", iteration, status);
                logf_("info", "job succeeded", extra);
            }
        }
        for (int slept = 0; slept < every && !stopping; slept++) sleep(1);
    }
    logf_("info", "received signal, exiting", NULL);
    return 0;
}
