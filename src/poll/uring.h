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
#endif

#endif
