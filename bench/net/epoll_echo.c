/*
 * epoll_echo.c -- the plain-C baseline for examples/echo.c: one thread, one
 * epoll set, non-blocking sockets; writes back whatever it reads.
 *
 *   net_epoll_echo HOST:PORT
 */
#include "net.h"

static void handle(net_conn *c) {
    size_t n = c->in_len < NET_BUF - c->out_len ? c->in_len : NET_BUF - c->out_len;
    memcpy(c->out + c->out_len, c->in, n);
    c->out_len += n;
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    net_serve(argv[1], handle);
}
