/*
 * section_ns: the cost of mote_blocking_begin() + mote_blocking_end()
 * around a call that returns at once (getppid), inside a process. Batches
 * of calls with and without the section alternate; the figure is the
 * fastest batch with the section minus the fastest without, per call.
 */
#include "bench.h"

#include <unistd.h>

enum { BATCH = 200000, ROUNDS = 15 };

typedef struct section_arg {
    mote_proc *main;
} section_arg;

static volatile pid_t sink;

static int64_t batch_plain(void) {
    int64_t t0 = mote_now();
    for (int i = 0; i < BATCH; i++)
        sink = getppid();
    return mote_now() - t0;
}

static int64_t batch_section(void) {
    int64_t t0 = mote_now();
    for (int i = 0; i < BATCH; i++) {
        mote_blocking_begin();
        sink = getppid();
        mote_blocking_end();
    }
    return mote_now() - t0;
}

static void measurer(void *arg) {
    const section_arg *a = arg;
    int64_t best[2] = {INT64_MAX, INT64_MAX};
    for (int r = 0; r < ROUNDS; r++) {
        int64_t plain = batch_plain(), section = batch_section();
        best[0] = plain < best[0] ? plain : best[0];
        best[1] = section < best[1] ? section : best[1];
    }
    bench_ok(mote_send(a->main, best, sizeof best), "mote_send");
}

static int section_main(void *arg) {
    (void)arg;
    section_arg a = {mote_self()};
    bench_ok(mote_spawn_fn(NULL, measurer, &a, sizeof a), "mote_spawn_fn");
    int64_t best[2];
    bench_receive_i64s(best, 2);
    if (!bench_check("section_parent", sink, getppid()))
        return 1;
    bench_result("section_call", "ns/call", (double)best[0] / BATCH);
    bench_result("section", "ns/call", (double)(best[1] - best[0]) / BATCH);
    return 0;
}

int main(void) { return bench_run(NULL, section_main); }
