/*
 * sched.h -- tasks, workers, run queues, parking (layer above ctx/ and
 * timer/). The files of sched/ share sched/internal.h.
 *
 * The scheduler knows tasks, not processes: a task is a schedulable entity
 * with a state word, a run-queue link and, while it runs or is suspended, a
 * stack. The process layer (proc/) embeds a task in every process and gives
 * the scheduler two hooks at start-up: what to run on a fresh stack
 * (entry) and what to do after a task ended its turn (settle).
 *
 * Task states (see docs/design.md for the full protocol):
 *
 *   IDLE     no stack, in no queue. Only a CAS IDLE->QUEUED may take it out,
 *            so exactly one party schedules it.
 *   QUEUED   in exactly one run queue (or the main thread's slot).
 *   RUNNING  owned by the worker running it.
 *   PARKED   suspended on its stack, waiting for mote__task_wake(t, seq).
 *
 * The state word also holds a park sequence number and a NOTIFIED bit.
 * A task that wants to wait first calls mote__park_prepare(), which bumps
 * the sequence and returns it; it registers (task, seq) with whatever will
 * wake it, re-checks its condition, and calls mote__park(). The worker
 * moves it RUNNING->PARKED only after leaving its stack, and only if no wake
 * for that seq arrived meanwhile (NOTIFIED); a wake for an older seq finds a
 * different number and does nothing. So no wake is lost, none is doubled,
 * and none resumes a task that has moved on.
 */
#ifndef MOTE_SCHED_H
#define MOTE_SCHED_H

#include "ctx/ctx.h"

enum {
    MOTE__IDLE = 0,
    MOTE__QUEUED = 1,
    MOTE__RUNNING = 2,
    MOTE__PARKED = 3,
};
#define MOTE__ST_MASK 3ull
#define MOTE__NOTIFIED 4ull
#define MOTE__SEQ_SHIFT 3
#define MOTE__ST(w) ((unsigned)((w)&MOTE__ST_MASK))
#define MOTE__SEQ(w) ((w) >> MOTE__SEQ_SHIFT)
/* The state word with sequence number seq and state st, NOTIFIED clear. */
#define MOTE__TASK_WORD(seq, st) (((uint64_t)(seq) << MOTE__SEQ_SHIFT) | (uint64_t)(st))

/* Word w moved to state st: the same sequence number, NOTIFIED clear (a
 * wake's NOTIFIED is consumed by every move but a wake's own). */
static inline uint64_t mote__task_word(uint64_t w, unsigned st) {
    return MOTE__TASK_WORD(MOTE__SEQ(w), st);
}

/* Task flags (set before the task is first scheduled, then read-only). */
#define MOTE__TASK_MAIN 1u /* pinned to the main thread */

typedef struct mote__task {
    _Atomic uint64_t state;
    mote__stack *stack;       /* non-NULL while running or suspended */
    uint32_t flags;
    uint32_t aux; /* the owner layer's (proc: state size) */
} mote__task;

/* Why a task switched back to its worker. */
enum { MOTE__SW_PARK = 1, MOTE__SW_YIELD, MOTE__SW_DONE };

typedef struct mote__sched_hooks {
    /* Runs one turn of a task that had no stack, on a stack lent to it.
     * Returning ends the turn: the stack goes back to the worker. */
    /* Returns how many messages it ran (for the counters). */
    unsigned (*entry)(mote__task *t);
    /* Called after t's turn ended (entry returned, or mote__task_abandon)
     * and its stack was taken back, on the worker's loop stack (a lent
     * one, not the thread's own). t is still RUNNING; the hook must move
     * it on: mote__task_settle_idle, mote__task_requeue, or free it. */
    void (*settle)(mote__task *t);
    /* Async-signal-safe: write a short description of t (for the stack
     * overflow report) into buf. */
    void (*describe)(mote__task *t, char *buf, size_t len);
    /* warn_blocking: t, running on this thread, just ended a blocking
     * section or a turn (suspending, or yielding) that lasted ns (kind:
     * MOTE__WARN_*). The hook reports it, once per task. */
    void (*warn)(mote__task *t, int64_t ns, int kind);
} mote__sched_hooks;

enum { MOTE__WARN_SECTION = 1, MOTE__WARN_SUSPEND, MOTE__WARN_YIELD, MOTE__WARN_MESSAGE };

/* warn_blocking of the running scheduler (0: off): a trace point's
 * branch for the layers above. */
extern int64_t mote__warn_ns MOTE_HIDDEN;
/* Nanoseconds since the calling task's turn began (only while
 * warn_blocking is on; else 0). */
int64_t mote__turn_elapsed(void);

/* Resolved by the runtime (runtime.c): every field is final. */
typedef struct mote__sched_config {
    unsigned threads;           /* workers, each on a thread of its own */
    size_t stack_size;          /* usable bytes per task stack, page-rounded */
    unsigned backup_threads;    /* spare workers, and backup threads at most */
    int64_t blocking_threshold; /* ns in a section before a worker is stalled */
    int64_t warn_blocking;      /* ns: report longer sections and turns; 0 off */
    unsigned stack_maps;        /* VMAs that stacks may map (guarded stacks, arenas) */
    unsigned stack_guards;      /* guarded stacks at most; the others come from arenas */
} mote__sched_config;

/* Start worker threads. Returns 0 or -errno. */
int mote__sched_start(const mote__sched_config *cfg, const mote__sched_hooks *hooks);
/* Run the main task on the calling thread until mote__sched_main_exit(). */
void mote__sched_run_main(mote__task *main_task);
/* Called by the main task's entry when main() returned: switch back to the
 * main thread's loop for good. */
_Noreturn void mote__sched_main_exit(void);
/* Stop and join every worker. Tasks still queued are forgotten: their
 * owner frees them, and gives back their stacks with
 * mote__task_discard_stack before mote__sched_free_stacks. */
void mote__sched_stop(void);
/* After mote__sched_stop and the last mote__task_discard_stack: free
 * every stack and unmap the arenas. */
void mote__sched_free_stacks(void);
unsigned mote__sched_threads(void);
bool mote__sched_running(void);

/* Make an IDLE task runnable: CAS IDLE->QUEUED and queue it. Returns true
 * if this call scheduled it. Safe from any thread. */
bool mote__task_schedule(mote__task *t);

/* The task running on this OS thread, or NULL (foreign thread, or worker
 * between tasks). Not inlined: never cache it across a switch. */
mote__task *mote__task_current(void);
/* True if the calling thread is a worker or the main thread of mote. */
bool mote__on_runtime_thread(void);

/* Waiting. Only the current task may call these. A park needs a stack for
 * the worker to carry on with: mote__park returns -ENOMEM (without
 * waiting) if none can be had, else 0 once woken. mote__park_reserve
 * makes sure one is at hand: after it returns 0, parks of the current
 * task cannot fail until it returns from the call that waits (the stack a
 * resumed task's worker comes from goes back to that worker's cache). */
uint64_t mote__park_prepare(void);
int mote__park(void);
int mote__park_reserve(void);
/* Wake t if it is (about to be) parked with sequence seq. Any thread. */
bool mote__task_wake(mote__task *t, uint64_t seq);

/* Requeue the current task behind the others. */
void mote__yield(void);

/*
 * The I/O layer's poller, as the scheduler uses it (Go's netpoll):
 *   poll(timeout)  wait up to timeout (0: not at all; < 0: until events or
 *                  an interrupt), wake the tasks whose descriptors are
 *                  ready, return how many events it saw;
 *   interrupt()    make a blocked poll return.
 * Busy workers poll without waiting before they look for work elsewhere;
 * the last worker to go idle blocks in poll instead of on its futex, so a
 * readiness event wakes its process on that worker with one thread wake-up
 * and no poller thread in between. One thread at a time holds the poll
 * token and may block in poll: a worker, or a poller thread (which takes it
 * only when the monitor finds that no worker has polled for a while
 * although some run: all of them in long turns).
 */
typedef struct mote__netpoll_ops {
    int (*poll)(int64_t timeout);
    void (*interrupt)(void);
    /* The monitor found that no worker polled for a while although some
     * run (long turns): a poller thread should poll. */
    void (*starved)(void);
} mote__netpoll_ops;
void mote__sched_set_netpoll(const mote__netpoll_ops *ops);
/* Poller threads: take the token if it is free; give it back after the
 * wait. */
bool mote__netpoll_take(void);
void mote__netpoll_give(void);
/* True if every active worker is idle (parked or about to park). */
bool mote__sched_all_idle(void);
/* A poll consumed a wake-up meant for the worker blocked in poll (if any,
 * and if that is not the caller): pass it on. */
void mote__netpoll_rewake(void);
/* True on a worker's thread (not the main thread's, not a foreign one):
 * a worker polls whenever its queues run dry, before it parks, so I/O
 * queued there for the next poll is submitted within the round. */
bool mote__sched_polls_when_idle(void);

/* A message was sent: count it (metrics), and against the current turn's
 * budget; yields when that is used up, so a process that only sends
 * cannot hog its worker. */
void mote__sched_tick(void);

/* End the current turn at once, abandoning whatever frames are on the
 * task's stack (panics): the stack is reset before it is lent again.
 * Then the worker calls the settle hook. Never returns. */
_Noreturn void mote__task_abandon(void);

/* For the settle hook: RUNNING -> IDLE. After this the caller must re-check
 * whatever could have made the task runnable and, if so, call
 * mote__task_schedule(t). */
void mote__task_settle_idle(mote__task *t);

/* RUNNING -> QUEUED at the tail of this worker's queue (a settle hook's
 * answer for a task that has more to do). */
void mote__task_requeue(mote__task *t);

/* Give back the stack of a task that will never run again (shutdown
 * only, between mote__sched_stop and mote__sched_free_stacks). */
void mote__task_discard_stack(mote__task *t);

/* Room in the run queues for one more task (every task fits in the global
 * queue at once, so queueing one never needs memory): 0 or -ENOMEM. Call
 * mote__task_room_drop when the task is freed. */
int mote__task_room_take(void);
void mote__task_room_drop(void);

/* ---- For observers (mote_dump) ---- */

enum { MOTE__WK_WORKER, MOTE__WK_MAIN, MOTE__WK_BACKUP };
enum { MOTE__ACT_IDLE, MOTE__ACT_RUN, MOTE__ACT_BLOCK, MOTE__ACT_OFF };

/* What one worker is doing, read racily from another thread. */
typedef struct mote__worker_view {
    unsigned id;
    int kind;      /* MOTE__WK_* */
    int activity;  /* MOTE__ACT_*: OFF for a spare no backup thread runs */
    int64_t since; /* when the monitor first saw this turn or section; 0 unknown */
    const mote__task *current;
} mote__worker_view;

/* Fill out[] with every worker, the main thread and every spare (at most
 * max); returns how many there are. */
unsigned mote__sched_workers(mote__worker_view *out, unsigned max);

/* ---- Counters (metrics) ----
 *
 * Each worker counts on a cache line of its own with plain relaxed
 * stores (no locked instruction: only its thread writes it); other
 * threads (foreign, timer, poller, monitor) add to shared atomics. A
 * reader sums them all, so counts are cheap enough to keep on always. */
enum {
    MOTE__CTR_FINISHED,    /* processes freed (spawns: proc.c counts ids) */
    MOTE__CTR_MSGS_SENT,   /* messages */
    MOTE__CTR_MSGS_RUN,
    MOTE__CTR_TURNS,       /* a task started or resumed on a worker */
    MOTE__CTR_PARKS,       /* a task suspended */
    MOTE__CTR_WAKEUPS,     /* a suspended task made runnable */
    MOTE__CTR_STEALS,      /* a worker took work from another */
    MOTE__CTR_SLEEPS,      /* a worker went idle */
    MOTE__CTR_POLL_WAITS,  /* waits in the poller that may block */
    MOTE__CTR_POLL_EVENTS, /* readiness events it returned */
    MOTE__CTR_SECTIONS,    /* blocking sections */
    MOTE__CTR_HANDOFFS,    /* spare workers started for stalled ones */
    MOTE__CTR_N
};
/* Count n events of kind c on the calling thread. Not inlined: it reads
 * the thread's worker. */
void mote__count(unsigned c, uint64_t n);

typedef struct mote__sched_counts {
    uint64_t n[MOTE__CTR_N];
    unsigned workers;       /* threads */
    uint64_t busy_ns;       /* of all workers and spares, not parked */
    uint64_t backup_threads; /* started, alive */
    uint64_t spares_active;
    uint64_t stacks_cached;
} mote__sched_counts;
/* Sums of every counter. False if no runtime runs. */
bool mote__sched_counts_get(mote__sched_counts *out);
/* Busy nanoseconds of each of the `threads` workers, then one entry for
 * all spare workers together; returns how many entries there are. */
unsigned mote__sched_busy(uint64_t *busy_ns, unsigned max);

#endif
