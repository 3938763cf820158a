/*
 * echo.c -- TCP echo server, one process per connection, on mote_socket.
 *
 *   echo [addr]      default 127.0.0.1:7000; prints "listening on ADDR"
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <mote.h>
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
    mote_socket *l;
    int r = mote_tcp_listen(&l, arg, 1024, false);
    if (r < 0) {
        fprintf(stderr, "echo: listen %s: %s\n", (char *)arg, mote_strerror(r));
        return 1;
    }
    mote_addr a;
    char where[128];
    mote_socket_local_addr(l, &a);
    mote_addr_format(&a, where, sizeof where);
    printf("listening on %s\n", where);
    fflush(stdout);
    for (;;) {
        mote_socket *c;
        r = mote_socket_accept(l, &c, NULL, MOTE_FOREVER);
        if (r == 0) {
            if (mote_spawn_fn(NULL, connection, &c, sizeof c) < 0)
                mote_socket_close(c);
        } else if (r == -EMFILE || r == -ENFILE) {
            mote_sleep(MOTE_MSEC(10)); /* out of descriptors: back off, keep serving */
        } else if (r != -ECONNABORTED) {
            fprintf(stderr, "echo: accept: %s\n", mote_strerror(r));
            return 1;
        }
    }
}

int main(int argc, char **argv) {
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:7000");
}
