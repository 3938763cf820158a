/*
 * idle.c -- what a worker does when nothing is queued on it (its loop,
 * task.c, takes local work first): spin (steal from the others), poll, and
 * at last park; and how parked workers are woken. Also the poll token.
 *
 * Wake-ups without a thundering herd (after Go's runtime/proc.go): whoever
 * queues stealable work calls wakep(), which wakes one parked worker only
 * if nobody is spinning (looking for work). A woken worker spins; when it
 * finds work and was the last spinner it wakes another. At most half the
 * busy workers spin. No wake-up is lost: a worker that parks first stops
 * spinning and publishes itself idle (seq_cst), then re-checks every
 * queue; a submitter first publishes the work (seq_cst), then reads the
 * spinning and idle counts: one of the two sees the other.
 *
 * Pushing into runnext wakes nobody: the task runs on this worker as soon
 * as the current one yields or ends its turn. The task it displaces goes
 * to the ring, and that does wake.
 *
 * The poll token (Go's netpoll, adapted): one thread at a time may block
 * in the I/O layer's poller, S.poll.owner says which (TOKEN_*). The last
 * worker to go idle takes it and sleeps in the poller instead of on its
 * futex, so readiness wakes a process on that worker with one thread
 * wake-up. A poller thread takes it only when the monitor finds that no
 * worker has polled for a while (S.poll.polled) although some run.
 */
#include "sched/internal.h"

#include <errno.h>

#define STEAL_ROUNDS 4         /* passes over the victims; the last takes runnext */
/* A linear congruential generator picks where a pass starts. */
#define LCG_MUL 1103515245u
#define LCG_INC 12345u

void mote__wake_worker(worker *iw) {
    atomic_store(&iw->sleep, 0);
    /* Dekker with park_worker: it publishes S.poll.sleeper, then reads sleep. */
    if (atomic_load(&S.poll.sleeper) == iw) {
        const mote__netpoll_ops *np = atomic_load_explicit(&S.poll.ops, memory_order_acquire);
        if (np) {
            np->interrupt();
            return;
        }
    }
    mote__futex_wake(&iw->sleep, 1);
}

/* wakep() found an idle worker and nobody spinning: take the spinning
 * slot and hand it to the first idle worker. */
void mote__wakep_slow(void) {
    int zero = 0;
    if (!atomic_compare_exchange_strong(&S.idle.nspinning, &zero, 1))
        return;
    pthread_mutex_lock(&S.idle.lock);
    worker *iw = S.idle.list;
    if (iw) {
        S.idle.list = iw->idle_next;
        iw->on_idle = false;
        iw->spinning = true; /* it inherits the spinning slot we took */
        int was_idle = atomic_fetch_sub(&S.idle.nidle, 1);
        MOTE_ASSERT(was_idle > 0);
    }
    pthread_mutex_unlock(&S.idle.lock);
    if (iw)
        mote__wake_worker(iw);
    else
        atomic_fetch_sub(&S.idle.nspinning, 1);
}

static bool work_anywhere(void) {
    if (atomic_load(&S.gq.size))
        return true;
    unsigned ns = nscan();
    for (unsigned i = 0; i < ns; i++) /* the main thread's queue too */
        if (atomic_load(&S.w[i].head) != atomic_load(&S.w[i].tail))
            return true;
    return false;
}

/* ---- Parking ---- */

/* Take w off the idle list if no waker did it first. True if we did (then
 * nobody will wake w); false if a waker took it and is waking it. */
static bool idle_unlist(worker *w) {
    pthread_mutex_lock(&S.idle.lock);
    bool mine = w->on_idle;
    if (mine) {
        worker **pp = &S.idle.list;
        while (*pp != w)
            pp = &(*pp)->idle_next;
        *pp = w->idle_next;
        w->on_idle = false;
        int was_idle = atomic_fetch_sub(&S.idle.nidle, 1);
        MOTE_ASSERT(was_idle > 0);
        atomic_store(&w->sleep, 0);
    }
    pthread_mutex_unlock(&S.idle.lock);
    return mine;
}

/* Publish w as idle, then re-check every queue (see the head comment).
 * False if w found work or the runtime stops, and left the list again. */
static bool idle_enter(worker *w) {
    /* Stop spinning before publishing ourselves idle: from then on a waker
     * may hand us a spinning slot by setting w->spinning. */
    if (w->spinning) {
        w->spinning = false;
        atomic_fetch_sub(&S.idle.nspinning, 1);
    }
    pthread_mutex_lock(&S.idle.lock);
    MOTE_ASSERT_MSG(!w->on_idle, "a worker is on the idle list at most once");
    atomic_store(&w->sleep, 1);
    w->idle_next = S.idle.list;
    S.idle.list = w;
    w->on_idle = true;
    atomic_fetch_add(&S.idle.nidle, 1);
    pthread_mutex_unlock(&S.idle.lock);
    MOTE_STORE_LOAD_FENCE(); /* then re-check the queues */
    if ((work_anywhere() || atomic_load(&S.stopping)) && idle_unlist(w))
        return false;
    /* Otherwise sleep; if a waker already took us off the list, its wake
     * is consumed at once. */
    return true;
}

/* Take the poll token for w if it is free: the poller to sleep in, or NULL. */
static const mote__netpoll_ops *token_take(worker *w) {
    const mote__netpoll_ops *np = atomic_load_explicit(&S.poll.ops, memory_order_acquire);
    uint32_t free_token = TOKEN_FREE;
    if (!np || !atomic_compare_exchange_strong(&S.poll.owner, &free_token, TOKEN_WORKER))
        return NULL;
    note_polled();
    atomic_store(&S.poll.sleeper, w);
    return np;
}

static void token_release(void) {
    MOTE_ASSERT(atomic_load(&S.poll.owner) == TOKEN_WORKER);
    atomic_store(&S.poll.sleeper, NULL);
    atomic_store(&S.poll.owner, TOKEN_FREE);
}

/* One idle worker at a time (the timer watcher) sleeps only until the next
 * timer and fires it itself: the woken task then runs here (it lands in
 * our runnext), one thread wake-up instead of the timer thread's two. */
static bool timer_watch_take(worker *w) {
    int zero = 0;
    if (mote__timer_next() == INT64_MAX ||
        !atomic_compare_exchange_strong(&S.idle.timer_watcher, &zero, 1))
        return false;
    atomic_store(&S.idle.watcher, w);
    return true;
}

static void timer_watch_give(void) {
    atomic_store(&S.idle.watcher, NULL);
    atomic_store(&S.idle.watch_until, INT64_MAX);
    atomic_store(&S.idle.timer_watcher, 0);
}

/* How long the timer watcher may sleep: -1 (no timer, or not watching),
 * 0 (a timer is due: fire it), or nanoseconds. The watcher publishes
 * until when, so that a timer armed earlier pokes it (timer_earliest). */
static int64_t timer_timeout(bool watch) {
    int64_t next = watch ? mote__timer_next() : INT64_MAX;
    if (watch)
        atomic_store(&S.idle.watch_until, next);
    if (next == INT64_MAX)
        return -1;
    int64_t left = next - mote__now();
    return left > 0 ? left : 0;
}

/* The token holder sleeps in the poller, not on its futex, until woken. */
static void sleep_in_poller(worker *w, const mote__netpoll_ops *np, bool watch) {
    while (atomic_load(&w->sleep) == 1) {
        int64_t timeout = timer_timeout(watch);
        if (timeout != 0)
            np->poll(timeout);
        if (watch && mote__timer_next() <= mote__now())
            mote__timer_run_expired();
        if (has_local_work(w))
            idle_unlist(w); /* readiness or a timer gave us work */
    }
}

static void sleep_on_futex(worker *w, bool watch) {
    while (atomic_load(&w->sleep) == 1) {
        int64_t timeout = timer_timeout(watch);
        if (timeout != 0 && mote__futex_wait(&w->sleep, 1, timeout) != -ETIMEDOUT)
            continue; /* woken, or no timer to fire */
        mote__timer_run_expired();
        if (has_local_work(w))
            idle_unlist(w); /* a timer gave us work */
    }
}

/* Park w until woken. Returns with w->spinning possibly set by the waker. */
static void park_worker(worker *w) {
    mon_mark(w, MON_IDLE);
    if (!idle_enter(w))
        return;
    ctr_add(w, MOTE__CTR_SLEEPS, 1);
    mote__busy_mark(w, false);
    MOTE_TRACE(MOTE__TR_IDLE, 0, 0);
    /* The token holder does not spin first: its work comes through the
     * poller, which a spin on the futex word would not look at (measured:
     * 6 % of an HTTP server's CPU went to that spin, and readiness waited
     * it out). */
    const mote__netpoll_ops *np = token_take(w);
    if (!np)
        mote__spin_while(&w->sleep, 1, MOTE_SPIN_NS);
    bool watch = timer_watch_take(w);
    if (np) {
        sleep_in_poller(w, np, watch);
        token_release();
    }
    sleep_on_futex(w, watch);
    mote__busy_mark(w, true);
    MOTE_TRACE(MOTE__TR_BUSY, 0, 0);
    if (watch)
        timer_watch_give();
    mote__monitor_kick();
}

/* ---- Finding work elsewhere ---- */

static uint32_t next_random(worker *w) {
    w->rnd = w->rnd * LCG_MUL + LCG_INC;
    return w->rnd >> 8;
}

/* A spinner steals half of a victim's ring: STEAL_ROUNDS passes over the
 * others from a random start, then the global queue after each pass. */
static mote__task *steal_work(worker *w) {
    mote__task *t = NULL;
    unsigned ns = nscan();
    for (int round = 0; round < STEAL_ROUNDS && !t; round++) {
        unsigned start = next_random(w);
        for (unsigned i = 0; i < ns && !t; i++) {
            worker *v = &S.w[(start + i) % ns];
            if (v != w)
                t = mote__runq_steal(w, v, round == STEAL_ROUNDS - 1);
        }
        if ((t = t ? t : global_get(w, RUNQ_SIZE / 2)))
            break;
    }
    return t;
}

/* At most half the busy workers spin. */
static bool may_spin(worker *w) {
    if (!w->spinning && 2 * atomic_load(&S.idle.nspinning) <
                            atomic_load(&S.mon.nactive) - atomic_load(&S.idle.nidle)) {
        w->spinning = true;
        atomic_fetch_add(&S.idle.nspinning, 1);
    }
    return w->spinning;
}

/* w has nothing queued locally: spin and steal if it may, else poll the
 * network without waiting, else park. Returns a stolen task (w no longer
 * spins), or NULL when w should look at its own queues again. */
mote__task *mote__find_elsewhere(worker *w) {
    mote__task *t;
    if (may_spin(w) && (t = steal_work(w))) {
        ctr_add(w, MOTE__CTR_STEALS, 1);
        TRACE_TASK(MOTE__TR_STEAL, t, 0);
        stop_spinning(w);
        return t;
    }
    const mote__netpoll_ops *np = atomic_load_explicit(&S.poll.ops, memory_order_acquire);
    if (np) /* workers are polling: poller threads can stay out */
        note_polled();
    if (np && np->poll(0) > 0 && has_local_work(w))
        return NULL; /* readiness woke something here */
    if (stack_chores_due() && mote__stack_chores(w)) {
        fire_due_timers(); /* a batch takes a while: a timer may be due */
        return NULL;       /* then look for work again */
    }
    park_worker(w);
    return NULL;
}

/* ---- Timers, for the timer layer (mote__timer_set_hooks) ---- */

/* The workers fire due timers on time: one sleeps until the next deadline
 * (the timer watcher), or every active worker runs short turns and fires
 * them at its next scheduling point (take_fair): none parked (not
 * watching), stalled, or in a blocking section. */
static bool timers_covered(void) {
    if (atomic_load(&S.idle.timer_watcher))
        return true;
    if (atomic_load(&S.idle.nidle) || atomic_load(&S.mon.nstalled))
        return false;
    for (unsigned i = 0, ns = nscan(); i < ns; i++) {
        worker *w = &S.w[i];
        if (w->is_main || (w->spare && !atomic_load_explicit(&w->active, memory_order_relaxed)))
            continue;
        if ((atomic_load_explicit(&w->mon, memory_order_relaxed) & MON_ACTIVITY) == MON_BLOCK)
            return false;
    }
    return true;
}

/* A timer became the earliest: a watcher sleeping past it wakes up to sleep
 * less (Go's wakeNetPoller). A poke that slips in just before the watcher's
 * wait is lost; the timer thread fires the timer then, a little late. */
static void timer_earliest(int64_t when) {
    atomic_thread_fence(memory_order_seq_cst); /* the new deadline, then the watcher */
    worker *w = atomic_load(&S.idle.watcher);
    if (!w || when >= atomic_load(&S.idle.watch_until))
        return;
    const mote__netpoll_ops *np = atomic_load_explicit(&S.poll.ops, memory_order_acquire);
    if (np && atomic_load(&S.poll.sleeper) == w)
        np->interrupt();
    else
        mote__futex_wake(&w->sleep, 1); /* its wait returns; w->sleep stays 1 */
}

const mote__timer_hooks mote__sched_timer_hooks = {
    .covered = timers_covered,
    .earliest = timer_earliest,
};

/* ---- The poll token, for the I/O layer ---- */

void mote__sched_set_netpoll(const mote__netpoll_ops *ops) {
    atomic_store_explicit(&S.poll.ops, ops, memory_order_release);
    /* Workers that parked before there was a poller sleep on their
     * futexes, and the poller threads wait for the monitor, which sleeps
     * while every worker does: wake one worker, which parks again holding
     * the token. A worker parking now publishes itself idle, then reads
     * ops; here ops is published, then nidle read: one sees the other. */
    MOTE_STORE_LOAD_FENCE();
    if (ops && atomic_load(&S.idle.nidle) > 0)
        mote__wakep_slow();
}

bool mote__netpoll_take(void) {
    uint32_t free_token = TOKEN_FREE;
    return atomic_compare_exchange_strong(&S.poll.owner, &free_token, TOKEN_POLLER_THREAD);
}

void mote__netpoll_give(void) {
    MOTE_ASSERT(atomic_load(&S.poll.owner) == TOKEN_POLLER_THREAD);
    atomic_store(&S.poll.owner, TOKEN_FREE);
}

bool mote__sched_all_idle(void) {
    return atomic_load(&S.idle.nidle) >= atomic_load(&S.mon.nactive);
}

void mote__netpoll_rewake(void) {
    worker *bw = atomic_load(&S.poll.sleeper);
    const mote__netpoll_ops *np = atomic_load_explicit(&S.poll.ops, memory_order_acquire);
    if (bw && bw != cur_worker() && np && atomic_load(&bw->sleep) == 0)
        np->interrupt();
}

bool mote__sched_polls_when_idle(void) {
    worker *w = cur_worker();
    return w && !w->is_main;
}
