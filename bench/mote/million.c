/*
 * million: many processes suspended at once. Two runs, each in a child
 * process of its own (so neither inherits the other's memory):
 *
 *   million        N (MILLION_N, default 1,000,000) Erlang-style processes
 *                  each blocked in mote_receive(MOTE_FOREVER); main then
 *                  sends each one message, and each ends;
 *   million_sleep  N/10 processes each in mote_sleep of a random 500-1000 ms.
 *
 * Reported: RSS growth per process once all are suspended (<name>_rss,
 * B/proc), the time from the first spawn until all are suspended
 * (<name>_blocked, ms) and until the last has ended (<name>_total, ms).
 * Checks: every process got its own message and ended exactly once.
 */
#include "bench.h"

#include <stdatomic.h>

typedef struct run {
    int64_t n;
    bool sleep;
    mote_proc **procs;
    unsigned char *done; /* done[i]: times process i ended */
    _Atomic int64_t blocked, ended, bad;
    mote_proc *main;
} run;

typedef struct proc_arg {
    run *r;
    int64_t i;
} proc_arg;

static void proc_fn(void *arg) {
    const proc_arg *a = arg;
    run *r = a->r;
    if (r->sleep) {
        /* 500-1000 ms, spread by a multiplicative hash of the index. */
        int64_t ms = 500 + (int64_t)(((uint64_t)a->i * 2654435761u) % 500);
        atomic_fetch_add(&r->blocked, 1);
        if (mote_sleep(MOTE_MSEC(ms)) != 0)
            atomic_fetch_add(&r->bad, 1);
    } else {
        mote_msg *m = NULL;
        atomic_fetch_add(&r->blocked, 1);
        int64_t v = -1;
        if (mote_receive(&m, MOTE_FOREVER) == 0 && mote_msg_size(m) == sizeof v)
            memcpy(&v, mote_msg_data(m), sizeof v);
        mote_msg_free(m);
        if (v != a->i)
            atomic_fetch_add(&r->bad, 1);
    }
    r->done[a->i]++;
    if (atomic_fetch_add(&r->ended, 1) + 1 == r->n) {
        int64_t one = 1;
        bench_ok(mote_send(r->main, &one, sizeof one), "mote_send");
    }
}

static void wait_for(_Atomic int64_t *v, int64_t want) {
    while (atomic_load(v) < want)
        mote_sleep(MOTE_MSEC(1));
}

static int run_main(void *arg) {
    run *r = arg;
    const char *name = r->sleep ? "million_sleep" : "million";
    char metric[64];
    r->main = mote_self();
    r->procs = calloc((size_t)r->n, sizeof *r->procs);
    r->done = calloc((size_t)r->n, 1);
    if (!r->procs || !r->done)
        return 1;
    memset(r->procs, 0xff, (size_t)r->n * sizeof *r->procs); /* fault the pages in now */
    memset(r->done, 0xff, (size_t)r->n);
    memset(r->done, 0, (size_t)r->n);
    int64_t rss0 = bench_rss_bytes();
    int64_t t0 = mote_now();
    for (int64_t i = 0; i < r->n; i++) {
        proc_arg a = {r, i};
        bench_ok(mote_spawn_fn(r->sleep ? NULL : &r->procs[i], proc_fn, &a, sizeof a), "mote_spawn_fn");
    }
    wait_for(&r->blocked, r->n);
    int64_t t_blocked = mote_now();
    mote_sleep(MOTE_MSEC(20)); /* the last ones counted are parking now */
    int64_t rss1 = bench_rss_bytes();
    if (!r->sleep)
        for (int64_t i = 0; i < r->n; i++) {
            bench_ok(mote_send(r->procs[i], &i, sizeof i), "mote_send");
            mote_proc_release(r->procs[i]);
        }
    (void)bench_receive_i64();
    int64_t t_end = mote_now();
    int64_t once = 0;
    for (int64_t i = 0; i < r->n; i++)
        once += r->done[i] == 1;
    snprintf(metric, sizeof metric, "%s_ended_once", name);
    bool ok = bench_check(metric, once, r->n);
    snprintf(metric, sizeof metric, "%s_bad", name);
    ok = bench_check(metric, atomic_load(&r->bad), 0) && ok;
    snprintf(metric, sizeof metric, "%s_rss", name);
    bench_result(metric, "B/proc", (double)(rss1 - rss0) / (double)r->n);
    snprintf(metric, sizeof metric, "%s_blocked", name);
    bench_result(metric, "ms", (double)(t_blocked - t0) / 1e6);
    snprintf(metric, sizeof metric, "%s_total", name);
    bench_result(metric, "ms", (double)(t_end - t0) / 1e6);
    free(r->procs);
    free(r->done);
    return ok ? 0 : 1;
}

int main(void) {
    int64_t n = (int64_t)strtoll(getenv("MILLION_N") ? getenv("MILLION_N") : "1000000", NULL, 10);
    if (n < 10)
        n = 10;
    static run receivers, sleepers;
    receivers.n = n;
    sleepers.n = n / 10;
    sleepers.sleep = true;
    int rc = bench_run_child(run_main, &receivers);
    return bench_run_child(run_main, &sleepers) || rc;
}
