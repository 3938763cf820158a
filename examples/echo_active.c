/*
 * echo_active.c -- TCP echo server with active sockets: each connection is
 * handed to a process that gets the arriving data as calls, so an idle
 * connection costs a process's state and no stack.
 *
 *   echo_active [HOST:PORT]   default 127.0.0.1:7000 (port 0: any free
 *                             one); prints "listening on ADDR"
 *
 * SIGINT or SIGTERM stops it gracefully (examples/common/graceful.h).
 */
#include <mote.h>
#include "common/cli.h"
#include "common/graceful.h"

/* Runs in the connection's process, once per chunk of data, then once with
 * n <= 0 when the peer is done (or the connection failed). */
static void on_data(void *state, mote_socket *s, const void *data, int64_t n) {
    (void)state;
    if (n <= 0 || mote_socket_write_all(s, data, (size_t)n, MOTE_SEC(30)) < 0)
        graceful_conn_close(s); /* closing ends the calls: no final one follows */
}

/* The connection's process: hand it the socket, then return. The active
 * mode keeps the process alive until the final call. */
static void connection(void *arg) {
    mote_socket *c = *(mote_socket **)arg;
    if (mote_socket_activate(c, mote_self(), on_data) < 0)
        graceful_conn_close(c);
}

static int serve(void *arg) {
    const char *addr = arg;
    mote_socket *l;
    int r = mote_tcp_listen(&l, addr, 1024, false);
    if (r < 0) {
        fprintf(stderr, "echo_active: listen %s: %s\n", addr, mote_strerror(r));
        return 1;
    }
    return graceful_serve("echo_active", l, connection, NULL);
}

int main(int argc, char **argv) {
    const char *addr;
    int r = cli_one_arg(argc, argv, "127.0.0.1:7000", cli_tcp_addr_ok, "[HOST:PORT]  (default 127.0.0.1:7000)", &addr);
    if (r == 0)
        r = mote_run(NULL, serve, (void *)addr);
    return r < 0 ? 1 : r;
}
