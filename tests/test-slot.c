/*
 * test-slot.c -- single-waiter slots, driven directly (proc/future.h,
 * io/internal.h).
 *
 * The bare slot (mote__slot), without a runtime: a foreign-thread waiter
 * registers, then leaves on its own, sleeps until woken, or leaves as soon
 * as it sees the event, while a source wakes it. Each round exactly one of
 * them wins: the waiter says it was woken exactly when the source says it
 * woke it, with one event; and the waiter's memory is scribbled over once
 * it left, so a source touching it late corrupts it (TSan: a race).
 *
 * The descriptor slots (0 / READY / waiter / BUSY), under a runtime, with
 * this test playing the poller (mote__pd_signal) on a pipe nobody writes:
 * readiness with nobody waiting sticks as READY (once, not counted) and
 * the next wait consumes it; a second waiter on a direction gets -EBUSY and
 * leaves the first one registered; closing wakes a waiter with -EBADF; a
 * signal racing a waiter that just consumed the last one is never lost;
 * a cancel racing a waiter always ends the wait.
 */
#include "helpers.h"

#include <fcntl.h>
#include <sched.h>

#include "io/internal.h"

static void spin(uint32_t n) {
    for (volatile uint32_t i = 0; i < n; i++)
        ;
}

/* ---- The bare slot --------------------------------------------------------------- */

#define AFTER_TAG ((uintptr_t)2) /* what the source leaves in the slot (a future's DONE) */

static struct {
    mote__slot slot;
    _Atomic uint32_t registered; /* round the waiter registered in */
    _Atomic uint32_t source_done; /* round the source finished */
    _Atomic bool source_woke;     /* its wake succeeded, in that round */
    uint32_t rounds;
} B;

/* Rounds by r % 3: the waiter leaves after a moment (maybe before the
 * source comes); it sleeps until woken; it watches for the event and
 * leaves at once, while the source is still in its wake (the window where
 * leaving must spin past BUSY). */
enum { LEAVE = 0, SLEEP = 1, WATCH = 2 };

static void waiter_round(uint32_t r, uint32_t *rnd) {
    mote__waiter w;
    mote__waiter_init(&w);
    T_CHECK(w.task == NULL); /* a foreign thread: it sleeps on its futex */
    atomic_store(&B.slot, (uintptr_t)&w);
    atomic_store(&B.registered, r);
    if (r % 3 == SLEEP)
        mote__waiter_wait(&w, -1);
    else if (r % 3 == WATCH) {
        for (unsigned i = 1; !atomic_load(&w.events); i++)
            if (i % 4096 == 0)
                sched_yield(); /* the source may be waiting for a CPU */
    } else
        spin(t_rand(rnd) % 2000);
    bool woken = mote__slot_leave(&B.slot, &w);
    uint32_t events = atomic_load(&w.events);
    uintptr_t left = atomic_load(&B.slot);
    memset((void *)&w, 0xa5, sizeof w); /* a late touch by the source races this */
    while (atomic_load(&B.source_done) != r)
        sched_yield();
    bool source_woke = atomic_load(&B.source_woke);
    T_CHECK_EQ(woken, source_woke);
    T_CHECK_EQ(events, woken ? 1 : 0);
    T_CHECK_EQ(left, woken ? AFTER_TAG : 0);
    if (r % 3 != LEAVE)
        T_CHECK(woken); /* it waited until it was */
}

static void *slot_waiter_main(void *arg) {
    (void)arg;
    uint32_t rnd = 4242;
    for (uint32_t r = 1; r <= B.rounds; r++)
        waiter_round(r, &rnd);
    return NULL;
}

static void *slot_source_main(void *arg) {
    (void)arg;
    uint32_t rnd = 99991;
    for (uint32_t r = 1; r <= B.rounds; r++) {
        while (atomic_load(&B.registered) != r)
            sched_yield();
        if (r % 3 == LEAVE)
            spin(t_rand(&rnd) % 2000);
        bool woke = mote__slot_wake(&B.slot, AFTER_TAG, 0);
        if (r % 3 != LEAVE && !woke) /* the waiter stays until woken: it must be there */
            T_CHECK(woke);
        atomic_store(&B.source_woke, woke);
        atomic_store(&B.source_done, r);
    }
    return NULL;
}

Test(slot, wake_or_leave_exactly_one_wins) {
    alarm(T_HANG_GUARD);
    B.rounds = T_SCALE(20000, 4000);
    pthread_t a = t_thread(slot_waiter_main, NULL), b = t_thread(slot_source_main, NULL);
    cr_assert(t_join(a));
    cr_assert(t_join(b));
    t_assert_clean();
}

/* A tag is not a waiter: a source leaves it alone. */
Test(slot, tags_are_not_waiters) {
    mote__slot s;
    for (uintptr_t tag = 0; tag < MOTE__SLOT_TAGS; tag++) {
        atomic_init(&s, tag);
        cr_assert(!mote__slot_holds_waiter(tag));
        cr_assert(!mote__slot_wake(&s, 0, 0));
        cr_assert_eq(atomic_load(&s), tag);
    }
    mote__waiter w;
    mote__waiter_init(&w);
    cr_assert(mote__slot_holds_waiter((uintptr_t)&w));
    atomic_init(&s, (uintptr_t)&w);
    cr_assert(!mote__slot_leave(&s, &w), "still registered: nobody woke it");
    cr_assert_eq(atomic_load(&s), 0);
    cr_assert_eq(atomic_load(&w.events), 0);
}

/* ---- Descriptor slots ------------------------------------------------------------ */

/* A pipe whose read end has a registered poll descriptor; nobody writes
 * to it, so only this test signals readiness. */
typedef struct fdx {
    int fds[2];
    mote__pdesc *pd;
} fdx;

static void fdx_open(fdx *x) {
    T_CHECK_EQ(pipe2(x->fds, O_NONBLOCK | O_CLOEXEC), 0);
    /* A wait that does not wait registers the descriptor. */
    T_CHECK_EQ(mote_fd_wait(x->fds[0], MOTE_READABLE, 0), -ETIMEDOUT);
    x->pd = mote__pd_get(x->fds[0], false);
    T_CHECK(x->pd != NULL);
}

static void fdx_close(fdx *x) {
    if (x->fds[0] >= 0)
        T_CHECK_EQ(mote_fd_close(x->fds[0]), 0);
    close(x->fds[1]);
}

static uintptr_t slot_of(fdx *x, int d) {
    return atomic_load(&x->pd->slot[d]);
}

/* Wait (suspending only the caller) until a waiter holds x's slot d. */
static bool until_enlisted(fdx *x, int d) {
    int64_t deadline = mote_now() + T_PATIENCE;
    while (!mote__slot_holds_waiter(slot_of(x, d))) {
        if (mote_now() > deadline) {
            T_CHECK(!"no waiter enlisted");
            return false;
        }
        mote_sleep(MOTE_USEC(100));
    }
    return true;
}

static int main_ready_is_sticky(void *arg) {
    (void)arg;
    fdx x;
    fdx_open(&x);
    T_CHECK_EQ(slot_of(&x, 0), 0);
    T_CHECK_EQ(slot_of(&x, 1), 0);
    mote__pd_signal(x.pd, 0, false); /* a close's wake-up is not kept */
    T_CHECK_EQ(slot_of(&x, 0), 0);
    mote__pd_signal(x.pd, 0, true);
    T_CHECK_EQ(slot_of(&x, 0), MOTE__PD_READY);
    mote__pd_signal(x.pd, 0, true); /* readiness is a state, not a count */
    T_CHECK_EQ(slot_of(&x, 0), MOTE__PD_READY);
    T_CHECK_EQ(slot_of(&x, 1), 0);
    T_CHECK_EQ(mote_fd_wait(x.fds[0], MOTE_READABLE, T_PATIENCE), MOTE_READABLE);
    T_CHECK_EQ(slot_of(&x, 0), 0);
    /* Consumed: the pipe itself is empty. */
    T_CHECK_EQ(mote_fd_wait(x.fds[0], MOTE_READABLE, 0), -ETIMEDOUT);
    /* The directions are independent. */
    mote__pd_signal(x.pd, 1, true);
    T_CHECK_EQ(slot_of(&x, 1), MOTE__PD_READY);
    T_CHECK_EQ(mote_fd_wait(x.fds[0], MOTE_READABLE | MOTE_WRITABLE, T_PATIENCE), MOTE_WRITABLE);
    T_CHECK_EQ(slot_of(&x, 0), 0);
    T_CHECK_EQ(slot_of(&x, 1), 0);
    fdx_close(&x);
    return 0;
}

Test(slot, fd_ready_is_sticky) {
    T_RUN_OK(NULL, main_ready_is_sticky, NULL);
}

/* A first waiter on the read side, as a foreign thread or a process. */
typedef struct first_arg {
    fdx *x;
    int events;
    _Atomic int result;
    _Atomic int done;
} first_arg;

static void first_wait(first_arg *a) {
    atomic_store(&a->result, mote_fd_wait(a->x->fds[0], a->events, T_PATIENCE));
    atomic_store(&a->done, 1);
}

static void *first_thread(void *arg) {
    first_wait(arg);
    return NULL;
}

static void first_proc(void *arg) {
    first_wait(*(first_arg **)arg);
}

/* Start the first waiter; returns once it holds the read slot. */
static pthread_t first_start(first_arg *a, bool as_thread) {
    pthread_t t = 0;
    if (as_thread)
        t = t_thread(first_thread, a);
    else
        T_CHECK_EQ(mote_spawn_fn(NULL, first_proc, &a, sizeof a), 0);
    until_enlisted(a->x, 0);
    return t;
}

static void first_finish(first_arg *a, pthread_t t, bool as_thread) {
    if (as_thread)
        t_join(t);
    else
        t_wait_at_least(&a->done, 1);
}

static void *second_thread(void *arg) {
    fdx *x = arg;
    T_CHECK_EQ(mote_fd_wait(x->fds[0], MOTE_READABLE, T_PATIENCE), -EBUSY);
    return NULL;
}

static int main_second_waiter_busy(void *arg) {
    bool as_thread = arg != NULL;
    fdx x;
    fdx_open(&x);
    first_arg a = {.x = &x, .events = MOTE_READABLE};
    pthread_t t = first_start(&a, as_thread);
    uintptr_t first = slot_of(&x, 0);
    /* A second waiter, a process and then a foreign thread, is turned away
     * at once, and the first stays registered. */
    T_CHECK_EQ(mote_fd_wait(x.fds[0], MOTE_READABLE, T_PATIENCE), -EBUSY);
    t_join(t_thread(second_thread, &x));
    T_CHECK_EQ(slot_of(&x, 0), first);
    /* Both directions asked for: the free one was entered and left again. */
    T_CHECK_EQ(mote_fd_wait(x.fds[0], MOTE_READABLE | MOTE_WRITABLE, T_PATIENCE), -EBUSY);
    T_CHECK_EQ(slot_of(&x, 1), 0);
    T_CHECK_EQ(slot_of(&x, 0), first);
    T_CHECK_EQ(atomic_load(&a.done), 0);
    mote__pd_signal(x.pd, 0, true); /* the poller's readiness goes to the first */
    first_finish(&a, t, as_thread);
    T_CHECK_EQ(atomic_load(&a.result), MOTE_READABLE);
    T_CHECK_EQ(slot_of(&x, 0), 0); /* consumed by the wake, not kept */
    fdx_close(&x);
    return 0;
}

Test(slot, fd_second_waiter_busy_thread) {
    T_RUN_OK(NULL, main_second_waiter_busy, (void *)1);
}

Test(slot, fd_second_waiter_busy_process) {
    T_RUN_OK(NULL, main_second_waiter_busy, NULL);
}

static int main_close_wakes(void *arg) {
    bool as_thread = arg != NULL;
    for (int events = MOTE_READABLE; events <= (MOTE_READABLE | MOTE_WRITABLE); events += 2) {
        fdx x;
        fdx_open(&x);
        first_arg a = {.x = &x, .events = events};
        pthread_t t = first_start(&a, as_thread);
        if (events & MOTE_WRITABLE)
            until_enlisted(&x, 1);
        T_CHECK_EQ(mote_fd_close(x.fds[0]), 0);
        x.fds[0] = -1;
        first_finish(&a, t, as_thread);
        T_CHECK_EQ(atomic_load(&a.result), -EBADF);
        T_CHECK_EQ(slot_of(&x, 0), 0);
        T_CHECK_EQ(slot_of(&x, 1), 0);
        fdx_close(&x);
    }
    return 0;
}

Test(slot, fd_close_wakes_waiter_thread) {
    T_RUN_OK(NULL, main_close_wakes, (void *)1);
}

Test(slot, fd_close_wakes_waiter_process) {
    T_RUN_OK(NULL, main_close_wakes, NULL);
}

/* ---- Races ------------------------------------------------------------------ */

/* One signal per round, sent as soon as the waiter's last wait returned,
 * so it often lands while the waiter is between consuming and enlisting:
 * READY must keep it. A lost one ends that wait with -ETIMEDOUT. A
 * bystander meanwhile checks that the slot only ever holds one of its
 * four kinds of value. */
typedef struct race {
    fdx *x;
    int rounds;
    _Atomic int waited; /* waits returned */
    _Atomic bool stop;
} race;

static void race_wait(race *r) {
    for (int i = 0; i < r->rounds; i++) {
        int got = mote_fd_wait(r->x->fds[0], MOTE_READABLE, T_PATIENCE);
        if (got != MOTE_READABLE) {
            T_CHECK_EQ(got, MOTE_READABLE);
            break;
        }
        atomic_fetch_add(&r->waited, 1);
    }
}

static void *race_wait_thread(void *arg) {
    race_wait(arg);
    return NULL;
}

static void race_wait_proc(void *arg) {
    race_wait(*(race **)arg);
}

static void *race_signal_thread(void *arg) {
    race *r = arg;
    for (int i = 0; i < r->rounds; i++) {
        mote__pd_signal(r->x->pd, 0, true);
        int64_t deadline = mote_now() + T_PATIENCE;
        while (atomic_load(&r->waited) <= i && mote_now() < deadline)
            sched_yield();
        if (atomic_load(&r->waited) <= i)
            break; /* the waiter failed; it says so */
    }
    return NULL;
}

static void *race_bystander(void *arg) {
    race *r = arg;
    while (!atomic_load(&r->stop)) {
        uintptr_t v = slot_of(r->x, 0);
        T_CHECK(v == 0 || v == MOTE__PD_READY || v == MOTE__SLOT_BUSY ||
                (mote__slot_holds_waiter(v) && v % _Alignof(mote__waiter) == 0));
        T_CHECK_EQ(slot_of(r->x, 1), 0);
        sched_yield();
    }
    return NULL;
}

static int main_signal_races_waiter(void *arg) {
    bool waiter_is_thread = arg != NULL;
    fdx x;
    fdx_open(&x);
    race r = {.x = &x, .rounds = T_SCALE(20000, 3000)};
    pthread_t by = t_thread(race_bystander, &r), sig = t_thread(race_signal_thread, &r), w = 0;
    if (waiter_is_thread) {
        w = t_thread(race_wait_thread, &r);
        t_join(w);
    } else {
        race *rp = &r;
        T_CHECK_EQ(mote_spawn_fn(NULL, race_wait_proc, &rp, sizeof rp), 0);
        t_wait_at_least(&r.waited, r.rounds);
    }
    t_join(sig);
    atomic_store(&r.stop, true);
    t_join(by);
    T_CHECK_EQ(atomic_load(&r.waited), r.rounds);
    T_CHECK_EQ(slot_of(&x, 0), 0); /* every signal was consumed by a wait */
    fdx_close(&x);
    return 0;
}

Test(slot, fd_signal_races_waiter_thread) {
    T_RUN_OK(NULL, main_signal_races_waiter, (void *)1);
}

Test(slot, fd_signal_races_waiter_process) {
    T_RUN_OK(NULL, main_signal_races_waiter, NULL);
}

/* A canceller sets the flag and aborts the descriptor at a random moment
 * of the waiter's wait (or before it began): the waiter always ends with
 * -EBADF (it enlists, then looks at the flag), and leaves the slot empty. */
typedef struct cancel_race {
    fdx *x;
    int rounds;
    _Atomic bool cancelled;
    _Atomic int go;       /* round the waiter may start (the flag is reset) */
    _Atomic int finished; /* round the waiter finished */
} cancel_race;

static void *cancel_waiter(void *arg) {
    cancel_race *c = arg;
    for (int i = 1; i <= c->rounds; i++) {
        while (atomic_load(&c->go) != i)
            sched_yield();
        int got = mote__fd_wait_until(c->x->fds[0], MOTE_READABLE, mote_now() + T_PATIENCE, &c->cancelled);
        T_CHECK_EQ(got, -EBADF);
        atomic_store(&c->finished, i);
        if (got != -EBADF)
            break;
    }
    return NULL;
}

static int main_cancel_races_waiter(void *arg) {
    (void)arg;
    fdx x;
    fdx_open(&x);
    cancel_race c = {.x = &x, .rounds = T_SCALE(5000, 1000)};
    pthread_t w = t_thread(cancel_waiter, &c);
    uint32_t rnd = 31337;
    for (int i = 1; i <= c.rounds; i++) {
        atomic_store(&c.go, i);
        spin(t_rand(&rnd) % 20000);
        atomic_store(&c.cancelled, true);
        mote__fd_abort(x.fds[0]);
        int64_t deadline = mote_now() + T_PATIENCE;
        while (atomic_load(&c.finished) != i && mote_now() < deadline)
            sched_yield();
        if (atomic_load(&c.finished) != i)
            break; /* the waiter failed; it says so */
        T_CHECK_EQ(slot_of(&x, 0), 0);
        atomic_store(&c.cancelled, false);
    }
    t_join(w);
    fdx_close(&x);
    return 0;
}

Test(slot, fd_cancel_races_waiter) {
    T_RUN_OK(NULL, main_cancel_races_waiter, NULL);
}
