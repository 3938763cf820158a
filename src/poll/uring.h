/*
 * uring.h -- the completion side of the io_uring backend (poller_uring.c).
 * Only built with MOTE_POLLER_URING (liburing found at build time).
 *
 * Besides the six readiness calls of poller.h, an io_uring poller runs
 * *operations*: an SQE the caller prepared, submitted on its behalf, whose
 * completions (CQEs) are handed to op->done by whichever thread reaps the
 * ring (mote__poller_wait). The caller owns the op's memory, and so does
 * the kernel from submission until the op's final CQE (one without
 * IORING_CQE_F_MORE): the op, and every buffer its SQE points at, must
 * stay valid until done() was called with that final CQE, whatever
 * happens to the caller in between (a timeout, a cancellation, a close).
 *
 * Submission is batched: mote__uring_queue() only links the op into a
 * pending list; every submission to the kernel (the next wait, a wake-up,
 * a cancel, or the caller's mote__uring_flush()) first publishes whatever
 * is pending, in the order it was queued, so a cancel never overtakes the
 * op it cancels.
 */
#ifndef MOTE_POLL_URING_H
#define MOTE_POLL_URING_H

#include "poll/poller.h"

#ifdef MOTE_POLLER_URING
#include <liburing.h>

/* An op's state, changed under the submission lock (or by the reaper). */
enum { MOTE__UOP_QUEUED = 0, MOTE__UOP_SUBMITTED, MOTE__UOP_DONE };

typedef struct mote__uring_op mote__uring_op;
struct mote__uring_op {
    struct io_uring_sqe sqe; /* prepared by the caller; user_data is the backend's */
    /* Every CQE of the op, on the reaping thread. After the final one
     * (flags without IORING_CQE_F_MORE) the backend never touches op again. */
    void (*done)(mote__uring_op *op, int32_t res, uint32_t flags);
    mote__uring_op *next;     /* the pending list */
    _Atomic uint32_t state;   /* MOTE__UOP_* */
    /* Set by the caller: done() may run while the poller closes (a heap
     * op that frees itself on its final CQE). Others' done() is no longer
     * called then: their owners (stacks of processes) may be gone. */
    bool owned;
};

/* True if p is an io_uring poller; false for another backend (also when
 * the uring backend fell back to epoll because the kernel refused it). */
bool mote__uring_is(const mote__poller *p);
/* Queue op (state QUEUED) for the next submission. */
void mote__uring_queue(mote__poller *p, mote__uring_op *op);
/* Submit everything pending now (one io_uring_enter). */
void mote__uring_flush(mote__poller *p);
/* Ask the kernel to cancel op; its final CQE follows (-ECANCELED, or its
 * result if it finished first). An op still queued is submitted first, so
 * the cancel finds it. Idempotent. */
void mote__uring_cancel(mote__poller *p, mote__uring_op *op);
/* Cancel every op and poll on fd's open file (closing it under its
 * waiters); ops queued before this call are submitted first. */
void mote__uring_cancel_fd(mote__poller *p, int fd);

/*
 * Provided buffers: one group (MOTE__UPBUF_GROUP) per ring, made on first
 * use, for multishot receives (io/uring.c). The kernel picks a buffer per
 * CQE (IORING_CQE_F_BUFFER, its id in the flags); whoever took it hands it
 * back with mote__uring_pbuf_put() once its bytes are consumed. len[] and
 * next[] are per buffer id, for the queue of the socket holding it.
 */
#define MOTE__UPBUF_GROUP 0
typedef struct mote__uring_pbufs {
    char *mem;        /* buffer i at mem + i * size */
    uint32_t *len;    /* bytes the kernel put in buffer i */
    int32_t *next;    /* the next buffer in its holder's queue, or -1 */
    unsigned count, size;
} mote__uring_pbufs;
/* p's buffers, or NULL: the kernel refused them, or another thread is
 * making them right now (the caller does without, this once). */
mote__uring_pbufs *mote__uring_pbufs_of(mote__poller *p);
/* Give n buffers back to the kernel. */
void mote__uring_pbuf_put(mote__poller *p, const uint16_t *bids, unsigned n);
/* True once p closes: a done() that would wake a process must not (the
 * workers have stopped; the process's stack is freed later). */
bool mote__uring_closing(const mote__poller *p);
/* Which ring p is: different for every ring ever opened (a closed one's
 * buffers are gone: what refers to them must not touch them). */
uint64_t mote__uring_id(const mote__poller *p);
#endif

#endif
