/*
 * sched.c -- M:N scheduler: workers, run queues, stealing, idle parking.
 *
 * Pieces (after Go's runtime/proc.go):
 *   worker   an OS thread with a bounded lock-free run queue (256 slots,
 *            owner pushes at the tail, owner and thieves take from the head
 *            with CAS) and a `runnext` slot for the task it just woke, so a
 *            request/response pair stays on one core and in cache.
 *   global   a mutex-protected FIFO for overflow, foreign threads and the
 *            timer thread. Workers look at it every 61 ticks for fairness.
 *   idle     parked workers on a list, each sleeping on its own futex.
 *
 * Wake-ups without a thundering herd: whoever queues stealable work calls
 * wakep(), which wakes one idle worker only if nobody is spinning (looking
 * for work). A woken worker spins (steals); when it finds work and was the
 * last spinner it wakes another. At most half the busy workers spin.
 * Lost wake-ups are impossible because a worker that goes idle first
 * publishes itself as idle and stops spinning (seq_cst), then re-checks
 * every queue; a submitter first publishes the work (seq_cst), then looks at
 * the spinning and idle counts: one of the two sees the other.
 *
 * Pushing into runnext does not wake anyone: the task will run on this
 * worker as soon as the current one yields or ends its turn. The task it
 * displaces goes to the stealable queue, and that does wake.
 *
 * The main task is pinned to the main thread, which runs nothing else.
 */
#include "sched/sched.h"
#include "base/alloc.h"
#include "debug/symbol.h"
#include "timer/timer.h"
#include <sys/prctl.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RUNQ_SIZE 256u
#define LOCAL_STACK_CACHE 8u
#define GLOBAL_STACK_CACHE 1024u
#define ALTSTACK_SIZE (64 * 1024)
#define CALL_BUDGET 1024 /* sends in one turn before the sender yields */
#define HOG_NS MOTE_MSEC(10)  /* a turn this long counts as a stalled worker */
#define MON_MIN_NS MOTE_USEC(20)
#define MON_MAX_NS MOTE_MSEC(1)

/* What a worker is doing, as the monitor samples it (low 2 bits of mon). */
enum { MON_IDLE = 0, MON_RUN = 1, MON_BLOCK = 2 };

typedef struct worker {
    /* Shared with thieves. */
    _Atomic uint32_t head;
    _Atomic uint32_t tail;
    _Atomic(mote__task *) buf[RUNQ_SIZE];
    _Atomic(mote__task *) runnext;
    _Atomic uint32_t sleep; /* futex word: 1 while parked */
    /* Owner only (or under the idle lock). */
    mote__ctx ctx;          /* this thread's native stack */
    mote__task *current;
    int reason;             /* main thread: why the main task came back */
    /* Deferred work for whoever resumes after a switch (post_switch). */
    mote__task *pend_task;
    int pend_reason;
    mote__stack *pend_stack; /* a loop stack to put back in the cache */
    mote__stack *exit_stack; /* the loop stack the worker stopped on */
    mote__task *handoff;     /* QUEUED task the loop must run next */
    uint32_t calls;          /* runtime calls by the current turn (budget) */
    /* (changes << 2) | MON_*: written by the owner with plain relaxed
     * stores at every turn and blocking section, read by the monitor. */
    _Atomic uint32_t mon;
    _Atomic uint32_t mon_seen; /* monitor: the mon value it last saw, */
    _Atomic int64_t mon_since; /* first seen then (for dumps) */
    _Atomic bool active; /* spares: handed to a backup thread */
    unsigned id;
    uint32_t tick, streak, rnd;
    bool spinning, on_idle, is_main, spare;
    struct worker *idle_next;
    mote__stack *stacks; /* cache of free stacks */
    unsigned nstacks;
    pthread_t thread;
    void *altstack;
} __attribute__((aligned(MOTE_CACHELINE))) worker;

/* A backup OS thread: runs a spare worker while one is handed to it. */
typedef struct mthread {
    pthread_t thread;
    _Atomic(worker *) p;
    _Atomic uint32_t go; /* futex word: 1 once p is set (or stopping) */
    void *altstack;
    struct mthread *next_free, *next_all;
} mthread;

static struct {
    unsigned n;
    unsigned nb;  /* spare workers (MOTE_BACKUP_THREADS) */
    worker *w;    /* n workers, the main thread's entry at w[n], then nb spares */
    worker *main;
    worker *spares;
    _Atomic unsigned spare_hw; /* spares ever activated: the scan bound */
    _Atomic int nactive;       /* workers + active spares */
    _Atomic int nstalled;      /* of those, stuck in a section or a long turn */
    mote__sched_hooks hooks;
    size_t stack_size;
    _Atomic bool stopping;
    _Atomic bool running;

    pthread_mutex_t glock; /* global queue: a growable ring of pointers, so
                            * taking a batch never walks cold task memory */
    mote__task **gq;
    size_t ghead, gcap;
    _Atomic size_t gsize;

    pthread_mutex_t ilock; /* idle list */
    worker *idle;
    _Atomic int nidle;
    _Atomic int nspinning;
    _Atomic int timer_watcher; /* an idle worker sleeps until the next timer */
    const mote__netpoll_ops *_Atomic netpoll; /* the I/O layer's poller */
    _Atomic uint32_t np_owner;   /* poll token: 0 free, 1 a worker, 2 a poller thread */
    _Atomic bool np_polled;      /* a worker polled since a poller thread looked */
    _Atomic(worker *) np_worker; /* the worker that may be blocked in poll */

    pthread_mutex_t slock; /* global stack cache */
    mote__stack *stacks;
    unsigned nstacks;

    _Atomic(mote__task *) main_slot;
    _Atomic bool main_exit;

    /* The monitor (see "Blocking sections and the monitor" below). */
    pthread_t mon_thread;
    bool mon_started;
    int64_t threshold;
    _Atomic uint32_t mon_word;   /* futex for its periodic sleep */
    _Atomic uint32_t mon_parked; /* 1 while it sleeps until a worker wakes */
    pthread_mutex_t mlock;       /* backup threads */
    mthread *mfree, *mall;
    unsigned nm;                 /* backup threads started */

    struct sigaction old_segv, old_bus;
} S = {
    .glock = PTHREAD_MUTEX_INITIALIZER,
    .ilock = PTHREAD_MUTEX_INITIALIZER,
    .slock = PTHREAD_MUTEX_INITIALIZER,
    .mlock = PTHREAD_MUTEX_INITIALIZER,
};

/* Entries of S.w worth scanning for work: workers, main, spares used. */
static unsigned nscan(void) {
    return S.n + 1 + atomic_load_explicit(&S.spare_hw, memory_order_acquire);
}

/* A worker polled: a flag, not a counter, and stored only when it is not
 * set already, so busy workers share the cache line read-only. */
static inline void note_polled(void) {
    if (!atomic_load_explicit(&S.np_polled, memory_order_relaxed))
        atomic_store_explicit(&S.np_polled, true, memory_order_relaxed);
}

static inline void mon_mark(worker *w, uint32_t activity) {
    uint32_t m = atomic_load_explicit(&w->mon, memory_order_relaxed);
    atomic_store_explicit(&w->mon, ((m + 4) & ~3u) | activity, memory_order_relaxed);
}

static _Thread_local worker *tls_worker;

/* Never inlined: a task may resume on another thread, and the compiler
 * would happily keep the TLS address of the first one. */
static MOTE_NOINLINE worker *cur_worker(void) {
    return tls_worker;
}

mote__task *mote__task_current(void) {
    worker *w = cur_worker();
    return w ? w->current : NULL;
}

bool mote__on_runtime_thread(void) {
    return cur_worker() != NULL;
}

unsigned mote__sched_threads(void) {
    return atomic_load(&S.running) ? S.n : 0;
}

bool mote__sched_running(void) {
    return atomic_load(&S.running);
}

/* ---- Stacks --------------------------------------------------------------- */

static mote__stack *stack_get(worker *w) {
    if (w->is_main) /* the main process gets a thread-sized stack of its own */
        return mote__stack_new(S.stack_size > (8u << 20) ? S.stack_size : (8u << 20));
    mote__stack *s = w->stacks;
    if (s) {
        w->stacks = s->next;
        w->nstacks--;
        return s;
    }
    pthread_mutex_lock(&S.slock);
    s = S.stacks;
    if (s) {
        S.stacks = s->next;
        S.nstacks--;
    }
    pthread_mutex_unlock(&S.slock);
    if (s)
        return s;
    return mote__stack_new(S.stack_size);
}

static void stack_put(worker *w, mote__stack *s) {
    if (w->nstacks < LOCAL_STACK_CACHE && !w->is_main) {
        s->next = w->stacks;
        w->stacks = s;
        w->nstacks++;
        return;
    }
    if (w->is_main) {
        mote__stack_free(s);
        return;
    }
    /* Pages of a stack in the shared cache go back to the kernel: the cache
     * exists to save mappings (vm.max_map_count), not memory. Its suspended
     * loop (if any) goes with them, so it is reset before reuse. */
    s->dirty = true;
    mote__stack_trim(s);
    pthread_mutex_lock(&S.slock);
    if (S.nstacks < GLOBAL_STACK_CACHE) {
        s->next = S.stacks;
        S.stacks = s;
        S.nstacks++;
        s = NULL;
    }
    pthread_mutex_unlock(&S.slock);
    mote__stack_free(s);
}

static void free_stack_list(mote__stack *s) {
    while (s) {
        mote__stack *next = s->next;
        mote__stack_free(s);
        s = next;
    }
}

/* ---- Run queues ----------------------------------------------------------- */

/* With glock held: make room for n more. */
static bool global_reserve(size_t n) {
    size_t size = atomic_load_explicit(&S.gsize, memory_order_relaxed);
    if (size + n <= S.gcap)
        return true;
    size_t cap = S.gcap ? S.gcap : 1024;
    while (cap < size + n)
        cap *= 2;
    mote__task **q = malloc(cap * sizeof *q);
    if (!q)
        return false;
    for (size_t i = 0; i < size; i++)
        q[i] = S.gq[(S.ghead + i) % S.gcap];
    free(S.gq);
    S.gq = q;
    S.gcap = cap;
    S.ghead = 0;
    return true;
}

static void global_push(mote__task **ts, size_t n) {
    pthread_mutex_lock(&S.glock);
    if (!global_reserve(n)) {
        mote__write_stderr("mote: out of memory for the run queue\n");
        abort();
    }
    size_t size = atomic_load_explicit(&S.gsize, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        S.gq[(S.ghead + size + i) % S.gcap] = ts[i];
    atomic_store(&S.gsize, size + n);
    pthread_mutex_unlock(&S.glock);
}

/* Owner: move half the local queue plus t to the global queue. */
static bool runq_push_slow(worker *w, mote__task *t, uint32_t h, uint32_t tl) {
    uint32_t n = (tl - h) / 2;
    mote__task *batch[RUNQ_SIZE / 2 + 1];
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&w->buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&w->head, &h, h + n, memory_order_release,
                                                 memory_order_relaxed))
        return false; /* thieves took some: retry the fast path */
    batch[n] = t;
    global_push(batch, n + 1);
    return true;
}

/* seq_cst publishes new work before wakep() reads the idle counts; a task
 * that merely yields is not new work and is published with release only. */
static void runq_push_mo(worker *w, mote__task *t, memory_order mo) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&w->tail, memory_order_relaxed);
        if (tl - h < RUNQ_SIZE) {
            atomic_store_explicit(&w->buf[tl % RUNQ_SIZE], t, memory_order_relaxed);
            atomic_store_explicit(&w->tail, tl + 1, mo);
            return;
        }
        if (runq_push_slow(w, t, h, tl))
            return;
    }
}

static void runq_push(worker *w, mote__task *t) {
    runq_push_mo(w, t, memory_order_seq_cst);
}

static mote__task *take_runnext(worker *w) {
    if (!atomic_load_explicit(&w->runnext, memory_order_relaxed))
        return NULL; /* the common case, without a locked instruction */
    return atomic_exchange(&w->runnext, NULL);
}

static mote__task *runq_pop(worker *w) {
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

/* Thief w takes half of victim v's queue into its own queue (as much as
 * fits). Returns one task to run, the rest are queued locally. */
static mote__task *runq_steal(worker *w, worker *v, bool take_next) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&v->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&v->tail, memory_order_acquire);
        uint32_t n = tl - h;
        n = n - n / 2;
        if (n == 0) {
            if (take_next) {
                mote__task *t = atomic_load(&v->runnext);
                if (t && atomic_compare_exchange_strong(&v->runnext, &t, NULL))
                    return t;
            }
            return NULL;
        }
        if (n > RUNQ_SIZE / 2)
            continue; /* inconsistent snapshot */
        uint32_t mytail = atomic_load_explicit(&w->tail, memory_order_relaxed);
        uint32_t room = RUNQ_SIZE - (mytail - atomic_load_explicit(&w->head, memory_order_acquire));
        if (n > room)
            n = room; /* our own queue need not be empty (fairness steals) */
        if (n == 0)
            return NULL;
        for (uint32_t i = 0; i < n; i++) {
            mote__task *t = atomic_load_explicit(&v->buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
            atomic_store_explicit(&w->buf[(mytail + i) % RUNQ_SIZE], t, memory_order_relaxed);
        }
        if (!atomic_compare_exchange_strong_explicit(&v->head, &h, h + n, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        n--;
        mote__task *t = atomic_load_explicit(&w->buf[(mytail + n) % RUNQ_SIZE], memory_order_relaxed);
        if (n)
            atomic_store_explicit(&w->tail, mytail + n, memory_order_seq_cst);
        return t;
    }
}

/* Take up to max tasks from the global queue: return one, queue the rest. */
static mote__task *global_get(worker *w, size_t max) {
    if (atomic_load(&S.gsize) == 0)
        return NULL;
    pthread_mutex_lock(&S.glock);
    size_t n = atomic_load_explicit(&S.gsize, memory_order_relaxed);
    size_t want = n / S.n + 1;
    if (want > max)
        want = max;
    if (want > n)
        want = n;
    mote__task *t = NULL;
    if (want) {
        t = S.gq[S.ghead];
        for (size_t i = 1; i < want; i++)
            runq_push(w, S.gq[(S.ghead + i) % S.gcap]);
        S.ghead = (S.ghead + want) % S.gcap;
        atomic_store(&S.gsize, n - want);
    }
    pthread_mutex_unlock(&S.glock);
    return t;
}

/* ---- Idle workers ----------------------------------------------------------- */

static void wake_worker(worker *iw) {
    atomic_store(&iw->sleep, 0);
    /* Dekker with park_worker: it publishes np_worker, then reads sleep. */
    if (atomic_load(&S.np_worker) == iw) {
        const mote__netpoll_ops *np = atomic_load_explicit(&S.netpoll, memory_order_acquire);
        if (np) {
            np->interrupt();
            return;
        }
    }
    mote__futex_wake(&iw->sleep, 1);
}

/* Make sure somebody will pick up newly queued, stealable work. */
static void wakep(void) {
    MOTE_STORE_LOAD_FENCE(); /* the work was published; now read the counts */
    if (atomic_load(&S.nspinning) != 0 || atomic_load(&S.nidle) == 0)
        return;
    int zero = 0;
    if (!atomic_compare_exchange_strong(&S.nspinning, &zero, 1))
        return;
    pthread_mutex_lock(&S.ilock);
    worker *iw = S.idle;
    if (iw) {
        S.idle = iw->idle_next;
        iw->on_idle = false;
        iw->spinning = true; /* it inherits the spinning slot we took */
        atomic_fetch_sub(&S.nidle, 1);
    }
    pthread_mutex_unlock(&S.ilock);
    if (iw)
        wake_worker(iw);
    else
        atomic_fetch_sub(&S.nspinning, 1);
}

static void stop_spinning(worker *w) {
    if (!w->spinning)
        return;
    w->spinning = false;
    /* The last spinner that found work makes sure there is another. */
    if (atomic_fetch_sub(&S.nspinning, 1) == 1)
        wakep();
}

static bool work_anywhere(void) {
    if (atomic_load(&S.gsize))
        return true;
    unsigned ns = nscan();
    for (unsigned i = 0; i < ns; i++) /* the main thread's queue too */
        if (atomic_load(&S.w[i].head) != atomic_load(&S.w[i].tail))
            return true;
    return false;
}

/* Take w off the idle list if no waker did it first. True if we did (then
 * nobody will wake w); false if a waker took it and is waking it. */
static bool idle_unlist(worker *w) {
    pthread_mutex_lock(&S.ilock);
    bool mine = w->on_idle;
    if (mine) {
        worker **pp = &S.idle;
        while (*pp != w)
            pp = &(*pp)->idle_next;
        *pp = w->idle_next;
        w->on_idle = false;
        atomic_fetch_sub(&S.nidle, 1);
        atomic_store(&w->sleep, 0);
    }
    pthread_mutex_unlock(&S.ilock);
    return mine;
}

/* Park w until woken. Returns with w->spinning possibly set by the waker. */
static void monitor_kick(void);

static void park_worker(worker *w) {
    mon_mark(w, MON_IDLE);
    /* Stop spinning before publishing ourselves idle: from then on a waker
     * may hand us a spinning slot by setting w->spinning. */
    if (w->spinning) {
        w->spinning = false;
        atomic_fetch_sub(&S.nspinning, 1);
    }
    pthread_mutex_lock(&S.ilock);
    atomic_store(&w->sleep, 1);
    w->idle_next = S.idle;
    S.idle = w;
    w->on_idle = true;
    atomic_fetch_add(&S.nidle, 1);
    pthread_mutex_unlock(&S.ilock);
    MOTE_STORE_LOAD_FENCE(); /* then re-check the queues */

    /* Re-check after publishing ourselves idle (see the header comment). */
    if (work_anywhere() || atomic_load(&S.stopping)) {
        if (idle_unlist(w))
            return;
        /* A waker already took us off the list: consume its wake below. */
    }
    /* The poll token: sleep in the poller rather than on the futex. Its
     * holder does not spin first: its work comes through the poller, which
     * a spin on the futex word would not look at (measured: 6 % of an HTTP
     * server's CPU went to that spin, and readiness waited it out). */
    const mote__netpoll_ops *np = atomic_load_explicit(&S.netpoll, memory_order_acquire);
    uint32_t free_token = 0;
    bool poll = np && atomic_compare_exchange_strong(&S.np_owner, &free_token, 1);
    if (poll) {
        note_polled();
        atomic_store(&S.np_worker, w);
    } else {
        mote__spin_while(&w->sleep, 1, MOTE_SPIN_NS);
    }
    /* One idle worker at a time sleeps only until the next timer and fires
     * it itself: the woken task then runs here (it lands in our runnext),
     * one thread wake-up instead of the timer thread's two. */
    int zero = 0;
    bool watch = mote__timer_next() != INT64_MAX &&
                 atomic_compare_exchange_strong(&S.timer_watcher, &zero, 1);
    while (poll && atomic_load(&w->sleep) == 1) {
        int64_t next = watch ? mote__timer_next() : INT64_MAX, timeout = -1;
        if (next != INT64_MAX) {
            int64_t left = next - mote__now();
            timeout = left > 0 ? left : 0; /* due already: fire, don't wait */
        }
        if (timeout != 0)
            np->poll(timeout);
        if (watch && mote__timer_next() <= mote__now())
            mote__timer_run_expired();
        if (atomic_load(&w->runnext) || atomic_load(&w->head) != atomic_load(&w->tail))
            idle_unlist(w); /* readiness or a timer gave us work */
    }
    if (poll) {
        atomic_store(&S.np_worker, NULL);
        atomic_store(&S.np_owner, 0);
    }
    while (atomic_load(&w->sleep) == 1) {
        if (!watch) {
            mote__futex_wait(&w->sleep, 1, -1);
            continue;
        }
        int64_t next = mote__timer_next();
        int64_t left = next == INT64_MAX ? -1 : next - mote__now();
        if (left > 0 && mote__futex_wait(&w->sleep, 1, left) != -ETIMEDOUT)
            continue;
        if (left < 0 && next == INT64_MAX) {
            mote__futex_wait(&w->sleep, 1, -1);
            continue;
        }
        mote__timer_run_expired();
        if (atomic_load(&w->runnext) || atomic_load(&w->head) != atomic_load(&w->tail)) {
            idle_unlist(w); /* we have work: leave the idle list */
        }
    }
    if (watch)
        atomic_store(&S.timer_watcher, 0);
    monitor_kick();
}

/* ---- Finding work --------------------------------------------------------- */

static bool spare_retire(worker *w);

static mote__task *find_work(worker *w) {
    for (;;) {
        if (atomic_load_explicit(&S.stopping, memory_order_relaxed))
            return NULL;
        mote__task *t = w->handoff;
        if (t) {
            w->handoff = NULL;
            return t;
        }
        if (MOTE_UNLIKELY(w->spare) && spare_retire(w))
            return NULL;
        w->tick++;
        /* Fairness: now and then look at the queues nobody else drains
         * while this worker is busy: the global one and the main thread's. */
        if (w->tick % 61 == 0 &&
            ((t = global_get(w, 1)) || (t = runq_steal(w, S.main, false))))
            goto found;
        /* runnext first, unless a pair has been bouncing on it too long. */
        if (w->streak < 64 || atomic_load(&w->head) == atomic_load(&w->tail)) {
            t = take_runnext(w);
            if (t) {
                w->streak++;
                goto found;
            }
        }
        w->streak = 0;
        if ((t = runq_pop(w)) || (t = global_get(w, RUNQ_SIZE / 2)))
            goto found;
        if (!w->spinning &&
            2 * atomic_load(&S.nspinning) < atomic_load(&S.nactive) - atomic_load(&S.nidle)) {
            w->spinning = true;
            atomic_fetch_add(&S.nspinning, 1);
        }
        if (w->spinning) {
            unsigned ns = nscan();
            for (int round = 0; round < 4 && !t; round++) {
                unsigned start = (w->rnd = w->rnd * 1103515245u + 12345u) >> 8;
                for (unsigned i = 0; i < ns && !t; i++) {
                    worker *v = &S.w[(start + i) % ns];
                    if (v != w)
                        t = runq_steal(w, v, round == 3);
                }
                if ((t = t ? t : global_get(w, RUNQ_SIZE / 2)))
                    break;
            }
            if (t)
                goto found;
        }
        const mote__netpoll_ops *np = atomic_load_explicit(&S.netpoll, memory_order_acquire);
        if (np) /* workers are polling: poller threads can stay out */
            note_polled();
        if (np && np->poll(0) > 0 &&
            (atomic_load(&w->runnext) || atomic_load(&w->head) != atomic_load(&w->tail)))
            continue; /* readiness woke something here */
        park_worker(w);
        continue;
    found:
        stop_spinning(w);
        return t;
    }
}

/* ---- Running tasks ---------------------------------------------------------- */

/*
 * A worker's scheduling loop runs on a lent stack, not on the thread's own.
 * A task without a stack runs its turn right there, as a function call: no
 * switch at all. Only waiting costs switches:
 *
 *   park/yield   the task keeps the stack it runs on (with the loop's frames
 *                under its own) and switches to another loop stack from the
 *                worker's cache, which carries on scheduling;
 *   resume       a loop that picks a suspended task switches to its stack
 *                and waits in the cache until a loop is needed again;
 *   turn over    when the resumed task's turn ends, it returns into the loop
 *                frames under it, and that loop carries on (as the loop of
 *                whichever worker it is on now).
 *
 * So no frames are ever abandoned (but by a panic), which sanitizers' shadow
 * stacks rely on. What must happen only after leaving a stack (parking the
 * task that ran on it, caching the loop stack) is left in w->pend_* and done
 * by post_switch() on the other side.
 */

static void enqueue(mote__task *t, bool next);
static void worker_loop(void *arg);

static void finish_park(mote__task *t) {
    uint64_t old = atomic_load(&t->state);
    for (;;) {
        if (old & MOTE__NOTIFIED) { /* woken before it was even parked */
            atomic_store(&t->state, (old & ~(MOTE__ST_MASK | MOTE__NOTIFIED)) | MOTE__QUEUED);
            enqueue(t, true);
            return;
        }
        uint64_t parked = (old & ~MOTE__ST_MASK) | MOTE__PARKED;
        if (atomic_compare_exchange_weak(&t->state, &old, parked))
            return;
    }
}

static void set_running(mote__task *t) {
    uint64_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
    atomic_store_explicit(&t->state, (st & ~(MOTE__ST_MASK | MOTE__NOTIFIED)) | MOTE__RUNNING,
                          memory_order_release);
}

/* RUNNING -> QUEUED by the task's own worker (no waker acts on QUEUED). */
static void mark_queued(mote__task *t, memory_order mo) {
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    atomic_store_explicit(&t->state, (s & ~(MOTE__ST_MASK | MOTE__NOTIFIED)) | MOTE__QUEUED, mo);
}

static void requeue(mote__task *t) {
    mark_queued(t, memory_order_release);
    enqueue(t, false);
}

/* A yielder goes to the tail of its worker's queue. It is not new work, so
 * the wake check is opportunistic: missing an idle worker only means the
 * yielder stays here. */
static void requeue_yielder(worker *w, mote__task *t) {
    if (MOTE_UNLIKELY(atomic_load_explicit(&S.stopping, memory_order_relaxed)))
        return;
    mark_queued(t, memory_order_relaxed); /* published by the release push */
    runq_push_mo(w, t, memory_order_release);
    if (atomic_load_explicit(&S.nidle, memory_order_relaxed) &&
        !atomic_load_explicit(&S.nspinning, memory_order_relaxed))
        wakep();
}

/* Finish what the context we came from could not do while on its stack. */
static void post_switch(worker *w) {
    mote__task *t = w->pend_task;
    if (t) {
        w->pend_task = NULL;
        switch (w->pend_reason) {
        case MOTE__SW_PARK:
            finish_park(t);
            break;
        case MOTE__SW_YIELD:
            requeue_yielder(w, t);
            break;
        case MOTE__SW_DONE: /* abandoned by a panic */
            stack_put(w, t->stack);
            t->stack = NULL;
            S.hooks.settle(t);
            break;
        }
    }
    if (w->pend_stack) {
        stack_put(w, w->pend_stack);
        w->pend_stack = NULL;
    }
}

/* A stack with a loop ready to run: a cached one (suspended in its loop, or
 * reset), or a new one. */
static mote__stack *loop_stack(worker *w) {
    mote__stack *s = stack_get(w);
    if (!s) {
        mote__write_stderr("mote: out of memory for a process stack\n");
        abort();
    }
    if (s->dirty)
        mote__ctx_make(s, worker_loop, s);
    return s;
}

static void worker_loop(void *arg) {
    mote__stack *s = arg; /* the stack this loop runs on */
    mote__ctx_entered();
    post_switch(cur_worker());
    for (;;) {
        worker *w = cur_worker(); /* never cached across a turn or a switch */
        mote__task *t = find_work(w);
        if (!t) { /* stopping or retiring: back to the thread's own stack */
            w->exit_stack = s;
            mote__ctx_switch(&s->ctx, &w->ctx);
            abort();
        }
        set_running(t);
        mon_mark(w, MON_RUN);
        w->current = t;
        if (t->stack) { /* suspended: resume it, and wait in the cache */
            w->pend_stack = s;
            mote__ctx_switch(&s->ctx, &t->stack->ctx);
            post_switch(cur_worker());
            continue;
        }
        t->stack = s;
        w->calls = 0;
        S.hooks.entry(t);
        w = cur_worker();
        w->current = NULL;
        t->stack = NULL;
        S.hooks.settle(t);
    }
}

static void main_task_entry(void *arg) {
    mote__ctx_entered();
    S.hooks.entry(arg); /* the main function's message ends the program */
    abort();
}

/* The main thread runs only the main task, from its own stack. */
static void run_main_task(worker *w, mote__task *t) {
    uint64_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
    atomic_store(&t->state, (st & ~(MOTE__ST_MASK | MOTE__NOTIFIED)) | MOTE__RUNNING);
    if (!t->stack) {
        t->stack = stack_get(w);
        if (!t->stack) {
            mote__write_stderr("mote: out of memory for the main process stack\n");
            abort();
        }
        mote__ctx_make(t->stack, main_task_entry, t);
    }
    w->current = t;
    mote__ctx_switch(&w->ctx, &t->stack->ctx);
    w->current = NULL;
    if (w->reason == MOTE__SW_PARK)
        finish_park(t);
    else if (w->reason == MOTE__SW_YIELD)
        requeue(t);
}

static void enqueue(mote__task *t, bool next) {
    if (MOTE_UNLIKELY(atomic_load_explicit(&S.stopping, memory_order_relaxed)))
        return; /* shutting down: nothing runs any more */
    if (MOTE_UNLIKELY(t->flags & MOTE__TASK_MAIN)) {
        atomic_store(&S.main_slot, t);
        wake_worker(S.main);
        return;
    }
    worker *w = cur_worker();
    if (w) {
        /* The main thread runs only the main task: what it makes runnable
         * goes to its queue, for the workers to steal. */
        if (next && !w->is_main) {
            t = atomic_exchange(&w->runnext, t);
            if (!t)
                return;
        }
        runq_push(w, t);
    } else {
        global_push(&t, 1);
    }
    wakep();
}

bool mote__task_schedule(mote__task *t) {
    uint64_t s = atomic_load(&t->state);
    for (;;) {
        if (MOTE__ST(s) != MOTE__IDLE)
            return false;
        if (atomic_compare_exchange_weak(&t->state, &s, (s & ~MOTE__ST_MASK) | MOTE__QUEUED))
            break;
    }
    enqueue(t, true);
    return true;
}

void mote__task_requeue(mote__task *t) {
    requeue(t);
}

void mote__task_settle_idle(mote__task *t) {
    uint64_t s = atomic_load(&t->state);
    atomic_store(&t->state, (s & ~(MOTE__ST_MASK | MOTE__NOTIFIED)) | MOTE__IDLE);
}

uint64_t mote__park_prepare(void) {
    mote__task *t = mote__task_current();
    uint64_t old = atomic_load(&t->state), neu;
    do {
        neu = ((MOTE__SEQ(old) + 1) << MOTE__SEQ_SHIFT) | MOTE__RUNNING;
    } while (!atomic_compare_exchange_weak(&t->state, &old, neu));
    return MOTE__SEQ(neu);
}

static void switch_out(int reason) {
    worker *w = cur_worker();
    mote__task *t = w->current;
    if (MOTE_UNLIKELY(w->is_main)) {
        w->reason = reason;
        mote__ctx_switch(&t->stack->ctx, &w->ctx);
        return;
    }
    mote__stack *l = loop_stack(w);
    w->pend_task = t;
    w->pend_reason = reason;
    w->current = NULL;
    mote__ctx_switch(&t->stack->ctx, &l->ctx);
    /* Resumed, maybe on another OS thread: nothing cached above is valid. */
    post_switch(cur_worker());
}

void mote__park(void) {
    switch_out(MOTE__SW_PARK);
}

void mote__sched_set_netpoll(const mote__netpoll_ops *ops) {
    atomic_store_explicit(&S.netpoll, ops, memory_order_release);
}

bool mote__netpoll_take(void) {
    if (atomic_exchange(&S.np_polled, false))
        return false; /* a worker polled since we last looked */
    uint32_t free_token = 0;
    return atomic_compare_exchange_strong(&S.np_owner, &free_token, 2);
}

void mote__netpoll_give(void) {
    atomic_store(&S.np_owner, 0);
}

void mote__netpoll_rewake(void) {
    worker *bw = atomic_load(&S.np_worker);
    const mote__netpoll_ops *np = atomic_load_explicit(&S.netpoll, memory_order_acquire);
    if (bw && bw != cur_worker() && np && atomic_load(&bw->sleep) == 0)
        np->interrupt();
}

void mote__sched_tick(void) {
    worker *w = cur_worker();
    if (w && w->current && !w->is_main && ++w->calls >= CALL_BUDGET) {
        w->calls = 0;
        mote__yield();
    }
}

/* Something else runnable on this worker, without stealing or parking. */
static mote__task *take_local(worker *w) {
    mote__task *t;
    if (++w->tick % 61 == 0 &&
        ((t = global_get(w, 1)) || (t = runq_steal(w, S.main, false))))
        return t;
    if ((t = take_runnext(w)) || (t = runq_pop(w)))
        return t;
    return global_get(w, RUNQ_SIZE / 2);
}

void mote__yield(void) {
    worker *w = cur_worker();
    mote__task *t = w ? w->current : NULL;
    if (!t) {
        sched_yield();
        return;
    }
    if (w->is_main) {
        switch_out(MOTE__SW_YIELD);
        return;
    }
    if (MOTE_UNLIKELY(atomic_load_explicit(&S.stopping, memory_order_relaxed))) {
        switch_out(MOTE__SW_YIELD); /* let the loop see it and stop */
        return;
    }
    mote__task *n = take_local(w);
    if (!n)
        return; /* nobody else here wants this worker: carry on */
    if (!n->stack) { /* it needs a loop to run on */
        w->handoff = n;
        switch_out(MOTE__SW_YIELD);
        return;
    }
    /* Straight to the next suspended task: one switch instead of two. */
    set_running(n);
    mon_mark(w, MON_RUN);
    w->current = n;
    w->pend_task = t;
    w->pend_reason = MOTE__SW_YIELD;
    mote__ctx_switch(&t->stack->ctx, &n->stack->ctx);
    post_switch(cur_worker());
}

void mote__task_abandon(void) {
    worker *w = cur_worker();
    mote__task *t = w->current;
    t->stack->dirty = true;
    if (w->is_main) { /* not reached: a panicking main process exits */
        w->reason = MOTE__SW_DONE;
        mote__ctx_switch_final(&t->stack->ctx, &w->ctx);
    }
    mote__stack *l = loop_stack(w);
    w->pend_task = t;
    w->pend_reason = MOTE__SW_DONE;
    w->current = NULL;
    mote__ctx_switch_final(&t->stack->ctx, &l->ctx);
}

bool mote__task_wake(mote__task *t, uint64_t seq) {
    uint64_t old = atomic_load(&t->state);
    for (;;) {
        if (MOTE__SEQ(old) != seq)
            return false;
        switch (MOTE__ST(old)) {
        case MOTE__PARKED:
            if (atomic_compare_exchange_weak(&t->state, &old,
                                             (old & ~MOTE__ST_MASK) | MOTE__QUEUED)) {
                enqueue(t, true);
                return true;
            }
            break;
        case MOTE__RUNNING:
            if (old & MOTE__NOTIFIED)
                return false;
            if (atomic_compare_exchange_weak(&t->state, &old, old | MOTE__NOTIFIED))
                return true;
            break;
        default:
            return false;
        }
    }
}

/* ---- Stack overflow --------------------------------------------------------- */

static void fault_handler(int sig, siginfo_t *si, void *uc) {
    worker *w = tls_worker;
    mote__task *t = w ? w->current : NULL;
    if (t && t->stack && mote__stack_guard_hit(t->stack, si->si_addr)) {
        char buf[256];
        S.hooks.describe(t, buf, sizeof buf);
        mote__write_stderr(buf);
        mote__fault_backtrace(uc, (uintptr_t)t->stack->ctx.lo,
                              (uintptr_t)t->stack->ctx.lo + t->stack->ctx.size);
        abort();
    }
    /* Not ours: restore the previous disposition and let the fault recur. */
    sigaction(sig, sig == SIGSEGV ? &S.old_segv : &S.old_bus, NULL);
}

static void altstack_setup(void **slot) {
    void *a = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *slot = a == MAP_FAILED ? NULL : a;
    if (!*slot)
        return;
    stack_t ss = {.ss_sp = a, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    sigaltstack(&ss, NULL);
}

static void altstack_teardown(void **slot) {
    if (!*slot)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(*slot, ALTSTACK_SIZE);
    *slot = NULL;
}

/* ---- Threads ---------------------------------------------------------------- */

static void worker_teardown(worker *w) {
    free_stack_list(w->stacks);
    w->stacks = NULL;
    w->nstacks = 0;
    altstack_teardown(&w->altstack);
    mote__ctx_destroy_thread(&w->ctx);
    mote__alloc_thread_exit();
    tls_worker = NULL;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    tls_worker = w;
    prctl(PR_SET_NAME, "mote-worker", 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* idle workers time timers */
    mote__alloc_thread_init();
    mote__ctx_init_thread(&w->ctx);
    altstack_setup(&w->altstack);
    mote__stack *s = loop_stack(w);
    mote__ctx_switch(&w->ctx, &s->ctx); /* returns when the runtime stops */
    mote__stack_free(w->exit_stack);
    worker_teardown(w);
    return NULL;
}

/* ---- Blocking sections and the monitor -------------------------------------
 *
 * A worker stuck in a blocking section or in a long turn cannot run its
 * other processes, and C code cannot be preempted. Instead of taking the
 * stuck worker away from its thread (Go hands the P of a blocked M to
 * another M), mote keeps every worker on its thread for good and lets a
 * *spare* worker, run by a backup thread, take the stuck one's place:
 *
 *   - a blocking section is two relaxed stores to the worker's `mon` word
 *     (a change counter and MON_BLOCK, then MON_RUN): no syscall, no
 *     hand-off, so a quick call costs almost nothing;
 *   - the monitor thread samples every active worker's `mon`. One that
 *     shows the same value in a section for `threshold` (100 us), or in a
 *     turn for HOG_NS (10 ms), is stalled: the monitor moves its queued
 *     processes to the global queue (a thief's CAS on the queue head, safe
 *     against the owner) and activates spares until `threads` workers are
 *     not stalled;
 *   - when the section ends, its worker simply carries on. There are now
 *     more unstalled workers than `threads`; a spare that notices this at
 *     its next scheduling point drains its queue into the global one and
 *     retires (its backup thread goes back to the pool).
 *
 * So the number of threads running processes is `threads`, plus one per
 * stalled worker while it is stalled, bounded by `nb` spares. No worker
 * ever changes hands while its thread might be using it, so nothing on the
 * hot path checks ownership. The monitor samples every threshold/2 while
 * workers are stalled, backs off (doubling) to every 1 ms otherwise, wakes
 * exactly at the threshold for an open section (unless its worker makes
 * many short ones), and
 * sleeps without a timeout while every worker is idle: the first worker to
 * wake kicks it. So in a busy runtime a long section is noticed from
 * threshold to threshold + 2 ms after it began (sooner while others are
 * stalled), a hog after 10-12 ms, and an idle runtime costs the monitor
 * nothing.
 */

void mote_blocking_begin(void) {
    worker *w = cur_worker();
    if (w && !w->is_main && w->current)
        mon_mark(w, MON_BLOCK);
}

void mote_blocking_end(void) {
    worker *w = cur_worker();
    if (w && !w->is_main && w->current)
        mon_mark(w, MON_RUN);
}

/* Worker side: wake the monitor if it sleeps until a worker wakes. */
static void monitor_kick(void) {
    MOTE_STORE_LOAD_FENCE(); /* our nidle decrement before its flag */
    uint32_t one = 1;
    if (atomic_load_explicit(&S.mon_parked, memory_order_relaxed) &&
        atomic_compare_exchange_strong(&S.mon_parked, &one, 0))
        mote__futex_wake(&S.mon_parked, 1);
}

/* Owner: leave if more workers than `threads` are not stalled. */
static bool spare_retire(worker *w) {
    int act = atomic_load(&S.nactive);
    for (;;) {
        if (act - atomic_load(&S.nstalled) <= (int)S.n)
            return false;
        if (atomic_compare_exchange_weak(&S.nactive, &act, act - 1))
            break;
    }
    stop_spinning(w);
    mote__task *batch[RUNQ_SIZE + 1];
    size_t n = 0;
    mote__task *t = take_runnext(w);
    if (t)
        batch[n++] = t;
    while ((t = runq_pop(w)))
        batch[n++] = t;
    if (n) {
        global_push(batch, n);
        wakep();
    }
    return true;
}

/* Monitor: move everything queued on stalled worker v to the global queue. */
static bool drain_stalled(worker *v) {
    mote__task *batch[RUNQ_SIZE + 1];
    size_t n = 0;
    for (;;) {
        uint32_t h = atomic_load_explicit(&v->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&v->tail, memory_order_acquire);
        uint32_t k = tl - h;
        if (k == 0 || k > RUNQ_SIZE)
            break;
        for (uint32_t i = 0; i < k; i++)
            batch[i] = atomic_load_explicit(&v->buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&v->head, &h, h + k, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            n = k;
            break;
        }
    }
    mote__task *t = atomic_load(&v->runnext);
    if (t && atomic_compare_exchange_strong(&v->runnext, &t, NULL))
        batch[n++] = t;
    if (n)
        global_push(batch, n);
    return n > 0;
}

static void *spare_main(void *arg) {
    mthread *m = arg;
    prctl(PR_SET_NAME, "mote-backup", 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    mote__alloc_thread_init();
    altstack_setup(&m->altstack);
    for (;;) {
        while (!atomic_load(&m->go))
            mote__futex_wait(&m->go, 0, -1);
        worker *w = atomic_load(&m->p);
        if (!w)
            break; /* stopping */
        tls_worker = w;
        mote__ctx_init_thread(&w->ctx);
        mote__stack *s = loop_stack(w);
        mote__ctx_switch(&w->ctx, &s->ctx); /* returns on retire or stop */
        mote__stack_free(w->exit_stack);
        w->exit_stack = NULL;
        mote__ctx_destroy_thread(&w->ctx);
        tls_worker = NULL;
        atomic_store(&m->p, NULL);
        atomic_store(&m->go, 0);
        bool stop = atomic_load(&S.stopping);
        if (!stop) { /* back in the pool before the spare is free again, */
            pthread_mutex_lock(&S.mlock); /* or the monitor would start */
            m->next_free = S.mfree;       /* a new thread for it        */
            S.mfree = m;
            pthread_mutex_unlock(&S.mlock);
        }
        atomic_store(&w->active, false); /* the monitor may reuse it now */
        if (stop)
            break;
    }
    altstack_teardown(&m->altstack);
    mote__alloc_thread_exit();
    return NULL;
}

/* Monitor: hand an inactive spare to a backup thread. */
static bool spare_activate(void) {
    worker *w = NULL;
    for (unsigned i = 0; i < S.nb && !w; i++)
        if (!atomic_load(&S.spares[i].active))
            w = &S.spares[i];
    if (!w)
        return false;
    pthread_mutex_lock(&S.mlock);
    mthread *m = S.mfree;
    if (m)
        S.mfree = m->next_free;
    pthread_mutex_unlock(&S.mlock);
    if (!m) {
        /* At most nb backup threads, ever (each runs at most one spare). */
        pthread_mutex_lock(&S.mlock);
        unsigned made = S.nm;
        pthread_mutex_unlock(&S.mlock);
        if (made >= S.nb)
            return false;
        m = calloc(1, sizeof *m);
        if (!m)
            return false;
        if (pthread_create(&m->thread, NULL, spare_main, m) != 0) {
            free(m);
            return false;
        }
        pthread_mutex_lock(&S.mlock);
        m->next_all = S.mall;
        S.mall = m;
        S.nm++;
        pthread_mutex_unlock(&S.mlock);
    }
    w->spinning = false;
    atomic_store(&w->active, true);
    atomic_fetch_add(&S.nactive, 1);
    unsigned idx = (unsigned)(w - S.spares) + 1, hw = atomic_load(&S.spare_hw);
    while (hw < idx && !atomic_compare_exchange_weak(&S.spare_hw, &hw, idx))
        ;
    atomic_store(&m->p, w);
    atomic_store(&m->go, 1);
    mote__futex_wake(&m->go, 1);
    return true;
}

typedef struct mon_view {
    uint32_t mon;  /* the value last seen */
    int64_t since; /* when it was first seen */
} mon_view;

static void *monitor_main(void *arg) {
    mon_view *view = arg; /* one per worker and spare */
    prctl(PR_SET_NAME, "mote-monitor", 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    int64_t period = MON_MIN_NS;
    while (!atomic_load(&S.stopping)) {
        int64_t now = mote__now();
        int stalled = 0;
        bool busy = false, moved = false;
        int64_t due = INT64_MAX; /* when an open section reaches the threshold */
        for (unsigned i = 0, ns = nscan(); i < ns; i++) { /* spares never used: idle */
            worker *w = &S.w[i];
            if (w->is_main || (w->spare && !atomic_load(&w->active)))
                continue;
            uint32_t m = atomic_load_explicit(&w->mon, memory_order_relaxed);
            unsigned act = m & 3;
            uint32_t marks = (m - view[i].mon) >> 2; /* turns + section edges since */
            if (m != view[i].mon) {
                view[i].mon = m;
                view[i].since = now;
                atomic_store_explicit(&w->mon_since, now, memory_order_relaxed);
                atomic_store_explicit(&w->mon_seen, m, memory_order_release);
            }
            if (act == MON_IDLE)
                continue;
            busy = true;
            int64_t limit = act == MON_BLOCK ? S.threshold : HOG_NS;
            if (now - view[i].since >= limit) {
                stalled++;
                moved |= drain_stalled(w);
            } else if (act == MON_BLOCK && view[i].since + limit < due &&
                       (view[i].since < now || marks <= 16)) {
                /* Time a section seen open twice; and one seen for the
                 * first time, unless this worker makes many short ones (a
                 * file read loop): those would cost a wake-up each. */
                due = view[i].since + limit;
            }
        }
        atomic_store(&S.nstalled, stalled);
        for (int run = atomic_load(&S.nactive) - stalled; run < (int)S.n; run++)
            if (!spare_activate())
                break;
        if (moved)
            wakep();
        if (!busy && atomic_load(&S.nidle) == atomic_load(&S.nactive)) {
            /* Everything idle: sleep until a worker wakes (monitor_kick). */
            atomic_store(&S.mon_parked, 1);
            MOTE_STORE_LOAD_FENCE();
            if (atomic_load(&S.nidle) == atomic_load(&S.nactive) && !atomic_load(&S.stopping))
                mote__futex_wait(&S.mon_parked, 1, -1);
            atomic_store(&S.mon_parked, 0);
            continue;
        }
        /* Back off like Go's sysmon: fast while workers are stalled, else
         * doubling up to 1 ms, but wake exactly when a section seen open
         * twice would reach the threshold. Short sections (a file read)
         * are rarely seen twice, so they cost no extra wake-ups. */
        int64_t fast = S.threshold / 2 > MON_MIN_NS ? S.threshold / 2 : MON_MIN_NS;
        period = stalled ? fast : (period * 2 > MON_MAX_NS ? MON_MAX_NS : period * 2);
        int64_t sleep = period;
        if (due != INT64_MAX && due - now < sleep)
            sleep = due - now > MON_MIN_NS ? due - now : MON_MIN_NS;
        mote__futex_wait(&S.mon_word, 0, sleep);
    }
    free(view);
    return NULL;
}

static int monitor_start(void) {
    mon_view *view = calloc(S.n + 1 + S.nb, sizeof *view);
    if (!view)
        return -ENOMEM;
    int err = pthread_create(&S.mon_thread, NULL, monitor_main, view);
    if (err) {
        free(view);
        return -err;
    }
    S.mon_started = true;
    return 0;
}

static void monitor_stop(void) {
    if (!S.mon_started)
        return;
    atomic_store(&S.mon_word, 1);
    mote__futex_wake(&S.mon_word, 1);
    atomic_store(&S.mon_parked, 0);
    mote__futex_wake(&S.mon_parked, 1);
    pthread_join(S.mon_thread, NULL);
    S.mon_started = false;
    /* Backup threads: those with a spare stop through its loop, the
     * others are woken without one. */
    for (mthread *m = S.mall; m; m = m->next_all) {
        if (!atomic_load(&m->p)) {
            atomic_store(&m->go, 1);
            mote__futex_wake(&m->go, 1);
        }
    }
}

static void backups_join(void) {
    mthread *m = S.mall;
    while (m) {
        mthread *next = m->next_all;
        pthread_join(m->thread, NULL);
        free(m);
        m = next;
    }
    S.mall = S.mfree = NULL;
    S.nm = 0;
}

static unsigned default_threads(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int mote__sched_start(const mote__sched_config *cfg, const mote__sched_hooks *hooks) {
    S.hooks = *hooks;
    S.n = cfg->threads ? cfg->threads : (unsigned)mote__env_size("MOTE_THREADS", 0);
    if (!S.n)
        S.n = default_threads();
    if (S.n > 1024)
        return -EINVAL;
    size_t page = mote__page_size();
    S.stack_size = cfg->stack_size ? cfg->stack_size : mote__env_size("MOTE_STACK_SIZE", 256 * 1024);
    if (S.stack_size > ((size_t)1 << 30))
        return -EINVAL; /* 1 GiB per process stack is surely a mistake */
    if (S.stack_size < 16 * 1024)
        S.stack_size = 16 * 1024;
    S.stack_size = (S.stack_size + page - 1) & ~(page - 1);
    size_t nb = cfg->backup_threads ? cfg->backup_threads
                                    : mote__env_size("MOTE_BACKUP_THREADS", 4 * (size_t)S.n);
    if (nb > 4096)
        return -EINVAL;
    S.nb = (unsigned)nb;
    S.threshold = cfg->blocking_threshold
                      ? cfg->blocking_threshold
                      : (int64_t)mote__env_size("MOTE_BLOCKING_THRESHOLD", (size_t)MOTE_USEC(100));
    if (S.threshold < MOTE_USEC(1) || S.threshold > MOTE_SEC(10))
        return -EINVAL;
    size_t nw = S.n + 1 + S.nb;
    S.w = aligned_alloc(MOTE_CACHELINE, nw * sizeof(worker));
    if (!S.w)
        return -ENOMEM;
    memset(S.w, 0, nw * sizeof(worker));
    S.main = &S.w[S.n];
    S.spares = &S.w[S.n + 1];
    for (unsigned i = 0; i < S.nb; i++) {
        S.spares[i].spare = true;
        S.spares[i].id = S.n + 1 + i;
        S.spares[i].rnd = (S.n + 1 + i) * 2654435761u + 1;
    }
    atomic_store(&S.spare_hw, 0);
    atomic_store(&S.nactive, (int)S.n);
    atomic_store(&S.nstalled, 0);
    atomic_store(&S.mon_word, 0);
    atomic_store(&S.mon_parked, 0);
    atomic_store(&S.stopping, false);
    atomic_store(&S.main_exit, false);
    atomic_store(&S.nidle, 0);
    atomic_store(&S.nspinning, 0);
    atomic_store(&S.timer_watcher, 0);
    S.idle = NULL;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &S.old_segv);
    sigaction(SIGBUS, &sa, &S.old_bus);

    S.main->is_main = true;
    S.main->id = S.n;
    tls_worker = S.main;
    mote__alloc_thread_init();
    mote__ctx_init_thread(&S.main->ctx);
    altstack_setup(&S.main->altstack);
    atomic_store(&S.running, true);

    for (unsigned i = 0; i < S.n; i++) {
        S.w[i].id = i;
        S.w[i].rnd = i * 2654435761u + 1;
        int err = pthread_create(&S.w[i].thread, NULL, worker_main, &S.w[i]);
        if (err) {
            atomic_store(&S.stopping, true);
            for (unsigned j = 0; j < i; j++) {
                wake_worker(&S.w[j]);
                pthread_join(S.w[j].thread, NULL);
            }
            worker_teardown(S.main);
            free(S.w);
            S.w = NULL;
            atomic_store(&S.running, false);
            return -err;
        }
    }
    int err = monitor_start();
    if (err) {
        mote__sched_stop(NULL);
        return err;
    }
    return 0;
}

void mote__sched_run_main(mote__task *m) {
    worker *w = S.main;
    m->flags |= MOTE__TASK_MAIN;
    atomic_store(&m->state, MOTE__QUEUED);
    atomic_store(&S.main_slot, m);
    while (!atomic_load(&S.main_exit)) {
        atomic_store(&w->sleep, 1);
        MOTE_STORE_LOAD_FENCE();
        mote__task *t = atomic_exchange(&S.main_slot, NULL);
        if (!t) {
            mote__spin_while(&w->sleep, 1, MOTE_SPIN_NS);
            while (atomic_load(&w->sleep) == 1 && !atomic_load(&S.main_slot))
                mote__futex_wait(&w->sleep, 1, -1);
            continue;
        }
        atomic_store(&w->sleep, 0);
        run_main_task(w, t);
    }
}

void mote__sched_main_exit(void) {
    worker *w = cur_worker();
    atomic_store(&S.main_exit, true);
    w->reason = 0; /* run_main_task does nothing more with the main task */
    mote__ctx_switch_final(&w->current->stack->ctx, &w->ctx);
}

void mote__sched_stop(void (*drop)(mote__task *t)) {
    atomic_store(&S.stopping, true);
    monitor_stop(); /* first: it activates spares */
    for (unsigned i = 0; i < S.n + 1 + S.nb; i++)
        if (&S.w[i] != S.main)
            wake_worker(&S.w[i]);
    for (unsigned i = 0; i < S.n; i++)
        pthread_join(S.w[i].thread, NULL);
    backups_join();
    /* Everything still queued goes to drop(); nothing runs any more. */
    for (unsigned i = 0; i < S.n + 1 + S.nb; i++) {
        worker *w = &S.w[i];
        if (w == S.main)
            continue;
        mote__task *t;
        if ((t = atomic_exchange(&w->runnext, NULL)) && drop)
            drop(t);
        while ((t = runq_pop(w)))
            if (drop)
                drop(t);
    }
    for (worker *w = S.main; w; w = NULL) {
        mote__task *t;
        while ((t = runq_pop(w)))
            if (drop)
                drop(t);
    }
    size_t gn = atomic_load(&S.gsize);
    for (size_t i = 0; i < gn; i++)
        if (drop)
            drop(S.gq[(S.ghead + i) % S.gcap]);
    free(S.gq);
    S.gq = NULL;
    S.gcap = S.ghead = 0;
    atomic_store(&S.gsize, 0);
    atomic_store(&S.main_slot, NULL);
    for (unsigned i = 0; i < S.nb; i++) { /* spares keep theirs between turns */
        free_stack_list(S.spares[i].stacks);
        S.spares[i].stacks = NULL;
        S.spares[i].nstacks = 0;
    }
    free_stack_list(S.stacks);
    S.stacks = NULL;
    S.nstacks = 0;
    worker_teardown(S.main);
    sigaction(SIGSEGV, &S.old_segv, NULL);
    sigaction(SIGBUS, &S.old_bus, NULL);
    free(S.w);
    S.w = NULL;
    atomic_store(&S.running, false);
}

void mote__task_discard_stack(mote__task *t) {
    if (t->stack) {
        mote__stack_free(t->stack);
        t->stack = NULL;
    }
}

/* ---- Observers ----------------------------------------------------------------- */

unsigned mote__sched_workers(mote__worker_view *out, unsigned max) {
    if (!atomic_load(&S.running))
        return 0;
    unsigned total = S.n + 1 + S.nb;
    for (unsigned i = 0; i < total && i < max; i++) {
        worker *w = &S.w[i];
        mote__worker_view *v = &out[i];
        v->id = w->id;
        v->kind = w->is_main ? MOTE__WK_MAIN : w->spare ? MOTE__WK_BACKUP : MOTE__WK_WORKER;
        MOTE_RACY_BEGIN();
        v->current = w->current;
        MOTE_RACY_END();
        uint32_t m = atomic_load_explicit(&w->mon, memory_order_relaxed);
        v->activity = (m & 3) == MON_BLOCK ? MOTE__ACT_BLOCK : (m & 3) == MON_RUN ? MOTE__ACT_RUN : MOTE__ACT_IDLE;
        if (w->is_main)
            v->activity = v->current ? MOTE__ACT_RUN : MOTE__ACT_IDLE;
        if (w->spare && !atomic_load(&w->active))
            v->activity = MOTE__ACT_OFF;
        /* The monitor's first sighting of this very turn or section, if
         * it has seen it yet (it samples every 20 us to 1 ms). */
        bool seen = atomic_load_explicit(&w->mon_seen, memory_order_acquire) == m;
        v->since = seen ? atomic_load_explicit(&w->mon_since, memory_order_relaxed) : 0;
    }
    return total;
}
