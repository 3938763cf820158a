/* futures.c -- several calls in flight at once: mote_async returns
 * futures, mote_poll collects them as they become ready, and
 * mote_await_for gives up on a slow one without losing it. */
#include <errno.h>
#include <mote.h>
#include <stdio.h>

/* A slow square: the process sleeps n * 10 ms first. */
static mote_result slow_square(void *state, void *arg) {
    (void)state;
    int64_t n = *(const int64_t *)arg;
    mote_sleep(MOTE_MSEC(10 * n));
    return mote_ok_i(n * n);
}

enum { N = 4 };

static int app(void *arg) {
    (void)arg;
    mote_proc *workers[N];
    mote_future *futs[N], *order[N];
    for (int i = 0; i < N; i++) {
        if (mote_spawn(&workers[i], NULL, 0, NULL) < 0)
            return 1;
        int64_t n = N - i; /* the first one is the slowest */
        if (mote_async(workers[i], slow_square, &n, sizeof n, &futs[i]) < 0)
            return 1;
        order[i] = futs[i];
    }

    /* Collect the results in whatever order they come. */
    int64_t results[N] = {0};
    size_t pending = N;
    while (pending > 0) {
        mote_future *ready[N];
        int k = mote_poll(futs, &pending, ready, N, MOTE_SEC(10));
        if (k < 0) {
            printf("poll: %s\n", mote_strerror(k));
            return 1;
        }
        for (int j = 0; j < k; j++) {
            int i = 0;
            while (order[i] != ready[j])
                i++;
            mote_result r;
            mote_await(ready[j], &r); /* ready: does not wait */
            results[i] = r.i;
        }
    }
    for (int i = 0; i < N; i++)
        printf("worker %d: %lld\n", i, (long long)results[i]);

    /* A deadline on one call: the future survives a timeout. */
    int64_t big = 20; /* 200 ms */
    mote_future *f;
    if (mote_async(workers[0], slow_square, &big, sizeof big, &f) < 0)
        return 1;
    mote_result r;
    if (mote_await_for(f, MOTE_MSEC(10), &r) == -ETIMEDOUT)
        printf("not ready after 10 ms\n");
    if (mote_await(f, &r) == 0) /* wait for it after all */
        printf("then: %lld\n", (long long)r.i);

    for (int i = 0; i < N; i++)
        mote_proc_release(workers[i]);
    return 0;
}

int main(void) {
    return mote_run(NULL, app, NULL) == 0 ? 0 : 1;
}
