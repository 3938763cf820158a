/*
 * echo.c -- TCP echo server, one process per connection, on mote_socket.
 *
 *   echo [HOST:PORT]   default 127.0.0.1:7000 (port 0: any free one);
 *                      prints "listening on ADDR"
 *
 * SIGINT or SIGTERM stops it gracefully (examples/common/graceful.h).
 */
#include <mote.h>
#include "common/cli.h"
#include "common/graceful.h"

static int serve(void *arg) {
    const char *addr = arg;
    mote_socket *l;
    int r = mote_tcp_listen(&l, addr, 1024, false);
    if (r < 0) {
        fprintf(stderr, "echo: listen %s: %s\n", addr, mote_strerror(r));
        return 1;
    }
    return graceful_serve("echo", l, graceful_echo_connection, NULL);
}

int main(int argc, char **argv) {
    const char *addr;
    int r = cli_one_arg(argc, argv, "127.0.0.1:7000", cli_tcp_addr_ok, "[HOST:PORT]  (default 127.0.0.1:7000)", &addr);
    if (r == 0)
        r = mote_run(NULL, serve, (void *)addr);
    return r < 0 ? 1 : r;
}
