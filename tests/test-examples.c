/* Runs the built examples and checks what they print. */
#include "helpers.h"

static void run_example(const char *name, t_child *c) {
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/%s", MOTE_BUILD_DIR, name);
    cr_assert(access(path, X_OK) == 0, "example not built: %s", path);
    char *argv[] = {path, NULL};
    t_child_exec(c, argv);
}

static void expect_output(const char *name, const char *want) {
    t_child c;
    run_example(name, &c);
    T_ASSERT_EXITED(&c, 0);
    cr_assert_str_eq(c.out, want, "%s printed:\n%s\nexpected:\n%s\nstderr:\n%s", name, c.out, want, c.err);
    t_child_free(&c);
}

Test(examples, counter) {
    expect_output("seeds/counter", "value after 1 increment: 1\n"
                                   "value after 11 increments: 11\n"
                                   "awaited value: 12\n"
                                   "await_for value: 12\n");
}

Test(examples, poll) {
    expect_output("seeds/poll", "runner 1: sum(1..1000) = 500500\n"
                                "runner 2: sum(1..2000000) = 2000001000000\n"
                                "2 futures ready, 0 pending\n");
}

Test(examples, pingpong) {
    expect_output("seeds/pingpong", "ping 1\npong 1\ngot \"pong 1\"\n"
                                    "ping 2\npong 2\ngot \"pong 2\"\n"
                                    "ping 3\npong 3\ngot \"pong 3\"\n"
                                    "nothing else after 10 ms\n");
}

Test(examples, panic_handler) {
    expect_output("seeds/panic_handler", "child: handler registered\n"
                                         "84 / 2 = 42\n"
                                         "parent got: child panicked: division of 1 by zero\n"
                                         "the failed call: cancelled\n"
                                         "a later call: cancelled\n"
                                         "parent still running\n");
}

/* The demo's timings vary; its facts do not. */
Test(examples, tour) {
#ifdef MOTE_SANITIZER_BUILD
    cr_skip_test("the tour's 100k-message timings are for plain builds");
#endif
    t_child c;
    run_example("tour", &c);
    T_ASSERT_EXITED(&c, 0);
    static const char *facts[] = {
        "deposit 50 -> balance 150\n",
        "100000 casts then a call: balance 100150,",
        "await_for 5 ms on a 30 ms message: timed out\n",
        "then await: 30\n",
        "a 50 ms call raced a 10 ms timer: the timer came first\n",
        "receive with a 2 ms timeout on an empty mailbox:",
        "spawn and release 100000 processes:",
        "(sum 5000150000)\n",
        "an active socket answered: HELLO, MOTE\n",
        "read a line: LINE TWO\n",
        "workers blocked for 50 ms; meanwhile",
        "wrote and read back a file: 8893 bytes, 1000 lines\n",
        "tour done in",
    };
    for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++)
        T_ASSERT_CONTAINS(c.out, facts[i]);
    cr_assert_str_empty(c.err, "stderr:\n%s", c.err);
    t_child_free(&c);
}
