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

/* How the scheduler records a STOP (sched/internal.h, trace_stop): the
 * event's type carries the MOTE__TR_END_* | wait kind << 8 above the
 * shift, and b the first wake-up the turn made, if any: the task's
 * address, | MOTE__TR_WOKE_SCHED for a message to an idle process (task
 * addresses are even). The file writer turns it back into a WAKE or
 * SCHED event (b: the turn's task) followed by a plain STOP. */
#define MOTE__TR_WHY_SHIFT 8
#define MOTE__TR_WOKE_SCHED 1u

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

/* ---- A thread's ring ----
 * Each thread records into a ring of its own, mapped on its first event
 * of a runtime and kept until the runtime shuts down. The scheduler keeps
 * its worker's ring at hand and records inline (mote__trace_put): no call,
 * no thread-local access, on the busiest trace points. Everything else
 * goes through mote__trace, which finds the ring through a thread-local. */

typedef struct mote__trace_event {
    uint64_t ts; /* CPU counter; 0: unstamped (see above) */
    uint64_t a, b;
    uint32_t type;
} mote__trace_event;

typedef struct mote__trace_ring {
    struct mote__trace_ring *next;
    _Atomic uint64_t n;    /* events written; the ring keeps the last cap */
    uint64_t start;        /* n when the current trace started */
    size_t cap;            /* a power of two */
    size_t map_size;
    int tid;
    char name[32];
    mote__trace_event ev[];
} mote__trace_ring;

/* The calling thread's ring, made on its first call of the runtime; NULL
 * when tracing is off or no memory is left. Not inlined: a thread-local. */
mote__trace_ring *mote__trace_ring_here(void);

/* The CPU's counter: the timestamps of a trace. */
static inline uint64_t mote__trace_stamp(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return (uint64_t)mote__now();
#endif
}

/* Append an event to r, the calling thread's ring, whose trace point saw
 * tracing on. The event, then the count (release: a reader that sees the
 * count sees the event). Nothing marks an event in progress: the stopper
 * turns tracing off and makes every thread pass a memory barrier, after
 * which each thread has at most one event in progress, the one whose
 * trace point came before the barrier, going into the slot at the count
 * it has not yet published; the file writer leaves that slot out
 * (trace_file.c). An event costs no more than its own stores, and a
 * round trip between two processes makes two (trace_stop). */
static MOTE_ALWAYS_INLINE void mote__trace_put(mote__trace_ring *r, unsigned type, uint64_t a, uint64_t b,
                                               bool stamped) {
    uint64_t n = atomic_load_explicit(&r->n, memory_order_relaxed);
    mote__trace_event *e = &r->ev[n & (r->cap - 1)];
    e->ts = stamped ? mote__trace_stamp() : 0;
    e->a = a;
    e->b = b;
    e->type = type;
    atomic_store_explicit(&r->n, n + 1, memory_order_release);
}

/* Arguments are evaluated only while tracing. MOTE_NO_HOOKS (cmake
 * -DMOTE_TRACE_HOOKS=OFF) compiles trace points and counters out: a build
 * that only measures what they cost (bench/RESULTS.md). */
#ifdef MOTE_NO_HOOKS
#define MOTE__TRACE_ON() 0
#else
#define MOTE__TRACE_ON() MOTE_UNLIKELY(atomic_load_explicit(&mote__tracing, memory_order_relaxed))
#endif
#define MOTE_TRACE(type, a, b)                                                                     \
    do {                                                                                           \
        if (MOTE__TRACE_ON())                                                                      \
            (MOTE__TR_UNSTAMPED(type) ? mote__trace_mark : mote__trace)((type), (a), (b));       \
    } while (0)

/* How traces call the calling thread (default: its OS name). */
void mote__trace_thread_name(const char *name);

/* A process got a name: the trace keeps it for the file (any thread). */
void mote__trace_name(uint64_t id, const char *name);

#endif
