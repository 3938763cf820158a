/* MOTE_WARN_BLOCKING=ms: a blocking section or a turn longer than that is
 * reported once per process, with its name, how long, and where. */
#include "helpers.h"

/* A cut-down busy wait: no call into mote (a turn that does not give the
 * worker back), no timing assertion (it only needs to last). */
static void spin_for(int64_t ns) {
    int64_t end = mote_now() + ns;
    while (mote_now() < end)
        ;
}

/* noinline, and a use of the result: each keeps its frame. */
__attribute__((noinline)) static int slow_section(void) {
    mote_blocking_begin();
    usleep(30 * 1000);
    mote_blocking_end();
    return 1;
}

__attribute__((noinline)) static int hog_then_sleep(void) {
    spin_for(MOTE_MSEC(30));
    return mote_sleep(MOTE_MSEC(1)) + 1;
}

static void fn_sectioner(void *arg) {
    (void)arg;
    mote_proc_set_name(mote_self(), "sectioner");
    int n = 0;
    for (int i = 0; i < 3; i++) /* three long sections: one report */
        n += slow_section();
    printf("sections %d\n", n);
}

static void fn_hog(void *arg) {
    (void)arg;
    mote_proc_set_name(mote_self(), "hog");
    printf("hog %d\n", hog_then_sleep());
}

static mote_result slow_handler(void *state, void *arg) {
    (void)state;
    (void)arg;
    spin_for(MOTE_MSEC(30));
    return mote_ok_i(7);
}

static mote_result quick_handler(void *state, void *arg) {
    (void)state;
    (void)arg;
    return mote_ok_i(1);
}

static int main_warned(void *arg) {
    (void)arg;
    mote_proc *a, *b, *c, *q;
    T_CHECK_EQ(mote_spawn_fn(&a, fn_sectioner, NULL, 0), 0);
    T_CHECK_EQ(mote_spawn_fn(&b, fn_hog, NULL, 0), 0);
    T_CHECK_EQ(mote_spawn(&c, NULL, 8, NULL), 0);
    T_CHECK_EQ(mote_proc_set_name(c, "handler"), 0);
    T_CHECK_EQ(mote_spawn(&q, NULL, 8, NULL), 0);
    T_CHECK_EQ(mote_proc_set_name(q, "quick"), 0);
    mote_result r;
    T_CHECK_EQ(mote_call(c, slow_handler, NULL, 0, &r), 0);
    T_CHECK_EQ(r.i, 7);
    for (int i = 0; i < 100; i++)
        T_CHECK_EQ(mote_call(q, quick_handler, NULL, 0, NULL), 0);
    /* The Erlang-style ones answer calls once their function returned. */
    T_CHECK_EQ(mote_call(a, quick_handler, NULL, 0, NULL), 0);
    T_CHECK_EQ(mote_call(b, quick_handler, NULL, 0, NULL), 0);
    printf("ids %llu %llu %llu %llu\n", (unsigned long long)mote_proc_id(a), (unsigned long long)mote_proc_id(b),
           (unsigned long long)mote_proc_id(c), (unsigned long long)mote_proc_id(q));
    mote_proc_release(a);
    mote_proc_release(b);
    mote_proc_release(c);
    mote_proc_release(q);
    return 0;
}

static void child_env(void *arg) {
    const char *value = arg;
    if (value)
        setenv("MOTE_WARN_BLOCKING", value, 1);
    else
        unsetenv("MOTE_WARN_BLOCKING");
    t_run_spec spec = {NULL, main_warned, NULL};
    t_child_mote(&spec);
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The report of the process named name: from its header to the next. */
static char *report_of(const char *text, const char *name) {
    char head[64];
    snprintf(head, sizeof head, "(%s) ", name);
    const char *p = strstr(text, head);
    if (!p)
        return strdup("");
    const char *end = strstr(p + 1, "mote: process ");
    return strndup(p, end ? (size_t)(end - p) : strlen(p));
}

Test(warn, long_sections_and_turns_reported_once) {
    t_child c;
    t_child_run(&c, child_env, "5");
    T_ASSERT_EXITED(&c, 0);
    T_ASSERT_CONTAINS(c.out, "sections 3");
    /* Each kind once, for the process that did it. */
    char *s = report_of(c.err, "sectioner"), *h = report_of(c.err, "hog"), *m = report_of(c.err, "handler");
    cr_assert(strstr(s, "in a blocking section (MOTE_WARN_BLOCKING=5)"), "%s", c.err);
    cr_assert(strstr(h, "in one turn (MOTE_WARN_BLOCKING=5), until it suspended here"), "%s", c.err);
    cr_assert(strstr(m, "in one turn (MOTE_WARN_BLOCKING=5), up to the end of message"), "%s", c.err);
    cr_assert_eq(count(c.err, "(sectioner) "), 1, "reported more than once:\n%s", c.err);
    cr_assert_eq(count(c.err, "(handler) "), 1, "%s", c.err);
    cr_assert(!strstr(c.err, "(quick)"), "a quick process was reported:\n%s", c.err);
    /* Where: with libdw the frames and the handler say file:line. */
#ifdef T_HAVE_LIBDW
    cr_assert(strstr(s, "in slow_section at ") && strstr(s, "test-warn.c:"), "%s", s);
    cr_assert(strstr(h, "in hog_then_sleep at "), "%s", h);
    cr_assert(strstr(m, "message slow_handler at ") && strstr(m, "test-warn.c:"), "%s", m);
#endif
    free(s);
    free(h);
    free(m);
    t_child_free(&c);
}

Test(warn, off_unless_asked) {
    const char *values[] = {NULL, "0"};
    for (size_t i = 0; i < 2; i++) {
        t_child c;
        t_child_run(&c, child_env, (void *)values[i]);
        T_ASSERT_EXITED(&c, 0);
        cr_assert(!strstr(c.err, "MOTE_WARN_BLOCKING"), "warned with %s:\n%s", values[i] ? values[i] : "(unset)",
                  c.err);
        t_child_free(&c);
    }
}

static int main_nothing(void *arg) {
    (void)arg;
    return 0;
}

Test(warn, absurd_value_refused) {
    setenv("MOTE_WARN_BLOCKING", "99999999999", 1);
    cr_assert_eq(mote_run(NULL, main_nothing, NULL), -EINVAL);
    unsetenv("MOTE_WARN_BLOCKING");
}
