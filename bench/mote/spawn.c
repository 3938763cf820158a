/*
 * spawn: spawn 1M processes and send each one cast, whose handler replies to
 * main with a data message; main receives the 1M replies. Reports the time
 * per process from the first spawn to the last reply.
 */
#include "bench.h"

enum { N = 1000000 };

typedef struct worker {
    mote_proc *collector; /* borrowed: main outlives every worker */
} worker;

static mote_result on_ping(void *state, void *arg) {
    (void)arg;
    const worker *w = state;
    int64_t one = 1;
    bench_ok(mote_send(w->collector, &one, sizeof one), "mote_send");
    return mote_ok_i(0);
}

static int spawn_main(void *arg) {
    (void)arg;
    worker w = {mote_self()};
    int64_t t0 = mote_now();
    for (int i = 0; i < N; i++)
        bench_spawn_cast(&w, sizeof w, on_ping, NULL, 0);
    int64_t replies = 0;
    for (int i = 0; i < N; i++)
        replies += bench_receive_i64();
    double ns = (double)(mote_now() - t0) / N;
    if (!bench_check("spawn_replies", replies, N))
        return 1;
    bench_result("spawn", "ns/proc", ns);
    return 0;
}

int main(void) { return bench_run(NULL, spawn_main); }
