/* Futures under faults: async calls awaited, polled, timed out and
 * dropped, and timers; every future created resolves with its value. */
#include "common.h"

enum { N = 24 };

static atomic_int gate;

static mote_result h_echo(void *state, void *arg) {
    (void)state;
    return mote_ok_i(*(int64_t *)arg);
}

static mote_result h_slow(void *state, void *arg) {
    (void)state;
    while (!atomic_load(&gate))
        mote_sleep(MOTE_USEC(200));
    return mote_ok_i(*(int64_t *)arg);
}

static int main_fn(void *arg) {
    (void)arg;
    mote_proc *p = NULL, *q = NULL;
    if (f_err("mote_spawn", mote_spawn(&p, NULL, 0, NULL)) < 0 ||
        f_err("mote_spawn", mote_spawn(&q, NULL, 0, NULL)) < 0) {
        mote_proc_release(p);
        return 0;
    }
    /* Awaited one by one, and through mote_poll. */
    mote_future *f[N], *ready[N];
    int64_t val[N];
    size_t n = 0;
    for (int64_t i = 0; i < N; i++)
        if (f_err("mote_async", mote_async(p, h_echo, &i, sizeof i, &f[n])) == 0)
            val[n++] = i;
    for (size_t i = 0; i < n / 2; i++) {
        mote_result r;
        if (f_err("mote_await", mote_await(f[i], &r)) == 0)
            F_CHECK(r.err == 0 && r.i == val[i], "future %zu: %lld", i, (long long)r.i);
    }
    size_t left = n - n / 2, got = 0;
    mote_future **rest = f + n / 2;
    int64_t sum = 0, want = 0;
    for (size_t i = n / 2; i < n; i++)
        want += val[i];
    while (left > 0) {
        int k = mote_poll(rest, &left, ready, N, MOTE_SEC(20));
        F_CHECK(k > 0, "poll: %d", k);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++) {
            mote_result r;
            if (f_err("mote_await", mote_await(ready[i], &r)) == 0)
                sum += r.i;
            got++;
        }
    }
    F_CHECK(sum == want && got == n - n / 2, "polled %zu futures, sum %lld of %lld", got, (long long)sum,
            (long long)want);

    /* Timed out, then awaited again or dropped. */
    mote_future *s1 = NULL, *s2 = NULL;
    int64_t v = 7;
    f_err("mote_async", mote_async(q, h_slow, &v, sizeof v, &s1));
    f_err("mote_async", mote_async(q, h_slow, &v, sizeof v, &s2));
    mote_result r;
    if (s1) { /* or -ENOMEM: no memory to arm the timer for the wait */
        int rc = mote_await_for(s1, MOTE_MSEC(1), &r);
        F_CHECK(rc == -ETIMEDOUT || f_err("mote_await_for", rc) == -ENOMEM, "await_for did not time out");
    }
    if (s2)
        F_CHECK(mote_await_for(s2, 0, &r) == -ETIMEDOUT, "await_for(0) did not time out");
    mote_future_drop(s2);
    atomic_store(&gate, 1);
    if (s1 && f_err("mote_await", mote_await(s1, &r)) == 0)
        F_CHECK(r.err == 0 && r.i == 7, "slow result %lld", (long long)r.i);

    /* Timers: polled, one dropped unfired. */
    mote_future *t[3] = {NULL, NULL, NULL};
    size_t nt = 0;
    for (int i = 0; i < 2; i++)
        if (f_err("mote_timer", mote_timer(&t[nt], MOTE_USEC(100 * (i + 1)))) == 0)
            nt++;
    while (nt > 0) {
        int k = mote_poll(t, &nt, ready, 3, MOTE_SEC(20));
        F_CHECK(k > 0, "timer poll: %d", k);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++)
            f_err("mote_await", mote_await(ready[i], NULL));
    }
    mote_future *late = NULL;
    if (f_err("mote_timer", mote_timer(&late, MOTE_SEC(100))) == 0)
        mote_future_drop(late);
    mote_proc_release(p);
    mote_proc_release(q);
    return 0;
}

int main(void) {
    return f_run("fault-futures", main_fn);
}
