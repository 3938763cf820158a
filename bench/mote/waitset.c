/*
 * waitset: one process waits over n futures of which one becomes ready per
 * round; time per round for n = 10, 100, 1,000 and 10,000, with a wait set
 * (ws_<n>: O(ready), so flat) and with mote_poll (poll_<n>: O(n)).
 *
 * A round: an async call to an echo process (its future is the one that
 * becomes ready), the future added to the set (mote_poll: put in the
 * array), one wait, and the await of its result. The other n - 1 sources
 * are timer futures an hour away. One worker runs both processes; the
 * figure is the program's CPU time per round, so other programs on the
 * machine do not count. Go's peer: reflect.Select over n channels, one of
 * which has a value per round.
 */
#include "bench.h"

static const int SIZES[] = {10, 100, 1000, 10000};

typedef struct driver_arg {
    int n;
    bool poll;
    mote_proc *report;
} driver_arg;

static mote_result h_echo(void *state, void *arg) {
    (void)state;
    int64_t v;
    memcpy(&v, arg, sizeof v);
    return mote_ok_i(v);
}

static int rounds_for(int n, bool poll) {
    int r = poll ? 20000000 / n : 100000;
    return r > 100000 ? 100000 : r < 200 ? 200 : r;
}

/* Sends main the CPU ns per round times 10, or -1 after a wrong answer. */
static void driver(void *arg) {
    driver_arg *a = arg;
    int n = a->n, rounds = rounds_for(n, a->poll);
    mote_proc *echo;
    bench_ok(mote_spawn(&echo, NULL, 0, NULL), "mote_spawn");
    mote_future **futs = calloc((size_t)n, sizeof *futs);
    mote_waitset *ws = NULL;
    if (!a->poll)
        bench_ok(mote_waitset_new(&ws), "mote_waitset_new");
    for (int i = 0; i < n - 1; i++) {
        bench_ok(mote_timer(&futs[i], MOTE_SEC(3600)), "mote_timer");
        if (ws)
            bench_ok(mote_waitset_add_future(ws, futs[i], (uint64_t)i + 1), "mote_waitset_add_future");
    }
    int64_t wrong = 0, t0 = bench_cpu_ns();
    for (int64_t i = 0; i < rounds; i++) {
        mote_future *f, *ready;
        bench_ok(mote_async(echo, h_echo, &i, sizeof i, &f), "mote_async");
        if (ws) {
            mote_waitset_event e;
            bench_ok(mote_waitset_add_future(ws, f, 0), "mote_waitset_add_future");
            bench_ok(mote_waitset_wait(ws, &e, 1, MOTE_FOREVER), "mote_waitset_wait");
            wrong += e.tag != 0;
            ready = f;
        } else {
            size_t left = (size_t)n;
            futs[n - 1] = f;
            bench_ok(mote_poll(futs, &left, &ready, 1, MOTE_FOREVER), "mote_poll");
            wrong += ready != f || left != (size_t)n - 1;
        }
        mote_result r;
        bench_ok(mote_await(ready, &r), "mote_await");
        wrong += r.i != i;
    }
    int64_t ns = (bench_cpu_ns() - t0) * 10 / rounds;
    mote_waitset_free(ws); /* hands the timers back */
    for (int i = 0; i < n - 1; i++)
        mote_future_drop(futs[i]);
    free(futs);
    mote_proc_release(echo);
    ns = wrong ? -1 : ns;
    bench_ok(mote_send(a->report, &ns, sizeof ns), "mote_send");
}

static int waitset_main(void *arg) {
    (void)arg;
    bool ok = true;
    double first = 0, last = 0; /* the wait set's ns/round at the smallest and largest n */
    for (size_t k = 0; k < sizeof SIZES / sizeof SIZES[0]; k++)
        for (int poll = 0; poll < 2; poll++) {
            driver_arg a = {SIZES[k], poll, mote_self()};
            bench_ok(mote_spawn_fn(NULL, driver, &a, sizeof a), "mote_spawn_fn");
            int64_t ns10 = bench_receive_i64();
            char name[32];
            snprintf(name, sizeof name, "%s_%d", poll ? "poll" : "ws", SIZES[k]);
            ok &= bench_check(name, ns10 >= 0, 1);
            bench_result(name, "ns/round", (double)ns10 / 10);
            if (!poll && k == 0)
                first = (double)ns10;
            if (!poll)
                last = (double)ns10;
        }
    /* Flat in n: the cost per round at n = 10,000 over that at n = 10. */
    bench_result("ws_flat", "ratio", first > 0 ? last / first : -1);
    return ok ? 0 : 1;
}

int main(void) {
    mote_config cfg = {.threads = 1};
    return bench_run(&cfg, waitset_main);
}
