/*
 * trace.h -- scheduling events for a trace (mote_trace_start): what the
 * layers record. Only declarations: any layer may include it (it needs
 * nothing but base/); trace.c, which writes the events out with process
 * names, sits at the top.
 *
 * Off, a trace point is one load of a global and a branch that is not
 * taken (MOTE_TRACE). On, an event goes to the calling thread's ring of
 * events (no lock, no shared cache line): a timestamp and two numbers.
 */
#ifndef MOTE_DEBUG_TRACE_H
#define MOTE_DEBUG_TRACE_H

#include "base/base.h"

/* Event types; a and b by type. Ids are process ids. */
enum {
    MOTE__TR_RUN = 1, /* a turn starts or resumes here: a = id */
    MOTE__TR_STOP,    /* it ends here: a = id, b = MOTE__TR_END_* | wait kind << 8 */
    MOTE__TR_WAKE,    /* a suspended process made runnable: a = id, b = waker's id or 0 */
    MOTE__TR_SCHED,   /* an idle process given work (a message): a = id, b = sender's id or 0 */
    MOTE__TR_SPAWN,   /* a = new id, b = spawner's id or 0 */
    MOTE__TR_STEAL,   /* a worker took work from another: a = id of the task it runs */
    MOTE__TR_BLOCK,   /* a blocking section begins: a = id */
    MOTE__TR_UNBLOCK, /* and ends: a = id */
    MOTE__TR_HANDOFF, /* a backup worker starts for stalled workers: a = its worker id */
    MOTE__TR_POLL,    /* a wait in the poller begins */
    MOTE__TR_POLLED,  /* and ends: b = events */
    MOTE__TR_IDLE,    /* a worker goes to sleep */
    MOTE__TR_BUSY,    /* and wakes up */
};
enum { MOTE__TR_END_DONE, MOTE__TR_END_YIELD, MOTE__TR_END_PARK, MOTE__TR_END_ABANDON };

/* Tracing on: the one global every trace point tests. */
extern _Atomic bool mote__tracing MOTE_HIDDEN;

/* Record an event on the calling thread (only while tracing). */
void mote__trace(unsigned type, uint64_t a, uint64_t b);

/* Arguments are evaluated only while tracing. */
#define MOTE_TRACE(type, a, b)                                                                     \
    do {                                                                                           \
        if (MOTE_UNLIKELY(atomic_load_explicit(&mote__tracing, memory_order_relaxed)))            \
            mote__trace((type), (a), (b));                                                         \
    } while (0)

/* A process got a name: the trace keeps it for the file (any thread). */
void mote__trace_name(uint64_t id, const char *name);

#endif
