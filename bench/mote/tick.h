/*
 * A ticker under load, shared by block_tick and spin_tick: 2 x threads
 * loader processes call work() in a loop while a ticker process sleeps 1 ms
 * TICKS times, or as often as it can in TICK_LIMIT (a runtime whose ticker
 * is very late still finishes in a few seconds); lateness = time slept -
 * 1 ms. The loaders stop once the ticker is done, and main waits for all of
 * them before it reports.
 */
#ifndef MOTE_BENCH_TICK_H
#define MOTE_BENCH_TICK_H

#include "bench.h"

#include <stdatomic.h>

enum { TICKS = 2000, MIN_TICKS = 100 /* for a meaningful p99 */ };
#define TICK_LIMIT MOTE_SEC(8)

typedef void (*tick_work_fn)(uint64_t arg);

typedef struct tick_loader_arg {
    tick_work_fn work;
    uint64_t work_arg;
    atomic_int *stop;
    mote_proc *main;
} tick_loader_arg;

typedef struct tick_ticker_arg {
    int64_t *late; /* TICKS entries, owned by main */
    mote_proc *main;
} tick_ticker_arg;

static void tick_loader(void *arg) {
    const tick_loader_arg *a = arg;
    int64_t rounds = 0;
    while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
        a->work(a->work_arg);
        rounds++;
    }
    bench_ok(mote_send(a->main, &rounds, sizeof rounds), "mote_send");
}

static void tick_ticker(void *arg) {
    const tick_ticker_arg *a = arg;
    int64_t start = mote_now(), done = 0;
    for (; done < TICKS && mote_now() - start < TICK_LIMIT; done++) {
        int64_t t0 = mote_now();
        bench_ok(mote_sleep(MOTE_MSEC(1)), "mote_sleep");
        a->late[done] = mote_now() - t0 - MOTE_MSEC(1);
    }
    bench_ok(mote_send(a->main, &done, sizeof done), "mote_send");
}

/* Run from the main process; prints <name>_enough_ticks, <name>_busy_loaders
 * and <name>_early checks, and <name>_ticks and <name>_p50/_p99/_max.
 * Returns the exit status. */
static inline int tick_under_load(const char *name, tick_work_fn work, uint64_t work_arg) {
    static int64_t late[TICKS];
    static atomic_int stop;
    char what[64];
    atomic_store(&stop, 0);
    int loaders = 2 * (int)mote_threads();
    tick_loader_arg la = {work, work_arg, &stop, mote_self()};
    for (int i = 0; i < loaders; i++)
        bench_ok(mote_spawn_fn(NULL, tick_loader, &la, sizeof la), "mote_spawn_fn");
    bench_ok(mote_sleep(MOTE_MSEC(20)), "mote_sleep"); /* let the load start */
    tick_ticker_arg ta = {late, mote_self()};
    bench_ok(mote_spawn_fn(NULL, tick_ticker, &ta, sizeof ta), "mote_spawn_fn");
    int64_t ticks = bench_receive_i64();
    atomic_store(&stop, 1);
    int64_t rounds = 0;
    for (int i = 0; i < loaders; i++)
        rounds += bench_receive_i64();
    snprintf(what, sizeof what, "%s_enough_ticks", name);
    if (!bench_check(what, ticks >= MIN_TICKS, 1))
        return 1;
    snprintf(what, sizeof what, "%s_ticks", name);
    bench_result(what, "ticks", (double)ticks);
    snprintf(what, sizeof what, "%s_busy_loaders", name);
    if (!bench_check(what, rounds >= loaders ? loaders : 0, loaders))
        return 1;
    return bench_lateness(name, late, (size_t)ticks) ? 0 : 1;
}

#endif
