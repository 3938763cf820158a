/*
 * netpoll.c -- the glue between descriptors and the poller backend (poll/):
 * the table of poll descriptors, registration, dispatching events to
 * waiters, the netpoll operations the scheduler calls, and the poller
 * threads.
 *
 * Who waits in the backend: one poll token (sched/idle.c) says which single
 * thread may block in it. Normally the last worker to go idle holds it and
 * blocks in netpoll(); busy workers call netpoll(0) whenever their queues
 * run dry. A poller thread takes the token only when the monitor finds that
 * no worker has polled for a while, so readiness is never left unseen.
 *
 * Invariants: a poll descriptor, once created, lives until mote__netpoll_stop
 * (an event's pointer may arrive at any time); dispatching is safe from any
 * thread, so several poller threads may wait on the one backend.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "io/internal.h"
#include "debug/trace.h"
#include "poll/poller.h"

#define EVENTS_PER_WAIT 128

/* What the poller threads are asked (N.want). */
enum { WANT_NONE = 0, WANT_POLL, WANT_STOP };

static struct {
    pthread_mutex_t lock;
    _Atomic(_Atomic(mote__pdesc *) *) dir[MOTE__PD_DIR_SIZE];
    mote__poller *poller;
    unsigned nthreads; /* MOTE_NETPOLL_THREADS */
    const mote__poller_ops *chosen; /* MOTE_POLLER's, at mote_run */
    pthread_t threads[MOTE__NETPOLL_THREADS_MAX];
    _Atomic bool started;
    _Atomic bool stop;     /* poller threads must end */
    _Atomic uint32_t want; /* futex word of the poller threads: WANT_* */
} N = {.lock = PTHREAD_MUTEX_INITIALIZER};

mote__pdesc *mote__pd_get(int fd, bool create) {
    if (fd < 0 || (unsigned)fd >= MOTE__PD_MAX_FD)
        return NULL;
    unsigned hi = (unsigned)fd >> MOTE__PD_DIR_BITS, lo = (unsigned)fd & (MOTE__PD_DIR_SIZE - 1);
    _Atomic(mote__pdesc *) *chunk = atomic_load_explicit(&N.dir[hi], memory_order_acquire);
    mote__pdesc *pd = chunk ? atomic_load_explicit(&chunk[lo], memory_order_acquire) : NULL;
    if (pd || !create)
        return pd;
    pthread_mutex_lock(&N.lock);
    chunk = atomic_load(&N.dir[hi]);
    if (!chunk) {
        chunk = calloc(MOTE__PD_DIR_SIZE, sizeof *chunk);
        if (chunk)
            atomic_store(&N.dir[hi], chunk);
    }
    if (chunk && !(pd = atomic_load(&chunk[lo]))) {
        pd = calloc(1, sizeof *pd);
        if (pd)
            atomic_store(&chunk[lo], pd);
    }
    pthread_mutex_unlock(&N.lock);
    return pd;
}

void mote__pd_signal(mote__pdesc *pd, int d, bool keep) {
    for (;;) {
        if (mote__slot_wake(&pd->slot[d], 0, d ? MOTE__HOOK_WRITE : MOTE__HOOK_READ))
            return; /* the waiter (or a wait set's hook) consumed this readiness */
        uintptr_t old = atomic_load(&pd->slot[d]);
        if (old == MOTE__SLOT_BUSY || mote__slot_holds_waiter(old)) {
            mote__cpu_relax(); /* a wake in flight, or a waiter just came */
            continue;
        }
        MOTE_ASSERT_MSG(old == 0 || old == MOTE__PD_READY, "a descriptor slot: 0, READY, BUSY or a waiter");
        if (!keep || old == MOTE__PD_READY ||
            atomic_compare_exchange_weak(&pd->slot[d], &old, MOTE__PD_READY))
            return;
    }
}

static void dispatch(const mote__poll_event *ev, int n) {
    if (n > 0)
        mote__count(MOTE__CTR_POLL_EVENTS, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        mote__pdesc *pd = ev[i].data;
        if (!pd)
            continue; /* completions (io_uring): their waiters are woken already */
        (void)atomic_load_explicit(&pd->published, memory_order_acquire);
        if (ev[i].events & MOTE__EV_HUP)
            atomic_store(&pd->rd_closed, true); /* before the wake: see socket reads */
        if ((ev[i].events & MOTE__EV_READ) && atomic_load(&pd->astate) != MOTE__A_OFF)
            mote__active_notify(pd);
        else if (ev[i].events & MOTE__EV_READ)
            mote__pd_signal(pd, 0, true);
        if (ev[i].events & MOTE__EV_WRITE)
            mote__pd_signal(pd, 1, true);
    }
}

/* Poll (0: without waiting) and wake the ready descriptors' waiters. */
static int netpoll(int64_t timeout) {
    mote__poll_event ev[EVENTS_PER_WAIT];
    bool woken;
    if (timeout != 0)
        MOTE_TRACE(MOTE__TR_POLL, 0, 0);
    int n = mote__poller_wait(N.poller, ev, EVENTS_PER_WAIT, timeout, &woken);
    if (woken)
        mote__netpoll_rewake(); /* it may have been meant for a worker */
    if (timeout != 0) {
        mote__count(MOTE__CTR_POLL_WAITS, 1);
        MOTE_TRACE(MOTE__TR_POLLED, 0, n > 0 ? (uint64_t)n : 0);
    }
    dispatch(ev, n);
    return n > 0 ? n : 0;
}

static void netpoll_interrupt(void) {
    mote__poller_wakeup(N.poller);
}

/* The monitor saw no worker poll for a while although some run (long
 * turns): let a poller thread wait in the poller. */
static void netpoll_starved(void) {
    uint32_t idle = WANT_NONE;
    if (atomic_compare_exchange_strong(&N.want, &idle, WANT_POLL))
        mote__futex_wake(&N.want, 1);
}

static const mote__netpoll_ops netpoll_ops = {netpoll, netpoll_interrupt, netpoll_starved};

/*
 * A poller thread blocks in the poller only while it holds the poll token
 * (see sched.h): normally the last worker to go idle holds it and sleeps
 * in the poller itself, so readiness wakes a worker directly, and busy
 * workers poll without waiting whenever their queues run dry. The thread
 * sleeps until the monitor finds that no worker has polled for a while
 * although some run (netpoll_starved), so readiness is never left unseen
 * and a server whose workers poll never wakes it. Once awake it waits in
 * the poller while the token is free, and after each batch of events goes
 * on only while every worker is idle: they then sleep on their futexes,
 * and nobody else would poll.
 */
static void *poller_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "mote-poller", 0, 0, 0);
    for (;;) {
        uint32_t want = atomic_load(&N.want);
        if (want == WANT_STOP)
            break;
        if (want == WANT_NONE || !atomic_compare_exchange_strong(&N.want, &want, WANT_NONE)) {
            mote__futex_wait(&N.want, WANT_NONE, -1);
            continue;
        }
        while (!atomic_load(&N.stop) && mote__netpoll_take()) {
            mote__poll_event ev[EVENTS_PER_WAIT];
            bool woken;
            MOTE_TRACE(MOTE__TR_POLL, 0, 0);
            int n = mote__poller_wait(N.poller, ev, EVENTS_PER_WAIT, -1, &woken);
            mote__netpoll_give();
            mote__count(MOTE__CTR_POLL_WAITS, 1);
            MOTE_TRACE(MOTE__TR_POLLED, 0, n > 0 ? (uint64_t)n : 0);
            dispatch(ev, n);
            if (!mote__sched_all_idle())
                break; /* a worker runs: it polls, or the monitor calls again */
        }
    }
    return NULL;
}

/* Stop and join the first n poller threads. */
static void pollers_join(unsigned n) {
    atomic_store(&N.stop, true);
    atomic_store(&N.want, WANT_STOP); /* sticky: no thread sleeps on it again */
    mote__futex_wake(&N.want, INT32_MAX);
    for (unsigned i = 0; i < n; i++) {
        mote__poller_wakeup(N.poller); /* ends the one in the poller, if any */
        pthread_join(N.threads[i], NULL);
    }
}

void mote__netpoll_configure(unsigned threads) {
    N.nthreads = threads;
    N.chosen = mote__poller_choose();
}

const mote__poller_ops *mote__netpoll_chosen(void) {
    return N.chosen;
}

static int netpoll_start(void) {
    if (atomic_load_explicit(&N.started, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&N.lock);
    int r = 0;
    if (!atomic_load(&N.started)) {
        atomic_store(&N.stop, false);
        atomic_store(&N.want, WANT_NONE);
        r = mote__poller_open(&N.poller);
        /* Several threads may wait on one epoll set: each event goes to
         * one of them, and dispatching is safe from any thread. */
        unsigned started = 0;
        while (r == 0 && started < N.nthreads) {
            r = -pthread_create(&N.threads[started], NULL, poller_main, NULL);
            if (r == 0)
                started++;
        }
        if (r != 0 && N.poller) {
            pollers_join(started);
            mote__poller_close(N.poller);
            N.poller = NULL;
        }
        if (r == 0) {
            atomic_store_explicit(&N.started, true, memory_order_release);
            mote__sched_set_netpoll(&netpoll_ops);
        }
    }
    pthread_mutex_unlock(&N.lock);
    return r;
}

void mote__netpoll_stop(void) {
    mote__sched_set_netpoll(NULL);
    if (atomic_load(&N.started)) {
        pollers_join(N.nthreads);
        mote__poller_close(N.poller);
        N.poller = NULL;
        atomic_store(&N.started, false);
    }
    /* Descriptors still active belong to the runtime: close them (their
     * processes are gone with the runtime; their calls were discarded). */
    for (unsigned i = 0; i < MOTE__PD_DIR_SIZE; i++) {
        _Atomic(mote__pdesc *) *chunk = atomic_load(&N.dir[i]);
        for (unsigned j = 0; chunk && j < MOTE__PD_DIR_SIZE; j++) {
            mote__pdesc *pd = atomic_load(&chunk[j]);
            if (pd)
                mote__active_abandon(pd);
        }
    }
    for (unsigned i = 0; i < MOTE__PD_DIR_SIZE; i++) {
        _Atomic(mote__pdesc *) *chunk = atomic_load(&N.dir[i]);
        if (!chunk)
            continue;
        for (unsigned j = 0; j < MOTE__PD_DIR_SIZE; j++)
            free(atomic_load(&chunk[j]));
        free(chunk);
        atomic_store(&N.dir[i], NULL);
    }
}

static int pd_register(mote__pdesc *pd, int fd) {
    if (atomic_load_explicit(&pd->registered, memory_order_acquire))
        return 0;
    int r = 0;
    mote__spin_lock(&pd->lock);
    if (!atomic_load_explicit(&pd->registered, memory_order_relaxed)) {
        atomic_store(&pd->rd_closed, false); /* a new descriptor */
        atomic_store_explicit(&pd->published, 1, memory_order_release);
        r = mote__poller_add(N.poller, fd, pd);
        if (r == -EEXIST)
            r = 0;
        if (r == 0)
            atomic_store_explicit(&pd->registered, true, memory_order_release);
    }
    mote__spin_unlock(&pd->lock);
    return r;
}

int mote__pd_prepare(int fd, mote__pdesc **out) {
    if (!mote__sched_running())
        return -ESHUTDOWN;
    int r = netpoll_start();
    mote__pdesc *pd = r == 0 ? mote__pd_get(fd, true) : NULL;
    if (!pd)
        return r ? r : -ENOMEM;
    *out = pd;
    return pd_register(pd, fd);
}

void mote__pd_refresh(mote__pdesc *pd, int fd) {
    if (!atomic_load(&pd->registered) || !N.poller)
        return;
    mote__spin_lock(&pd->lock);
    if (atomic_load(&pd->registered) && mote__poller_add(N.poller, fd, pd) == 0) {
        /* A new description under an old number: forget the old one's
         * readiness. */
        atomic_store(&pd->rd_closed, false);
        for (int d = 0; d < 2; d++)
            mote__pd_consume(pd, d);
    }
    mote__spin_unlock(&pd->lock);
}

mote__poller *mote__netpoll_poller(bool start) {
    if (atomic_load_explicit(&N.started, memory_order_acquire))
        return N.poller;
    if (!start || !mote__sched_running() || netpoll_start() != 0)
        return NULL;
    return N.poller;
}

const char *mote__netpoll_backend(void) {
    mote__poller *p = mote__netpoll_poller(true);
    return p ? mote__poller_name(p) : NULL;
}

int mote__netpoll_poll_now(void) {
    return atomic_load_explicit(&N.started, memory_order_acquire) ? netpoll(0) : 0;
}

void mote__pd_unregister(mote__pdesc *pd, int fd) {
    mote__spin_lock(&pd->lock);
    if (atomic_load_explicit(&pd->registered, memory_order_relaxed) && N.poller)
        mote__poller_del(N.poller, fd);
    atomic_store_explicit(&pd->registered, false, memory_order_release);
    mote__spin_unlock(&pd->lock);
}
