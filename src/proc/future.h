/*
 * future.h -- waiters and futures (the proc/ layer's lower half; future.c).
 *
 * A waiter is what a waiting process or foreign thread registers with the
 * sources that may wake it; a single-waiter slot is the handshake through
 * which one source wakes it; a future is a slot plus a result. Processes
 * (proc.h) wait on futures and on their mailbox through waiters.
 */
#ifndef MOTE_FUTURE_H
#define MOTE_FUTURE_H

#include <sched.h>

#include "sched/sched.h"
#include "timer/timer.h"

/* ---- Waiters ---- */

/* What a suspended process waits for (mote__wait_note.kind; see ctx.h),
 * for dumps and debuggers. arg and obj by kind:
 *   RECEIVE  -                 -
 *   AWAIT    -                 the future's address
 *   CALL     -                 the callee's process id
 *   POLL     number of futures -
 *   SLEEP    -                 -
 *   FD       the descriptor    MOTE_READABLE | MOTE_WRITABLE
 *   RESOLVE  -                 -  (a host name lookup)
 *   OTHER    -                 -  (a wait that did not say)          */
enum mote__wait_kind {
    MOTE__WAIT_NONE = 0,
    MOTE__WAIT_RECEIVE,
    MOTE__WAIT_AWAIT,
    MOTE__WAIT_CALL,
    MOTE__WAIT_POLL,
    MOTE__WAIT_SLEEP,
    MOTE__WAIT_FD,
    MOTE__WAIT_RESOLVE,
    MOTE__WAIT_OTHER,
};

/* A waiter: what a waiting process or foreign thread registers with the
 * sources that may wake it (futures, timers). Lives on the waiter's stack
 * for the duration of one wait; every source is unregistered (and any
 * in-flight wake finished) before the wait returns. */
typedef struct mote__waiter {
    mote__task *task;        /* NULL for a foreign thread */
    _Atomic uint64_t seq;    /* park seq of the current wait */
    _Atomic uint32_t futex;  /* foreign thread: 1 once woken */
    _Atomic uint32_t events; /* futures that completed while registered */
    _Atomic bool timed_out;
    bool timer_armed;
    int err; /* -ENOMEM: the wait could not start (no stack to park on, no timer room) */
    bool cancelled; /* the waiting process was cancelled: the wait ended */
    mote__timer timer;
    mote__wait_note note; /* the stack header points here while it parks */
} mote__waiter;

void mote__waiter_init(mote__waiter *w);
/* Say what w waits for (after mote__waiter_init; see MOTE__WAIT_*). */
static inline void mote__waiter_note(mote__waiter *w, uint32_t kind, int32_t arg, uint64_t obj) {
    w->note.kind = kind;
    w->note.arg = arg;
    w->note.obj = obj;
}
/* Arm w for the next sleep (a new park sequence, or a cleared futex
 * word). The caller then re-checks its condition, and sleeps only if it
 * still does not hold: a wake after the arm is never lost. False if the
 * waiting process was cancelled: it must not sleep (w->cancelled is then
 * set); the arm and mote__proc_cancel form a Dekker pair, so a cancel
 * racing with the start of a wait is never lost (cancel.c). */
bool mote__waiter_arm(mote__waiter *w);
/* Sleep until woken or the deadline (absolute; < 0 forever) passes. If it
 * cannot (no stack for the worker to carry on with, no room for the timer)
 * it returns at once with w->err set to -ENOMEM. */
void mote__waiter_sleep(mote__waiter *w, int64_t deadline);
/* Wake w without an event (its timer). */
void mote__waiter_wake(mote__waiter *w);
/* One event for w: bump its count, then wake it. The count is published
 * before the waiter's park sequence is read, so a waiter that armed and
 * then looked at the count either sees it or is woken. */
void mote__waiter_notify(mote__waiter *w);
/* Wait for an event, the timeout (ns; < 0 forever; 0 not at all), a
 * cancel, or a failure to wait. Returns 0 (an event), -ETIMEDOUT,
 * -ECANCELED or -ENOMEM (w->err). */
int mote__waiter_wait(mote__waiter *w, int64_t timeout);
void mote__waiter_done(mote__waiter *w);

/* ---- Single-waiter slots ---- */

/*
 * A single-waiter slot: one atomic word through which a source (a future's
 * producer, the poller, a resolver thread) wakes at most one waiter. It
 * holds a waiter* or a small tag below MOTE__SLOT_TAGS that its source
 * defines: 0 is "nobody waits", MOTE__SLOT_BUSY "the source took the waiter
 * out and is notifying it". A waiter leaves with mote__slot_leave(), which
 * spins past BUSY, so no source touches a waiter (it lives on a stack)
 * after its wait returned.
 */
typedef _Atomic uintptr_t mote__slot;
#define MOTE__SLOT_BUSY ((uintptr_t)1)
#define MOTE__SLOT_TAGS ((uintptr_t)4) /* waiters are aligned: never below */

static inline bool mote__slot_holds_waiter(uintptr_t v) {
    return v >= MOTE__SLOT_TAGS;
}

/* Source side: if the slot holds a waiter, take it out (BUSY), notify it
 * and leave `after` in the slot. False, with nothing done, if it holds a
 * tag. */
static inline bool mote__slot_wake(mote__slot *slot, uintptr_t after) {
    uintptr_t v = atomic_load(slot);
    while (mote__slot_holds_waiter(v)) {
        if (atomic_compare_exchange_weak(slot, &v, MOTE__SLOT_BUSY)) {
            MOTE_ASSERT(v % _Alignof(mote__waiter) == 0);
            mote__waiter_notify((mote__waiter *)v);
            atomic_store(slot, after);
            return true;
        }
    }
    return false;
}

/* Waiter side: take w out of its slot (leaving 0). False if it was still
 * there; true if a source took it first, once that source is done with w
 * (the slot is past BUSY). */
/* Spin while the slot is BUSY: a source is between taking a waiter out
 * and leaving its value. The notify in between can wake a thread that
 * preempts the source on its own CPU (every thread pinned to one core, or
 * more threads than cores): yield now and then, so it gets to finish. */
static inline void mote__slot_spin_busy(mote__slot *slot) {
    for (unsigned i = 1; atomic_load(slot) == MOTE__SLOT_BUSY; i++) {
        mote__cpu_relax();
        if ((i & 15) == 0)
            sched_yield();
    }
}

static inline bool mote__slot_leave(mote__slot *slot, mote__waiter *w) {
    uintptr_t exp = (uintptr_t)w;
    if (atomic_compare_exchange_strong(slot, &exp, 0))
        return false;
    mote__slot_spin_busy(slot);
    MOTE_ASSERT_MSG(atomic_load(slot) != (uintptr_t)w, "a waiter is registered only during its wait");
    return true;
}

/* ---- Futures ---- */

/* Future: its slot `w` is the whole protocol:
 *   0         pending, nobody waiting
 *   waiter*   pending, a waiter registered (only during a wait)
 *   BUSY      the producer is storing the result and waking the waiter
 *   DONE      result ready
 *   DROPPED   consumer gone: the producer frees the future */
#define MOTE__FW_BUSY MOTE__SLOT_BUSY
#define MOTE__FW_DONE ((uintptr_t)2)
#define MOTE__FW_DROPPED ((uintptr_t)3)

enum {
    MOTE__FUT_STACK = 0,
    MOTE__FUT_HEAP = 1,
    MOTE__FUT_TIMER = 2,
    MOTE__FUT_MSG = 3,  /* inside a process's mote_call message (owner; proc.c) */
    MOTE__FUT_EXIT = 4, /* a monitor's: its result holds an exit notice (res.p) */
};

struct mote_future {
    mote__slot w;
    mote_result res;
    uint16_t kind;
    bool foreign; /* made by a foreign thread: it owns it, even past shutdown */
    union {
        struct {
            struct mote_future *reg_prev, *reg_next; /* heap futures: registry */
        };
        void *owner; /* MOTE__FUT_MSG: the mote__msg it is part of */
    };
    mote__timer timer; /* MOTE__FUT_TIMER */
};

/* Store the result and wake the waiter; false if the consumer had dropped
 * the future (it is freed, and r with it is not delivered). */
bool mote__future_complete(mote_future *f, mote_result r);
void mote__future_init_stack(mote_future *f);
mote_future *mote__future_new(uint32_t kind);
/* 0 once f is done; -ETIMEDOUT, or -ECANCELED if the waiting process was
 * cancelled. */
int mote__future_wait(mote_future *f, int64_t timeout);
/* The same, saying what for (MOTE__WAIT_CALL and the callee's id). */
int mote__future_wait_for(mote_future *f, int64_t timeout, uint32_t kind, uint64_t obj);
/* The consumer lets go of f (mote_future_drop, for any kind). */
void mote__future_release(mote_future *f);
void mote__futures_reap_all(void);

#endif
