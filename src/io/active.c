/*
 * active.c -- active descriptors (mote_socket_activate). An active
 * descriptor's read readiness goes to a process as a call (active_run)
 * instead of waking a waiter, and the process reads the data in its own
 * turn: it holds no stack while it waits. At most one such call is in
 * flight per descriptor (astate):
 *
 *   A_OFF      not active (readiness goes to the read slot as usual)
 *   A_IDLE     active, no call in flight
 *   A_PENDING  a call is queued: readiness needs nothing more
 *
 * Whoever moves A_IDLE -> A_PENDING sends the call (the poller, a worker
 * polling, a close, or the call itself when it has read its budget); the
 * call moves it back to A_IDLE *before* reading, so readiness that arrives
 * during the read is never lost, at worst a call finds nothing (EAGAIN).
 * The references (process, socket) are dropped only by a call that moves
 * A_IDLE -> A_OFF: if that fails, a call is in flight and the next one
 * finishes the job. So nobody sends to a process whose reference is gone.
 */
#include <errno.h>
#include <unistd.h>

#include "io/internal.h"

#define ACTIVE_CHUNK 4096 /* read on the process's stack: keep it small */
#define ACTIVE_BUDGET 16  /* reads per call before others get a turn */

typedef struct active_arg {
    mote__pdesc *pd;
} active_arg;

static mote_result active_run(void *state, void *arg);

void mote__active_notify(mote__pdesc *pd) {
    uint32_t idle = MOTE__A_IDLE;
    if (!atomic_compare_exchange_strong(&pd->astate, &idle, MOTE__A_PENDING))
        return;
    /* Our own reference for the cast: the call may run, end the active
     * mode and drop its reference before mote_cast has returned. */
    mote_proc *p = mote_proc_ref(pd->aproc);
    active_arg a = {pd};
    if (mote_cast(p, active_run, &a, sizeof a) < 0)
        atomic_store(&pd->astate, MOTE__A_IDLE); /* shutting down */
    mote_proc_release(p);
}

/* In the process: the final call was made or the descriptor was closed. */
static void active_finish(mote__pdesc *pd) {
    pd->adone = true;
    uint32_t idle = MOTE__A_IDLE;
    if (!atomic_compare_exchange_strong(&pd->astate, &idle, MOTE__A_OFF))
        return; /* a call is queued: it will come back here */
    mote_proc *p = pd->aproc;
    void *obj = pd->aobj;
    void (*drop)(void *, bool) = pd->adrop;
    drop(obj, false);
    mote_proc_release(p);
}

static mote_result active_run(void *state, void *arg) {
    mote__pdesc *pd = ((active_arg *)arg)->pd;
    MOTE_ASSERT_MSG(atomic_load(&pd->astate) == MOTE__A_PENDING, "an active call runs only when sent");
    atomic_store(&pd->astate, MOTE__A_IDLE);
    if (pd->adone || atomic_load(&pd->gen) != pd->agen) {
        active_finish(pd); /* closed by its owner: no final call */
        return mote_ok_i(0);
    }
    char buf[ACTIVE_CHUNK];
    for (int i = 0; i < ACTIVE_BUDGET; i++) {
        ssize_t n = read(pd->afd, buf, sizeof buf);
        int err = n < 0 ? mote__errno() : 0;
        if (err == -EINTR)
            continue;
        if (err == -EAGAIN || err == -EWOULDBLOCK)
            return mote_ok_i(0); /* the next edge sends the next call */
        pd->afn(state, pd->aobj, n > 0 ? buf : NULL, n > 0 ? n : err);
        if (n <= 0 || atomic_load(&pd->gen) != pd->agen) {
            active_finish(pd);
            return mote_ok_i(0);
        }
    }
    mote__active_notify(pd); /* more to read: after the others */
    return mote_ok_i(0);
}

int mote__fd_activate(int fd, mote_proc *p, mote_active_fn fn, void *obj,
                      void (*drop)(void *obj, bool shutdown)) {
    if (fd < 0 || (unsigned)fd >= MOTE__PD_MAX_FD || !p || !fn)
        return -EINVAL;
    mote__pdesc *pd;
    int r = mote__pd_prepare(fd, &pd);
    if (r < 0)
        return r;
    /* Claim it as PENDING (readiness then sends nothing) while filling in. */
    uint32_t off = MOTE__A_OFF;
    if (!atomic_compare_exchange_strong(&pd->astate, &off, MOTE__A_PENDING))
        return -EINVAL; /* already active */
    pd->adone = false;
    pd->agen = atomic_load(&pd->gen);
    pd->afd = fd;
    pd->aproc = mote_proc_ref(p);
    pd->afn = fn;
    pd->aobj = obj;
    pd->adrop = drop;
    atomic_store(&pd->astate, MOTE__A_IDLE);
    mote__active_notify(pd); /* data may be there already: edges were missed */
    return 0;
}

void mote__active_abandon(mote__pdesc *pd) {
    if (atomic_exchange(&pd->astate, MOTE__A_OFF) != MOTE__A_OFF)
        pd->adrop(pd->aobj, true);
}
