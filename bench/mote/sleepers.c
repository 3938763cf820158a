/*
 * sleepers: timer lateness while many processes come and go. 10,000
 * Erlang-style processes each sleep once for a random 1-50 ms; lateness is
 * how much longer than asked each mote_sleep took. Two runs, each in a
 * child process of its own:
 *
 *   sleepers        each process ends after its sleep (stacks are freed
 *                   while other timers are due);
 *   sleepers_alive  each process then waits in mote_receive until main has
 *                   every sample, and ends after that.
 *
 * Reports <name>_p50, <name>_p99 and <name>_max in microseconds, and checks
 * that no sleep returned early and that every process ended exactly once.
 */
#include "bench.h"

#include <stdatomic.h>

enum { N = 10000 };

typedef struct run {
    bool alive;
    int64_t late[N];
    unsigned char ended[N];
    _Atomic int64_t slept, gone;
    mote_proc *procs[N];
    mote_proc *main;
} run;

typedef struct sleeper_arg {
    run *r;
    int64_t i;
} sleeper_arg;

static void sleeper(void *arg) {
    const sleeper_arg *a = arg;
    run *r = a->r;
    /* 1-50 ms, spread by a multiplicative hash of the index. */
    int64_t d = MOTE_MSEC(1) + (int64_t)(((uint64_t)a->i * 2654435761u) % 49000) * 1000;
    int64_t t0 = mote_now();
    bench_ok(mote_sleep(d), "mote_sleep");
    r->late[a->i] = mote_now() - t0 - d;
    if (atomic_fetch_add(&r->slept, 1) + 1 == N) {
        int64_t one = 1;
        bench_ok(mote_send(r->main, &one, sizeof one), "mote_send");
    }
    if (r->alive) {
        mote_msg *m = NULL;
        bench_ok(mote_receive(&m, MOTE_FOREVER), "mote_receive");
        mote_msg_free(m);
    }
    r->ended[a->i]++;
    if (atomic_fetch_add(&r->gone, 1) + 1 == N) {
        int64_t two = 2;
        bench_ok(mote_send(r->main, &two, sizeof two), "mote_send");
    }
}

static int run_main(void *arg) {
    run *r = arg;
    const char *name = r->alive ? "sleepers_alive" : "sleepers";
    char metric[64];
    r->main = mote_self();
    for (int64_t i = 0; i < N; i++) {
        sleeper_arg a = {r, i};
        bench_ok(mote_spawn_fn(r->alive ? &r->procs[i] : NULL, sleeper, &a, sizeof a), "mote_spawn_fn");
    }
    bool ok = true;
    if (r->alive) {
        ok = bench_receive_i64() == 1;
        for (int i = 0; i < N; i++) {
            int64_t v = i;
            bench_ok(mote_send(r->procs[i], &v, sizeof v), "mote_send");
            mote_proc_release(r->procs[i]);
        }
        ok = bench_receive_i64() == 2 && ok;
    } else {
        ok = bench_receive_i64() == 1;
        ok = bench_receive_i64() == 2 && ok;
    }
    int64_t once = 0;
    for (int i = 0; i < N; i++)
        once += r->ended[i] == 1;
    snprintf(metric, sizeof metric, "%s_ended_once", name);
    ok = bench_check(metric, once, N) && ok;
    return ok && bench_lateness(name, r->late, N) ? 0 : 1;
}

int main(void) {
    static run end, alive = {.alive = true};
    int rc = bench_run_child(run_main, &end);
    return bench_run_child(run_main, &alive) || rc;
}
