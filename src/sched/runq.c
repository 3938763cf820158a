/*
 * runq.c -- run queues: each worker's ring and the global queue.
 *
 * A worker's ring (after Go's runq) holds RUNQ_SIZE task pointers. Only
 * the owner pushes, at the tail; the owner and thieves take from the head
 * with a CAS, so a thief never blocks the owner. A full ring moves half of
 * itself to the global queue. A thief takes half of its victim's ring in
 * one CAS (runq_steal); the monitor takes all of a stalled worker's
 * (runq_drain), with the same CAS, which is safe against the owner.
 *
 * The global queue takes overflow and what foreign threads, the timer
 * thread and the monitor make runnable: a growable ring of pointers under
 * a mutex, its size readable without the lock. It always has room for
 * every task there is (a task is in one queue at a time): room is taken
 * when a task is made (mote__task_room_take, which may fail with -ENOMEM)
 * and the ring grows then, so queueing a task never needs memory. A
 * worker takes room ROOM_BATCH at a time and keeps what its tasks give
 * back, so the shared count moves once per batch.
 */
#include "sched/internal.h"

#include <errno.h>
#include <stdlib.h>

#define GQ_INITIAL_CAP 1024u
#define ROOM_BATCH 64u

/* With the global queue's lock held: make the ring hold want tasks. */
static bool global_grow(size_t want) {
    if (want <= S.gq.cap)
        return true;
    size_t size = atomic_load_explicit(&S.gq.size, memory_order_relaxed);
    size_t cap = S.gq.cap ? S.gq.cap : GQ_INITIAL_CAP;
    while (cap < want)
        cap *= 2;
    mote__task **q = malloc(cap * sizeof *q);
    if (!q)
        return false;
    for (size_t i = 0; i < size; i++)
        q[i] = S.gq.buf[(S.gq.head + i) % S.gq.cap];
    free(S.gq.buf);
    S.gq.buf = q;
    S.gq.cap = cap;
    S.gq.head = 0;
    atomic_store_explicit(&S.gq.room, cap, memory_order_release);
    return true;
}

/* Room for n more tasks: the shared count, and the ring grown to hold it. */
static bool room_add(size_t n) {
    size_t want = atomic_fetch_add(&S.gq.tasks, n) + n;
    if (want <= atomic_load_explicit(&S.gq.room, memory_order_acquire))
        return true;
    pthread_mutex_lock(&S.gq.lock);
    bool ok = global_grow(want);
    pthread_mutex_unlock(&S.gq.lock);
    if (!ok)
        atomic_fetch_sub(&S.gq.tasks, n);
    return ok;
}

int mote__task_room_take(void) {
    worker *w = cur_worker();
    if (MOTE_LIKELY(w && w->room)) {
        w->room--;
        return 0;
    }
    if (!room_add(w ? ROOM_BATCH : 1))
        return -ENOMEM;
    if (w)
        w->room = ROOM_BATCH - 1;
    return 0;
}

void mote__task_room_drop(void) {
    if (!atomic_load_explicit(&S.running, memory_order_relaxed))
        return; /* the shutdown reaper: the count starts afresh */
    worker *w = cur_worker();
    if (MOTE_LIKELY(w && w->room < 2 * ROOM_BATCH)) {
        w->room++;
        return;
    }
    atomic_fetch_sub(&S.gq.tasks, w ? ROOM_BATCH : 1);
    if (w)
        w->room -= ROOM_BATCH - 1;
}

void mote__global_push(mote__task **ts, size_t n) {
    pthread_mutex_lock(&S.gq.lock);
    /* A wake from the timer thread may race with the scheduler's stop,
     * which frees the queue under this lock after setting stopping. */
    if (MOTE_UNLIKELY(atomic_load(&S.stopping))) {
        pthread_mutex_unlock(&S.gq.lock);
        return;
    }
    size_t size = atomic_load_explicit(&S.gq.size, memory_order_relaxed);
    /* A runtime took room for every task, so the ring never grows here
     * (test-runq pushes without taking room). */
    if (MOTE_UNLIKELY(size + n > S.gq.cap) && !global_grow(size + n)) {
        mote__write_stderr("mote: internal error: no room in the global run queue\n");
        abort();
    }
    for (size_t i = 0; i < n; i++)
        S.gq.buf[(S.gq.head + size + i) % S.gq.cap] = ts[i];
    atomic_store(&S.gq.size, size + n);
    pthread_mutex_unlock(&S.gq.lock);
}

mote__task *mote__global_get_slow(worker *w, size_t max) {
    pthread_mutex_lock(&S.gq.lock);
    size_t n = atomic_load_explicit(&S.gq.size, memory_order_relaxed);
    size_t want = n / S.cfg.threads + 1;
    if (want > max)
        want = max;
    if (want > n)
        want = n;
    /* The batch goes onto w's ring under our lock: it must fit, or the
     * ring would overflow back into this queue (a self-deadlock). */
    MOTE_ASSERT(want <= 1 || RUNQ_SIZE - (atomic_load(&w->tail) - atomic_load(&w->head)) >= want - 1);
    mote__task *t = NULL;
    if (want) {
        t = S.gq.buf[S.gq.head];
        for (size_t i = 1; i < want; i++)
            runq_push(w, S.gq.buf[(S.gq.head + i) % S.gq.cap]);
        S.gq.head = (S.gq.head + want) % S.gq.cap;
        atomic_store(&S.gq.size, n - want);
    }
    pthread_mutex_unlock(&S.gq.lock);
    return t;
}

/* Owner: move half the ring plus t to the global queue. False if thieves
 * took some meanwhile (retry the fast path). */
bool mote__runq_push_slow(worker *w, mote__task *t, uint32_t h, uint32_t tl) {
    MOTE_ASSERT(tl - h == RUNQ_SIZE);
    uint32_t n = (tl - h) / 2;
    mote__task *batch[RUNQ_SIZE / 2 + 1];
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&w->buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&w->head, &h, h + n, memory_order_release,
                                                 memory_order_relaxed))
        return false;
    batch[n] = t;
    mote__global_push(batch, n + 1);
    return true;
}

/* Thief w takes half of victim v's ring into its own (as much as fits).
 * Returns one task to run, the rest are queued on w; with take_next, an
 * empty ring gives up its runnext instead. */
mote__task *mote__runq_steal(worker *w, worker *v, bool take_next) {
    MOTE_ASSERT_MSG(w != v, "only the owner pushes onto a ring");
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

/* Take everything queued on v (its ring, then its runnext) into batch,
 * which holds RUNQ_SIZE + 1. A thief's CAS: safe while v's owner runs. */
size_t mote__runq_drain(worker *v, mote__task **batch) {
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
    return n;
}
