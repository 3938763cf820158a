/*
 * echo.c -- TCP echo server, one process per connection, on mote_socket.
 *
 *   echo [addr]      default 127.0.0.1:7000; prints "listening on ADDR"
 */
#include <errno.h>
#include <mote.h>
#include "common/serve.h"
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>

static void connection(void *arg) {
    mote_socket *c = *(mote_socket **)arg;
    char buf[16384];
    int64_t n;
    while ((n = mote_socket_read(c, buf, sizeof buf, MOTE_FOREVER)) > 0)
        if (mote_socket_write_all(c, buf, (size_t)n, MOTE_SEC(30)) < 0)
            break;
    mote_socket_close(c);
}

static int serve(void *arg) {
    return serve_forever("echo", arg, 1024, connection);
}

int main(int argc, char **argv) {
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:7000");
}
