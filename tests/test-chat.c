/* examples/chat driven by real clients: lines reach every other client,
 * a client that disconnects is announced as gone, and one whose process
 * panics (the hidden "/panic" command, enabled by CHAT_PANIC=1) is
 * removed through the room's monitor. */
#include "helpers.h"

#include <poll.h>

typedef struct client {
    int fd;
    char buf[4096];
    size_t have;
} client;

/* The next line (without "\n") into line; false at the end of the stream
 * or after T_PATIENCE. */
static bool next_line(client *c, char *line, size_t cap) {
    int64_t deadline = mote_now() + T_PATIENCE;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->have);
        if (nl) {
            size_t len = (size_t)(nl - c->buf);
            snprintf(line, cap, "%.*s", (int)len, c->buf);
            c->have -= len + 1;
            memmove(c->buf, nl + 1, c->have);
            return true;
        }
        int64_t left = deadline - mote_now();
        struct pollfd p = {c->fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)(left / MOTE_MSEC(1)) + 1) <= 0)
            return false;
        ssize_t n = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
        if (n <= 0)
            return false;
        c->have += (size_t)n;
    }
}

static void expect_line(client *c, const char *want) {
    char line[512] = "";
    bool got = next_line(c, line, sizeof line);
    cr_assert(got && strcmp(line, want) == 0, "expected \"%s\", got \"%s\"%s", want, line,
              got ? "" : " (nothing)");
}

static void say(client *c, const char *text) {
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", text);
    cr_assert(t_xfer(c->fd, line, (size_t)n, true));
}

/* Connect, give the name, and wait for the room's welcome. */
static void join(client *c, const char *addr, const char *name, int here) {
    memset(c, 0, sizeof *c);
    c->fd = t_dial(addr);
    cr_assert(c->fd >= 0, "connect %s", addr);
    say(c, name);
    char want[128];
    snprintf(want, sizeof want, "* welcome %s (%d here)", name, here);
    expect_line(c, want);
}

/* Nothing more arrives for c (checked after a later line reached others). */
static void expect_quiet(client *c) {
    struct pollfd p = {c->fd, POLLIN, 0};
    cr_assert(c->have == 0 && poll(&p, 1, 50) == 0, "unexpected data for a client");
}

Test(chat, clients_lines_leaving_and_panics) {
    setenv("CHAT_PANIC", "1", 1);
    t_server srv;
    t_server_start(&srv, "chat", "0");
    unsetenv("CHAT_PANIC");
    client a, b, c, d;
    join(&a, srv.addr, "alice", 1);
    join(&b, srv.addr, "bob", 2);
    expect_line(&a, "* bob joined");
    join(&c, srv.addr, "carol", 3);
    expect_line(&a, "* carol joined");
    expect_line(&b, "* carol joined");

    /* A line reaches every other client, not its sender. */
    say(&a, "hello all");
    expect_line(&b, "alice: hello all");
    expect_line(&c, "alice: hello all");
    say(&b, "hi alice");
    expect_line(&a, "bob: hi alice");
    expect_line(&c, "bob: hi alice");

    /* A client that disconnects is announced as gone. */
    close(b.fd);
    expect_line(&a, "* bob left");
    expect_line(&c, "* bob left");

    /* A client whose process panics: the monitor removes it, and its
     * connection is closed. */
    say(&c, "/panic");
    expect_line(&a, "* carol left");
    char line[256];
    cr_assert(!next_line(&c, line, sizeof line), "carol's connection should end, got \"%s\"", line);
    close(c.fd);

    /* The room carries on. */
    join(&d, srv.addr, "dave", 2);
    expect_line(&a, "* dave joined");
    say(&d, "late");
    expect_line(&a, "dave: late");
    expect_quiet(&d);
    close(a.fd);
    expect_line(&d, "* alice left");

    /* SIGTERM: mote_stop; the room cancels its clients, whose connections
     * end; the server exits 0. */
    client e;
    join(&e, srv.addr, "eve", 2);
    expect_line(&d, "* eve joined");
    int st = t_server_stop_status(&srv);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "chat ended with status 0x%x", st);
    cr_assert(!next_line(&d, line, sizeof line), "dave's connection should end, got \"%s\"", line);
    cr_assert(!next_line(&e, line, sizeof line), "eve's connection should end, got \"%s\"", line);
    close(d.fd);
    close(e.fd);
}

Test(chat, usage) {
    char exe[512];
    snprintf(exe, sizeof exe, "%s/examples/chat", MOTE_BUILD_DIR);
    char *help[] = {exe, "--help", NULL}, *h[] = {exe, "-h", NULL}, *bad[] = {exe, "x", NULL};
    t_child ch;
    t_child_exec(&ch, help);
    T_ASSERT_EXITED(&ch, 2);
    T_ASSERT_CONTAINS(ch.err, "usage: chat [port]");
    t_child_free(&ch);
    t_child_exec(&ch, h);
    T_ASSERT_EXITED(&ch, 2);
    T_ASSERT_CONTAINS(ch.err, "usage: chat [port]");
    t_child_free(&ch);
    t_child_exec(&ch, bad);
    T_ASSERT_EXITED(&ch, 2);
    T_ASSERT_CONTAINS(ch.err, "usage: chat [port]");
    t_child_free(&ch);
}
