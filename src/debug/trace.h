/*
 * trace.h -- scheduling events for a trace (mote_trace_start): what the
 * layers record. Only declarations: any layer may include it (it needs
 * nothing but base/); trace.c, which writes the events out with process
 * names, sits at the top.
 *
 * Off, a trace point is one load of a global and a branch that is not
 * taken (MOTE_TRACE). On, an event goes to the calling thread's ring of
 * events (no lock, no shared cache line): two numbers and, for the events
 * that end something, a timestamp. Reading the CPU's counter costs more
 * than the rest of an event, so an event that starts a turn or marks a
 * wake-up takes its time from its neighbours on the same thread when the
 * file is written (a turn starts when the thread's previous event ended;
 * a wake-up happens at the next one).
 */
#ifndef MOTE_DEBUG_TRACE_H
#define MOTE_DEBUG_TRACE_H

#include "base/base.h"

/* Event types; a and b by type. Processes are named by their task's
 * address (no call on the hot path to ask for an id): SPAWN says which
 * process id an address holds from then on, and the writer translates. */
enum {
    MOTE__TR_RUN = 1, /* a turn starts here: a = task (optional, see below) */
    MOTE__TR_STOP,    /* a turn ends here: a = task, b = MOTE__TR_END_* | wait kind << 8 */
    MOTE__TR_WAKE,    /* a suspended process made runnable: a = task, b = the waker's or 0 */
    MOTE__TR_SCHED,   /* an idle process given work (a message): a = task, b = the sender's or 0 */
    MOTE__TR_SPAWN,   /* a = task, b = its process id */
    MOTE__TR_STEAL,   /* a worker took work from another: a = the task it runs */
    MOTE__TR_BLOCK,   /* a blocking section begins: a = task */
    MOTE__TR_UNBLOCK, /* and ends: a = task */
    MOTE__TR_HANDOFF, /* a backup worker starts for stalled workers: a = its worker id */
    MOTE__TR_POLL,    /* a wait in the poller begins */
    MOTE__TR_POLLED,  /* and ends: b = events */
    MOTE__TR_IDLE,    /* a worker goes to sleep */
    MOTE__TR_BUSY,    /* and wakes up */
};
enum { MOTE__TR_END_DONE, MOTE__TR_END_YIELD, MOTE__TR_END_PARK, MOTE__TR_END_ABANDON };

/* A turn is the time between the thread's last boundary (a STOP, BUSY,
 * STEAL or POLLED, or a RUN of the same task) and its STOP: the worker
 * loop records no RUN, which saves an event per turn on the hot path. */

/* Tracing on: the one global every trace point tests. */
extern _Atomic bool mote__tracing MOTE_HIDDEN;

/* Record an event on the calling thread (only while tracing), with a
 * timestamp or (mark) without. */
void mote__trace(unsigned type, uint64_t a, uint64_t b);
void mote__trace_mark(unsigned type, uint64_t a, uint64_t b);
#define MOTE__TR_UNSTAMPED(type)                                                                   \
    ((type) == MOTE__TR_RUN || (type) == MOTE__TR_WAKE || (type) == MOTE__TR_SCHED)

/* Arguments are evaluated only while tracing. MOTE_NO_HOOKS (cmake
 * -DMOTE_TRACE_HOOKS=OFF) compiles trace points and counters out: a build
 * that only measures what they cost (bench/RESULTS.md). */
#ifdef MOTE_NO_HOOKS
#define MOTE_TRACE(type, a, b)                                                                     \
    do {                                                                                           \
        if (0)                                                                                     \
            mote__trace((type), (a), (b));                                                         \
    } while (0)
#else
#define MOTE_TRACE(type, a, b)                                                                     \
    do {                                                                                           \
        if (MOTE_UNLIKELY(atomic_load_explicit(&mote__tracing, memory_order_relaxed)))            \
            (MOTE__TR_UNSTAMPED(type) ? mote__trace_mark : mote__trace)((type), (a), (b));       \
    } while (0)
#endif

/* How traces call the calling thread (default: its OS name). */
void mote__trace_thread_name(const char *name);

/* A process got a name: the trace keeps it for the file (any thread). */
void mote__trace_name(uint64_t id, const char *name);

#endif
