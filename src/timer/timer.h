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

/* Who else fires timers (the scheduler: busy workers at their scheduling
 * points, an idle worker that sleeps until the next deadline). While
 * covered() is true they fire due timers on time, and the timer thread
 * fires a timer only 1 ms after its deadline, as a fallback: it costs the
 * workers no CPU, and the task a timer wakes runs next on the worker that
 * fired it instead of queueing behind a backlog. earliest(when) is called
 * (without the lock) when an armed timer became the earliest, so a worker
 * sleeping until a later deadline can wake up sooner. NULL: none. */
typedef struct mote__timer_hooks {
    bool (*covered)(void);
    void (*earliest)(int64_t when);
} mote__timer_hooks;
void mote__timer_set_hooks(const mote__timer_hooks *hooks);
/* Timers armed and fired since the runtime started (metrics). */
void mote__timer_counts(uint64_t *armed, uint64_t *fired);

/* Disarm t. True if it was armed (it will not fire); false if it already
 * fired or was never armed. Either way fire() is not running on return. */
bool mote__timer_cancel(mote__timer *t);

#endif
