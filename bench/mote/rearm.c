/*
 * rearm: what moving a deadline later costs, the pattern of a per-request
 * or per-read timeout.
 *
 *   rearm      a timer future re-armed to 60 s from now 1M times
 *              (mote_timer_reset; Go's timer.Reset, tokio's Sleep::reset)
 *   now        one mote_now(): every re-arm reads the clock once, and on
 *              a VM whose clock reads are slow that is most of the cost
 *   recv_dl    a receive ping-pong between two processes on one worker,
 *   recv_nodl  each receive with a 60 s timeout (every wait re-arms the
 *              process's deadline) and without one, in the program's CPU
 *              time per round trip: the difference is the cost of the
 *              deadline for two timed waits
 *
 * Checks: a re-armed timer does not fire at its old time, and fires at
 * its new one.
 */
#include "bench.h"

enum { REARMS = 1000000, ROUNDS = 200000 };

static void echo(void *arg) {
    int64_t timeout = *(int64_t *)arg;
    mote_msg *m;
    while (mote_receive(&m, timeout) == 0) {
        mote_proc *from;
        memcpy(&from, mote_msg_data(m), sizeof from);
        mote_msg_free(m);
        if (!from)
            return;
        bench_ok(mote_send(from, &from, sizeof from), "mote_send");
    }
}

typedef struct driver_arg {
    int64_t timeout;
    mote_proc *report;
} driver_arg;

/* ROUNDS round trips to an echo process, both receiving with the timeout;
 * sends main the CPU ns per round trip: the time other programs on the
 * machine take from the worker is left out (the other threads idle). */
static void driver(void *arg) {
    driver_arg *a = arg;
    mote_proc *peer, *me = mote_self();
    bench_ok(mote_spawn_fn(&peer, echo, &a->timeout, sizeof a->timeout), "mote_spawn_fn");
    int64_t t0 = bench_cpu_ns();
    for (int i = 0; i < ROUNDS; i++) {
        bench_ok(mote_send(peer, &me, sizeof me), "mote_send");
        mote_msg *m;
        bench_ok(mote_receive(&m, a->timeout), "mote_receive");
        mote_msg_free(m);
    }
    int64_t ns = (bench_cpu_ns() - t0) * 10 / ROUNDS; /* tenths of ns */
    mote_proc *none = NULL;
    bench_ok(mote_send(peer, &none, sizeof none), "mote_send");
    mote_proc_release(peer);
    bench_ok(mote_send(a->report, &ns, sizeof ns), "mote_send");
}

static double pingpong(int64_t timeout) {
    driver_arg a = {timeout, mote_self()};
    bench_ok(mote_spawn_fn(NULL, driver, &a, sizeof a), "mote_spawn_fn");
    return (double)bench_receive_i64() / 10;
}

static int rearm_main(void *arg) {
    (void)arg;
    mote_future *t;
    bench_ok(mote_timer(&t, MOTE_SEC(60)), "mote_timer");
    int64_t t0 = mote_now();
    for (int i = 0; i < REARMS; i++)
        bench_ok(mote_timer_reset(t, MOTE_SEC(60)), "mote_timer_reset");
    bench_result("rearm", "ns/op", (double)(mote_now() - t0) / REARMS);
    t0 = mote_now();
    int64_t sink = 0;
    for (int i = 0; i < REARMS; i++)
        sink += mote_now() & 1;
    bench_result("now", "ns/call", (double)(mote_now() - t0 - (sink & 0)) / REARMS);
    /* Earlier, then later again: the entry of the earlier deadline must
     * not fire it. (A reset that finds it fired says -EALREADY: then this
     * thread slept past 100 ms, and there is nothing to check.) */
    t0 = mote_now();
    bool early = false;
    if (mote_timer_reset(t, MOTE_MSEC(50)) == 0 && mote_timer_reset(t, MOTE_MSEC(100)) == 0) {
        mote_sleep(MOTE_MSEC(60));
        early = mote_future_ready(t) && mote_now() - t0 < MOTE_MSEC(100);
    }
    bench_ok(mote_await(t, NULL), "mote_await");
    bool ok = bench_check("rearm_early", early, 0);
    ok &= bench_check("rearm_fired_late_enough", mote_now() - t0 >= MOTE_MSEC(100), 1);

    /* One worker: the ping-pong measures the waits, not cross-core wake-ups. */
    double dl = 0, nodl = 0;
    for (int rep = 0; rep < 3; rep++) { /* interleaved, best of three */
        double a = pingpong(MOTE_SEC(60)), b = pingpong(MOTE_FOREVER);
        dl = rep == 0 || a < dl ? a : dl;
        nodl = rep == 0 || b < nodl ? b : nodl;
    }
    bench_result("recv_dl", "ns/rt", dl);
    bench_result("recv_nodl", "ns/rt", nodl);
    return ok ? 0 : 1;
}

int main(void) {
    mote_config cfg = {.threads = 1};
    return bench_run(&cfg, rearm_main);
}
