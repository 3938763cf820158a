/*
 * block_tick: a process sleeps 1 ms 2000 times (mote_sleep) while
 * 2 x threads processes each call nanosleep(50 ms) in a loop, every call
 * inside mote_blocking_begin/end. Reports the ticker's lateness (p50, p99,
 * max in microseconds): the monitor must notice the stuck workers and let
 * backup threads run the ticker.
 */
#include "tick.h"

#include <time.h>

static void block_50ms(uint64_t unused) {
    (void)unused;
    struct timespec ts = {0, 50 * 1000 * 1000};
    mote_blocking_begin();
    while (nanosleep(&ts, &ts) != 0)
        ;
    mote_blocking_end();
}

static int block_tick_main(void *arg) {
    (void)arg;
    return tick_under_load("block", block_50ms, 0);
}

int main(void) { return bench_run(NULL, block_tick_main); }
