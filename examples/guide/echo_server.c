/* echo_server.c -- a TCP echo server: one process per connection, each
 * written as plain blocking code.
 *
 *   echo_server [ADDR]     default 127.0.0.1:7000; try: nc 127.0.0.1 7000
 */
#include <errno.h>
#include <mote.h>
#include <stdio.h>

/* One connection: echo until the peer closes, then close. */
static void connection(void *arg) {
    mote_socket *c = *(mote_socket **)arg; /* ours to close */
    char buf[2048];
    int64_t n;
    while ((n = mote_socket_read(c, buf, sizeof buf, MOTE_SEC(300))) > 0)
        if (mote_socket_write_all(c, buf, (size_t)n, MOTE_SEC(30)) < 0)
            break;
    mote_socket_close(c);
}

static int serve(void *arg) {
    mote_socket *l;
    int r = mote_tcp_listen(&l, arg, 0, false);
    if (r < 0) {
        fprintf(stderr, "listen %s: %s\n", (const char *)arg, mote_strerror(r));
        return 1;
    }
    mote_addr a;
    char where[128] = "?";
    if (mote_socket_local_addr(l, &a) == 0)
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
            mote_sleep(MOTE_MSEC(10)); /* out of descriptors: back off */
        } else if (r != -ECONNABORTED) {
            fprintf(stderr, "accept: %s\n", mote_strerror(r));
            mote_socket_close(l);
            return 1;
        }
    }
}

int main(int argc, char **argv) {
    return mote_run(NULL, serve, argc > 1 ? argv[1] : "127.0.0.1:7000");
}
