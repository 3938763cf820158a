/* counter.c -- a process with private state, and the three ways to send
 * it a message: mote_cast (forget the result), mote_call (wait for it),
 * mote_async (a future to collect later). */
#include <mote.h>
#include <stdio.h>

typedef struct counter {
    long value;
} counter;

/* Message handlers run inside the counter process, one at a time, with
 * its state: no lock is needed. */
static mote_result add(void *state, void *arg) {
    counter *c = state;
    c->value += *(const long *)arg;
    return mote_ok_i(c->value);
}

static mote_result get(void *state, void *arg) {
    (void)arg;
    const counter *c = state;
    return mote_ok_i(c->value);
}

static void counter_gone(void *state) {
    printf("counter freed at %ld\n", ((counter *)state)->value);
}

static int app(void *arg) {
    (void)arg;
    mote_proc *c;
    counter init = {0};
    int r = mote_spawn(&c, &init, sizeof init, counter_gone);
    if (r < 0) {
        fprintf(stderr, "spawn: %s\n", mote_strerror(r));
        return 1;
    }

    for (long i = 1; i <= 10; i++)
        mote_cast(c, add, &i, sizeof i); /* the argument bytes are copied */

    mote_result res;
    r = mote_call(c, get, NULL, 0, &res); /* runs after the ten casts */
    if (r == 0 && res.err == 0)
        printf("after ten casts: %ld\n", (long)res.i);

    long five = 5;
    mote_future *f;
    if (mote_async(c, add, &five, sizeof five, &f) == 0) {
        /* ... free to do other work while the counter runs it ... */
        mote_await(f, &res); /* consumes f */
        printf("after an async add: %ld\n", (long)res.i);
    }

    mote_proc_release(c); /* the last handle: the destructor runs */
    return 0;
}

int main(void) {
    return mote_run(NULL, app, NULL) == 0 ? 0 : 1;
}
