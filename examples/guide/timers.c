/* timers.c -- sleeping, and timer futures: a deadline raced against a
 * call with mote_poll. */
#include <errno.h>
#include <mote.h>
#include <stdio.h>

static mote_result quick(void *state, void *arg) {
    (void)state, (void)arg;
    return mote_ok_i(42);
}

static mote_result sluggish(void *state, void *arg) {
    (void)state, (void)arg;
    mote_sleep(MOTE_SEC(5));
    return mote_ok_i(7);
}

/* Wait for f, but no longer than limit: whichever of f and a timer is
 * ready first wins. f is consumed either way. */
static int with_deadline(mote_future *f, int64_t limit, mote_result *out) {
    mote_future *timer;
    int r = mote_timer(&timer, limit);
    if (r < 0) {
        mote_future_drop(f);
        return r;
    }
    mote_future *futs[2] = {f, timer}, *first = NULL;
    size_t n = 2;
    r = mote_poll(futs, &n, &first, 1, MOTE_FOREVER);
    if (r > 0 && first == f) {
        mote_await(f, out);
        mote_future_drop(timer); /* cancels it */
        return 0;
    }
    mote_await(timer, NULL);
    mote_future_drop(f); /* a late result is discarded */
    return -ETIMEDOUT;
}

static int app(void *arg) {
    (void)arg;
    int64_t t0 = mote_now();
    mote_sleep(MOTE_MSEC(20)); /* only this process sleeps */
    printf("slept at least 20 ms: %s\n", mote_now() - t0 >= MOTE_MSEC(20) ? "yes" : "no");

    mote_proc *p;
    if (mote_spawn(&p, NULL, 0, NULL) < 0)
        return 1;
    mote_future *f;
    mote_result res;
    if (mote_async(p, quick, NULL, 0, &f) == 0 && with_deadline(f, MOTE_SEC(5), &res) == 0)
        printf("quick answered %lld\n", (long long)res.i);
    if (mote_async(p, sluggish, NULL, 0, &f) == 0 && with_deadline(f, MOTE_MSEC(50), &res) < 0)
        printf("sluggish missed its 50 ms deadline\n");
    mote_proc_release(p);
    return 0;
}

int main(void) {
    return mote_run(NULL, app, NULL) == 0 ? 0 : 1;
}
