/*
 * poller_uring.c -- the io_uring backend (Linux 5.19 or later, liburing).
 *
 * One ring per runtime, shared by every thread. Readiness (poller.h's
 * contract) is one multishot IORING_OP_POLL_ADD per descriptor: the kernel
 * posts a CQE for each wake-up of the descriptor's wait queue, which is an
 * edge, and keeps CQEs the ring has no room for (IORING_FEAT_NODROP); a
 * multishot poll the kernel ends (no IORING_CQE_F_MORE) is armed again,
 * and arming reports the current readiness, so no edge is lost. wakeup()
 * posts a NOP's CQE from the waker's own io_uring_enter (no task work: it
 * wakes the thread blocked in the ring directly), at most one in flight.
 *
 * Operations (uring.h) are the completion side: io/uring.c queues them,
 * and every submission publishes the queued ones first, so the thread that
 * polls submits a whole scheduler round's operations in one io_uring_enter,
 * and a blocked wait submits and waits in one call.
 *
 * user_data carries a pointer and a 2-bit tag: a registration (TAG_REG),
 * an operation (TAG_OP), the wake-up NOP (TAG_WAKE), or a request whose
 * CQE means nothing to us (TAG_IGNORE: cancels).
 *
 * Locks, always taken in this order: cq_lock (one reaper at a time:
 * registrations are freed by the reaper, so reaping is serialised),
 * reg_lock (the table of registrations), sq_lock (SQEs, the pending list's
 * drain, op states). io_uring_enter runs outside sq_lock except when the
 * SQ is full (it then only submits, never waits).
 *
 * With IORING_SETUP_COOP_TASKRUN the kernel completes an operation or a
 * poll wake-up as task work of the thread that submitted it, when that
 * thread next enters the kernel (or at once, if it sleeps): no
 * inter-processor interrupt, but a thread that computes without a system
 * call delays its own requests' CQEs until its next clock tick.
 *
 * When the kernel refuses io_uring (ENOSYS, EPERM: kernel.io_uring_disabled,
 * seccomp, a kernel older than 5.19), opening falls back to epoll silently:
 * mote__poller_name() then says "epoll".
 *
 * One file, a little over 600 lines: readiness, operations, the provided
 * buffers of multishot receives and the wake-up all share the ring, its
 * three locks and the reaper, which no other file should see.
 */
#include "poll/poller.h"
#include "poll/uring.h"

#ifdef MOTE_POLLER_URING

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#define SQ_ENTRIES 1024
#define CQ_ENTRIES 16384
#define REAP_BATCH 128
#define TABLE_BITS 10 /* descriptors up to 2^20, as io/netpoll.c */
#define TABLE_SIZE (1u << TABLE_BITS)
#define PBUF_COUNT 512 /* provided buffers: 8 MiB of address space, touched as used */
#define PBUF_SIZE 16384 /* a read buffer's size: one CQE carries as much as one recv would */

enum { TAG_REG = 0, TAG_OP = 1, TAG_WAKE = 2, TAG_IGNORE = 3, TAG_MASK = 3 };

/* Kernel features the backend relies on: kept CQEs, wait timeouts in
 * nanoseconds, internal poll for operations on sockets. */
#define NEEDED_FEATURES (IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_FAST_POLL)

/* A descriptor's registration: one multishot poll. Freed by the reaper
 * once the poll's final CQE says the kernel is done with it. */
typedef struct ureg {
    void *data;
    int fd;
    dev_t dev; /* which open file: a number reused by another one is new */
    ino_t ino;
    _Atomic bool live;       /* still the descriptor's registration (not deleted) */
    _Atomic uint32_t posted; /* released before the SQE goes out, acquired by the reaper */
    struct ureg *prev, *next; /* every registration not yet freed */
} ureg;

typedef struct uring_poller {
    mote__poller base;
    struct io_uring ring;
    mote__spinlock cq_lock, reg_lock, sq_lock;
    ureg **table[TABLE_SIZE]; /* fd -> its live registration (reg_lock) */
    ureg *regs;               /* every registration (reg_lock) */
    _Atomic(mote__uring_op *) pending; /* queued ops, newest first */
    _Atomic bool wake_pending;         /* a wake-up NOP is in flight */
    _Atomic int64_t inflight;          /* ops submitted, final CQE not reaped */
    _Atomic bool closing;              /* ops' callbacks are no longer called */
    uint64_t id;                       /* mote__uring_id */
    /* Provided buffers: made once (0 none, 1 being made, 2 ready, 3
     * refused); the ring's tail is ours, advanced under pbuf_lock. */
    _Atomic int pbuf_state;
    mote__uring_pbufs pbufs;
    struct io_uring_buf_ring *pbuf_ring;
    mote__spinlock pbuf_lock;
} uring_poller;

static uring_poller *up_of(mote__poller *p) {
    return (uring_poller *)p;
}

bool mote__uring_is(const mote__poller *p) {
    return p && p->ops == &mote__poller_uring;
}

/* ---- Submission ---- */

/* SQEs published but not yet taken by the kernel. */
static unsigned unsubmitted(uring_poller *p) {
    return io_uring_smp_load_acquire(p->ring.sq.ktail) - IO_URING_READ_ONCE(*p->ring.sq.khead);
}

/* Hand the SQEs prepared so far to the kernel's side of the ring. */
static void publish_locked(uring_poller *p) {
    struct io_uring_sq *sq = &p->ring.sq;
    if (sq->sqe_head != sq->sqe_tail) {
        sq->sqe_head = sq->sqe_tail;
        io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
    }
}

/* Submit what is published; with `wait`, also wait up to wait ns (< 0:
 * forever) for a CQE. Returns io_uring_enter's result. */
static int enter(uring_poller *p, bool wait, int64_t ns) {
    unsigned flags = 0, n = unsubmitted(p);
    unsigned sqf = IO_URING_READ_ONCE(*p->ring.sq.kflags);
    if (sqf & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN))
        flags |= IORING_ENTER_GETEVENTS; /* flush the overflow, run our task work */
    if (!wait) {
        if (!n && !flags)
            return 0;
        return io_uring_enter(p->ring.ring_fd, n, 0, flags, NULL);
    }
    flags |= IORING_ENTER_GETEVENTS;
    if (ns < 0)
        return io_uring_enter(p->ring.ring_fd, n, 1, flags, NULL);
    struct __kernel_timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    struct io_uring_getevents_arg arg = {.ts = (uint64_t)(uintptr_t)&ts};
    return io_uring_enter2(p->ring.ring_fd, n, 1, flags | IORING_ENTER_EXT_ARG, (sigset_t *)&arg,
                           sizeof arg);
}

/* A full SQ (under sq_lock): submit it. The kernel takes SQEs without
 * waiting for anything. */
static void make_room_locked(uring_poller *p) {
    publish_locked(p);
    if (enter(p, false, 0) < 0)
        sched_yield(); /* out of memory for requests, for now */
}

/* A free SQE (under sq_lock). */
static struct io_uring_sqe *sqe_get_locked(uring_poller *p) {
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&p->ring)))
        make_room_locked(p);
    return sqe;
}

/* Move the queued ops into SQEs, oldest first (under sq_lock). */
static void drain_locked(uring_poller *p) {
    mote__uring_op *op = atomic_exchange_explicit(&p->pending, NULL, memory_order_acquire), *fifo = NULL;
    while (op) {
        mote__uring_op *next = op->next;
        op->next = fifo;
        fifo = op;
        op = next;
    }
    for (op = fifo; op; op = fifo) {
        fifo = op->next;
        struct io_uring_sqe *sqe = sqe_get_locked(p);
        *sqe = op->sqe;
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | TAG_OP);
        atomic_fetch_add_explicit(&p->inflight, 1, memory_order_relaxed);
        atomic_store_explicit(&op->state, MOTE__UOP_SUBMITTED, memory_order_release);
    }
}

/* The submission lock, with the queued ops already drained: whatever the
 * caller adds goes after them. */
static void sq_lock_drained(uring_poller *p) {
    mote__spin_lock(&p->sq_lock);
    drain_locked(p);
}

/* Publish, unlock, submit. */
static void sq_unlock_submit(uring_poller *p) {
    publish_locked(p);
    mote__spin_unlock(&p->sq_lock);
    enter(p, false, 0);
}

void mote__uring_queue(mote__poller *base, mote__uring_op *op) {
    uring_poller *p = up_of(base);
    atomic_store_explicit(&op->state, MOTE__UOP_QUEUED, memory_order_relaxed);
    mote__uring_op *head = atomic_load_explicit(&p->pending, memory_order_relaxed);
    do
        op->next = head;
    while (!atomic_compare_exchange_weak_explicit(&p->pending, &head, op, memory_order_seq_cst,
                                                  memory_order_relaxed));
}

void mote__uring_flush(mote__poller *base) {
    uring_poller *p = up_of(base);
    sq_lock_drained(p);
    sq_unlock_submit(p);
}

void mote__uring_cancel(mote__poller *base, mote__uring_op *op) {
    uring_poller *p = up_of(base);
    sq_lock_drained(p); /* op, if still queued, goes out before its cancel */
    if (atomic_load(&op->state) == MOTE__UOP_SUBMITTED) {
        struct io_uring_sqe *sqe = sqe_get_locked(p);
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op | TAG_OP, 0);
        io_uring_sqe_set_data64(sqe, TAG_IGNORE);
    }
    sq_unlock_submit(p);
}

void mote__uring_cancel_fd(mote__poller *base, int fd) {
    uring_poller *p = up_of(base);
    sq_lock_drained(p);
    struct io_uring_sqe *sqe = sqe_get_locked(p);
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
    sq_unlock_submit(p);
}

/* ---- Provided buffers ---- */

static void pbufs_free(uring_poller *p) {
    if (p->pbuf_ring)
        munmap(p->pbuf_ring, PBUF_COUNT * sizeof(struct io_uring_buf));
    if (p->pbufs.mem)
        munmap(p->pbufs.mem, (size_t)PBUF_COUNT * PBUF_SIZE);
    free(p->pbufs.len);
    free(p->pbufs.next);
}

/* Map the buffers and their ring, register it, hand every buffer over. */
static bool pbufs_make(uring_poller *p) {
    mote__uring_pbufs *b = &p->pbufs;
    void *ring = mmap(NULL, PBUF_COUNT * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *mem = mmap(NULL, (size_t)PBUF_COUNT * PBUF_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p->pbuf_ring = ring == MAP_FAILED ? NULL : ring;
    b->mem = mem == MAP_FAILED ? NULL : mem;
    b->len = calloc(PBUF_COUNT, sizeof *b->len);
    b->next = calloc(PBUF_COUNT, sizeof *b->next);
    b->count = PBUF_COUNT;
    b->size = PBUF_SIZE;
    if (!p->pbuf_ring || !b->mem || !b->len || !b->next)
        return false;
    io_uring_buf_ring_init(p->pbuf_ring);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)p->pbuf_ring,
        .ring_entries = PBUF_COUNT,
        .bgid = MOTE__UPBUF_GROUP,
    };
    if (io_uring_register_buf_ring(&p->ring, &reg, 0) != 0)
        return false;
    for (unsigned i = 0; i < PBUF_COUNT; i++)
        io_uring_buf_ring_add(p->pbuf_ring, b->mem + (size_t)i * PBUF_SIZE, PBUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(PBUF_COUNT), (int)i);
    io_uring_buf_ring_advance(p->pbuf_ring, PBUF_COUNT);
    return true;
}

mote__uring_pbufs *mote__uring_pbufs_of(mote__poller *base) {
    uring_poller *p = up_of(base);
    int st = atomic_load_explicit(&p->pbuf_state, memory_order_acquire);
    if (st == 0 && atomic_compare_exchange_strong(&p->pbuf_state, &st, 1)) {
        st = pbufs_make(p) ? 2 : 3;
        atomic_store_explicit(&p->pbuf_state, st, memory_order_release);
    }
    return st == 2 ? &p->pbufs : NULL;
}

void mote__uring_pbuf_put(mote__poller *base, const uint16_t *bids, unsigned n) {
    uring_poller *p = up_of(base);
    mote__spin_lock(&p->pbuf_lock);
    for (unsigned i = 0; i < n; i++)
        io_uring_buf_ring_add(p->pbuf_ring, p->pbufs.mem + (size_t)bids[i] * PBUF_SIZE, PBUF_SIZE,
                              bids[i], io_uring_buf_ring_mask(PBUF_COUNT), (int)i);
    io_uring_buf_ring_advance(p->pbuf_ring, (int)n); /* a release store of the tail */
    mote__spin_unlock(&p->pbuf_lock);
}

bool mote__uring_closing(const mote__poller *base) {
    return atomic_load(&((uring_poller *)base)->closing);
}

uint64_t mote__uring_id(const mote__poller *base) {
    return ((const uring_poller *)base)->id;
}

/* ---- Registrations ---- */

static ureg **table_slot(uring_poller *p, int fd, bool create) {
    unsigned hi = (unsigned)fd >> TABLE_BITS, lo = (unsigned)fd & (TABLE_SIZE - 1);
    if (!p->table[hi] && create)
        p->table[hi] = calloc(TABLE_SIZE, sizeof *p->table[hi]);
    return p->table[hi] ? &p->table[hi][lo] : NULL;
}

/* Arm r's multishot poll (under reg_lock and sq_lock). */
static void arm_locked(uring_poller *p, ureg *r) {
    struct io_uring_sqe *sqe = sqe_get_locked(p);
    io_uring_prep_poll_multishot(sqe, r->fd, POLLIN | POLLOUT | POLLRDHUP);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)r | TAG_REG);
    atomic_store_explicit(&r->posted, 1, memory_order_release);
}

/* Ask the kernel to end r's poll (under sq_lock); its final CQE frees r. */
static void disarm_locked(uring_poller *p, ureg *r) {
    atomic_store(&r->live, false);
    struct io_uring_sqe *sqe = sqe_get_locked(p);
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)r | TAG_REG, 0);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

static void reg_free_locked(uring_poller *p, ureg *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        p->regs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r);
}

static int ur_add(mote__poller *base, int fd, void *data) {
    uring_poller *p = up_of(base);
    struct stat st;
    if (fd < 0 || (unsigned)fd >= TABLE_SIZE * TABLE_SIZE)
        return -EBADF;
    if (fstat(fd, &st) != 0)
        return mote__errno();
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM; /* always "ready": they belong to blocking sections */
    mote__spin_lock(&p->reg_lock);
    ureg **slot = table_slot(p, fd, true), *old = slot ? *slot : NULL, *r = NULL;
    if (old && old->dev == st.st_dev && old->ino == st.st_ino) {
        mote__spin_unlock(&p->reg_lock);
        return -EEXIST;
    }
    if (slot && (r = calloc(1, sizeof *r))) {
        r->data = data;
        r->fd = fd;
        r->dev = st.st_dev;
        r->ino = st.st_ino;
        atomic_init(&r->live, true);
        r->next = p->regs;
        if (r->next)
            r->next->prev = r;
        p->regs = r;
        *slot = r;
        /* A number closed behind our back and reused: the old poll still
         * holds the old file, and must let it go. */
        sq_lock_drained(p);
        if (old)
            disarm_locked(p, old);
        arm_locked(p, r);
        mote__spin_unlock(&p->reg_lock);
        sq_unlock_submit(p);
        return 0;
    }
    mote__spin_unlock(&p->reg_lock);
    return -ENOMEM;
}

static int ur_del(mote__poller *base, int fd) {
    uring_poller *p = up_of(base);
    if (fd < 0 || (unsigned)fd >= TABLE_SIZE * TABLE_SIZE)
        return -EBADF;
    mote__spin_lock(&p->reg_lock);
    ureg **slot = table_slot(p, fd, false), *r = slot ? *slot : NULL;
    if (!r) {
        mote__spin_unlock(&p->reg_lock);
        return -ENOENT;
    }
    *slot = NULL;
    sq_lock_drained(p);
    disarm_locked(p, r);
    mote__spin_unlock(&p->reg_lock);
    sq_unlock_submit(p);
    return 0;
}

/* ---- Reaping ---- */

static bool spin_trylock(mote__spinlock *l) {
    return !atomic_exchange_explicit(&l->v, 1, memory_order_acquire);
}

static unsigned poll_events(int32_t mask) {
    unsigned e = 0;
    if (mask & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))
        e |= MOTE__EV_READ;
    if (mask & (POLLOUT | POLLHUP | POLLERR))
        e |= MOTE__EV_WRITE;
    if (mask & POLLERR)
        e |= MOTE__EV_ERR;
    if (mask & (POLLRDHUP | POLLHUP | POLLERR))
        e |= MOTE__EV_HUP;
    return e;
}

/* A registration's CQE (under cq_lock). Returns its event bits, if any,
 * and the registration's pointer in *data (r may be freed on return). */
static unsigned reap_reg(uring_poller *p, ureg *r, int32_t res, uint32_t flags, void **data) {
    (void)atomic_load_explicit(&r->posted, memory_order_acquire);
    /* After del, CQEs posted before the cancel are dropped, as epoll's
     * ready list forgets a deleted descriptor. */
    unsigned e = res > 0 && atomic_load(&r->live) ? poll_events(res) : 0;
    *data = r->data;
    if (!(flags & IORING_CQE_F_MORE)) {
        /* The kernel ended the poll (a cancel, or it could not post a CQE):
         * arm it again if it is still wanted, else r is ours to free. */
        mote__spin_lock(&p->reg_lock);
        if (res >= 0 && atomic_load(&r->live)) {
            sq_lock_drained(p);
            arm_locked(p, r);
            mote__spin_unlock(&p->reg_lock);
            sq_unlock_submit(p);
        } else {
            ureg **slot = table_slot(p, r->fd, false);
            if (slot && *slot == r)
                *slot = NULL; /* the poll failed */
            reg_free_locked(p, r);
            mote__spin_unlock(&p->reg_lock);
        }
    }
    return e;
}

static void reap_op(uring_poller *p, mote__uring_op *op, int32_t res, uint32_t flags) {
    (void)atomic_load_explicit(&op->state, memory_order_acquire);
    if (!(flags & IORING_CQE_F_MORE)) {
        atomic_fetch_sub_explicit(&p->inflight, 1, memory_order_relaxed);
        atomic_store(&op->state, MOTE__UOP_DONE);
    }
    if (op->owned || !atomic_load(&p->closing))
        op->done(op, res, flags); /* last: op may be gone after a final CQE */
}

/* Take up to max CQEs and act on them (under cq_lock). Readiness goes to
 * ev; completions are handed to their ops, and counted as one entry with
 * no data (the caller learns that something happened). */
static int reap_locked(uring_poller *p, mote__poll_event *ev, int max, bool *woken) {
    struct io_uring_cqe cqes[REAP_BATCH];
    unsigned head, n = 0;
    struct io_uring_cqe *cqe;
    if (max > REAP_BATCH)
        max = REAP_BATCH;
    io_uring_for_each_cqe(&p->ring, head, cqe) {
        if (n == (unsigned)max)
            break;
        cqes[n++] = *cqe;
    }
    io_uring_cq_advance(&p->ring, n); /* copied: the kernel may reuse the slots */
    int k = 0;
    bool completed = false;
    for (unsigned i = 0; i < n; i++) {
        uint64_t ud = cqes[i].user_data;
        void *ptr = (void *)(uintptr_t)(ud & ~(uint64_t)TAG_MASK);
        switch (ud & TAG_MASK) {
        case TAG_REG: {
            void *data;
            unsigned e = reap_reg(p, ptr, cqes[i].res, cqes[i].flags, &data);
            if (e) {
                ev[k].data = data;
                ev[k++].events = e;
            }
            break;
        }
        case TAG_OP:
            reap_op(p, ptr, cqes[i].res, cqes[i].flags);
            completed = true;
            break;
        case TAG_WAKE:
            atomic_store(&p->wake_pending, false);
            *woken = true;
            break;
        default:
            break;
        }
    }
    if (completed && k < max)
        ev[k++] = (mote__poll_event){NULL, 0};
    return k;
}

/* Reap under cq_lock; a busy worker's poll (try) leaves it to a reaper
 * already at work, which hands out what is there. */
static int reap(uring_poller *p, mote__poll_event *ev, int max, bool *woken, bool try) {
    if (try) {
        if (!spin_trylock(&p->cq_lock))
            return 0;
    } else {
        mote__spin_lock(&p->cq_lock);
    }
    int n = reap_locked(p, ev, max, woken);
    mote__spin_unlock(&p->cq_lock);
    return n;
}

static int ur_wait(mote__poller *base, mote__poll_event *ev, int max, int64_t timeout, bool *woken) {
    uring_poller *p = up_of(base);
    *woken = false;
    if (max <= 0)
        return -EINVAL;
    int64_t deadline = timeout > 0 ? mote__now() + timeout : 0;
    for (;;) {
        /* This round's operations go out with the call that waits: one
         * io_uring_enter submits them and waits for a CQE. */
        mote__spin_lock(&p->sq_lock);
        drain_locked(p);
        publish_locked(p);
        mote__spin_unlock(&p->sq_lock);
        int n;
        if (timeout != 0 && !unsubmitted(p) && ((n = reap(p, ev, max, woken, false)) > 0 || *woken))
            return n; /* CQEs were there already: no system call */
        int64_t left = -1;
        if (timeout > 0 && (left = deadline - mote__now()) < 0)
            left = 0;
        int r = enter(p, timeout != 0, left);
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN)
            return r;
        n = reap(p, ev, max, woken, timeout == 0);
        if (n > 0 || *woken || timeout == 0 || (timeout > 0 && mote__now() >= deadline))
            return n;
    }
}

static void ur_wakeup(mote__poller *base) {
    uring_poller *p = up_of(base);
    if (atomic_exchange(&p->wake_pending, true))
        return; /* the NOP in flight wakes a wait, or the next one */
    sq_lock_drained(p);
    struct io_uring_sqe *sqe = sqe_get_locked(p);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, TAG_WAKE);
    sq_unlock_submit(p);
}

/* ---- Opening and closing ---- */

static int ur_open(mote__poller **out) {
    uring_poller *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    struct io_uring_params prm = {
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                 IORING_SETUP_TASKRUN_FLAG,
        .cq_entries = CQ_ENTRIES,
    };
    int r = io_uring_queue_init_params(SQ_ENTRIES, &p->ring, &prm);
    if (r == 0 && (prm.features & NEEDED_FEATURES) != NEEDED_FEATURES) {
        io_uring_queue_exit(&p->ring);
        r = -ENOSYS;
    }
    if (r < 0) {
        /* Refused (no io_uring, disabled by kernel.io_uring_disabled or a
         * seccomp filter, or a kernel without the flags above): epoll does
         * the job, without a word (mote__poller_name tells). */
        free(p);
#ifdef MOTE_POLLER_EPOLL
        return mote__poller_epoll.open(out);
#else
        return r;
#endif
    }
    static _Atomic uint64_t rings;
    p->id = atomic_fetch_add(&rings, 1) + 1;
    p->base.ops = &mote__poller_uring;
    *out = &p->base;
    return 0;
}

/* Cancel everything and reap until no op is in flight, so that the
 * kernel writes into no buffer after this returns (bounded: an op stuck
 * in a device is left to the ring's own teardown). */
static void drain_all(uring_poller *p) {
    atomic_store(&p->closing, true);
    sq_lock_drained(p);
    struct io_uring_sqe *sqe = sqe_get_locked(p);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, TAG_IGNORE);
    sq_unlock_submit(p);
    int64_t end = mote__now() + MOTE_SEC(5);
    while (atomic_load(&p->inflight) > 0 && mote__now() < end) {
        mote__poll_event ev[16];
        bool woken;
        ur_wait(&p->base, ev, 16, MOTE_MSEC(10), &woken);
    }
}

static void ur_close(mote__poller *base) {
    uring_poller *p = up_of(base);
    drain_all(p);
    io_uring_queue_exit(&p->ring);
    if (atomic_load(&p->pbuf_state) != 0)
        pbufs_free(p);
    while (p->regs)
        reg_free_locked(p, p->regs);
    for (unsigned i = 0; i < TABLE_SIZE; i++)
        free(p->table[i]);
    free(p);
}

const mote__poller_ops mote__poller_uring = {
    .name = "uring",
    .open = ur_open,
    .close = ur_close,
    .add = ur_add,
    .del = ur_del,
    .wait = ur_wait,
    .wakeup = ur_wakeup,
};

#endif /* MOTE_POLLER_URING */
