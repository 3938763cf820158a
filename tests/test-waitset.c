/* Wait sets: each kind of source, mixes, removal, tags, timeouts, many
 * sources, ownership, and a future in a set awaited, dropped or freed. */
#include "helpers.h"

#include <fcntl.h>

/* Wait for exactly one event and check its tag and kind. */
static mote_waitset_event t_one(mote_waitset *ws, uint64_t tag, int kind) {
    mote_waitset_event e[4] = {{0}};
    int n = mote_waitset_wait(ws, e, 4, T_PATIENCE);
    T_CHECK_EQ(n, 1);
    T_CHECK_EQ(e[0].tag, tag);
    T_CHECK_EQ(e[0].kind, kind);
    return e[0];
}

/* Wait until tag is reported with one of the bits in mask; other reports
 * of it (readiness for the other direction, say) are skipped. */
static mote_waitset_event t_until(mote_waitset *ws, uint64_t tag, int mask) {
    mote_waitset_event e = {0};
    int64_t give_up = mote_now() + T_PATIENCE;
    while (mote_now() < give_up) {
        T_CHECK_EQ(mote_waitset_wait(ws, &e, 1, T_PATIENCE), 1);
        T_CHECK_EQ(e.tag, tag);
        if (e.events < 0 || (e.events & mask))
            return e;
    }
    t_fail(__FILE__, __LINE__, "tag %llu never reported with %d", (unsigned long long)tag, mask);
    return e;
}

/* Nothing ready: a zero timeout says so at once. */
static void t_none(mote_waitset *ws) {
    mote_waitset_event e;
    T_CHECK_EQ(mote_waitset_wait(ws, &e, 1, 0), -ETIMEDOUT);
}

static int t_pipe(int fds[2]) {
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

/* ---- Arguments, ownership, timeouts ------------------------------------------------------- */

static void *thread_not_owner(void *arg) {
    mote_waitset *ws = arg;
    mote_waitset_event e;
    T_CHECK_EQ(mote_waitset_wait(ws, &e, 1, 0), -EPERM);
    T_CHECK_EQ(mote_waitset_add_timer(ws, 1, 99), -EPERM);
    T_CHECK_EQ(mote_waitset_remove(ws, 1), -EPERM);
    return NULL;
}

typedef struct not_owner {
    mote_waitset *ws;
    mote_proc *report;
} not_owner;

static void fn_not_owner(void *arg) {
    not_owner *a = arg;
    thread_not_owner(a->ws);
    t_send_i64(a->report, 1);
    mote_proc_release(a->report);
}

static void *thread_own_set(void *arg) {
    (void)arg;
    /* A foreign thread may own a set, but has no mailbox. */
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 1), -EPERM);
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_MSEC(1), 2), 0);
    mote_waitset_event e;
    T_CHECK_EQ(mote_waitset_wait(ws, &e, 1, T_PATIENCE), 1);
    T_CHECK_EQ(e.tag, 2);
    mote_waitset_free(ws);
    return NULL;
}

static int main_args(void *arg) {
    (void)arg;
    mote_waitset *ws = NULL;
    mote_waitset_event e;
    T_CHECK_EQ(mote_waitset_new(NULL), -EINVAL);
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    T_CHECK_EQ(mote_waitset_add_future(ws, NULL, 1), -EINVAL);
    T_CHECK_EQ(mote_waitset_add_future(NULL, NULL, 1), -EINVAL);
    T_CHECK_EQ(mote_waitset_add_timer(NULL, 1, 1), -EINVAL);
    T_CHECK_EQ(mote_waitset_add_mailbox(NULL, 1), -EINVAL);
    T_CHECK_EQ(mote_waitset_add_fd(ws, -1, MOTE_READABLE, 1), -EBADF);
    T_CHECK_EQ(mote_waitset_add_fd(ws, 0, 0, 1), -EINVAL);
    T_CHECK_EQ(mote_waitset_add_fd(ws, 0, 4, 1), -EINVAL);
    T_CHECK_EQ(mote_waitset_wait(ws, &e, 0, 0), -EINVAL);
    T_CHECK_EQ(mote_waitset_wait(ws, NULL, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_waitset_wait(NULL, &e, 1, 0), -EINVAL);
    T_CHECK_EQ(mote_waitset_remove(ws, 1), -ENOENT);
    T_CHECK_EQ(mote_waitset_remove(NULL, 1), -EINVAL);
    /* Tags are unique, whatever the kind. */
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_SEC(3600), 1), 0);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 1), -EEXIST);
    T_CHECK_EQ(mote_waitset_add_timer(ws, 1, 1), -EEXIST);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 2), 0);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 3), -EEXIST); /* one mailbox */
    /* A regular file cannot be polled. */
    char path[] = "/tmp/mote-waitset-XXXXXX";
    int fd = mkstemp(path);
    T_CHECK(fd >= 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, fd, MOTE_READABLE, 4), -EPERM);
    close(fd);
    unlink(path);
    /* Only the owner uses it. */
    t_join(t_thread(thread_not_owner, ws));
    not_owner no = {ws, mote_proc_ref(mote_self())};
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_not_owner, &no, sizeof no), 0);
    T_CHECK_EQ(t_recv_i64(), 1);
    t_join(t_thread(thread_own_set, NULL));
    /* Nothing ready: the timeout, not earlier. */
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_waitset_wait(ws, &e, 1, MOTE_MSEC(20)), -ETIMEDOUT);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(20));
    T_CHECK_EQ(mote_waitset_remove(ws, 1), 0);
    T_CHECK_EQ(mote_waitset_remove(ws, 1), -ENOENT);
    mote_waitset_free(ws);
    mote_waitset_free(NULL);
    /* An empty set waits out its timeout. */
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    T_CHECK_EQ(mote_waitset_wait(ws, &e, 1, MOTE_MSEC(1)), -ETIMEDOUT);
    mote_waitset_free(ws);
    return 0;
}

Test(waitset, arguments_ownership_and_timeouts) { T_RUN_OK(NULL, main_args, NULL); }

Test(waitset, refused_without_a_runtime) {
    mote_waitset *ws = (mote_waitset *)1;
    cr_assert_eq(mote_waitset_new(&ws), -ESHUTDOWN);
    cr_assert(ws == NULL);
}

/* ---- Futures ---------------------------------------------------------------------------- */

static int main_futures(void *arg) {
    (void)arg;
    mote_proc *worker = t_spawn_counter(0);
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    t_gate g1 = {0}, g2 = {0};
    mote_future *a = t_async_gated(worker, &g1, 10);
    T_CHECK_EQ(mote_waitset_add_future(ws, a, 100), 0);
    T_CHECK_EQ(mote_waitset_add_future(ws, a, 101), -EBUSY); /* in a set already */
    t_none(ws);
    /* Held by the set: not awaited elsewhere, not said ready. */
    T_CHECK_EQ(mote_await_for(a, 0, NULL), -EBUSY);
    mote_future *pa[1] = {a}, *ready[1];
    size_t n = 1;
    T_CHECK_EQ(mote_poll(pa, &n, ready, 1, 0), -EBUSY);
    t_gate_open(&g1);
    t_one(ws, 100, MOTE_WS_FUTURE);
    /* Reported: it left the set, and its result is there. */
    T_CHECK(mote_future_ready(a));
    t_await_value(a, 10);
    T_CHECK_EQ(mote_waitset_remove(ws, 100), -ENOENT);
    t_none(ws);
    /* Done before it is added: reported by the next wait. */
    mote_future *b = t_async_echo(worker, 11);
    while (!mote_future_ready(b))
        mote_sleep(MOTE_USEC(100));
    T_CHECK_EQ(mote_waitset_add_future(ws, b, 200), 0);
    t_one(ws, 200, MOTE_WS_FUTURE);
    t_await_value(b, 11);
    /* Removed: handed back as it is, pending or done. */
    mote_future *c = t_async_gated(worker, &g2, 12);
    T_CHECK_EQ(mote_waitset_add_future(ws, c, 300), 0);
    T_CHECK_EQ(mote_waitset_remove(ws, 300), 0);
    t_gate_open(&g2);
    t_await_value(c, 12);
    t_none(ws);
    /* A future being awaited cannot be added. */
    mote_waitset_free(ws);
    mote_proc_release(worker);
    return 0;
}

Test(waitset, futures_are_reported_once_by_tag) { T_RUN_OK(NULL, main_futures, NULL); }

typedef struct drop_args {
    mote_future *f;
    t_gate *done;
} drop_args;

static void *thread_drop(void *arg) {
    drop_args *d = arg;
    mote_future_drop(d->f);
    t_gate_open(d->done);
    return NULL;
}

/* Dropped while in a set, before or after its result: the set drops it at
 * its next look and never reports it; nothing leaks (ASan), nothing is
 * touched after it is freed. */
static int main_future_dropped(void *arg) {
    (void)arg;
    mote_proc *worker = t_spawn_counter(0);
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    t_gate g = {0}, dropped = {0};
    /* Pending, dropped, then completed. */
    mote_future *a = t_async_gated(worker, &g, 1);
    T_CHECK_EQ(mote_waitset_add_future(ws, a, 1), 0);
    mote_future_drop(a);
    t_gate_open(&g);
    mote_future *sync = t_async_echo(worker, 0); /* a has completed after this */
    t_await_value(sync, 0);
    t_none(ws);
    /* Completed, then dropped before the set looks. */
    mote_future *b = t_async_echo(worker, 2);
    T_CHECK_EQ(mote_waitset_add_future(ws, b, 2), 0);
    sync = t_async_echo(worker, 0);
    t_await_value(sync, 0);
    mote_future_drop(b);
    t_none(ws);
    /* Dropped by another thread while the owner waits: the wait goes on. */
    t_gate g3 = {0};
    mote_future *c = t_async_gated(worker, &g3, 3);
    T_CHECK_EQ(mote_waitset_add_future(ws, c, 3), 0);
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_MSEC(30), 4), 0);
    drop_args d = {c, &dropped};
    pthread_t th = t_thread(thread_drop, &d);
    t_one(ws, 4, MOTE_WS_TIMER);
    t_join(th);
    t_gate_open(&g3);
    /* Dropped, then removed or freed with the set. */
    t_gate g4 = {0};
    mote_future *e = t_async_gated(worker, &g4, 5), *f = t_async_gated(worker, &g4, 6);
    T_CHECK_EQ(mote_waitset_add_future(ws, e, 5), 0);
    T_CHECK_EQ(mote_waitset_add_future(ws, f, 6), 0);
    mote_future_drop(e);
    mote_future_drop(f);
    T_CHECK_EQ(mote_waitset_remove(ws, 5), 0);
    mote_waitset_free(ws);
    t_gate_open(&g4);
    sync = t_async_echo(worker, 0);
    t_await_value(sync, 0);
    mote_proc_release(worker);
    return 0;
}

Test(waitset, a_dropped_future_is_dropped_by_the_set) { T_RUN_OK(NULL, main_future_dropped, NULL); }

/* A timer future in a set: reset while in it, dropped while in it. */
static int main_timer_futures(void *arg) {
    (void)arg;
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    mote_future *t1 = NULL, *t2 = NULL;
    T_CHECK_EQ(mote_timer(&t1, MOTE_SEC(3600)), 0);
    T_CHECK_EQ(mote_timer(&t2, MOTE_SEC(3600)), 0);
    T_CHECK_EQ(mote_waitset_add_future(ws, t1, 1), 0);
    T_CHECK_EQ(mote_waitset_add_future(ws, t2, 2), 0);
    mote_future_drop(t2); /* cancelled and freed once the set lets go */
    T_CHECK_EQ(mote_timer_reset(t1, MOTE_MSEC(2)), 0);
    t_one(ws, 1, MOTE_WS_FUTURE);
    T_CHECK_EQ(mote_await(t1, NULL), 0);
    t_none(ws);
    mote_waitset_free(ws);
    return 0;
}

Test(waitset, timer_futures_in_a_set) { T_RUN_OK(NULL, main_timer_futures, NULL); }

/* ---- Descriptors ---------------------------------------------------------------------- */

static int main_fds(void *arg) {
    (void)arg;
    int p[2];
    T_CHECK_EQ(t_pipe(p), 0);
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, p[0], MOTE_READABLE, 10), 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, p[0], MOTE_READABLE, 11), -EBUSY); /* one per direction */
    t_none(ws);
    /* Another waiter in that direction: -EBUSY. */
    T_CHECK_EQ(mote_fd_wait(p[0], MOTE_READABLE, MOTE_MSEC(1)), -EBUSY);
    char buf[64];
    T_CHECK_EQ(write(p[1], "x", 1), 1);
    mote_waitset_event e = t_one(ws, 10, MOTE_WS_FD);
    T_CHECK_EQ(e.events, MOTE_READABLE);
    /* Edge-triggered: nothing new until new data, read or not. */
    t_none(ws);
    T_CHECK_EQ(read(p[0], buf, sizeof buf), 1);
    T_CHECK_EQ(read(p[0], buf, sizeof buf), -1);
    t_none(ws);
    T_CHECK_EQ(write(p[1], "yy", 2), 2);
    e = t_one(ws, 10, MOTE_WS_FD);
    T_CHECK_EQ(read(p[0], buf, sizeof buf), 2);
    /* Ready when added (the write end has room): reported at once. */
    T_CHECK_EQ(mote_waitset_add_fd(ws, p[1], MOTE_WRITABLE, 20), 0);
    e = t_one(ws, 20, MOTE_WS_FD);
    T_CHECK_EQ(e.events, MOTE_WRITABLE);
    T_CHECK_EQ(mote_waitset_remove(ws, 20), 0);
    /* Readiness not yet reported survives a remove: a plain wait takes it
     * (without it, the wait below would sleep its whole timeout). Whether
     * the edge reached the set before the remove or arrives after, it is
     * kept. */
    T_CHECK_EQ(write(p[1], "z", 1), 1);
    mote_sleep(MOTE_MSEC(2));
    T_CHECK_EQ(mote_waitset_remove(ws, 10), 0);
    T_CHECK_EQ(mote_fd_wait(p[0], MOTE_READABLE, T_PATIENCE), MOTE_READABLE);
    T_CHECK_EQ(read(p[0], buf, sizeof buf), 1);
    /* Closed while in the set: -EBADF once, and it has left. */
    T_CHECK_EQ(mote_waitset_add_fd(ws, p[0], MOTE_READABLE, 30), 0);
    T_CHECK_EQ(mote_fd_close(p[0]), 0);
    e = t_one(ws, 30, MOTE_WS_FD);
    T_CHECK_EQ(e.events, -EBADF);
    T_CHECK_EQ(mote_waitset_remove(ws, 30), -ENOENT);
    mote_waitset_free(ws);
    mote_fd_close(p[1]);
    return 0;
}

Test(waitset, descriptors_edge_triggered_with_readiness_kept) { T_RUN_OK(NULL, main_fds, NULL); }

/* A socket in a set, read with zero timeouts; both directions at once. */
static int main_socket(void *arg) {
    (void)arg;
    mote_socket *l = NULL, *a = NULL, *b = NULL;
    T_CHECK_EQ(mote_tcp_listen(&l, "127.0.0.1:0", 16, false), 0);
    mote_addr la;
    T_CHECK_EQ(mote_socket_local_addr(l, &la), 0);
    char addr[64];
    T_CHECK_EQ(mote_addr_format(&la, addr, sizeof addr), 0);
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, mote_socket_fd(l), MOTE_READABLE, 1), 0);
    T_CHECK_EQ(mote_tcp_connect(&b, addr, T_PATIENCE), 0);
    t_one(ws, 1, MOTE_WS_FD);
    T_CHECK_EQ(mote_socket_accept(l, &a, NULL, 0), 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, mote_socket_fd(a), MOTE_READABLE | MOTE_WRITABLE, 2), 0);
    mote_waitset_event e = t_one(ws, 2, MOTE_WS_FD);
    T_CHECK_EQ(e.events, MOTE_WRITABLE);
    T_CHECK_EQ(mote_socket_write_all(b, "ping", 4, T_PATIENCE), 0);
    /* (The registration's first edge may report writable again first.) */
    e = t_until(ws, 2, MOTE_READABLE);
    char buf[16];
    T_CHECK_EQ(mote_socket_read(a, buf, sizeof buf, 0), 4);
    T_CHECK_EQ(mote_socket_read(a, buf, sizeof buf, 0), -ETIMEDOUT);
    /* Its own waits in a hooked direction: -EBUSY. Under MOTE_POLLER=uring
     * a read with a timeout is an io_uring operation of its own, which
     * waits for data instead (mote.h, sockets); a kernel that refuses
     * io_uring gives epoll, hence -EBUSY, there too. */
    const char *poller = getenv("MOTE_POLLER");
    int64_t r = mote_socket_read(a, buf, sizeof buf, MOTE_MSEC(10));
    if (poller && strcmp(poller, "uring") == 0 && r == -ETIMEDOUT)
        r = -EBUSY;
    T_CHECK_EQ(r, -EBUSY);
    /* The peer goes: readable (end of stream). */
    T_CHECK_EQ(mote_socket_close(b), 0);
    e = t_until(ws, 2, MOTE_READABLE);
    T_CHECK_EQ(mote_socket_read(a, buf, sizeof buf, 0), 0);
    /* Closing the socket: -EBADF, and it leaves the set. */
    T_CHECK_EQ(mote_socket_close(a), 0);
    e = t_until(ws, 2, 0);
    T_CHECK_EQ(e.events, -EBADF);
    mote_waitset_free(ws);
    mote_socket_close(l);
    return 0;
}

Test(waitset, sockets) { T_RUN_OK(NULL, main_socket, NULL); }

/* ---- The mailbox and timers ------------------------------------------------------------ */

static void fn_send_later(void *arg) {
    mote_proc *to = *(mote_proc **)arg;
    mote_sleep(MOTE_MSEC(10));
    t_send_i64(to, 7);
    mote_proc_release(to);
}

static int main_mailbox_timer(void *arg) {
    (void)arg;
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 5), 0);
    t_none(ws);
    /* A message wakes a waiting owner. */
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_spawn_fn(NULL, fn_send_later, &me, sizeof me), 0);
    t_one(ws, 5, MOTE_WS_MAILBOX);
    /* Level: reported while a message waits. */
    t_one(ws, 5, MOTE_WS_MAILBOX);
    T_CHECK_EQ(t_recv_i64(), 7);
    t_none(ws);
    /* A timer: once, not before its time, then gone. */
    int64_t t0 = mote_now();
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_MSEC(15), 6), 0);
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_SEC(3600), 7), 0);
    t_one(ws, 6, MOTE_WS_TIMER);
    T_CHECK(mote_now() - t0 >= MOTE_MSEC(15));
    T_CHECK_EQ(mote_waitset_remove(ws, 6), -ENOENT);
    /* A removed timer never comes. */
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_MSEC(1), 8), 0);
    T_CHECK_EQ(mote_waitset_remove(ws, 8), 0);
    mote_waitset_event e;
    T_CHECK_EQ(mote_waitset_wait(ws, &e, 1, MOTE_MSEC(10)), -ETIMEDOUT);
    /* Fired but not yet reported, then removed: freed, not reported. */
    T_CHECK_EQ(mote_waitset_add_timer(ws, 0, 9), 0);
    mote_sleep(MOTE_MSEC(2));
    T_CHECK_EQ(mote_waitset_remove(ws, 9), 0);
    t_none(ws);
    T_CHECK_EQ(mote_waitset_remove(ws, 5), 0);
    mote_waitset_free(ws);
    return 0;
}

Test(waitset, mailbox_level_and_timers_once) { T_RUN_OK(NULL, main_mailbox_timer, NULL); }

/* ---- Mixes and many sources ------------------------------------------------------------- */

static int main_mix(void *arg) {
    (void)arg;
    mote_proc *worker = t_spawn_counter(0);
    int p[2];
    T_CHECK_EQ(t_pipe(p), 0);
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    T_CHECK_EQ(mote_waitset_add_future(ws, t_async_echo(worker, 1), 1), 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, p[0], MOTE_READABLE, 2), 0);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 3), 0);
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_MSEC(1), 4), 0);
    T_CHECK_EQ(write(p[1], "x", 1), 1);
    t_send_i64(mote_self(), 9);
    int seen[5] = {0};
    int64_t give_up = mote_now() + T_PATIENCE;
    while ((!seen[1] || !seen[2] || !seen[3] || !seen[4]) && mote_now() < give_up) {
        mote_waitset_event e[2]; /* fewer than ready: the rest stay for later */
        int n = mote_waitset_wait(ws, e, 2, T_PATIENCE);
        T_CHECK(n > 0 && n <= 2);
        for (int i = 0; i < n; i++) {
            T_CHECK(e[i].tag >= 1 && e[i].tag <= 4);
            T_CHECK_EQ(e[i].kind, (int)e[i].tag); /* tags chosen to match kinds */
            seen[e[i].tag]++;
            if (e[i].tag == 3)
                T_CHECK_EQ(t_recv_i64(), 9);
        }
    }
    T_CHECK_EQ(seen[1], 1);
    T_CHECK_EQ(seen[4], 1);
    T_CHECK(seen[2] >= 1 && seen[3] >= 1);
    mote_waitset_free(ws);
    mote_fd_close(p[0]);
    mote_fd_close(p[1]);
    mote_proc_release(worker);
    return 0;
}

Test(waitset, a_mix_of_every_kind) { T_RUN_OK(NULL, main_mix, NULL); }

/* Many sources: only the ready ones are reported, each once, whatever
 * the count; the futures are completed by processes and foreign threads
 * while the owner waits. */
enum { MANY = T_SCALE(10000, 2000), READY = 500 };

static mote_future *many[MANY];

typedef struct completer {
    mote_proc *worker;
    int from, to;
} completer;

static void *thread_send_calls(void *arg) {
    completer *c = arg;
    for (int i = c->from; i < c->to; i++)
        T_CHECK_EQ(mote_async(c->worker, t_h_echo, &(int64_t){i}, sizeof(int64_t), &many[i]), 0);
    return NULL;
}

static int main_many(void *arg) {
    (void)arg;
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    /* MANY - READY timers that never fire, READY calls. */
    for (int i = READY; i < MANY; i++) {
        T_CHECK_EQ(mote_timer(&many[i], MOTE_SEC(3600)), 0);
        T_CHECK_EQ(mote_waitset_add_future(ws, many[i], (uint64_t)i), 0);
    }
    mote_proc *worker = t_spawn_counter(0);
    /* The calls are made (and may complete) from a foreign thread while
     * the futures are added here: completing races with adding. */
    completer c = {worker, 0, READY / 2};
    pthread_t th = t_thread(thread_send_calls, &c);
    t_join(th);
    for (int i = 0; i < READY / 2; i++)
        T_CHECK_EQ(mote_waitset_add_future(ws, many[i], (uint64_t)i), 0);
    for (int i = READY / 2; i < READY; i++) {
        many[i] = t_async_echo(worker, i);
        T_CHECK_EQ(mote_waitset_add_future(ws, many[i], (uint64_t)i), 0);
    }
    static char seen[MANY];
    int got = 0;
    while (got < READY) {
        mote_waitset_event e[64];
        int n = mote_waitset_wait(ws, e, 64, T_PATIENCE);
        T_CHECK(n > 0);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            uint64_t k = e[i].tag;
            T_CHECK(k < READY);
            if (k >= READY)
                continue;
            T_CHECK_EQ(seen[k], 0);
            seen[k] = 1;
            t_await_value(many[k], (int64_t)k);
            got++;
        }
    }
    t_none(ws);
    /* Remove half the timers by tag; free the set with the rest (they are
     * handed back: drop them). */
    for (int i = READY; i < MANY; i += 2) {
        T_CHECK_EQ(mote_waitset_remove(ws, (uint64_t)i), 0);
        mote_future_drop(many[i]);
    }
    mote_waitset_free(ws);
    for (int i = READY + 1; i < MANY; i += 2)
        mote_future_drop(many[i]);
    mote_proc_release(worker);
    return 0;
}

Test(waitset, many_sources_only_the_ready_reported) { T_RUN_OK(NULL, main_many, NULL); }

/* A foreign thread owns a set of futures that processes complete. */
static void *thread_owner(void *arg) {
    mote_proc *worker = arg;
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    enum { N = 50 };
    mote_future *fs[N];
    for (int i = 0; i < N; i++) {
        fs[i] = t_async_echo(worker, i);
        T_CHECK_EQ(mote_waitset_add_future(ws, fs[i], (uint64_t)i), 0);
    }
    int got = 0;
    while (got < N) {
        mote_waitset_event e[8];
        int n = mote_waitset_wait(ws, e, 8, T_PATIENCE);
        T_CHECK(n > 0);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++)
            t_await_value(fs[e[i].tag], (int64_t)e[i].tag);
        got += n;
    }
    mote_waitset_free(ws);
    return NULL;
}

static int main_foreign_owner(void *arg) {
    (void)arg;
    mote_proc *worker = t_spawn_counter(0);
    t_join(t_thread(thread_owner, worker));
    mote_proc_release(worker);
    return 0;
}

Test(waitset, a_foreign_thread_owns_a_set) { T_RUN_OK(NULL, main_foreign_owner, NULL); }

/* Freed with every kind still in it: futures handed back, the descriptor
 * usable by plain waits again, timers cancelled. */
static int main_free_with_sources(void *arg) {
    (void)arg;
    mote_proc *worker = t_spawn_counter(0);
    int p[2];
    T_CHECK_EQ(t_pipe(p), 0);
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    t_gate g = {0};
    mote_future *a = t_async_gated(worker, &g, 1), *b = t_async_echo(worker, 2);
    T_CHECK_EQ(mote_waitset_add_future(ws, a, 1), 0);
    T_CHECK_EQ(mote_waitset_add_future(ws, b, 2), 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, p[0], MOTE_READABLE, 3), 0);
    T_CHECK_EQ(mote_waitset_add_timer(ws, 0, 4), 0);
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_SEC(3600), 5), 0);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 6), 0);
    mote_sleep(MOTE_MSEC(2)); /* b done and the 0 timer fired: queued, unreported */
    mote_waitset_free(ws);
    t_gate_open(&g);
    t_await_value(a, 1);
    t_await_value(b, 2);
    T_CHECK_EQ(write(p[1], "x", 1), 1);
    T_CHECK_EQ(mote_fd_wait(p[0], MOTE_READABLE, T_PATIENCE), MOTE_READABLE);
    mote_fd_close(p[0]);
    mote_fd_close(p[1]);
    mote_proc_release(worker);
    return 0;
}

Test(waitset, freed_with_sources_in_it) { T_RUN_OK(NULL, main_free_with_sources, NULL); }

/* Producers on other threads complete futures while the owner waits and
 * adds more: every one is reported exactly once (no lost or doubled
 * wake-up under contention). */
enum { STRESS = T_SCALE(20000, 3000) };

static void *thread_completer(void *arg) {
    completer *c = arg;
    for (int i = c->from; i < c->to; i++) {
        mote_future *f = NULL;
        T_CHECK_EQ(mote_async(c->worker, t_h_echo, &(int64_t){i}, sizeof(int64_t), &f), 0);
        mote_future_drop(f); /* load on the workers, nothing more */
    }
    return NULL;
}

static int main_stress(void *arg) {
    (void)arg;
    mote_proc *workers[4];
    for (int k = 0; k < 4; k++)
        workers[k] = t_spawn_counter(0);
    completer load = {workers[3], 0, STRESS / 4};
    pthread_t th = t_thread(thread_completer, &load);
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    static mote_future *fs[STRESS];
    int added = 0, got = 0, window = 64;
    while (got < STRESS) {
        while (added < STRESS && added - got < window) {
            fs[added] = t_async_echo(workers[added % 3], added);
            T_CHECK_EQ(mote_waitset_add_future(ws, fs[added], (uint64_t)added), 0);
            added++;
        }
        mote_waitset_event e[16];
        int n = mote_waitset_wait(ws, e, 16, T_PATIENCE);
        T_CHECK(n > 0);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            T_CHECK(fs[e[i].tag] != NULL);
            t_await_value(fs[e[i].tag], (int64_t)e[i].tag);
            fs[e[i].tag] = NULL;
        }
        got += n;
    }
    T_CHECK_EQ(got, STRESS);
    t_none(ws);
    mote_waitset_free(ws);
    t_join(th);
    for (int k = 0; k < 4; k++)
        mote_proc_release(workers[k]);
    return 0;
}

Test(waitset, every_completion_reported_once_under_load) {
    T_RUN_OK(NULL, main_stress, NULL);
    mote_config one = {.threads = 1};
    T_RUN_OK(&one, main_stress, NULL);
}

/* ---- Cancellation and shutdown ------------------------------------------------------------ */

/* A process waiting in a set with every kind of source: -ECANCELED when it
 * is cancelled, and at once from every later wait, even with sources
 * ready; the set is still its to free. With *ready set, its sources are
 * made ready before it waits (then the cancel lands before the wait). */
typedef struct ws_waiter {
    mote_proc *report, *peer;
    t_gate *gate;
    int fd;
    bool ready;
} ws_waiter;

static void fn_ws_cancelled(void *arg) {
    ws_waiter *a = arg;
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    mote_future *f = t_async_gated(a->peer, a->gate, 7);
    T_CHECK_EQ(mote_waitset_add_future(ws, f, 1), 0);
    T_CHECK_EQ(mote_waitset_add_timer(ws, a->ready ? 0 : MOTE_SEC(3600), 2), 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, a->fd, MOTE_READABLE, 3), 0);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 4), 0);
    t_send_i64(a->report, -1); /* about to wait */
    while (a->ready && !mote_cancelled())
        mote_yield();
    mote_waitset_event e[4];
    int rc = mote_waitset_wait(ws, e, 4, MOTE_FOREVER);
    t_send_i64(a->report, rc);
    T_CHECK_EQ(mote_waitset_wait(ws, e, 4, MOTE_SEC(3600)), -ECANCELED);
    T_CHECK_EQ(mote_waitset_wait(ws, e, 4, 0), -ECANCELED);
    mote_waitset_free(ws); /* f goes back to us: the cancel consumes it */
    mote_result r;
    T_CHECK_EQ(mote_await(f, &r), -ECANCELED);
    mote_proc_release(a->report);
    mote_proc_release(a->peer);
}

static int main_cancelled(void *arg) {
    bool ready = *(bool *)arg;
    t_gate g = {0};
    mote_proc *peer = t_spawn_counter(0);
    int fds[2];
    T_CHECK_EQ(t_pipe(fds), 0);
    ws_waiter a = {mote_proc_ref(mote_self()), mote_proc_ref(peer), &g, fds[0], ready};
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_ws_cancelled, &a, sizeof a), 0);
    mote_future *exit = NULL;
    T_CHECK_EQ(mote_monitor_future(p, &exit), 0);
    T_CHECK_EQ(t_recv_i64(), -1);
    if (!ready)
        mote_sleep(MOTE_MSEC(2)); /* most likely suspended by now; either way works */
    T_CHECK_EQ(mote_cancel(p), 0);
    T_CHECK_EQ(t_recv_i64(), -ECANCELED);
    mote_result r = mote_error(-1);
    T_CHECK_EQ(mote_await_for(exit, T_PATIENCE, &r), 0);
    mote_exit x = {.reason = -1};
    T_CHECK(r.err == 0 && mote_msg_exit(r.p, &x));
    T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
    mote_msg_free(r.p);
    /* The pipe is a plain descriptor again. */
    T_CHECK_EQ(write(fds[1], "x", 1), 1);
    T_CHECK_EQ(mote_fd_wait(fds[0], MOTE_READABLE, T_PATIENCE), MOTE_READABLE);
    t_gate_open(&g);
    mote_fd_close(fds[0]);
    mote_fd_close(fds[1]);
    mote_proc_release(p);
    mote_proc_release(peer);
    return 0;
}

Test(waitset, a_cancel_ends_the_wait) {
    bool ready = false;
    T_RUN_OK(NULL, main_cancelled, &ready);
}

Test(waitset, a_cancelled_process_waits_no_more_though_sources_are_ready) {
    bool ready = true;
    T_RUN_OK(NULL, main_cancelled, &ready);
}

/* Cancels racing with the start of a set's wait, from the main process
 * and a foreign thread: every process ends (no lost cancel). */
static void fn_ws_race(void *arg) {
    (void)arg;
    mote_waitset *ws = NULL;
    if (mote_waitset_new(&ws) < 0)
        return;
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_SEC(3600), 1), 0);
    T_CHECK_EQ(mote_waitset_add_mailbox(ws, 2), 0);
    mote_waitset_event e;
    T_CHECK_EQ(mote_waitset_wait(ws, &e, 1, MOTE_FOREVER), -ECANCELED);
    mote_waitset_free(ws);
}

typedef struct ws_race {
    mote_proc **procs;
    int n;
} ws_race;

static void *thread_ws_cancel(void *arg) {
    ws_race *a = arg;
    for (int i = 1; i < a->n; i += 2)
        T_CHECK_EQ(mote_cancel(a->procs[i]), 0);
    return NULL;
}

static int main_ws_race(void *arg) {
    int n = *(int *)arg;
    mote_proc **procs = calloc((size_t)n, sizeof *procs);
    mote_future **exits = calloc((size_t)n, sizeof *exits);
    for (int i = 0; i < n; i++) {
        T_CHECK_EQ(mote_spawn_fn(&procs[i], fn_ws_race, NULL, 0), 0);
        T_CHECK_EQ(mote_monitor_future(procs[i], &exits[i]), 0);
        if (i % 2 == 0)
            T_CHECK_EQ(mote_cancel(procs[i]), 0);
        if (i % 7 == 0)
            mote_yield();
    }
    ws_race a = {procs, n};
    t_join(t_thread(thread_ws_cancel, &a));
    for (int i = 0; i < n; i++) {
        mote_result r = mote_error(-1);
        T_CHECK_EQ(mote_await_for(exits[i], T_PATIENCE, &r), 0);
        mote_exit x = {.reason = -1};
        T_CHECK(r.err == 0 && mote_msg_exit(r.p, &x));
        T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
        mote_msg_free(r.p);
        mote_proc_release(procs[i]);
    }
    free(exits);
    free(procs);
    return 0;
}

Test(waitset, cancels_racing_the_start_of_waits) {
    int n = T_SCALE(2000, 400);
    for (int threads = 1; threads <= 3; threads++) {
        mote_config cfg = {.threads = (unsigned)threads};
        cr_assert_eq(t_run(&cfg, main_ws_race, &n), 0);
    }
}

/* Processes blocked in their sets when main returns: shutdown cancels
 * them, they free their sets (with a future of a process that never
 * replies, and a descriptor) and end; nothing leaks (ASan). */
static atomic_int ws_ended;

static void fn_ws_shutdown(void *arg) {
    ws_waiter *a = arg;
    int fds[2];
    T_CHECK_EQ(t_pipe(fds), 0);
    mote_waitset *ws = NULL;
    T_CHECK_EQ(mote_waitset_new(&ws), 0);
    mote_future *f = t_async_gated(a->peer, a->gate, 1);
    T_CHECK_EQ(mote_waitset_add_future(ws, f, 1), 0);
    T_CHECK_EQ(mote_waitset_add_fd(ws, fds[0], MOTE_READABLE, 2), 0);
    T_CHECK_EQ(mote_waitset_add_timer(ws, MOTE_SEC(3600), 3), 0);
    t_send_i64(a->report, -1);
    mote_proc_release(a->report);
    /* The peer's cancelled replies may complete f first: reported. */
    mote_waitset_event e;
    int rc;
    while ((rc = mote_waitset_wait(ws, &e, 1, MOTE_FOREVER)) == 1)
        T_CHECK_EQ(e.tag, 1);
    T_CHECK_EQ(rc, -ECANCELED);
    mote_waitset_free(ws);
    mote_future_drop(f);
    mote_fd_close(fds[0]);
    mote_fd_close(fds[1]);
    mote_proc_release(a->peer);
    atomic_fetch_add(&ws_ended, 1);
}

enum { WS_SHUT = 50 };
static t_gate ws_shut_gate; /* never opened: the peer's replies end with the runtime */

static int main_ws_shutdown(void *arg) {
    (void)arg;
    mote_proc *peer = t_spawn_counter(0);
    for (int i = 0; i < WS_SHUT; i++) {
        ws_waiter a = {mote_proc_ref(mote_self()), mote_proc_ref(peer), &ws_shut_gate, -1, false};
        mote_proc *p = NULL;
        T_CHECK_EQ(mote_spawn_fn(&p, fn_ws_shutdown, &a, sizeof a), 0);
        mote_proc_release(p);
    }
    for (int i = 0; i < WS_SHUT; i++)
        T_CHECK_EQ(t_recv_i64(), -1);
    mote_proc_release(peer);
    return 0;
}

Test(waitset, shutdown_cancels_waiting_sets) {
    atomic_store(&ws_ended, 0);
    T_RUN_OK(NULL, main_ws_shutdown, NULL);
    cr_assert_eq(atomic_load(&ws_ended), WS_SHUT);
}
