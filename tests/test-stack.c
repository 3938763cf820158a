/* Process stacks: overflow detection and the configured stack size, for
 * guarded stacks (the default for the first thousands) and for arena
 * stacks (MOTE_STACK_GUARDS=0: every stack comes from an arena, and an
 * overflow is caught by the arena's guard page or by the canary of the slot
 * below, at the next switch). */
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

/* The same, but writing each frame's whole buffer, as code with real data
 * on its stack does. A canary (arena stacks) is a few words: a frame that
 * writes only here and there may jump over it (docs/design.md). */
__attribute__((noinline)) static int64_t recurse_dense(volatile char *prev, int64_t depth) {
    volatile char buf[1024];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)((uint64_t)depth + i);
    buf[sizeof buf - 1] = prev ? prev[0] : 1;
    if (depth <= 0)
        return buf[0];
    return recurse_dense(buf, depth - 1) + buf[sizeof buf - 1];
}

typedef struct stack_job {
    int64_t kib;          /* stack to use; < 0: recurse without end */
    size_t cfg_stack;     /* config stack_size, 0 for env/default */
    const char *env;      /* MOTE_STACK_SIZE, or NULL to unset */
    bool arena;           /* every stack from an arena (MOTE_STACK_GUARDS=0), one worker */
    bool parked_below;    /* first park a process on the slot below (arena) */
} stack_job;

static void fn_use_stack(void *arg) {
    const stack_job *job = *(const stack_job **)arg;
    printf("process %llu\n", (unsigned long long)mote_proc_id(mote_self()));
    fflush(stdout);
    int64_t depth = job->kib < 0 ? INT64_MAX : job->kib;
    int64_t r = job->arena ? recurse_dense(NULL, depth) : recurse(NULL, depth);
    /* A switch: where an arena stack's canary is checked. */
    mote_yield();
    printf("used %lld KiB (%lld)\n", (long long)job->kib, (long long)r);
    fflush(stdout);
}

/* Holds the stack it runs on (suspended in mote_receive) until the end. */
static void fn_park(void *arg) {
    (void)arg;
    mote_msg *m = NULL;
    if (mote_receive(&m, MOTE_FOREVER) == 0)
        mote_msg_free(m);
}

static int main_stack(void *arg) {
    const stack_job *job = arg;
    mote_proc *p = NULL, *parked = NULL;
    if (job->parked_below) { /* it keeps the lent stack; the next runs on another */
        if (mote_spawn_fn(&parked, fn_park, NULL, 0) != 0)
            return 2;
        mote_sleep(MOTE_MSEC(20));
    }
    if (mote_spawn_fn(&p, fn_use_stack, &arg, sizeof arg) != 0)
        return 2;
    /* Wait for the process to finish: it answers a call only after fn. */
    mote_result r;
    if (mote_call(p, t_h_echo, &(int64_t){0}, sizeof(int64_t), &r) != 0)
        return 3;
    mote_proc_release(p);
    if (parked) {
        mote_send(parked, "", 1);
        mote_proc_release(parked);
    }
    return 0;
}

static void child_stack(void *arg) {
    const stack_job *job = arg;
    if (job->env)
        setenv("MOTE_STACK_SIZE", job->env, 1);
    else
        unsetenv("MOTE_STACK_SIZE");
    if (job->arena)
        setenv("MOTE_STACK_GUARDS", "0", 1);
    /* One worker for arena stacks: an overflow runs over the slots below,
     * and a second worker could wake on one of them before the report. */
    mote_config cfg = {.stack_size = job->cfg_stack, .threads = job->arena ? 1 : 0};
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
#ifdef T_ASAN
    /* An arena stack overflows into the slot below, whose frames ASan
     * poisons: it reports the overflow before mote does. Reported either way. */
    if (job->arena && strstr(c.err, "AddressSanitizer: stack-buffer-overflow")) {
        t_child_free(&c);
        return;
    }
#endif
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
     * process was spawned with, the recursion folded. Not for a canary
     * found at a switch: the overflow's frames are gone by then. */
    if (!job->arena || job->kib < 0)
        cr_assert(strstr(c.err, job->arena ? "in recurse_dense at " : "in recurse at ") &&
                      strstr(c.err, "test-stack.c:") && strstr(c.err, "more of the frame above") &&
                      strstr(c.err, "in fn_use_stack at "),
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
    stack_job job = {-1, 64 * 1024, NULL, false, false};
    expect_overflow(&job, 64 * 1024);
}

/* Arena stacks: unbounded recursion runs into the arena's guard page. */
Test(stack, arena_overflow_into_the_guard_is_reported) {
    stack_job job = {-1, 64 * 1024, NULL, true, false};
    expect_overflow(&job, 64 * 1024);
    stack_job above = {-1, 64 * 1024, NULL, true, true}; /* over another slot first */
    expect_overflow(&above, 64 * 1024);
}

/* Arena stacks: an overflow that returns is caught by the canary below
 * the stack at the next switch (the yield), before it prints. */
Test(stack, arena_overflow_is_reported_at_the_next_switch) {
    stack_job job = {72, 64 * 1024, NULL, true, true};
    expect_overflow(&job, 64 * 1024);
    stack_job fits = {48, 64 * 1024, NULL, true, true};
    expect_fits(&fits);
}

Test(stack, arena_stack_size_is_honoured) {
    stack_job big = {200, 1024 * 1024, NULL, true, true};
    expect_fits(&big);
    stack_job small = {200, 64 * 1024, NULL, true, true};
    expect_overflow(&small, 64 * 1024);
}

Test(stack, overflow_report_gives_env_stack_size) {
    stack_job job = {-1, 0, "131072", false, false};
    expect_overflow(&job, 128 * 1024);
}

Test(stack, config_stack_size_is_honoured) {
    stack_job big = {200, 1024 * 1024, NULL, false, false};
    expect_fits(&big);
    stack_job small = {200, 64 * 1024, NULL, false, false};
    expect_overflow(&small, 64 * 1024);
}

Test(stack, env_stack_size_is_honoured) {
    stack_job big = {200, 0, "1048576", false, false};
    expect_fits(&big);
    stack_job small = {200, 0, "65536", false, false};
    expect_overflow(&small, 64 * 1024);
}

Test(stack, config_wins_over_env) {
    stack_job job = {200, 1024 * 1024, "65536", false, false};
    expect_fits(&job);
    stack_job job2 = {200, 64 * 1024, "1048576", false, false};
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
