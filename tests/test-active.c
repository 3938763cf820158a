/*
 * test-active.c -- active sockets: data delivered to a process as calls, in
 * order, then one final call; closing by the owner ends the calls; many
 * idle active connections hold no stacks; examples/echo_active with real
 * clients.
 */
#include <sys/socket.h>

#include "helpers.h"

/* Per-connection process state: what arrived, and how it ended. */
typedef struct sink {
    char *buf;
    size_t len, cap;
    int64_t final;       /* 1 until the final call, then its n (0 or -errno) */
    int finals;          /* final calls seen (must be 1) */
    int after_final;     /* calls after the final one (must be 0) */
    atomic_int *done;    /* bumped at the final call */
    bool close_at_final; /* close the socket in the final call */
} sink;

static void sink_on_data(void *state, mote_socket *s, const void *data, int64_t n) {
    sink *k = state;
    if (k->finals)
        k->after_final++;
    if (n > 0) {
        T_CHECK(data != NULL);
        if (k->len + (size_t)n > k->cap) {
            k->cap = (k->len + (size_t)n) * 2;
            k->buf = realloc(k->buf, k->cap);
        }
        memcpy(k->buf + k->len, data, (size_t)n);
        k->len += (size_t)n;
        return;
    }
    k->finals++;
    k->final = n;
    if (k->close_at_final)
        mote_socket_close(s);
    atomic_fetch_add(k->done, 1);
}

static mote_result h_sink_take(void *state, void *arg) {
    (void)arg;
    sink *k = state;
    return mote_ok_p(k);
}

static void sink_dtor(void *state) {
    free(((sink *)state)->buf);
}

/* A connected pair of mote sockets over a Unix socketpair. */
static void pair(mote_socket **a, mote_socket **b) {
    int sv[2];
    T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    T_CHECK_EQ(mote_socket_adopt(a, sv[0]), 0);
    T_CHECK_EQ(mote_socket_adopt(b, sv[1]), 0);
}

/* ---- Order and the final call --------------------------------------------------- */

static int main_order(void *arg) {
    (void)arg;
    atomic_int done = 0;
    mote_socket *a, *b;
    pair(&a, &b);
    /* Some data is there before activation: it must not be missed. */
    T_CHECK_EQ(mote_socket_write_all(a, "early:", 6, T_PATIENCE), 0);
    sink init = {.final = 1, .done = &done, .close_at_final = true};
    mote_proc *p;
    T_CHECK_EQ(mote_spawn(&p, &init, sizeof init, sink_dtor), 0);
    T_CHECK_EQ(mote_socket_activate(b, p, sink_on_data), 0);
    T_CHECK_EQ(mote_socket_activate(b, p, sink_on_data), -EINVAL); /* once */
    /* 1 MiB in pieces of varying size, a pattern that shows misordering. */
    size_t total = 1 << 20;
    char *out = malloc(total);
    for (size_t i = 0; i < total; i++)
        out[i] = (char)(i * 31 + i / 4096);
    for (size_t off = 0; off < total;) {
        size_t n = 1 + (off * 7919) % 9000;
        if (n > total - off)
            n = total - off;
        T_CHECK_EQ(mote_socket_write_all(a, out + off, n, T_PATIENCE), 0);
        off += n;
    }
    mote_socket_close(a); /* end of stream: the final call with n == 0 */
    t_wait_at_least(&done, 1);
    mote_result r;
    T_CHECK_EQ(mote_call(p, h_sink_take, NULL, 0, &r), 0);
    sink *k = r.p;
    T_CHECK_EQ(k->len, 6 + total);
    T_CHECK(k->len == 6 + total && memcmp(k->buf, "early:", 6) == 0 &&
            memcmp(k->buf + 6, out, total) == 0);
    T_CHECK_EQ(k->finals, 1);
    T_CHECK_EQ(k->final, 0);
    T_CHECK_EQ(k->after_final, 0);
    free(out);
    mote_proc_release(p);
    return 0;
}

Test(active, data_arrives_in_order_then_one_final_call) {
    T_RUN_OK(NULL, main_order, NULL);
}

/* ---- A reset is an error in the final call -------------------------------------- */

static int main_reset(void *arg) {
    (void)arg;
    atomic_int done = 0;
    mote_socket *l, *c, *s;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 16, false), 0);
    mote_addr la;
    char where[64];
    mote_socket_local_addr(l, &la);
    mote_addr_format(&la, where, sizeof where);
    T_CHECK_EQ(mote_tcp_connect(&c, where, T_PATIENCE), 0);
    T_CHECK_EQ(mote_socket_accept(l, &s, NULL, T_PATIENCE), 0);
    sink init = {.final = 1, .done = &done, .close_at_final = true};
    mote_proc *p;
    T_CHECK_EQ(mote_spawn(&p, &init, sizeof init, sink_dtor), 0);
    T_CHECK_EQ(mote_socket_activate(s, p, sink_on_data), 0);
    T_CHECK_EQ(mote_socket_write_all(c, "x", 1, T_PATIENCE), 0);
    struct linger lg = {1, 0}; /* close with RST */
    setsockopt(mote_socket_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    mote_sleep(MOTE_MSEC(20)); /* let "x" be read first */
    mote_socket_close(c);
    t_wait_at_least(&done, 1);
    mote_result r;
    T_CHECK_EQ(mote_call(p, h_sink_take, NULL, 0, &r), 0);
    sink *k = r.p;
    T_CHECK_EQ(k->len, 1);
    T_CHECK_EQ(k->finals, 1);
    T_CHECK_EQ(k->final, -ECONNRESET);
    mote_proc_release(p);
    mote_socket_close(l);
    return 0;
}

Test(active, a_reset_is_the_final_call) {
    T_RUN_OK(NULL, main_reset, NULL);
}

/* ---- Closing by the owner ends the calls ---------------------------------------- */

typedef struct closer {
    atomic_int *calls;
} closer;

static void close_on_first(void *state, mote_socket *s, const void *data, int64_t n) {
    (void)data;
    (void)n;
    closer *c = state;
    atomic_fetch_add(c->calls, 1);
    mote_socket_close(s); /* from now on: nothing more */
}

static int main_owner_close(void *arg) {
    (void)arg;
    atomic_int calls = 0;
    mote_socket *a, *b;
    pair(&a, &b);
    closer init = {&calls};
    mote_proc *p;
    T_CHECK_EQ(mote_spawn(&p, &init, sizeof init, NULL), 0);
    T_CHECK_EQ(mote_socket_activate(b, p, close_on_first), 0);
    mote_proc_release(p); /* the active mode keeps it alive meanwhile */
    T_CHECK_EQ(mote_socket_write_all(a, "one", 3, T_PATIENCE), 0);
    t_wait_at_least(&calls, 1);
    int64_t w = mote_socket_write(a, "two", 3, T_PATIENCE);
    T_CHECK(w == 3 || w == -EPIPE || w == -ECONNRESET);
    char c;
    int64_t rd = mote_socket_read(a, &c, 1, T_PATIENCE);
    T_CHECK(rd == 0 || rd == -ECONNRESET); /* peer closed (reset: "two" unread) */
    mote_sleep(MOTE_MSEC(20));
    T_CHECK_EQ(atomic_load(&calls), 1);
    mote_socket_close(a);
    return 0;
}

Test(active, closing_by_the_owner_ends_the_calls) {
    T_RUN_OK(NULL, main_owner_close, NULL);
}

/* ---- Bad arguments, and shutdown with active sockets left ------------------------ */

/* Ignores data; closes in the final call, as the handle's owner must
 * (mote_socket_activate(3)): the peer's close below may reach it before
 * the shutdown does, and a handle left open then is the test's leak. */
static void ignore(void *state, mote_socket *s, const void *data, int64_t n) {
    (void)state;
    (void)data;
    if (n <= 0)
        mote_socket_close(s);
}

static int main_edges(void *arg) {
    (void)arg;
    mote_socket *a, *b, *u;
    pair(&a, &b);
    mote_proc *p;
    T_CHECK_EQ(mote_spawn(&p, NULL, 0, NULL), 0);
    T_CHECK_EQ(mote_socket_activate(NULL, p, ignore), -EINVAL);
    T_CHECK_EQ(mote_socket_activate(b, NULL, ignore), -EINVAL);
    T_CHECK_EQ(mote_socket_activate(b, p, NULL), -EINVAL);
    T_CHECK_EQ(mote_socket_open(&u, AF_INET, SOCK_DGRAM, 0), 0);
    T_CHECK_EQ(mote_socket_activate(u, p, ignore), -EINVAL); /* not a stream */
    mote_socket_close(u);
    /* Left active at shutdown, unless the final call (the peer's close)
     * comes first: either way nothing leaks (LeakSanitizer checks). */
    T_CHECK_EQ(mote_socket_activate(b, p, ignore), 0);
    mote_proc_release(p);
    mote_socket_close(a);
    return 0;
}

Test(active, bad_arguments_and_shutdown_while_active) {
    T_RUN_OK(NULL, main_edges, NULL);
}

/* ---- Many idle active connections hold no stacks --------------------------------- */

static mote_result h_count_calls(void *state, void *arg) {
    (void)arg;
    return mote_ok_i(*(int64_t *)state);
}

static void count_on_data(void *state, mote_socket *s, const void *data, int64_t n) {
    (void)data;
    int64_t *calls = state;
    ++*calls;
    if (n <= 0)
        mote_socket_close(s);
}

static int main_many_idle(void *arg) {
    (void)arg;
    enum { N = 500 };
    mote_socket *mine[N];
    mote_proc *ps[N];
    for (int i = 0; i < N; i++) {
        mote_socket *theirs;
        pair(&mine[i], &theirs);
        int64_t zero = 0;
        T_CHECK_EQ(mote_spawn(&ps[i], &zero, sizeof zero, NULL), 0);
        T_CHECK_EQ(mote_socket_activate(theirs, ps[i], count_on_data), 0);
    }
    for (int i = 0; i < N; i++)
        T_CHECK_EQ(mote_socket_write_all(mine[i], "ping", 4, T_PATIENCE), 0);
    /* Every process got its data, and none holds a stack while idle: a
     * process that is asked for its count runs on a stack lent for that
     * turn. (The stack count itself is not observable; the idle RSS
     * benchmark measures the memory.) */
    for (int i = 0; i < N; i++) {
        mote_result r = {0};
        int64_t deadline = mote_now() + T_PATIENCE;
        do {
            T_CHECK_EQ(mote_call(ps[i], h_count_calls, NULL, 0, &r), 0);
            if (r.i < 1)
                mote_sleep(MOTE_MSEC(1));
        } while (r.i < 1 && mote_now() < deadline);
        T_CHECK_EQ(r.i, 1);
    }
    for (int i = 0; i < N; i++) {
        mote_socket_close(mine[i]); /* each gets its final call and closes */
        mote_proc_release(ps[i]);
    }
    return 0;
}

Test(active, many_idle_connections) {
    T_RUN_OK(NULL, main_many_idle, NULL);
}

/* ---- examples/echo_active with real clients --------------------------------------- */

Test(active, echo_active_example_many_clients) {
    t_echo_many_clients("echo_active", 32, T_SCALE(50, 10), 20000);
}
