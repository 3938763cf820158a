/*
 * monitor.c -- blocking sections, the monitor, spare workers and the
 * backup threads that run them.
 *
 * A worker stuck in a blocking section or in a long turn cannot run its
 * other processes, and C code cannot be preempted. Instead of taking the
 * stuck worker away from its thread (Go hands the P of a blocked M to
 * another M), mote keeps every worker on its thread for good and lets a
 * *spare worker*, run by a *backup thread*, take the stuck one's place:
 *
 *   - a blocking section is two relaxed stores to the worker's `mon` word
 *     (a change counter and MON_BLOCK, then MON_RUN): no syscall, no
 *     hand-off, so a quick call costs almost nothing;
 *   - the monitor thread samples every active worker's `mon`. One that
 *     shows the same value in a section for `blocking_threshold` (100 us),
 *     or in a turn for HOG_NS (10 ms), is stalled: the monitor moves its
 *     queued processes to the global queue (a thief's CAS on the queue
 *     head, safe against the owner) and activates spare workers until
 *     `threads` workers are not stalled;
 *   - when the section ends, its worker simply carries on. There are now
 *     more unstalled workers than `threads`; a spare worker that notices
 *     this at its next scheduling point drains its queue into the global
 *     one and retires (its backup thread goes back to the pool).
 *
 * So the number of threads running processes is `threads`, plus one per
 * stalled worker while it is stalled, bounded by `backup_threads` spare
 * workers (and as many backup threads, ever). No worker ever changes hands
 * while its thread might be using it, so nothing on the hot path checks
 * ownership. The monitor samples every threshold/2 while workers are
 * stalled, backs off (doubling) to every 1 ms otherwise, wakes exactly at
 * the threshold for an open section (unless its worker makes many short
 * ones). While every worker is idle it parks: lightly (10 ms at a time),
 * and after a second of that deeply (without a timeout): the first worker
 * to wake then kicks it. A worker entering a blocking section wakes it
 * from either park; a worker merely leaving idle does not wake a light
 * park, so a server that idles between requests costs no wake-ups per
 * request. So a long section is noticed from threshold to threshold + 2
 * ms after it began (sooner while others are stalled), a hog after 10-12
 * ms (up to 20 ms when it began right after an idle spell), and an idle
 * runtime costs the monitor a hundred wake-ups in its first second, then
 * nothing.
 *
 * The monitor also watches the network (netpoll_watch): when no worker has
 * polled for 1 ms while some run, it asks the I/O layer's poller thread to
 * wait in the poller; otherwise that thread sleeps for good.
 */
#include "sched/internal.h"
#include "base/alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>

#define HOG_NS MOTE_MSEC(10) /* a turn this long counts as a stalled worker */
#define POLL_STARVED_NS MOTE_MSEC(1) /* no worker polled for this long: a poller thread polls */
/* Every worker idle: the monitor sleeps LIGHT_PARK_NS at a time, and
 * without a timeout once that happened DEEP_AFTER times in a row. */
#define LIGHT_PARK_NS HOG_NS
#define DEEP_AFTER 100
enum { MON_AWAKE = 0, MON_LIGHT, MON_DEEP }; /* S.mon.parked */
#define MON_MIN_NS MOTE_USEC(20)
#define MON_MAX_NS MOTE_MSEC(1)
/* A section seen for the first time is timed only on a worker that made
 * at most this many marks since the last sample (else: a read loop). */
#define MON_FEW_MARKS 16u

/* Wake a parked monitor (light or deep). */
static void monitor_wake(uint32_t parked) {
    if (atomic_compare_exchange_strong(&S.mon.parked, &parked, MON_AWAKE))
        mote__futex_wake(&S.mon.parked, 1);
}

void mote_blocking_begin(void) {
    worker *w = cur_worker();
    if (w && !w->is_main && w->current) {
        mon_mark(w, MON_BLOCK);
        /* A section must be noticed at the threshold: a parked monitor is
         * woken (it parks only after seeing every worker idle, and this
         * worker left idle since: seq_cst on both sides). */
        uint32_t parked = atomic_load(&S.mon.parked);
        if (MOTE_UNLIKELY(parked != MON_AWAKE))
            monitor_wake(parked);
        ctr_add(w, MOTE__CTR_SECTIONS, 1);
        TRACE_TASK(MOTE__TR_BLOCK, w->current, 0);
        if (MOTE_UNLIKELY(mote__warn_ns))
            w->section_start = mote__now();
    }
}

void mote_blocking_end(void) {
    worker *w = cur_worker();
    if (w && !w->is_main && w->current) {
        mon_mark(w, MON_RUN);
        TRACE_TASK(MOTE__TR_UNBLOCK, w->current, 0);
        if (MOTE_UNLIKELY(mote__warn_ns) && w->section_start) {
            int64_t ns = mote__now() - w->section_start;
            w->section_start = 0;
            if (ns >= mote__warn_ns) /* on the task's stack: the backtrace shows the caller */
                S.hooks.warn(w->current, ns, MOTE__WARN_SECTION);
        }
    }
}

/* Worker side, leaving idle: wake the monitor if it sleeps without a
 * timeout. A lightly parked one is left alone: it looks again within
 * LIGHT_PARK_NS, and a server that idles between requests would
 * otherwise pay a futex wake-up on the worker and one of the monitor per
 * request. */
void mote__monitor_kick(void) {
    MOTE_STORE_LOAD_FENCE(); /* our nidle decrement before its flag */
    if (atomic_load_explicit(&S.mon.parked, memory_order_relaxed) == MON_DEEP)
        monitor_wake(MON_DEEP);
}

/* ---- Spare workers and backup threads ---- */

/* Owner of spare worker w: leave if more workers than `threads` are not
 * stalled, after pushing everything queued here to the global queue. */
bool mote__spare_retire(worker *w) {
    int act = atomic_load(&S.mon.nactive);
    for (;;) {
        if (act - atomic_load(&S.mon.nstalled) <= (int)S.cfg.threads)
            return false;
        if (atomic_compare_exchange_weak(&S.mon.nactive, &act, act - 1))
            break;
    }
    MOTE_ASSERT_MSG(act - 1 >= (int)S.cfg.threads, "at least `threads` workers stay active");
    stop_spinning(w);
    mote__task *batch[RUNQ_SIZE + 1];
    size_t n = mote__runq_drain(w, batch);
    if (n) {
        mote__global_push(batch, n);
        wakep();
    }
    return true;
}

static void *backup_main(void *arg) {
    backup_thread *b = arg;
    prctl(PR_SET_NAME, "mote-backup", 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    mote__alloc_thread_init();
    mote__altstack_setup(&b->altstack);
    for (;;) {
        while (!atomic_load(&b->go))
            mote__futex_wait(&b->go, 0, -1);
        worker *w = atomic_load(&b->spare);
        if (!w)
            break; /* stopping */
        mote__tls_worker = w;
        w->trace = NULL; /* the ring of the thread that ran it last */
        mote__ctx_init_thread(&w->ctx);
        mote__busy_mark(w, true);
        MOTE_TRACE(MOTE__TR_BUSY, 0, 0);
        mote__stack *s = mote__loop_stack(w);
        if (s) {
            mote__ctx_switch(&w->ctx, &s->ctx); /* returns on retire or stop */
            mote__busy_mark(w, false);
            mote__stack_release(w->exit_stack);
            w->exit_stack = NULL;
        } else { /* no stack to run it on: it retires at once (its queue is empty) */
            atomic_fetch_sub(&S.mon.nactive, 1);
        }
        mote__ctx_destroy_thread(&w->ctx);
        mote__tls_worker = NULL;
        atomic_store(&b->spare, NULL);
        atomic_store(&b->go, 0);
        bool stop = atomic_load(&S.stopping);
        if (!stop) { /* back in the pool before the spare is free again, */
            pthread_mutex_lock(&S.backups.lock); /* or the monitor would  */
            b->next_free = S.backups.free;       /* start a new thread for it */
            S.backups.free = b;
            pthread_mutex_unlock(&S.backups.lock);
        }
        atomic_store(&w->active, false); /* the monitor may reuse it now */
        if (stop)
            break;
    }
    mote__altstack_teardown(&b->altstack);
    mote__alloc_thread_exit();
    return NULL;
}

/* A pooled backup thread, or a new one while fewer than backup_threads
 * were started (each runs at most one spare worker). NULL if none. */
static backup_thread *backup_get(void) {
    pthread_mutex_lock(&S.backups.lock);
    backup_thread *b = S.backups.free;
    if (b)
        S.backups.free = b->next_free;
    unsigned made = S.backups.count;
    pthread_mutex_unlock(&S.backups.lock);
    if (b || made >= S.cfg.backup_threads)
        return b;
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    if (pthread_create(&b->thread, NULL, backup_main, b) != 0) {
        free(b);
        return NULL;
    }
    pthread_mutex_lock(&S.backups.lock);
    b->next_all = S.backups.all;
    S.backups.all = b;
    S.backups.count++;
    pthread_mutex_unlock(&S.backups.lock);
    return b;
}

/* Monitor: hand an inactive spare worker to a backup thread. */
static bool spare_activate(void) {
    worker *w = NULL;
    for (unsigned i = 0; i < S.cfg.backup_threads && !w; i++)
        if (!atomic_load(&S.spares[i].active))
            w = &S.spares[i];
    if (!w)
        return false;
    backup_thread *b = backup_get();
    if (!b)
        return false;
    MOTE_ASSERT_MSG(!atomic_load(&b->spare), "a pooled backup thread runs no spare");
    w->spinning = false;
    atomic_store(&w->active, true);
    int was_active = atomic_fetch_add(&S.mon.nactive, 1);
    MOTE_ASSERT(was_active >= (int)S.cfg.threads);
    unsigned idx = (unsigned)(w - S.spares) + 1, hw = atomic_load(&S.mon.spare_hw);
    while (hw < idx && !atomic_compare_exchange_weak(&S.mon.spare_hw, &hw, idx))
        ;
    atomic_store(&b->spare, w);
    atomic_store(&b->go, 1);
    mote__futex_wake(&b->go, 1);
    mote__count(MOTE__CTR_HANDOFFS, 1);
    MOTE_TRACE(MOTE__TR_HANDOFF, w->id, 0);
    return true;
}

/* ---- The monitor thread ---- */

typedef struct mon_view {
    uint32_t mon;  /* the value last seen */
    int64_t since; /* when it was first seen */
} mon_view;

/* One sample of every active worker. */
typedef struct mon_sample {
    int stalled;  /* workers stalled now */
    bool busy;    /* some worker is not idle */
    bool moved;   /* tasks went from stalled workers to the global queue */
    int64_t due;  /* when an open section reaches the threshold, or INT64_MAX */
} mon_sample;

static mon_sample monitor_scan(mon_view *view, int64_t now) {
    mon_sample s = {.due = INT64_MAX};
    mote__task *batch[RUNQ_SIZE + 1];
    for (unsigned i = 0, ns = nscan(); i < ns; i++) { /* spares never used: idle */
        worker *w = &S.w[i];
        if (w->is_main || (w->spare && !atomic_load(&w->active)))
            continue;
        uint32_t m = atomic_load_explicit(&w->mon, memory_order_relaxed);
        unsigned act = m & MON_ACTIVITY;
        uint32_t marks = (m - view[i].mon) >> MON_BITS; /* turns + section edges since */
        if (m != view[i].mon) {
            view[i].mon = m;
            view[i].since = now;
            atomic_store_explicit(&w->mon_since, now, memory_order_relaxed);
            atomic_store_explicit(&w->mon_seen, m, memory_order_release);
        }
        if (act == MON_IDLE)
            continue;
        s.busy = true;
        int64_t limit = act == MON_BLOCK ? S.cfg.blocking_threshold : HOG_NS;
        if (now - view[i].since >= limit) {
            s.stalled++;
            size_t n = mote__runq_drain(w, batch);
            if (n)
                mote__global_push(batch, n);
            s.moved |= n > 0;
        } else if (act == MON_BLOCK && view[i].since + limit < s.due &&
                   (view[i].since < now || marks <= MON_FEW_MARKS)) {
            /* Time a section seen open twice; and one seen for the
             * first time, unless this worker makes many short ones (a
             * file read loop): those would cost a wake-up each. */
            s.due = view[i].since + limit;
        }
    }
    return s;
}

/* Readiness must not wait behind long turns: when no worker has polled
 * for POLL_STARVED_NS while some run, a poller thread takes over (Go's
 * sysmon polls the network itself after 10 ms). So the poller threads
 * sleep for good while workers poll. *seen: when a poll was last seen. */
static void netpoll_watch(int64_t now, int64_t *seen) {
    const mote__netpoll_ops *np = atomic_load_explicit(&S.poll.ops, memory_order_acquire);
    if (!np)
        return;
    if (atomic_exchange(&S.poll.polled, false)) {
        *seen = now;
    } else if (now - *seen >= POLL_STARVED_NS && atomic_load(&S.poll.owner) == TOKEN_FREE) {
        np->starved();
        *seen = now;
    }
}

/* Everything idle: sleep LIGHT_PARK_NS, or (deep) until a worker wakes
 * (mote__monitor_kick); either is cut short by a blocking section. */
static void monitor_park(bool deep) {
    uint32_t how = deep ? MON_DEEP : MON_LIGHT;
    atomic_store(&S.mon.parked, how);
    MOTE_STORE_LOAD_FENCE();
    if (atomic_load(&S.idle.nidle) == atomic_load(&S.mon.nactive) && !atomic_load(&S.stopping))
        mote__futex_wait(&S.mon.parked, how, deep ? -1 : LIGHT_PARK_NS);
    atomic_store(&S.mon.parked, MON_AWAKE);
}

static void *monitor_main(void *arg) {
    mon_view *view = arg; /* one per worker and spare */
    prctl(PR_SET_NAME, "mote-monitor", 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    int64_t period = MON_MIN_NS, polled_seen = mote__now();
    int idle_parks = 0; /* light parks in a row */
    while (!atomic_load(&S.stopping)) {
        int64_t now = mote__now();
        mon_sample s = monitor_scan(view, now);
        if (s.busy)
            netpoll_watch(now, &polled_seen);
        atomic_store(&S.mon.nstalled, s.stalled);
        for (int run = atomic_load(&S.mon.nactive) - s.stalled; run < (int)S.cfg.threads; run++)
            if (!spare_activate())
                break;
        if (s.moved)
            wakep();
        if (!s.busy && atomic_load(&S.idle.nidle) == atomic_load(&S.mon.nactive)) {
            monitor_park(idle_parks >= DEEP_AFTER);
            idle_parks = idle_parks < DEEP_AFTER ? idle_parks + 1 : idle_parks;
            polled_seen = mote__now(); /* the last worker to go idle held the token */
            continue;
        }
        idle_parks = 0;
        /* Back off like Go's sysmon: fast while workers are stalled, else
         * doubling up to 1 ms, but wake exactly when a section seen open
         * twice would reach the threshold. Short sections (a file read)
         * are rarely seen twice, so they cost no extra wake-ups. */
        int64_t half = S.cfg.blocking_threshold / 2;
        int64_t fast = half > MON_MIN_NS ? half : MON_MIN_NS;
        period = s.stalled ? fast : (period * 2 > MON_MAX_NS ? MON_MAX_NS : period * 2);
        int64_t sleep = period;
        if (s.due != INT64_MAX && s.due - now < sleep)
            sleep = s.due - now > MON_MIN_NS ? s.due - now : MON_MIN_NS;
        mote__futex_wait(&S.mon.word, 0, sleep);
    }
    free(view);
    return NULL;
}

int mote__monitor_start(void) {
    mon_view *view = calloc(S.cfg.threads + 1 + S.cfg.backup_threads, sizeof *view);
    if (!view)
        return -ENOMEM;
    int err = pthread_create(&S.mon.thread, NULL, monitor_main, view);
    if (err) {
        free(view);
        return -err;
    }
    S.mon.started = true;
    return 0;
}

void mote__monitor_stop(void) {
    if (!S.mon.started)
        return;
    atomic_store(&S.mon.word, 1);
    mote__futex_wake(&S.mon.word, 1);
    atomic_store(&S.mon.parked, MON_AWAKE);
    mote__futex_wake(&S.mon.parked, 1);
    pthread_join(S.mon.thread, NULL);
    S.mon.started = false;
    /* Backup threads: those running a spare worker stop through its loop,
     * the pooled ones are woken without one. */
    for (backup_thread *b = S.backups.all; b; b = b->next_all) {
        if (!atomic_load(&b->spare)) {
            atomic_store(&b->go, 1);
            mote__futex_wake(&b->go, 1);
        }
    }
}

void mote__backups_join(void) {
    backup_thread *b = S.backups.all;
    while (b) {
        backup_thread *next = b->next_all;
        pthread_join(b->thread, NULL);
        free(b);
        b = next;
    }
    S.backups.all = S.backups.free = NULL;
    S.backups.count = 0;
}
