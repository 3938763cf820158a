/*
 * test-assert.c -- MOTE_ASSERT (base/base.h). In a debug build
 * (MOTE_DEBUG=ON) a broken invariant aborts with a report: a child process
 * breaks one on purpose (a double release of a process that is still
 * scheduled, a future completed twice) and must die of SIGABRT, saying
 * where, what and in which process. In any other build an assertion is
 * compiled out: its condition is never evaluated.
 */
#include "helpers.h"

#include "proc/proc.h"

static int evaluated;

/* Not static: a release build never calls it (clang would say so). */
bool count_and_fail(void);
bool count_and_fail(void) {
    evaluated++;
    return false;
}

Test(assert, compiled_out_unless_debug) {
    MOTE_ASSERT(count_and_fail() || true); /* holds: a debug build evaluates it once */
#if MOTE_DEBUG
    cr_assert_eq(evaluated, 1);
#else
    MOTE_ASSERT(count_and_fail());
    MOTE_ASSERT_MSG(count_and_fail(), "never evaluated");
    cr_assert_eq(evaluated, 0, "a release build evaluated an assertion");
#endif
}

#if MOTE_DEBUG
/* Runs fn in a child, which must abort with an assertion report
 * containing every one of the NULL-terminated texts. */
static void expect_assertion(void (*fn)(void *), const char *const *texts) {
    t_child c;
    t_child_run(&c, fn, NULL);
    cr_assert(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT,
              "the child did not abort (status %#x); stderr:\n%s", c.status, c.err);
    cr_assert(strstr(c.err, "mote: assertion failed at "), "no report:\n%s", c.err);
    for (const char *const *t = texts; *t; t++)
        cr_assert(strstr(c.err, *t), "'%s' missing from the report:\n%s", *t, c.err);
    t_child_free(&c);
}

static void sleep_forever(void *arg) {
    (void)arg;
    mote_sleep(-1);
}

/* The handle is released twice: the second release takes the reference
 * that keeps the (parked) process scheduled. */
static int main_double_release(void *arg) {
    (void)arg;
    mote_proc *p = NULL;
    T_CHECK_EQ(mote_spawn_fn(&p, sleep_forever, NULL, 0), 0);
    mote_proc_release(p);
    mote_proc_release(p);
    return 0;
}

static void child_double_release(void *arg) {
    (void)arg;
    mote_run(NULL, main_double_release, NULL);
}

Test(assert, double_release_of_a_scheduled_process) {
    static const char *const texts[] = {"proc.c:", "== MOTE__IDLE",
                                        "the last reference went while the process was scheduled",
                                        "in process ", "backtrace:", NULL};
    expect_assertion(child_double_release, texts);
}

static void child_complete_twice(void *arg) {
    (void)arg;
    mote_future f;
    mote__future_init_stack(&f);
    mote__future_complete(&f, mote_ok_i(1));
    mote__future_complete(&f, mote_ok_i(2));
}

Test(assert, future_completed_twice) {
    static const char *const texts[] = {"future.c:", "a future completes once", NULL};
    expect_assertion(child_complete_twice, texts);
}
#else
Test(assert, broken_invariants_abort) {
    cr_skip_test("not a debug build (MOTE_DEBUG=OFF): assertions are compiled out");
}
#endif
