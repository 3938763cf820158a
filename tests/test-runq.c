/*
 * test-runq.c -- the run queues on their own (src/sched/runq.c and the
 * inline ring operations of sched/internal.h), without a runtime: worker
 * rings made here, tasks that are plain structs. Order and wrap-around of
 * one ring, runnext, stealing half, draining, overflow of a full ring into
 * the global queue and back; then one owner pushing against several
 * threads that steal from it, from each other and from the global queue,
 * and a monitor that drains: every task is taken exactly once per round,
 * none is lost, and what the pusher wrote before pushing is what the taker
 * reads (the ring's memory ordering, checked under TSan).
 */
#include "helpers.h"

#include <sched.h>

#include "sched/internal.h"

/* A zeroed worker whose indices start at `start` (to cross 2^32). */
static worker *worker_new(uint32_t start) {
    worker *w = aligned_alloc(MOTE_CACHELINE, sizeof *w);
    cr_assert(w != NULL);
    memset(w, 0, sizeof *w);
    atomic_store(&w->head, start);
    atomic_store(&w->tail, start);
    return w;
}

static uint32_t ring_len(worker *w) {
    return atomic_load(&w->tail) - atomic_load(&w->head);
}

/* The global queue is the scheduler's one instance: empty it for the next
 * test (what mote__sched_stop does). */
static void global_reset(void) {
    free(mote__sched.gq.buf);
    mote__sched.gq.buf = NULL;
    mote__sched.gq.cap = mote__sched.gq.head = 0;
    atomic_store(&mote__sched.gq.size, 0);
}

Test(runq, fifo_across_index_wraparound) {
    enum { N = 200 };
    static mote__task t[N];
    worker *w = worker_new(UINT32_MAX - N / 2);
    cr_assert(!has_local_work(w));
    cr_assert(runq_pop(w) == NULL);
    for (int round = 0; round < 3; round++) { /* the indices cross 2^32 in round 0 */
        for (int i = 0; i < N; i++)
            runq_push(w, &t[i]);
        cr_assert_eq(ring_len(w), N);
        cr_assert(has_local_work(w));
        for (int i = 0; i < N; i++)
            cr_assert(runq_pop(w) == &t[i], "round %d: pop %d out of order", round, i);
        cr_assert(runq_pop(w) == NULL);
        cr_assert(!has_local_work(w));
    }
    cr_assert_eq(atomic_load(&mote__sched.gq.size), 0, "nothing overflowed");
    free(w);
}

Test(runq, runnext) {
    static mote__task a, b;
    worker *w = worker_new(0);
    cr_assert(take_runnext(w) == NULL);
    atomic_store(&w->runnext, &a);
    cr_assert(has_local_work(w), "runnext counts as local work");
    cr_assert(take_runnext(w) == &a);
    cr_assert(take_runnext(w) == NULL);
    /* A thief takes runnext only when asked to, and only from an empty ring. */
    worker *thief = worker_new(0);
    atomic_store(&w->runnext, &a);
    cr_assert(mote__runq_steal(thief, w, false) == NULL);
    runq_push(w, &b);
    cr_assert(mote__runq_steal(thief, w, true) == &b, "the ring before runnext");
    cr_assert(mote__runq_steal(thief, w, true) == &a);
    cr_assert(atomic_load(&w->runnext) == NULL);
    cr_assert(mote__runq_steal(thief, w, true) == NULL);
    cr_assert_eq(ring_len(thief), 0);
    free(thief);
    free(w);
}

Test(runq, steal_takes_half) {
    enum { N = 10 };
    static mote__task t[N];
    worker *v = worker_new(UINT32_MAX - 3), *w = worker_new(UINT32_MAX - 1);
    for (int i = 0; i < N; i++)
        runq_push(v, &t[i]);
    /* Half, rounded up: t[0..4]; the last of them is returned, the rest
     * queued on the thief in order. */
    cr_assert(mote__runq_steal(w, v, false) == &t[4]);
    cr_assert_eq(ring_len(w), 4);
    cr_assert_eq(ring_len(v), 5);
    for (int i = 0; i < 4; i++)
        cr_assert(runq_pop(w) == &t[i]);
    for (int i = 5; i < N; i++)
        cr_assert(runq_pop(v) == &t[i]);
    /* One left: the thief takes it. */
    runq_push(v, &t[0]);
    cr_assert(mote__runq_steal(w, v, false) == &t[0]);
    cr_assert_eq(ring_len(w), 0);
    cr_assert_eq(ring_len(v), 0);
    /* A thief with a nearly full ring takes only what fits. */
    for (uint32_t i = 0; i < RUNQ_SIZE - 2; i++)
        runq_push(w, &t[0]);
    for (int i = 0; i < N; i++)
        runq_push(v, &t[i]);
    cr_assert(mote__runq_steal(w, v, false) == &t[1], "room for two: t[0] queued, t[1] returned");
    cr_assert_eq(ring_len(w), RUNQ_SIZE - 1);
    cr_assert_eq(ring_len(v), N - 2);
    free(v);
    free(w);
}

Test(runq, drain_takes_all_then_runnext) {
    enum { N = 7 };
    static mote__task t[N + 1];
    mote__task *batch[RUNQ_SIZE + 1];
    worker *v = worker_new(UINT32_MAX - 2);
    cr_assert_eq(mote__runq_drain(v, batch), 0);
    for (int i = 0; i < N; i++)
        runq_push(v, &t[i]);
    atomic_store(&v->runnext, &t[N]);
    cr_assert_eq(mote__runq_drain(v, batch), N + 1);
    for (int i = 0; i <= N; i++)
        cr_assert(batch[i] == &t[i]);
    cr_assert(!has_local_work(v));
    /* A full ring drains whole: batch holds RUNQ_SIZE + 1. */
    for (uint32_t i = 0; i < RUNQ_SIZE; i++)
        runq_push(v, &t[i % N]);
    atomic_store(&v->runnext, &t[N]);
    cr_assert_eq(mote__runq_drain(v, batch), RUNQ_SIZE + 1);
    cr_assert(batch[RUNQ_SIZE] == &t[N]);
    free(v);
}

Test(runq, overflow_to_global_and_back) {
    enum { N = RUNQ_SIZE + 1 };
    static mote__task t[N];
    mote__sched.cfg.threads = 1;
    worker *w = worker_new(UINT32_MAX - RUNQ_SIZE / 2);
    for (int i = 0; i < N; i++)
        runq_push(w, &t[i]);
    /* The push that found the ring full moved its older half, then itself,
     * to the global queue. */
    cr_assert_eq(ring_len(w), RUNQ_SIZE / 2);
    cr_assert_eq(atomic_load(&mote__sched.gq.size), RUNQ_SIZE / 2 + 1);
    for (uint32_t i = RUNQ_SIZE / 2; i < RUNQ_SIZE; i++)
        cr_assert(runq_pop(w) == &t[i]);
    cr_assert(runq_pop(w) == NULL);
    /* One global_get with one worker takes everything: the first to run,
     * the rest onto the ring, in order. */
    cr_assert(global_get(w, RUNQ_SIZE) == &t[0]);
    cr_assert_eq(atomic_load(&mote__sched.gq.size), 0);
    for (uint32_t i = 1; i < RUNQ_SIZE / 2; i++)
        cr_assert(runq_pop(w) == &t[i]);
    cr_assert(runq_pop(w) == &t[RUNQ_SIZE]);
    cr_assert(global_get(w, RUNQ_SIZE) == NULL);
    global_reset();
    free(w);
}

/* The global queue's ring grows while its head is not at 0 (it wraps):
 * order is kept, and a get takes its share (size / threads + 1, at most
 * max). */
Test(runq, global_queue_grows_in_order) {
    enum { N = 5000 };
    static mote__task t[N];
    mote__sched.cfg.threads = 4;
    worker *w = worker_new(0);
    int next_in = 0, next_out = 0;
    while (next_out < N) {
        for (int k = 0; k < 700 && next_in < N; k++, next_in++) {
            mote__task *one = &t[next_in];
            mote__global_push(&one, 1);
        }
        size_t size = atomic_load(&mote__sched.gq.size);
        size_t want = size / 4 + 1;
        if (want > 100)
            want = 100;
        cr_assert(global_get(w, 100) == &t[next_out++]);
        for (size_t i = 1; i < want; i++)
            cr_assert(runq_pop(w) == &t[next_out++], "global order at %d", next_out - 1);
        cr_assert(runq_pop(w) == NULL, "took %zu of %zu", want, size);
    }
    cr_assert_eq(atomic_load(&mote__sched.gq.size), 0);
    cr_assert(mote__sched.gq.cap >= 1024);
    global_reset();
    free(w);
}

/* ---- Concurrent: one owner, several thieves, a monitor ---------------------------- */

enum { THIEVES = 3, ROUND_MAX = 2000 };

static struct {
    mote__task *tasks;
    _Atomic uint32_t *taken; /* per task: how many times it was taken */
    worker *owner;
    worker *thief[THIEVES];
    _Atomic uint32_t round;  /* current round, 1-based; 0 before the first */
    _Atomic uint64_t ntaken; /* takes over all rounds */
    _Atomic bool done;
    int ntasks, rounds;
} C;

/* A task taken by someone: it must be one of ours, pushed in this round,
 * and never taken before in this round. */
static void took(mote__task *t) {
    ptrdiff_t i = t - C.tasks;
    T_CHECK(i >= 0 && i < C.ntasks);
    if (i < 0 || i >= C.ntasks)
        return;
    uint32_t round = atomic_load(&C.round);
    T_CHECK_EQ(t->aux, round); /* written before the push: the ring publishes it */
    uint32_t before = atomic_fetch_add(&C.taken[i], 1);
    T_CHECK_EQ(before, round - 1); /* once per round: never twice, never lost */
    atomic_fetch_add(&C.ntaken, 1);
}

/* The owner: each round, pushes every task in bursts (some through
 * runnext, as enqueue does), popping now and then, and waits until all of
 * them have been taken by someone. */
static void *owner_main(void *arg) {
    (void)arg;
    worker *w = C.owner;
    uint32_t rnd = 12345;
    for (int r = 1; r <= C.rounds; r++) {
        uint64_t goal = (uint64_t)r * (uint64_t)C.ntasks;
        atomic_store(&C.round, (uint32_t)r);
        int i = 0;
        while (i < C.ntasks) {
            uint32_t burst = 1 + t_rand(&rnd) % (RUNQ_SIZE + RUNQ_SIZE / 2);
            for (; burst && i < C.ntasks; burst--, i++) {
                mote__task *t = &C.tasks[i];
                t->aux = (uint32_t)r; /* published by the push alone */
                if (t_rand(&rnd) % 8 == 0) {
                    t = atomic_exchange(&w->runnext, t);
                    if (!t)
                        continue;
                }
                runq_push(w, t); /* a full ring overflows to the global queue */
            }
            for (uint32_t k = t_rand(&rnd) % 64 < 4 ? 16 : 0; k; k--) {
                mote__task *t = take_runnext(w);
                if (!t)
                    t = runq_pop(w);
                if (t)
                    took(t);
            }
        }
        while (atomic_load(&C.ntaken) < goal) {
            mote__task *t = take_runnext(w);
            if (!t)
                t = runq_pop(w);
            if (t)
                took(t);
            else
                sched_yield();
        }
        T_CHECK_EQ(atomic_load(&C.ntaken), goal);
    }
    atomic_store(&C.done, true);
    return NULL;
}

/* A thief: steals half of a random ring (the owner's most often) into its
 * own, takes from the global queue, and runs what it queued itself. Like
 * the worker loop, it takes a batch from the global queue only with its
 * own ring empty (the batch goes onto the ring under the queue's lock:
 * the ring must not overflow back into it). */
static void *thief_main(void *arg) {
    int me = (int)(intptr_t)arg;
    worker *w = C.thief[me];
    uint32_t rnd = 777u * (uint32_t)(me + 1);
    while (!atomic_load(&C.done)) {
        mote__task *t;
        uint32_t pick = t_rand(&rnd) % (THIEVES + 2);
        worker *v = pick < THIEVES && (int)pick != me ? C.thief[pick] : C.owner;
        if ((t = mote__runq_steal(w, v, t_rand(&rnd) % 2)))
            took(t);
        if ((t = global_get(w, 1))) /* the fairness look */
            took(t);
        for (uint32_t k = t_rand(&rnd) % 64; k && (t = runq_pop(w)); k--)
            took(t);
        if (!t && !has_local_work(w) && (t = global_get(w, RUNQ_SIZE / 2)))
            took(t);
        if (!t)
            sched_yield();
    }
    return NULL;
}

/* The monitor: now and then takes everything queued on a worker, as it
 * does with a stalled one, and runs it. */
static void *monitor_main(void *arg) {
    (void)arg;
    mote__task *batch[RUNQ_SIZE + 1];
    uint32_t rnd = 99;
    while (!atomic_load(&C.done)) {
        uint32_t pick = t_rand(&rnd) % (THIEVES + 1);
        worker *v = pick < THIEVES ? C.thief[pick] : C.owner;
        size_t n = mote__runq_drain(v, batch);
        for (size_t i = 0; i < n; i++)
            took(batch[i]);
        for (int k = 0; k < 8; k++)
            sched_yield();
    }
    return NULL;
}

Test(runq, owner_against_thieves) {
    alarm(T_HANG_GUARD);
    C.ntasks = T_SCALE(2000, 1000);
    C.rounds = T_SCALE(ROUND_MAX, 400);
    C.tasks = calloc((size_t)C.ntasks, sizeof *C.tasks);
    C.taken = calloc((size_t)C.ntasks, sizeof *C.taken);
    cr_assert(C.tasks && C.taken);
    mote__sched.cfg.threads = THIEVES + 1;
    /* Indices near 2^32: every ring wraps during the run. */
    C.owner = worker_new(UINT32_MAX - 1000);
    for (int i = 0; i < THIEVES; i++)
        C.thief[i] = worker_new(UINT32_MAX - 100 * (uint32_t)i);
    pthread_t th[THIEVES + 2];
    for (int i = 0; i < THIEVES; i++)
        th[i] = t_thread(thief_main, (void *)(intptr_t)i);
    th[THIEVES] = t_thread(monitor_main, NULL);
    th[THIEVES + 1] = t_thread(owner_main, NULL);
    for (int i = 0; i < THIEVES + 2; i++)
        cr_assert(t_join(th[i]));
    t_assert_clean();
    uint64_t want = (uint64_t)C.rounds * (uint64_t)C.ntasks;
    cr_assert_eq(atomic_load(&C.ntaken), want);
    for (int i = 0; i < C.ntasks; i++)
        cr_assert_eq(atomic_load(&C.taken[i]), (uint32_t)C.rounds, "task %d", i);
    cr_assert(!has_local_work(C.owner));
    for (int i = 0; i < THIEVES; i++)
        cr_assert(!has_local_work(C.thief[i]));
    cr_assert_eq(atomic_load(&mote__sched.gq.size), 0);
    global_reset();
    for (int i = 0; i < THIEVES; i++)
        free(C.thief[i]);
    free(C.owner);
    free(C.tasks);
    free(C.taken);
}
