/* Futures: call, async/await, await_for, poll, drop, foreign threads. */
#include "helpers.h"

static mote_result h_fail(void *state, void *arg) {
    (void)state;
    int64_t e;
    memcpy(&e, arg, sizeof e);
    return mote_error((int)e);
}

static int main_call(void *arg) {
    (void)arg;
    mote_proc *p = t_spawn_counter(5);
    mote_result r = mote_error(-1);
    int64_t d = 37;
    T_CHECK_EQ(mote_call(p, t_h_add, &d, sizeof d, &r), 0);
    T_CHECK_EQ(r.err, 0);
    T_CHECK_EQ(r.i, 42);

    int64_t e = -ENOENT;
    r = mote_ok_i(99);
    T_CHECK_EQ(mote_call(p, h_fail, &e, sizeof e, &r), 0);
    T_CHECK_EQ(r.err, -ENOENT);

    /* out may be NULL. */
    T_CHECK_EQ(mote_call(p, t_h_add, &d, sizeof d, NULL), 0);
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 79);
    mote_proc_release(p);
    return 0;
}

Test(future, call_returns_value_and_error) { T_RUN_OK(NULL, main_call, NULL); }

/* ---- mote_call to oneself ------------------------------------------------------ */

static mote_result h_call_self(void *state, void *arg) {
    (void)state;
    (void)arg;
    mote_result r;
    int rc = mote_call(mote_self(), t_h_get, NULL, 0, &r);
    return mote_ok_i(rc);
}

static void fn_call_self(void *arg) {
    mote_proc *report = *(mote_proc **)arg;
    mote_result r;
    t_send_i64(report, mote_call(mote_self(), t_h_get, NULL, 0, &r));
    mote_proc_release(report);
}

static int main_call_self(void *arg) {
    (void)arg;
    mote_result r;
    /* From the main process. */
    T_CHECK_EQ(mote_call(mote_self(), t_h_get, NULL, 0, &r), -EDEADLK);
    /* From a handler of a state process. */
    mote_proc *p = t_spawn_counter(0);
    T_CHECK_EQ(mote_call(p, h_call_self, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, -EDEADLK);
    /* The process is still fine afterwards. */
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 0);
    mote_proc_release(p);
    /* From an Erlang-style process. */
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_call_self, &me, sizeof me), 0);
    T_CHECK_EQ(t_recv_i64(), -EDEADLK);
    return 0;
}

Test(future, call_to_self_is_edeadlk) { T_RUN_OK(NULL, main_call_self, NULL); }

/* ---- async / await ----------------------------------------------------------------- */

static int main_await(void *arg) {
    (void)arg;
    enum { N = 100 };
    mote_proc *p = t_spawn_counter(0);
    mote_future *fs[N];
    for (int i = 0; i < N; i++) {
        int64_t one = 1;
        T_CHECK_EQ(mote_async(p, t_h_add, &one, sizeof one, &fs[i]), 0);
        T_CHECK(fs[i] != NULL);
    }
    /* Await in reverse: each future keeps its own result. */
    for (int i = N - 1; i >= 0; i--)
        t_await_value(fs[i], i + 1);
    /* out may be NULL. */
    mote_future *f = t_async_echo(p, 5);
    T_CHECK_EQ(mote_await(f, NULL), 0);
    /* An error result comes through await too. */
    int64_t e = -EIO;
    T_CHECK_EQ(mote_async(p, h_fail, &e, sizeof e, &f), 0);
    mote_result r = mote_ok_i(0);
    T_CHECK_EQ(mote_await(f, &r), 0);
    T_CHECK_EQ(r.err, -EIO);
    mote_proc_release(p);
    return 0;
}

Test(future, async_then_await) { T_RUN_OK(NULL, main_await, NULL); }

/* A future outlives the last handle to its process. */
static int main_await_after_release(void *arg) {
    (void)arg;
    mote_proc *p = t_spawn_counter(1);
    int64_t d = 1;
    mote_future *f = NULL;
    T_CHECK_EQ(mote_async(p, t_h_add, &d, sizeof d, &f), 0);
    mote_proc_release(p);
    t_await_value(f, 2);
    return 0;
}

Test(future, await_after_releasing_the_process) { T_RUN_OK(NULL, main_await_after_release, NULL); }

/* ---- await_for ------------------------------------------------------------------------ */

static int main_await_for(void *arg) {
    (void)arg;
    mote_proc *p = t_spawn_counter(0);
    t_gate gate = {0};
    mote_future *f = t_async_gated(p, &gate, 77);
    mote_result r = mote_ok_i(-5);

    /* Expires: the handler cannot finish before the gate opens. */
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_await_for(f, MOTE_MSEC(20), &r), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(20));
    T_CHECK(!mote_future_ready(f));
    /* Zero timeout: does not wait. */
    T_CHECK_EQ(mote_await_for(f, 0, &r), -ETIMEDOUT);
    T_CHECK_EQ(mote_await_for(f, MOTE_MSEC(1), NULL), -ETIMEDOUT);

    /* The future is still valid: open the gate and await it for good. */
    t_gate_open(&gate);
    T_CHECK_EQ(mote_await_for(f, T_PATIENCE, &r), 0);
    T_CHECK_EQ(r.err, 0);
    T_CHECK_EQ(r.i, 77);

    /* Timed out, then awaited without a limit. */
    t_gate gate2 = {0};
    f = t_async_gated(p, &gate2, 78);
    T_CHECK_EQ(mote_await_for(f, MOTE_MSEC(1), &r), -ETIMEDOUT);
    t_gate_open(&gate2);
    t_await_value(f, 78);

    /* Not expiring: a quick result well within the limit. */
    f = t_async_echo(p, 79);
    r = mote_error(-1);
    T_CHECK_EQ(mote_await_for(f, T_PATIENCE, &r), 0);
    T_CHECK_EQ(r.i, 79);

    /* A ready future with timeout 0 succeeds. */
    f = t_async_echo(p, 80);
    int64_t deadline = mote_now() + T_PATIENCE;
    while (!mote_future_ready(f) && mote_now() < deadline)
        mote_sleep(MOTE_USEC(100));
    T_CHECK(mote_future_ready(f));
    r = mote_error(-1);
    T_CHECK_EQ(mote_await_for(f, 0, &r), 0);
    T_CHECK_EQ(r.i, 80);
    mote_proc_release(p);
    return 0;
}

Test(future, await_for_expiring_and_not) { T_RUN_OK(NULL, main_await_for, NULL); }

/* ---- poll ------------------------------------------------------------------------------- */

static bool contains(mote_future **v, size_t n, mote_future *f) {
    for (size_t i = 0; i < n; i++)
        if (v[i] == f)
            return true;
    return false;
}

static void wait_ready(mote_future *f) {
    int64_t deadline = mote_now() + T_PATIENCE;
    while (!mote_future_ready(f) && mote_now() < deadline)
        mote_sleep(MOTE_USEC(100));
    T_CHECK(mote_future_ready(f));
}

static int main_poll(void *arg) {
    (void)arg;
    enum { N = 6 };
    /* Futures 1, 3 and 4 finish at once; 0, 2 and 5 wait behind gates. Each
     * gated one is on its own process so that the quick ones are not queued
     * behind it. */
    mote_proc *ps[N];
    t_gate gates[N];
    mote_future *futs[N], *orig[N];
    memset(gates, 0, sizeof gates);
    for (int i = 0; i < N; i++) {
        ps[i] = t_spawn_counter(0);
        bool quick = i == 1 || i == 3 || i == 4;
        futs[i] = orig[i] = quick ? t_async_echo(ps[i], 100 + i) : t_async_gated(ps[i], &gates[i], 100 + i);
    }
    wait_ready(orig[1]);
    wait_ready(orig[3]);
    wait_ready(orig[4]);
    T_CHECK(!mote_future_ready(orig[0]));

    mote_future *ready[N];
    size_t n = N;
    int got = mote_poll(futs, &n, ready, N, T_PATIENCE);
    T_CHECK_EQ(got, 3);
    T_CHECK_EQ(n, 3);
    if (got == 3 && n == 3) {
        /* Exactly the ready ones moved out... */
        T_CHECK(contains(ready, 3, orig[1]));
        T_CHECK(contains(ready, 3, orig[3]));
        T_CHECK(contains(ready, 3, orig[4]));
        /* ...and the rest keep their order. */
        T_CHECK(futs[0] == orig[0]);
        T_CHECK(futs[1] == orig[2]);
        T_CHECK(futs[2] == orig[5]);
    }
    for (int i = 0; i < got && i < N; i++) {
        T_CHECK(mote_future_ready(ready[i]));
        int idx = ready[i] == orig[1] ? 1 : ready[i] == orig[3] ? 3 : 4;
        t_await_value(ready[i], 100 + idx);
    }

    /* Nothing ready: poll times out and leaves the input alone. */
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_poll(futs, &n, ready, N, MOTE_MSEC(10)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(10));
    T_CHECK_EQ(n, 3);
    T_CHECK_EQ(mote_poll(futs, &n, ready, N, 0), -ETIMEDOUT);
    T_CHECK_EQ(n, 3);
    T_CHECK(futs[0] == orig[0] && futs[1] == orig[2] && futs[2] == orig[5]);

    /* Open the middle gate: exactly that one comes back. */
    t_gate_open(&gates[2]);
    got = mote_poll(futs, &n, ready, N, T_PATIENCE);
    T_CHECK_EQ(got, 1);
    T_CHECK_EQ(n, 2);
    T_CHECK(ready[0] == orig[2]);
    T_CHECK(futs[0] == orig[0] && futs[1] == orig[5]);
    t_await_value(ready[0], 102);

    /* Open the rest and drain in a loop, as the seed does. */
    t_gate_open(&gates[0]);
    t_gate_open(&gates[5]);
    int64_t sum = 0;
    T_CHECK_EQ(t_poll_drain(futs, n, &sum), 2);
    T_CHECK_EQ(sum, 100 + 105);
    for (int i = 0; i < N; i++)
        mote_proc_release(ps[i]);
    return 0;
}

Test(future, poll_moves_exactly_the_ready_ones) { T_RUN_OK(NULL, main_poll, NULL); }

/* cap limits how many are moved; the rest stay, in order. */
static int main_poll_cap(void *arg) {
    (void)arg;
    enum { N = 5 };
    mote_proc *p = t_spawn_counter(0);
    mote_future *futs[N], *orig[N], *ready[N];
    for (int i = 0; i < N; i++) {
        futs[i] = orig[i] = t_async_echo(p, i);
    }
    for (int i = 0; i < N; i++)
        wait_ready(orig[i]);
    size_t n = N;
    T_CHECK_EQ(mote_poll(futs, &n, ready, 2, 0), 2);
    T_CHECK_EQ(n, 3);
    size_t k = 0;
    for (int i = 0; i < N; i++) {
        if (contains(ready, 2, orig[i]))
            continue;
        /* Not moved: must be next in futs, in the original order. */
        T_CHECK(k < n && futs[k] == orig[i]);
        k++;
    }
    T_CHECK_EQ(k, 3);
    for (int i = 0; i < 2; i++)
        T_CHECK_EQ(mote_await(ready[i], NULL), 0);
    T_CHECK_EQ(mote_poll(futs, &n, ready, N, 0), 3);
    T_CHECK_EQ(n, 0);
    for (int i = 0; i < 3; i++)
        T_CHECK_EQ(mote_await(ready[i], NULL), 0);
    mote_proc_release(p);
    return 0;
}

Test(future, poll_respects_cap) { T_RUN_OK(NULL, main_poll_cap, NULL); }

static int main_poll_einval(void *arg) {
    (void)arg;
    mote_proc *p = t_spawn_counter(0);
    mote_future *f = t_async_echo(p, 1);
    mote_future *futs[1] = {f}, *ready[1];
    size_t n = 1, zero = 0;
    T_CHECK_EQ(mote_poll(futs, &zero, ready, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(futs, &n, ready, 0, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(NULL, &n, ready, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(futs, NULL, ready, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_poll(futs, &n, NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(n, 1);
    T_CHECK(futs[0] == f);
    t_await_value(f, 1);
    mote_proc_release(p);
    return 0;
}

Test(future, poll_bad_arguments_are_einval) { T_RUN_OK(NULL, main_poll_einval, NULL); }

/* Many pollers waiting at once, each on futures from several processes. */
typedef struct poller_arg {
    mote_proc *report;
    int id;
} poller_arg;

static void fn_poller(void *arg) {
    poller_arg *a = arg;
    enum { K = 8 };
    mote_proc *ps[K];
    mote_future *futs[K];
    for (int i = 0; i < K; i++) {
        ps[i] = t_spawn_counter(0);
        futs[i] = t_async_echo(ps[i], i);
    }
    int64_t sum = 0;
    T_CHECK_EQ(t_poll_drain(futs, K, &sum), K);
    for (int i = 0; i < K; i++)
        mote_proc_release(ps[i]);
    t_send_i64(a->report, sum);
    mote_proc_release(a->report);
}

static int main_many_pollers(void *arg) {
    (void)arg;
    int n = T_SCALE(200, 50);
    for (int i = 0; i < n; i++) {
        poller_arg a = {mote_proc_ref(mote_self()), i};
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_poller, &a, sizeof a), 0);
    }
    for (int i = 0; i < n; i++)
        T_CHECK_EQ(t_recv_i64(), 28);
    return 0;
}

Test(future, many_concurrent_pollers) { T_RUN_OK(NULL, main_many_pollers, NULL); }

/* ---- drop ------------------------------------------------------------------------------ */

static atomic_int late_ran;

static mote_result h_late(void *state, void *arg) {
    t_h_gated(state, arg);
    atomic_fetch_add(&late_ran, 1);
    return mote_ok_i(123);
}

static int main_drop(void *arg) {
    (void)arg;
    mote_proc *p = t_spawn_counter(0);
    t_gate gate = {0};
    t_gated g = {&gate, 0};
    mote_future *f = NULL;
    /* Drop a pending future (after a timed-out wait, and without one). */
    T_CHECK_EQ(mote_async(p, h_late, &g, sizeof g, &f), 0);
    T_CHECK_EQ(mote_await_for(f, MOTE_MSEC(1), NULL), -ETIMEDOUT);
    mote_future_drop(f);
    T_CHECK_EQ(mote_async(p, h_late, &g, sizeof g, &f), 0);
    mote_future_drop(f);
    t_gate_open(&gate);
    /* The late results are discarded; the process carries on. */
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, NULL), 0);
    T_CHECK_EQ(atomic_load(&late_ran), 2);
    /* Drop a ready future, and NULL. */
    f = t_async_echo(p, 1);
    wait_ready(f);
    mote_future_drop(f);
    mote_future_drop(NULL);
    /* Drop many, some still queued behind a gate when dropped. */
    t_gate gate2 = {0};
    t_gated g2 = {&gate2, 0};
    T_CHECK_EQ(mote_async(p, h_late, &g2, sizeof g2, &f), 0);
    mote_future_drop(f);
    for (int64_t i = 0; i < 1000; i++) {
        T_CHECK_EQ(mote_async(p, t_h_echo, &i, sizeof i, &f), 0);
        mote_future_drop(f);
    }
    t_gate_open(&gate2);
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, NULL), 0);
    mote_proc_release(p);
    return 0;
}

Test(future, drop_pending_and_ready) {
    T_RUN_OK(NULL, main_drop, NULL);
    cr_assert_eq(atomic_load(&late_ran), 3);
}

/* A future still pending at shutdown, never awaited, is freed by shutdown. */
static int main_future_at_shutdown(void *arg) {
    (void)arg;
    mote_proc *p = t_spawn_counter(0);
    static t_gate never;
    (void)t_async_gated(p, &never, 1);
    (void)t_async_echo(p, 2);
    mote_proc_release(p);
    return 0;
}

Test(future, undropped_futures_freed_at_shutdown) { T_RUN_OK(NULL, main_future_at_shutdown, NULL); }

/* ---- Foreign threads -------------------------------------------------------------------- */

typedef struct foreign_arg {
    mote_proc *slow, *fast, *report;
    t_gate *gate;
} foreign_arg;

static void *foreign_caller(void *arg) {
    foreign_arg *a = arg;
    T_CHECK(mote_self() == NULL);
    /* A call that blocks this thread until the main process opens the gate. */
    t_gated g = {a->gate, 11};
    mote_result r = mote_error(-1);
    T_CHECK_EQ(mote_call(a->slow, t_h_gated, &g, sizeof g, &r), 0);
    T_CHECK_EQ(r.err, 0);
    T_CHECK_EQ(r.i, 11);
    /* async + await_for + await + poll, all from this thread. */
    mote_future *f = t_async_echo(a->fast, 12);
    t_await_value(f, 12);
    t_gate gate2 = {0};
    f = t_async_gated(a->slow, &gate2, 13);
    T_CHECK_EQ(mote_await_for(f, MOTE_MSEC(5), &r), -ETIMEDOUT);
    t_gate_open(&gate2);
    T_CHECK_EQ(mote_await_for(f, T_PATIENCE, &r), 0);
    T_CHECK_EQ(r.i, 13);
    mote_future *futs[2] = {t_async_echo(a->fast, 14), t_async_echo(a->slow, 15)};
    int64_t sum = 0;
    T_CHECK_EQ(t_poll_drain(futs, 2, &sum), 2);
    T_CHECK_EQ(sum, 29);
    t_send_i64(a->report, 1);
    return NULL;
}

static int main_foreign(void *arg) {
    (void)arg;
    t_gate gate = {0};
    foreign_arg a = {t_spawn_counter(0), t_spawn_counter(0), mote_self(), &gate};
    pthread_t th = t_thread(foreign_caller, &a);
    /* While the foreign thread is blocked in mote_call, everything else runs:
     * this process and the other process answer calls. */
    for (int i = 0; i < 100; i++) {
        int64_t one = 1;
        mote_result r;
        T_CHECK_EQ(mote_call(a.fast, t_h_add, &one, sizeof one, &r), 0);
        T_CHECK_EQ(r.i, i + 1);
    }
    mote_sleep(MOTE_MSEC(1));
    t_gate_open(&gate);
    T_CHECK_EQ(t_recv_i64(), 1);
    t_join(th);
    mote_proc_release(a.slow);
    mote_proc_release(a.fast);
    return 0;
}

Test(future, foreign_thread_call_await_poll) { T_RUN_OK(NULL, main_foreign, NULL); }

static int main_await_einval(void *arg) {
    (void)arg;
    mote_result r;
    T_CHECK_EQ(mote_await(NULL, &r), -EINVAL);
    T_CHECK_EQ(mote_await_for(NULL, 0, &r), -EINVAL);
    T_CHECK_EQ(mote_await_for(NULL, MOTE_MSEC(1), &r), -EINVAL);
    return 0;
}

Test(future, await_null_is_einval) { T_RUN_OK(NULL, main_await_einval, NULL); }
