/*
 * fd.c -- any descriptor made awaitable (smol's Async<T>): mote_fd_wait
 * suspends only the calling process until the descriptor is readable or
 * writable, with a deadline. The layer above proc/: it waits with waiters
 * on the slots of a poll descriptor (io/internal.h), which netpoll.c fills.
 *
 * Invariants: at most one waiter per direction (a second gets -EBUSY); a
 * waiter leaves every slot it entered before it returns, spinning past a
 * wake in flight. mote_fd_close bumps the descriptor's generation and wakes
 * its waiters, which then return -EBADF: closing under a waiter never hangs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "io/internal.h"

/* 1 if registered; 0 if readiness was there (consumed); -EBUSY if another
 * waiter holds the slot (one waiter per direction). */
static int pd_enlist(mote__pdesc *pd, int d, mote__waiter *w) {
    for (;;) {
        uintptr_t exp = 0;
        if (atomic_compare_exchange_weak(&pd->slot[d], &exp, (uintptr_t)w))
            return 1;
        if (exp == MOTE__PD_READY && mote__pd_consume(pd, d))
            return 0;
        MOTE_ASSERT_MSG(exp != (uintptr_t)w, "a waiter enters a slot once");
        if (mote__slot_holds_waiter(exp))
            return -EBUSY;
        mote__cpu_relax(); /* BUSY: a wake in flight for the last waiter */
    }
}

/* Returns true if the poller woke us through this slot. */
static bool pd_delist(mote__pdesc *pd, int d, mote__waiter *w) {
    return mote__slot_leave(&pd->slot[d], w);
}

int mote__fd_poll_now(int fd, int events) {
    struct pollfd p = {.fd = fd, .events = 0};
    if (events & MOTE_READABLE)
        p.events |= POLLIN;
    if (events & MOTE_WRITABLE)
        p.events |= POLLOUT;
    if (poll(&p, 1, 0) < 0)
        return mote__errno();
    int mask = 0;
    if (p.revents & (POLLIN | POLLHUP | POLLERR))
        mask |= events & MOTE_READABLE;
    if (p.revents & (POLLOUT | POLLHUP | POLLERR))
        mask |= events & MOTE_WRITABLE;
    return mask ? mask : -ETIMEDOUT;
}

bool mote__fd_read_closed(int fd) {
    mote__pdesc *pd = mote__pd_get(fd, false);
    return !pd || atomic_load(&pd->rd_closed);
}

int mote_fd_wait(int fd, int events, int64_t timeout) {
    /* A user's descriptor may have been closed behind our back (close()
     * instead of mote_fd_close) and its number reused: the kernel then
     * dropped the old registration, and the new description would never
     * be polled. Sockets (mote__fd_wait_until's other callers) know theirs is
     * open and registered, so only this path pays the two syscalls. */
    if (fd >= 0 && fcntl(fd, F_GETFD) < 0)
        return mote__errno();
    mote__pdesc *pd = mote__pd_get(fd, false);
    if (pd)
        mote__pd_refresh(pd, fd);
    int64_t deadline = timeout == 0 ? MOTE__FD_NOW : timeout < 0 ? -1 : mote__now() + timeout;
    return mote__fd_wait_until(fd, events, deadline, NULL);
}

/* The canceller sets *cancelled, then wakes the descriptor's waiters
 * (mote__fd_abort): a waiter enlists, then checks the flag, so one of the
 * two always sees the other. */
int mote__fd_wait_until(int fd, int events, int64_t deadline, _Atomic bool *cancelled) {
    if (fd < 0 || (unsigned)fd >= MOTE__PD_MAX_FD)
        return -EBADF;
    if (!events || (events & ~(MOTE_READABLE | MOTE_WRITABLE)))
        return -EINVAL;
    int r = mote__cancel_check();
    if (r < 0)
        return r;
    mote__pdesc *pd;
    r = mote__pd_prepare(fd, &pd);
    if (r < 0)
        return r; /* -EPERM: regular files are always "ready"; use a blocking section */
    uint32_t gen = atomic_load(&pd->gen);
    int bits[2] = {MOTE_READABLE, MOTE_WRITABLE}, mask = 0;
    for (int d = 0; d < 2; d++)
        if ((events & bits[d]) && mote__pd_consume(pd, d))
            mask |= bits[d];
    if (mask)
        return mask;
    if (deadline == MOTE__FD_NOW) /* "is it ready now?": ask the descriptor itself */
        return mote__fd_poll_now(fd, events);
    mote__waiter w;
    mote__waiter_init(&w);
    mote__waiter_note(&w, MOTE__WAIT_FD, fd, (uint64_t)events);
    int enlisted = 0, busy = 0;
    for (int d = 0; d < 2; d++) {
        if (!(events & bits[d]))
            continue;
        int e = pd_enlist(pd, d, &w);
        if (e > 0)
            enlisted |= bits[d];
        else if (e == 0)
            mask |= bits[d];
        else
            busy = e;
    }
    if (busy && !mask) {
        for (int d = 0; d < 2; d++)
            if ((enlisted & bits[d]) && pd_delist(pd, d, &w))
                mask |= bits[d];
        return mask ? mask : busy;
    }
    MOTE_STORE_LOAD_FENCE(); /* enlisted; now look for a close */
    bool gone = atomic_load(&pd->gen) != gen || (cancelled && atomic_load(cancelled));
    int waited = 0;
    if (!mask && !gone)
        waited = mote__waiter_wait_until(&w, deadline);
    for (int d = 0; d < 2; d++)
        if ((enlisted & bits[d]) && pd_delist(pd, d, &w))
            mask |= bits[d];
    if (atomic_load(&pd->gen) != gen || (cancelled && atomic_load(cancelled)))
        return -EBADF; /* closed while we waited */
    return mask ? mask : waited < 0 && waited != -ETIMEDOUT ? waited : -ETIMEDOUT;
}

/* Sockets close the descriptor only when no call is in flight, so its
 * number cannot be reused under one: they abort first, close later. */
void mote__fd_abort(int fd) {
    mote__pdesc *pd = mote__pd_get(fd, false);
    if (!pd)
        return;
    atomic_fetch_add(&pd->gen, 1);
    mote__pd_unregister(pd, fd);
    for (int d = 0; d < 2; d++) {
        mote__pd_signal(pd, d, false); /* waiters wake and see the new generation */
        mote__pd_consume(pd, d);
    }
    if (atomic_load(&pd->astate) != MOTE__A_OFF)
        mote__active_notify(pd); /* its process sees the close and lets go */
}

int mote_fd_close(int fd) {
    if (fd < 0)
        return -EBADF;
    mote__fd_abort(fd);
    return close(fd) == 0 ? 0 : mote__errno();
}
