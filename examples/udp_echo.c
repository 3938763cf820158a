/*
 * udp_echo.c -- UDP echo server: one process sends every datagram back to
 * where it came from, whole (an empty one included).
 *
 *   udp_echo [addr]    default 127.0.0.1:7001 ("[::1]:0" for IPv6, port 0
 *                      for any free one); prints "listening on ADDR"
 */
#include <errno.h>
#include <mote.h>
#include "common/serve.h"

static int serve(void *arg) {
    const char *addr = arg;
    mote_socket *u;
    int r = mote_udp_bind(&u, addr);
    if (r < 0) {
        fprintf(stderr, "udp_echo: bind %s: %s\n", addr, mote_strerror(r));
        return 1;
    }
    print_listening(u);
    static char buf[65536]; /* the largest datagram; one process uses it */
    for (;;) {
        mote_addr from;
        int64_t n = mote_socket_recv_from(u, buf, sizeof buf, &from, MOTE_FOREVER);
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
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:7001");
}
