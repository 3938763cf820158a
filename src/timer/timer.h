/*
 * timer.h -- one timer thread with a binary min-heap of deadlines
 * (layer above base/; knows nothing of tasks).
 *
 * A timer's fire() runs on the timer thread WITH the timer lock held. That
 * is what makes mote__timer_cancel() final: once it returns, fire() has
 * either run to completion or never will, so the timer's memory (often on a
 * process stack) may be reused at once. fire() must therefore be short and
 * must not call back into this module.
 *
 * Known weakness: one lock and one thread for all timers. Per-worker heaps
 * (Go) would scale better under heavy timeout churn; a single thread keeps
 * lateness low (bench/ sleep measures it) and the code small.
 */
#ifndef MOTE_TIMER_H
#define MOTE_TIMER_H

#include "base/base.h"

typedef struct mote__timer {
    int64_t when;  /* absolute mote__now() deadline */
    uint32_t slot; /* heap index + 1; 0 when not armed */
    void (*fire)(struct mote__timer *t);
} mote__timer;

int mote__timer_start(void);
/* Stop the thread. Timers still armed are dropped without firing. */
void mote__timer_stop(void);
/* Arm t (t->when and t->fire set). Returns 0 or -ENOMEM. */
int mote__timer_add(mote__timer *t);
/* The earliest armed deadline, or INT64_MAX. Lock-free (may be stale). */
int64_t mote__timer_next(void);
/* Fire every expired timer on the calling thread. Idle workers call this
 * after sleeping until mote__timer_next(): the woken task then runs on that
 * worker at once, one thread wake-up instead of two. */
void mote__timer_run_expired(void);

/* Disarm t. True if it was armed (it will not fire); false if it already
 * fired or was never armed. Either way fire() is not running on return. */
bool mote__timer_cancel(mote__timer *t);

#endif
