/*
 * net.h -- what the plain-C network benchmark programs share: "HOST:PORT"
 * parsing, a non-blocking listening socket, a blocking client connection,
 * the descriptor limit, a clock, and a small single-threaded epoll server
 * (net_serve) that the epoll peers of mote's servers are built on.
 * IPv4 only: the benchmarks run on loopback.
 */
#ifndef MOTE_BENCH_NET_H
#define MOTE_BENCH_NET_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline void net_die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(1);
}

/* "127.0.0.1:8080" -> sockaddr; exits on a malformed address. */
static inline struct sockaddr_in net_addr(const char *addr) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    const char *colon = strrchr(addr, ':');
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (!colon || hl >= sizeof host) {
        fprintf(stderr, "bad address %s (want HOST:PORT)\n", addr);
        exit(2);
    }
    memcpy(host, addr, hl);
    host[hl] = '\0';
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad address %s (want an IPv4 HOST:PORT)\n", addr);
        exit(2);
    }
    return sa;
}

/* Raise the soft descriptor limit to the hard one. */
static inline void net_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static inline double net_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A blocking TCP connection with TCP_NODELAY, or -1 with errno set. */
static inline int net_connect(const struct sockaddr_in *sa) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* ---- net_serve: a single-threaded, level-triggered epoll server. ---- */

enum { NET_BUF = 16384 };

typedef struct net_conn {
    int fd;
    bool want_out;         /* output is pending: waiting for EPOLLOUT, not reading */
    bool close_after;      /* set by the handler: close once the output is written */
    void *data;            /* the handler's own state, or NULL; free()d with the connection */
    size_t in_len, out_len, out_off;
    char in[NET_BUF], out[NET_BUF];
} net_conn;

/* Consumes what it can of c->in (moving the rest to the front), appends its
 * answers to c->out (never past NET_BUF). */
typedef void (*net_handler)(net_conn *c);

static inline void net_close(net_conn *c) {
    close(c->fd); /* also removes it from the epoll set */
    free(c->data);
    free(c);
}

static inline void net_watch(int ep, net_conn *c, bool out) {
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        net_die("epoll_ctl");
    c->want_out = out;
}

/* One readiness event: one read, then answer and write until either the
 * handler has nothing more to say or the socket is full. */
static inline void net_drive(int ep, net_conn *c, uint32_t events, net_handler handler) {
    if (!c->want_out && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        ssize_t n = read(c->fd, c->in + c->in_len, NET_BUF - c->in_len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            net_close(c);
            return;
        }
        if (n > 0)
            c->in_len += (size_t)n;
    }
    for (;;) {
        while (c->out_off < c->out_len) {
            ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
            if (n < 0 && errno == EAGAIN) {
                if (!c->want_out)
                    net_watch(ep, c, true);
                return;
            }
            if (n < 0 && errno != EINTR) {
                net_close(c);
                return;
            }
            if (n > 0)
                c->out_off += (size_t)n;
        }
        c->out_off = c->out_len = 0;
        if (c->close_after) {
            net_close(c);
            return;
        }
        handler(c);
        if (c->out_len == 0)
            break;
    }
    if (c->want_out)
        net_watch(ep, c, false);
    if (c->in_len == NET_BUF) /* full, and nothing in it the handler can use */
        net_close(c);
}

/* Serve addr forever: accept, and run handler on each connection's input. */
_Noreturn static inline void net_serve(const char *addr, net_handler handler) {
    struct sockaddr_in sa = net_addr(addr);
    int one = 1, ep = epoll_create1(EPOLL_CLOEXEC);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ep < 0 || lfd < 0)
        net_die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0)
        net_die(addr);
    net_raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, events[256];
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        net_die("epoll_ctl");
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno != EINTR)
            net_die("epoll_wait");
        for (int i = 0; i < n; i++) {
            net_conn *c = events[i].data.ptr;
            if (c) {
                net_drive(ep, c, events[i].events, handler);
                continue;
            }
            int fd;
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                c = malloc(sizeof *c);
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->want_out = c->close_after = false;
                c->data = NULL;
                c->in_len = c->out_len = c->out_off = 0;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0)
                    net_close(c);
            }
            if (errno != EAGAIN && errno != ECONNABORTED && errno != EMFILE && errno != ENFILE)
                net_die("accept");
        }
    }
}

#endif
