/* Supervisors: restarts keep a crashing service available; one-for-one
 * and all-for-one; the restart intensity makes a supervisor give up and
 * report it; cancelling a supervisor takes its children. */
#include "helpers.h"

static void ignore_panic(const char *msg, void *ctx) {
    (void)msg;
    (void)ctx;
}

static mote_result h_contain(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_error(mote_on_panic(ignore_panic, NULL));
}

/* ---- A service that panics on every third request ------------------------- */

static atomic_int flaky_starts;

static mote_result h_serve(void *state, void *arg) {
    int64_t *served = state;
    if (++*served % 3 == 0)
        mote_panic("third request");
    return mote_ok_i(*(int64_t *)arg + 1);
}

static int start_flaky(mote_proc **out, void *arg) {
    (void)arg;
    int r = mote_spawn(out, NULL, sizeof(int64_t), NULL);
    if (r == 0) /* its first message: a panic ends only it */
        r = mote_cast(*out, h_contain, NULL, 0);
    atomic_fetch_add(&flaky_starts, 1);
    return r;
}

static int main_keeps_serving(void *arg) {
    (void)arg;
    mote_child_spec child = {start_flaky, NULL};
    mote_sup_spec spec = {MOTE_SUP_ONE_FOR_ONE, 1000, MOTE_SEC(60), &child, 1};
    mote_proc *sup = NULL;
    T_CHECK_EQ(mote_sup_start(&sup, &spec), 0);
    mote_proc *c = NULL;
    T_CHECK_EQ(mote_sup_child(sup, 0, &c), 0);
    int served = 0, crashes = 0;
    for (int64_t i = 0; i < 100 && c;) {
        mote_result r = mote_error(-1);
        T_CHECK_EQ(mote_call(c, h_serve, &i, sizeof i, &r), 0);
        if (r.err == 0) {
            T_CHECK_EQ(r.i, i + 1);
            served++;
            i++;
            continue;
        }
        T_CHECK_EQ(r.err, -ECANCELED); /* it crashed on this one: ask again */
        crashes++;
        uint64_t dead = mote_proc_id(c);
        mote_proc_release(c);
        c = NULL;
        T_CHECK_EQ(mote_sup_child(sup, 0, &c), 0);
        T_CHECK(c && mote_proc_id(c) != dead); /* the restarted one, at once */
    }
    T_CHECK_EQ(served, 100);
    T_CHECK_EQ(crashes, 49); /* requests 3, 6, ... of each child: 2 served per child */
    T_CHECK_EQ(atomic_load(&flaky_starts), crashes + 1);
    mote_proc_release(c);
    uint64_t ref;
    T_CHECK_EQ(mote_monitor(sup, &ref), 0);
    T_CHECK_EQ(mote_cancel(sup), 0);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    mote_exit x = {.reason = -1};
    T_CHECK(mote_msg_exit(m, &x));
    T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
    mote_msg_free(m);
    mote_proc_release(sup);
    return 0;
}

Test(supervisor, a_crashing_child_keeps_serving) { T_RUN_OK(NULL, main_keeps_serving, NULL); }

/* ---- Giving up -------------------------------------------------------------- */

static atomic_int doomed_starts;

static void fn_doomed(void *arg) {
    (void)arg;
    mote_on_panic(ignore_panic, NULL);
    mote_panic("cannot start");
}

static int start_doomed(mote_proc **out, void *arg) {
    (void)arg;
    atomic_fetch_add(&doomed_starts, 1);
    return mote_spawn_fn(out, fn_doomed, NULL, 0);
}

static int main_gives_up(void *arg) {
    (void)arg;
    mote_child_spec child = {start_doomed, NULL};
    mote_sup_spec spec = {MOTE_SUP_ONE_FOR_ONE, 3, MOTE_SEC(60), &child, 1};
    mote_proc *sup = NULL;
    T_CHECK_EQ(mote_sup_start(&sup, &spec), 0);
    uint64_t ref;
    T_CHECK_EQ(mote_monitor(sup, &ref), 0); /* reports at once if it gave up already */
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    mote_exit x = {.reason = -1};
    T_CHECK(mote_msg_exit(m, &x));
    T_CHECK_EQ(x.ref, ref);
    T_CHECK_EQ(x.reason, MOTE_EXIT_PANIC);
    T_CHECK(x.text && strstr(x.text, "supervisor gave up") != NULL);
    mote_msg_free(m);
    T_CHECK_EQ(atomic_load(&doomed_starts), 4); /* the start and 3 restarts */
    mote_proc *c = NULL;
    T_CHECK_EQ(mote_sup_child(sup, 0, &c), -ECANCELED);
    mote_proc_release(sup);
    return 0;
}

Test(supervisor, gives_up_past_its_intensity) { T_RUN_OK(NULL, main_gives_up, NULL); }

/* ---- Strategies ------------------------------------------------------------ */

/* A child that waits for orders: 'p' panic, 'r' return. */
static void fn_worker(void *arg) {
    (void)arg;
    mote_on_panic(ignore_panic, NULL);
    mote_msg *m = NULL;
    while (mote_receive(&m, MOTE_FOREVER) == 0) {
        char c = mote_msg_size(m) ? *(const char *)mote_msg_data(m) : 0;
        mote_msg_free(m);
        if (c == 'p')
            mote_panic("told to");
        if (c == 'r')
            return;
    }
}

static int start_worker(mote_proc **out, void *arg) {
    (void)arg;
    return mote_spawn_fn(out, fn_worker, NULL, 0);
}

static uint64_t child_id(mote_proc *sup, size_t i) {
    mote_proc *c = NULL;
    T_CHECK_EQ(mote_sup_child(sup, i, &c), 0);
    uint64_t id = mote_proc_id(c);
    mote_proc_release(c);
    return id;
}

static void order(mote_proc *sup, size_t i, char what) {
    mote_proc *c = NULL;
    T_CHECK_EQ(mote_sup_child(sup, i, &c), 0);
    T_CHECK_EQ(mote_send(c, &what, 1), 0);
    mote_proc_release(c);
}

/* Wait until child i is no longer the process with id old. */
static uint64_t replaced(mote_proc *sup, size_t i, uint64_t old) {
    int64_t deadline = mote_now() + T_PATIENCE;
    uint64_t id;
    while ((id = child_id(sup, i)) == old && mote_now() < deadline)
        mote_sleep(MOTE_USEC(200));
    T_CHECK(id != old);
    return id;
}

static int main_strategy(void *arg) {
    int strategy = *(int *)arg;
    mote_child_spec kids[2] = {{start_worker, NULL}, {start_worker, NULL}};
    mote_sup_spec spec = {strategy, 10, MOTE_SEC(60), kids, 2};
    mote_proc *sup = NULL;
    T_CHECK_EQ(mote_sup_start(&sup, &spec), 0);
    uint64_t a = child_id(sup, 0), b = child_id(sup, 1);
    mote_proc *second = NULL;
    T_CHECK_EQ(mote_sup_child(sup, 1, &second), 0);
    mote_future *second_end = NULL;
    T_CHECK_EQ(mote_monitor_future(second, &second_end), 0);
    order(sup, 0, 'p');
    uint64_t a2 = replaced(sup, 0, a);
    T_CHECK(a2 != a);
    if (strategy == MOTE_SUP_ALL_FOR_ONE) {
        mote_result r;
        T_CHECK_EQ(mote_await(second_end, &r), 0); /* cancelled, then restarted */
        mote_exit x = {.reason = -1};
        T_CHECK(mote_msg_exit(r.p, &x));
        T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
        mote_msg_free(r.p);
        T_CHECK(child_id(sup, 1) != b);
    } else {
        T_CHECK_EQ(child_id(sup, 1), b); /* untouched */
        T_CHECK(!mote_future_ready(second_end));
        mote_future_drop(second_end);
    }
    mote_proc_release(second);
    /* A normal end is not restarted. */
    order(sup, 1, 'r');
    int64_t deadline = mote_now() + T_PATIENCE;
    mote_proc *c = NULL;
    int rc;
    while ((rc = mote_sup_child(sup, 1, &c)) == 0 && mote_now() < deadline) {
        mote_proc_release(c);
        mote_sleep(MOTE_USEC(200));
    }
    T_CHECK_EQ(rc, -ESRCH);
    T_CHECK_EQ(mote_sup_child(sup, 2, &c), -EINVAL);
    mote_proc_release(sup); /* still running: ends at shutdown, children too */
    return 0;
}

Test(supervisor, one_for_one) {
    int s = MOTE_SUP_ONE_FOR_ONE;
    T_RUN_OK(NULL, main_strategy, &s);
}

Test(supervisor, all_for_one) {
    int s = MOTE_SUP_ALL_FOR_ONE;
    T_RUN_OK(NULL, main_strategy, &s);
}

/* ---- Stopping a supervisor; start failures; errors -------------------------- */

static int main_cancel(void *arg) {
    (void)arg;
    mote_child_spec kids[3] = {{start_worker, NULL}, {start_worker, NULL}, {start_worker, NULL}};
    mote_sup_spec spec = {MOTE_SUP_ONE_FOR_ONE, 0, 0, kids, 3};
    mote_proc *sup = NULL;
    T_CHECK_EQ(mote_sup_start(&sup, &spec), 0);
    mote_future *ends[3];
    for (size_t i = 0; i < 3; i++) {
        mote_proc *c = NULL;
        T_CHECK_EQ(mote_sup_child(sup, i, &c), 0);
        T_CHECK_EQ(mote_monitor_future(c, &ends[i]), 0);
        mote_proc_release(c);
    }
    T_CHECK_EQ(mote_cancel(sup), 0);
    for (size_t i = 0; i < 3; i++) {
        mote_result r;
        T_CHECK_EQ(mote_await(ends[i], &r), 0);
        mote_exit x = {.reason = -1};
        T_CHECK(mote_msg_exit(r.p, &x));
        T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
        T_CHECK(strcmp(x.text, "linked process ended") == 0);
        mote_msg_free(r.p);
    }
    mote_proc_release(sup);
    return 0;
}

Test(supervisor, cancel_takes_the_children) { T_RUN_OK(NULL, main_cancel, NULL); }

static mote_proc *first_child;

static int start_recorded(mote_proc **out, void *arg) {
    (void)arg;
    int r = start_worker(out, NULL);
    if (r == 0)
        first_child = mote_proc_ref(*out);
    return r;
}

static int start_failing(mote_proc **out, void *arg) {
    (void)out;
    (void)arg;
    return -EIO;
}

static int main_start_fails(void *arg) {
    (void)arg;
    mote_child_spec kids[2] = {{start_recorded, NULL}, {start_failing, NULL}};
    mote_sup_spec spec = {MOTE_SUP_ONE_FOR_ONE, 0, 0, kids, 2};
    mote_proc *sup = (void *)1;
    T_CHECK_EQ(mote_sup_start(&sup, &spec), -EIO);
    T_CHECK(sup == NULL);
    mote_future *f = NULL;
    T_CHECK_EQ(mote_monitor_future(first_child, &f), 0);
    mote_result r;
    T_CHECK_EQ(mote_await(f, &r), 0); /* the child started first is cancelled */
    mote_exit x = {.reason = -1};
    T_CHECK(mote_msg_exit(r.p, &x));
    T_CHECK_EQ(x.reason, MOTE_EXIT_CANCELLED);
    mote_msg_free(r.p);
    mote_proc_release(first_child);

    /* Bad specs. */
    mote_child_spec none = {NULL, NULL};
    mote_sup_spec bad[] = {
        {MOTE_SUP_ONE_FOR_ONE, 0, 0, kids, 0},
        {MOTE_SUP_ONE_FOR_ONE, 0, 0, NULL, 1},
        {7, 0, 0, kids, 1},
        {MOTE_SUP_ONE_FOR_ONE, 0, -1, kids, 1},
        {MOTE_SUP_ONE_FOR_ONE, 0, 0, &none, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        T_CHECK_EQ(mote_sup_start(&sup, &bad[i]), -EINVAL);
    T_CHECK_EQ(mote_sup_start(NULL, &spec), -EINVAL);
    T_CHECK_EQ(mote_sup_start(&sup, NULL), -EINVAL);
    T_CHECK_EQ(mote_sup_child(NULL, 0, &sup), -EINVAL);
    return 0;
}

Test(supervisor, start_failures_and_errors) { T_RUN_OK(NULL, main_start_fails, NULL); }

/* ---- A caller cancelled while it asks for a child ---------------------------- */

static int start_plain(mote_proc **out, void *arg) {
    (void)arg;
    return mote_spawn(out, NULL, 0, NULL);
}

static void ask_for_child(void *arg) {
    mote_proc *sup = *(mote_proc **)arg, *c = NULL;
    if (mote_sup_child(sup, 0, &c) == 0)
        mote_proc_release(c);
}

static uint64_t procs_live(void) {
    mote_metrics m = {.size = sizeof m};
    return mote_metrics_get(&m) == 0 ? m.procs_live : 0;
}

/* The reply of mote_sup_child holds a reference to the child: a caller
 * cancelled before it reads the reply must not keep the child allocated
 * once the supervisor has gone. Cancels land before, during and after the
 * call (which one is up to the scheduler): in every case, every process
 * is freed before shutdown. */
static int main_cancelled_callers(void *arg) {
    (void)arg;
    uint64_t before = procs_live();
    mote_child_spec child = {start_plain, NULL};
    mote_sup_spec spec = {MOTE_SUP_ONE_FOR_ONE, 3, MOTE_SEC(5), &child, 1};
    mote_proc *sup = NULL;
    T_CHECK_EQ(mote_sup_start(&sup, &spec), 0);
    for (int i = 0; i < 300; i++) {
        mote_proc *caller = NULL;
        T_CHECK_EQ(mote_spawn_fn(&caller, ask_for_child, &sup, sizeof sup), 0);
        if (i % 3)
            mote_yield(); /* let some callers get into their call first */
        T_CHECK_EQ(mote_cancel(caller), 0);
        mote_proc_release(caller);
    }
    mote_sleep(MOTE_MSEC(20)); /* the supervisor answers what is queued */
    T_CHECK_EQ(mote_cancel(sup), 0);
    mote_proc_release(sup);
    uint64_t live = procs_live();
    for (int64_t waited = 0; live != before && waited < T_PATIENCE; waited += MOTE_MSEC(5)) {
        mote_sleep(MOTE_MSEC(5));
        live = procs_live();
    }
    T_CHECK_EQ(live, before); /* no reference was lost */
    return 0;
}

Test(supervisor, cancelled_caller_of_sup_child_leaks_no_reference) { T_RUN_OK(NULL, main_cancelled_callers, NULL); }
