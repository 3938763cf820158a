/*
 * sleep: a process sleeps 1 ms 2000 times; lateness is how much longer than
 * 1 ms each mote_sleep took. Reports p50, p99 and max in microseconds, and
 * checks that no sleep returned early.
 */
#include "bench.h"

enum { SLEEPS = 2000 };

typedef struct sleeper_arg {
    int64_t *late; /* SLEEPS entries, owned by main */
    mote_proc *main;
} sleeper_arg;

static void sleeper(void *arg) {
    const sleeper_arg *a = arg;
    for (int i = 0; i < SLEEPS; i++) {
        int64_t t0 = mote_now();
        bench_ok(mote_sleep(MOTE_MSEC(1)), "mote_sleep");
        a->late[i] = mote_now() - t0 - MOTE_MSEC(1);
    }
    int64_t done = SLEEPS;
    bench_ok(mote_send(a->main, &done, sizeof done), "mote_send");
}

static int sleep_main(void *arg) {
    (void)arg;
    static int64_t late[SLEEPS];
    sleeper_arg a = {late, mote_self()};
    bench_ok(mote_spawn_fn(NULL, sleeper, &a, sizeof a), "mote_spawn_fn");
    if (!bench_check("sleep_count", bench_receive_i64(), SLEEPS))
        return 1;
    if (!bench_lateness("sleep", late, SLEEPS))
        return 1;
    return 0;
}

int main(void) { return bench_run(NULL, sleep_main); }
