/* Monitors: the end of a process arrives as an exit notice (message or
 * future) with its reason; monitoring an ended process reports at once;
 * demonitor; a monitor keeps nothing alive; races between monitoring and
 * ending never lose or double a notice. */
#include "helpers.h"

static atomic_int dtor_runs;

static void count_dtor(void *state) {
    (void)state;
    atomic_fetch_add(&dtor_runs, 1);
}

/* Receive one exit notice into *x (recorded failure if none); returns its
 * ref. */
static uint64_t recv_exit(mote_exit *x, char *text, size_t cap) {
    mote_msg *m = NULL;
    int rc = mote_receive(&m, T_PATIENCE);
    T_CHECK_EQ(rc, 0);
    if (rc != 0)
        return 0;
    T_CHECK(mote_msg_exit(m, x));
    T_CHECK(mote_msg_data(m) == NULL);
    T_CHECK_EQ(mote_msg_size(m), 0);
    if (text)
        snprintf(text, cap, "%s", x->text ? x->text : "");
    uint64_t ref = x->ref;
    mote_msg_free(m);
    return ref;
}

/* Nothing in the mailbox for a while (a notice that should not exist). */
static void expect_no_message(void) {
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(30)), -ETIMEDOUT);
    if (m)
        mote_msg_free(m);
}

/* ---- Reasons ----------------------------------------------------------- */

static void fn_return(void *arg) { (void)arg; }

static void on_panic(const char *msg, void *ctx) {
    (void)msg;
    (void)ctx;
}

static void fn_panic(void *arg) {
    (void)arg;
    mote_on_panic(on_panic, NULL);
    char what[32];
    snprintf(what, sizeof what, "bad %d", 42); /* on this stack: the notice copies it */
    mote_panic("%s", what);
}

static void fn_wait_forever(void *arg) {
    (void)arg;
    mote_msg *m = NULL;
    while (mote_receive(&m, MOTE_FOREVER) == 0)
        mote_msg_free(m);
}

static int main_reasons(void *arg) {
    (void)arg;
    mote_exit x;
    char text[64];
    mote_proc *p = NULL;
    uint64_t ref = 0;

    T_CHECK_EQ(mote_spawn_fn(&p, fn_return, NULL, 0), 0);
    T_CHECK_EQ(mote_monitor(p, &ref), 0);
    T_CHECK(ref != 0);
    T_CHECK_EQ(recv_exit(&x, text, sizeof text), ref);
    T_CHECK_EQ(x.reason, MOTE_EXIT_NORMAL);
    T_CHECK_EQ(x.proc_id, mote_proc_id(p));
    T_CHECK(!x.link);
    T_CHECK(strcmp(text, "normal") == 0);
    mote_proc_release(p);

    T_CHECK_EQ(mote_spawn_fn(&p, fn_panic, NULL, 0), 0);
    T_CHECK_EQ(mote_monitor(p, &ref), 0);
    mote_proc_release(p); /* the notice does not need it */
    T_CHECK_EQ(recv_exit(&x, text, sizeof text), ref);
    T_CHECK_EQ(x.reason, MOTE_EXIT_PANIC);
    T_CHECK(strcmp(text, "bad 42") == 0);

    T_CHECK_EQ(mote_spawn_fn(&p, fn_wait_forever, NULL, 0), 0);
    T_CHECK_EQ(mote_monitor(p, &ref), 0);
    T_CHECK_EQ(mote_cancel(p), 0);
    T_CHECK_EQ(recv_exit(&x, text, sizeof text), ref);
    T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
    T_CHECK(strcmp(text, "cancelled") == 0);
    mote_proc_release(p);
    return 0;
}

Test(monitor, reasons) { T_RUN_OK(NULL, main_reasons, NULL); }

/* ---- What "ended" means for a state process ------------------------------- */

static int main_state_process(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    uint64_t ref = 0;
    mote_exit x;
    T_CHECK_EQ(mote_spawn(&p, NULL, 16, count_dtor), 0);
    T_CHECK_EQ(mote_monitor(p, &ref), 0);
    mote_result r;
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);
    expect_no_message(); /* idle with a live handle: it has not ended */
    T_CHECK_EQ(atomic_load(&dtor_runs), 0);
    mote_proc_release(p); /* the monitor does not keep it alive */
    T_CHECK_EQ(recv_exit(&x, NULL, 0), ref);
    T_CHECK_EQ(x.reason, MOTE_EXIT_NORMAL);
    T_CHECK_EQ(atomic_load(&dtor_runs), 1); /* the destructor ran first */
    return 0;
}

Test(monitor, state_process_ends_with_its_last_handle) {
    atomic_store(&dtor_runs, 0);
    T_RUN_OK(NULL, main_state_process, NULL);
    cr_assert_eq(atomic_load(&dtor_runs), 1);
}

/* ---- Already ended --------------------------------------------------------- */

static int main_already_ended(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_panic, NULL, 0), 0);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(p, &f), 0);
    mote_result r;
    T_CHECK_EQ(mote_await(f, &r), 0);
    mote_msg_free(r.p);
    /* Ended: both forms report at once, with the same reason and text. */
    uint64_t ref = 0;
    mote_exit x;
    char text[64];
    T_CHECK_EQ(mote_monitor(p, &ref), 0);
    T_CHECK_EQ(recv_exit(&x, text, sizeof text), ref);
    T_CHECK_EQ(x.reason, MOTE_EXIT_PANIC);
    T_CHECK(strcmp(text, "bad 42") == 0);
    T_CHECK_EQ(mote_monitor_future(p, &f), 0);
    T_CHECK(mote_future_ready(f));
    T_CHECK_EQ(mote_await(f, &r), 0);
    T_CHECK_EQ(r.err, 0);
    T_CHECK(mote_msg_exit(r.p, &x));
    T_CHECK_EQ(x.reason, MOTE_EXIT_PANIC);
    T_CHECK_EQ(x.proc_id, mote_proc_id(p));
    mote_msg_free(r.p);
    mote_proc_release(p);
    return 0;
}

Test(monitor, already_ended_reports_at_once) { T_RUN_OK(NULL, main_already_ended, NULL); }

/* ---- Demonitor ------------------------------------------------------------- */

static int main_demonitor(void *arg) {
    (void)arg;
    mote_exit x;
    mote_proc *p = NULL;
    uint64_t a = 0, b = 0;
    T_CHECK_EQ(mote_spawn_fn(&p, fn_wait_forever, NULL, 0), 0);
    T_CHECK_EQ(mote_monitor(p, &a), 0);
    T_CHECK_EQ(mote_monitor(p, &b), 0);
    T_CHECK(a != b);
    T_CHECK_EQ(mote_demonitor(a), 0); /* before the end: it never fires */
    T_CHECK_EQ(mote_demonitor(a), -ENOENT);
    T_CHECK_EQ(mote_cancel(p), 0);
    T_CHECK_EQ(recv_exit(&x, NULL, 0), b);
    expect_no_message();
    T_CHECK_EQ(mote_demonitor(b), -ENOENT); /* received already */
    mote_proc_release(p);

    /* After the end, with the notice (most likely) in the mailbox: it is
     * taken out, and none remains. */
    T_CHECK_EQ(mote_spawn_fn(&p, fn_return, NULL, 0), 0);
    T_CHECK_EQ(mote_monitor(p, &a), 0);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(p, &f), 0);
    T_CHECK_EQ(mote_await(f, NULL), 0);
    T_CHECK_EQ(mote_demonitor(a), 0);
    expect_no_message();
    mote_proc_release(p);

    T_CHECK_EQ(mote_demonitor(0), -ENOENT);
    T_CHECK_EQ(mote_demonitor(999999), -ENOENT);
    return 0;
}

Test(monitor, demonitor) { T_RUN_OK(NULL, main_demonitor, NULL); }

/* Monitor-per-request on a long-lived server, as a client that wants to
 * know whether its server died would: records turned off are pruned
 * (under ASan, nothing leaks or is touched after free). */
static int main_churn(void *arg) {
    (void)arg;
    mote_proc *server = t_spawn_counter(0);
    int n = T_SCALE(20000, 3000);
    for (int i = 0; i < n; i++) {
        uint64_t ref;
        mote_future *f = NULL;
        T_CHECK_EQ(mote_monitor(server, &ref), 0);
        if (i % 3 == 0)
            T_CHECK_EQ(mote_monitor_future(server, &f), 0);
        int64_t one = 1;
        mote_result r;
        T_CHECK_EQ(mote_call(server, t_h_add, &one, sizeof one, &r), 0);
        T_CHECK_EQ(r.i, i + 1);
        T_CHECK_EQ(mote_demonitor(ref), 0);
        mote_future_drop(f);
    }
    uint64_t last;
    T_CHECK_EQ(mote_monitor(server, &last), 0);
    mote_proc_release(server);
    mote_exit x;
    T_CHECK_EQ(recv_exit(&x, NULL, 0), last);
    expect_no_message();
    return 0;
}

Test(monitor, churn_on_a_long_lived_server) { T_RUN_OK(NULL, main_churn, NULL); }

/* ---- Races ------------------------------------------------------------------ */

/* Targets end while several processes monitor them: every monitor gets
 * exactly one notice, whether it was made before or after the end. */
typedef struct watcher_arg {
    mote_proc **targets;
    int n;
    mote_proc *report;
} watcher_arg;

static void fn_watcher(void *arg) {
    watcher_arg *a = arg;
    uint64_t *refs = calloc((size_t)a->n, sizeof *refs);
    for (int i = 0; i < a->n; i++)
        T_CHECK_EQ(mote_monitor(a->targets[i], &refs[i]), 0);
    int got = 0;
    uint64_t sum = 0, want = 0;
    for (int i = 0; i < a->n; i++)
        want += refs[i];
    for (; got < a->n; got++) {
        mote_exit x;
        uint64_t ref = recv_exit(&x, NULL, 0);
        if (!ref)
            break;
        sum += ref;
    }
    T_CHECK_EQ(got, a->n);
    T_CHECK_EQ(sum, want); /* each ref once (refs are distinct and small) */
    expect_no_message();
    free(refs);
    t_send_i64(a->report, got);
    mote_proc_release(a->report);
}

static int main_race(void *arg) {
    (void)arg;
    enum { TARGETS = 200, WATCHERS = 4 };
    mote_proc *targets[TARGETS];
    for (int i = 0; i < TARGETS; i++)
        T_CHECK_EQ(mote_spawn_fn(&targets[i], i % 2 ? fn_return : fn_wait_forever, NULL, 0), 0);
    for (int w = 0; w < WATCHERS; w++) {
        watcher_arg a = {targets, TARGETS, mote_proc_ref(mote_self())};
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_watcher, &a, sizeof a), 0);
    }
    for (int i = 0; i < TARGETS; i += 2) {
        T_CHECK_EQ(mote_cancel(targets[i]), 0);
        if (i % 16 == 0)
            mote_yield();
    }
    for (int w = 0; w < WATCHERS; w++)
        T_CHECK_EQ(t_recv_i64(), TARGETS);
    for (int i = 0; i < TARGETS; i++)
        mote_proc_release(targets[i]);
    return 0;
}

Test(monitor, racing_ends) {
    for (int round = 0; round < T_SCALE(10, 3); round++) {
        mote_config cfg = {.threads = (unsigned)round % 3 + 1};
        T_RUN_OK(&cfg, main_race, NULL);
    }
}

/* ---- Watchers that go first; foreign threads; shutdown ----------------- */

typedef struct watch_leave_arg {
    mote_proc *target, *main;
} watch_leave_arg;

static void fn_watch_and_leave(void *arg) {
    watch_leave_arg *a = arg;
    uint64_t ref;
    T_CHECK_EQ(mote_monitor(a->target, &ref), 0);
    /* main holds the target until every watcher has said this */
    T_CHECK_EQ(mote_send(a->main, "w", 1), 0);
    /* returns at once: the watcher ends before its target */
}

static int main_watcher_first(void *arg) {
    (void)arg;
    mote_proc *target = NULL;
    T_CHECK_EQ(mote_spawn(&target, NULL, 8, count_dtor), 0);
    watch_leave_arg a = {target, mote_self()};
    for (int i = 0; i < 50; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_watch_and_leave, &a, sizeof a), 0);
    for (int i = 0; i < 50; i++) {
        mote_msg *m;
        T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
        mote_msg_free(m);
    }
    mote_sleep(MOTE_MSEC(5)); /* let the watchers end */
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(target, &f), 0);
    mote_proc_release(target); /* its end fires at watchers that are gone */
    mote_result r;
    T_CHECK_EQ(mote_await(f, &r), 0);
    mote_exit x;
    T_CHECK(mote_msg_exit(r.p, &x) && x.reason == MOTE_EXIT_NORMAL);
    mote_msg_free(r.p);
    return 0;
}

Test(monitor, watcher_ends_first) {
    atomic_store(&dtor_runs, 0);
    T_RUN_OK(NULL, main_watcher_first, NULL);
    cr_assert_eq(atomic_load(&dtor_runs), 1);
}

typedef struct foreign_watch {
    mote_proc *target;
    mote_proc *report;
    pthread_t thread;
    mote_result r;
    int rc;
} foreign_watch;

static void *thread_watch(void *arg) {
    foreign_watch *fw = arg;
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(fw->target, &f), 0);
    T_CHECK_EQ(mote_monitor(fw->target, &(uint64_t){0}), -EPERM); /* no mailbox */
    t_send_i64(fw->report, 1);
    fw->rc = mote_await(f, &fw->r); /* the runtime shuts down meanwhile */
    return NULL;
}

static int main_foreign(void *arg) {
    foreign_watch *fw = arg;
    fw->target = t_spawn_counter(0); /* idle: it ends only at shutdown */
    fw->report = mote_self();
    fw->thread = t_thread(thread_watch, fw);
    T_CHECK_EQ(t_recv_i64(), 1);
    return 0; /* the target's handle goes with the runtime */
}

Test(monitor, foreign_thread_sees_shutdown) {
    foreign_watch fw = {0};
    T_RUN_OK(NULL, main_foreign, &fw);
    cr_assert(t_join(fw.thread));
    cr_assert_eq(fw.rc, 0);
    cr_assert_eq(fw.r.err, 0);
    mote_exit x;
    cr_assert(mote_msg_exit(fw.r.p, &x));
    cr_assert_eq(x.reason, MOTE_EXIT_SHUTDOWN);
    cr_assert_str_eq(x.text, "runtime shutdown");
    mote_msg_free(fw.r.p); /* after mote_run: the notice is the thread's */
}

/* ---- Errors ---------------------------------------------------------------- */

static int main_errors(void *arg) {
    (void)arg;
    uint64_t ref = 7;
    mote_future *f = (void *)1;
    T_CHECK_EQ(mote_monitor(NULL, &ref), -EINVAL);
    T_CHECK_EQ(ref, 0);
    T_CHECK_EQ(mote_monitor(mote_self(), &ref), -EINVAL);
    T_CHECK_EQ(mote_monitor(mote_self(), NULL), -EINVAL);
    T_CHECK_EQ(mote_monitor_future(NULL, &f), -EINVAL);
    T_CHECK(f == NULL);
    T_CHECK_EQ(mote_monitor_future(mote_self(), NULL), -EINVAL);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_send(mote_self(), "x", 1), 0);
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    T_CHECK(!mote_msg_exit(m, NULL));
    mote_msg_free(m);
    T_CHECK(!mote_msg_exit(NULL, NULL));
    return 0;
}

Test(monitor, errors) {
    T_RUN_OK(NULL, main_errors, NULL);
    uint64_t ref;
    cr_assert_eq(mote_demonitor(1), -EPERM);
    cr_assert_eq(mote_monitor((mote_proc *)8, &ref), -EPERM);
}
