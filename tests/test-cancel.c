/* Cancellation: every kind of wait returns -ECANCELED once its process is
 * cancelled, and so does every waiting call made afterwards; the handler
 * returns, the process ends (destructor once, queued messages cancelled),
 * and later messages are cancelled at once. Deadlines. A cancel racing with
 * the start of a wait is never lost. */
#include "helpers.h"

#include <fcntl.h>
#include <sys/eventfd.h>

static atomic_int dtor_runs;

static void count_dtor(void *state) {
    (void)state;
    atomic_fetch_add(&dtor_runs, 1);
}

/* ---- A state process blocked in each kind of wait ---------------------- */

enum {
    W_AWAIT, W_AWAIT_FOR, W_CALL, W_RECEIVE, W_SLEEP, W_POLL, W_FD, W_SOCK_READ,
    W_ACCEPT, W_STREAM, W_TIMER, W_KINDS
};

typedef struct waiter_state {
    int kind;
    mote_proc *report; /* gets the wait's return value, then the handler returns */
    mote_proc *peer;   /* W_CALL / W_AWAIT*: blocked forever */
    mote_socket *sock; /* W_SOCK_READ, W_STREAM: a connected socket; W_ACCEPT: a listener */
    int fd;            /* W_FD */
} waiter_state;

static t_gate never; /* the peer's messages wait behind it for good */

static void waiter_dtor(void *state) {
    waiter_state *w = state;
    if (w->sock)
        mote_socket_close(w->sock);
    if (w->fd >= 0)
        close(w->fd);
    mote_proc_release(w->report);
    mote_proc_release(w->peer);
    atomic_fetch_add(&dtor_runs, 1);
}

static int64_t wait_once(waiter_state *w) {
    mote_result r;
    mote_future *f = NULL;
    switch (w->kind) {
    case W_AWAIT:
        f = t_async_gated(w->peer, &never, 1);
        return mote_await(f, &r);
    case W_AWAIT_FOR:
        f = t_async_gated(w->peer, &never, 1);
        return mote_await_for(f, T_PATIENCE * 10, &r);
    case W_CALL: {
        t_gated g = {&never, 1};
        return mote_call(w->peer, t_h_gated, &g, sizeof g, &r);
    }
    case W_RECEIVE: {
        mote_msg *m = NULL;
        return mote_receive(&m, MOTE_FOREVER);
    }
    case W_SLEEP:
        return mote_sleep(MOTE_SEC(3600));
    case W_POLL: {
        mote_future *futs[2] = {t_async_gated(w->peer, &never, 1), NULL}, *ready[2];
        T_CHECK_EQ(mote_timer(&futs[1], MOTE_SEC(3600)), 0);
        size_t n = 2;
        int rc = mote_poll(futs, &n, ready, 2, MOTE_FOREVER);
        T_CHECK_EQ(n, 2); /* cancelled: the futures stay the caller's */
        mote_future_drop(futs[0]);
        mote_future_drop(futs[1]);
        return rc;
    }
    case W_FD:
        return mote_fd_wait(w->fd, MOTE_READABLE, MOTE_FOREVER);
    case W_SOCK_READ: {
        char buf[16];
        return mote_socket_read(w->sock, buf, sizeof buf, MOTE_FOREVER);
    }
    case W_ACCEPT: {
        mote_socket *c = NULL;
        int rc = mote_socket_accept(w->sock, &c, NULL, MOTE_FOREVER);
        T_CHECK(c == NULL);
        return rc;
    }
    case W_STREAM: {
        mote_reader *rd = NULL;
        T_CHECK_EQ(mote_reader_new(&rd, mote_socket_stream(w->sock), 0), 0);
        const char *line;
        int64_t rc = mote_reader_read_line(rd, &line, MOTE_FOREVER);
        mote_reader_free(rd);
        return rc;
    }
    case W_TIMER:
        T_CHECK_EQ(mote_timer(&f, MOTE_SEC(3600)), 0);
        return mote_await(f, &r);
    }
    return 0;
}

/* The handler: tell the test it waits, wait, report what the wait said,
 * then check that every waiting call now refuses at once. */
static mote_result h_wait(void *state, void *arg) {
    (void)arg;
    waiter_state *w = state;
    t_send_i64(w->report, -1); /* about to wait */
    int64_t rc = wait_once(w);
    t_send_i64(w->report, rc);
    /* Made afterwards: every call that can wait refuses at once. */
    T_CHECK(mote_cancelled());
    T_CHECK_EQ(mote_sleep(0), -ECANCELED);
    T_CHECK_EQ(mote_sleep(MOTE_MSEC(1)), -ECANCELED);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, 0), -ECANCELED);
    T_CHECK_EQ(mote_fd_wait(0, MOTE_READABLE, 0), -ECANCELED);
    mote_result r;
    T_CHECK_EQ(mote_call(w->peer, t_h_get, NULL, 0, &r), -ECANCELED);
    /* Calls that never wait still work, so the process can let go. */
    mote_future *f = NULL;
    T_CHECK_EQ(mote_timer(&f, 0), 0);
    T_CHECK_EQ(mote_await(f, &r), -ECANCELED); /* and consumed it */
    return mote_ok_i(rc);
}

typedef struct wait_case {
    int kind;
} wait_case;

/* A connected pair of TCP sockets (client end, server end). */
static void tcp_pair(mote_socket **a, mote_socket **b) {
    mote_socket *l = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 4, false), 0);
    t_connect_pair(l, a, b);
    mote_socket_close(l);
}

static int main_wait_kind(void *arg) {
    wait_case *c = arg;
    waiter_state st = {.kind = c->kind, .report = mote_proc_ref(mote_self()), .fd = -1};
    mote_socket *other = NULL;
    mote_proc *peer = t_spawn_counter(0);
    st.peer = mote_proc_ref(peer);
    if (c->kind == W_FD)
        st.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->kind == W_SOCK_READ || c->kind == W_STREAM)
        tcp_pair(&other, &st.sock);
    if (c->kind == W_ACCEPT)
        T_CHECK_EQ(mote_tcp_listen(&st.sock, "127.0.0.1:0", 4, false), 0);
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, &st, sizeof st, waiter_dtor), 0);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_async(p, h_wait, NULL, 0, &f), 0);
    /* Queued behind the waiting message: cancelled when p ends. */
    mote_future *queued = NULL;
    T_CHECK_EQ(mote_async(p, t_h_get, NULL, 0, &queued), 0);
    T_CHECK_EQ(t_recv_i64(), -1);
    mote_sleep(MOTE_MSEC(2)); /* most likely suspended by now; either way works */
    T_CHECK_EQ(mote_cancel(p), 0);
    T_CHECK_EQ(mote_cancel(p), 0); /* idempotent */
    T_CHECK_EQ(t_recv_i64(), -ECANCELED);
    t_await_value(f, -ECANCELED); /* the handler returned */
    mote_result r = mote_ok_i(0);
    T_CHECK_EQ(mote_await(queued, &r), 0);
    /* mote_receive runs the calls it meets while it waits */
    T_CHECK_EQ(r.err, c->kind == W_RECEIVE ? 0 : -ECANCELED);
    t_wait_at_least(&dtor_runs, 1); /* ended though we still hold p */
    /* Later messages: cancelled at once. */
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.err, -ECANCELED);
    T_CHECK_EQ(mote_cast(p, t_h_get, NULL, 0), 0);
    T_CHECK_EQ(mote_async(p, t_h_get, NULL, 0, &f), 0);
    T_CHECK(mote_future_ready(f));
    T_CHECK_EQ(mote_await(f, &r), 0);
    T_CHECK_EQ(r.err, -ECANCELED);
    T_CHECK_EQ(atomic_load(&dtor_runs), 1);
    mote_proc_release(p);
    if (other)
        mote_socket_close(other);
    mote_proc_release(peer); /* its gated messages end with the runtime */
    return 0;
}

static void run_kind(int kind) {
    atomic_store(&dtor_runs, 0);
    wait_case c = {kind};
    T_RUN_OK(NULL, main_wait_kind, &c);
    cr_assert_eq(atomic_load(&dtor_runs), 1);
}

Test(cancel, in_await) { run_kind(W_AWAIT); }
Test(cancel, in_await_for) { run_kind(W_AWAIT_FOR); }
Test(cancel, in_call) { run_kind(W_CALL); }
Test(cancel, in_receive) { run_kind(W_RECEIVE); }
Test(cancel, in_sleep) { run_kind(W_SLEEP); }
Test(cancel, in_poll) { run_kind(W_POLL); }
Test(cancel, in_fd_wait) { run_kind(W_FD); }
Test(cancel, in_socket_read) { run_kind(W_SOCK_READ); }
Test(cancel, in_accept) { run_kind(W_ACCEPT); }
Test(cancel, in_stream_read) { run_kind(W_STREAM); }
Test(cancel, in_timer_await) { run_kind(W_TIMER); }

/* ---- Ready work is refused too ------------------------------------------ */

/* A cancelled process does no I/O and takes no message even when it could
 * without waiting: a loop on an always-readable socket ends. */
static void fn_ready(void *arg) {
    mote_socket *s = *(mote_socket **)arg;
    mote_proc *self = mote_self();
    t_send_i64(self, 7);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_timer(&f, 0), 0);
    mote_sleep(MOTE_MSEC(1)); /* f is ready now */
    T_CHECK_EQ(mote_cancel(self), 0);
    char buf[4];
    T_CHECK_EQ(mote_socket_read(s, buf, sizeof buf, 0), -ECANCELED);
    T_CHECK_EQ(mote_socket_write(s, "x", 1, 0), -ECANCELED);
    T_CHECK_EQ(mote_stream_read(mote_socket_stream(s), buf, sizeof buf, 0), -ECANCELED);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, 0), -ECANCELED);
    mote_future *futs[1] = {f}, *ready[1];
    size_t n = 1;
    T_CHECK_EQ(mote_poll(futs, &n, ready, 1, 0), -ECANCELED);
    T_CHECK_EQ(mote_await(f, NULL), -ECANCELED);
    T_CHECK_EQ(mote_socket_close(s), 0); /* still works */
}

static int main_ready(void *arg) {
    (void)arg;
    mote_socket *a = NULL, *b = NULL;
    tcp_pair(&a, &b);
    T_CHECK_EQ(mote_socket_write_all(a, "data", 4, T_PATIENCE), 0);
    mote_proc *p = NULL;
    uint64_t ref;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_ready, &b, sizeof b), 0);
    T_CHECK_EQ(mote_monitor(p, &ref), 0);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    mote_exit x = {0};
    T_CHECK(mote_msg_exit(m, &x));
    T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
    mote_msg_free(m);
    mote_proc_release(p);
    mote_socket_close(a);
    return 0;
}

Test(cancel, refuses_ready_work) { T_RUN_OK(NULL, main_ready, NULL); }

/* ---- Idle processes, handles kept --------------------------------------- */

static int main_idle(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, &(int64_t){5}, sizeof(int64_t), count_dtor), 0);
    mote_result r;
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 5);
    mote_proc *extra = mote_proc_ref(p);
    T_CHECK_EQ(mote_cancel(p), 0);
    t_wait_at_least(&dtor_runs, 1); /* ends at once, though handles remain */
    T_CHECK_EQ(mote_call(extra, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.err, -ECANCELED);
    mote_proc_release(extra);
    mote_proc_release(p);
    T_CHECK_EQ(mote_cancel(NULL), -EINVAL);
    return 0;
}

Test(cancel, idle_process_with_handles) {
    atomic_store(&dtor_runs, 0);
    T_RUN_OK(NULL, main_idle, NULL);
    cr_assert_eq(atomic_load(&dtor_runs), 1);
}

/* ---- Long computations check mote_cancelled --------------------------- */

static atomic_int spins_seen;

static void fn_compute(void *arg) {
    (void)arg;
    t_send_i64(*(mote_proc **)arg, 1);
    uint64_t x = 1;
    while (!mote_cancelled())
        x = x * 6364136223846793005u + 1; /* no waiting call at all */
    atomic_store(&spins_seen, (int)(x & 1) + 1);
}

static int main_compute(void *arg) {
    (void)arg;
    mote_proc *self = mote_self(), *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_compute, &self, sizeof self), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    T_CHECK(!mote_cancelled());
    T_CHECK_EQ(mote_cancel(p), 0);
    t_wait_at_least(&spins_seen, 1);
    mote_proc_release(p);
    return 0;
}

Test(cancel, long_computation_checks) { T_RUN_OK(NULL, main_compute, NULL); }

/* ---- A blocking section is not interrupted ----------------------------- */

static atomic_int section_done;

static void fn_section(void *arg) {
    t_send_i64(*(mote_proc **)arg, 1);
    mote_blocking_begin();
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    mote_blocking_end();
    atomic_store(&section_done, 1);
    T_CHECK_EQ(mote_sleep(MOTE_SEC(3600)), -ECANCELED); /* the next wait */
}

static int main_section(void *arg) {
    (void)arg;
    mote_proc *self = mote_self(), *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_section, &self, sizeof self), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    T_CHECK_EQ(mote_cancel(p), 0);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(p, &f), 0);
    mote_result r;
    T_CHECK_EQ(mote_await(f, &r), 0);
    T_CHECK_EQ(atomic_load(&section_done), 1);
    mote_msg_free(r.p);
    mote_proc_release(p);
    return 0;
}

Test(cancel, blocking_section_completes) { T_RUN_OK(NULL, main_section, NULL); }

/* ---- Deadlines --------------------------------------------------------- */

static void fn_sleeper(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_sleep(MOTE_SEC(3600)), -ECANCELED);
}

static mote_result h_sleep_then_count(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_ok_i(mote_sleep(MOTE_MSEC(1)));
}

static int main_deadline(void *arg) {
    (void)arg;
    /* A deadline cancels a sleeper; its monitor says why. */
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_sleeper, NULL, 0), 0);
    T_CHECK_EQ(mote_cancel_after(p, MOTE_SEC(3600)), 0);
    T_CHECK_EQ(mote_cancel_after(p, MOTE_MSEC(5)), 0); /* replaces it */
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(p, &f), 0);
    mote_result r;
    T_CHECK_EQ(mote_await(f, &r), 0);
    mote_exit x = {0};
    T_CHECK(mote_msg_exit(r.p, &x));
    T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
    T_CHECK(strcmp(x.text, "deadline passed") == 0);
    mote_msg_free(r.p);
    mote_proc_release(p);

    /* A process that ends first drops its deadline (and the reference it
     * holds): the destructor runs when the last handle goes. */
    mote_proc *q = NULL;
    T_CHECK_EQ(mote_spawn(&q, NULL, 8, count_dtor), 0);
    T_CHECK_EQ(mote_cancel_after(q, MOTE_SEC(3600)), 0);
    T_CHECK_EQ(mote_call(q, h_sleep_then_count, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 0);
    T_CHECK_EQ(mote_cancel(q), 0);
    t_wait_at_least(&dtor_runs, 1);
    mote_proc_release(q);
    T_CHECK_EQ(mote_cancel_after(NULL, 1), -EINVAL);
    return 0;
}

Test(cancel, deadlines) {
    atomic_store(&dtor_runs, 0);
    T_RUN_OK(NULL, main_deadline, NULL);
    cr_assert_eq(atomic_load(&dtor_runs), 1);
}

/* ---- Cancels racing with the start of a wait ---------------------------- */

static void fn_race(void *arg) {
    int kind = *(int *)arg;
    mote_msg *m = NULL;
    if (kind == 0)
        T_CHECK_EQ(mote_receive(&m, MOTE_FOREVER), -ECANCELED);
    else if (kind == 1)
        T_CHECK_EQ(mote_sleep(MOTE_SEC(3600)), -ECANCELED);
    /* kind 2 makes no wait: it may end normally before its cancel */
}

/* Cancel each process right after spawning it, from the main process or a
 * foreign thread, so the cancel lands anywhere from before the first run
 * (then fn never runs) to after the park: each must end, and its
 * monitor says so. */
typedef struct race_arg {
    mote_proc **procs;
    int n;
} race_arg;

static void *thread_cancel(void *arg) {
    race_arg *a = arg;
    for (int i = 1; i < a->n; i += 2)
        T_CHECK_EQ(mote_cancel(a->procs[i]), 0);
    return NULL;
}

static int main_race(void *arg) {
    int n = *(int *)arg;
    mote_proc **procs = calloc((size_t)n, sizeof *procs);
    mote_future **exits = calloc((size_t)n, sizeof *exits);
    for (int i = 0; i < n; i++) {
        int kind = i % 3;
        T_CHECK_EQ(mote_spawn_fn(&procs[i], fn_race, &kind, sizeof kind), 0);
        T_CHECK_EQ(mote_monitor_future(procs[i], &exits[i]), 0);
        if (i % 2 == 0)
            T_CHECK_EQ(mote_cancel(procs[i]), 0);
        if (i % 7 == 0)
            mote_yield();
    }
    race_arg a = {procs, n};
    pthread_t t = t_thread(thread_cancel, &a);
    t_join(t);
    for (int i = 0; i < n; i++) {
        mote_result r = mote_error(-1);
        T_CHECK_EQ(mote_await_for(exits[i], T_PATIENCE, &r), 0);
        mote_exit x = {.reason = -1};
        T_CHECK(r.err == 0 && mote_msg_exit(r.p, &x));
        T_CHECK(x.reason == MOTE_EXIT_CANCELLED || (i % 3 == 2 && x.reason == MOTE_EXIT_NORMAL));
        mote_msg_free(r.p);
        mote_proc_release(procs[i]);
    }
    free(exits);
    free(procs);
    return 0;
}

Test(cancel, racing_the_start_of_waits) {
    int n = T_SCALE(3000, 600);
    for (int round = 0; round < 3; round++) {
        mote_config cfg = {.threads = (unsigned)round + 1};
        cr_assert_eq(t_run(&cfg, main_race, &n), 0);
    }
}

/* ---- Outside a process -------------------------------------------------- */

static void *thread_outside(void *arg) {
    mote_proc *p = arg;
    T_CHECK(!mote_cancelled());
    T_CHECK_EQ(mote_cancel(p), 0);
    return NULL;
}

static int main_foreign(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_sleeper, NULL, 0), 0);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(p, &f), 0);
    t_join(t_thread(thread_outside, p));
    T_CHECK_EQ(mote_await(f, NULL), 0); /* no taker: the notice is freed */
    mote_proc_release(p);
    return 0;
}

Test(cancel, from_a_foreign_thread) {
    T_RUN_OK(NULL, main_foreign, NULL);
    cr_assert_eq(mote_cancel(NULL), -EINVAL);
    cr_assert(!mote_cancelled());
}
