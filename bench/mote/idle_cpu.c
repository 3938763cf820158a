/*
 * idle_cpu: CPU time used by an idle runtime (default threads) while the
 * main process sleeps 5 s, as a percentage of one core.
 */
#include "bench.h"

static int idle_main(void *arg) {
    (void)arg;
    int64_t cpu0 = bench_cpu_ns(), t0 = mote_now();
    bench_ok(mote_sleep(MOTE_SEC(5)), "mote_sleep");
    int64_t cpu = bench_cpu_ns() - cpu0, wall = mote_now() - t0;
    if (!bench_check("idle_slept_5s", wall >= MOTE_SEC(5), 1))
        return 1;
    /* finer than bench_result's one decimal: the figure is well below 1 */
    printf("RESULT idle_cpu %% %.3f\n", 100.0 * (double)cpu / (double)wall);
    return 0;
}

int main(void) { return bench_run(NULL, idle_main); }
