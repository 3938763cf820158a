/*
 * udp_echo.c -- UDP echo server: one process sends every datagram back to
 * where it came from, whole (an empty one included).
 *
 *   udp_echo [HOST:PORT]   default 127.0.0.1:7001 ("[::1]:0" for IPv6,
 *                          port 0 for any free one); prints "listening on ADDR"
 *
 * SIGINT or SIGTERM stops it (examples/common/graceful.h).
 */
#include <errno.h>
#include <mote.h>
#include "common/cli.h"
#include "common/graceful.h"

static int serve(void *arg) {
    const char *addr = arg;
    mote_socket *u;
    int r = mote_udp_bind(&u, addr);
    if (r < 0) {
        fprintf(stderr, "udp_echo: bind %s: %s\n", addr, mote_strerror(r));
        return 1;
    }
    if ((r = graceful_start("udp_echo", mote_socket_fd(u), SOCK_DGRAM)) < 0) {
        fprintf(stderr, "udp_echo: signals: %s\n", mote_strerror(r));
        return 1;
    }
    print_listening(u);
    static char buf[65536]; /* the largest datagram; one process uses it */
    for (;;) {
        mote_addr from;
        int64_t n = mote_socket_recv_from(u, buf, sizeof buf, &from, MOTE_FOREVER);
        if (graceful_stopping()) {
            mote_socket_close(u);
            return graceful_finish(NULL);
        }
        if (n >= 0)
            n = mote_socket_send_to(u, buf, (size_t)n, &from, MOTE_SEC(1));
        /* A failed datagram (a vanished client, a full buffer) is lost, as
         * UDP allows; the server goes on. */
        if (n == -EBADF || n == -ENOMEM)
            return 1;
        if (n < 0)
            fprintf(stderr, "udp_echo: %s\n", mote_strerror((int)n));
    }
}

int main(int argc, char **argv) {
    const char *addr;
    int r = cli_one_arg(argc, argv, "127.0.0.1:7001", cli_tcp_addr_ok, "[HOST:PORT]  (default 127.0.0.1:7001)", &addr);
    if (r == 0)
        r = mote_run(NULL, serve, (void *)addr);
    return r < 0 ? 1 : r;
}
