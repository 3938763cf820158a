/*
 * cancel.c -- cancelling a process: mote_cancel, deadlines
 * (mote_cancel_after), and the check every waiting call starts with.
 *
 * A cancel is a flag in the process's flags word plus a wake-up. Every
 * wait of a process goes through a waiter (future.c), whose arming step
 * publishes the new park sequence and then reads the flag; the canceller
 * sets the flag and then reads the state word and wakes whatever sequence
 * it finds. So a wait that starts while the cancel is being made either
 * sees the flag and does not sleep, or is woken (docs/design.md). The
 * process itself ends between messages (proc.c, end_due): its handler
 * saw -ECANCELED from its waits and returned, and nothing unwinds by force.
 */
#include "proc/proc.h"

#include <errno.h>

void mote__proc_cancel(mote_proc *p, unsigned why) {
    uint32_t f = atomic_load(&p->flags);
    do
        if (f & (MOTE__P_CANCEL | MOTE__P_DEAD))
            return; /* the first cancel decides the reason */
    while (!atomic_compare_exchange_weak(&p->flags, &f,
                                         f | MOTE__P_CANCEL | (why << MOTE__P_WHY_SHIFT)));
    MOTE_STORE_LOAD_FENCE(); /* the flag, then the state word */
    uint64_t st = atomic_load(&p->task.state);
    switch (MOTE__ST(st)) {
    case MOTE__IDLE: /* its next turn ends it; settle re-checks if we lose */
        mote__proc_kick(p);
        break;
    case MOTE__RUNNING: /* in a wait (it may be about to park), or between */
    case MOTE__PARKED:
        mote__task_wake(&p->task, MOTE__SEQ(st));
        break;
    default: /* QUEUED: it will look at the flag when it runs */
        break;
    }
}

int mote__cancel_check(void) {
    mote_proc *p = mote__proc_self();
    if (MOTE_LIKELY(!p || !(atomic_load_explicit(&p->flags, memory_order_relaxed) & MOTE__P_CANCEL)))
        return 0;
    /* A process that ignores -ECANCELED and keeps calling still lets
     * others run (and lets the runtime stop its worker at shutdown). */
    mote__sched_tick();
    return -ECANCELED;
}

int mote_cancel(mote_proc *p) {
    if (!p)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    mote__proc_cancel(p, MOTE__CANCEL_USER);
    return 0;
}

bool mote_cancelled(void) {
    mote_proc *p = mote__proc_self();
    return p && mote__cancel_pending(p);
}

/* Under the timer lock: mote__proc_cancel calls nothing of the timer's.
 * The timer's reference keeps the process (and so the block) alive. */
static void deadline_fire(mote__timer *t) {
    mote__proc_ext *e = mote__container_of(t, mote__proc_ext, deadline);
    mote__proc_cancel(e->proc, MOTE__CANCEL_DEADLINE);
}

/*
 * The armed deadline holds a reference to the process: the timer may fire
 * at any time, and only the process's end (which cancels the timer under
 * dl_lock and closes it to new deadlines) drops that reference. So a
 * process with a deadline lives at least until it ends.
 */
int mote_cancel_after(mote_proc *p, int64_t ns) {
    if (!p)
        return -EINVAL;
    if (!mote__sched_running())
        return -ESHUTDOWN;
    if (ns <= 0) {
        mote__proc_cancel(p, MOTE__CANCEL_DEADLINE);
        return 0;
    }
    bool closed;
    mote__proc_ext *e = mote__proc_ext_get(p, &closed);
    if (!e)
        return closed ? 0 : -ENOMEM; /* ended: there is nothing to cancel */
    int r = 0;
    bool drop = false;
    mote__spin_lock(&e->dl_lock);
    if (e->dl_closed || (e->dl_armed && !mote__timer_cancel(&e->deadline))) {
        /* Ended, or the old deadline fired: the process is cancelled. */
    } else {
        if (!e->deadline.fire) /* the block starts zeroed */
            mote__timer_init(&e->deadline, deadline_fire);
        r = mote__timer_set(&e->deadline, mote__now() + ns);
        if (r == 0 && !e->dl_armed)
            mote_proc_ref(p);
        drop = r < 0 && e->dl_armed;
        e->dl_armed = r == 0;
    }
    mote__spin_unlock(&e->dl_lock);
    if (drop)
        mote_proc_release(p);
    return r;
}

void mote__proc_deadline_end(mote__proc_ext *e) {
    mote__spin_lock(&e->dl_lock);
    e->dl_closed = true;
    bool armed = e->dl_armed;
    e->dl_armed = false;
    if (armed)
        mote__timer_cancel(&e->deadline); /* fired or not, its reference is ours */
    mote__spin_unlock(&e->dl_lock);
    /* In the process's own turn (it holds its scheduled reference) this
     * never frees it; while reaping, nothing is released. */
    if (armed && !mote__proc_reaping())
        mote_proc_release(e->proc);
}
