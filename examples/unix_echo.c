/*
 * unix_echo.c -- echo server on a Unix stream socket, one process per
 * connection (examples/echo.c over mote_unix_listen).
 *
 *   unix_echo [path]   default /tmp/mote-echo.sock; "@name" for the
 *                      abstract namespace; prints "listening on unix:PATH"
 *
 * An existing socket file is not removed: remove a stale one first.
 */
#include <mote.h>
#include "common/serve.h"

static int serve(void *arg) {
    const char *path = arg;
    mote_socket *l;
    int r = mote_unix_listen(&l, path, 1024);
    if (r < 0) {
        fprintf(stderr, "unix_echo: listen %s: %s\n", path, mote_strerror(r));
        return 1;
    }
    return serve_listener("unix_echo", l, echo_connection);
}

int main(int argc, char **argv) {
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "/tmp/mote-echo.sock");
}
