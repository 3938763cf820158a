/*
 * poll.c -- the seed's poll over two runners:
 *
 *   let pending = [async runner1.run, async runner2.run]
 *   while pending.length > 0 {
 *     poll(pending).into_iter.each fn (future) { ... }
 *   }
 *
 * mote_poll waits until one or more futures are ready, moves those out of the
 * pending array, and leaves the rest in order.
 */
#include <mote.h>
#include <stdio.h>

typedef struct runner {
    int id;
} runner;

/* Something that takes a while: sum 1..n, with a nap in the middle. */
static mote_result run(void *state, void *arg) {
    runner *r = state;
    int64_t n = *(const int64_t *)arg, sum = 0;
    mote_sleep(MOTE_MSEC(r->id));
    for (int64_t i = 1; i <= n; i++)
        sum += i;
    return mote_ok_i(sum);
}

static int main_process(void *arg) {
    (void)arg;
    enum { RUNNERS = 2 };
    mote_proc *runners[RUNNERS];
    mote_future *pending[RUNNERS], *ready[RUNNERS];
    int64_t work[RUNNERS] = {1000, 2000000};
    int64_t results[RUNNERS] = {0};
    mote_future *started[RUNNERS];

    for (int i = 0; i < RUNNERS; i++) {
        runner init = {i + 1};
        mote_spawn(&runners[i], &init, sizeof init, NULL);
        mote_async(runners[i], run, &work[i], sizeof work[i], &pending[i]);
        started[i] = pending[i];
    }

    size_t n = RUNNERS;
    int done = 0;
    while (n > 0) {
        int got = mote_poll(pending, &n, ready, RUNNERS, MOTE_FOREVER);
        if (got < 0) {
            fprintf(stderr, "poll: %s\n", mote_strerror(got));
            return 1;
        }
        for (int i = 0; i < got; i++) {
            mote_result r;
            mote_await(ready[i], &r); /* ready: does not wait */
            for (int k = 0; k < RUNNERS; k++)
                if (ready[i] == started[k])
                    results[k] = r.i;
            done++;
        }
    }
    for (int k = 0; k < RUNNERS; k++)
        printf("runner %d: sum(1..%lld) = %lld\n", k + 1, (long long)work[k], (long long)results[k]);
    printf("%d futures ready, %zu pending\n", done, n);

    for (int i = 0; i < RUNNERS; i++)
        mote_proc_release(runners[i]);
    return 0;
}

int main(void) { return mote_run(NULL, main_process, NULL); }
