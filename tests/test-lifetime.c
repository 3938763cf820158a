/* The runtime's lifetime: mote_run's contract, configuration, bad arguments,
 * and calls made when no runtime runs. */
#include "helpers.h"

#include <sched.h>

static int main_return_arg(void *arg) { return *(int *)arg; }

Test(lifetime, run_returns_main_value) {
    static const int values[] = {0, 42, -7, 101, 255};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        int v = values[i];
        cr_assert_eq(t_run(NULL, main_return_arg, &v), v);
    }
}

/* A little of everything, so that each run really starts the runtime. */
static int main_some_work(void *arg) {
    int round = *(int *)arg;
    mote_proc *p = t_spawn_counter(round);
    mote_future *f = NULL;
    int64_t d = 1;
    T_CHECK_EQ(mote_async(p, t_h_add, &d, sizeof d, &f), 0);
    t_await_value(f, round + 1);
    T_CHECK_EQ(mote_sleep(MOTE_USEC(10)), 0);
    mote_proc_release(p);
    return round;
}

Test(lifetime, run_can_be_called_again) {
    for (int round = 0; round < 10; round++) {
        mote_config cfg = {.threads = 1 + (unsigned)round % 3};
        cr_assert_eq(t_run(round % 2 ? &cfg : NULL, main_some_work, &round), round);
        cr_assert_eq(mote_threads(), 0);
    }
}

static void *thread_run(void *arg) {
    int *v = arg;
    *v = mote_run(NULL, main_some_work, v) == *v ? 1 : 0;
    return NULL;
}

Test(lifetime, run_from_another_thread) {
    int v = 5;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, thread_run, &v), 0);
    t_join(t);
    t_assert_clean();
    cr_assert_eq(v, 1);
    /* ...and then again from this one. */
    int w = 6;
    cr_assert_eq(t_run(NULL, main_some_work, &w), 6);
}

/* ---- Only one runtime at a time ------------------------------------------------- */

static void *thread_nested_run(void *arg) {
    int *rc = arg;
    int v = 1;
    *rc = mote_run(NULL, main_return_arg, &v);
    return NULL;
}

static atomic_int nested_ran;

static int main_nested(void *arg) {
    (void)arg;
    atomic_fetch_add(&nested_ran, 1);
    return 0;
}

static int main_busy(void *arg) {
    (void)arg;
    T_CHECK_EQ(mote_run(NULL, main_nested, NULL), -EBUSY);
    int rc = 0;
    t_join(t_thread(thread_nested_run, &rc));
    T_CHECK_EQ(rc, -EBUSY);
    T_CHECK_EQ(atomic_load(&nested_ran), 0);
    /* The running runtime is unharmed. */
    mote_proc *p = t_spawn_counter(1);
    mote_result r;
    T_CHECK_EQ(mote_call(p, t_h_get, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 1);
    mote_proc_release(p);
    return 0;
}

Test(lifetime, second_runtime_is_ebusy) {
    T_RUN_OK(NULL, main_busy, NULL);
    cr_assert_eq(atomic_load(&nested_ran), 0);
}

/* ---- Configuration ----------------------------------------------------------------- */

static int main_report_threads(void *arg) {
    (void)arg;
    return (int)mote_threads();
}

Test(lifetime, threads_from_config) {
    cr_assert_eq(mote_threads(), 0);
    for (unsigned n = 1; n <= 4; n++) {
        mote_config cfg = {.threads = n};
        cr_assert_eq(t_run(&cfg, main_report_threads, NULL), (int)n);
    }
}

Test(lifetime, threads_from_env_and_default) {
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    unsetenv("MOTE_THREADS");
    cr_assert_eq(t_run(NULL, main_report_threads, NULL), CPU_COUNT(&set));
    setenv("MOTE_THREADS", "3", 1);
    cr_assert_eq(t_run(NULL, main_report_threads, NULL), 3);
    mote_config zero = {0};
    cr_assert_eq(t_run(&zero, main_report_threads, NULL), 3);
    /* The struct wins over the environment. */
    mote_config two = {.threads = 2};
    cr_assert_eq(t_run(&two, main_report_threads, NULL), 2);
}

static atomic_int bad_cfg_ran;

static int main_mark(void *arg) {
    (void)arg;
    atomic_fetch_add(&bad_cfg_ran, 1);
    return 0;
}

Test(lifetime, impossible_stack_size_fails_cleanly) {
    mote_config cfg = {.stack_size = SIZE_MAX};
    int rc = mote_run(&cfg, main_mark, NULL);
    cr_assert(rc == -EINVAL || rc == -ENOMEM, "mote_run returned %d (%s)", rc, mote_strerror(rc));
    cr_assert_eq(atomic_load(&bad_cfg_ran), 0);
    cr_assert_eq(mote_threads(), 0);
    /* And a good run works afterwards. */
    cr_assert_eq(t_run(NULL, main_mark, NULL), 0);
    cr_assert_eq(atomic_load(&bad_cfg_ran), 1);
}

/* ---- Bad arguments --------------------------------------------------------------------- */

Test(lifetime, null_main_is_einval) {
    cr_assert_eq(mote_run(NULL, NULL, NULL), -EINVAL);
    mote_config cfg = {.threads = 2};
    cr_assert_eq(mote_run(&cfg, NULL, NULL), -EINVAL);
    cr_assert_eq(mote_threads(), 0);
    int v = 3;
    cr_assert_eq(t_run(NULL, main_return_arg, &v), 3);
}

static int main_bad_args(void *arg) {
    (void)arg;
    int64_t v = 0;
    T_CHECK_EQ(mote_spawn(NULL, &v, sizeof v, NULL), -EINVAL);
    T_CHECK_EQ(mote_spawn_fn(NULL, NULL, NULL, 0), -EINVAL);
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, NULL, &v, sizeof v), -EINVAL);
    mote_proc_release(NULL);
    mote_future_drop(NULL);
    mote_result r;
    T_CHECK_EQ(mote_cast(NULL, t_h_get, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_call(NULL, t_h_get, NULL, 0, &r), -EINVAL);
    T_CHECK_EQ(mote_send(NULL, &v, sizeof v), -EINVAL);
    T_CHECK_EQ(mote_await(NULL, &r), -EINVAL);
    T_CHECK_EQ(mote_receive(NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_timer(NULL, 0), -EINVAL);
    return 0;
}

Test(lifetime, null_handles_are_einval) { T_RUN_OK(NULL, main_bad_args, NULL); }

/* ---- Without a runtime --------------------------------------------------------------- */

static void noop_fn(void *arg) { (void)arg; }

static void noop_handler(const char *msg, void *ctx) {
    (void)msg;
    (void)ctx;
}

static void check_no_runtime(void) {
    mote_proc *p = NULL;
    mote_msg *m = NULL;
    mote_result r;
    int64_t v = 1;
    T_CHECK_EQ(mote_threads(), 0);
    T_CHECK(mote_self() == NULL);
    T_CHECK(mote_self_state() == NULL);
    T_CHECK_EQ(mote_spawn(&p, &v, sizeof v, NULL), -ESHUTDOWN);
    T_CHECK_EQ(mote_spawn_fn(&p, noop_fn, NULL, 0), -ESHUTDOWN);
    T_CHECK_EQ(mote_receive(&m, 0), -EPERM);
    T_CHECK_EQ(mote_receive(&m, MOTE_MSEC(1)), -EPERM);
    T_CHECK_EQ(mote_on_panic(noop_handler, NULL), -EPERM);
    T_CHECK_EQ(mote_cast(NULL, t_h_get, NULL, 0), -EINVAL);
    T_CHECK_EQ(mote_call(NULL, t_h_get, NULL, 0, &r), -EINVAL);
    mote_proc_release(NULL);
    mote_future_drop(NULL);
    T_CHECK(mote_now() > 0);
}

static void *thread_no_runtime(void *arg) {
    (void)arg;
    check_no_runtime();
    return NULL;
}

Test(lifetime, calls_without_runtime) {
    check_no_runtime();
    t_join(t_thread(thread_no_runtime, NULL));
    int v = 0;
    cr_assert_eq(t_run(NULL, main_return_arg, &v), 0);
    check_no_runtime(); /* after one has come and gone */
    t_assert_clean();
}

Test(lifetime, strerror_never_null) {
    static const int errs[] = {0, -EINVAL, -ENOMEM, -EBUSY, -EAGAIN, -ESHUTDOWN, -EPERM, -EDEADLK,
                               -ETIMEDOUT, -ECANCELED, -99999, 12345, -2147483647};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        cr_assert(mote_strerror(errs[i]) != NULL, "mote_strerror(%d) is NULL", errs[i]);
    cr_assert(strlen(mote_strerror(-ETIMEDOUT)) > 0);
    cr_assert(strcmp(mote_strerror(-ETIMEDOUT), mote_strerror(-EINVAL)) != 0);
}
