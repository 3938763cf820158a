/*
 * ring: 1000 processes in a ring pass a token 1000 times around (1M hops).
 * Each hop is one cast to the next process; the process holding the token
 * after the last hop sends main the hop count and its index.
 */
#include "bench.h"

enum { PROCS = 1000, ROUNDS = 1000 };
#define HOPS ((int64_t)PROCS * ROUNDS)

typedef struct ring_node {
    mote_proc *next; /* borrowed: main holds every node until the end */
    mote_proc *main;
    int64_t index;
} ring_node;

static mote_result on_link(void *state, void *arg) {
    ring_node *n = state;
    n->next = *(mote_proc *const *)arg;
    return mote_ok_i(0);
}

static mote_result on_token(void *state, void *arg) {
    const ring_node *n = state;
    int64_t hops = *(const int64_t *)arg;
    if (hops == HOPS) {
        int64_t report[2] = {hops, n->index};
        bench_ok(mote_send(n->main, report, sizeof report), "mote_send");
    } else {
        hops++;
        bench_ok(mote_cast(n->next, on_token, &hops, sizeof hops), "mote_cast");
    }
    return mote_ok_i(0);
}

static int ring_main(void *arg) {
    (void)arg;
    static mote_proc *ring[PROCS];
    for (int i = 0; i < PROCS; i++) {
        ring_node n = {NULL, mote_self(), i};
        bench_ok(mote_spawn(&ring[i], &n, sizeof n, NULL), "mote_spawn");
    }
    /* Link synchronously, so every node has run once before the clock starts. */
    for (int i = 0; i < PROCS; i++)
        bench_ok(mote_call(ring[i], on_link, &ring[(i + 1) % PROCS], sizeof(mote_proc *), NULL),
                 "mote_call");
    int64_t t0 = mote_now();
    int64_t hops = 0;
    bench_ok(mote_cast(ring[0], on_token, &hops, sizeof hops), "mote_cast");
    int64_t report[2];
    bench_receive_i64s(report, 2);
    double ns = (double)(mote_now() - t0) / HOPS;
    for (int i = 0; i < PROCS; i++)
        mote_proc_release(ring[i]);
    if (!bench_check("ring_hops", report[0], HOPS) || !bench_check("ring_end", report[1], 0))
        return 1;
    bench_result("ring", "ns/hop", ns);
    return 0;
}

int main(void) { return bench_run(NULL, ring_main); }
