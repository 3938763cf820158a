/*
 * fd_echo.c -- a TCP echo server on raw non-blocking sockets and
 * mote_fd_wait: one process per connection, code that reads like blocking
 * code. (The socket types of the network issue will wrap exactly this.)
 *
 *   fd_echo [PORT]        default 7007 (0: any free port); prints
 *                         "listening on 127.0.0.1:PORT" when ready
 *
 * SIGINT or SIGTERM stops it gracefully (examples/common/graceful.h).
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <mote.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/graceful.h"

/* Read up to len bytes, waiting as long as it takes. 0 at end of stream. */
static ssize_t read_some(int fd, char *buf, size_t len) {
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return n;
        int e = mote_errno(); /* never errno: we may resume on another thread */
        if (e != -EAGAIN && e != -EINTR)
            return e;
        int r = mote_fd_wait(fd, MOTE_READABLE, MOTE_FOREVER);
        if (r < 0)
            return r;
    }
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        int e = n < 0 ? mote_errno() : -EAGAIN;
        if (e != -EAGAIN && e != -EINTR)
            return e;
        int r = mote_fd_wait(fd, MOTE_WRITABLE, MOTE_FOREVER);
        if (r < 0)
            return r;
    }
    return 0;
}

static void connection(void *arg) {
    int fd = *(int *)arg;
    char buf[16384];
    ssize_t n;
    while ((n = read_some(fd, buf, sizeof buf)) > 0)
        if (write_all(fd, buf, (size_t)n) < 0)
            break;
    graceful_conn_close_fd(fd);
}

static int serve(void *arg) {
    int port = *(int *)arg;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1024) != 0) {
        perror("fd_echo: listen");
        return 1;
    }
    socklen_t al = sizeof a; /* port 0: the kernel picked one */
    getsockname(ls, (struct sockaddr *)&a, &al);
    int r = graceful_start("fd_echo", ls, SOCK_STREAM);
    if (r < 0) {
        fprintf(stderr, "fd_echo: signals: %s\n", mote_strerror(r));
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int e = c < 0 ? mote_errno() : 0;
        if (graceful_stopping()) {
            if (c >= 0)
                close(c); /* the stopper's knock, or a late client */
            mote_fd_close(ls);
            return graceful_finish(NULL);
        }
        if (c >= 0) {
            if (graceful_conn_open(c) < 0)
                close(c);
            else if (mote_spawn_fn(NULL, connection, &c, sizeof c) < 0)
                graceful_conn_close_fd(c);
            continue;
        }
        if (e == -EAGAIN || e == -EINTR || e == -ECONNABORTED) {
            mote_fd_wait(ls, MOTE_READABLE, MOTE_FOREVER);
            continue;
        }
        if (e == -EMFILE || e == -ENFILE) { /* out of descriptors: back off, keep serving */
            mote_sleep(MOTE_MSEC(10));
            continue;
        }
        fprintf(stderr, "fd_echo: accept: %s\n", mote_strerror(e));
        return 1;
    }
}

int main(int argc, char **argv) {
    const char *arg;
    int r = cli_one_arg(argc, argv, "7007", cli_port_ok, "[PORT]  (default 7007; 0: any free port)", &arg);
    if (r != 0)
        return r;
    int port = atoi(arg);
    r = mote_run(NULL, serve, &port);
    return r < 0 ? 1 : r;
}
