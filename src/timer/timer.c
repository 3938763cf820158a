/* timer.c -- the lazily re-armed heap and the timer thread. See timer.h. */
#include "timer/timer.h"

#include <sched.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

#define HEAP_MIN 64

/* How long the timer thread leaves a due timer to the workers while the
 * scheduler says they cover the timers (see timer.h): the thread is then
 * only the fallback, for workers stuck in long turns. */
#define COVERED_GRACE MOTE_MSEC(1)

mote__timers mote__rt_timers = {.lock = PTHREAD_MUTEX_INITIALIZER, .next = MOTE__TIMER_OFF};
#define T mote__rt_timers

/* The scheduler's hooks, or NULL. They concern the runtime's instance
 * only (tests' heaps have no thread and no workers). */
static const mote__timer_hooks *_Atomic timer_hooks;

/* Callers of earliest() in progress (mote__timers_set_slow). */
static _Atomic unsigned earliest_calls;

/* Once this returns, no call of the old hooks is still reading the
 * scheduler (which frees its workers right after clearing them): the
 * timer thread calls covered() holding the lock, and an arming thread,
 * which may be outside the runtime and race with its stop, calls
 * earliest() counted in earliest_calls (seq_cst both sides: either it
 * sees the new hooks or this sees it counted, and waits). */
void mote__timer_set_hooks(const mote__timer_hooks *hooks) {
    pthread_mutex_lock(&T.lock);
    atomic_store(&timer_hooks, hooks);
    pthread_mutex_unlock(&T.lock);
    while (atomic_load(&earliest_calls))
        sched_yield();
}

/* How long after its deadline the runtime's thread fires a timer now. */
static int64_t thread_grace(void) {
    const mote__timer_hooks *h = atomic_load_explicit(&timer_hooks, memory_order_acquire);
    return h && h->covered() ? COVERED_GRACE : 0;
}

void mote__timer_init(mote__timer *t, void (*fire)(mote__timer *t)) {
    atomic_init(&t->when, MOTE__TIMER_OFF);
    atomic_init(&t->queued, MOTE__TIMER_OFF);
    t->slot = 0;
    t->fire = fire;
}

/* ---- The heap (under ts->lock) ---- */

static void heap_set(mote__timers *ts, uint32_t i, mote__timer_entry e) {
    ts->heap[i] = e;
    e.t->slot = i + 1;
}

static void sift_up(mote__timers *ts, uint32_t i) {
    mote__timer_entry e = ts->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (ts->heap[parent].key <= e.key)
            break;
        heap_set(ts, i, ts->heap[parent]);
        i = parent;
    }
    heap_set(ts, i, e);
}

static void sift_down(mote__timers *ts, uint32_t i) {
    mote__timer_entry e = ts->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= ts->n)
            break;
        if (c + 1 < ts->n && ts->heap[c + 1].key < ts->heap[c].key)
            c++;
        if (ts->heap[c].key >= e.key)
            break;
        heap_set(ts, i, ts->heap[c]);
        i = c;
    }
    heap_set(ts, i, e);
}

/* Give t an entry at key. -ENOMEM only when the heap must grow. */
static int heap_push(mote__timers *ts, mote__timer *t, int64_t key) {
    if (ts->n == ts->cap) {
        uint32_t cap = ts->cap ? ts->cap * 2 : HEAP_MIN;
        mote__timer_entry *h = realloc(ts->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        ts->heap = h;
        ts->cap = cap;
    }
    atomic_store(&t->queued, key);
    ts->heap[ts->n] = (mote__timer_entry){key, t};
    sift_up(ts, ts->n++);
    return 0;
}

/* Take the entry at index i out. Its timer's `queued` is OFF on return
 * (seq_cst: see timer.h for the owner it races with). */
static void heap_remove(mote__timers *ts, uint32_t i) {
    mote__timer *t = ts->heap[i].t;
    t->slot = 0;
    atomic_store(&t->queued, MOTE__TIMER_OFF);
    ts->n--;
    if (i == ts->n)
        return;
    mote__timer_entry last = ts->heap[ts->n];
    heap_set(ts, i, last);
    if (i > 0 && ts->heap[(i - 1) / 2].key > last.key)
        sift_up(ts, i);
    else
        sift_down(ts, i);
}

/* After any change of the heap's top. */
static void publish_next(mote__timers *ts) {
    atomic_store_explicit(&ts->next, ts->n ? ts->heap[0].key : MOTE__TIMER_OFF, memory_order_relaxed);
}

/* ---- One instance ---- */

void mote__timers_init(mote__timers *ts) {
    pthread_mutex_init(&ts->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ts->cond, &ca);
    pthread_condattr_destroy(&ca);
    ts->heap = NULL;
    ts->n = ts->cap = 0;
    ts->sleeping_until = MOTE__TIMER_OFF;
    atomic_store(&ts->next, MOTE__TIMER_OFF);
    ts->armed = ts->fired = 0;
    ts->stop = false;
}

void mote__timers_destroy(mote__timers *ts) {
    for (uint32_t i = 0; i < ts->n; i++) {
        ts->heap[i].t->slot = 0;
        atomic_store(&ts->heap[i].t->queued, MOTE__TIMER_OFF);
    }
    free(ts->heap);
    ts->heap = NULL;
    ts->n = ts->cap = 0;
    atomic_store(&ts->next, MOTE__TIMER_OFF);
    pthread_cond_destroy(&ts->cond);
}

int mote__timers_set_slow(mote__timers *ts, mote__timer *t) {
    int r = 0;
    bool earliest = false;
    pthread_mutex_lock(&ts->lock);
    /* Read under the lock: the heap may have fired t (OFF) since. */
    int64_t when = atomic_load(&t->when);
    if (when != MOTE__TIMER_OFF) {
        ts->armed++;
        if (!t->slot) {
            r = heap_push(ts, t, when);
        } else if (ts->heap[t->slot - 1].key > when) {
            ts->heap[t->slot - 1].key = when;
            atomic_store(&t->queued, when);
            sift_up(ts, t->slot - 1);
        }
        publish_next(ts);
        earliest = r == 0 && ts->heap[0].t == t;
        /* Wake the thread only if it sleeps past the time it would fire
         * t at (its deadline, plus the grace while workers cover it). */
        int64_t at = when + (ts == &T ? thread_grace() : 0);
        if (r == 0 && at < ts->sleeping_until) {
            ts->sleeping_until = at;
            pthread_cond_signal(&ts->cond);
        }
    }
    pthread_mutex_unlock(&ts->lock);
    if (earliest && ts == &T) { /* see mote__timer_set_hooks */
        atomic_fetch_add(&earliest_calls, 1);
        const mote__timer_hooks *h = atomic_load(&timer_hooks);
        if (h)
            h->earliest(when);
        atomic_fetch_sub(&earliest_calls, 1);
    }
    return r;
}

bool mote__timers_cancel(mote__timers *ts, mote__timer *t) {
    pthread_mutex_lock(&ts->lock);
    if (t->slot) {
        heap_remove(ts, t->slot - 1);
        publish_next(ts);
    }
    bool armed = atomic_exchange(&t->when, MOTE__TIMER_OFF) != MOTE__TIMER_OFF;
    pthread_mutex_unlock(&ts->lock);
    return armed;
}

/* With the lock held. An entry that comes up is re-inserted if its timer
 * was moved later, dropped if it was disarmed, and fired otherwise. */
static void fire_expired(mote__timers *ts, int64_t now) {
    while (ts->n > 0 && ts->heap[0].key <= now) {
        mote__timer *t = ts->heap[0].t;
        heap_remove(ts, 0);
        MOTE_STORE_LOAD_FENCE(); /* `queued` is OFF; now read `when` */
        int64_t when = atomic_load(&t->when);
        while (when != MOTE__TIMER_OFF) {
            if (when > now) {
                heap_push(ts, t, when); /* cannot fail: an entry just left */
                break;
            }
            if (atomic_compare_exchange_weak(&t->when, &when, MOTE__TIMER_OFF)) {
                ts->fired++;
                t->fire(t);
                break;
            }
        }
    }
    publish_next(ts);
}

void mote__timers_fire_due(mote__timers *ts, int64_t now) {
    pthread_mutex_lock(&ts->lock);
    if (!ts->stop)
        fire_expired(ts, now);
    pthread_mutex_unlock(&ts->lock);
}

/* ---- The runtime's thread ---- */

void mote__timer_run_expired(void) {
    mote__timers_fire_due(&T, mote__now());
}

void mote__timer_counts(uint64_t *armed, uint64_t *fired) {
    pthread_mutex_lock(&T.lock);
    *armed = T.armed;
    *fired = T.fired;
    pthread_mutex_unlock(&T.lock);
}

static void *timer_main(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "mote-timer", 0, 0, 0);
    /* Default timer slack is 50 us; a 1 ms sleep should not pay it. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    pthread_mutex_lock(&T.lock);
    while (!T.stop) {
        int64_t grace = thread_grace();
        fire_expired(&T, mote__now() - grace);
        if (T.n == 0) {
            T.sleeping_until = MOTE__TIMER_OFF;
            pthread_cond_wait(&T.cond, &T.lock);
        } else {
            int64_t when = T.heap[0].key + grace;
            T.sleeping_until = when;
            struct timespec ts = {.tv_sec = when / 1000000000, .tv_nsec = when % 1000000000};
            pthread_cond_timedwait(&T.cond, &T.lock, &ts);
        }
    }
    pthread_mutex_unlock(&T.lock);
    return NULL;
}

int mote__timer_start(void) {
    mote__timers_init(&T);
    int err = pthread_create(&T.thread, NULL, timer_main, NULL);
    if (err) {
        mote__timers_destroy(&T);
        return -err;
    }
    return 0;
}

void mote__timer_halt(void) {
    pthread_mutex_lock(&T.lock);
    T.stop = true;
    pthread_cond_signal(&T.cond);
    pthread_mutex_unlock(&T.lock);
}

void mote__timer_stop(void) {
    mote__timer_halt();
    pthread_join(T.thread, NULL);
    mote__timers_destroy(&T);
}
