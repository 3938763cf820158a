/*
 * tour.c -- a short tour of mote (`make demo`).
 *
 * Processes with private state, messages, futures, await_for, poll, timers
 * and Erlang-style receive, with a few timings along the way; then
 * sockets (an active one, and a buffered reader), blocking sections and
 * files.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, mkstemp */
#include <errno.h>
#include <mote.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ---- Sockets: blocking-style code, and an active socket ------------------------ */

/* The server side of one connection, as an active socket: data arrives as
 * calls to this process, which holds no stack between them. */
static void echo_upper(void *state, mote_socket *s, const void *data, int64_t n) {
    (void)state;
    if (n <= 0) { /* the client is done: the final call */
        mote_socket_close(s);
        return;
    }
    char out[4096];
    size_t len = (size_t)n < sizeof out ? (size_t)n : sizeof out;
    for (size_t i = 0; i < len; i++) {
        char c = ((const char *)data)[i];
        out[i] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
    }
    mote_socket_write_all(s, out, len, MOTE_SEC(5));
}

static void tour_sockets(void) {
    section("sockets");
    mote_socket *l, *c, *srv;
    if (mote_tcp_listen(&l, "127.0.0.1:0", 16, false) < 0)
        return;
    mote_addr a;
    char where[64];
    mote_socket_local_addr(l, &a);
    mote_addr_format(&a, where, sizeof where);
    /* Connect, or give up after 10 s: the seed's smol example. */
    if (mote_tcp_connect(&c, where, MOTE_SEC(10)) < 0 || mote_socket_accept(l, &srv, NULL, MOTE_SEC(10)) < 0)
        return;
    mote_proc *p;
    mote_spawn(&p, NULL, 0, NULL);
    mote_socket_activate(srv, p, echo_upper); /* p owns srv now */
    mote_proc_release(p);
    char reply[32] = {0};
    mote_socket_write_all(c, "hello, mote", 11, MOTE_SEC(5));
    int rc = mote_socket_read_exact(c, reply, 11, MOTE_SEC(5));
    printf("an active socket answered: %s\n", rc == 0 ? reply : mote_strerror(rc));
    /* A buffered reader on the same socket, one line at a time. */
    mote_reader *r;
    mote_reader_new(&r, mote_socket_stream(c), 0);
    mote_socket_write_all(c, "line one\nline two\n", 18, MOTE_SEC(5));
    const char *line;
    for (int i = 0; i < 2; i++) {
        int64_t n = mote_reader_read_line(r, &line, MOTE_SEC(5));
        if (n >= 0)
            printf("read a line: %.*s\n", (int)n, line);
    }
    mote_reader_free(r);
    mote_socket_close(c);
    mote_socket_close(l);
}

/* ---- Blocking work: sections, backup threads, files ------------------------------ */

static void blocker(void *arg) {
    (void)arg;
    mote_blocking_begin();
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL); /* stands for any call that blocks its thread */
    mote_blocking_end();
}

static void tour_blocking(void) {
    section("blocking work");
    /* Block every worker for 50 ms; processes keep running meanwhile on
     * backup threads. */
    unsigned k = mote_threads();
    for (unsigned i = 0; i < k; i++)
        mote_spawn_fn(NULL, blocker, NULL, 0);
    mote_proc *p;
    int64_t zero = 0;
    mote_spawn(&p, &zero, sizeof zero, NULL);
    int64_t t0 = mote_now(), calls = 0;
    while (mote_now() - t0 < MOTE_MSEC(40)) {
        mote_call(p, bump, NULL, 0, NULL);
        calls++;
    }
    mote_proc_release(p);
    printf("%u workers blocked for 50 ms; meanwhile %lld calls were answered (on backup threads)\n", k,
           (long long)calls);

    /* Files run in blocking sections, and are streams like sockets. */
    char path[] = "/tmp/mote-tour-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    close(fd);
    mote_file *f;
    mote_writer *w;
    if (mote_file_open(&f, path, MOTE_FILE_WRITE | MOTE_FILE_TRUNCATE) < 0)
        return;
    mote_writer_new(&w, mote_file_stream(f), 0);
    for (int i = 1; i <= 1000; i++)
        mote_writer_printf(w, MOTE_FOREVER, "line %d\n", i);
    mote_writer_flush(w, MOTE_FOREVER);
    mote_writer_free(w);
    mote_file_close(f);
    mote_file_info info;
    mote_fs_info(path, &info);
    mote_reader *r;
    mote_file_open(&f, path, MOTE_FILE_READ);
    mote_reader_new(&r, mote_file_stream(f), 0);
    const char *line;
    int64_t n, lines = 0;
    while ((n = mote_reader_read_line(r, &line, MOTE_FOREVER)) >= 0)
        lines++;
    mote_reader_free(r);
    mote_file_close(f);
    mote_fs_remove(path);
    printf("wrote and read back a file: %llu bytes, %lld lines\n", (unsigned long long)info.size, (long long)lines);
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
    tour_sockets();
    tour_blocking();
    printf("\ntour done in %.0f ms\n", ms(mote_now() - t0));
    return 0;
}

int main(void) {
    int rc = mote_run(NULL, main_process, NULL);
    if (rc < 0)
        fprintf(stderr, "mote_run: %s\n", mote_strerror(rc));
    return rc < 0 ? 1 : rc;
}
