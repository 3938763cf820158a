/* Timers: mote_sleep, mote_timer futures, many sleepers. */
#include "helpers.h"

static const int64_t durations[] = {0, 1, MOTE_USEC(1), MOTE_USEC(100), MOTE_MSEC(1), MOTE_MSEC(5), MOTE_MSEC(20)};
#define N_DURATIONS (sizeof durations / sizeof durations[0])

/* Sleeps each duration; every one lasts at least what was asked. */
static void check_sleeps(void) {
    for (size_t i = 0; i < N_DURATIONS; i++) {
        int64_t t0 = mote_now();
        T_CHECK_EQ(mote_sleep(durations[i]), 0);
        int64_t took = mote_now() - t0;
        if (took < durations[i])
            t_fail(__FILE__, __LINE__, "slept %lld ns, asked %lld", (long long)took, (long long)durations[i]);
    }
}

static void fn_check_sleeps(void *arg) {
    mote_proc *report = *(mote_proc **)arg;
    check_sleeps();
    t_send_i64(report, 1);
    mote_proc_release(report);
}

static void *thread_check_sleeps(void *arg) {
    (void)arg;
    check_sleeps();
    return NULL;
}

static int main_sleep(void *arg) {
    (void)arg;
    check_sleeps(); /* the main process */
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_check_sleeps, &me, sizeof me), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    t_join(t_thread(thread_check_sleeps, NULL)); /* a foreign thread */
    return 0;
}

Test(timer, sleep_lasts_at_least_the_time_asked) { T_RUN_OK(NULL, main_sleep, NULL); }

Test(timer, sleep_outside_runtime_sleeps) {
    int64_t t0 = mote_now();
    cr_assert_eq(mote_sleep(MOTE_MSEC(2)), 0);
    cr_assert_geq(mote_now() - t0, MOTE_MSEC(2));
}

Test(timer, now_is_monotonic) {
    int64_t prev = mote_now();
    for (int i = 0; i < 100000; i++) {
        int64_t t = mote_now();
        cr_assert_geq(t, prev);
        prev = t;
    }
}

/* ---- mote_timer ------------------------------------------------------------------------ */

static int main_timer_await(void *arg) {
    (void)arg;
    enum { N = 10 };
    mote_future *fs[N];
    int64_t t0 = mote_now();
    for (int i = 0; i < N; i++)
        T_CHECK_EQ(mote_timer(&fs[i], MOTE_MSEC(i + 1)), 0);
    /* Await in reverse; each resolves with value 0, not before its time. */
    for (int i = N - 1; i >= 0; i--) {
        mote_result r = mote_error(-1);
        T_CHECK_EQ(mote_await(fs[i], &r), 0);
        T_CHECK_EQ(r.err, 0);
        T_CHECK_EQ(r.i, 0);
        T_CHECK(mote_now() - t0 >= MOTE_MSEC(i + 1));
    }
    /* A zero timer is ready at once. */
    mote_future *f = NULL;
    T_CHECK_EQ(mote_timer(&f, 0), 0);
    T_CHECK_EQ(mote_await_for(f, T_PATIENCE, NULL), 0);
    T_CHECK_EQ(mote_timer(NULL, MOTE_MSEC(1)), -EINVAL);
    return 0;
}

Test(timer, timer_future_resolves_after_its_time) { T_RUN_OK(NULL, main_timer_await, NULL); }

/* The seed's Timer: poll a timer together with results of calls. */
static int main_timer_poll(void *arg) {
    (void)arg;
    mote_proc *worker = t_spawn_counter(0);
    t_gate gate = {0};
    int64_t t0 = mote_now();
    mote_future *timer = NULL;
    T_CHECK_EQ(mote_timer(&timer, MOTE_MSEC(10)), 0);
    mote_future *call = t_async_gated(worker, &gate, 5);
    mote_future *futs[2] = {call, timer}, *ready[2];
    size_t n = 2;

    /* The call cannot finish: the timer comes first. */
    T_CHECK_EQ(mote_poll(futs, &n, ready, 2, T_PATIENCE), 1);
    T_CHECK(ready[0] == timer);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(10));
    T_CHECK_EQ(n, 1);
    T_CHECK(futs[0] == call);
    mote_result r = mote_error(-1);
    T_CHECK_EQ(mote_await(ready[0], &r), 0);
    T_CHECK_EQ(r.err, 0);
    T_CHECK_EQ(r.i, 0);

    /* Now the call finishes long before a 1 hour timer. */
    T_CHECK_EQ(mote_timer(&timer, MOTE_SEC(3600)), 0);
    futs[1] = timer;
    n = 2;
    t_gate_open(&gate);
    T_CHECK_EQ(mote_poll(futs, &n, ready, 2, T_PATIENCE), 1);
    T_CHECK(ready[0] == call);
    T_CHECK(futs[0] == timer);
    t_await_value(call, 5);
    /* A pending timer may simply be dropped. */
    T_CHECK(!mote_future_ready(timer));
    mote_future_drop(timer);

    /* Timer as a timeout for a call: await_for alternative via poll. */
    mote_future *t2 = NULL;
    T_CHECK_EQ(mote_timer(&t2, MOTE_MSEC(1)), 0);
    mote_future *quick = t_async_echo(worker, 6);
    mote_future *fs2[2] = {t2, quick};
    int64_t sum = 0;
    T_CHECK_EQ(t_poll_drain(fs2, 2, &sum), 2);
    T_CHECK_EQ(sum, 0 + 6); /* the timer's 0 and the call's 6 */
    mote_proc_release(worker);
    return 0;
}

Test(timer, timer_polled_with_call_futures) { T_RUN_OK(NULL, main_timer_poll, NULL); }

/* Timers pending at shutdown are freed by it. */
static int main_timers_at_shutdown(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        mote_future *f = NULL;
        T_CHECK_EQ(mote_timer(&f, MOTE_SEC(3600) + i), 0);
        if (i % 2)
            mote_future_drop(f);
    }
    return 0;
}

Test(timer, pending_timers_freed_at_shutdown) { T_RUN_OK(NULL, main_timers_at_shutdown, NULL); }

/* ---- Many sleepers ------------------------------------------------------------------------ */

typedef struct sleeper {
    mote_proc *report;
    int64_t ns;
} sleeper;

static void fn_sleeper(void *arg) {
    sleeper *s = arg;
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_sleep(s->ns), 0);
    int64_t took = mote_now() - t0;
    if (took < s->ns)
        t_fail(__FILE__, __LINE__, "slept %lld ns, asked %lld", (long long)took, (long long)s->ns);
    t_send_i64(s->report, s->ns);
    mote_proc_release(s->report);
}

static int main_many_sleepers(void *arg) {
    (void)arg;
    int n = T_SCALE(5000, 1000);
    int64_t want = 0;
    for (int i = 0; i < n; i++) {
        sleeper s = {mote_proc_ref(mote_self()), MOTE_USEC(100) * (i % 97) + (i % 13)};
        want += s.ns;
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_sleeper, &s, sizeof s), 0);
    }
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += t_recv_i64();
    T_CHECK_EQ(sum, want);
    return 0;
}

Test(timer, many_concurrent_sleepers_all_wake) { T_RUN_OK(NULL, main_many_sleepers, NULL); }

/* ---- Sleep suspends only the process ------------------------------------------------------- */

static atomic_int flag;

static mote_result h_wait_flag(void *state, void *arg) {
    (void)state;
    (void)arg;
    int64_t loops = 0;
    while (!atomic_load(&flag)) {
        mote_sleep(MOTE_USEC(200));
        loops++;
    }
    return mote_ok_i(loops);
}

static mote_result h_set_flag(void *state, void *arg) {
    (void)state;
    (void)arg;
    atomic_store(&flag, 1);
    return mote_ok_i(1);
}

static int main_sleep_suspends(void *arg) {
    (void)arg;
    /* With one worker thread, the sleeper must give the thread up while it
     * sleeps, or the setter never runs. */
    mote_proc *a = t_spawn_counter(0), *b = t_spawn_counter(0);
    mote_future *fa = NULL, *fb = NULL;
    T_CHECK_EQ(mote_async(a, h_wait_flag, NULL, 0, &fa), 0);
    mote_sleep(MOTE_MSEC(1));
    T_CHECK_EQ(mote_async(b, h_set_flag, NULL, 0, &fb), 0);
    mote_result r;
    T_CHECK_EQ(mote_await_for(fb, T_PATIENCE, &r), 0);
    T_CHECK_EQ(mote_await_for(fa, T_PATIENCE, &r), 0);
    mote_proc_release(a);
    mote_proc_release(b);
    return 0;
}

Test(timer, sleep_suspends_only_the_process) {
    mote_config cfg = {.threads = 1};
    T_RUN_OK(&cfg, main_sleep_suspends, NULL);
}
