/* Scheduling: processes spread over workers, yield fairness, message budget. */
#include "helpers.h"

/* ---- Spreading over workers ------------------------------------------------------------ */

/* k processes that each spin, without any mote call, until all k are
 * running: only possible if k workers run them at the same time. */
typedef struct rendezvous {
    atomic_int arrived;
    int k;
    pthread_t threads[8];
} rendezvous;

static mote_result h_rendezvous(void *state, void *arg) {
    (void)state;
    rendezvous *rv = *(rendezvous **)arg;
    int me = atomic_fetch_add(&rv->arrived, 1);
    if (me < 8)
        rv->threads[me] = pthread_self();
    int64_t deadline = mote_now() + T_PATIENCE;
    while (atomic_load(&rv->arrived) < rv->k) {
        if (mote_now() > deadline) {
            t_fail(__FILE__, __LINE__, "only %d of %d processes ran at once", atomic_load(&rv->arrived), rv->k);
            break;
        }
    }
    return mote_ok_i(me);
}

static int main_rendezvous(void *arg) {
    int k = *(int *)arg;
    rendezvous rv = {.k = k};
    rendezvous *where = &rv;
    mote_proc *ps[8];
    mote_future *fs[8];
    for (int i = 0; i < k; i++) {
        ps[i] = t_spawn_counter(0);
        T_CHECK_EQ(mote_async(ps[i], h_rendezvous, &where, sizeof where, &fs[i]), 0);
    }
    for (int i = 0; i < k; i++) {
        T_CHECK_EQ(mote_await(fs[i], NULL), 0);
        mote_proc_release(ps[i]);
    }
    for (int i = 0; i < k; i++)
        for (int j = 0; j < i; j++)
            T_CHECK(!pthread_equal(rv.threads[i], rv.threads[j]));
    return 0;
}

Test(sched, processes_run_in_parallel_on_workers) {
    /* The machine may have only 2 cores: the OS time-slices the workers. */
    for (unsigned threads = 2; threads <= 4; threads++) {
        mote_config cfg = {.threads = threads};
        int k = (int)threads;
        T_RUN_OK(&cfg, main_rendezvous, &k);
    }
}

/* Many processes spawned from one place end up on more than one thread. */
static atomic_int distinct_lock;
static pthread_t seen_threads[64];
static atomic_int n_seen;

static void note_thread(void) {
    pthread_t me = pthread_self();
    while (atomic_exchange(&distinct_lock, 1))
        ;
    int n = atomic_load(&n_seen);
    bool found = false;
    for (int i = 0; i < n; i++)
        found |= pthread_equal(seen_threads[i], me) != 0;
    if (!found && n < 64) {
        seen_threads[n] = me;
        atomic_store(&n_seen, n + 1);
    }
    atomic_store(&distinct_lock, 0);
}

static mote_result h_work(void *state, void *arg) {
    (void)arg;
    note_thread();
    /* Some work that keeps the process busy without suspending. */
    int64_t *s = state;
    int64_t deadline = mote_now() + MOTE_USEC(200);
    while (mote_now() < deadline)
        (*s)++;
    note_thread();
    return mote_ok_i(0);
}

static int main_spread(void *arg) {
    (void)arg;
    enum { N = 400 };
    mote_proc *ps[N];
    mote_future *fs[N];
    for (int i = 0; i < N; i++) {
        ps[i] = t_spawn_counter(0);
        T_CHECK_EQ(mote_async(ps[i], h_work, NULL, 0, &fs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        T_CHECK_EQ(mote_await(fs[i], NULL), 0);
        mote_proc_release(ps[i]);
    }
    return 0;
}

Test(sched, many_processes_spread_over_workers) {
    mote_config cfg = {.threads = 4};
    T_RUN_OK(&cfg, main_spread, NULL);
    cr_assert_geq(atomic_load(&n_seen), 2, "all 400 busy processes ran on one thread");
}

/* ---- mote_yield fairness ------------------------------------------------------------------ */

typedef struct fairness {
    atomic_int stop;
    atomic_llong count[3];
    int64_t target;
} fairness;

static void fn_yielder(void *arg) {
    fairness *f = *(fairness **)arg;
    while (!atomic_load(&f->stop)) {
        atomic_fetch_add(&f->count[0], 1);
        mote_yield();
    }
}

static void fn_yielder2(void *arg) {
    fairness *f = *(fairness **)arg;
    while (!atomic_load(&f->stop)) {
        atomic_fetch_add(&f->count[1], 1);
        mote_yield();
    }
}

typedef struct third_arg {
    fairness *f;
    mote_proc *report;
} third_arg;

static void fn_third(void *arg) {
    third_arg *a = arg;
    /* Mixes yields with sleeps and sends: it must get its turns too. */
    for (int64_t i = 0; i < a->f->target; i++) {
        atomic_fetch_add(&a->f->count[2], 1);
        if (i % 100 == 0)
            mote_sleep(MOTE_USEC(10));
        else
            mote_yield();
    }
    t_send_i64(a->report, 1);
    mote_proc_release(a->report);
}

/* Static: the yielders may still read it while the runtime shuts down. */
static fairness f;

static int main_fairness(void *arg) {
    bool one_thread = arg != NULL;
    f.target = T_SCALE(5000, 1000);
    fairness *where = &f;
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_yielder, &where, sizeof where), 0);
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_yielder2, &where, sizeof where), 0);
    /* Wait until both yielders are running before starting the third. */
    int64_t deadline = mote_now() + T_PATIENCE;
    while ((atomic_load(&f.count[0]) == 0 || atomic_load(&f.count[1]) == 0) && mote_now() < deadline)
        mote_sleep(MOTE_USEC(100));
    third_arg ta = {&f, mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_third, &ta, sizeof ta), 0);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    mote_msg_free(m);
    long long c0 = atomic_load(&f.count[0]), c1 = atomic_load(&f.count[1]);
    T_CHECK_EQ(atomic_load(&f.count[2]), f.target);
    if (one_thread) {
        /* The three took turns on the one worker: each yielder had a fair
         * share while the third did its work. */
        T_CHECK(c0 >= f.target / 10);
        T_CHECK(c1 >= f.target / 10);
    } else {
        /* On two workers the OS may hold one worker off its CPU for the
         * whole of the third's run (a few ms): how much each yielder got
         * meanwhile is up to the OS. What the scheduler owes is that
         * neither is starved: each still runs (stolen by the other worker
         * if need be). */
        int64_t until = mote_now() + T_PATIENCE;
        while ((atomic_load(&f.count[0]) <= c0 || atomic_load(&f.count[1]) <= c1) && mote_now() < until)
            mote_sleep(MOTE_MSEC(1));
        T_CHECK(atomic_load(&f.count[0]) > c0);
        T_CHECK(atomic_load(&f.count[1]) > c1);
    }
    atomic_store(&f.stop, 1);
    return 0;
}

Test(sched, yield_lets_everyone_progress_on_one_thread) {
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_fairness, &cfg);
}

Test(sched, yield_lets_everyone_progress_on_two_threads) {
    mote_config cfg = {.threads = 2};
    T_RUN_OK(&cfg, main_fairness, NULL);
}

/* ---- Message budget --------------------------------------------------------------------------- */

static atomic_int flood_stop;
static atomic_llong flood_count;

static mote_result h_flood(void *state, void *arg) {
    (void)state;
    (void)arg;
    atomic_fetch_add(&flood_count, 1);
    if (!atomic_load(&flood_stop))
        T_CHECK_EQ(mote_cast(mote_self(), h_flood, NULL, 0), 0);
    return mote_ok_i(0);
}

static int main_budget(void *arg) {
    (void)arg;
    /* Two flooders: each handler casts itself the next message forever. */
    mote_proc *flood1 = t_spawn_counter(0), *flood2 = t_spawn_counter(0);
    T_CHECK_EQ(mote_cast(flood1, h_flood, NULL, 0), 0);
    T_CHECK_EQ(mote_cast(flood2, h_flood, NULL, 0), 0);
    int64_t deadline = mote_now() + T_PATIENCE;
    while (atomic_load(&flood_count) < 1000 && mote_now() < deadline)
        mote_sleep(MOTE_USEC(100));
    /* Other processes still get the thread: calls, async futures and a
     * sleeper all complete. */
    mote_proc *other = t_spawn_counter(0);
    for (int i = 0; i < 50; i++) {
        int64_t one = 1;
        mote_future *f = NULL;
        T_CHECK_EQ(mote_async(other, t_h_add, &one, sizeof one, &f), 0);
        mote_result r;
        int rc = mote_await_for(f, T_PATIENCE, &r);
        T_CHECK_EQ(rc, 0);
        if (rc != 0) {
            mote_future_drop(f);
            break;
        }
        T_CHECK_EQ(r.i, i + 1);
    }
    T_CHECK_EQ(mote_sleep(MOTE_MSEC(1)), 0);
    /* ... and the flooders themselves keep going. */
    long long before = atomic_load(&flood_count);
    deadline = mote_now() + T_PATIENCE;
    while (atomic_load(&flood_count) < before + 100 && mote_now() < deadline)
        mote_sleep(MOTE_USEC(100));
    T_CHECK(atomic_load(&flood_count) >= before + 100);
    atomic_store(&flood_stop, 1);
    mote_proc_release(flood1);
    mote_proc_release(flood2);
    mote_proc_release(other);
    return 0;
}

Test(sched, self_sending_process_does_not_starve_others) {
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_budget, NULL);
}

Test(sched, small_msg_budget_from_config) {
    mote_config cfg = {.threads = 1, .msg_budget = 1};
    T_RUN_OK(&cfg, main_budget, NULL);
}

Test(sched, msg_budget_from_env) {
    setenv("MOTE_MSG_BUDGET", "3", 1);
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_budget, NULL);
}

/* A process that never suspends in a long message (but yields) does not
 * keep a sleeper from waking on a single thread. */
static mote_result h_spin_yield(void *state, void *arg) {
    (void)state;
    (void)arg;
    while (!atomic_load(&flood_stop))
        mote_yield();
    return mote_ok_i(0);
}

static void fn_sleeper(void *arg) {
    mote_proc *report = *(mote_proc **)arg;
    for (int i = 0; i < 20; i++)
        mote_sleep(MOTE_USEC(500));
    t_send_i64(report, 1);
    mote_proc_release(report);
}

static int main_timers_vs_yielder(void *arg) {
    (void)arg;
    mote_proc *spinner = t_spawn_counter(0);
    T_CHECK_EQ(mote_cast(spinner, h_spin_yield, NULL, 0), 0);
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_sleeper, &me, sizeof me), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    atomic_store(&flood_stop, 1);
    mote_proc_release(spinner);
    return 0;
}

Test(sched, timers_fire_while_a_process_yields_forever) {
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_timers_vs_yielder, NULL);
}
