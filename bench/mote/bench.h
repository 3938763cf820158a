/*
 * Helpers shared by mote's benchmark programs. Every program prints one
 * "RESULT <metric> <unit> <value>" line per metric and one
 * "CHECK <what> <got> ok|FAIL ..." line per correctness check, and exits
 * non-zero when a check fails; bench/run.sh reads these lines. The Go and
 * tokio peers print the same lines (bench/go/report, bench/tokio/src/lib.rs).
 */
#ifndef MOTE_BENCH_H
#define MOTE_BENCH_H

#include <mote.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void bench_result(const char *metric, const char *unit, double value) {
    printf("RESULT %s %s %.1f\n", metric, unit, value);
    fflush(stdout);
}

/* Print a check line; returns whether got == want. */
static inline bool bench_check(const char *what, int64_t got, int64_t want) {
    if (got == want)
        printf("CHECK %s %lld ok\n", what, (long long)got);
    else
        printf("CHECK %s %lld FAIL (want %lld)\n", what, (long long)got, (long long)want);
    fflush(stdout);
    return got == want;
}

/* A benchmark has no recovery path: any mote error ends the program. */
static inline void bench_ok(int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, mote_strerror(rc));
        exit(1);
    }
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline int64_t bench_rss_bytes(void) {
    long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) {
        fprintf(stderr, "cannot read /proc/self/statm\n");
        exit(1);
    }
    fclose(f);
    return (int64_t)pages_resident * sysconf(_SC_PAGESIZE);
}

/* Spawn a process with the given state and send it one cast. The caller's
 * handle is dropped at once: the process lives while it has messages or
 * others hold references to it. */
static inline void bench_spawn_cast(const void *state, size_t state_size, mote_msg_fn fn,
                                    const void *arg, size_t arg_size) {
    mote_proc *p;
    bench_ok(mote_spawn(&p, state, state_size, NULL), "mote_spawn");
    bench_ok(mote_cast(p, fn, arg, arg_size), "mote_cast");
    mote_proc_release(p);
}

/* Receive one data message holding n int64 values into out[]. */
static inline void bench_receive_i64s(int64_t *out, size_t n) {
    mote_msg *m;
    bench_ok(mote_receive(&m, MOTE_FOREVER), "mote_receive");
    if (mote_msg_size(m) != n * sizeof *out) {
        fprintf(stderr, "unexpected message of %zu bytes\n", mote_msg_size(m));
        exit(1);
    }
    memcpy(out, mote_msg_data(m), n * sizeof *out);
    mote_msg_free(m);
}

static inline int64_t bench_receive_i64(void) {
    int64_t v;
    bench_receive_i64s(&v, 1);
    return v;
}

static inline int bench_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* late[] holds n lateness samples in ns (how much longer than asked each
 * sleep took). Checks that none is negative (<name>_early), then prints
 * <name>_p50, <name>_p99 and <name>_max in microseconds. Sorts late[]. */
static inline bool bench_lateness(const char *name, int64_t *late, size_t n) {
    char metric[64];
    qsort(late, n, sizeof late[0], bench_cmp_i64);
    int64_t early = 0;
    for (size_t i = 0; i < n; i++)
        early += late[i] < 0;
    snprintf(metric, sizeof metric, "%s_early", name);
    if (!bench_check(metric, early, 0))
        return false;
    static const char *const suffix[] = {"p50", "p99", "max"};
    const size_t at[] = {n / 2, n * 99 / 100, n - 1};
    for (int i = 0; i < 3; i++) {
        snprintf(metric, sizeof metric, "%s_%s", name, suffix[i]);
        bench_result(metric, "us", (double)late[at[i]] / 1e3);
    }
    return true;
}

/* CPU time (user + system) of the whole process in nanoseconds. */
static inline int64_t bench_cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* Run fn(arg) as mote's main process in a child process of its own (so
 * it starts from a fresh address space); the child's exit status. */
static inline int bench_run_child(mote_main_fn fn, void *arg) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        int rc = mote_run(NULL, fn, arg);
        if (rc < 0)
            fprintf(stderr, "mote_run: %s\n", mote_strerror(rc));
        fflush(stdout);
        _exit(rc == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* Run fn as mote's main process; the program's exit status. */
static inline int bench_run(const mote_config *cfg, mote_main_fn fn) {
    int rc = mote_run(cfg, fn, NULL);
    if (rc < 0) {
        fprintf(stderr, "mote_run: %s\n", mote_strerror(rc));
        return 1;
    }
    return rc;
}

#endif
