/*
 * runtime.c -- mote_run: configuration, start-up and shutdown. The top
 * layer: it wires the scheduler to the process layer and owns the order in
 * which subsystems start and stop.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "proc/proc.h"
#include "base/alloc.h"

void mote__netpoll_stop(void);  /* io/fd.c */
void mote__stdio_shutdown(void); /* io/stdio.c */
void mote__netpoll_configure(unsigned threads);

static _Atomic bool rt_busy;

/* Who decided the stop, in the low byte: nobody yet, mote_stop (its
 * status in the upper bits, set by the same CAS), or main returning. */
enum { STOP_NONE, STOP_ASKED, STOP_MAIN };
static _Atomic uint64_t rt_stop;

int mote_stop(int status) {
    if (!mote__sched_running())
        return -ESHUTDOWN;
    uint64_t none = STOP_NONE, asked = (uint64_t)(uint32_t)status << 8 | STOP_ASKED;
    if (atomic_compare_exchange_strong(&rt_stop, &none, asked))
        mote__proc_cancel_main(); /* main is told first */
    return 0;
}

int mote_run(const mote_config *cfg, mote_main_fn main, void *arg) {
    if (!main)
        return -EINVAL;
    mote_config c = {0};
    if (cfg)
        c = *cfg;
    bool expect = false;
    if (!atomic_compare_exchange_strong(&rt_busy, &expect, true))
        return -EBUSY;

    /* A write to a closed socket or pipe must return EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    unsigned budget = c.msg_budget ? c.msg_budget : (unsigned)mote__env_size("MOTE_MSG_BUDGET", 64);
    mote__proc_set_budget(budget);
    int r = -EINVAL;
    if (c.blocking_threshold < 0)
        goto out;
    unsigned np = c.netpoll_threads ? c.netpoll_threads
                                    : (unsigned)mote__env_size("MOTE_NETPOLL_THREADS", 1);
    if (np > 64)
        goto out;
    int64_t grace = c.stop_grace ? c.stop_grace
                                 : (int64_t)mote__env_size("MOTE_STOP_GRACE", (size_t)MOTE_SEC(5));
    if (grace < 0)
        goto out;
    atomic_store(&rt_stop, STOP_NONE);
    mote__netpoll_configure(np);
    mote__sched_config sc = {.threads = c.threads,
                             .stack_size = c.stack_size,
                             .backup_threads = c.backup_threads,
                             .blocking_threshold = c.blocking_threshold};
    r = mote__timer_start();
    if (r < 0)
        goto out;
    r = mote__sched_start(&sc, &mote__proc_hooks);
    if (r < 0) {
        mote__timer_stop();
        goto out;
    }
    int result = 0;
    mote_proc *mp;
    r = mote__proc_spawn_main(&mp, main, arg, &result);
    if (r == 0) {
        mote__sched_run_main(&mp->task);
        uint64_t stop = STOP_NONE;
        bool asked = !atomic_compare_exchange_strong(&rt_stop, &stop, STOP_MAIN);
        r = asked ? (int)(uint32_t)(stop >> 8) : result;
        /* Processes end through their own code while everything runs. */
        mote__proc_shutdown(asked, grace);
    }
    /* Order matters: workers stop first (a running process may still arm a
     * timer); then the timer thread (its wakes are ignored once the
     * scheduler stops); only then are processes, stacks and futures freed. */
    mote__sched_stop(NULL);
    mote__stdio_shutdown();
    mote__netpoll_stop();
    mote__timer_stop();
    mote__proc_reap_all();
    mote__futures_reap_all();
    mote__alloc_release_all();
out:
    atomic_store(&rt_busy, false);
    return r;
}

unsigned mote_threads(void) {
    return mote__sched_threads();
}
