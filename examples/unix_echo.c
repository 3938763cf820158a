/*
 * unix_echo.c -- echo server on a Unix stream socket, one process per
 * connection (examples/echo.c over mote_unix_listen).
 *
 *   unix_echo [PATH]   default /tmp/mote-echo.sock; "@name" for the
 *                      abstract namespace; prints "listening on unix:PATH"
 *
 * An existing socket file is not removed: remove a stale one first.
 * SIGINT or SIGTERM stops it gracefully and removes the socket file
 * (examples/common/graceful.h).
 */
#include <mote.h>
#include "common/cli.h"
#include "common/graceful.h"

static int serve(void *arg) {
    const char *path = arg;
    mote_socket *l;
    int r = mote_unix_listen(&l, path, 1024);
    if (r < 0) {
        fprintf(stderr, "unix_echo: listen %s: %s\n", path, mote_strerror(r));
        return 1;
    }
    return graceful_serve("unix_echo", l, graceful_echo_connection, path);
}

int main(int argc, char **argv) {
    const char *path;
    int r = cli_one_arg(argc, argv, "/tmp/mote-echo.sock", cli_unix_path_ok,
                        "[PATH | @NAME]  (default /tmp/mote-echo.sock)", &path);
    if (r == 0)
        r = mote_run(NULL, serve, (void *)path);
    return r < 0 ? 1 : r;
}
