/*
 * spin_tick: a process sleeps 1 ms 2000 times (mote_sleep) while
 * 2 x threads processes each spin for about 200 ms of CPU at a time (a pure
 * loop: no call into mote or the OS), in a loop. Reports the ticker's
 * lateness (p50, p99, max in microseconds): the monitor must notice the
 * hogs (10 ms) and let backup threads run the ticker.
 */
#include "tick.h"

static volatile uint64_t sink;

/* n rounds of xorshift64: a dependent chain the compiler cannot shorten. */
__attribute__((noinline)) static void spin(uint64_t n) {
    uint64_t x = 88172645463325252u;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    sink = x;
}

/* Rounds of spin() in 200 ms, timed on this thread before the load starts. */
static uint64_t rounds_for_200ms(void) {
    const uint64_t trial = 20u * 1000 * 1000;
    int64_t best = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        int64_t t0 = mote_now();
        spin(trial);
        int64_t dt = mote_now() - t0;
        best = dt < best ? dt : best;
    }
    return (uint64_t)((double)trial * (double)MOTE_MSEC(200) / (double)best);
}

static int spin_tick_main(void *arg) {
    (void)arg;
    return tick_under_load("spin", spin, rounds_for_200ms());
}

int main(void) { return bench_run(NULL, spin_tick_main); }
