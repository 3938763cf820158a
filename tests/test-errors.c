/* test-errors.c -- mote_strerror's text for mote's own meanings, its range
 * checks, and the resolver's own codes. */
#include "helpers.h"

#include <limits.h>

Test(errors, own_meanings_read_as_what_they_are) {
    cr_assert_str_eq(mote_strerror(-ETIMEDOUT), "timed out");
    cr_assert_str_eq(mote_strerror(-ESHUTDOWN), "the mote runtime is not running");
    cr_assert_str_eq(mote_strerror(-ECANCELED), "cancelled");
    cr_assert_str_eq(mote_strerror(MOTE_EAI_NONAME), "unknown host name");
    cr_assert_str_eq(mote_strerror(MOTE_EAI_AGAIN), "temporary failure in name resolution");
    cr_assert_str_eq(mote_strerror(MOTE_EAI_FAIL), "name resolution failed");
    /* Other errno values keep the C library's text. */
    cr_assert_str_eq(mote_strerror(-ENOENT), strerror(ENOENT));
    cr_assert_str_eq(mote_strerror(-ECONNRESET), strerror(ECONNRESET));
}

Test(errors, out_of_range_codes) {
    cr_assert_str_eq(mote_strerror(0), "success");
    cr_assert_str_eq(mote_strerror(1), "unknown error");
    cr_assert_str_eq(mote_strerror(INT_MAX), "unknown error");
    cr_assert_str_eq(mote_strerror(INT_MIN), "unknown error"); /* no -INT_MIN */
    cr_assert_str_eq(mote_strerror(INT_MIN + 1), "unknown error");
    cr_assert_str_eq(mote_strerror(-100000), "unknown error");
    cr_assert_str_eq(mote_strerror(-3999), "unknown error");
}

Test(errors, own_codes_lie_below_errno) {
    /* Below every errno value Linux has (< 4096), so never confused. */
    cr_assert(MOTE_EAI_NONAME < -133 && MOTE_EAI_AGAIN < -133 && MOTE_EAI_FAIL < -133);
    cr_assert(MOTE_EAI_NONAME != MOTE_EAI_AGAIN && MOTE_EAI_AGAIN != MOTE_EAI_FAIL);
}

/* An unknown host is a resolver error of its own, not "No such file or
 * directory". (.invalid never resolves, RFC 2606; a machine without a
 * reachable resolver says "try again" instead.) */
static int main_unknown_host(void *arg) {
    (void)arg;
    mote_socket *s = (mote_socket *)1;
    int r = mote_tcp_connect(&s, "no-such-host.invalid:80", T_PATIENCE);
    T_CHECK(r == MOTE_EAI_NONAME || r == MOTE_EAI_AGAIN);
    T_CHECK(r != -ENOENT);
    T_CHECK(s == NULL);
    /* A port that is not a number is a bad argument, not an unknown host. */
    T_CHECK_EQ(mote_tcp_connect(&s, "localhost:http", T_PATIENCE), -EINVAL);
    T_CHECK_EQ(mote_tcp_connect(&s, "localhost:70000", T_PATIENCE), -EINVAL);
    T_CHECK_EQ(mote_tcp_connect(&s, "localhost:0", T_PATIENCE), -EINVAL);
    return 0;
}
Test(errors, unknown_host_is_eai_noname) { T_RUN_OK(NULL, main_unknown_host, NULL); }

/* A timed-out receive reads "timed out", not "Connection timed out". */
static int main_receive_timeout(void *arg) {
    (void)arg;
    mote_msg *m;
    int r = mote_receive(&m, MOTE_MSEC(1));
    T_CHECK_EQ(r, -ETIMEDOUT);
    T_CHECK(strcmp(mote_strerror(r), "timed out") == 0);
    return 0;
}
Test(errors, receive_timeout_text) { T_RUN_OK(NULL, main_receive_timeout, NULL); }
