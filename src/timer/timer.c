/* timer.c -- the timer thread and its heap. See timer.h. */
#include "timer/timer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

/* How long the timer thread leaves a due timer to the workers while the
 * scheduler says they cover the timers (see timer.h): the thread is then
 * only the fallback, for workers stuck in long turns. */
#define COVERED_GRACE MOTE_MSEC(1)

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    mote__timer **heap;
    uint32_t n, cap;
    bool stop;
    pthread_t thread;
    int64_t sleeping_until; /* deadline the thread sleeps to; INT64_MAX if none */
    _Atomic int64_t next;   /* earliest deadline, for idle workers */
    const mote__timer_hooks *_Atomic hooks; /* the scheduler's, or NULL */
    uint64_t armed, fired;  /* counts (metrics), under the lock */
} T = {.lock = PTHREAD_MUTEX_INITIALIZER, .next = INT64_MAX};

/* Under the lock: the timer thread calls covered() holding it, so once
 * this returns no call of the old hooks is still reading the scheduler
 * (which frees its workers right after clearing them). */
void mote__timer_set_hooks(const mote__timer_hooks *hooks) {
    pthread_mutex_lock(&T.lock);
    atomic_store(&T.hooks, hooks);
    pthread_mutex_unlock(&T.lock);
}

/* How long after its deadline the thread fires a timer now. */
static int64_t thread_grace(void) {
    const mote__timer_hooks *h = atomic_load_explicit(&T.hooks, memory_order_acquire);
    return h && h->covered() ? COVERED_GRACE : 0;
}

static void heap_set(uint32_t i, mote__timer *t) {
    T.heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(uint32_t i) {
    mote__timer *t = T.heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (T.heap[parent]->when <= t->when)
            break;
        heap_set(i, T.heap[parent]);
        i = parent;
    }
    heap_set(i, t);
}

static void sift_down(uint32_t i) {
    mote__timer *t = T.heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= T.n)
            break;
        if (c + 1 < T.n && T.heap[c + 1]->when < T.heap[c]->when)
            c++;
        if (T.heap[c]->when >= t->when)
            break;
        heap_set(i, T.heap[c]);
        i = c;
    }
    heap_set(i, t);
}

static void heap_remove(mote__timer *t) {
    uint32_t i = t->slot - 1;
    t->slot = 0;
    T.n--;
    if (i == T.n)
        return;
    mote__timer *last = T.heap[T.n];
    heap_set(i, last);
    if (i > 0 && T.heap[(i - 1) / 2]->when > last->when)
        sift_up(i);
    else
        sift_down(i);
}

/* With the lock held, after any change of the heap's top. */
static void publish_next(void) {
    atomic_store_explicit(&T.next, T.n ? T.heap[0]->when : INT64_MAX, memory_order_relaxed);
}

int64_t mote__timer_next(void) {
    return atomic_load_explicit(&T.next, memory_order_relaxed);
}

/* With the lock held. */
static void fire_expired(int64_t now) {
    while (T.n > 0 && T.heap[0]->when <= now) {
        mote__timer *t = T.heap[0];
        heap_remove(t);
        T.fired++;
        t->fire(t);
    }
    publish_next();
}

void mote__timer_run_expired(void) {
    pthread_mutex_lock(&T.lock);
    if (!T.stop)
        fire_expired(mote__now());
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
        fire_expired(mote__now() - grace);
        if (T.n == 0) {
            T.sleeping_until = INT64_MAX;
            pthread_cond_wait(&T.cond, &T.lock);
        } else {
            int64_t when = T.heap[0]->when + grace;
            T.sleeping_until = when;
            struct timespec ts = {.tv_sec = when / 1000000000, .tv_nsec = when % 1000000000};
            pthread_cond_timedwait(&T.cond, &T.lock, &ts);
        }
    }
    pthread_mutex_unlock(&T.lock);
    return NULL;
}

int mote__timer_start(void) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&T.cond, &ca);
    pthread_condattr_destroy(&ca);
    T.stop = false;
    T.n = 0;
    T.armed = T.fired = 0;
    T.sleeping_until = INT64_MAX;
    int err = pthread_create(&T.thread, NULL, timer_main, NULL);
    if (err) {
        pthread_cond_destroy(&T.cond);
        return -err;
    }
    return 0;
}

void mote__timer_stop(void) {
    pthread_mutex_lock(&T.lock);
    T.stop = true;
    pthread_cond_signal(&T.cond);
    pthread_mutex_unlock(&T.lock);
    pthread_join(T.thread, NULL);
    for (uint32_t i = 0; i < T.n; i++)
        T.heap[i]->slot = 0;
    T.n = 0;
    atomic_store(&T.next, INT64_MAX);
    free(T.heap);
    T.heap = NULL;
    T.cap = 0;
    pthread_cond_destroy(&T.cond);
}

int mote__timer_add(mote__timer *t) {
    pthread_mutex_lock(&T.lock);
    if (T.n == T.cap) {
        uint32_t cap = T.cap ? T.cap * 2 : 64;
        mote__timer **h = realloc(T.heap, cap * sizeof *h);
        if (!h) {
            pthread_mutex_unlock(&T.lock);
            return -ENOMEM;
        }
        T.heap = h;
        T.cap = cap;
    }
    T.heap[T.n++] = t;
    T.armed++;
    sift_up(T.n - 1);
    publish_next();
    bool earliest = T.heap[0] == t;
    int64_t when = t->when; /* t may fire as soon as the lock is free */
    /* Wake the thread only if it sleeps past the time it would fire the
     * new timer at (its deadline, plus the grace while workers cover it). */
    int64_t at = when + thread_grace();
    if (at < T.sleeping_until) {
        T.sleeping_until = at;
        pthread_cond_signal(&T.cond);
    }
    pthread_mutex_unlock(&T.lock);
    const mote__timer_hooks *h = atomic_load_explicit(&T.hooks, memory_order_acquire);
    if (earliest && h)
        h->earliest(when);
    return 0;
}

void mote__timer_counts(uint64_t *armed, uint64_t *fired) {
    pthread_mutex_lock(&T.lock);
    *armed = T.armed;
    *fired = T.fired;
    pthread_mutex_unlock(&T.lock);
}

bool mote__timer_cancel(mote__timer *t) {
    pthread_mutex_lock(&T.lock);
    bool armed = t->slot != 0;
    if (armed) {
        heap_remove(t);
        publish_next();
    }
    pthread_mutex_unlock(&T.lock);
    return armed;
}
