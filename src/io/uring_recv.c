/*
 * uring_recv.c -- multishot receives for stream sockets, where the
 * runtime's poller is io_uring (uring.c runs the one-shot operations).
 *
 * One IORING_OP_RECV with IORING_RECV_MULTISHOT stays armed on the socket
 * from its first read on: the kernel fills a provided buffer (the ring's
 * group, poll/uring.h) each time data arrives and posts a CQE for it,
 * which queues the buffer on the socket's mote__urecv; a read copies from
 * that queue into the caller's buffer and gives every buffer it emptied
 * back. No SQE, no internal poll arming per read; a reader finds its data
 * already there or parks until the next CQE.
 *
 * The receive ends (a CQE without IORING_CQE_F_MORE) at the end of the
 * stream or an error, which is recorded and reported once the queue is
 * read (order kept); when the buffers ran out (-ENOBUFS: the next read is
 * a one-shot receive into the caller's buffer); or when it was cancelled.
 * The next read arms it again. A socket whose reader does not keep up
 * holds at most MS_CAP bytes (plus what was in flight): then its receive
 * is cancelled, so one socket cannot take every buffer.
 *
 * A read that times out or is cancelled leaves the receive armed: what it
 * brings stays queued for the next read, nothing is lost. A close cancels
 * it (mote__uring_abort_fd), the socket's release marks it orphaned and
 * gives its queue back, and its final CQE frees it (the op is `owned`: its
 * done() runs even while the poller closes). A ring closed under a socket
 * took its buffers along: the socket's ring id tells (mote__uring_id).
 *
 * Lock order: the reaper's cq_lock, then u->lock, then the poller's
 * sq_lock or buffer lock (a cancel is sent under u->lock, so the op
 * cannot be freed under it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "io/internal.h"
#include "poll/uring.h"

#ifdef MOTE_POLLER_URING

static _Atomic uint64_t nobufs_ends; /* for tests: mote__uring_nobufs_ends() */

uint64_t mote__uring_nobufs_ends(void) {
    return atomic_load(&nobufs_ends);
}

#define MS_CAP (64 * 1024) /* queued bytes past which the receive is stopped */
#define MS_NO_END 1        /* u->end when nothing is to be reported */
#define MS_BATCH 16        /* buffers a read empties at most */

typedef struct ms_wait {
    mote_future fut; /* completed by the next CQE */
    struct ms_wait *next;
} ms_wait;

struct mote__urecv {
    mote__uring_op op; /* the receive */
    mote__poller *p;
    uint64_t ring; /* mote__uring_id(p) */
    mote__uring_pbufs *pb;
    mote__spinlock lock; /* guards what follows */
    int32_t head, tail;  /* queued buffers, oldest first (pb->next); -1: none */
    uint32_t off;        /* bytes of head already read */
    uint32_t queued;     /* bytes queued */
    int32_t end;         /* 0 (end of stream) or -errno after the queue, or MS_NO_END */
    bool armed;          /* submitted (or queued), final CQE not seen */
    bool stopping;       /* its cancel was sent */
    bool nobufs;         /* it ended with -ENOBUFS */
    bool orphan;         /* the socket is gone: the final CQE frees u */
    ms_wait *waiters;    /* readers parked on an empty queue */
};

static void ms_push_locked(mote__urecv *u, uint16_t bid, uint32_t len) {
    u->pb->len[bid] = len;
    u->pb->next[bid] = -1;
    if (u->tail >= 0)
        u->pb->next[u->tail] = bid;
    else
        u->head = bid;
    u->tail = bid;
    u->queued += len;
}

/* Unlink the head buffer into ret. */
static void ms_pop_locked(mote__urecv *u, uint16_t *ret, unsigned *nret) {
    int32_t b = u->head;
    u->queued -= u->pb->len[b] - u->off;
    u->head = u->pb->next[b];
    if (u->head < 0)
        u->tail = -1;
    u->off = 0;
    ret[(*nret)++] = (uint16_t)b;
}

static void ms_cancel_locked(mote__urecv *u) {
    if (u->armed && !u->stopping) {
        u->stopping = true;
        mote__uring_cancel(u->p, &u->op);
    }
}

/* Every CQE of the receive, on the reaping thread. */
static void ms_done(mote__uring_op *o, int32_t res, uint32_t flags) {
    mote__urecv *u = mote__container_of(o, mote__urecv, op);
    mote__poller *p = u->p;
    bool final = !(flags & IORING_CQE_F_MORE), give_back = false;
    uint16_t bid = 0;
    atomic_fetch_add_explicit(&mote__uring_completed, 1, memory_order_relaxed);
    mote__spin_lock(&u->lock);
    if (flags & IORING_CQE_F_BUFFER) {
        bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
        if (res > 0 && !u->orphan)
            ms_push_locked(u, bid, (uint32_t)res);
        else
            give_back = true;
    }
    if (final) {
        u->armed = u->stopping = false;
        if (res == -ENOBUFS) {
            u->nobufs = true;
            atomic_fetch_add_explicit(&nobufs_ends, 1, memory_order_relaxed);
        }
        else if (res <= 0 && res != -ECANCELED)
            u->end = res;
    } else if (u->queued >= MS_CAP && !u->orphan) {
        ms_cancel_locked(u);
    }
    ms_wait *w = NULL;
    if (!mote__uring_closing(p)) { /* else its readers are gone with the runtime */
        w = u->waiters;
        u->waiters = NULL;
    }
    bool gone = final && u->orphan;
    mote__spin_unlock(&u->lock);
    /* u may be re-armed or released from here on: only locals. */
    if (give_back)
        mote__uring_pbuf_put(p, &bid, 1);
    while (w) {
        ms_wait *next = w->next; /* before the reader may return */
        mote__future_complete(&w->fut, mote_ok_i(0));
        w = next;
    }
    if (gone)
        free(u);
}

static mote__urecv *ms_new(mote__poller *p) {
    mote__uring_pbufs *pb = mote__uring_pbufs_of(p);
    mote__urecv *u = pb ? calloc(1, sizeof *u) : NULL;
    if (!u)
        return NULL;
    u->op.done = ms_done;
    u->op.owned = true;
    u->p = p;
    u->ring = mote__uring_id(p);
    u->pb = pb;
    u->head = u->tail = -1;
    u->end = MS_NO_END;
    return u;
}

static void ms_arm_locked(mote__urecv *u, int fd) {
    io_uring_prep_recv_multishot(&u->op.sqe, fd, NULL, 0, 0);
    u->op.sqe.flags |= IOSQE_BUFFER_SELECT;
    u->op.sqe.buf_group = MOTE__UPBUF_GROUP;
    u->armed = true;
    u->nobufs = false;
    atomic_fetch_add_explicit(&mote__uring_started, 1, memory_order_relaxed);
    mote__uring_queue(u->p, &u->op);
}

/* Copy what is queued into buf (up to MS_BATCH buffers); the buffers
 * emptied go to ret. */
static size_t ms_take_locked(mote__urecv *u, char *buf, size_t len, uint16_t *ret, unsigned *nret) {
    size_t n = 0;
    while (n < len && u->head >= 0 && *nret < MS_BATCH) {
        int32_t b = u->head;
        size_t k = u->pb->len[b] - u->off;
        if (k > len - n)
            k = len - n;
        memcpy(buf + n, u->pb->mem + (size_t)b * u->pb->size + u->off, k);
        n += k;
        if (u->off + k == u->pb->len[b]) {
            ms_pop_locked(u, ret, nret);
        } else {
            u->off += (uint32_t)k;
            u->queued -= (uint32_t)k;
        }
    }
    return n;
}

/* Take w off u's waiters (under u->lock). False if a CQE took it first:
 * it is being completed. */
static bool ms_unwait_locked(mote__urecv *u, ms_wait *w) {
    for (ms_wait **at = &u->waiters; *at; at = &(*at)->next)
        if (*at == w) {
            *at = w->next;
            return true;
        }
    return false;
}

/* Park on u until the next CQE or the deadline (under u->lock, which is
 * dropped meanwhile). Returns the wait's result. */
static int ms_park_locked(mote__urecv *u, int64_t deadline, _Atomic bool *closed, bool flush) {
    ms_wait w;
    mote__future_init_stack(&w.fut);
    w.next = u->waiters;
    u->waiters = &w;
    mote__spin_unlock(&u->lock);
    if (flush)
        mote__uring_flush(u->p);
    /* Queued, then look for a close: a closer sets the flag, then cancels
     * what was queued before (mote__uring_abort_fd), which wakes us. */
    MOTE_STORE_LOAD_FENCE();
    int r = atomic_load(closed) ? -EBADF : mote__future_wait_until(&w.fut, deadline);
    mote__spin_lock(&u->lock);
    if (r != 0 && !ms_unwait_locked(u, &w)) {
        mote__spin_unlock(&u->lock);
        for (unsigned spins = 0; !mote_future_ready(&w.fut); spins++)
            if (spins > 64)
                sched_yield(); /* the completer is between two lines */
            else
                mote__cpu_relax();
        mote__spin_lock(&u->lock);
    }
    return r;
}

/* MOTE_URING_MULTISHOT=0: one-shot receives only (to measure the
 * difference, bench/net.sh's `urings`). Read once. */
static bool ms_wanted(void) {
    static _Atomic int wanted; /* 0 unknown, 1 yes, 2 no */
    int w = atomic_load_explicit(&wanted, memory_order_relaxed);
    if (!w) {
        const char *e = getenv("MOTE_URING_MULTISHOT");
        w = e && strcmp(e, "0") == 0 ? 2 : 1;
        atomic_store_explicit(&wanted, w, memory_order_relaxed);
    }
    return w == 1;
}

int64_t mote__uring_recv_ms(_Atomic(mote__urecv *) *ms, int fd, void *buf, size_t len, int64_t deadline,
                            _Atomic bool *closed) {
    if (!ms_wanted())
        return deadline == 0 ? -ENOTSUP : mote__uring_recv(fd, buf, len, deadline, closed);
    mote__urecv *u = atomic_load_explicit(ms, memory_order_acquire);
    /* A socket with a receive goes through its queue from anywhere (a
     * foreign thread parks on the future too); a new one only from a
     * process. */
    mote__poller *p = u ? mote__netpoll_poller(false) : mote__uring_here();
    if (!mote__uring_is(p) || (!u && deadline == 0))
        return -ENOTSUP; /* no ring (any more); a zero timeout before any receive: a plain read */
    if (!u) {
        mote__urecv *none = NULL;
        if (!(u = ms_new(p)))
            return mote__uring_recv(fd, buf, len, deadline, closed);
        if (!atomic_compare_exchange_strong(ms, &none, u)) {
            free(u);
            u = none;
        }
    }
    if (u->p != p || u->ring != mote__uring_id(p) || len == 0)
        return deadline == 0 ? -ENOTSUP : mote__uring_recv(fd, buf, len, deadline, closed);
    int64_t out = mote__cancel_check();
    if (out < 0)
        return out;
    uint16_t ret[MS_BATCH];
    unsigned nret = 0;
    int waited = 0;
    mote__spin_lock(&u->lock);
    for (;;) {
        if (atomic_load(closed)) {
            out = -EBADF;
            break;
        }
        if (u->head >= 0) {
            out = (int64_t)ms_take_locked(u, buf, len, ret, &nret);
            break;
        }
        if (u->end != MS_NO_END) {
            out = u->end;
            u->end = MS_NO_END;
            break;
        }
        if (!u->armed && (u->nobufs || deadline == 0)) {
            /* Out of buffers, or a read that only tries: with nothing
             * queued and no receive armed, the socket's own queue is next
             * in line for a plain receive. */
            u->nobufs = false;
            out = -ENOTSUP;
            break;
        }
        if (deadline == 0) {
            /* Only trying, with a receive armed: stop it, so that what it
             * may be taking right now lands in the queue, not behind a
             * plain read's bytes. */
            ms_cancel_locked(u);
            int r = ms_park_locked(u, -1, closed, !mote__sched_polls_when_idle());
            if (r == -ECANCELED) {
                mote__spin_unlock(&u->lock);
                mote__netpoll_poll_now(); /* cancelled while waiting: reap ourselves */
                mote__spin_lock(&u->lock);
            }
            continue;
        }
        if (waited < 0) {
            out = waited; /* -ETIMEDOUT, -ECANCELED, -EBADF, -ENOMEM */
            break;
        }
        bool flush = false;
        if (!u->armed) {
            ms_arm_locked(u, fd);
            flush = !mote__sched_polls_when_idle();
        }
        waited = ms_park_locked(u, deadline, closed, flush);
    }
    mote__spin_unlock(&u->lock);
    if (nret)
        mote__uring_pbuf_put(p, ret, nret);
    if (out == -ENOTSUP && deadline != 0)
        return mote__uring_recv(fd, buf, len, deadline, closed);
    return out;
}

void mote__uring_recv_release(mote__urecv *u) {
    if (!u)
        return;
    mote__poller *p = mote__netpoll_poller(false);
    if (!mote__uring_is(p) || mote__uring_id(p) != u->ring) {
        free(u); /* its ring is closed, its buffers and receive gone with it */
        return;
    }
    uint16_t ret[MS_BATCH];
    unsigned nret = 0;
    mote__spin_lock(&u->lock);
    u->orphan = true;
    bool armed = u->armed;
    ms_cancel_locked(u);
    while (u->head >= 0) {
        ms_pop_locked(u, ret, &nret);
        if (nret == MS_BATCH || u->head < 0) {
            mote__uring_pbuf_put(p, ret, nret);
            nret = 0;
        }
    }
    mote__spin_unlock(&u->lock);
    if (!armed)
        free(u); /* else its final CQE does */
}

#else /* no io_uring in this build */

int64_t mote__uring_recv_ms(_Atomic(mote__urecv *) *ms, int fd, void *buf, size_t len, int64_t deadline,
                            _Atomic bool *closed) {
    (void)ms, (void)fd, (void)buf, (void)len, (void)deadline, (void)closed;
    return -ENOTSUP;
}

void mote__uring_recv_release(mote__urecv *u) {
    (void)u;
}

uint64_t mote__uring_nobufs_ends(void) {
    return 0;
}

#endif
