/*
 * switch: two processes on one worker thread (threads = 1) each call
 * mote_yield() in a loop; every yield switches to the other one. Reports the
 * time per switch.
 */
#include "bench.h"

enum { YIELDS = 2000000 }; /* per process */

static void yielder(void *arg) {
    mote_proc *main_proc = *(mote_proc **)arg;
    int64_t n = 0;
    for (; n < YIELDS; n++)
        mote_yield();
    bench_ok(mote_send(main_proc, &n, sizeof n), "mote_send");
}

static int switch_main(void *arg) {
    (void)arg;
    mote_proc *self = mote_self();
    int64_t t0 = mote_now();
    for (int i = 0; i < 2; i++)
        bench_ok(mote_spawn_fn(NULL, yielder, &self, sizeof self), "mote_spawn_fn");
    int64_t yields = bench_receive_i64() + bench_receive_i64();
    double ns = (double)(mote_now() - t0) / (2.0 * YIELDS);
    if (!bench_check("switch_yields", yields, 2 * (int64_t)YIELDS))
        return 1;
    bench_result("switch", "ns/switch", ns);
    return 0;
}

int main(void) {
    mote_config cfg = {.threads = 1};
    return bench_run(&cfg, switch_main);
}
