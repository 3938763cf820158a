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
 *   OTHER    -                 -  (a wait that did not say)
 *   WAITSET  number of sources -                                     */
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
    MOTE__WAIT_WAITSET,
};

/*
 * A hook: what a single-waiter slot (below) holds for a persistent
 * registration (a wait set's source, io/waitset.c) instead of a waiter. A
 * source notifies a hook with a reason and leaves it in the slot; it takes
 * a waiter out. Waiters begin with a hook whose notify is NULL, which is
 * how a source tells the two apart.
 */
typedef struct mote__hook {
    void (*notify)(struct mote__hook *h, unsigned why);
} mote__hook;

/* Reasons a hook is notified (bits). */
#define MOTE__HOOK_READ 1u    /* readiness to read (a poll descriptor) */
#define MOTE__HOOK_WRITE 2u   /* readiness to write */
#define MOTE__HOOK_DONE 4u    /* the future completed; a timer fired */
#define MOTE__HOOK_DROPPED 8u /* the future was dropped while hooked */

/* A waiter: what a waiting process or foreign thread registers with the
 * sources that may wake it (futures, poll descriptors). Lives on the
 * waiter's stack for the duration of one wait; every source is
 * unregistered (and any in-flight wake finished) before the wait returns.
 * Its deadline is not on the stack: a process's timed sleeps share one
 * persistent timer (mote__wake_timer), so no timer ever points at a stack. */
typedef struct mote__waiter {
    mote__hook hook;         /* notify NULL: a waiter, not a hook */
    mote__task *task;        /* NULL for a foreign thread */
    _Atomic uint64_t seq;    /* park seq of the current wait */
    _Atomic uint32_t futex;  /* foreign thread: 1 once woken */
    _Atomic uint32_t events; /* futures that completed while registered */
    _Atomic bool timed_out;
    int err; /* -ENOMEM: the wait could not start (no stack to park on, no timer room) */
    bool cancelled; /* the waiting process was cancelled: the wait ended */
    mote__wait_note note; /* the stack header points here while it parks */
} mote__waiter;

/*
 * A process's deadline: one timer per process (in its extension, made on
 * its first timed sleep), re-armed by every timed sleep with a plain store
 * while its deadline only moves later (timer.h). A sleep publishes its park
 * sequence, then the deadline; the timer wakes the sequence it reads after
 * taking the deadline, so a late or stale fire wakes nothing (the
 * sequence has moved on) or is told apart by the clock. It touches only
 * this struct and the task, which live until the process is freed, and
 * the process cancels it (final) before that.
 */
typedef struct mote__wake_timer {
    mote__timer timer;
    mote__task *task;
    _Atomic uint64_t seq;   /* park sequence of the timed sleep */
    _Atomic uint64_t fired; /* the sequence the timer last woke */
} mote__wake_timer;

void mote__wake_timer_init(mote__wake_timer *d, mote__task *t);
/* The process layer: t's deadline, made on first use; NULL without memory. */
mote__wake_timer *mote__task_wake_timer(mote__task *t);

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
/* Wake w without an event. */
void mote__waiter_wake(mote__waiter *w);
/* One event for w: bump its count, then wake it. The count is published
 * before the waiter's park sequence is read, so a waiter that armed and
 * then looked at the count either sees it or is woken. */
void mote__waiter_notify(mote__waiter *w);
/* Wait for an event, the timeout (ns; < 0 forever; 0 not at all), a
 * cancel, or a failure to wait. Returns 0 (an event), -ETIMEDOUT,
 * -ECANCELED or -ENOMEM (w->err). */
int mote__waiter_wait(mote__waiter *w, int64_t timeout);
/* The same until an absolute deadline (< 0 forever): a caller that has
 * one does not read the clock again. */
int mote__waiter_wait_until(mote__waiter *w, int64_t deadline);

/* ---- Single-waiter slots ---- */

/*
 * A single-waiter slot: one atomic word through which a source (a future's
 * producer, the poller, a resolver thread) wakes at most one waiter. It
 * holds a waiter*, a hook* or a small tag below MOTE__SLOT_TAGS that its
 * source defines: 0 is "nobody waits", MOTE__SLOT_BUSY "the source took the
 * waiter (or hook) out and is notifying it". A waiter leaves with
 * mote__slot_leave(), which spins past BUSY, so no source touches a waiter
 * (it lives on a stack) after its wait returned; a hook's owner takes it
 * out the same way before it frees it.
 */
typedef _Atomic uintptr_t mote__slot;
#define MOTE__SLOT_BUSY ((uintptr_t)1)
#define MOTE__SLOT_TAGS ((uintptr_t)4) /* waiters are aligned: never below */

static inline bool mote__slot_holds_waiter(uintptr_t v) {
    return v >= MOTE__SLOT_TAGS;
}

/* Source side, with the slot at BUSY: notify v, a waiter or a hook, and
 * return what to leave in the slot: `after` for a waiter (taken out), v
 * itself for a hook (it stays). */
static inline uintptr_t mote__slot_notify(uintptr_t v, uintptr_t after, unsigned why) {
    mote__hook *h = (mote__hook *)v;
    if (h->notify) {
        h->notify(h, why);
        return v;
    }
    mote__waiter_notify((mote__waiter *)v);
    return after;
}

/* Source side: if the slot holds a waiter or a hook, notify it (why: for
 * a hook) through BUSY, leaving `after` in place of a waiter. False, with
 * nothing done, if it holds a tag. */
static inline bool mote__slot_wake(mote__slot *slot, uintptr_t after, unsigned why) {
    uintptr_t v = atomic_load(slot);
    while (mote__slot_holds_waiter(v)) {
        if (atomic_compare_exchange_weak(slot, &v, MOTE__SLOT_BUSY)) {
            MOTE_ASSERT(v % _Alignof(mote__hook) == 0);
            atomic_store(slot, mote__slot_notify(v, after, why));
            return true;
        }
    }
    return false;
}

/* One turn of a spin past a BUSY slot. A source holds BUSY between taking
 * a waiter or hook out and leaving its value; the notify in between can
 * wake a thread that preempts the source on its own CPU (every thread
 * pinned to one core, or more threads than cores), which would then spin
 * out its whole time slice: yield now and then, so the source finishes. */
static inline void mote__slot_pause(unsigned *spins) {
    mote__cpu_relax();
    if ((++*spins & 15) == 0)
        sched_yield();
}

/* Waiter side: take w out of its slot (leaving 0). False if it was still
 * there; true if a source took it first, once that source is done with w
 * (the slot is past BUSY). (A hook's owner uses mote__slot_unhook.) */
static inline bool mote__slot_leave(mote__slot *slot, mote__waiter *w) {
    uintptr_t exp = (uintptr_t)w;
    if (atomic_compare_exchange_strong(slot, &exp, 0))
        return false;
    for (unsigned spins = 0; atomic_load(slot) == MOTE__SLOT_BUSY;)
        mote__slot_pause(&spins);
    MOTE_ASSERT_MSG(atomic_load(slot) != (uintptr_t)w, "a waiter is registered only during its wait");
    return true;
}

/* Hook side: take h out of the slot (it must be there, or BUSY with it):
 * waits until no source is notifying it and returns with the slot at BUSY;
 * the caller then stores what the slot is to hold. */
static inline void mote__slot_unhook(mote__slot *slot, mote__hook *h) {
    for (unsigned spins = 0;;) {
        uintptr_t exp = (uintptr_t)h;
        if (atomic_compare_exchange_weak(slot, &exp, MOTE__SLOT_BUSY))
            return;
        mote__slot_pause(&spins);
    }
}

/* ---- Futures ---- */

/* Future: its slot `w` is the whole protocol:
 *   0         pending, nobody waiting
 *   waiter*   pending, a waiter registered (only during a wait)
 *   BUSY      the producer is storing the result and waking the waiter
 *   DONE      result ready
 *   DROPPED   consumer gone: the producer frees the future
 *   hook*     in a wait set (io/waitset.c) until the set lets go of it:
 *             completing or dropping it notifies the hook, which stays,
 *             and records it in `hooked` (under BUSY) for the set */
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
    uint8_t hooked; /* MOTE__HOOK_DONE / _DROPPED while a hook holds the slot */
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
/* mote__future_wait until an absolute deadline (< 0: none): a caller that
 * has one does not read the clock again. */
int mote__future_wait_until(mote_future *f, int64_t deadline);
/* The consumer lets go of f (mote_future_drop, for any kind). */
void mote__future_release(mote_future *f);
void mote__futures_reap_all(void);
/* Put hook h in f's slot. 1 if hooked; 0 if hooked but f is done already
 * (nothing will notify h: its owner takes note itself); -EBUSY if f is
 * awaited or hooked already; -EINVAL if dropped. */
int mote__future_hook(mote_future *f, mote__hook *h);
/* Take h out of f: f is then as if never hooked (done if it completed);
 * if it was dropped meanwhile, it is dropped now (maybe freed). Returns
 * MOTE__HOOK_DONE / _DROPPED bits: what happened while hooked. */
unsigned mote__future_unhook(mote_future *f, mote__hook *h);

#endif
