/*
 * echo_active.c -- TCP echo server with active sockets: each connection is
 * handed to a process that gets the arriving data as calls, so an idle
 * connection costs a process's state and no stack.
 *
 *   echo_active [addr]    default 127.0.0.1:7000; prints "listening on ADDR"
 */
#include <mote.h>
#include "common/serve.h"

/* Runs in the connection's process, once per chunk of data, then once with
 * n <= 0 when the peer is done (or the connection failed). */
static void on_data(void *state, mote_socket *s, const void *data, int64_t n) {
    (void)state;
    if (n <= 0 || mote_socket_write_all(s, data, (size_t)n, MOTE_SEC(30)) < 0)
        mote_socket_close(s); /* closing ends the calls: no final one follows */
}

/* The connection's process: hand it the socket, then return. The active
 * mode keeps the process alive until the final call. */
static void connection(void *arg) {
    mote_socket *c = *(mote_socket **)arg;
    if (mote_socket_activate(c, mote_self(), on_data) < 0)
        mote_socket_close(c);
}

static int serve(void *arg) {
    return serve_forever("echo_active", arg, 1024, connection);
}

int main(int argc, char **argv) {
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:7000");
}
