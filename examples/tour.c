/*
 * tour.c -- a short tour of mote (`make demo`).
 *
 * Processes with private state, messages, futures, await_for, poll, timers
 * and Erlang-style receive, with a few timings along the way.
 */
#include <errno.h>
#include <mote.h>
#include <stdio.h>
#include <string.h>

static double ms(int64_t ns) { return (double)ns / 1e6; }

/* ---- A process: private state and the messages that act on it ---------------- */

typedef struct account {
    int64_t balance;
} account;

static mote_result deposit(void *state, void *arg) {
    account *a = state;
    a->balance += *(const int64_t *)arg;
    return mote_ok_i(a->balance);
}

static mote_result balance(void *state, void *arg) {
    (void)arg;
    return mote_ok_i(((account *)state)->balance);
}

static mote_result withdraw(void *state, void *arg) {
    account *a = state;
    int64_t amount = *(const int64_t *)arg;
    if (amount > a->balance)
        return mote_error(-EINVAL); /* the seed's Future[T, E]: a value or an error */
    a->balance -= amount;
    return mote_ok_i(a->balance);
}

/* A message that takes its time. */
static mote_result slow_echo(void *state, void *arg) {
    (void)state;
    int64_t v = *(const int64_t *)arg;
    mote_sleep(MOTE_MSEC(v));
    return mote_ok_i(v);
}

static void section(const char *title) { printf("\n== %s\n", title); }

static void tour_processes(void) {
    section("processes and messages");
    account init = {100};
    mote_proc *acct;
    mote_spawn(&acct, &init, sizeof init, NULL);

    int64_t amount = 50;
    mote_result r;
    mote_call(acct, deposit, &amount, sizeof amount, &r);
    printf("deposit 50 -> balance %lld\n", (long long)r.i);
    amount = 1000;
    mote_call(acct, withdraw, &amount, sizeof amount, &r);
    printf("withdraw 1000 -> error: %s\n", mote_strerror(r.err));

    /* Casts don't wait; they still run one at a time, in order. */
    enum { CASTS = 100000 };
    amount = 1;
    int64_t t0 = mote_now();
    for (int i = 0; i < CASTS; i++)
        mote_cast(acct, deposit, &amount, sizeof amount);
    mote_call(acct, balance, NULL, 0, &r);
    int64_t took = mote_now() - t0;
    printf("%d casts then a call: balance %lld, %.1f ms (%.0f ns/message)\n", CASTS, (long long)r.i,
           ms(took), (double)took / CASTS);

    /* Round trips: each call waits for its answer. */
    enum { CALLS = 10000 };
    t0 = mote_now();
    for (int i = 0; i < CALLS; i++)
        mote_call(acct, balance, NULL, 0, &r);
    took = mote_now() - t0;
    printf("%d call round trips: %.1f ms (%.0f ns each)\n", CALLS, ms(took), (double)took / CALLS);
    mote_proc_release(acct);
}

static void tour_futures(void) {
    section("futures, await_for and poll");
    mote_proc *a, *b, *c;
    mote_spawn(&a, NULL, 0, NULL);
    mote_spawn(&b, NULL, 0, NULL);
    mote_spawn(&c, NULL, 0, NULL);

    /* await_for gives up, and the future stays valid. */
    int64_t v = 30;
    mote_future *f;
    mote_async(a, slow_echo, &v, sizeof v, &f);
    mote_result r;
    int rc = mote_await_for(f, MOTE_MSEC(5), &r);
    printf("await_for 5 ms on a 30 ms message: %s\n", rc == -ETIMEDOUT ? "timed out" : "done?");
    mote_await(f, &r);
    printf("then await: %lld\n", (long long)r.i);

    /* poll: act on each result as soon as it is ready. */
    int64_t waits[3] = {20, 5, 10};
    mote_future *pending[3], *ready[3];
    mote_async(a, slow_echo, &waits[0], sizeof waits[0], &pending[0]);
    mote_async(b, slow_echo, &waits[1], sizeof waits[1], &pending[1]);
    mote_async(c, slow_echo, &waits[2], sizeof waits[2], &pending[2]);
    size_t n = 3;
    int64_t t0 = mote_now();
    printf("poll over messages taking 20, 5 and 10 ms:");
    while (n > 0) {
        int got = mote_poll(pending, &n, ready, 3, MOTE_FOREVER);
        for (int i = 0; i < got; i++) {
            mote_await(ready[i], &r);
            printf(" %lld ms (at %.1f)", (long long)r.i, ms(mote_now() - t0));
        }
    }
    printf("\n");
    mote_proc_release(a);
    mote_proc_release(b);
    mote_proc_release(c);
}

static void tour_timers(void) {
    section("timers");
    int64_t t0 = mote_now();
    mote_sleep(MOTE_MSEC(1));
    printf("mote_sleep(1 ms) took %.3f ms\n", ms(mote_now() - t0));

    /* A timer is a future: poll it beside a call, as a timeout. */
    mote_proc *p;
    mote_spawn(&p, NULL, 0, NULL);
    int64_t v = 50;
    mote_future *call, *timer;
    mote_async(p, slow_echo, &v, sizeof v, &call);
    mote_timer(&timer, MOTE_MSEC(10));
    mote_future *pending[2] = {call, timer}, *ready[2];
    size_t n = 2;
    mote_poll(pending, &n, ready, 2, MOTE_FOREVER);
    printf("a 50 ms call raced a 10 ms timer: %s came first\n", ready[0] == timer ? "the timer" : "the call");
    mote_await(ready[0], NULL);
    mote_future_drop(pending[0]); /* not interested any more */
    mote_proc_release(p);
}

/* ---- Erlang style --------------------------------------------------------------- */

static void echo_process(void *arg) {
    (void)arg;
    for (;;) {
        mote_msg *m;
        if (mote_receive(&m, MOTE_FOREVER) != 0)
            return;
        mote_proc *reply_to;
        memcpy(&reply_to, mote_msg_data(m), sizeof reply_to);
        mote_msg_free(m);
        if (!reply_to)
            return;
        mote_send(reply_to, "pong", 5);
        mote_proc_release(reply_to);
    }
}

static void tour_erlang(void) {
    section("Erlang-style receive");
    mote_proc *echo;
    mote_spawn_fn(&echo, echo_process, NULL, 0);
    enum { ROUNDS = 100000 };
    int64_t t0 = mote_now();
    for (int i = 0; i < ROUNDS; i++) {
        mote_proc *me = mote_proc_ref(mote_self());
        mote_send(echo, &me, sizeof me);
        mote_msg *m;
        mote_receive(&m, MOTE_FOREVER);
        mote_msg_free(m);
    }
    int64_t took = mote_now() - t0;
    printf("%d send/receive round trips: %.1f ms (%.0f ns each)\n", ROUNDS, ms(took), (double)took / ROUNDS);
    mote_msg *m;
    int rc = mote_receive(&m, MOTE_MSEC(2));
    printf("receive with a 2 ms timeout on an empty mailbox: %s\n", mote_strerror(rc));
    mote_proc *stop = NULL;
    mote_send(echo, &stop, sizeof stop);
    mote_proc_release(echo);
}

/* ---- Many processes -------------------------------------------------------------- */

static mote_result bump(void *state, void *arg) {
    (void)arg;
    return mote_ok_i(++*(int64_t *)state);
}

static void tour_spawn(void) {
    section("many processes");
    enum { N = 100000 };
    int64_t t0 = mote_now();
    for (int i = 0; i < N; i++) {
        int64_t init = i;
        mote_proc *p;
        mote_spawn(&p, &init, sizeof init, NULL);
        mote_proc_release(p);
    }
    int64_t took = mote_now() - t0;
    printf("spawn and release %d processes: %.1f ms (%.0f ns each)\n", N, ms(took), (double)took / N);

    /* Each process gets a cast and an async call; the futures are awaited
     * after all are sent, so the processes run in parallel meanwhile. */
    static mote_future *futures[N];
    t0 = mote_now();
    for (int i = 0; i < N; i++) {
        int64_t init = i;
        mote_proc *p;
        mote_spawn(&p, &init, sizeof init, NULL);
        mote_cast(p, bump, NULL, 0);
        mote_async(p, bump, NULL, 0, &futures[i]);
        mote_proc_release(p); /* the process finishes its mail first */
    }
    int64_t sum = 0;
    for (int i = 0; i < N; i++) {
        mote_result r;
        mote_await(futures[i], &r);
        sum += r.i;
    }
    took = mote_now() - t0;
    printf("%d processes, 2 messages each, over %u threads: %.1f ms (sum %lld)\n", N, mote_threads(), ms(took),
           (long long)sum);
}

static int main_process(void *arg) {
    (void)arg;
    printf("mote %d.%d.%d, %u worker threads\n", MOTE_VERSION_MAJOR, MOTE_VERSION_MINOR, MOTE_VERSION_PATCH,
           mote_threads());
    int64_t t0 = mote_now();
    tour_processes();
    tour_futures();
    tour_timers();
    tour_erlang();
    tour_spawn();
    printf("\ntour done in %.0f ms\n", ms(mote_now() - t0));
    return 0;
}

int main(void) {
    int rc = mote_run(NULL, main_process, NULL);
    if (rc < 0)
        fprintf(stderr, "mote_run: %s\n", mote_strerror(rc));
    return rc < 0 ? 1 : rc;
}
