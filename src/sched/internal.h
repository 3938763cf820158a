/*
 * sched/internal.h -- what the scheduler's files share: the worker, the
 * backup thread, the scheduler's one state struct (S), and the hot-path
 * helpers that must stay inlined wherever they are used.
 *
 *   sched.c    start and stop: workers, their threads, the main thread
 *   runq.c     the local rings (stealing, draining) and the global queue
 *   idle.c     when a worker has nothing queued: spinning and stealing,
 *              idle workers and parking, the poll token
 *   task.c     running tasks: the worker loop, switching, parking, waking,
 *              yielding, the main task
 *   stack.c    stacks: per-worker caches, the shared pool, arenas and the
 *              mapping budget, idle-time trimming, signal stacks,
 *              stack-overflow reports
 *   monitor.c  blocking sections, the monitor, spare workers and the
 *              backup threads that run them
 *   observe.c  what observers read: worker views for dumps, counters
 *
 * Names: `static inline` helpers here have short names; a function defined
 * in one file and called from another is `mote__` (libmote.a is linked
 * into programs whose own names must not clash with it).
 */
#ifndef MOTE_SCHED_INTERNAL_H
#define MOTE_SCHED_INTERNAL_H

#include "sched/sched.h"
#include "debug/trace.h"
#include "timer/timer.h"

#include <pthread.h>
#include <signal.h>

#define RUNQ_SIZE 256u        /* a worker's ring of runnable tasks */
#define FAIR_TICKS 61u        /* scheduling points between looks at the global queue */
#define LOCAL_STACK_CACHE 16u /* free stacks a worker keeps for itself */

/* A list of free stacks, most recently freed first (stack.c). */
typedef struct stack_list {
    mote__stack *head, *tail;
    unsigned n;
    unsigned low; /* the fewest it held since the current trim period began */
} stack_list;

/* What a worker is doing, as the monitor samples it: the low MON_BITS of
 * its `mon` word; the rest counts changes (turns and section edges). */
enum { MON_IDLE = 0, MON_RUN = 1, MON_BLOCK = 2 };
#define MON_BITS 2u
#define MON_ACTIVITY ((1u << MON_BITS) - 1)

/* The poll token: which thread may block in the poller (see idle.c). */
enum { TOKEN_FREE = 0, TOKEN_WORKER, TOKEN_POLLER_THREAD };

/*
 * A worker: a run queue and the loop that runs it. Each of the cfg.threads
 * workers has an OS thread of its own, for good. The main thread has an
 * entry too: it runs only the main task, and its ring holds what it makes
 * runnable, for the others to steal. Spare workers are run by a backup
 * thread while the monitor keeps them active (monitor.c).
 */
typedef struct worker {
    /* Shared with thieves (runq.c): the owner pushes at the tail, the owner
     * and thieves take from the head with a CAS. */
    _Atomic uint32_t head;
    _Atomic uint32_t tail;
    _Atomic(mote__task *) buf[RUNQ_SIZE];
    _Atomic(mote__task *) runnext; /* the task it just woke runs next */

    /* Idle list (idle.c): under S.idle.lock, but for the futex word. */
    _Atomic uint32_t sleep; /* futex word: 1 while parked */
    bool on_idle;
    /* Owner's, except that a waker taking the worker off the idle list
     * hands it its spinning slot. */
    bool spinning;
    struct worker *idle_next;

    /* Owner only. */
    mote__ctx ctx;           /* this thread's native stack */
    mote__task *current;
    int reason;              /* main thread: why the main task came back */
    /* Deferred work for whoever resumes after a switch (post_switch). */
    mote__task *pend_task;
    int pend_reason;
    mote__stack *pend_stack; /* a loop stack to put back in the cache */
    mote__stack *exit_stack; /* the loop stack the worker stopped on */
    mote__task *handoff;     /* QUEUED task the loop must run next */
    uint32_t calls;          /* runtime calls by the current turn (budget) */
    uint32_t tick;           /* scheduling points (fairness) */
    uint32_t streak;         /* turns taken from runnext in a row */
    uint32_t rnd;            /* random state: where stealing starts */
    int64_t turn_start;      /* warn_blocking on: when the turn began, */
    int64_t section_start;   /* and the blocking section */
    unsigned room;           /* run-queue room taken and not used (runq.c) */
    mote__trace_ring *trace; /* its thread's trace ring, once it recorded (TRACE_W) */
    uint64_t trace_wake;     /* a wake-up the current turn made, for its STOP (trace_wake) */

    /* Monitor word (monitor.c): (changes << MON_BITS) | MON_*, written by
     * the owner with relaxed stores at every turn and blocking section,
     * read by the monitor. */
    _Atomic uint32_t mon;
    _Atomic uint32_t mon_seen; /* the monitor: the mon value it last saw, */
    _Atomic int64_t mon_since; /* first seen then (for dumps) */
    _Atomic bool active; /* spare workers: handed to a backup thread */

    /* Fixed at start. */
    unsigned id;
    bool is_main, spare;

    /* Counters (observe.c): the owner adds with relaxed stores; readers
     * sum. Busy time: busy_ns up to busy_since (0 while parked), under a
     * sequence count (odd while the owner changes them). */
    struct {
        _Atomic uint64_t n[MOTE__CTR_N];
        _Atomic uint32_t busy_seq;
        _Atomic int64_t busy_since;
        _Atomic int64_t busy_ns;
    } __attribute__((aligned(MOTE_CACHELINE))) ctr;

    /* Stack cache (stack.c), owner only. */
    mote__stack *stacks;
    unsigned nstacks;

    /* The thread (workers) and its signal stack (workers, main). */
    pthread_t thread;
    void *altstack;
} __attribute__((aligned(MOTE_CACHELINE))) worker;

/* An OS thread that runs one spare worker at a time, while the monitor
 * has handed it one; pooled between spares (monitor.c). */
typedef struct backup_thread {
    pthread_t thread;
    _Atomic(worker *) spare; /* the spare it runs; NULL while pooled */
    _Atomic uint32_t go;     /* futex word: 1 once spare is set (or stopping) */
    void *altstack;
    struct backup_thread *next_free, *next_all;
} backup_thread;

typedef struct sched_state {
    /* Configuration, fixed between start and stop. */
    mote__sched_config cfg;
    mote__sched_hooks hooks;

    /* Workers: cfg.threads workers, then the main thread's entry, then
     * cfg.backup_threads spare workers, in one array. */
    worker *w;
    worker *main;
    worker *spares;
    _Atomic bool stopping;
    _Atomic bool running;

    /* Global queue (runq.c): a growable ring of pointers under a mutex,
     * so taking a batch never walks cold task memory. */
    struct {
        pthread_mutex_t lock;
        mote__task **buf;
        size_t head, cap;
        _Atomic size_t size;
        _Atomic size_t room;  /* cap, readable without the lock */
        _Atomic size_t tasks; /* room taken: tasks, and workers' spare room */
    } gq;

    /* Idle list (idle.c). */
    struct {
        pthread_mutex_t lock;
        worker *list;
        _Atomic int nidle;
        _Atomic int nspinning;
        _Atomic int timer_watcher; /* an idle worker sleeps until the next timer */
        _Atomic(struct worker *) watcher; /* which one */
        _Atomic int64_t watch_until;      /* and until when */
    } idle;

    /* Poll token (idle.c). */
    struct {
        const mote__netpoll_ops *_Atomic ops; /* the I/O layer's poller */
        _Atomic uint32_t owner;      /* TOKEN_* */
        _Atomic bool polled;         /* a worker polled since the monitor looked */
        _Atomic(worker *) sleeper;   /* the worker that may be blocked in poll */
    } poll;

    /* Stacks shared by the workers (stack.c), under lock. */
    struct {
        pthread_mutex_t lock;
        stack_list guarded; /* free guarded stacks */
        stack_list warm;    /* free arena stacks */
        void *cold;         /* arena slots whose pages went back: to carve again */
        size_t ncold, cold_cap;
        size_t cold_pending; /* slots chores are trimming, to become cold */
        char *carve, *carve_end; /* the newest arena's slots not yet carved */
        void *carve_guard;       /* its guard page */
        size_t arena_slots;      /* slots of the next arena */
        struct stack_arena *arenas;
        unsigned maps;           /* VMAs made for stacks: guarded ones and arenas */
        unsigned nguarded;       /* guarded stacks in existence */
        unsigned making;         /* of those, being made by idle workers */
        bool guard_failed;       /* mmap refused one: no more in this run */
        int64_t trim_at;         /* when the current trim period ends */
        unsigned trim_g, trim_w; /* stacks of each list left to trim in it */
        _Atomic int64_t chores_due; /* idle workers have stack work from then */
        mote__stack *main;       /* the main task's: a thread-sized guarded one */
    } stacks;

    /* The main task (task.c). */
    _Atomic(mote__task *) main_slot;
    _Atomic bool main_exit;

    /* Monitor (monitor.c). */
    struct {
        pthread_t thread;
        bool started;
        _Atomic uint32_t word;     /* futex for its periodic sleep */
        _Atomic uint32_t parked;   /* MON_LIGHT or MON_DEEP while every worker idles (monitor.c) */
        _Atomic unsigned spare_hw; /* spares ever activated: the scan bound */
        _Atomic int nactive;       /* workers + active spares */
        _Atomic int nstalled;      /* of those, stuck in a section or a long turn */
    } mon;

    /* Backup threads (monitor.c). */
    struct {
        pthread_mutex_t lock;
        backup_thread *free, *all;
        unsigned count; /* started so far: at most cfg.backup_threads */
    } backups;

    /* Signal actions in place before ours (stack.c). */
    struct {
        struct sigaction segv, bus;
    } saved;
} sched_state;

/* The scheduler's one instance, spelled S in the scheduler's files. */
extern sched_state mote__sched;
#define S mote__sched

/* Set on every runtime thread, NULL elsewhere; read through cur_worker().
 * Local-dynamic, as a file's own static would be: only this library
 * defines and reads it. */
extern _Thread_local worker *mote__tls_worker
    __attribute__((visibility("hidden"), tls_model("local-dynamic")));

/* The calling thread's worker. Never inlined: a task may resume on another
 * thread, and the compiler would happily keep the TLS address of the first
 * one. One copy per file, so a caller knows what it clobbers. */
static MOTE_NOINLINE __attribute__((unused)) worker *cur_worker(void) {
    return mote__tls_worker;
}

/* Entries of S.w worth scanning for work: workers, main, spares used. */
static inline unsigned nscan(void) {
    return S.cfg.threads + 1 + atomic_load_explicit(&S.mon.spare_hw, memory_order_acquire);
}

/* A worker polled: a flag, not a counter, and stored only when it is not
 * set already, so busy workers share the cache line read-only. */
static inline void note_polled(void) {
    if (!atomic_load_explicit(&S.poll.polled, memory_order_relaxed))
        atomic_store_explicit(&S.poll.polled, true, memory_order_relaxed);
}

/* Record an activity change in w's monitor word (owner only). */
static inline void mon_mark(worker *w, uint32_t activity) {
    uint32_t m = atomic_load_explicit(&w->mon, memory_order_relaxed);
    uint32_t next = ((m + (1u << MON_BITS)) & ~MON_ACTIVITY) | activity;
    atomic_store_explicit(&w->mon, next, memory_order_relaxed);
}

/* Count n events of kind c on w (its owner only). */
static inline void ctr_add(worker *w, unsigned c, uint64_t n) {
#ifndef MOTE_NO_HOOKS /* see debug/trace.h */
    _Atomic uint64_t *x = &w->ctr.n[c];
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + n, memory_order_relaxed);
#else
    (void)w, (void)c, (void)n;
#endif
}

/* Trace points (debug/trace.h) name tasks by their address. */
#define TRACE_TASK(type, t, b) MOTE_TRACE((type), (uintptr_t)(t), (b))

/* The task running on w (0: none), for trace points. */
static inline uint64_t trace_current(worker *w) {
    return w ? (uintptr_t)w->current : 0;
}

/* A trace point about task t on the calling thread, whose worker is w
 * (NULL: not a runtime thread): straight into the ring w keeps, with no
 * call (debug/trace.h). A worker's ring is its thread's, so a spare
 * worker forgets it when another backup thread takes it up. */
#define TRACE_W(w, type, t, b)                                                                     \
    do {                                                                                           \
        if (MOTE__TRACE_ON())                                                                      \
            trace_w((w), (type), (uintptr_t)(t), (b));                                             \
    } while (0)

static MOTE_ALWAYS_INLINE void trace_w(worker *w, unsigned type, uint64_t a, uint64_t b) {
    mote__trace_ring *r = w ? w->trace : NULL;
    if (MOTE_UNLIKELY(!r)) {
        if (!w) {
            (MOTE__TR_UNSTAMPED(type) ? mote__trace_mark : mote__trace)(type, a, b);
            return;
        }
        if (!(r = w->trace = mote__trace_ring_here()))
            return;
    }
    mote__trace_put(r, type, a, b, !MOTE__TR_UNSTAMPED(type));
}

/* Task t made runnable (MOTE__TR_WAKE) or given a message while idle
 * (MOTE__TR_SCHED) from the calling thread, whose worker is w. The first
 * such event of a turn rides on the turn's STOP (debug/trace.h): a round
 * trip between two processes then makes two events instead of four. */
static MOTE_ALWAYS_INLINE void trace_wake(worker *w, unsigned type, mote__task *t) {
    if (w && w->current && !w->trace_wake)
        w->trace_wake = (uintptr_t)t | (type == MOTE__TR_SCHED ? MOTE__TR_WOKE_SCHED : 0);
    else
        trace_w(w, type, (uintptr_t)t, trace_current(w));
}

/* The current turn on w, of task t, ends: why is MOTE__TR_END_* | wait
 * kind << 8. */
static MOTE_ALWAYS_INLINE void trace_stop(worker *w, mote__task *t, uint64_t why) {
    uint64_t woke = w->trace_wake;
    w->trace_wake = 0;
    trace_w(w, MOTE__TR_STOP | (unsigned)why << MOTE__TR_WHY_SHIFT, (uintptr_t)t, woke);
}

/* A turn begins on w: no wake-up of an earlier turn rides on its STOP
 * (tracing may have stopped between that wake-up and its turn's end). */
static inline void trace_turn_start(worker *w) {
#ifndef MOTE_NO_HOOKS
    w->trace_wake = 0;
#else
    (void)w;
#endif
}

/* warn_blocking: a turn begins on w (owner only). */
static inline void warn_turn_start(worker *w) {
    if (MOTE_UNLIKELY(mote__warn_ns))
        w->turn_start = mote__now();
}

/* w starts (busy) or stops (parked) running tasks: owner only. */
void mote__busy_mark(worker *w, bool busy);
void mote__counts_reset(void);

/* ---- Run queues (runq.c) ---- */

bool mote__runq_push_slow(worker *w, mote__task *t, uint32_t h, uint32_t tl);
mote__task *mote__runq_steal(worker *w, worker *v, bool take_next);
size_t mote__runq_drain(worker *v, mote__task **batch);
void mote__global_push(mote__task **ts, size_t n);
mote__task *mote__global_get_slow(worker *w, size_t max);

/* Owner: push t at the tail (half the ring overflows to the global queue).
 * seq_cst publishes new work before wakep() reads the idle counts; a task
 * that merely yields is not new work and is published with release only. */
static inline void runq_push_mo(worker *w, mote__task *t, memory_order mo) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&w->tail, memory_order_relaxed);
        MOTE_ASSERT_MSG(tl - h <= RUNQ_SIZE, "a ring holds at most RUNQ_SIZE tasks");
        if (tl - h < RUNQ_SIZE) {
            atomic_store_explicit(&w->buf[tl % RUNQ_SIZE], t, memory_order_relaxed);
            atomic_store_explicit(&w->tail, tl + 1, mo);
            return;
        }
        if (mote__runq_push_slow(w, t, h, tl))
            return;
    }
}

static inline void runq_push(worker *w, mote__task *t) {
    runq_push_mo(w, t, memory_order_seq_cst);
}

/* Owner (or a thief, with a CAS): take the head of w's ring. */
static inline mote__task *runq_pop(worker *w) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&w->tail, memory_order_relaxed);
        if (tl == h)
            return NULL;
        mote__task *t = atomic_load_explicit(&w->buf[h % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&w->head, &h, h + 1, memory_order_release,
                                                  memory_order_relaxed))
            return t;
    }
}

static inline mote__task *take_runnext(worker *w) {
    if (!atomic_load_explicit(&w->runnext, memory_order_relaxed))
        return NULL; /* the common case, without a locked instruction */
    return atomic_exchange(&w->runnext, NULL);
}

/* Something queued on w itself (its ring or runnext). */
static inline bool has_local_work(worker *w) {
    return atomic_load(&w->runnext) || atomic_load(&w->head) != atomic_load(&w->tail);
}

/* Take up to max tasks from the global queue: return one, queue the rest
 * on w. */
static inline mote__task *global_get(worker *w, size_t max) {
    if (atomic_load(&S.gq.size) == 0)
        return NULL;
    return mote__global_get_slow(w, max);
}

/* Fairness: every FAIR_TICKS scheduling points, look at what nobody else
 * sees while this worker is busy: due timers (fired here, so the tasks
 * they wake land in this worker's runnext and run next instead of queueing
 * behind a backlog, as Go's checkTimers does), the global queue and the
 * main thread's queue. */
static inline void fire_due_timers(void) {
    int64_t next = mote__timer_next();
    if (next != INT64_MAX && next <= mote__now())
        mote__timer_run_expired();
}

static inline mote__task *take_fair(worker *w) {
    if (++w->tick % FAIR_TICKS != 0)
        return NULL;
    fire_due_timers();
    mote__task *t = global_get(w, 1);
    return t ? t : mote__runq_steal(w, S.main, false);
}

/* ---- Idle workers (idle.c) ---- */

void mote__wakep_slow(void);
void mote__wake_worker(worker *w);
mote__task *mote__find_elsewhere(worker *w);
extern const mote__timer_hooks mote__sched_timer_hooks;

/* Make sure somebody will pick up newly queued, stealable work: wake one
 * parked worker, but only if nobody spins. */
static inline void wakep(void) {
    MOTE_STORE_LOAD_FENCE(); /* the work was published; now read the counts */
    if (atomic_load(&S.idle.nspinning) != 0 || atomic_load(&S.idle.nidle) == 0)
        return;
    mote__wakep_slow();
}

/* A spinner found work: stop spinning; the last spinner to stop makes sure
 * there is another. */
static inline void stop_spinning(worker *w) {
    if (!w->spinning)
        return;
    w->spinning = false;
    int was = atomic_fetch_sub(&S.idle.nspinning, 1);
    MOTE_ASSERT(was > 0);
    if (was == 1)
        wakep();
}

/* ---- Running tasks (task.c) ---- */

mote__stack *mote__loop_stack(worker *w);

/* ---- Stacks (stack.c) ---- */

mote__stack *mote__stack_get_slow(worker *w);
void mote__stack_spill(worker *w);
void mote__stack_release(mote__stack *s);
int mote__stacks_start(void);
void mote__stacks_return(worker *w);
bool mote__stack_chores(worker *w);
_Noreturn void mote__stack_overflow(mote__task *t);
void mote__altstack_setup(void **slot);
void mote__altstack_teardown(void **slot);
void mote__fault_handler_install(void);
void mote__fault_handler_restore(void);

/* A free stack: from w's own cache, else the shared pool, else a new one
 * (NULL if none can be had: out of memory or mappings). */
static inline mote__stack *stack_get(worker *w) {
    MOTE_ASSERT_MSG(!w->stacks == !w->nstacks, "the stack cache's count matches its list");
    mote__stack *s = w->stacks;
    if (MOTE_LIKELY(s)) {
        w->stacks = s->next;
        w->nstacks--;
        return s;
    }
    return mote__stack_get_slow(w);
}

/* Back into w's cache; a full cache gives half of itself to the pool. No
 * system call: pages go back to the kernel later, from idle workers. */
static inline void stack_put(worker *w, mote__stack *s) {
    MOTE_ASSERT(s && w->nstacks <= LOCAL_STACK_CACHE);
    if (MOTE_UNLIKELY(w->nstacks >= LOCAL_STACK_CACHE))
        mote__stack_spill(w);
    s->next = w->stacks;
    w->stacks = s;
    w->nstacks++;
}

/* Report an overflow of t's stack if the canary below it was hit: at
 * every switch away from a task, and at its runtime calls. */
static inline void stack_check(mote__task *t) {
    if (MOTE_UNLIKELY(!mote__stack_canary_ok(t->stack)))
        mote__stack_overflow(t);
}

/* Stack work for an idle worker (trimming, guarded stacks to make)? */
static inline bool stack_chores_due(void) {
    int64_t due = atomic_load_explicit(&S.stacks.chores_due, memory_order_relaxed);
    return due != INT64_MAX && mote__now() >= due;
}

/* ---- Monitor and spare workers (monitor.c) ---- */

void mote__monitor_kick(void);
bool mote__spare_retire(worker *w);
int mote__monitor_start(void);
void mote__monitor_stop(void);
void mote__backups_join(void);

#endif
