/*
 * future.c -- futures, waiters, await, await-with-timeout, poll, timers as
 * futures.
 *
 * The protocol lives in one atomic word per future, a single-waiter slot
 * (see future.h). The producer exchanges it to BUSY, notifies the
 * registered waiter if any, and stores DONE; a waiter that unregisters and
 * finds BUSY spins until DONE, so no producer ever touches a waiter (on a
 * stack) after the wait returned.
 *
 * Wake counting: the producer bumps the waiter's `events` before waking it,
 * so a process waiting on any number of futures is woken once per future
 * that becomes ready, and only then; it never wakes just to rescan.
 * mote_poll costs O(n) per call (register, then unregister and collect) and
 * O(1) per completion while it waits.
 */
#include "proc/proc.h" /* a wait reads its process's cancel flag */
#include "base/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- Registry of heap futures: freed at shutdown if a process never took
 * its result (it may have ended suspended, or never awaited). ---- */

#define FREG_SHARDS 16
static struct {
    mote__spinlock lock;
    mote_future *head;
} freg[FREG_SHARDS];

static unsigned freg_shard(mote_future *f) {
    return (unsigned)(((uintptr_t)f >> 6) % FREG_SHARDS);
}

mote_future *mote__future_new(uint32_t kind) {
    /* A foreign thread may still be waiting on its future when the runtime
     * shuts down (it then resolves with -ECANCELED): such futures come from
     * malloc and stay out of the registry, so shutdown never frees them. */
    bool foreign = !mote__on_runtime_thread();
    mote_future *f = foreign ? malloc(sizeof *f) : mote__alloc(sizeof *f);
    if (!f)
        return NULL;
    atomic_init(&f->w, 0);
    f->res = mote_error(0);
    f->kind = (uint16_t)kind;
    f->foreign = foreign;
    f->hooked = 0;
    if (foreign)
        return f;
    unsigned s = freg_shard(f);
    mote__spin_lock(&freg[s].lock);
    f->reg_prev = NULL;
    f->reg_next = freg[s].head;
    if (f->reg_next)
        f->reg_next->reg_prev = f;
    freg[s].head = f;
    mote__spin_unlock(&freg[s].lock);
    return f;
}

static void future_free(mote_future *f) {
    if (f->kind == MOTE__FUT_STACK)
        return;
    if (f->kind == MOTE__FUT_MSG) {
        /* The caller went without its reply: a process reference in it
         * would never be released. */
        mote__msg *m = f->owner;
        if ((m->kind & MOTE__MSG_PROC_RESULT) && f->res.err == 0 && f->res.p)
            mote_proc_release(f->res.p);
        mote__msg_free(m);
        return;
    }
    if (f->foreign) {
        free(f);
        return;
    }
    unsigned s = freg_shard(f);
    mote__spin_lock(&freg[s].lock);
    if (f->reg_prev)
        f->reg_prev->reg_next = f->reg_next;
    else
        freg[s].head = f->reg_next;
    if (f->reg_next)
        f->reg_next->reg_prev = f->reg_prev;
    mote__spin_unlock(&freg[s].lock);
    mote__free(f, sizeof *f);
}

void mote__futures_reap_all(void) {
    for (int i = 0; i < FREG_SHARDS; i++) {
        mote__spin_lock(&freg[i].lock);
        mote_future *f = freg[i].head;
        freg[i].head = NULL;
        mote__spin_unlock(&freg[i].lock);
        while (f) {
            mote_future *next = f->reg_next;
            if (f->kind == MOTE__FUT_EXIT && f->w == MOTE__FW_DONE)
                mote__mon_free_exit_msg(f->res.p);
            mote__free(f, sizeof *f);
            f = next;
        }
    }
}

void mote__future_init_stack(mote_future *f) {
    atomic_init(&f->w, 0);
    f->res = mote_error(0);
    f->kind = MOTE__FUT_STACK;
    f->foreign = false;
    f->hooked = 0;
}

/* ---- Deadlines ---- */

/* Under the timer lock, once the deadline passed: wake the sleep whose
 * sequence was published before the deadline was (see future.h). */
static void deadline_fire(mote__timer *t) {
    mote__wake_timer *d = mote__container_of(t, mote__wake_timer, timer);
    uint64_t seq = atomic_load(&d->seq);
    atomic_store(&d->fired, seq);
    mote__task_wake(d->task, seq);
}

void mote__wake_timer_init(mote__wake_timer *d, mote__task *t) {
    mote__timer_init(&d->timer, deadline_fire);
    d->task = t;
    atomic_init(&d->seq, 0);
    atomic_init(&d->fired, 0);
}

/* ---- Waiters ---- */

void mote__waiter_init(mote__waiter *w) {
    w->hook.notify = NULL;
    w->task = mote__task_current();
    atomic_init(&w->seq, 0);
    atomic_init(&w->futex, 0);
    atomic_init(&w->events, 0);
    atomic_init(&w->timed_out, false);
    w->err = 0;
    w->cancelled = false;
    w->note.kind = MOTE__WAIT_OTHER; /* until the wait says what it is */
}

/*
 * A process's wait publishes its new park sequence (park_prepare's CAS on
 * the state word), then loads its cancel flag; mote__proc_cancel stores
 * the flag, then loads the state word and wakes that sequence. One of the
 * two sees the other, so a cancel that races with the start of a wait is
 * never lost (docs/design.md, "Cancellation").
 */
static inline bool waiter_arm(mote__waiter *w) {
    MOTE_ASSERT_MSG(w->task == mote__task_current(), "a waiter waits where it was made");
    if (w->task) {
        atomic_store(&w->seq, mote__park_prepare());
        MOTE_STORE_LOAD_FENCE();
        if (mote__cancel_pending((mote_proc *)w->task)) {
            w->cancelled = true;
            return false;
        }
    } else {
        atomic_store(&w->futex, 0);
    }
    MOTE_STORE_LOAD_FENCE(); /* then the caller looks for events */
    return true;
}

bool mote__waiter_arm(mote__waiter *w) {
    return waiter_arm(w);
}

/* A process's timed sleep: its deadline timer is armed only while it
 * sleeps (moving it later costs two stores and a load), and disarmed
 * lazily after. Timed out: the timer woke this very sleep, and the clock
 * agrees (a fire that took an earlier sleep's deadline may read this
 * sleep's sequence: it wakes it once, spuriously). */
/* Park w's task. The stack points at the note while the task is parked
 * on it; wiped after, so a park that says nothing never shows an old one. */
static void park_noted(mote__waiter *w, int64_t deadline) {
    const mote__wait_note **note = &w->task->stack->wait;
    w->note.until = deadline;
    *note = &w->note;
    if (mote__park() < 0)
        w->err = -ENOMEM; /* no stack for the worker to carry on with */
    *note = NULL;
}

static void task_sleep(mote__waiter *w, int64_t deadline) {
    if (deadline < 0) {
        park_noted(w, deadline);
        return;
    }
    mote__wake_timer *d = mote__task_wake_timer(w->task);
    uint64_t seq = atomic_load(&w->seq);
    if (d)
        atomic_store(&d->seq, seq);
    if (!d || mote__timer_set(&d->timer, deadline) != 0) {
        w->err = -ENOMEM; /* cannot time a wait: give up now */
        return;
    }
    park_noted(w, deadline);
    mote__timer_disarm(&d->timer);
    if (!w->err && atomic_load(&d->fired) == seq && mote__now() >= deadline)
        atomic_store(&w->timed_out, true);
}

void mote__waiter_sleep(mote__waiter *w, int64_t deadline) {
    if (w->task) {
        task_sleep(w, deadline);
        return;
    }
    int64_t left = -1;
    if (deadline >= 0) {
        left = deadline - mote__now();
        if (left <= 0) {
            atomic_store(&w->timed_out, true);
            return;
        }
    }
    if (mote__spin_while(&w->futex, 0, left < 0 || left > MOTE_SPIN_NS ? MOTE_SPIN_NS : left))
        return;
    if (deadline >= 0 && (left = deadline - mote__now()) <= 0) {
        atomic_store(&w->timed_out, true);
        return;
    }
    if (mote__futex_wait(&w->futex, 0, left) == -ETIMEDOUT)
        atomic_store(&w->timed_out, true);
}

void mote__waiter_wake(mote__waiter *w) {
    if (w->task) {
        mote__task_wake(w->task, atomic_load(&w->seq));
    } else {
        atomic_store(&w->futex, 1);
        mote__futex_wake(&w->futex, 1);
    }
}

void mote__waiter_notify(mote__waiter *w) {
    atomic_fetch_add(&w->events, 1);
    MOTE_STORE_LOAD_FENCE();
    mote__waiter_wake(w);
}

/* What a wait that stopped says: 0 (an event), -ECANCELED, -ENOMEM or
 * -ETIMEDOUT. */
static int waiter_result(mote__waiter *w) {
    if (atomic_load(&w->events) > 0)
        return 0;
    return w->cancelled ? -ECANCELED : w->err ? w->err : -ETIMEDOUT;
}

/* True if the wait should stop. */
static bool waiter_should_stop(mote__waiter *w) {
    return atomic_load(&w->events) > 0 || atomic_load(&w->timed_out) || w->err;
}

/* Sleep on w until an event, the deadline, a cancel, or (timeout == 0)
 * not at all. */
int mote__waiter_wait(mote__waiter *w, int64_t timeout) {
    if (timeout == 0)
        return waiter_result(w);
    return mote__waiter_wait_until(w, mote__deadline(timeout));
}

int mote__waiter_wait_until(mote__waiter *w, int64_t deadline) {
    while (waiter_arm(w) && !waiter_should_stop(w)) {
        mote__waiter_sleep(w, deadline);
        if (waiter_should_stop(w))
            break;
    }
    return waiter_result(w);
}

/* ---- Futures ---- */

/* Take f's slot to BUSY and return what it held. BUSY is held only for a
 * moment, by whoever notifies or unhooks a hook: wait it out. */
static uintptr_t future_take(mote_future *f) {
    for (unsigned spins = 0;;) {
        uintptr_t v = atomic_load(&f->w);
        if (v != MOTE__FW_BUSY && atomic_compare_exchange_weak(&f->w, &v, MOTE__FW_BUSY))
            return v;
        mote__slot_pause(&spins);
    }
}

bool mote__future_complete(mote_future *f, mote_result r) {
    /* The word first: a dropped future's memory may be a message the
     * consumer left to us, but never a stack frame (mote_call from a
     * process replies into its message, not onto its stack). */
    uintptr_t w = future_take(f);
    MOTE_ASSERT_MSG(w != MOTE__FW_DONE, "a future completes once");
    if (w == MOTE__FW_DROPPED) {
        f->res = r; /* nobody reads it: future_free releases what it holds */
        future_free(f);
        return false;
    }
    f->res = r;
    uintptr_t after = MOTE__FW_DONE;
    if (mote__slot_holds_waiter(w)) {
        if (((mote__hook *)w)->notify)
            f->hooked |= MOTE__HOOK_DONE; /* the hook stays; its owner reads this */
        after = mote__slot_notify(w, MOTE__FW_DONE, MOTE__HOOK_DONE);
    }
    atomic_store(&f->w, after);
    return true;
}

/* Register w on f. Returns 1 if registered, 0 if f is already done,
 * -EBUSY if another waiter or a wait set holds it, -EINVAL if dropped. */
static int future_register(mote_future *f, mote__waiter *w) {
    for (unsigned spins = 0;;) {
        uintptr_t exp = 0;
        if (atomic_compare_exchange_strong(&f->w, &exp, (uintptr_t)w))
            return 1;
        if (exp == MOTE__FW_DONE) {
            atomic_fetch_add(&w->events, 1);
            return 0;
        }
        if (exp != MOTE__FW_BUSY)
            return exp == MOTE__FW_DROPPED ? -EINVAL : -EBUSY;
        mote__slot_pause(&spins); /* a completion (or a hook's owner) at work */
    }
}

/* Unregister w from f. Returns true if f is done. */
static bool future_unregister(mote_future *f, mote__waiter *w) {
    return mote__slot_leave(&f->w, w) && atomic_load(&f->w) == MOTE__FW_DONE;
}

int mote__future_wait(mote_future *f, int64_t timeout) {
    return mote__future_wait_for(f, timeout, MOTE__WAIT_AWAIT, (uintptr_t)f);
}

/* Wait on f until the deadline; timeout 0: not at all (deadline unused). */
static int future_wait(mote_future *f, int64_t timeout, int64_t deadline, uint32_t kind, uint64_t obj) {
    if (atomic_load(&f->w) == MOTE__FW_DONE)
        return 0;
    mote__waiter w;
    mote__waiter_init(&w);
    mote__waiter_note(&w, kind, 0, obj);
    int r = future_register(f, &w);
    if (r <= 0)
        return r;
    r = timeout == 0 ? mote__waiter_wait(&w, 0) : mote__waiter_wait_until(&w, deadline);
    return future_unregister(f, &w) ? 0 : r < 0 ? r : -ETIMEDOUT;
}

int mote__future_wait_for(mote_future *f, int64_t timeout, uint32_t kind, uint64_t obj) {
    if (atomic_load(&f->w) == MOTE__FW_DONE)
        return 0; /* before the clock is read */
    return future_wait(f, timeout, timeout == 0 ? 0 : mote__deadline(timeout), kind, obj);
}

int mote__future_wait_until(mote_future *f, int64_t deadline) {
    return future_wait(f, 1, deadline, MOTE__WAIT_AWAIT, (uintptr_t)f);
}

bool mote_future_ready(const mote_future *f) {
    return f && atomic_load(&((mote_future *)f)->w) == MOTE__FW_DONE;
}

int mote_await_for(mote_future *f, int64_t timeout, mote_result *out) {
    if (!f)
        return -EINVAL;
    int r = mote__cancel_check();
    if (r == 0)
        r = mote__future_wait(f, timeout);
    if (r == -ECANCELED)
        mote__future_release(f); /* consumed: a cancelled process cannot use it */
    if (r < 0)
        return r;
    if (out)
        *out = f->res;
    else if (f->kind == MOTE__FUT_EXIT)
        mote__mon_free_exit_msg(f->res.p); /* nobody takes the notice */
    future_free(f);
    return 0;
}

int mote_await(mote_future *f, mote_result *out) {
    return mote_await_for(f, MOTE_FOREVER, out);
}

void mote_future_drop(mote_future *f) {
    if (!f || f->kind == MOTE__FUT_STACK || f->kind == MOTE__FUT_MSG)
        return;
    mote__future_release(f);
}

void mote__future_release(mote_future *f) {
    for (unsigned spins = 0;;) {
        uintptr_t s = atomic_load(&f->w);
        if (s == 0) {
            if (f->kind == MOTE__FUT_TIMER && mote__timer_cancel(&f->timer)) {
                future_free(f); /* will never fire */
                return;
            }
            if (atomic_compare_exchange_weak(&f->w, &s, MOTE__FW_DROPPED))
                return; /* the producer frees it */
        } else if (s == MOTE__FW_DONE) {
            if (f->kind == MOTE__FUT_EXIT)
                mote__mon_free_exit_msg(f->res.p); /* a notice nobody took */
            future_free(f);
            return;
        } else if (s == MOTE__FW_BUSY) {
            mote__slot_pause(&spins);
        } else if (mote__slot_holds_waiter(s) && ((mote__hook *)s)->notify) {
            /* In a wait set: tell it; it drops f when it lets go of it. */
            if (atomic_compare_exchange_weak(&f->w, &s, MOTE__FW_BUSY)) {
                f->hooked |= MOTE__HOOK_DROPPED;
                atomic_store(&f->w, mote__slot_notify(s, s, MOTE__HOOK_DROPPED));
                return;
            }
        } else {
            return; /* being waited on elsewhere (or dropped twice): misuse; leave it alone */
        }
    }
}

int mote__future_hook(mote_future *f, mote__hook *h) {
    for (unsigned spins = 0;;) {
        uintptr_t exp = 0;
        if (atomic_compare_exchange_strong(&f->w, &exp, (uintptr_t)h))
            return 1;
        if (exp == MOTE__FW_DONE) {
            /* Hooked all the same, so a done future in a set behaves as
             * one that completes there (await -EBUSY, drop hands it over).
             * Only its owner, the caller, could change DONE. */
            f->hooked = MOTE__HOOK_DONE;
            atomic_store(&f->w, (uintptr_t)h);
            return 0;
        }
        if (exp != MOTE__FW_BUSY)
            return exp == MOTE__FW_DROPPED ? -EINVAL : -EBUSY;
        mote__slot_pause(&spins);
    }
}

unsigned mote__future_unhook(mote_future *f, mote__hook *h) {
    mote__slot_unhook(&f->w, h);
    unsigned what = f->hooked;
    f->hooked = 0;
    atomic_store(&f->w, what & MOTE__HOOK_DONE ? MOTE__FW_DONE : 0);
    if (what & MOTE__HOOK_DROPPED)
        mote_future_drop(f);
    return what;
}

int mote_poll(mote_future **futs, size_t *n, mote_future **ready, size_t cap, int64_t timeout) {
    if (!futs || !n || !ready || *n == 0 || cap == 0)
        return -EINVAL;
    size_t count = *n;
    for (size_t i = 0; i < count; i++)
        if (!futs[i])
            return -EINVAL;
    int r = mote__cancel_check();
    if (r < 0)
        return r;
    mote__waiter w;
    mote__waiter_init(&w);
    mote__waiter_note(&w, MOTE__WAIT_POLL, count > INT32_MAX ? INT32_MAX : (int32_t)count, 0);
    for (size_t i = 0; i < count; i++) {
        r = future_register(futs[i], &w);
        if (r < 0) { /* awaited elsewhere, in a wait set, or dropped */
            while (i-- > 0)
                future_unregister(futs[i], &w);
            return r;
        }
    }
    r = mote__waiter_wait(&w, timeout);
    if (r == -ECANCELED) { /* every future stays the caller's, ready or not */
        for (size_t i = 0; i < count; i++)
            future_unregister(futs[i], &w);
        return r;
    }
    size_t k = 0, keep = 0;
    for (size_t i = 0; i < count; i++) {
        mote_future *f = futs[i];
        bool done = future_unregister(f, &w) || atomic_load(&f->w) == MOTE__FW_DONE;
        if (done && k < cap)
            ready[k++] = f;
        else
            futs[keep++] = f;
    }
    *n = keep;
    return k > 0 ? (int)k : w.err ? w.err : -ETIMEDOUT;
}

/* ---- Timers as futures ---- */

static void timer_future_fire(mote__timer *t) {
    mote__future_complete(mote__container_of(t, mote_future, timer), mote_ok_i(0));
}

int mote_timer(mote_future **out, int64_t ns) {
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    mote_future *f = mote__future_new(MOTE__FUT_TIMER);
    if (!f)
        return -ENOMEM;
    mote__timer_init(&f->timer, timer_future_fire);
    int r = mote__timer_set(&f->timer, mote__now() + (ns > 0 ? ns : 0));
    if (r < 0) {
        future_free(f);
        return r;
    }
    *out = f;
    return 0;
}

/* A later deadline is a store (timer.h); a reset that races with the
 * firing either moves the deadline or finds it fired (-EALREADY). */
int mote_timer_reset(mote_future *f, int64_t ns) {
    if (!f || f->kind != MOTE__FUT_TIMER)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    return mote__timer_reset(&f->timer, mote__now() + (ns > 0 ? ns : 0));
}

int mote_sleep(int64_t ns) {
    int r = mote__cancel_check();
    if (r < 0)
        return r;
    if (ns == 0) {
        mote__yield();
        return 0;
    }
    mote__waiter w;
    mote__waiter_init(&w);
    mote__waiter_note(&w, MOTE__WAIT_SLEEP, 0, 0);
    if (!w.task || !mote__sched_running()) {
        if (ns < 0) /* forever: nothing ever wakes a plain thread's sleep */
            for (;;)
                pause();
        struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
        while (nanosleep(&ts, &ts) != 0)
            ;
        return 0;
    }
    /* ns < 0 waits forever: no timer is armed and no source has the
     * waiter, so only a cancel (shutdown cancels every process) ends it. */
    r = mote__waiter_wait(&w, ns);
    return r == -ECANCELED || r == -ENOMEM ? r : 0;
}
