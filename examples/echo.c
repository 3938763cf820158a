/*
 * echo.c -- TCP echo server, one process per connection, on mote_socket.
 *
 *   echo [addr]      default 127.0.0.1:7000; prints "listening on ADDR"
 */
#include <mote.h>
#include "common/serve.h"

static int serve(void *arg) {
    return serve_forever("echo", arg, 1024, echo_connection);
}

int main(int argc, char **argv) {
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:7000");
}
