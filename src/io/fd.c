/*
 * fd.c -- any descriptor made awaitable (smol's Async<T>): mote_fd_wait
 * suspends only the calling process until the descriptor is readable or
 * writable, with a deadline. The layer above proc/: it uses waiters, and
 * the poller backend from poll/.
 *
 * Each descriptor gets a poll descriptor (pdesc), registered once with the
 * backend, edge-triggered, for both directions. Each direction has one
 * atomic slot, after Go's pollDesc:
 *
 *   0        nothing known
 *   READY    readiness arrived with nobody waiting: the next wait consumes it
 *   waiter*  a process or foreign thread waits
 *   BUSY     the poller (or a close) is waking that waiter
 *
 * Readiness that arrives between a failed read() and the wait is kept by
 * READY, so it is never lost; a waiter unregistering spins past BUSY, so no
 * wake ever touches a waiter that has returned (it lives on a stack).
 * mote_fd_close bumps the descriptor's generation and wakes its waiters,
 * which then return -EBADF: closing under a waiter never hangs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "poll/poller.h"
#include "proc/proc.h"

#define PD_READY ((uintptr_t)1)
#define PD_BUSY ((uintptr_t)2)
#define DIR_BITS 10
#define DIR_SIZE (1u << DIR_BITS)
#define MAX_FD (DIR_SIZE * DIR_SIZE)
#define MAX_POLLERS 64

typedef struct pdesc {
    _Atomic uintptr_t slot[2]; /* read, write */
    _Atomic uint32_t gen;
    mote__spinlock lock; /* registration */
    _Atomic bool registered; /* read outside the lock on the fast path */
    /* Released before the descriptor goes to the backend, acquired by
     * dispatch: the event's pointer travels through the kernel, which the
     * thread sanitizer cannot see as synchronisation. */
    _Atomic uint32_t published;
    _Atomic bool rd_closed; /* an event said the read side is closed */
    /* Active mode (see "Active descriptors" below). */
    _Atomic uint32_t astate;
    bool adone;       /* owner process only: the final call was made */
    uint32_t agen;    /* gen at activation: a close changes gen */
    int afd;
    mote_proc *aproc; /* a reference, held while astate != A_OFF */
    mote_active_fn afn;
    void *aobj;                /* passed to afn (the mote_socket) */
    /* Drops the reference aobj holds for us; at shutdown also closes it. */
    void (*adrop)(void *aobj, bool shutdown);
} pdesc;

enum { A_OFF = 0, A_IDLE, A_PENDING };
static void active_notify(pdesc *pd);

static struct {
    pthread_mutex_t lock;
    _Atomic(_Atomic(pdesc *) *) dir[DIR_SIZE];
    mote__poller *poller;
    unsigned nthreads; /* MOTE_NETPOLL_THREADS */
    pthread_t threads[MAX_POLLERS];
    _Atomic bool started;
    _Atomic uint32_t stop; /* futex word: 1 when poller threads must end */
} N = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pdesc *pd_get(int fd, bool create) {
    unsigned hi = (unsigned)fd >> DIR_BITS, lo = (unsigned)fd & (DIR_SIZE - 1);
    _Atomic(pdesc *) *chunk = atomic_load_explicit(&N.dir[hi], memory_order_acquire);
    pdesc *pd = chunk ? atomic_load_explicit(&chunk[lo], memory_order_acquire) : NULL;
    if (pd || !create)
        return pd;
    pthread_mutex_lock(&N.lock);
    chunk = atomic_load(&N.dir[hi]);
    if (!chunk) {
        chunk = calloc(DIR_SIZE, sizeof *chunk);
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

/* Readiness (or a close) for one direction: hand it to the waiter, or keep
 * it for the next one. */
static void pd_signal(pdesc *pd, int d, bool keep) {
    for (;;) {
        uintptr_t old = atomic_load(&pd->slot[d]);
        if (old == PD_BUSY) {
            mote__cpu_relax();
            continue;
        }
        if (old == 0 || old == PD_READY) {
            if (!keep || old == PD_READY || atomic_compare_exchange_weak(&pd->slot[d], &old, PD_READY))
                return;
            continue;
        }
        if (!atomic_compare_exchange_weak(&pd->slot[d], &old, PD_BUSY))
            continue;
        mote__waiter *w = (mote__waiter *)old;
        atomic_fetch_add(&w->events, 1);
        MOTE_STORE_LOAD_FENCE();
        mote__waiter_wake(w);
        atomic_store(&pd->slot[d], 0); /* the waiter consumed this readiness */
        return;
    }
}

static void dispatch(const mote__poll_event *ev, int n) {
    for (int i = 0; i < n; i++) {
        pdesc *pd = ev[i].data;
        (void)atomic_load_explicit(&pd->published, memory_order_acquire);
        if (ev[i].events & MOTE__EV_HUP)
            atomic_store(&pd->rd_closed, true); /* before the wake: see socket reads */
        if ((ev[i].events & MOTE__EV_READ) && atomic_load(&pd->astate) != A_OFF)
            active_notify(pd);
        else if (ev[i].events & MOTE__EV_READ)
            pd_signal(pd, 0, true);
        if (ev[i].events & MOTE__EV_WRITE)
            pd_signal(pd, 1, true);
    }
}

/* Poll (0: without waiting) and wake the ready descriptors' waiters. */
static int netpoll(int64_t timeout) {
    mote__poll_event ev[128];
    bool woken;
    int n = mote__poller_wait(N.poller, ev, 128, timeout, &woken);
    if (woken)
        mote__netpoll_rewake(); /* it may have been meant for a worker */
    dispatch(ev, n);
    return n > 0 ? n : 0;
}

static void netpoll_interrupt(void) {
    mote__poller_wakeup(N.poller);
}

static const mote__netpoll_ops netpoll_ops = {netpoll, netpoll_interrupt};

/*
 * A poller thread blocks in the poller only while it holds the poll token
 * (see sched.h): normally the last worker to go idle holds it and sleeps
 * in the poller itself, so readiness wakes a worker directly, and busy
 * workers poll without waiting whenever their queues run dry. The thread
 * takes over when no worker has polled for 1-10 ms (all busy with long
 * turns, or all parked on their futexes), so readiness is never left
 * unseen.
 */
static void *poller_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "mote-poller", 0, 0, 0);
    int64_t pause = MOTE_MSEC(1);
    while (!atomic_load(&N.stop)) {
        /* Always a pause between two waits: taking the token again at once
         * would keep it from the workers for good, and every event would
         * then cost a hop through this thread. While workers keep polling
         * the pause grows to 10 ms (Go's sysmon looks at the network every
         * 10 ms), so an idle server costs ~100 wake-ups a second. */
        mote__futex_wait(&N.stop, 0, pause);
        if (atomic_load(&N.stop))
            break;
        if (!mote__netpoll_take()) {
            pause = pause * 2 > MOTE_MSEC(10) ? MOTE_MSEC(10) : pause * 2;
            continue;
        }
        pause = MOTE_MSEC(1);
        mote__poll_event ev[128];
        bool woken;
        int n = mote__poller_wait(N.poller, ev, 128, -1, &woken);
        mote__netpoll_give();
        dispatch(ev, n);
    }
    return NULL;
}

/* Stop and join the first n poller threads. */
static void pollers_join(unsigned n) {
    atomic_store(&N.stop, 1);
    mote__futex_wake(&N.stop, INT32_MAX);
    for (unsigned i = 0; i < n; i++) {
        mote__poller_wakeup(N.poller); /* ends the one in the poller, if any */
        pthread_join(N.threads[i], NULL);
    }
}

void mote__netpoll_configure(unsigned threads);
void mote__netpoll_configure(unsigned threads) {
    N.nthreads = threads < 1 ? 1 : threads > MAX_POLLERS ? MAX_POLLERS : threads;
}


static int netpoll_start(void) {
    if (atomic_load_explicit(&N.started, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&N.lock);
    int r = 0;
    if (!atomic_load(&N.started)) {
        atomic_store(&N.stop, 0);
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

void mote__netpoll_stop(void);
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
    for (unsigned i = 0; i < DIR_SIZE; i++) {
        _Atomic(pdesc *) *chunk = atomic_load(&N.dir[i]);
        for (unsigned j = 0; chunk && j < DIR_SIZE; j++) {
            pdesc *pd = atomic_load(&chunk[j]);
            if (pd && atomic_exchange(&pd->astate, A_OFF) != A_OFF)
                pd->adrop(pd->aobj, true);
        }
    }
    for (unsigned i = 0; i < DIR_SIZE; i++) {
        _Atomic(pdesc *) *chunk = atomic_load(&N.dir[i]);
        if (!chunk)
            continue;
        for (unsigned j = 0; j < DIR_SIZE; j++)
            free(atomic_load(&chunk[j]));
        free(chunk);
        atomic_store(&N.dir[i], NULL);
    }
}

static int pd_register(pdesc *pd, int fd) {
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

/* The registered poll descriptor of fd, starting the poller if need be. */
static int pd_prepare(int fd, pdesc **out) {
    if (!mote__sched_running())
        return -ESHUTDOWN;
    int r = netpoll_start();
    pdesc *pd = r == 0 ? pd_get(fd, true) : NULL;
    if (!pd)
        return r ? r : -ENOMEM;
    *out = pd;
    return pd_register(pd, fd);
}

/* Take READY if it is there. */
static bool pd_consume(pdesc *pd, int d) {
    uintptr_t exp = PD_READY;
    return atomic_compare_exchange_strong(&pd->slot[d], &exp, 0);
}

/* 1 if registered; 0 if readiness was there (consumed); -EBUSY if another
 * waiter holds the slot (one waiter per direction). */
static int pd_enlist(pdesc *pd, int d, mote__waiter *w) {
    for (;;) {
        uintptr_t exp = 0;
        if (atomic_compare_exchange_weak(&pd->slot[d], &exp, (uintptr_t)w))
            return 1;
        if (exp == PD_READY && pd_consume(pd, d))
            return 0;
        if (exp != 0 && exp != PD_READY && exp != PD_BUSY)
            return -EBUSY;
        mote__cpu_relax(); /* BUSY: a wake in flight for the last waiter */
    }
}

/* Returns true if the poller woke us through this slot. */
static bool pd_delist(pdesc *pd, int d, mote__waiter *w) {
    uintptr_t exp = (uintptr_t)w;
    if (atomic_compare_exchange_strong(&pd->slot[d], &exp, 0))
        return false;
    while (atomic_load(&pd->slot[d]) == PD_BUSY)
        mote__cpu_relax();
    return true;
}

static int poll_now(int fd, int events) {
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

int mote__fd_wait_ex(int fd, int events, int64_t timeout, _Atomic bool *cancelled);

/* True once an event said fd's read side is closed (EOF or an error is
 * waiting to be read): no further readiness edge will come for it. */
bool mote__fd_read_closed(int fd);
bool mote__fd_read_closed(int fd) {
    pdesc *pd = fd >= 0 && (unsigned)fd < MAX_FD ? pd_get(fd, false) : NULL;
    return !pd || atomic_load(&pd->rd_closed);
}

int mote_fd_wait(int fd, int events, int64_t timeout) {
    /* A user's descriptor may have been closed behind our back (close()
     * instead of mote_fd_close) and its number reused: the kernel then
     * dropped the old registration, and the new description would never
     * be polled. Sockets (mote__fd_wait_ex's other callers) know theirs is
     * open and registered, so only this path pays the two syscalls. */
    if (fd >= 0 && fcntl(fd, F_GETFD) < 0)
        return mote__errno();
    pdesc *pd = fd >= 0 && (unsigned)fd < MAX_FD ? pd_get(fd, false) : NULL;
    if (pd && atomic_load(&pd->registered) && N.poller) {
        mote__spin_lock(&pd->lock);
        if (atomic_load(&pd->registered) && mote__poller_add(N.poller, fd, pd) == 0) {
            /* A new description under an old number: forget the old one's
             * readiness. */
            atomic_store(&pd->rd_closed, false);
            for (int d = 0; d < 2; d++) {
                uintptr_t ready = PD_READY;
                atomic_compare_exchange_strong(&pd->slot[d], &ready, 0);
            }
        }
        mote__spin_unlock(&pd->lock);
    }
    return mote__fd_wait_ex(fd, events, timeout, NULL);
}

/* As mote_fd_wait; also returns -EBADF if *cancelled is (or becomes) set.
 * The canceller sets the flag, then wakes the descriptor's waiters
 * (mote__fd_abort): a waiter enlists, then checks the flag, so one of the
 * two always sees the other. */
int mote__fd_wait_ex(int fd, int events, int64_t timeout, _Atomic bool *cancelled) {
    if (fd < 0 || (unsigned)fd >= MAX_FD)
        return -EBADF;
    if (!events || (events & ~(MOTE_READABLE | MOTE_WRITABLE)))
        return -EINVAL;
    int r = mote__cancel_check();
    if (r < 0)
        return r;
    pdesc *pd;
    r = pd_prepare(fd, &pd);
    if (r < 0)
        return r; /* -EPERM: regular files are always "ready"; use a blocking section */
    uint32_t gen = atomic_load(&pd->gen);
    int bits[2] = {MOTE_READABLE, MOTE_WRITABLE}, mask = 0;
    for (int d = 0; d < 2; d++)
        if ((events & bits[d]) && pd_consume(pd, d))
            mask |= bits[d];
    if (mask)
        return mask;
    if (timeout == 0) /* "is it ready now?": ask the descriptor itself */
        return poll_now(fd, events);
    mote__waiter w;
    mote__waiter_init(&w);
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
        mote__waiter_done(&w);
        return mask ? mask : busy;
    }
    MOTE_STORE_LOAD_FENCE(); /* enlisted; now look for a close */
    bool gone = atomic_load(&pd->gen) != gen || (cancelled && atomic_load(cancelled));
    int waited = 0;
    if (!mask && !gone)
        waited = mote__waiter_wait(&w, timeout);
    for (int d = 0; d < 2; d++)
        if ((enlisted & bits[d]) && pd_delist(pd, d, &w))
            mask |= bits[d];
    mote__waiter_done(&w);
    if (atomic_load(&pd->gen) != gen || (cancelled && atomic_load(cancelled)))
        return -EBADF; /* closed while we waited */
    return mask ? mask : waited == -ECANCELED ? waited : -ETIMEDOUT;
}

/* Wake every waiter on fd with -EBADF and forget its registration, without
 * closing it (sockets close the descriptor only when no call is in flight,
 * so its number cannot be reused under one). */
void mote__fd_abort(int fd) {
    if (fd < 0)
        return;
    pdesc *pd = (unsigned)fd < MAX_FD ? pd_get(fd, false) : NULL;
    if (pd) {
        atomic_fetch_add(&pd->gen, 1);
        mote__spin_lock(&pd->lock);
        if (atomic_load_explicit(&pd->registered, memory_order_relaxed) && N.poller)
            mote__poller_del(N.poller, fd);
        atomic_store_explicit(&pd->registered, false, memory_order_release);
        mote__spin_unlock(&pd->lock);
        for (int d = 0; d < 2; d++) {
            pd_signal(pd, d, false); /* waiters wake and see the new generation */
            uintptr_t ready = PD_READY;
            atomic_compare_exchange_strong(&pd->slot[d], &ready, 0);
        }
        if (atomic_load(&pd->astate) != A_OFF)
            active_notify(pd); /* its process sees the close and lets go */
    }
}

/* ---- Active descriptors ------------------------------------------------------
 *
 * An active descriptor's read readiness goes to a process as a call
 * (active_run) instead of waking a waiter, and the process reads the data
 * in its own turn: it holds no stack while it waits. At most one such call
 * is in flight per descriptor (astate):
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

#define ACTIVE_CHUNK 4096 /* read on the process's stack: keep it small */
#define ACTIVE_BUDGET 16  /* reads per call before others get a turn */

typedef struct active_arg {
    pdesc *pd;
} active_arg;

static mote_result active_run(void *state, void *arg);

static void active_notify(pdesc *pd) {
    uint32_t idle = A_IDLE;
    if (!atomic_compare_exchange_strong(&pd->astate, &idle, A_PENDING))
        return;
    /* Our own reference for the cast: the call may run, end the active
     * mode and drop its reference before mote_cast has returned. */
    mote_proc *p = mote_proc_ref(pd->aproc);
    active_arg a = {pd};
    if (mote_cast(p, active_run, &a, sizeof a) < 0)
        atomic_store(&pd->astate, A_IDLE); /* shutting down */
    mote_proc_release(p);
}

/* In the process: the final call was made or the descriptor was closed. */
static void active_finish(pdesc *pd) {
    pd->adone = true;
    uint32_t idle = A_IDLE;
    if (!atomic_compare_exchange_strong(&pd->astate, &idle, A_OFF))
        return; /* a call is queued: it will come back here */
    mote_proc *p = pd->aproc;
    void *obj = pd->aobj;
    void (*drop)(void *, bool) = pd->adrop;
    drop(obj, false);
    mote_proc_release(p);
}

static mote_result active_run(void *state, void *arg) {
    pdesc *pd = ((active_arg *)arg)->pd;
    atomic_store(&pd->astate, A_IDLE);
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
    active_notify(pd); /* more to read: after the others */
    return mote_ok_i(0);
}

int mote__fd_activate(int fd, mote_proc *p, mote_active_fn fn, void *obj, void (*drop)(void *, bool));
int mote__fd_activate(int fd, mote_proc *p, mote_active_fn fn, void *obj, void (*drop)(void *, bool)) {
    if (fd < 0 || (unsigned)fd >= MAX_FD || !p || !fn)
        return -EINVAL;
    pdesc *pd;
    int r = pd_prepare(fd, &pd);
    if (r < 0)
        return r;
    /* Claim it as PENDING (readiness then sends nothing) while filling in. */
    uint32_t off = A_OFF;
    if (!atomic_compare_exchange_strong(&pd->astate, &off, A_PENDING))
        return -EINVAL; /* already active */
    pd->adone = false;
    pd->agen = atomic_load(&pd->gen);
    pd->afd = fd;
    pd->aproc = mote_proc_ref(p);
    pd->afn = fn;
    pd->aobj = obj;
    pd->adrop = drop;
    atomic_store(&pd->astate, A_IDLE);
    active_notify(pd); /* data may be there already: edges were missed */
    return 0;
}

int mote_fd_close(int fd) {
    if (fd < 0)
        return -EBADF;
    mote__fd_abort(fd);
    return close(fd) == 0 ? 0 : mote__errno();
}
