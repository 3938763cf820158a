/* Shutdown while processes still run, wait and hold messages: mote_run
 * returns (a hang fails the test by its timeout), every remaining destructor
 * runs exactly once, and everything is freed (checked under ASan). */
#include "helpers.h"

static atomic_int dtor_runs;

static void dtor(void *state) {
    (void)state;
    atomic_fetch_add(&dtor_runs, 1);
}

static mote_proc *spawn_with_dtor(void) {
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn(&p, &(int64_t){0}, sizeof(int64_t), dtor), 0);
    return p;
}

/* Processes in every kind of wait, or not waiting at all. */
static atomic_int started;

static void fn_yield_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    for (;;)
        mote_yield();
}

static void fn_receive_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    for (;;) {
        mote_msg *m = NULL;
        if (mote_receive(&m, MOTE_FOREVER) == 0)
            mote_msg_free(m);
    }
}

static void fn_sleep_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    for (;;)
        mote_sleep(MOTE_SEC(3600));
}

static void fn_await_timer(void *arg) {
    (void)arg;
    mote_future *f = NULL;
    T_CHECK_EQ(mote_timer(&f, MOTE_SEC(3600)), 0);
    atomic_fetch_add(&started, 1);
    mote_await(f, NULL);
}

static void fn_call_blocked(void *arg) {
    mote_proc *target = *(mote_proc **)arg;
    static t_gate never;
    atomic_fetch_add(&started, 1);
    t_gated g = {&never, 0};
    mote_call(target, t_h_gated, &g, sizeof g, NULL);
}

static void fn_poll_forever(void *arg) {
    mote_proc *target = *(mote_proc **)arg;
    static t_gate never;
    mote_future *futs[2] = {t_async_gated(target, &never, 1), NULL}, *ready[2];
    T_CHECK_EQ(mote_timer(&futs[1], MOTE_SEC(3600)), 0);
    size_t n = 2;
    atomic_fetch_add(&started, 1);
    mote_poll(futs, &n, ready, 2, MOTE_FOREVER);
}

static void fn_spawn_until_refused(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    for (;;) {
        mote_proc *p = NULL;
        if (mote_spawn(&p, NULL, 64, NULL) != 0)
            return;
        mote_cast(p, t_h_get, NULL, 0);
        mote_proc_release(p);
        mote_yield();
    }
}

static mote_result h_slow(void *state, void *arg) {
    (void)state;
    (void)arg;
    mote_sleep(MOTE_MSEC(1));
    return mote_ok_i(0);
}

typedef struct busy_arg {
    int kinds_each;
    int dtor_procs;
} busy_arg;

static int main_busy_shutdown(void *arg) {
    busy_arg *b = arg;
    static const mote_proc_fn kinds[] = {fn_yield_forever, fn_receive_forever, fn_sleep_forever,
                                         fn_await_timer,   fn_call_blocked,    fn_poll_forever,
                                         fn_spawn_until_refused};
    enum { KINDS = sizeof kinds / sizeof kinds[0] };
    /* Targets for the blocked callers and pollers: they hold a destructor. */
    mote_proc *target = spawn_with_dtor();
    for (int i = 0; i < b->kinds_each; i++)
        for (int k = 0; k < KINDS; k++) {
            mote_proc *p = NULL;
            T_CHECK_EQ(mote_spawn_fn(i % 2 ? &p : NULL, kinds[k], &target, sizeof target), 0);
            /* Some with a queue of messages they will never get to. */
            if (p) {
                for (int j = 0; j < 10; j++) {
                    T_CHECK_EQ(mote_send(p, "x", 2), 0);
                    T_CHECK_EQ(mote_cast(p, h_slow, NULL, 0), 0);
                }
                mote_proc_release(p);
            }
        }
    /* State processes with long queues, some with futures never awaited,
     * some released, some leaked to shutdown. */
    for (int i = 0; i < b->dtor_procs; i++) {
        mote_proc *p = spawn_with_dtor();
        for (int j = 0; j < 50; j++) {
            if (j % 5 == 0) {
                mote_future *f = NULL;
                T_CHECK_EQ(mote_async(p, h_slow, NULL, 0, &f), 0);
            } else {
                T_CHECK_EQ(mote_cast(p, h_slow, NULL, 0), 0);
            }
        }
        if (i % 2)
            mote_proc_release(p);
    }
    t_wait_at_least(&started, b->kinds_each * KINDS);
    return 17;
}

Test(shutdown, while_processes_run_wait_and_hold_messages) {
    busy_arg b = {T_SCALE(20, 5), T_SCALE(200, 50)};
    cr_assert_eq(t_run(NULL, main_busy_shutdown, &b), 17);
    cr_assert_eq(atomic_load(&dtor_runs), b.dtor_procs + 1);
}

Test(shutdown, repeatedly_under_load) {
    busy_arg b = {2, 20};
    for (int round = 1; round <= 5; round++) {
        mote_config cfg = {.threads = (unsigned)round % 3 + 1};
        atomic_store(&started, 0);
        cr_assert_eq(t_run(&cfg, main_busy_shutdown, &b), 17);
        cr_assert_eq(atomic_load(&dtor_runs), round * (b.dtor_procs + 1));
    }
}

/* Main returns at once after spawning many processes that never ran. */
static int main_spawn_and_leave(void *arg) {
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        mote_proc *p = spawn_with_dtor();
        int64_t one = 1;
        T_CHECK_EQ(mote_cast(p, t_h_add, &one, sizeof one), 0);
        if (i % 3 == 0)
            mote_proc_release(p);
    }
    return 0;
}

Test(shutdown, right_after_spawning_many) {
    int n = T_SCALE(20000, 5000);
    T_RUN_OK(NULL, main_spawn_and_leave, &n);
    cr_assert_eq(atomic_load(&dtor_runs), n);
}

/* A foreign thread waiting on a message that never runs is released by the
 * shutdown with -ECANCELED. */
typedef struct foreign_wait {
    mote_proc *target, *report;
    pthread_t thread;
    int rc;
    mote_result r;
} foreign_wait;

static void *thread_wait(void *arg) {
    foreign_wait *fw = arg;
    fw->r = mote_ok_i(0);
    /* The target is busy forever, so this message stays queued. */
    mote_future *f = NULL;
    fw->rc = mote_async(fw->target, t_h_get, NULL, 0, &f);
    t_send_i64(fw->report, 1); /* after this, main may return at any time */
    if (fw->rc == 0)
        fw->rc = mote_await(f, &fw->r);
    return NULL;
}

static int main_foreign_waiting(void *arg) {
    foreign_wait *fw = arg;
    static t_gate never;
    fw->target = spawn_with_dtor();
    (void)t_async_gated(fw->target, &never, 0);
    fw->report = mote_self();
    fw->thread = t_thread(thread_wait, fw);
    T_CHECK_EQ(t_recv_i64(), 1);
    mote_sleep(MOTE_MSEC(5)); /* most likely waiting by now; either way is fine */
    mote_proc_release(fw->target);
    return 0;
}

Test(shutdown, foreign_waiter_is_cancelled) {
    foreign_wait fw;
    memset(&fw, 0, sizeof fw);
    T_RUN_OK(NULL, main_foreign_waiting, &fw);
    cr_assert(t_join(fw.thread), "the waiting thread is still stuck after shutdown");
    cr_assert_eq(fw.rc, 0, "mote_await returned %d", fw.rc);
    cr_assert_eq(fw.r.err, -ECANCELED, "result err %d", fw.r.err);
    cr_assert_eq(atomic_load(&dtor_runs), 1);
}

/* A process whose state owns a socket, suspended reading it at shutdown:
 * its destructor closes the socket, and the socket is freed although the
 * read call in flight never returns (its stack is discarded). ASan's leak
 * check in t_run catches a socket left behind. */
static atomic_int reading;

static void close_owned_socket(void *state) {
    T_CHECK_EQ(mote_socket_close(*(mote_socket **)state), 0);
}

static mote_result h_read_forever(void *state, void *arg) {
    (void)arg;
    char c;
    atomic_store(&reading, 1);
    mote_socket_read(*(mote_socket **)state, &c, 1, MOTE_FOREVER);
    return mote_ok_i(0);
}

static int main_socket_owner(void *arg) {
    (void)arg;
    int sv[2];
    T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    mote_socket *a = NULL, *b = NULL;
    T_CHECK_EQ(mote_socket_adopt(&a, sv[0]), 0);
    T_CHECK_EQ(mote_socket_adopt(&b, sv[1]), 0);
    mote_proc *owner = NULL;
    T_CHECK_EQ(mote_spawn(&owner, &a, sizeof a, close_owned_socket), 0);
    T_CHECK_EQ(mote_cast(owner, h_read_forever, NULL, 0), 0);
    mote_proc_release(owner);
    /* The peer stays open until shutdown too: another process owns it. */
    mote_proc *peer_owner = NULL;
    T_CHECK_EQ(mote_spawn(&peer_owner, &b, sizeof b, close_owned_socket), 0);
    t_wait_at_least(&reading, 1);
    mote_sleep(MOTE_MSEC(20)); /* into the read's wait */
    return 0; /* shutdown frees both processes, handles held or not */
}

Test(shutdown, socket_closed_by_destructor_while_read_in_flight) {
    T_RUN_OK(NULL, main_socket_owner, NULL);
}
