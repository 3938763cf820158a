/*
 * timer.h -- deadlines: a binary min-heap under a mutex whose entries are
 * re-armed lazily, and one thread that fires them (layer above base/;
 * knows nothing of tasks).
 *
 * A timer has two deadlines. `when` is the one its owner wants (a plain
 * atomic store sets it); `queued` is the key of its heap entry, changed
 * only under the lock. Moving a deadline later, the common case (a socket
 * read with a 60 s timeout moves its process's deadline on every read), is
 * a store of `when` and a load of `queued`: no lock, no heap work. The
 * entry then fires early; the heap sees that `when` moved, and re-inserts
 * it at `when` instead of calling fire() (Go's modtimer does the same).
 * Only moving a deadline earlier than its entry, or arming a timer that has
 * no entry, takes the lock.
 *
 * Who writes what: the owner stores `when` (set, disarm) or swaps it
 * (reset); the heap, under the lock, takes `when` to OFF with a CAS just
 * before it calls fire(), so fire() runs once per deadline that passed, and
 * a reset that races with it either moves the deadline or sees OFF. The
 * owner stores `when` and then loads `queued`; the heap stores `queued`
 * (OFF when it pops an entry) and then loads `when` (both seq_cst), so
 * either the owner sees that the entry is gone and inserts one, or the heap
 * sees the new deadline and re-inserts it: a deadline is never lost.
 *
 * fire() runs WITH the timer lock held. That is what makes cancel final:
 * once mote__timers_cancel() returns, fire() has either run to completion
 * or never will, so the timer's memory may be freed. fire() must be short
 * and must not call back into this module. mote__timer_disarm() is lazy
 * and not final: a fire() already under way may still run after it, so it
 * is for owners whose fire() only wakes a park sequence that may be stale.
 *
 * The heap and its lazy protocol are an instance (mote__timers), so tests
 * drive one with their own clock; the runtime has one instance, fired by
 * its timer thread and by idle workers (mote__timer_*).
 *
 * Known weakness: one lock for all timers. Re-arming later takes no lock,
 * but arming a fresh timer (a sleep, a timer future) and every firing do;
 * per-worker heaps (Go) would spread that under heavy sleep churn.
 */
#ifndef MOTE_TIMER_H
#define MOTE_TIMER_H

#include "base/base.h"

#include <errno.h>
#include <pthread.h>

/* `when` or `queued` of a timer with no deadline or no heap entry. */
#define MOTE__TIMER_OFF INT64_MAX

typedef struct mote__timer {
    _Atomic int64_t when;   /* wanted deadline (mote__now() time) or OFF */
    _Atomic int64_t queued; /* key of its heap entry, or OFF */
    uint32_t slot;          /* heap index + 1, 0 without an entry (under the lock) */
    void (*fire)(struct mote__timer *t);
} mote__timer;

typedef struct mote__timer_entry {
    int64_t key; /* the timer's `queued`, beside it: sifting never chases a pointer */
    mote__timer *t;
} mote__timer_entry;

typedef struct mote__timers {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mote__timer_entry *heap;
    uint32_t n, cap;
    int64_t sleeping_until; /* deadline the thread sleeps to; OFF if none */
    _Atomic int64_t next;   /* earliest key, for idle workers (may be stale) */
    /* Counts (metrics): deadlines the heap took (a timer without an
     * entry, or moved earlier; one moved later lazily is not counted) and
     * fire() calls. */
    uint64_t armed, fired;
    bool stop;
    pthread_t thread;
} mote__timers;

void mote__timer_init(mote__timer *t, void (*fire)(mote__timer *t));

/* ---- One heap (tests make their own) ---- */

void mote__timers_init(mote__timers *ts);
/* Forget every entry (their timers keep `when`; cancel still works). */
void mote__timers_destroy(mote__timers *ts);
int mote__timers_set_slow(mote__timers *ts, mote__timer *t);

/* Arm t for `when`, or move its deadline (either way). Lock-free when t
 * has an entry that fires no later than `when`. Returns 0 or -ENOMEM. A
 * fire() for the previous deadline may still run after it returns. */
static inline int mote__timers_set(mote__timers *ts, mote__timer *t, int64_t when) {
    atomic_store(&t->when, when);
    MOTE_STORE_LOAD_FENCE(); /* then look at the entry */
    if (atomic_load(&t->queued) <= when)
        return 0; /* the entry fires first and is re-inserted at `when` */
    return mote__timers_set_slow(ts, t);
}

/* Move the deadline of an armed t to `when`; -EALREADY if t has none (it
 * fired, or was cancelled or disarmed): a fired timer is never re-armed
 * by a reset that raced with it. */
static inline int mote__timers_reset(mote__timers *ts, mote__timer *t, int64_t when) {
    int64_t old = atomic_load(&t->when);
    do
        if (old == MOTE__TIMER_OFF)
            return -EALREADY;
    while (!atomic_compare_exchange_weak(&t->when, &old, when));
    MOTE_STORE_LOAD_FENCE();
    if (atomic_load(&t->queued) <= when)
        return 0;
    return mote__timers_set_slow(ts, t);
}

/* Final: t will not fire, and its fire() is not running. True if t had a
 * deadline that had not fired. */
bool mote__timers_cancel(mote__timers *ts, mote__timer *t);
/* Fire every timer whose deadline is <= now, on the calling thread. */
void mote__timers_fire_due(mote__timers *ts, int64_t now);
/* The earliest entry's key (OFF if none): a time to wake up at, which may
 * be early (a timer moved later) but never late. */
static inline int64_t mote__timers_next(mote__timers *ts) {
    return atomic_load_explicit(&ts->next, memory_order_relaxed);
}

/* ---- The runtime's timers ---- */

extern mote__timers mote__rt_timers;

int mote__timer_start(void);
/* Fire nothing any more (fires run under the lock, so none is under way
 * on return); timers may still be armed, and are dropped by the stop. */
void mote__timer_halt(void);
/* Halt, join the thread and forget every timer still armed. */
void mote__timer_stop(void);

static inline int mote__timer_set(mote__timer *t, int64_t when) {
    return mote__timers_set(&mote__rt_timers, t, when);
}
static inline int mote__timer_reset(mote__timer *t, int64_t when) {
    return mote__timers_reset(&mote__rt_timers, t, when);
}
/* Lazy: t's deadline is gone, its entry stays until it comes up (or t is
 * armed again later than it: then nothing is done at all). Not final. */
static inline void mote__timer_disarm(mote__timer *t) {
    atomic_store_explicit(&t->when, MOTE__TIMER_OFF, memory_order_relaxed);
}
static inline bool mote__timer_cancel(mote__timer *t) {
    return mote__timers_cancel(&mote__rt_timers, t);
}
/* The earliest armed deadline, or OFF. Lock-free (may be early). */
static inline int64_t mote__timer_next(void) {
    return mote__timers_next(&mote__rt_timers);
}
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
 * (without the lock, but never after mote__timer_set_hooks replaced the
 * hooks) when an armed timer became the earliest, so a worker
 * sleeping until a later deadline can wake up sooner. NULL: none. */
typedef struct mote__timer_hooks {
    bool (*covered)(void);
    void (*earliest)(int64_t when);
} mote__timer_hooks;
void mote__timer_set_hooks(const mote__timer_hooks *hooks);
/* Timers armed and fired since the runtime started (metrics). */
void mote__timer_counts(uint64_t *armed, uint64_t *fired);

#endif
