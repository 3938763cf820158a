/*
 * sched.c -- the M:N scheduler's start and stop.
 *
 * Pieces (after Go's runtime/proc.go):
 *   worker   an OS thread with a bounded lock-free run queue (RUNQ_SIZE
 *            slots) and a `runnext` slot for the task it just woke, so a
 *            request/response pair stays on one core and in cache (runq.c);
 *   global   a mutex-protected queue for overflow, foreign threads and the
 *            timer thread, looked at every FAIR_TICKS for fairness (runq.c);
 *   idle     parked workers, each sleeping on its own futex, or one of them
 *            in the poller (idle.c);
 *   spare    extra workers, run by backup threads while the monitor sees
 *            workers stalled in blocking sections (monitor.c).
 * Running, switching and waking tasks is task.c; stacks are stack.c.
 *
 * The main task is pinned to the main thread, which runs nothing else.
 * Start-up order: the worker array, the fault handler, the main thread,
 * the worker threads, the monitor. Stop reverses it; tasks still queued
 * are simply forgotten (the process layer frees what they belong to).
 */
#include "sched/internal.h"
#include "base/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

/* Knuth's multiplicative hash spreads the workers' random seeds. */
#define RND_SEED_MUL 2654435761u

sched_state mote__sched = {
    .gq.lock = PTHREAD_MUTEX_INITIALIZER,
    .idle.lock = PTHREAD_MUTEX_INITIALIZER,
    .stacks.lock = PTHREAD_MUTEX_INITIALIZER,
    .backups.lock = PTHREAD_MUTEX_INITIALIZER,
};

_Thread_local worker *mote__tls_worker;

unsigned mote__sched_threads(void) {
    return atomic_load(&S.running) ? S.cfg.threads : 0;
}

bool mote__sched_running(void) {
    return atomic_load(&S.running);
}

/* ---- Threads ---- */

static void worker_teardown(worker *w) {
    mote__stacks_return(w);
    mote__altstack_teardown(&w->altstack);
    mote__ctx_destroy_thread(&w->ctx);
    mote__alloc_thread_exit();
    mote__tls_worker = NULL;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    mote__tls_worker = w;
    prctl(PR_SET_NAME, "mote-worker", 0, 0, 0);
    char label[32]; /* traces tell the workers apart */
    snprintf(label, sizeof label, "worker %u", w->id);
    mote__trace_thread_name(label);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* idle workers time timers */
    mote__alloc_thread_init();
    mote__ctx_init_thread(&w->ctx);
    mote__altstack_setup(&w->altstack);
    mote__busy_mark(w, true);
    MOTE_TRACE(MOTE__TR_BUSY, 0, 0);
    /* Its cache holds a stack (mote__stacks_start): this cannot fail. */
    mote__stack *s = mote__loop_stack(w);
    mote__ctx_switch(&w->ctx, &s->ctx); /* returns when the runtime stops */
    mote__busy_mark(w, false);
    worker_teardown(w);
    return NULL;
}

/* ---- Start ---- */

/* One array: the workers, the main thread's entry, the spare workers. */
static int workers_alloc(void) {
    unsigned n = S.cfg.threads, nb = S.cfg.backup_threads;
    size_t nw = n + 1 + nb;
    S.w = aligned_alloc(MOTE_CACHELINE, nw * sizeof(worker));
    if (!S.w)
        return -ENOMEM;
    memset(S.w, 0, nw * sizeof(worker));
    mote__counts_reset();
    S.main = &S.w[n];
    S.spares = &S.w[n + 1];
    for (unsigned i = 0; i < n; i++) {
        S.w[i].id = i;
        S.w[i].rnd = i * RND_SEED_MUL + 1;
    }
    S.main->is_main = true;
    S.main->id = n;
    for (unsigned i = 0; i < nb; i++) {
        S.spares[i].spare = true;
        S.spares[i].id = n + 1 + i;
        S.spares[i].rnd = (n + 1 + i) * RND_SEED_MUL + 1;
    }
    return 0;
}

/* Counters and flags as a new runtime needs them (a runtime may run again
 * after the last one stopped). */
static void state_reset(void) {
    atomic_store(&S.mon.spare_hw, 0);
    atomic_store(&S.mon.nactive, (int)S.cfg.threads);
    atomic_store(&S.mon.nstalled, 0);
    atomic_store(&S.mon.word, 0);
    atomic_store(&S.mon.parked, 0);
    atomic_store(&S.stopping, false);
    atomic_store(&S.main_exit, false);
    atomic_store(&S.idle.nidle, 0);
    atomic_store(&S.idle.nspinning, 0);
    atomic_store(&S.idle.timer_watcher, 0);
    atomic_store(&S.idle.watcher, NULL);
    atomic_store(&S.idle.watch_until, INT64_MAX);
    S.idle.list = NULL;
    mote__warn_ns = S.cfg.warn_blocking; /* before any thread reads it */
    atomic_store(&S.gq.tasks, 0);
    atomic_store(&S.gq.room, 0);
}

/* The calling thread becomes the main thread's worker entry. */
static void main_thread_init(void) {
    mote__tls_worker = S.main;
    mote__alloc_thread_init();
    mote__ctx_init_thread(&S.main->ctx);
    mote__altstack_setup(&S.main->altstack);
}

static int workers_start(void) {
    for (unsigned i = 0; i < S.cfg.threads; i++) {
        int err = pthread_create(&S.w[i].thread, NULL, worker_main, &S.w[i]);
        if (err) {
            atomic_store(&S.stopping, true);
            for (unsigned j = 0; j < i; j++) {
                mote__wake_worker(&S.w[j]);
                pthread_join(S.w[j].thread, NULL);
            }
            return -err;
        }
    }
    return 0;
}

int mote__sched_start(const mote__sched_config *cfg, const mote__sched_hooks *hooks) {
    S.cfg = *cfg;
    S.hooks = *hooks;
    int err = workers_alloc();
    if (err)
        return err;
    state_reset();
    err = mote__stacks_start();
    if (err) {
        for (unsigned i = 0; i < S.cfg.threads; i++)
            mote__stacks_return(&S.w[i]);
        mote__sched_free_stacks();
        free(S.w);
        S.w = NULL;
        return err;
    }
    mote__fault_handler_install();
    main_thread_init();
    atomic_store(&S.running, true);
    err = workers_start();
    if (err) {
        for (unsigned i = 0; i < S.cfg.threads; i++)
            mote__stacks_return(&S.w[i]);
        worker_teardown(S.main);
        mote__fault_handler_restore();
        mote__sched_free_stacks();
        free(S.w);
        S.w = NULL;
        atomic_store(&S.running, false);
        return err;
    }
    err = mote__monitor_start();
    if (err) {
        mote__sched_stop();
        mote__sched_free_stacks();
        return err;
    }
    mote__timer_set_hooks(&mote__sched_timer_hooks);
    return 0;
}

/* ---- Stop ---- */

void mote__sched_stop(void) {
    mote__timer_set_hooks(NULL); /* the timer thread fires on time again */
    atomic_store(&S.stopping, true);
    mote__monitor_stop(); /* first: it activates spares */
    for (unsigned i = 0; i < S.cfg.threads + 1 + S.cfg.backup_threads; i++)
        if (&S.w[i] != S.main)
            mote__wake_worker(&S.w[i]);
    for (unsigned i = 0; i < S.cfg.threads; i++)
        pthread_join(S.w[i].thread, NULL);
    mote__backups_join();
    /* Nothing runs any more: what is still queued is forgotten with the
     * queues (the process layer frees every process it registered). */
    pthread_mutex_lock(&S.gq.lock); /* the timer thread may still push */
    free(S.gq.buf);
    S.gq.buf = NULL;
    S.gq.cap = S.gq.head = 0;
    atomic_store(&S.gq.size, 0);
    atomic_store(&S.gq.room, 0);
    pthread_mutex_unlock(&S.gq.lock);
    atomic_store(&S.main_slot, NULL);
    for (unsigned i = 0; i < S.cfg.backup_threads; i++) /* spares keep theirs between turns */
        mote__stacks_return(&S.spares[i]);
    worker_teardown(S.main);
    mote__fault_handler_restore();
    free(S.w);
    S.w = NULL;
    mote__warn_ns = 0; /* every worker has been joined */
    atomic_store(&S.running, false);
}
