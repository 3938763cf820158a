/*
 * test-guide.c -- the user guide's programs (examples/guide/, quoted in
 * docs/guide.md) run and print what the guide says they print.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* Run build/examples/guide/<name> with up to two arguments; expect exit
 * status `status` and exactly `want` on stdout. */
static void expect(const char *name, const char *arg1, const char *arg2, int status, const char *want) {
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/guide/%s", MOTE_BUILD_DIR, name);
    cr_assert(access(path, X_OK) == 0, "guide example not built: %s", path);
    char *argv[] = {path, (char *)arg1, (char *)arg2, NULL};
    t_child c;
    t_child_exec(&c, argv);
    T_ASSERT_EXITED(&c, status);
    cr_assert_str_eq(c.out, want, "%s printed:\n%s\nexpected:\n%s\nstderr:\n%s", name, c.out, want, c.err);
    t_child_free(&c);
}

Test(guide, hello) {
    expect("hello", NULL, NULL, 0, "hello, world, from a mote process\n");
}

Test(guide, counter) {
    expect("counter", NULL, NULL, 0,
           "after ten casts: 55\n"
           "after an async add: 60\n"
           "counter freed at 60\n");
}

Test(guide, futures) {
    expect("futures", NULL, NULL, 0,
           "worker 0: 16\nworker 1: 9\nworker 2: 4\nworker 3: 1\n"
           "not ready after 10 ms\n"
           "then: 400\n");
}

Test(guide, receive) {
    expect("receive", NULL, NULL, 0,
           "1 doubled is 2\n2 doubled is 4\n3 doubled is 6\n"
           "no more messages\n");
}

Test(guide, timers) {
    expect("timers", NULL, NULL, 0,
           "slept at least 20 ms: yes\n"
           "quick answered 42\n"
           "sluggish missed its 50 ms deadline\n");
}

Test(guide, files) {
    expect("files", NULL, NULL, 0,
           "copied 18 bytes\n"
           "the copy starts with \"buy milk\", size 18\n"
           "notes/copy.txt\n"
           "notes/today.txt\n"
           "host name read in a blocking section\n");
}

Test(guide, panic) {
    expect("panic", NULL, NULL, 0,
           "84 / 2 = 42\n"
           "84 / 0: cancelled\n"
           "the handler said: division of 84 by zero\n"
           "a later call: cancelled\n");
}

Test(guide, supervise) {
    expect("supervise", NULL, NULL, 0,
           "sum of doubles of 1..10: 110, after 4 crashes\n"
           "the supervisor ended: cancelled\n");
}

Test(guide, linecount) {
    char path[] = "/tmp/mote-guide-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char text[] = "one two\nthree\r\n\n  four  five six\nlast line without end";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char want[512];
    snprintf(want, sizeof want,
             "%s: 5 lines, 10 words, longest 21\n"
             "/nonexistent/file: No such file or directory\n",
             path);
    expect("linecount", path, "/nonexistent/file", 1, want);
    unlink(path);
}

/* Send request to a guide server and read until it closes or `until`
 * appears; return what came back (static buffer). */
static const char *exchange(const char *addr, const char *request, const char *until) {
    static char buf[4096];
    int fd = t_dial(addr);
    cr_assert(fd >= 0, "connect %s", addr);
    cr_assert(t_xfer(fd, (char *)request, strlen(request), true));
    size_t have = 0;
    ssize_t n;
    buf[0] = '\0';
    while (!strstr(buf, until) && (n = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
        have += (size_t)n;
        buf[have] = '\0';
    }
    close(fd);
    return buf;
}

Test(guide, echo_server) {
    t_server srv;
    t_server_start(&srv, "guide/echo_server", "127.0.0.1:0");
    const char *got = exchange(srv.addr, "hello\nmote\n", "mote\n");
    cr_assert_str_eq(got, "hello\nmote\n");
    t_server_stop(&srv);
}

Test(guide, kvstore) {
    t_server srv;
    t_server_start(&srv, "guide/kvstore", "127.0.0.1:0");
    const char *got = exchange(srv.addr,
                               "SET greeting hello world\r\nGET greeting\r\nGET nothing\r\n"
                               "DEL greeting\nGET greeting\nSET lonely\nQUIT\nGET greeting\n",
                               "BYE\r\n");
    cr_assert_str_eq(got, "OK\r\n"
                          "VALUE hello world\r\n"
                          "NOT_FOUND\r\n"
                          "OK\r\n"
                          "NOT_FOUND\r\n"
                          "ERROR usage: SET key value | GET key | DEL key | QUIT\r\n"
                          "BYE\r\n");
    /* A second connection sees what the first one stored. */
    exchange(srv.addr, "SET k v\nQUIT\n", "BYE\r\n");
    got = exchange(srv.addr, "GET k\nQUIT\n", "BYE\r\n");
    cr_assert_str_eq(got, "VALUE v\r\nBYE\r\n");
    t_server_stop(&srv);
}
