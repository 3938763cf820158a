/* Panics: exit 101 without a handler; with one, only the process ends. */
#include "helpers.h"

static mote_result h_panic(void *state, void *arg) {
    (void)state;
    int64_t v;
    memcpy(&v, arg, sizeof v);
    mote_panic("boom number %lld", (long long)v);
}

/* ---- Without a handler: the program exits with 101 ------------------------------- */

/* Runs main in a child, which must exit with 101 and say text on stderr. */
static void expect_exit_101(t_child *c, mote_main_fn main, const char *text) {
    t_run_spec spec = {NULL, main, NULL};
    t_child_run(c, t_child_mote, &spec);
    T_ASSERT_EXITED(c, 101);
    T_ASSERT_CONTAINS(c->err, text);
}

static int main_panic_in_process(void *arg) {
    (void)arg;
    /* Some other processes, busy, to show the whole program goes. */
    mote_proc *p = NULL;
    for (int i = 0; i < 5; i++) {
        mote_spawn(&p, NULL, 8, NULL);
        mote_proc_release(p);
    }
    mote_spawn(&p, NULL, 8, NULL);
    printf("victim %llu\n", (unsigned long long)mote_proc_id(p));
    fflush(stdout);
    int64_t v = 4242;
    mote_call(p, h_panic, &v, sizeof v, NULL);
    printf("survived\n");
    return 0;
}

Test(panic, without_handler_exits_101_and_prints) {
    t_child c;
    expect_exit_101(&c, main_panic_in_process, "boom number 4242");
    cr_assert(strstr(c.out, "survived") == NULL);
    unsigned long long id = 0;
    cr_assert(sscanf(c.out, "victim %llu", &id) == 1, "stdout: %s", c.out);
    cr_assert(t_has_number(c.err, id), "panic report does not name process %llu:\n%s", id, c.err);
    cr_assert(strstr(c.err, "backtrace"), "%s", c.err);
#ifdef T_HAVE_LIBDW
    /* With libdw, the message being run and every frame say what and
     * where (without it, dladdr sees exported functions only). */
    cr_assert(strstr(c.err, "while running message h_panic at "), "%s", c.err);
    cr_assert(strstr(c.err, "in h_panic at ") && strstr(c.err, "test-panic.c:"),
              "no file:line for h_panic in the report:\n%s", c.err);
    cr_assert(strstr(c.err, "in mote_panic at ") && strstr(c.err, "turn.c:"), "%s", c.err);
#endif
    t_child_free(&c);
}

static mote_result h_named_panic(void *state, void *arg) {
    (void)state;
    (void)arg;
    T_CHECK_EQ(mote_proc_set_name(mote_self(), "the-victim"), 0);
    mote_panic("named");
}

static int main_named_panic(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    mote_spawn(&p, NULL, 8, NULL);
    mote_call(p, h_named_panic, NULL, 0, NULL);
    return 0;
}

Test(panic, report_names_the_process) {
    t_child c;
    expect_exit_101(&c, main_named_panic, "(the-victim) panicked: named");
    t_child_free(&c);
}

static int main_panic_in_main(void *arg) {
    (void)arg;
    mote_panic("main gave up: %s", "reason");
}

Test(panic, main_process_without_handler_exits_101) {
    t_child c;
    expect_exit_101(&c, main_panic_in_main, "main gave up: reason");
    t_child_free(&c);
}

static void child_panic_no_runtime(void *arg) {
    (void)arg;
    mote_panic("no runtime %d", 7);
}

Test(panic, outside_any_runtime_exits_101) {
    t_child c;
    t_child_run(&c, child_panic_no_runtime, NULL);
    T_ASSERT_EXITED(&c, 101);
    T_ASSERT_CONTAINS(c.err, "no runtime 7");
    t_child_free(&c);
}

static void *thread_panics(void *arg) {
    (void)arg;
    mote_panic("foreign thread panicked");
}

static int main_foreign_panic(void *arg) {
    (void)arg;
    pthread_t t = t_thread(thread_panics, NULL);
    t_join(t);
    mote_sleep(MOTE_SEC(30));
    return 0;
}

Test(panic, foreign_thread_always_exits_101) {
    t_child c;
    expect_exit_101(&c, main_foreign_panic, "foreign thread panicked");
    t_child_free(&c);
}

/* A handler registered then removed: the panic exits again. */
static void handler_unused(const char *msg, void *ctx) {
    (void)msg;
    (void)ctx;
    printf("handler ran\n");
}

static mote_result h_register_then_remove(void *state, void *arg) {
    (void)state;
    (void)arg;
    int a = mote_on_panic(handler_unused, NULL);
    int b = mote_on_panic(NULL, NULL);
    return mote_ok_i(a == 0 && b == 0);
}

static int main_removed_handler(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    mote_spawn(&p, NULL, 8, NULL);
    mote_result r;
    mote_call(p, h_register_then_remove, NULL, 0, &r);
    if (r.i != 1)
        return 5;
    int64_t v = 1;
    mote_call(p, h_panic, &v, sizeof v, NULL);
    return 0;
}

Test(panic, removed_handler_exits_101) {
    t_child c;
    expect_exit_101(&c, main_removed_handler, "boom number 1");
    cr_assert(strstr(c.out, "handler ran") == NULL);
    t_child_free(&c);
}

/* ---- With a handler: only the process ends ------------------------------------------ */

typedef struct panic_note {
    uint64_t id;  /* mote_proc_id of the process the handler ran in */
    char msg[96]; /* the message it was given */
    int64_t ctx;  /* *(int64_t *)ctx */
} panic_note;

static void handler_tell_parent(const char *msg, void *ctx) {
    mote_proc *parent = *(mote_proc **)ctx;
    panic_note n = {0};
    n.id = mote_self() ? mote_proc_id(mote_self()) : 0;
    snprintf(n.msg, sizeof n.msg, "%s", msg);
    n.ctx = 0;
    T_CHECK_EQ(mote_send(parent, &n, sizeof n), 0);
    mote_proc_release(parent);
    free(ctx); /* the handler owns the cell */
}

static panic_note recv_note(void) {
    panic_note n;
    memset(&n, 0, sizeof n);
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
    if (m) {
        T_CHECK_EQ(mote_msg_size(m), sizeof n);
        memcpy(&n, mote_msg_data(m), sizeof n);
        mote_msg_free(m);
    }
    return n;
}

/* The seed's shape: the child receives its parent, registers a handler that
 * messages the parent, then panics. */
static void fn_child(void *arg) {
    (void)arg;
    mote_msg *m = NULL;
    T_CHECK_EQ(mote_receive(&m, MOTE_FOREVER), 0);
    if (!m)
        return;
    /* The panicked stack is discarded, so ctx must not point into it: the
     * parent handle goes into a heap cell that the handler owns. */
    mote_proc **cell = malloc(sizeof *cell);
    memcpy(cell, mote_msg_data(m), sizeof *cell);
    mote_msg_free(m);
    T_CHECK_EQ(mote_on_panic(handler_tell_parent, cell), 0);
    mote_panic("child failed with %d", 99);
}

static mote_result h_ping(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_ok_i(1);
}

static int main_handler_erlang(void *arg) {
    (void)arg;
    mote_proc *bystander = t_spawn_counter(0);
    mote_proc *child = NULL;
    T_CHECK_EQ(mote_spawn_fn(&child, fn_child, NULL, 0), 0);
    uint64_t child_id = mote_proc_id(child);
    mote_proc *me = mote_proc_ref(mote_self());
    T_CHECK_EQ(mote_send(child, &me, sizeof me), 0);
    panic_note n = recv_note();
    T_CHECK_EQ(n.id, child_id);
    T_CHECK(strstr(n.msg, "child failed with 99") != NULL);
    /* Everything else carries on. */
    mote_result r;
    for (int i = 0; i < 10; i++) {
        int64_t one = 1;
        T_CHECK_EQ(mote_call(bystander, t_h_add, &one, sizeof one, &r), 0);
        T_CHECK_EQ(r.i, i + 1);
    }
    /* Calls to the dead process are cancelled. */
    r = mote_ok_i(5);
    T_CHECK_EQ(mote_call(child, h_ping, NULL, 0, &r), 0);
    T_CHECK_EQ(r.err, -ECANCELED);
    mote_proc_release(child);
    mote_proc_release(bystander);
    return 0;
}

Test(panic, handler_messages_parent_and_rest_continues) { T_RUN_OK(NULL, main_handler_erlang, NULL); }

/* A state process with a handler: pending calls are cancelled, the
 * destructor runs, later calls are cancelled, others are unaffected. */
static atomic_int dtor_runs;
static atomic_llong dtor_saw;

static void dtor(void *state) {
    atomic_store(&dtor_saw, *(int64_t *)state);
    atomic_fetch_add(&dtor_runs, 1);
}

static mote_proc *handler_parent;

static void handler_note(const char *msg, void *ctx) {
    panic_note n = {0};
    n.id = mote_self() ? mote_proc_id(mote_self()) : 0;
    snprintf(n.msg, sizeof n.msg, "%s", msg);
    n.ctx = *(int64_t *)ctx;
    T_CHECK_EQ(mote_send(handler_parent, &n, sizeof n), 0);
}

static mote_result h_register(void *state, void *arg) {
    (void)arg;
    /* ctx: the state, which lives until the destructor. */
    return mote_ok_i(mote_on_panic(handler_note, state));
}

static int main_handler_state(void *arg) {
    (void)arg;
    handler_parent = mote_self();
    mote_proc *victim = NULL, *other = t_spawn_counter(100);
    int64_t init = 10;
    T_CHECK_EQ(mote_spawn(&victim, &init, sizeof init, dtor), 0);
    mote_result r;
    T_CHECK_EQ(mote_call(victim, h_register, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 0);

    /* Hold the victim while the gate is shut, queue the panic behind, and
     * more work behind that. */
    t_gate gate = {0};
    mote_future *before = t_async_gated(victim, &gate, 1);
    int64_t one = 1, v = 77;
    mote_future *add1 = NULL, *boom = NULL, *after[20];
    T_CHECK_EQ(mote_async(victim, t_h_add, &one, sizeof one, &add1), 0);
    T_CHECK_EQ(mote_async(victim, h_panic, &v, sizeof v, &boom), 0);
    for (int i = 0; i < 20; i++)
        T_CHECK_EQ(mote_async(victim, t_h_add, &one, sizeof one, &after[i]), 0);
    T_CHECK_EQ(mote_cast(victim, t_h_add, &one, sizeof one), 0);
    t_gate_open(&gate);

    t_await_value(before, 1);
    t_await_value(add1, 11);
    panic_note n = recv_note();
    T_CHECK_EQ(n.id, mote_proc_id(victim));
    T_CHECK(strstr(n.msg, "boom number 77") != NULL);
    T_CHECK_EQ(n.ctx, 11); /* ctx is the state: the handler sees it */

    r = mote_ok_i(0);
    T_CHECK_EQ(mote_await(boom, &r), 0);
    T_CHECK_EQ(r.err, -ECANCELED);
    for (int i = 0; i < 20; i++) {
        r = mote_ok_i(0);
        T_CHECK_EQ(mote_await(after[i], &r), 0);
        T_CHECK_EQ(r.err, -ECANCELED);
    }
    /* The destructor runs (we still hold a handle: it runs anyway), and
     * the state it sees was never touched by the cancelled messages. */
    t_wait_at_least(&dtor_runs, 1);
    T_CHECK_EQ(atomic_load(&dtor_saw), 11);
    r = mote_ok_i(0);
    T_CHECK_EQ(mote_call(victim, t_h_add, &one, sizeof one, &r), 0);
    T_CHECK_EQ(r.err, -ECANCELED);
    (void)mote_cast(victim, t_h_add, &one, sizeof one); /* harmless */

    T_CHECK_EQ(mote_call(other, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 100);
    mote_proc_release(victim);
    mote_proc_release(other);
    return 0;
}

Test(panic, handler_cancels_pending_and_runs_dtor) {
    T_RUN_OK(NULL, main_handler_state, NULL);
    cr_assert_eq(atomic_load(&dtor_runs), 1, "destructor ran %d times", atomic_load(&dtor_runs));
}

/* A foreign thread blocked in mote_call on the panicking process is
 * released with -ECANCELED. */
typedef struct foreign_wait {
    mote_proc *victim, *report;
} foreign_wait;

static void *thread_call_victim(void *arg) {
    foreign_wait *w = arg;
    mote_result r = mote_ok_i(0);
    T_CHECK_EQ(mote_call(w->victim, t_h_get, NULL, 0, &r), 0);
    t_send_i64(w->report, r.err);
    return NULL;
}

static int main_foreign_cancelled(void *arg) {
    (void)arg;
    handler_parent = mote_self();
    mote_proc *victim = t_spawn_counter(3);
    mote_result r;
    T_CHECK_EQ(mote_call(victim, h_register, NULL, 0, &r), 0);
    t_gate gate = {0};
    mote_future *held = t_async_gated(victim, &gate, 0);
    int64_t v = 5;
    T_CHECK_EQ(mote_cast(victim, h_panic, &v, sizeof v), 0);
    foreign_wait w = {victim, mote_self()};
    pthread_t th = t_thread(thread_call_victim, &w);
    mote_sleep(MOTE_MSEC(2));
    t_gate_open(&gate);
    t_await_value(held, 0);
    /* Two messages arrive, in either order: the note and the error. */
    int notes = 0, errs = 0;
    for (int i = 0; i < 2; i++) {
        mote_msg *m = NULL;
        T_CHECK_EQ(mote_receive(&m, T_PATIENCE), 0);
        if (!m)
            break;
        if (mote_msg_size(m) == sizeof(panic_note)) {
            notes++;
        } else {
            int64_t e = 0;
            memcpy(&e, mote_msg_data(m), sizeof e);
            T_CHECK_EQ(e, -ECANCELED);
            errs++;
        }
        mote_msg_free(m);
    }
    T_CHECK_EQ(notes, 1);
    T_CHECK_EQ(errs, 1);
    t_join(th);
    mote_proc_release(victim);
    return 0;
}

Test(panic, foreign_caller_of_panicked_process_is_cancelled) { T_RUN_OK(NULL, main_foreign_cancelled, NULL); }

/* Many processes panic with handlers at once; all are reported. */
static void fn_many(void *arg) {
    int64_t i = *(int64_t *)arg;
    static int64_t zero;
    T_CHECK_EQ(mote_on_panic(handler_note, &zero), 0);
    if (i % 3 == 0)
        mote_yield();
    mote_panic("panic %lld", (long long)i);
}

static int main_many_panics(void *arg) {
    (void)arg;
    handler_parent = mote_self();
    int n = T_SCALE(500, 100);
    for (int64_t i = 0; i < n; i++)
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_many, &i, sizeof i), 0);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        panic_note note = recv_note();
        long long k = -1;
        T_CHECK_EQ(sscanf(note.msg, "panic %lld", &k), 1);
        sum += k;
    }
    T_CHECK_EQ(sum, (int64_t)n * (n - 1) / 2);
    return 0;
}

Test(panic, many_handled_panics) { T_RUN_OK(NULL, main_many_panics, NULL); }

/* ---- mote_on_panic outside a process ---------------------------------------------------- */

static void *thread_on_panic(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_on_panic(handler_unused, NULL), -EPERM);
    return NULL;
}

static int main_on_panic_foreign(void *arg) {
    (void)arg;
    t_join(t_thread(thread_on_panic, NULL));
    /* In a process it works. */
    T_CHECK_EQ(mote_on_panic(handler_unused, NULL), 0);
    T_CHECK_EQ(mote_on_panic(NULL, NULL), 0);
    return 0;
}

Test(panic, on_panic_outside_a_process_is_eperm) {
    cr_assert_eq(mote_on_panic(handler_unused, NULL), -EPERM);
    T_RUN_OK(NULL, main_on_panic_foreign, NULL);
}
