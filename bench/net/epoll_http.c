/*
 * epoll_http.c -- the plain-C baseline for examples/http_hello.c: one
 * thread, one epoll set, non-blocking sockets. Keep-alive and pipelining:
 * every complete request in the buffer is answered, in one write, with the
 * same bytes http_hello sends; a "Connection: close" request ends the
 * connection once answered. Request bodies (Content-Length) are skipped.
 *
 *   net_epoll_http HOST:PORT
 */
#include "http_handle.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    net_serve(argv[1], handle);
}
