/*
 * uring.c -- socket reads, writes and accepts, and file reads and writes,
 * as io_uring completions (poll/uring.h), where the runtime's poller is
 * the uring backend.
 *
 * A call prepares one operation on its process's stack, with a stack
 * future that the operation's final CQE completes, and waits on that
 * future. On a worker the operation only joins the pending list: the
 * worker submits everything pending in one io_uring_enter when it next
 * polls, which it does whenever its queues run dry, before it parks (a
 * scheduler round). Elsewhere (the main thread) it is submitted at once,
 * and so are file operations, whose data usually sits in the page cache:
 * the kernel then completes them inside the submission, the process reaps
 * its own CQE and does not park at all.
 *
 * The classic io_uring pitfall is a buffer that the kernel writes after
 * its owner gave up: a read that timed out returns, its stack frame is
 * reused, and the data arrives into it. Here nobody gives up: a timeout,
 * a close (*closed, with mote__uring_abort_fd) or the caller's own
 * cancellation only asks the kernel to cancel (IORING_OP_ASYNC_CANCEL),
 * and the call still waits for the operation's final CQE before it
 * returns. That CQE says what happened: -ECANCELED (nothing was done:
 * -ETIMEDOUT, or -EBADF after a close), or the operation's result, which
 * is returned even after the deadline (the data was consumed, the
 * connection accepted: dropping them would lose them). A cancel that
 * comes while the operation is between a wake-up and its retry in the
 * kernel finds nothing; it is sent again, with a growing pause, until the
 * final CQE arrives.
 *
 * An operation the kernel cancels by itself (its pending work belonged to
 * a thread that exited) is submitted again.
 *
 * A stream socket's reads go through one multishot receive from its third
 * read on: uring_recv.c, which shares this file's ring lookup
 * (mote__uring_here) and operation counts.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/internal.h"
#include "poll/uring.h"

#ifdef MOTE_POLLER_URING

#define MAX_IO ((size_t)1 << 30) /* a CQE's result is an int32_t */
#define CANCEL_PAUSE_MIN MOTE_MSEC(1)
#define CANCEL_PAUSE_MAX MOTE_MSEC(100)

typedef struct uop {
    mote__uring_op op;
    mote_future fut; /* completed by the final CQE; its result's i is the CQE's res */
} uop;

/* Operations started and completed (for tests: mote__uring_counts()),
 * uring_recv.c's included. */
_Atomic uint64_t mote__uring_started, mote__uring_completed;

static void uop_done(mote__uring_op *o, int32_t res, uint32_t flags) {
    (void)flags; /* single-shot operations: every CQE is the final one */
    atomic_fetch_add_explicit(&mote__uring_completed, 1, memory_order_relaxed);
    mote__future_complete(&mote__container_of(o, uop, op)->fut, mote_ok_i(res));
}

void mote__uring_counts(uint64_t *n_started, uint64_t *n_completed) {
    *n_started = atomic_load(&mote__uring_started);
    *n_completed = atomic_load(&mote__uring_completed);
}

/* The ring to run operations on from here, or NULL: not a process, or the
 * runtime's poller is not (or would not be) io_uring. Until the poller is
 * open, the choice is MOTE_POLLER's: a file read under epoll opens no
 * poller. */
mote__poller *mote__uring_here(void) {
    if (!mote__task_current() || mote__proc_reaping())
        return NULL;
    mote__poller *p = mote__netpoll_poller(false);
    if (!p && mote__netpoll_chosen() == &mote__poller_uring)
        p = mote__netpoll_poller(true);
    return mote__uring_is(p) ? p : NULL;
}

/* Cancel u and wait for its final CQE, however long it takes. */
static void cancel_and_wait(mote__poller *p, uop *u) {
    int64_t pause = CANCEL_PAUSE_MIN;
    mote__uring_cancel(p, &u->op);
    for (;;) {
        int64_t t0 = mote__now();
        if (mote__future_wait(&u->fut, pause) == 0)
            return;
        if (mote__now() - t0 < pause) {
            /* The wait was cut short (the process itself is being
             * cancelled): the buffer is still the kernel's, so wait on,
             * reaping the ring ourselves meanwhile. */
            mote__netpoll_poll_now();
            continue;
        }
        pause = pause * 2 < CANCEL_PAUSE_MAX ? pause * 2 : CANCEL_PAUSE_MAX;
        mote__uring_cancel(p, &u->op); /* the last one came too early */
    }
}

/* Wait for u's future until the deadline (< 0: none). 0 once it is done.
 * The deadline goes to the sleep as it is: no clock read here (a deadline
 * already past wakes the sleep at once). */
static int wait_until(uop *u, int64_t deadline) {
    return mote__future_wait_until(&u->fut, deadline);
}

/* Run u's prepared SQE to its final CQE. now: submit at once and look for
 * the completion before parking. Returns the CQE's result, -ETIMEDOUT or
 * -EBADF (see the head comment). */
static int64_t uop_run(mote__poller *p, uop *u, int64_t deadline, _Atomic bool *closed, bool now) {
    u->op.done = uop_done;
    u->op.owned = false;
    for (;;) {
        atomic_fetch_add_explicit(&mote__uring_started, 1, memory_order_relaxed);
        mote__future_init_stack(&u->fut);
        mote__uring_queue(p, &u->op);
        if (now || !mote__sched_polls_when_idle()) {
            mote__uring_flush(p);
            if (now)
                mote__netpoll_poll_now(); /* completed inline, most likely */
        }
        /* Queued, then look for a close: a closer sets the flag, then
         * cancels what was queued before (mote__uring_abort_fd). */
        MOTE_STORE_LOAD_FENCE();
        int r = closed && atomic_load(closed) ? -EBADF : wait_until(u, deadline);
        if (r != 0)
            cancel_and_wait(p, u);
        int64_t res = u->fut.res.i;
        if (res != -ECANCELED)
            return res;
        if (closed && atomic_load(closed))
            return -EBADF;
        if (r != 0)
            return r; /* -ETIMEDOUT, or the caller's own cancellation */
        /* Cancelled by the kernel, not by us: its submitter exited. */
    }
}

int64_t mote__uring_recv(int fd, void *buf, size_t len, int64_t deadline, _Atomic bool *closed) {
    mote__poller *p = mote__uring_here();
    if (!p)
        return -ENOTSUP;
    uop u;
    io_uring_prep_recv(&u.op.sqe, fd, buf, len < MAX_IO ? len : MAX_IO, 0);
    return uop_run(p, &u, deadline, closed, false);
}

int64_t mote__uring_send(int fd, const void *buf, size_t len, int64_t deadline, _Atomic bool *closed) {
    mote__poller *p = mote__uring_here();
    if (!p)
        return -ENOTSUP;
    uop u;
    io_uring_prep_send(&u.op.sqe, fd, buf, len < MAX_IO ? len : MAX_IO, MSG_NOSIGNAL);
    return uop_run(p, &u, deadline, closed, false);
}

int64_t mote__uring_accept(int fd, void *addr, uint32_t *addrlen, int64_t deadline, _Atomic bool *closed) {
    mote__poller *p = mote__uring_here();
    if (!p)
        return -ENOTSUP;
    uop u;
    io_uring_prep_accept(&u.op.sqe, fd, addr, (socklen_t *)addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return uop_run(p, &u, deadline, closed, false);
}

/* One read or write of a file as a completion, submitted at once. */
static int64_t file_op(mote__poller *p, int fd, void *buf, size_t len, int64_t off, bool write) {
    uop u;
    unsigned n = (unsigned)(len < MAX_IO ? len : MAX_IO);
    uint64_t at = off < 0 ? (uint64_t)-1 : (uint64_t)off; /* -1: the file position */
    if (write)
        io_uring_prep_write(&u.op.sqe, fd, buf, n, at);
    else
        io_uring_prep_read(&u.op.sqe, fd, buf, n, at);
    return uop_run(p, &u, -1, NULL, true);
}

/*
 * Sequential reads at known offsets (a read-only mote_file keeps its
 * position, file.c) ask the kernel what the page cache holds ahead of them,
 * once per window of TRUST bytes, with cachestat(2). If all of
 * [off, off + 2 * TRUST) was there, the reads in the first TRUST bytes are
 * the caller's plain preads in a blocking section (file.c), the cheapest way to copy cached data
 * (bench/RESULTS.md, "Session 5"). cachestat also counts pages that
 * readahead has inserted but not yet filled; the second TRUST bytes, which
 * must be there too, keep the trusted window behind that front (at least
 * one readahead batch of up to TRUST bytes: read_ahead_kb, 128 KiB by
 * default). Pages evicted meanwhile make a read wait for the disk, inside
 * its blocking section, as without io_uring.
 *
 * Every other read (the window was not all cached, cachestat cannot tell,
 * random reads, which a cachestat each would slow, reads at the kernel's
 * position) is a RWF_NOWAIT probe, then an io_uring read of what it did not
 * get (mote__uring_file_io). A RWF_NOWAIT read also starts no I/O in the
 * kernel: it stops at a page marked for the next asynchronous readahead,
 * and the io_uring read of the rest, which starts there, starts it; the
 * readahead then runs as under blocking reads (RESULTS, traced). The probe
 * is kept for cold files too: readahead mostly keeps ahead of a sequential
 * reader, so the probe finds the data, at less cost than an io_uring read.
 */
#ifndef __NR_cachestat
#define __NR_cachestat 451 /* Linux 6.5; the same number on every architecture */
#endif
#define TRUST ((int64_t)8 << 20)

struct mote__cachestat_range {
    uint64_t off, len;
};
struct mote__cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

static _Atomic bool no_cachestat; /* the kernel has none (before 6.5) */

/* Whether all of [off, off + len) is in the page cache; false where
 * cachestat cannot tell (not a regular file, or no cachestat). */
static bool all_cached(int fd, int64_t off, int64_t len) {
    struct mote__cachestat_range r = {(uint64_t)off, (uint64_t)len};
    struct mote__cachestat cs;
    if (atomic_load_explicit(&no_cachestat, memory_order_relaxed))
        return false;
    if (syscall(__NR_cachestat, fd, &r, &cs, 0) != 0) {
        if (mote__errno() == -ENOSYS)
            atomic_store_explicit(&no_cachestat, true, memory_order_relaxed);
        return false;
    }
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    return cs.nr_cache >= ((uint64_t)(off + len - 1) / page) - (uint64_t)off / page + 1;
}

/* Whether [off, off + len) lies in a window found cached; updates the
 * hint when the read leaves its window. */
static bool hint_cached(mote__file_hint *h, int fd, int64_t off, size_t len) {
    int64_t from = atomic_load_explicit(&h->from, memory_order_relaxed);
    int64_t to = atomic_load_explicit(&h->to, memory_order_relaxed);
    int64_t n = (int64_t)len, span = n > TRUST ? n : TRUST;
    if (off > INT64_MAX - 2 * span)
        return false; /* near the largest offset: the kernel will refuse it */
    int64_t end = off + n;
    if (off >= from && end <= to)
        return atomic_load_explicit(&h->cached, memory_order_relaxed);
    bool cached = false;
    if (off >= from && off <= to) { /* sequential: look ahead */
        struct stat st;
        int64_t look = 2 * span;
        mote_blocking_begin(); /* cachestat walks the window's pages: tens of us */
        if (fstat(fd, &st) == 0 && st.st_size - off < look)
            look = st.st_size - off; /* what lies beyond the end is never cached */
        cached = look > 0 && all_cached(fd, off, look);
        mote_blocking_end();
        end = off + span;
    }
    atomic_store_explicit(&h->cached, cached, memory_order_relaxed);
    atomic_store_explicit(&h->from, off, memory_order_relaxed);
    atomic_store_explicit(&h->to, end, memory_order_relaxed);
    return cached;
}

int64_t mote__uring_file_io(int fd, void *buf, size_t len, int64_t off, bool write, mote__file_hint *hint) {
    mote__poller *p = mote__uring_here();
    if (!p)
        return -ENOTSUP;
    if (write)
        return file_op(p, fd, buf, len, off, true);
    len = len < MAX_IO ? len : MAX_IO;
    if (off >= 0 && hint && hint_cached(hint, fd, off, len))
        return -ENOTSUP; /* the caller's pread in a blocking section */
    /* What the page cache holds is copied by one preadv2(RWF_NOWAIT),
     * which never waits for the disk: a single cached read as an io_uring
     * operation costs about twice a read(2) (bench/RESULTS.md), and
     * nothing can be batched with it, since the caller waits for its
     * data. Only what is missing becomes a completion.
     * The copy runs as a blocking section (two relaxed stores): a large
     * one can take a while, and a process that loops on cached reads
     * would otherwise look to the monitor like one long turn, a hog,
     * which it then samples every 50 us, at the reader's expense. */
    struct iovec v = {buf, len};
    int e = 0;
    mote_blocking_begin();
    ssize_t got = preadv2(fd, &v, 1, off < 0 ? -1 : off, RWF_NOWAIT);
    if (got < 0)
        e = mote__errno();
    mote_blocking_end();
    if (got == (ssize_t)v.iov_len || got == 0)
        return got; /* all of it, or the end of the file */
    if (got < 0) {
        if (e != -EAGAIN && e != -EOPNOTSUPP)
            return e;
        got = 0; /* nothing cached (or no RWF_NOWAIT for this file) */
    }
    int64_t rest = file_op(p, fd, (char *)buf + got, v.iov_len - (size_t)got, off < 0 ? -1 : off + got, false);
    return got == 0 ? rest : rest > 0 ? got + rest : got;
}

void mote__uring_abort_fd(int fd) {
    mote__poller *p = mote__netpoll_poller(false);
    if (mote__uring_is(p))
        mote__uring_cancel_fd(p, fd);
}

#else /* no io_uring in this build: every caller takes its other path */

int64_t mote__uring_recv(int fd, void *buf, size_t len, int64_t deadline, _Atomic bool *closed) {
    (void)fd, (void)buf, (void)len, (void)deadline, (void)closed;
    return -ENOTSUP;
}

int64_t mote__uring_send(int fd, const void *buf, size_t len, int64_t deadline, _Atomic bool *closed) {
    (void)fd, (void)buf, (void)len, (void)deadline, (void)closed;
    return -ENOTSUP;
}

int64_t mote__uring_accept(int fd, void *addr, uint32_t *addrlen, int64_t deadline, _Atomic bool *closed) {
    (void)fd, (void)addr, (void)addrlen, (void)deadline, (void)closed;
    return -ENOTSUP;
}

int64_t mote__uring_file_io(int fd, void *buf, size_t len, int64_t off, bool write, mote__file_hint *hint) {
    (void)fd, (void)buf, (void)len, (void)off, (void)write, (void)hint;
    return -ENOTSUP;
}

void mote__uring_abort_fd(int fd) {
    (void)fd;
}

void mote__uring_counts(uint64_t *n_started, uint64_t *n_completed) {
    *n_started = *n_completed = 0;
}

#endif
