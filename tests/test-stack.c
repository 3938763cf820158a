/* Process stacks: overflow detection and the configured stack size. */
#include "helpers.h"

#include <strings.h>

/* Uses about 1 KiB of stack per level; the work after the call keeps the
 * compiler from turning it into a loop. */
__attribute__((noinline)) static int64_t recurse(volatile char *prev, int64_t depth) {
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[sizeof buf - 1] = prev ? prev[0] : 1;
    if (depth <= 0)
        return buf[0];
    return recurse(buf, depth - 1) + buf[sizeof buf - 1];
}

typedef struct stack_job {
    int64_t kib;          /* stack to use; < 0: recurse without end */
    size_t cfg_stack;     /* config stack_size, 0 for env/default */
    const char *env;      /* MOTE_STACK_SIZE, or NULL to unset */
} stack_job;

static void fn_use_stack(void *arg) {
    const stack_job *job = *(const stack_job **)arg;
    printf("process %llu\n", (unsigned long long)mote_proc_id(mote_self()));
    fflush(stdout);
    int64_t r = recurse(NULL, job->kib < 0 ? INT64_MAX : job->kib);
    printf("used %lld KiB (%lld)\n", (long long)job->kib, (long long)r);
    fflush(stdout);
}

static int main_stack(void *arg) {
    mote_proc *p = NULL;
    if (mote_spawn_fn(&p, fn_use_stack, &arg, sizeof arg) != 0)
        return 2;
    /* Wait for the process to finish: it answers a call only after fn. */
    mote_result r;
    if (mote_call(p, t_h_echo, &(int64_t){0}, sizeof(int64_t), &r) != 0)
        return 3;
    mote_proc_release(p);
    return 0;
}

static void child_stack(void *arg) {
    const stack_job *job = arg;
    if (job->env)
        setenv("MOTE_STACK_SIZE", job->env, 1);
    else
        unsetenv("MOTE_STACK_SIZE");
    mote_config cfg = {.stack_size = job->cfg_stack};
    t_run_spec spec = {&cfg, main_stack, (void *)job};
    t_child_mote(&spec);
}

/* The report gives the stack size: in bytes (the usable part may be a little
 * less than the configured size, for guard or bookkeeping) or in KiB. */
static bool mentions_size(const char *text, size_t bytes) {
    char kib[32], kib2[32];
    snprintf(kib, sizeof kib, "%zu KiB", bytes / 1024);
    snprintf(kib2, sizeof kib2, "%zuKiB", bytes / 1024);
    if (strstr(text, kib) || strstr(text, kib2))
        return true;
    for (const char *p = text; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p > text && isdigit((unsigned char)p[-1])))
            continue;
        unsigned long long n = strtoull(p, NULL, 10);
        if (n <= bytes && n + 4096 > bytes)
            return true;
    }
    return false;
}

static void expect_overflow(const stack_job *job, size_t stack_bytes) {
    t_child c;
    t_child_run(&c, child_stack, (void *)job);
    T_ASSERT_SIGNALED(&c, SIGABRT);
    unsigned long long id = 0;
    cr_assert(sscanf(c.out, "process %llu", &id) == 1, "stdout:\n%s", c.out);
    cr_assert(strstr(c.out, "used") == NULL, "stdout:\n%s", c.out);
    cr_assert(strcasestr(c.err, "overflow") != NULL && strcasestr(c.err, "stack") != NULL,
              "no stack overflow report on stderr:\n%s", c.err);
    cr_assert(t_has_number(c.err, id), "report does not name process %llu:\n%s", id, c.err);
    cr_assert(mentions_size(c.err, stack_bytes), "report does not give the stack size %zu:\n%s",
              stack_bytes, c.err);
#ifdef T_HAVE_LIBDW
    /* The frames, from the faulting one down to the function the
     * process was spawned with, the recursion folded. */
    cr_assert(strstr(c.err, "in recurse at ") && strstr(c.err, "test-stack.c:") &&
                  strstr(c.err, "more of the frame above") && strstr(c.err, "in fn_use_stack at "),
              "no symbolised backtrace:\n%s", c.err);
#endif
    t_child_free(&c);
}

static void expect_fits(const stack_job *job) {
    t_child c;
    t_child_run(&c, child_stack, (void *)job);
    T_ASSERT_EXITED(&c, 0);
    char want[64];
    snprintf(want, sizeof want, "used %lld KiB", (long long)job->kib);
    T_ASSERT_CONTAINS(c.out, want);
    T_ASSERT_CONTAINS(c.out, "mote_run: 0");
    t_child_free(&c);
}

Test(stack, overflow_is_reported_and_aborts) {
    stack_job job = {-1, 64 * 1024, NULL};
    expect_overflow(&job, 64 * 1024);
}

Test(stack, overflow_report_gives_env_stack_size) {
    stack_job job = {-1, 0, "131072"};
    expect_overflow(&job, 128 * 1024);
}

Test(stack, config_stack_size_is_honoured) {
    stack_job big = {200, 1024 * 1024, NULL};
    expect_fits(&big);
    stack_job small = {200, 64 * 1024, NULL};
    expect_overflow(&small, 64 * 1024);
}

Test(stack, env_stack_size_is_honoured) {
    stack_job big = {200, 0, "1048576"};
    expect_fits(&big);
    stack_job small = {200, 0, "65536"};
    expect_overflow(&small, 64 * 1024);
}

Test(stack, config_wins_over_env) {
    stack_job job = {200, 1024 * 1024, "65536"};
    expect_fits(&job);
    stack_job job2 = {200, 64 * 1024, "1048576"};
    expect_overflow(&job2, 64 * 1024);
}

/* Many processes each using a good part of a larger stack, concurrently. */
typedef struct deep_arg {
    mote_proc *report;
    int64_t kib;
} deep_arg;

static void fn_deep(void *arg) {
    deep_arg *a = arg;
    volatile int64_t sink = recurse(NULL, a->kib);
    mote_yield();
    sink += recurse(NULL, a->kib / 2);
    (void)sink;
    t_send_i64(a->report, 1);
    mote_proc_release(a->report);
}

static int main_many_deep(void *arg) {
    (void)arg;
    int n = T_SCALE(200, 50);
    for (int i = 0; i < n; i++) {
        deep_arg a = {mote_proc_ref(mote_self()), 100 + i % 100};
        T_CHECK_EQ(mote_spawn_fn(NULL, fn_deep, &a, sizeof a), 0);
    }
    for (int i = 0; i < n; i++)
        T_CHECK_EQ(t_recv_i64(), 1);
    return 0;
}

Test(stack, many_processes_with_deep_stacks) {
    mote_config cfg = {.stack_size = 1024 * 1024};
    T_RUN_OK(&cfg, main_many_deep, NULL);
}
