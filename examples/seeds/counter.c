/*
 * counter.c -- the seed's Counter process:
 *
 *   class async Counter {
 *     let @value: Int
 *     fn async mut increment { @value += 1 }
 *     fn async value -> Int { @value.clone }
 *   }
 *
 * A mote process is a piece of private state plus the messages sent to it.
 * Each message runs alone with the state, in the order it was sent.
 */
#include <mote.h>
#include <stdio.h>

typedef struct counter {
    int64_t value;
} counter;

/* fn async mut increment */
static mote_result increment(void *state, void *arg) {
    (void)arg;
    counter *c = state;
    c->value += 1;
    return mote_ok_i(0);
}

/* fn async value -> Int */
static mote_result value(void *state, void *arg) {
    (void)arg;
    counter *c = state;
    return mote_ok_i(c->value);
}

static int main_process(void *arg) {
    (void)arg;
    /* let counter = Counter { @value = 0 } */
    counter init = {0};
    mote_proc *c;
    if (mote_spawn(&c, &init, sizeof init, NULL) != 0)
        return 1;

    /* counter.increment; counter.value  => 1 (a call waits for its result) */
    mote_call(c, increment, NULL, 0, NULL);
    mote_result r;
    mote_call(c, value, NULL, 0, &r);
    printf("value after 1 increment: %lld\n", (long long)r.i);

    /* Messages sent without waiting still run in order. */
    for (int i = 0; i < 10; i++)
        mote_cast(c, increment, NULL, 0);
    mote_call(c, value, NULL, 0, &r);
    printf("value after 11 increments: %lld\n", (long long)r.i);

    /* async counter.value => Future[Int, Never]; future.await => 12 */
    mote_cast(c, increment, NULL, 0);
    mote_future *f;
    mote_async(c, value, NULL, 0, &f);
    mote_await(f, &r);
    printf("awaited value: %lld\n", (long long)r.i);

    /* future.await_for(Duration.from_secs(10)) */
    mote_async(c, value, NULL, 0, &f);
    if (mote_await_for(f, MOTE_SEC(10), &r) == 0)
        printf("await_for value: %lld\n", (long long)r.i);
    else
        mote_future_drop(f);

    mote_proc_release(c);
    return 0;
}

int main(void) { return mote_run(NULL, main_process, NULL); }
