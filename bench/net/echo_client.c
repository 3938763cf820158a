/*
 * echo_client.c -- load for the echo servers: CONNS connections, each
 * writing SIZE bytes and reading exactly SIZE bytes back, over and over for
 * SECONDS; one thread, one epoll set. Checks every echoed byte.
 *
 *   net_echo_client HOST:PORT [CONNS=100] [SECONDS=5] [SIZE=64]
 *
 * Prints "round_trips N seconds S per_second R".
 */
#include "net.h"
#include <fcntl.h>

enum { MAX_SIZE = 4096 };

typedef struct {
    int fd;
    size_t got;
    char msg[MAX_SIZE], buf[MAX_SIZE];
} client;

static void send_msg(client *c, size_t size) {
    ssize_t n = write(c->fd, c->msg, size);
    if (n != (ssize_t)size) {
        fprintf(stderr, "echo_client: short write (%zd of %zu)\n", n, size);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST:PORT [CONNS] [SECONDS] [SIZE]\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sa = net_addr(argv[1]);
    int conns = argc > 2 ? atoi(argv[2]) : 100;
    double seconds = argc > 3 ? atof(argv[3]) : 5;
    size_t size = argc > 4 ? (size_t)atol(argv[4]) : 64;
    if (conns < 1 || seconds <= 0 || size < 1 || size > MAX_SIZE) {
        fprintf(stderr, "echo_client: bad arguments\n");
        return 2;
    }
    net_raise_nofile();
    signal(SIGPIPE, SIG_IGN); /* a closed connection is an error, not a signal */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    client *cs = calloc((size_t)conns, sizeof *cs);
    if (ep < 0 || !cs)
        net_die("echo_client");
    for (int i = 0; i < conns; i++) {
        client *c = &cs[i];
        if ((c->fd = net_connect(&sa)) < 0)
            net_die("echo_client: connect");
        fcntl(c->fd, F_SETFL, O_NONBLOCK);
        for (size_t j = 0; j < size; j++)
            c->msg[j] = (char)('a' + (i + j) % 26);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            net_die("epoll_ctl");
    }
    long long trips = 0;
    double start = net_now(), deadline = start + seconds, now = start;
    for (int i = 0; i < conns; i++)
        send_msg(&cs[i], size);
    struct epoll_event events[256];
    while (now < deadline) {
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR)
            net_die("epoll_wait");
        now = net_now();
        for (int i = 0; i < n; i++) {
            client *c = events[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->got, size - c->got);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "echo_client: %s\n", r == 0 ? "server closed a connection" : strerror(errno));
                return 1;
            }
            c->got += (size_t)r;
            if (c->got < size)
                continue;
            if (memcmp(c->buf, c->msg, size) != 0) {
                fprintf(stderr, "echo_client: wrong bytes echoed\n");
                return 1;
            }
            c->got = 0;
            trips++;
            if (now < deadline)
                send_msg(c, size);
        }
    }
    double elapsed = now - start;
    printf("round_trips %lld seconds %.3f per_second %.0f\n", trips, elapsed, (double)trips / elapsed);
    return 0;
}
